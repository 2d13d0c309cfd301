"""Exercise: the backward of the binary cross-entropy, J = mean(-(t log p + (1 - t) log(1 - p))).

The loss is called as loss(p, t) and its backward(grad) returns dJ/dp (times grad, the
gradient of what uses J, 1 when J is the cost).
Check your work with:  handprop exercise check bce bce.py
"""

import numpy as np


class BCELoss:
    reduction = "mean"

    def __call__(self, p, t):
        self.p, self.t = p, t  # kept for the backward
        return float(np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p))))

    def backward(self, grad=1.0):
        # Step 1: for one element, d/dp of -(t log p + (1 - t) log(1 - p)) is
        #         -t / p + (1 - t) / (1 - p).
        # Step 2: J is the mean over all elements: divide by their number, p.size.
        # Step 3: return grad times that, an array shaped like p.
        raise NotImplementedError("write the backward: follow the steps above")
