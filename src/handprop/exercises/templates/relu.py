"""Exercise: the backward of ReLU, y = max(0, x), elementwise.

Check your work with:  handprop exercise check relu relu.py
"""

import numpy as np

from handprop import Module


class ReLU(Module):
    def forward(self, x):
        self.x = x  # kept for the backward
        return np.maximum(x, 0)

    def backward(self, grad_output):
        # Step 1: the derivative of max(0, x) is 1 where x > 0 and 0 where x < 0.
        # Step 2: at x = 0 exactly there is a kink and no derivative: torch takes 0 there.
        #         Which comparison gives that, x > 0 or x >= 0?
        # Step 3: return grad_output times that derivative, elementwise.
        raise NotImplementedError("write the backward: follow the steps above")
