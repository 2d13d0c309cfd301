"""Exercise: a block that uses one Linear twice, y = f(f(x)): its backward.

The same weights are used twice, so they reach the cost along two paths: their gradient is the
sum of both uses' shares (see docs/blocks.md).
Check your work with:  handprop exercise check twice twice.py
"""

import numpy as np

from handprop import Module
from handprop.layers import Linear


class Twice(Module):
    def __init__(self, features):
        super().__init__()
        self.f = Linear(features, features, dtype=np.float64)

    def forward(self, x):
        return self.f(self.f(x))  # the same Linear, used twice

    def backward(self, grad_output):
        # Step 1: the chain rule walks back from the last use: self.f.backward(grad_output)
        #         consumes the second use (the most recent forward) and returns dJ/dh, the
        #         gradient of the first use's output.
        # Step 2: self.f.backward(dJ/dh) consumes the first use and returns dJ/dx.
        #         Each call adds its use's share into self.f.weight.grad: never set .grad
        #         yourself, or one use's share would replace the other's.
        # Step 3: return dJ/dx.
        raise NotImplementedError("write the backward: follow the steps above")
