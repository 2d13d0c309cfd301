"""Exercise: the backward of log-softmax over each row, y_j = x_j - log(sum_k exp(x_k)).

Check your work with:  handprop exercise check log_softmax log_softmax.py
"""

import numpy as np

from handprop import Module


class LogSoftmax(Module):
    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        shifted = x - x.max(axis=self.dim, keepdims=True)  # the same y, without overflow
        self.y = shifted - np.log(np.exp(shifted).sum(axis=self.dim, keepdims=True))
        return self.y  # kept for the backward: exp(y) is the softmax

    def backward(self, grad_output):
        g = grad_output
        # Step 1: dy_j/dx_i = [i == j] - softmax(x)_i: every output of a row depends on every
        #         input of it, through the log of the sum.
        # Step 2: dJ/dx_i = sum_j g_j ([i == j] - softmax_i) = g_i - softmax_i * sum_j g_j.
        # Step 3: softmax = exp(y); the row sums of g over self.dim, with keepdims.
        raise NotImplementedError("write the backward: follow the steps above")
