"""Exercise: the backward of batch normalisation in training, per feature (column):
y = weight * (x - mean) / sqrt(var + eps) + bias, mean and biased var over the batch.

Check your work with:  handprop exercise check batchnorm1d batchnorm1d.py
"""

import numpy as np

from handprop import Module, Parameter


class BatchNorm1d(Module):
    def __init__(self, num_features, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = Parameter(np.ones(num_features))
        self.bias = Parameter(np.zeros(num_features))

    def forward(self, x):
        mean, var = x.mean(axis=0), x.var(axis=0)
        self.inv_std = 1 / np.sqrt(var + self.eps)
        self.x_hat = (x - mean) * self.inv_std  # kept for the backward
        return self.weight.data * self.x_hat + self.bias.data

    def backward(self, grad_output):
        g = grad_output
        # Step 1: dJ/dweight = sum over the batch of g * x_hat; dJ/dbias = sum of g.
        #         Store them with accumulate_grad.
        # Step 2: g_hat = g * weight, the gradient at x_hat.
        # Step 3: the mean and the variance depend on every x of the column, so dJ/dx has
        #         three terms: with m = the batch size,
        #         dJ/dx = inv_std / m * (m * g_hat - sum(g_hat) - x_hat * sum(g_hat * x_hat)).
        raise NotImplementedError("write the backward: follow the steps above")
