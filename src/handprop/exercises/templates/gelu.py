"""Exercise: the backward of GELU, y = x * Phi(x), with Phi the standard normal distribution
function, Phi(x) = (1 + erf(x / sqrt(2))) / 2.

Check your work with:  handprop exercise check gelu gelu.py
"""

import math

import numpy as np

from handprop import Module

erf = np.vectorize(math.erf)  # NumPy has no erf; Python's, elementwise


class GELU(Module):
    def forward(self, x):
        self.x = x  # kept for the backward
        self.Phi = 0.5 * (1 + erf(x / math.sqrt(2)))
        return x * self.Phi

    def backward(self, grad_output):
        # Step 1: the product rule: dy/dx = Phi(x) + x * Phi'(x).
        # Step 2: Phi'(x) is the standard normal density, phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
        # Step 3: return grad_output times Phi(x) + x * phi(x), elementwise.
        raise NotImplementedError("write the backward: follow the steps above")
