"""Exercise: the backward of the mean absolute error, J = mean(|p - t|).

The loss is called as loss(p, t) and its backward(grad) returns dJ/dp (times grad).
Check your work with:  handprop exercise check l1 l1.py
"""

import numpy as np


class L1Loss:
    reduction = "mean"

    def __call__(self, p, t):
        self.p, self.t = p, t  # kept for the backward
        return float(np.mean(np.abs(p - t)))

    def backward(self, grad=1.0):
        # Step 1: for one element, d/dp |p - t| is +1 where p > t and -1 where p < t.
        # Step 2: where p == t, |p - t| has a kink and no derivative: torch takes 0 there,
        #         the sign of 0 (np.sign does the same).
        # Step 3: J is the mean: divide by p.size, and return grad times that.
        raise NotImplementedError("write the backward: follow the steps above")
