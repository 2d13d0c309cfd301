"""Exercise: the backward of a fully connected layer, y = x @ W.T + b.

Shapes: x (N, in_features), W (out_features, in_features), b (out_features,), y (N, out).
Check your work with:  handprop exercise check linear linear.py
"""

import numpy as np

from handprop import Module, Parameter


class Linear(Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        bound = 1 / np.sqrt(in_features)
        rng = np.random.default_rng(0)
        self.weight = Parameter(rng.uniform(-bound, bound, (out_features, in_features)))
        self.bias = Parameter(rng.uniform(-bound, bound, out_features))

    def forward(self, x):
        self.x = x  # kept for the backward
        return x @ self.weight.data.T + self.bias.data

    def backward(self, grad_output):
        g = grad_output  # dJ/dy, shape (N, out_features)
        # Step 1: dJ/dW. Each y[n, o] = sum_i x[n, i] W[o, i] + b[o], so dy[n, o]/dW[o, i] is
        #         x[n, i]; sum over the batch: a matrix product of g and x, shape (out, in).
        # Step 2: dJ/db. b is added to every row: sum g over the rows, shape (out,).
        # Step 3: store them with self.weight.accumulate_grad(...) and
        #         self.bias.accumulate_grad(...).
        # Step 4: return dJ/dx: dy[n, o]/dx[n, i] is W[o, i]; sum over the outputs o: a matrix
        #         product of g and W, shape (N, in) like x.
        raise NotImplementedError("write the backward: follow the steps above")
