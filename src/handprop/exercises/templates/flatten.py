"""Exercise: the backward of Flatten, (N, C, H, W) -> (N, C * H * W), the bridge from the
convolutions to the Linear layers.

Check your work with:  handprop exercise check flatten flatten.py
"""

from handprop import Module


class Flatten(Module):
    def forward(self, x):
        self.shape = x.shape  # kept for the backward: only the shape is needed
        return x.reshape(len(x), -1)

    def backward(self, grad_output):
        # Step 1: flattening moves no number and changes none: each output is one input, so
        #         each input's gradient is its output's gradient.
        # Step 2: a gradient has the shape of what it is the gradient of: give grad_output
        #         the input's shape back.
        raise NotImplementedError("write the backward: follow the steps above")
