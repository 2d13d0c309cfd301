"""Exercise: the backward of scaled dot-product attention, the heart of a transformer:

    scores = q k^T / sqrt(d)            (N, L, S): how much each query looks at each key
    P = softmax(scores)                 along each row (the keys); -inf scores get weight 0
    out = P v                           (N, L, d_v)

Shapes: q (N, L, d), k (N, S, d), v (N, S, d_v). ``causal=True`` masks the later keys (a
query at position i sees the keys 0..i), as a language model must.
Check your work with:  handprop exercise check attention attention.py
"""

import numpy as np

from handprop import Module


class Attention(Module):
    def __init__(self, causal=False):
        super().__init__()
        self.causal = causal

    def forward(self, q, k, v):
        scores = q @ k.swapaxes(-1, -2) / np.sqrt(q.shape[-1])
        if self.causal:  # -inf above the diagonal: no weight on the keys after the query
            scores = scores + np.triu(np.full(scores.shape[-2:], -np.inf), k=1)
        e = np.exp(scores - scores.max(axis=-1, keepdims=True))
        self.p = e / e.sum(axis=-1, keepdims=True)
        self.q, self.k, self.v = q, k, v  # kept for the backward
        return self.p @ v

    def backward(self, grad_output):
        g = grad_output  # dJ/d(out), shape (N, L, d_v)
        # Step 1: out = P v is a matrix product: dJ/dv = P^T g, and dJ/dP = g v^T (N, L, S).
        # Step 2: through the softmax, row by row. Every weight of a row depends on every
        #         score of that row, so the gradient is not dP * P (1 - P) but
        #         dS = P * (dP - sum(dP * P, axis=-1, keepdims=True)). (A masked position has
        #         P = 0, so it gets no gradient: nothing to do for the mask.)
        # Step 3: scores = q k^T / sqrt(d): dJ/dq = dS k / sqrt(d), dJ/dk = dS^T q / sqrt(d)
        #         (use .swapaxes(-1, -2) for the transposes: the batch axis stays first).
        # Step 4: return (dJ/dq, dJ/dk, dJ/dv).
        raise NotImplementedError("write the backward: follow the steps above")
