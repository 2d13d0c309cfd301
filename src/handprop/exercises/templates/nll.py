"""Exercise: the backward of the negative log-likelihood, J = mean over the rows of
-x[n, t_n], for log-probabilities x (a LogSoftmax's output) and the class t_n of each row.

The loss is called as loss(x, t) and its backward(grad) returns dJ/dx (times grad).
Check your work with:  handprop exercise check nll nll.py
"""

import numpy as np


class NLLLoss:
    reduction = "mean"

    def __call__(self, x, t):
        self.shape, self.t = x.shape, t  # kept for the backward: the shape and the classes
        return float(-x[np.arange(len(t)), t].mean())

    def backward(self, grad=1.0):
        # Step 1: J uses one number per row, x[n, t_n], with the factor -1/N (N rows): that
        #         is its derivative; every other element's is 0.
        # Step 2: start from zeros shaped like x and put -1/N at each row's class
        #         (x[np.arange(N), t] indexes them all at once).
        # Step 3: return grad times that.
        raise NotImplementedError("write the backward: follow the steps above")
