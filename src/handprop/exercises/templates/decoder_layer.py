"""Exercise: the backward of a transformer decoder layer, a block of handprop's own modules
(post-norm):

    x = norm1(x + sa(x))              sa(x) = dropout1(self_attn(x, x, x))
    x = norm2(x + ca(x, memory))      ca(x, m) = dropout2(multihead_attn(x, m, m))
    x = norm3(x + ff(x))              ff(x) = dropout3(linear2(dropout(relu(linear1(x)))))

The memory (the encoder's output) is the cross-attention's key and value: its gradient is the
sum of the two, and it reaches the cost through the cross-attention only.
Shapes: x (L, N, d_model), memory (S, N, d_model).
Check your work with:  handprop exercise check decoder_layer decoder_layer.py
"""

import numpy as np

from handprop import Module
from handprop.layers import Dropout, LayerNorm, Linear, MultiheadAttention, ReLU


class TransformerDecoderLayer(Module):
    def __init__(self, d_model, nhead, dim_feedforward, dropout=0.0):
        super().__init__()
        rng = np.random.default_rng(0)
        f64 = {"dtype": np.float64, "rng": rng}
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, **f64)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, **f64)
        self.linear1 = Linear(d_model, dim_feedforward, **f64)
        self.dropout = Dropout(dropout, rng=rng)
        self.linear2 = Linear(dim_feedforward, d_model, **f64)
        self.norm1 = LayerNorm(d_model, dtype=np.float64)
        self.norm2 = LayerNorm(d_model, dtype=np.float64)
        self.norm3 = LayerNorm(d_model, dtype=np.float64)
        self.dropout1 = Dropout(dropout, rng=rng)
        self.dropout2 = Dropout(dropout, rng=rng)
        self.dropout3 = Dropout(dropout, rng=rng)
        self.activation = ReLU()

    def forward(self, x, memory):
        x = self.norm1(x + self.dropout1(self.self_attn(x, x, x, need_weights=False)[0]))
        ca = self.multihead_attn(x, memory, memory, need_weights=False)[0]
        x = self.norm2(x + self.dropout2(ca))
        ff = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.norm3(x + self.dropout3(ff))

    def backward(self, grad_output):
        g = grad_output  # dJ/d(output), (L, N, d_model)
        # From the end, each residual connection's two paths added:
        # Step 1: d = norm3.backward(g); dJ/dx2 = d + ff's backward of d (dropout3, linear2,
        #         dropout, activation, linear1: each module's .backward in turn).
        # Step 2: d = norm2.backward(dJ/dx2); dq, dk, dv = multihead_attn.backward(
        #         dropout2.backward(d), None): dJ/dx1 = d + dq, and dJ/dmemory = dk + dv.
        # Step 3: d = norm1.backward(dJ/dx1); dJ/dx = d + the three gradients self_attn's
        #         backward returns (of dropout1.backward(d)), added: x was its q, k and v.
        # Return (dJ/dx, dJ/dmemory).
        raise NotImplementedError("write the backward: follow the steps above")
