"""Exercise: the backward of the leaky ReLU, y = x where x > 0, negative_slope * x elsewhere.

Check your work with:  handprop exercise check leaky_relu leaky_relu.py
"""

import numpy as np

from handprop import Module


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        self.x = x  # kept for the backward
        return np.where(x > 0, x, self.negative_slope * x)

    def backward(self, grad_output):
        # Step 1: the derivative is 1 where x > 0 and negative_slope where x < 0.
        # Step 2: at the kink x = 0 there is no derivative; torch takes the left slope,
        #         negative_slope (its test is x > 0, as in the forward).
        # Step 3: return grad_output times that, elementwise.
        raise NotImplementedError("write the backward: follow the steps above")
