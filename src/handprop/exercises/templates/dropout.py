"""Exercise: the backward of (inverted) dropout in training: each element is kept with
probability 1 - p and scaled by 1 / (1 - p), or zeroed.

Check your work with:  handprop exercise check dropout dropout.py
"""

import numpy as np

from handprop import Module


class Dropout(Module):
    def __init__(self, p=0.5):
        super().__init__()
        self.p = p
        self.rng = np.random.default_rng(0)

    def forward(self, x):
        self.mask = self.rng.random(x.shape) >= self.p  # True: kept; kept for the backward
        return x * self.mask / (1 - self.p)

    def backward(self, grad_output):
        # Step 1: a kept element is x / (1 - p): its derivative is 1 / (1 - p).
        # Step 2: a dropped element is 0 whatever x is: its derivative is 0.
        # Step 3: use the same mask as the forward: return grad_output * mask / (1 - p).
        raise NotImplementedError("write the backward: follow the steps above")
