"""Exercise: the backward of 2x2 max pooling with stride 2 (H and W even).

Check your work with:  handprop exercise check maxpool2d maxpool2d.py
"""

import numpy as np

from handprop import Module


class MaxPool2d(Module):
    def __init__(self, kernel_size=2):
        super().__init__()
        self.kernel_size = kernel_size

    def forward(self, x):
        self.x = x  # kept for the backward
        n, c, h, w = x.shape
        windows = x.reshape(n, c, h // 2, 2, w // 2, 2)
        return windows.max(axis=(3, 5))

    def backward(self, grad_output):
        # Step 1: a window's output is one of its four inputs: the derivative is 1 for that
        #         input and 0 for the three others.
        # Step 2: on a tie, torch gives the gradient to the first maximum in row-major order
        #         (top-left, top-right, bottom-left, bottom-right), and to nobody else.
        # Step 3: build dJ/dx, shaped like x, with each window's gradient at its chosen input.
        raise NotImplementedError("write the backward: follow the steps above")
