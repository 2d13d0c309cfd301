"""Exercise: the backward of batch normalisation in training for images, per channel:
y = weight * (x - mean) / sqrt(var + eps) + bias, mean and biased var over the batch and
both spatial axes (N, H, W) of each channel.

Check your work with:  handprop exercise check batchnorm2d batchnorm2d.py
"""

import numpy as np

from handprop import Module, Parameter

AXES = (0, 2, 3)  # every axis but the channel's


class BatchNorm2d(Module):
    def __init__(self, num_features, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = Parameter(np.ones(num_features))
        self.bias = Parameter(np.zeros(num_features))

    def forward(self, x):
        mean, var = x.mean(axis=AXES, keepdims=True), x.var(axis=AXES, keepdims=True)
        self.inv_std = 1 / np.sqrt(var + self.eps)
        self.x_hat = (x - mean) * self.inv_std  # kept for the backward
        w, b = self.weight.data.reshape(1, -1, 1, 1), self.bias.data.reshape(1, -1, 1, 1)
        return w * self.x_hat + b

    def backward(self, grad_output):
        g = grad_output
        # Step 1: dJ/dweight = sum over N, H, W of g * x_hat; dJ/dbias = sum of g: one number
        #         per channel, shape (C,). Store them with accumulate_grad.
        # Step 2: g_hat = g * weight (reshaped to (1, C, 1, 1)), the gradient at x_hat.
        # Step 3: BatchNorm1d's three terms, with m = N * H * W numbers per channel and sums
        #         over AXES (keepdims):
        #         dJ/dx = inv_std / m * (m * g_hat - sum(g_hat) - x_hat * sum(g_hat * x_hat)).
        raise NotImplementedError("write the backward: follow the steps above")
