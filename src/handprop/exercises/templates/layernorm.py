"""Exercise: the backward of layer normalisation over the last axis (each row alone):
y = weight * (x - mean) / sqrt(var + eps) + bias, mean and biased var over the row.

Check your work with:  handprop exercise check layernorm layernorm.py
"""

import numpy as np

from handprop import Module, Parameter


class LayerNorm(Module):
    def __init__(self, normalized_shape, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = Parameter(np.ones(normalized_shape))
        self.bias = Parameter(np.zeros(normalized_shape))

    def forward(self, x):
        mean, var = x.mean(axis=-1, keepdims=True), x.var(axis=-1, keepdims=True)
        self.inv_std = 1 / np.sqrt(var + self.eps)
        self.x_hat = (x - mean) * self.inv_std  # kept for the backward
        return self.weight.data * self.x_hat + self.bias.data

    def backward(self, grad_output):
        g = grad_output
        # Step 1: weight and bias are shared by all rows: dJ/dweight = sum over the rows of
        #         g * x_hat; dJ/dbias = sum of g. Store them with accumulate_grad.
        # Step 2: g_hat = g * weight, the gradient at x_hat.
        # Step 3: as in batch normalisation, but each row is its own batch: with n the row
        #         length and sums over the row (axis -1, keepdims),
        #         dJ/dx = inv_std / n * (n * g_hat - sum(g_hat) - x_hat * sum(g_hat * x_hat)).
        raise NotImplementedError("write the backward: follow the steps above")
