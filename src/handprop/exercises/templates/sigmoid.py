"""Exercise: the backward of the sigmoid, y = 1 / (1 + exp(-x)), elementwise.

Check your work with:  handprop exercise check sigmoid sigmoid.py
"""

import numpy as np

from handprop import Module


class Sigmoid(Module):
    def forward(self, x):
        self.y = 1 / (1 + np.exp(-x))  # kept for the backward: the derivative needs only y
        return self.y

    def backward(self, grad_output):
        # Step 1: d sigma / dx = sigma(x) (1 - sigma(x)) = y (1 - y), from the quotient rule.
        # Step 2: return grad_output times that, elementwise.
        raise NotImplementedError("write the backward: follow the steps above")
