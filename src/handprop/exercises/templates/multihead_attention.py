"""Exercise: the backward of multi-head attention, torch's MultiheadAttention (batch first):

    q, k, v = query W_q^T + b_q, key W_k^T + b_k, value W_v^T + b_v      (the in projection)
    each of the h heads attends on its slice of head_dim = E / h features
    out = concat(heads) W_o^T + b_o                                       (the out projection)

The attention itself and its backward are given (scaled_dot_product_attention and its
backward from handprop.layers.attention: the attention exercise's answer). This exercise is
what is around them: the projections, and the heads split and merged.
Shapes: query (N, L, E), key and value (N, S, E); in_proj_weight (3E, E) holds W_q, W_k, W_v
one under the other, in_proj_bias (3E,); out_proj a Linear(E, E). Returns the output (N, L, E)
and the weights averaged over the heads (N, L, S).
Check your work with:  handprop exercise check multihead_attention multihead_attention.py
"""

import numpy as np

from handprop import Module, Parameter
from handprop.layers import Linear
from handprop.layers.attention import (
    scaled_dot_product_attention,
    scaled_dot_product_attention_backward,
)


class MultiheadAttention(Module):
    def __init__(self, embed_dim, num_heads, batch_first=True):
        super().__init__()  # (batch_first: the inputs are (N, L, E), as with torch's option)
        rng = np.random.default_rng(0)
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.head_dim = embed_dim // num_heads
        self.in_proj_weight = Parameter(rng.standard_normal((3 * embed_dim, embed_dim)) / 2)
        self.in_proj_bias = Parameter(np.zeros(3 * embed_dim))
        self.out_proj = Linear(embed_dim, embed_dim, dtype=np.float64, rng=1)

    def split(self, x):  # (N, L, E) -> (N, heads, L, head_dim): each head its slice
        n, length, _ = x.shape
        return x.reshape(n, length, self.num_heads, self.head_dim).transpose(0, 2, 1, 3)

    def merge(self, x):  # (N, heads, L, head_dim) -> (N, L, E): the heads side by side
        n, _, length, _ = x.shape
        return x.transpose(0, 2, 1, 3).reshape(n, length, self.embed_dim)

    def forward(self, query, key, value):
        e, w, b = self.embed_dim, self.in_proj_weight.data, self.in_proj_bias.data
        self.inputs = (query, key, value)  # kept for the backward
        q, k, v = (x @ w[i * e : (i + 1) * e].T + b[i * e : (i + 1) * e]
                   for i, x in enumerate(self.inputs))  # fmt: skip
        heads, weights, self.cache = scaled_dot_product_attention(
            self.split(q), self.split(k), self.split(v)
        )
        self.merged = self.merge(heads)
        out = self.merged @ self.out_proj.weight.data.T + self.out_proj.bias.data
        return out, weights.mean(axis=1)

    def backward(self, grad_output, grad_weights):
        g = grad_output  # dJ/d(out) (N, L, E); grad_weights: dJ/d(the averaged weights)
        # Step 1: the out projection is a Linear on the merged heads, every (n, l) a row:
        #         dJ/dW_o = g^T merged and dJ/db_o = sum of g over those rows (flatten to
        #         (N * L, E) first); accumulate_grad them into self.out_proj's weight and
        #         bias; dJ/d(merged) = g W_o.
        # Step 2: split dJ/d(merged) into heads exactly as the forward split (self.split).
        #         The weights returned were averaged over the heads: each head's share of
        #         their gradient is grad_weights / num_heads, the same for every head
        #         (shape (N, heads, L, S): add the heads axis with [:, None] and broadcast).
        # Step 3: dq, dk, dv = scaled_dot_product_attention_backward(d_heads, d_weights,
        #         self.cache), then merge each back to (N, L, E).
        # Step 4: the in projection, three Linears in one weight: dJ/d(in_proj_weight) is
        #         [dq^T query; dk^T key; dv^T value] one under the other (rows flattened over
        #         N and L), dJ/d(in_proj_bias) the three sums side by side; accumulate_grad.
        # Step 5: return (dJ/dquery, dJ/dkey, dJ/dvalue): dq W_q, dk W_k, dv W_v.
        raise NotImplementedError("write the backward: follow the steps above")
