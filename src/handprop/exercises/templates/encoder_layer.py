"""Exercise: the backward of a transformer encoder layer, a block of handprop's own modules:

    post-norm (norm_first=False):  x = norm1(x + sa(x));      x = norm2(x + ff(x))
    pre-norm  (norm_first=True):   x = x + sa(norm1(x));      x = x + ff(norm2(x))

with sa(x) = dropout1(self_attn(x, x, x)) and ff(x) = dropout2(linear2(dropout(relu(linear1(x))))).
Every module's backward is handprop's; this exercise is the block's: where a residual connection
adds a sub-block's output to its input, the gradients of the two paths add.
Shapes: x (L, N, d_model) throughout.
Check your work with:  handprop exercise check encoder_layer encoder_layer.py
"""

import numpy as np

from handprop import Module
from handprop.layers import Dropout, LayerNorm, Linear, MultiheadAttention, ReLU


class TransformerEncoderLayer(Module):
    def __init__(self, d_model, nhead, dim_feedforward, dropout=0.0, norm_first=False):
        super().__init__()
        rng = np.random.default_rng(0)
        f64 = {"dtype": np.float64, "rng": rng}
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, **f64)
        self.linear1 = Linear(d_model, dim_feedforward, **f64)
        self.dropout = Dropout(dropout, rng=rng)
        self.linear2 = Linear(dim_feedforward, d_model, **f64)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, dtype=np.float64)
        self.norm2 = LayerNorm(d_model, dtype=np.float64)
        self.dropout1, self.dropout2 = Dropout(dropout, rng=rng), Dropout(dropout, rng=rng)
        self.activation = ReLU()

    def sa(self, x):
        return self.dropout1(self.self_attn(x, x, x, need_weights=False)[0])

    def ff(self, x):
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, x):
        if self.norm_first:
            x = x + self.sa(self.norm1(x))
            return x + self.ff(self.norm2(x))
        x = self.norm1(x + self.sa(x))
        return self.norm2(x + self.ff(x))

    def backward(self, grad_output):
        g = grad_output  # dJ/d(output), (L, N, d_model)
        # The sub-blocks' backwards, from their modules' backwards, last module first:
        #   ff:  dropout2, linear2, dropout, activation, linear1 (each .backward(...) in turn);
        #   sa:  dropout1, then dq, dk, dv = self.self_attn.backward(d, None): the attention's
        #        x was its query, key and value at once, so its gradient is dq + dk + dv.
        # Post-norm, from the end: d = norm2.backward(g) is dJ/d(x1 + ff(x1)); x1 reaches it
        #   directly and through ff: dJ/dx1 = d + ff's backward of d. The same again with
        #   norm1 and sa for the layer's input.
        # Pre-norm: the output is x1 + ff(norm2(x1)): dJ/dx1 = g + norm2.backward(ff's
        #   backward of g); then the input: dJ/dx = dJ/dx1 + norm1.backward(sa's backward of
        #   dJ/dx1).
        # Return dJ/dx.
        raise NotImplementedError("write the backward: follow the steps above")
