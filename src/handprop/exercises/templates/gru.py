"""Exercise: backpropagation through time over a whole sequence: one GRU layer, one
direction, h_t = gru_step(...): the GRU cell's equations.

The backward of one step is given: gru_step_backward from handprop.layers.rnn (the cell
exercise's answer; read it there). This exercise is the loop around it, the heart of BPTT: the
steps in reverse order, the state's gradient carried from step t + 1 back to step t, and every
step's share of the parameter gradients added up (the same weights serve every step).

Shapes: x (T, N, input_size); output (T, N, H), every step's h_t; the last state h_n
(1, N, H); W_ih (G*H, input_size), W_hh (G*H, H), b_ih and b_hh (G*H,) with G*H = 3H.
Check your work with:  handprop exercise check gru gru.py
"""

import numpy as np

from handprop import Module, Parameter
from handprop.layers.rnn import gru_step, gru_step_backward


class GRU(Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        rng = np.random.default_rng(0)
        bound, rows = 1 / np.sqrt(hidden_size), 3 * hidden_size
        self.hidden_size = hidden_size
        self.weight_ih_l0 = Parameter(rng.uniform(-bound, bound, (rows, input_size)))
        self.weight_hh_l0 = Parameter(rng.uniform(-bound, bound, (rows, hidden_size)))
        self.bias_ih_l0 = Parameter(rng.uniform(-bound, bound, rows))
        self.bias_hh_l0 = Parameter(rng.uniform(-bound, bound, rows))

    def forward(self, x):
        n, H = x.shape[1], self.hidden_size
        w_hh, b_hh = self.weight_hh_l0.data, self.bias_hh_l0.data
        gx = x @ self.weight_ih_l0.data.T + self.bias_ih_l0.data  # every step's input share
        state = (np.zeros((n, H)),)  # (h,): zeros before the first step
        self.x, self.h_before, self.caches, outputs = x, [], [], []
        for t in range(len(x)):
            self.h_before.append(state[0])  # h_(t-1), for dJ/dW_hh
            state, cache = gru_step(gx[t], state, w_hh, b_hh)
            self.caches.append(cache)  # what step t's backward needs
            outputs.append(state[0])
        (h_n,) = state
        return np.stack(outputs), h_n[None]

    def backward(self, grad_output, grad_state):
        # grad_output (T, N, H): dJ/dh_t from the output at every step;
        # grad_state = dJ/dh_n, (1, N, H).
        # Step 1: d_state, the gradient reaching the last state:
        #         d_state = (grad_state[0],).
        # Step 2: for t from T - 1 down to 0:
        #         - dJ/dh_t has two sources: the output at step t (grad_output[t]) and step t + 1
        #           (d_state[0], carried back): add them into d_state's first entry;
        #         - dgx, dgh, d_state = gru_step_backward(d_state, self.caches[t], W_hh): the
        #           gates' gradients, and the tuple (dJ/dh,) of the state
        #           before: keep it for step t - 1;
        #         - step t's shares: dJ/dW_ih += dgx^T x[t], dJ/dW_hh += dgh^T h_before[t],
        #           dJ/db_ih += dgx and dJ/db_hh += dgh summed over the batch (accumulate_grad
        #           adds: call it at every step, or sum the steps first and call it once);
        #         - dJ/dx[t] = dgx @ W_ih.
        # Step 3: return dJ/dx, shape (T, N, input_size).
        raise NotImplementedError("write the backward: follow the steps above")
