"""Exercise: the backward of a 2-D convolution (stride 1, no padding), written with loops.

y[n, o, i, j] = b[o] + sum over c, a, e of W[o, c, a, e] * x[n, c, i + a, j + e]
Shapes: x (N, C, H, W), W (O, C, kH, kW), b (O,), y (N, O, H - kH + 1, W - kW + 1).
Check your work with:  handprop exercise check conv2d conv2d.py
"""

import numpy as np

from handprop import Module, Parameter


class Conv2d(Module):
    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__()
        rng = np.random.default_rng(0)
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight = Parameter(rng.standard_normal(shape) * 0.5)
        self.bias = Parameter(rng.standard_normal(out_channels) * 0.5)

    def forward(self, x):
        self.x = x  # kept for the backward
        n, _, h, w = x.shape
        o, _, kh, kw = self.weight.shape
        y = np.zeros((n, o, h - kh + 1, w - kw + 1))
        for i in range(y.shape[2]):
            for j in range(y.shape[3]):
                window = x[:, :, i : i + kh, j : j + kw]  # (N, C, kH, kW)
                y[:, :, i, j] = np.tensordot(window, self.weight.data, axes=([1, 2, 3], [1, 2, 3]))
        return y + self.bias.data.reshape(1, -1, 1, 1)

    def backward(self, grad_output):
        g = grad_output  # (N, O, Ho, Wo)
        # Step 1: dJ/db[o] = sum of g[:, o] over the batch and every position.
        # Step 2: loop over the output positions (i, j), as the forward does: the window
        #         x[:, :, i:i+kH, j:j+kW] met the weights W and gave y[:, :, i, j], so
        #         - dJ/dW gains, over the batch, g[:, :, i, j] times the window
        #           (np.tensordot over the batch axis), and
        #         - dJ/dx[:, :, i:i+kH, j:j+kW] gains g[:, :, i, j] times W, summed over the
        #           output channels (windows overlap: add, do not assign).
        # Step 3: store dJ/dW and dJ/db with accumulate_grad, return dJ/dx (shaped like x).
        raise NotImplementedError("write the backward: follow the steps above")
