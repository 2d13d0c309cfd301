"""Exercise: the backward of one step of a recurrent network,
h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh).

Shapes: x (N, input_size), h and h' (N, hidden_size), W_ih (hidden, input), W_hh (hidden,
hidden), b_ih and b_hh (hidden,). Backpropagation through time calls this backward once per
time step, last step first; each call adds its share into the weights' .grad.
Check your work with:  handprop exercise check rnn_cell rnn_cell.py
"""

import numpy as np

from handprop import Module, Parameter


class RNNCell(Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        rng = np.random.default_rng(0)
        bound = 1 / np.sqrt(hidden_size)
        self.weight_ih = Parameter(rng.uniform(-bound, bound, (hidden_size, input_size)))
        self.weight_hh = Parameter(rng.uniform(-bound, bound, (hidden_size, hidden_size)))
        self.bias_ih = Parameter(rng.uniform(-bound, bound, hidden_size))
        self.bias_hh = Parameter(rng.uniform(-bound, bound, hidden_size))

    def forward(self, x, h):
        self.x, self.h = x, h  # kept for the backward
        z = x @ self.weight_ih.data.T + self.bias_ih.data + h @ self.weight_hh.data.T
        self.h_new = np.tanh(z + self.bias_hh.data)
        return self.h_new

    def backward(self, grad_output):
        g = grad_output  # dJ/dh', shape (N, hidden_size)
        # Step 1: dz, through the tanh: its derivative is 1 - h'^2 (from the output).
        # Step 2: z = x W_ih^T + b_ih + h W_hh^T + b_hh is two Linear layers summed: dJ/dW_ih
        #         from dz and x, dJ/dW_hh from dz and h (each a matrix product, shape of the
        #         weight); dJ/db_ih and dJ/db_hh: dz summed over the batch. Store each with
        #         accumulate_grad: the same cell runs at every time step, and .grad must hold
        #         the sum over the steps.
        # Step 3: return (dJ/dx, dJ/dh): dz times W_ih, and dz times W_hh. Do not drop dJ/dh:
        #         it is the path back to the step before.
        raise NotImplementedError("write the backward: follow the steps above")
