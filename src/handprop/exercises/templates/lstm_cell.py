"""Exercise: the backward of one step of an LSTM, torch's gate order i, f, g, o:

    z = x W_ih^T + b_ih + h W_hh^T + b_hh               (N, 4H), four blocks of H columns
    i = sigmoid(z_i), f = sigmoid(z_f), g = tanh(z_g), o = sigmoid(z_o)
    c' = f * c + i * g
    h' = o * tanh(c')

Shapes: x (N, input_size); h, c, h', c' (N, hidden_size); W_ih (4H, input_size), W_hh (4H, H),
b_ih and b_hh (4H,): the rows of i, f, g and o one under the other.
Check your work with:  handprop exercise check lstm_cell lstm_cell.py
"""

import numpy as np

from handprop import Module, Parameter


class LSTMCell(Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        rng = np.random.default_rng(0)
        bound, rows = 1 / np.sqrt(hidden_size), 4 * hidden_size
        self.hidden_size = hidden_size
        self.weight_ih = Parameter(rng.uniform(-bound, bound, (rows, input_size)))
        self.weight_hh = Parameter(rng.uniform(-bound, bound, (rows, hidden_size)))
        self.bias_ih = Parameter(rng.uniform(-bound, bound, rows))
        self.bias_hh = Parameter(rng.uniform(-bound, bound, rows))

    def forward(self, x, state):
        h, c = state
        H = self.hidden_size
        z = x @ self.weight_ih.data.T + self.bias_ih.data + h @ self.weight_hh.data.T
        z = z + self.bias_hh.data
        s = 1 / (1 + np.exp(-z))
        self.i, self.f, self.o = s[:, :H], s[:, H : 2 * H], s[:, 3 * H :]
        self.g = np.tanh(z[:, 2 * H : 3 * H])
        self.x, self.h, self.c = x, h, c  # kept for the backward
        self.c_new = self.f * c + self.i * self.g
        self.tanh_c = np.tanh(self.c_new)
        return self.o * self.tanh_c, self.c_new

    def backward(self, grad_h, grad_c):
        # grad_h = dJ/dh', grad_c = dJ/dc' (from the next step), each (N, hidden_size)
        # Step 1: dc, everything that reaches c': grad_c, plus the path through
        #         h' = o * tanh(c'): grad_h * o * (1 - tanh(c')^2).
        # Step 2: each gate's pre-activation gradient: dz_i = dc * g * i (1 - i),
        #         dz_f = dc * c * f (1 - f), dz_g = dc * i * (1 - g^2),
        #         dz_o = grad_h * tanh(c') * o (1 - o). Put them side by side in torch's
        #         order, np.concatenate([dz_i, dz_f, dz_g, dz_o], axis=1): dz (N, 4H).
        # Step 3: as for RNNCell: dJ/dW_ih = dz^T x, dJ/dW_hh = dz^T h, each bias the sum of dz
        #         over the batch; store each with accumulate_grad.
        # Step 4: return (dJ/dx, (dJ/dh, dJ/dc)): dz times W_ih, dz times W_hh, and dc * f
        #         (the cell state's path back to the step before).
        raise NotImplementedError("write the backward: follow the steps above")
