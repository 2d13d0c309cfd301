"""Exercise: the backward of one step of a GRU, torch's gate order r, z, n:

    gx = x W_ih^T + b_ih,  gh = h W_hh^T + b_hh             (N, 3H), blocks r, z, n
    r = sigmoid(gx_r + gh_r),  z = sigmoid(gx_z + gh_z)
    n = tanh(gx_n + r * gh_n)                                the reset gate inside, on gh_n
    h' = (1 - z) * n + z * h

Shapes: x (N, input_size); h, h' (N, hidden_size); W_ih (3H, input_size), W_hh (3H, H), b_ih and
b_hh (3H,): the rows of r, z and n one under the other.
Check your work with:  handprop exercise check gru_cell gru_cell.py
"""

import numpy as np

from handprop import Module, Parameter


class GRUCell(Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        rng = np.random.default_rng(0)
        bound, rows = 1 / np.sqrt(hidden_size), 3 * hidden_size
        self.hidden_size = hidden_size
        self.weight_ih = Parameter(rng.uniform(-bound, bound, (rows, input_size)))
        self.weight_hh = Parameter(rng.uniform(-bound, bound, (rows, hidden_size)))
        self.bias_ih = Parameter(rng.uniform(-bound, bound, rows))
        self.bias_hh = Parameter(rng.uniform(-bound, bound, rows))

    def forward(self, x, h):
        H = self.hidden_size
        gx = x @ self.weight_ih.data.T + self.bias_ih.data
        gh = h @ self.weight_hh.data.T + self.bias_hh.data
        s = 1 / (1 + np.exp(-(gx + gh)))
        self.r, self.z = s[:, :H], s[:, H : 2 * H]
        self.gh_n = gh[:, 2 * H :]
        self.n = np.tanh(gx[:, 2 * H :] + self.r * self.gh_n)
        self.x, self.h = x, h  # kept for the backward
        return (1 - self.z) * self.n + self.z * self.h

    def backward(self, grad_output):
        g = grad_output  # dJ/dh', shape (N, hidden_size)
        # Step 1: dn = g * (1 - z) * (1 - n^2): through h' and the tanh.
        # Step 2: the gates: dz_r = dn * gh_n * r (1 - r); dz_z = g * (h - n) * z (1 - z).
        # Step 3: the input side's gradient is dgx = [dz_r, dz_z, dn] side by side (N, 3H); the
        #         hidden side's is dgh = [dz_r, dz_z, dn * r]: r multiplies gh_n, not gx_n.
        # Step 4: dJ/dW_ih = dgx^T x, dJ/dW_hh = dgh^T h, dJ/db_ih and dJ/db_hh their sums over
        #         the batch; store each with accumulate_grad.
        # Step 5: return (dJ/dx, dJ/dh): dgx times W_ih, and g * z + dgh times W_hh (h reaches h'
        #         directly, and through the gates).
        raise NotImplementedError("write the backward: follow the steps above")
