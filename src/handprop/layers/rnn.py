"""Recurrent layers, as torch's ``nn/modules/rnn.py``: the cells ``RNNCell``, ``LSTMCell`` and
``GRUCell`` (one time step), and the full layers ``RNN``, ``LSTM`` and ``GRU`` (a whole
sequence, stacked layers, both directions).

The file reads in three parts:

1. **One time step, forward and backward**: ``rnn_step``/``rnn_step_backward``,
   ``lstm_step``/``lstm_step_backward``, ``gru_step``/``gru_step_backward``. These are the cell
   equations, each backward one short function with its formula and shapes. Both the cells and
   the full layers call them, so a learner reads each equation once.
2. **The cells**: one step per call. Used in a Python loop, the contract keeps each step's
   forward pending, and the backwards, called last step first, add each step's share into
   ``.grad``: that is backpropagation through time (BPTT) written by the learner.
3. **The full layers**: the same steps in a loop over time, for every layer and direction. The
   input projection ``x W_ih^T + b_ih`` of all time steps is one matrix product before the loop
   (it does not depend on ``h``), and so are the weight gradients after the backward loop.

Every step function takes ``gx = x W_ih^T + b_ih``, the input's share of the gates, already
computed. Each step backward returns ``(dgx, dgh, d_state)``: the gradient of the gates'
input share (from which ``dJ/dW_ih``, ``dJ/db_ih`` and ``dJ/dx`` follow), of their hidden share
(``dJ/dW_hh``, ``dJ/db_hh``; the same array but for the GRU, whose reset gate multiplies the
hidden share of ``n``), and of the state before: the path back to the previous step.
See docs/layers/rnn_cell.md, lstm_cell.md, gru_cell.md and recurrent.md.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from .._arrays import as_float_array, float_dtype, shape_str
from ..module import Module, Parameter
from ._functional import _positive_int, sigmoid

_NONLINEARITIES = ("tanh", "relu")

# -- 1. one time step: the cell equations --------------------------------------------------------
#
# Shapes: N the batch, H the hidden size; gx and the gates (N, G*H) with G = 1 (RNN), 4 (LSTM)
# or 3 (GRU); weight_hh (G*H, H); bias_hh (G*H,) or None; h and c (N, H).


def rnn_step(gx, state, weight_hh, bias_hh, nonlinearity="tanh"):
    """``h' = tanh(z)`` (or ``relu(z)``), ``z = gx + h W_hh^T + b_hh``, ``gx = x W_ih^T + b_ih``.

    ``state`` is ``(h,)``; returns ``((h',), h')``: the new state, and what the backward needs.
    """
    (h,) = state
    z = h @ weight_hh.T  # (summed in torch's order: gx + (h W_hh^T + b_hh), in place)
    if bias_hh is not None:
        z += bias_hh
    z += gx
    h_new = np.tanh(z) if nonlinearity == "tanh" else np.maximum(z, 0)
    return (h_new,), h_new


def rnn_step_backward(d_state, h_new, weight_hh, nonlinearity="tanh"):
    """With ``g = dJ/dh'`` (N, H): ``dz = g * (1 - h'^2)`` (tanh; relu: ``g`` where ``h' > 0``),
    and ``dJ/dh = dz W_hh``  (N, H) @ (H, H). Returns ``(dz, dz, (dJ/dh,))``."""
    (g,) = d_state
    dz = g * (1 - h_new * h_new) if nonlinearity == "tanh" else g * (h_new > 0)
    return dz, dz, (dz @ weight_hh,)


def lstm_step(gx, state, weight_hh, bias_hh):
    """An LSTM step, torch's gate order ``i, f, g, o``:

    ``z = gx + h W_hh^T + b_hh``  (N, 4H), cut into four (N, H) blocks;
    ``i = sigma(z_i)``, ``f = sigma(z_f)``, ``g = tanh(z_g)``, ``o = sigma(z_o)``;
    ``c' = f * c + i * g``;  ``h' = o * tanh(c')``.

    ``state`` is ``(h, c)``; returns ``((h', c'), (c, gates, tanh(c')))``, ``gates`` the four
    activated blocks side by side (N, 4H).
    """
    h, c = state
    n = h.shape[-1]
    z = h @ weight_hh.T  # (summed in torch's order: gx + (h W_hh^T + b_hh), in place)
    if bias_hh is not None:
        z += bias_hh
    z += gx
    gates = sigmoid(z)  # i, f and o; then g, the candidate, through tanh instead
    gates[:, 2 * n : 3 * n] = np.tanh(z[:, 2 * n : 3 * n])
    i, f, g, o = gates[:, :n], gates[:, n : 2 * n], gates[:, 2 * n : 3 * n], gates[:, 3 * n :]
    c_new = f * c + i * g
    tanh_c = np.tanh(c_new)
    return (o * tanh_c, c_new), (c, gates, tanh_c)


def lstm_step_backward(d_state, cache, weight_hh):
    """With ``dh' = dJ/dh'`` and ``dc' = dJ/dc'`` from later (N, H):

    - ``dc = dc' + dh' * o * (1 - tanh(c')^2)``: the cell state's two paths, added;
    - ``dz_i = dc * g * i(1 - i)``, ``dz_f = dc * c * f(1 - f)``, ``dz_g = dc * i * (1 - g^2)``,
      ``dz_o = dh' * tanh(c') * o(1 - o)``, side by side as ``dz`` (N, 4H);
    - ``dJ/dh = dz W_hh``  (N, 4H) @ (4H, H), and ``dJ/dc = dc * f``.

    Returns ``(dz, dz, (dJ/dh, dJ/dc))``.
    """
    dh_new = d_state[0]
    c, gates, tanh_c = cache
    n = c.shape[-1]
    i, f, g, o = gates[:, :n], gates[:, n : 2 * n], gates[:, 2 * n : 3 * n], gates[:, 3 * n :]
    dc = lstm_cell_state_gradient(d_state, cache)
    dz = np.empty_like(gates)
    dz[:, :n] = dc * g * i * (1 - i)
    dz[:, n : 2 * n] = dc * c * f * (1 - f)
    dz[:, 2 * n : 3 * n] = dc * i * (1 - g * g)
    dz[:, 3 * n :] = dh_new * tanh_c * o * (1 - o)
    return dz, dz, (dz @ weight_hh, dc * f)


def lstm_cell_state_gradient(d_state, cache):
    """``dJ/dc'`` in total, ``dc' + dh' * o * (1 - tanh(c')^2)``: what comes from the next step
    along the cell state, and what comes through ``h' = o * tanh(c')`` (N, H)."""
    dh_new, dc_new = d_state
    _, gates, tanh_c = cache
    o = gates[:, 3 * tanh_c.shape[-1] :]
    return dc_new + dh_new * o * (1 - tanh_c * tanh_c)


def gru_step(gx, state, weight_hh, bias_hh):
    """A GRU step, torch's gate order ``r, z, n``, with ``b_hn`` inside the reset product:

    ``gh = h W_hh^T + b_hh``  (N, 3H), cut as ``gx`` into ``r, z, n`` blocks;
    ``r = sigma(gx_r + gh_r)``, ``z = sigma(gx_z + gh_z)``, ``n = tanh(gx_n + r * gh_n)``;
    ``h' = (1 - z) * n + z * h``.

    ``state`` is ``(h,)``; returns ``((h',), (h, gates, gh_n))``, ``gates`` the activated
    ``r, z, n`` side by side (N, 3H).
    """
    (h,) = state
    k = h.shape[-1]
    gh = h @ weight_hh.T
    if bias_hh is not None:
        gh += bias_hh
    gates = sigmoid(gx + gh)  # r and z; then n, through tanh, with r inside
    gh_n = gh[:, 2 * k :]
    gates[:, 2 * k :] = np.tanh(gx[:, 2 * k :] + gates[:, :k] * gh_n)
    z, n = gates[:, k : 2 * k], gates[:, 2 * k :]
    return (n + z * (h - n),), (h, gates, gh_n)


def gru_step_backward(d_state, cache, weight_hh):
    """With ``g = dJ/dh'`` (N, H):

    - ``dn = g * (1 - z) * (1 - n^2)``: through ``h'`` and the tanh;
    - ``dz_r = dn * gh_n * r(1 - r)``, ``dz_z = g * (h - n) * z(1 - z)``: the gates' inputs;
    - the input share ``dgx = [dz_r, dz_z, dn]`` and the hidden share
      ``dgh = [dz_r, dz_z, dn * r]`` (N, 3H): ``r`` multiplies ``gh_n``, not ``gx_n``;
    - ``dJ/dh = g * z + dgh W_hh``: the direct path, and the path through the gates.

    Returns ``(dgx, dgh, (dJ/dh,))``.
    """
    (g,) = d_state
    h, gates, gh_n = cache
    k = h.shape[-1]
    r, z, n = gates[:, :k], gates[:, k : 2 * k], gates[:, 2 * k :]
    dn = g * (1 - z) * (1 - n * n)
    dgx = np.empty_like(gates)
    dgx[:, :k] = dn * gh_n * r * (1 - r)
    dgx[:, k : 2 * k] = g * (h - n) * z * (1 - z)
    dgx[:, 2 * k :] = dn
    dgh = dgx.copy()
    dgh[:, 2 * k :] = dn * r
    return dgx, dgh, (g * z + dgh @ weight_hh,)


# -- what the cells and the full layers share ----------------------------------------------------


def _check_nonlinearity(value: Any) -> str:
    if value not in _NONLINEARITIES:
        raise ValueError(f"Unknown nonlinearity '{value}'. Select from 'tanh' or 'relu'.")
    return value


class _Recurrent(Module):
    """What every recurrent module shares: its kind (how many gate blocks, how many state
    arrays, which step functions), its dtype and torch's initialisation."""

    _gates = 1  # G: the gate blocks of W_ih and W_hh (RNN 1, LSTM 4, GRU 3)
    _gate_names: tuple[str, ...] = ("h",)  # the blocks, in torch's order, as the docs name them
    _states = 1  # the state arrays: (h,), or (h, c) for an LSTM

    @property
    def dtype(self) -> np.dtype:
        return next(iter(self._parameters.values())).dtype

    def reset_parameters(self, rng: int | np.random.Generator | None = None) -> None:
        """Draw every weight and bias from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        rng = np.random.default_rng(rng)
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            p.data[...] = rng.uniform(-bound, bound, size=p.shape)

    def _step(self, gx, state, weight_hh, bias_hh):
        return rnn_step(gx, state, weight_hh, bias_hh, self.nonlinearity)

    def _step_backward(self, d_state, cache, weight_hh):
        return rnn_step_backward(d_state, cache, weight_hh, self.nonlinearity)

    def _reaching(self, d_state, cache):
        """The gradient of each state at a step in total (an LSTM adds ``c``'s two paths)."""
        return d_state

    def _state_arrays(self, hx: Any, expected: tuple, unbatched: bool) -> tuple:
        """The state given (``h``, or ``(h, c)`` for an LSTM) as arrays of the ``expected``
        batched shape, or zeros when it is left out."""
        if hx is None:
            return tuple(np.zeros(expected, self.dtype) for _ in range(self._states))
        if self._states == 2 and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(f"{self!r}: hx must be a tuple (h, c), got {type(hx).__name__}")
        parts = tuple(hx) if self._states == 2 else (hx,)
        names = ("h", "c") if self._states == 2 else ("hx",)
        arrays = []
        for name, part in zip(names, parts, strict=True):
            a = as_float_array(part, self, name, self.dtype)
            a = a[..., None, :] if unbatched and a.ndim >= 1 else a
            if a.shape != expected:
                shown = expected[:-2] + expected[-1:] if unbatched else expected
                raise ValueError(
                    f"{self!r}: expected {name} of shape {shape_str(shown)} for this input, got "
                    f"{shape_str(np.shape(part))}"
                )
            arrays.append(a)
        return tuple(arrays)


def _state_shapes(owner: str, gates: int, input_size, hidden_size, bias, dtype, layers=()):
    """``weight_ih`` (G*H, in), ``weight_hh`` (G*H, H), ``bias_ih`` and ``bias_hh`` (G*H,) for
    each suffix in ``layers`` (``("_l0", ...)`` for a full layer, ``("",)`` for a cell), with
    the input size of each."""
    h = _positive_int(hidden_size, owner, "hidden_size")
    dtype = float_dtype(dtype, owner)
    shapes = {}
    for suffix, inputs in layers:
        shapes[f"weight_ih{suffix}"] = ((gates * h, inputs), dtype, "parameter")
        shapes[f"weight_hh{suffix}"] = ((gates * h, h), dtype, "parameter")
        if bias:
            shapes[f"bias_ih{suffix}"] = ((gates * h,), dtype, "parameter")
            shapes[f"bias_hh{suffix}"] = ((gates * h,), dtype, "parameter")
    return shapes


# -- 2. the cells: one time step per call --------------------------------------------------------


class _Cell(_Recurrent):
    """A cell: ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh`` and one step per call."""

    _cache = ("_x", "_h", "_step_cache", "_given", "_unbatched")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        dtype: Any = np.float32,
        rng: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        self.input_size = _positive_int(input_size, owner, "input_size")
        self.hidden_size = _positive_int(hidden_size, owner, "hidden_size")
        self.bias = bool(bias)
        shapes = _state_shapes(owner, self._gates, input_size, hidden_size, bias, dtype,
                               [("", self.input_size)])  # fmt: skip
        for name, (shape, kind, _) in shapes.items():
            setattr(self, name, Parameter(np.empty(shape, kind)))
        if not bias:
            self.bias_ih = self.bias_hh = None
        self.reset_parameters(rng)

    @classmethod
    def state_shapes(cls, input_size, hidden_size, bias=True, dtype=np.float32, **others):
        """``weight_ih`` (G*H, in), ``weight_hh`` (G*H, H), ``bias_ih`` and ``bias_hh`` (G*H,),
        without allocating them (G: 1 for RNNCell, 4 for LSTMCell, 3 for GRUCell)."""
        inputs = _positive_int(input_size, cls.__name__, "input_size")
        return _state_shapes(cls.__name__, cls._gates, inputs, hidden_size, bias, dtype,
                             [("", inputs)])  # fmt: skip

    def forward(self, input: Any, hx: Any = None) -> Any:
        """``gx = x W_ih^T + b_ih``, then one step of the cell's equations."""
        x = as_float_array(input, self, "input", self.dtype)
        unbatched = x.ndim == 1
        x = x[None] if unbatched else x
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ValueError(
                f"{self!r}: expected input of shape (N, {self.input_size}) or "
                f"({self.input_size},), got {shape_str(np.shape(input))}"
            )
        state = self._state_arrays(hx, (x.shape[0], self.hidden_size), unbatched)
        gx = x @ self.weight_ih.data.T
        if self.bias:
            gx += self.bias_ih.data
        bias_hh = self.bias_hh.data if self.bias else None
        new, self._step_cache = self._step(gx, state, self.weight_hh.data, bias_hh)
        self._x, self._h = x, state[0]
        self._given, self._unbatched = hx is not None, unbatched
        new = tuple(s[0] for s in new) if unbatched else new
        return new if self._states == 2 else new[0]

    def backward(self, grad_output: Any, *grad_c: Any) -> Any:
        """One step back, with ``dgx``, ``dgh`` from the step's backward:

        - ``dJ/dW_ih += dgx^T x``  (G*H, N) @ (N, in);  ``dJ/dW_hh += dgh^T h``  (G*H, N) @ (N, H);
        - ``dJ/db_ih += dgx`` and ``dJ/db_hh += dgh``, each summed over the batch;
        - ``dJ/dx = dgx W_ih``  (N, in), and the state's gradient from the step's backward.

        Returns ``dJ/dx``, or with the state given ``(dJ/dx, dJ/dh)`` (LSTMCell:
        ``(dJ/dx, (dJ/dh, dJ/dc))``).
        """
        x, unbatched = self._x, self._unbatched
        shape = (self.hidden_size,) if unbatched else (len(x), self.hidden_size)
        d_state = tuple(
            self._grad_output(g, shape, self.dtype).reshape(len(x), self.hidden_size)
            for g in (grad_output, *grad_c)
        )
        dgx, dgh, d_before = self._step_backward(d_state, self._step_cache, self.weight_hh.data)
        self.weight_ih.accumulate_grad(dgx.T @ x)
        self.weight_hh.accumulate_grad(dgh.T @ self._h)
        if self.bias:
            self.bias_ih.accumulate_grad(dgx.sum(axis=0))
            self.bias_hh.accumulate_grad(dgh.sum(axis=0))
        dx = dgx @ self.weight_ih.data
        if unbatched:
            dx, d_before = dx[0], tuple(d[0] for d in d_before)
        if not self._given:
            return dx
        return (dx, d_before) if self._states == 2 else (dx, d_before[0])

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            text += ", bias=False"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            text += f", nonlinearity={self.nonlinearity}"
        return text


class RNNCell(_Cell):
    """One step of an Elman recurrent network: ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)``.

    Args:
        input_size: the size of each input ``x``.
        hidden_size: the size of the hidden state ``h``.
        bias: learn the biases ``b_ih`` and ``b_hh`` (default True).
        nonlinearity: ``"tanh"`` (default) or ``"relu"``.
        dtype: ``np.float32`` (default, like torch) or ``np.float64``.
        rng: seed (int) or ``np.random.Generator`` for the initial values; None draws fresh
            entropy.

    Every weight and bias starts uniform in ``[-1/sqrt(hidden_size), 1/sqrt(hidden_size)]``,
    torch's initialisation.

    Shape:
        - Input ``x``: ``(N, input_size)``, or ``(input_size,)`` for one sample
        - ``hx``: ``(N, hidden_size)`` (``(hidden_size,)``), the state before; zeros if left out
        - Output ``h'``: ``(N, hidden_size)`` (``(hidden_size,)``)
        - ``weight_ih``: ``(hidden_size, input_size)``, ``weight_hh``: ``(hidden_size,
          hidden_size)``, ``bias_ih`` and ``bias_hh``: ``(hidden_size,)``

    Backward: ``cell.backward(dh')`` returns ``dJ/dx``, or ``(dJ/dx, dJ/dhx)`` when ``hx`` was
    passed (the state before gets its gradient: the path back to the previous step). The step
    itself is ``rnn_step`` and ``rnn_step_backward`` above, which ``RNN`` runs too.

    Examples:
        >>> cell = RNNCell(3, 2, rng=0)
        >>> xs = np.ones((4, 5, 3))          # 4 time steps of a batch of 5
        >>> h = cell(xs[0])                  # the first step: hx is zeros
        >>> for x in xs[1:]:
        ...     h = cell(x, h)               # the same cell, the same weights, every step
        >>> dh = np.ones((5, 2))
        >>> for _ in range(3):               # backpropagation through time: last step first
        ...     dx, dh = cell.backward(dh)
        >>> dx = cell.backward(dh)           # the first step: no hx, so dJ/dx alone
        >>> cell.weight_hh.grad.shape        # the sum of every step's share
        (2, 2)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        *,
        dtype: Any = np.float32,
        rng: int | np.random.Generator | None = None,
    ) -> None:
        _check_nonlinearity(nonlinearity)
        super().__init__(input_size, hidden_size, bias, dtype=dtype, rng=rng)
        self.nonlinearity = nonlinearity


class LSTMCell(_Cell):
    """One step of a long short-term memory network, torch's gates ``i, f, g, o``:
    ``i, f, o = sigma(.)``, ``g = tanh(.)`` of ``x W_ih^T + b_ih + h W_hh^T + b_hh`` cut in four;
    ``c' = f * c + i * g``; ``h' = o * tanh(c')``.

    Args:
        input_size: the size of each input ``x``.
        hidden_size: the size of the state.
        bias: learn the biases ``b_ih`` and ``b_hh`` (default True).
        dtype: ``np.float32`` (default, like torch) or ``np.float64``.
        rng: seed (int) or ``np.random.Generator`` for the initial values (torch's
            initialisation, as ``RNNCell``'s); None draws fresh entropy.

    Shape:
        - Input ``x``: ``(N, input_size)``, or ``(input_size,)`` for one sample
        - ``hx``: the tuple ``(h, c)``, each ``(N, hidden_size)`` (``(hidden_size,)``); zeros if
          left out
        - Output: the tuple ``(h', c')``, each ``(N, hidden_size)`` (``(hidden_size,)``)
        - ``weight_ih``: ``(4 * hidden_size, input_size)``, ``weight_hh``: ``(4 * hidden_size,
          hidden_size)``, ``bias_ih`` and ``bias_hh``: ``(4 * hidden_size,)``: the blocks of
          ``i``, ``f``, ``g`` and ``o``, one under the other

    Backward: one gradient per output, ``cell.backward(dh', dc')`` (``None`` for one that does
    not reach the loss); returns ``dJ/dx``, or ``(dJ/dx, (dJ/dh, dJ/dc))`` when ``hx`` was passed.
    The step itself is ``lstm_step`` and ``lstm_step_backward`` above, which ``LSTM`` runs too.

    Examples:
        >>> cell = LSTMCell(3, 2, rng=0)
        >>> h, c = cell(np.ones((5, 3)))                 # the first step: zeros for (h, c)
        >>> h, c = cell(np.ones((5, 3)), (h, c))
        >>> dx, (dh, dc) = cell.backward(np.ones((5, 2)), None)   # the second step, first
        >>> dx = cell.backward(dh, dc)
        >>> cell.weight_ih.shape
        (8, 3)
    """

    _gates, _gate_names, _states = 4, ("i", "f", "g", "o"), 2

    def _step(self, gx, state, weight_hh, bias_hh):
        return lstm_step(gx, state, weight_hh, bias_hh)

    def _step_backward(self, d_state, cache, weight_hh):
        return lstm_step_backward(d_state, cache, weight_hh)


class GRUCell(_Cell):
    """One step of a gated recurrent unit, torch's gates ``r, z, n``:
    ``r = sigma(x W_ir^T + b_ir + h W_hr^T + b_hr)``, ``z`` the same with its blocks,
    ``n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))``, ``h' = (1 - z) * n + z * h``.

    Args:
        input_size: the size of each input ``x``.
        hidden_size: the size of the state.
        bias: learn the biases ``b_ih`` and ``b_hh`` (default True).
        dtype: ``np.float32`` (default, like torch) or ``np.float64``.
        rng: seed (int) or ``np.random.Generator`` for the initial values (torch's
            initialisation, as ``RNNCell``'s); None draws fresh entropy.

    Shape:
        - Input ``x``: ``(N, input_size)``, or ``(input_size,)`` for one sample
        - ``hx``: ``(N, hidden_size)`` (``(hidden_size,)``), the state before; zeros if left out
        - Output ``h'``: ``(N, hidden_size)`` (``(hidden_size,)``)
        - ``weight_ih``: ``(3 * hidden_size, input_size)``, ``weight_hh``: ``(3 * hidden_size,
          hidden_size)``, ``bias_ih`` and ``bias_hh``: ``(3 * hidden_size,)``: the blocks of
          ``r``, ``z`` and ``n``

    Backward: ``cell.backward(dh')`` returns ``dJ/dx``, or ``(dJ/dx, dJ/dhx)`` when ``hx`` was
    passed. The step itself is ``gru_step`` and ``gru_step_backward`` above, which ``GRU`` runs
    too.

    Examples:
        >>> cell = GRUCell(3, 2, rng=0)
        >>> h = cell(np.ones((5, 3)))
        >>> dx = cell.backward(np.ones((5, 2)))
        >>> cell.bias_hh.grad.shape
        (6,)
    """

    _gates, _gate_names = 3, ("r", "z", "n")

    def _step(self, gx, state, weight_hh, bias_hh):
        return gru_step(gx, state, weight_hh, bias_hh)

    def _step_backward(self, d_state, cache, weight_hh):
        return gru_step_backward(d_state, cache, weight_hh)


# -- 3. the full layers: the steps in a loop over time, every layer and direction ----------------


class _Layered(_Recurrent):
    """A full recurrent layer: ``num_layers`` stacked, each in one or two directions, the
    parameters named as torch's (``weight_ih_l0``, ..., ``bias_hh_l1_reverse``)."""

    _cache = ("_runs", "_masks", "_given", "_layout")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        dtype: Any = np.float32,
        rng: int | np.random.Generator | None = None,
    ) -> None:  # (LSTM's and GRU's, torch's; RNN adds nonlinearity)
        super().__init__()
        owner = type(self).__name__
        self.input_size = _positive_int(input_size, owner, "input_size")
        self.hidden_size = _positive_int(hidden_size, owner, "hidden_size")
        self.num_layers = _positive_int(num_layers, owner, "num_layers")
        self.dropout = _dropout_probability(dropout, self.num_layers)
        self.bias, self.batch_first = bool(bias), bool(batch_first)
        self.bidirectional = bool(bidirectional)
        shapes = self.state_shapes(input_size, hidden_size, self.num_layers, bias=bias,
                                   bidirectional=bidirectional, dtype=dtype)  # fmt: skip
        for name, (shape, kind, _) in shapes.items():
            setattr(self, name, Parameter(np.empty(shape, kind)))
        self.rng = np.random.default_rng(rng)  # the first weights, then the dropout masks
        self.reset_parameters(self.rng)
        #: after a training forward with dropout: the keep-masks (True = kept) applied to the
        #: output of each layer but the last, in the output's layout, to give torch the same
        self.mask: tuple[np.ndarray, ...] | None = None
        #: after a backward: ``|dJ/dh_t|`` (over the batch) at every time step, one row per
        #: layer and direction (``(num_layers * D, L)``, torch's order of ``h_n``)
        self.grad_norms: np.ndarray | None = None
        #: after a backward: the gradient that reached each state at every time step, ``dJ/dh_t``
        #: (and an LSTM's ``dJ/dc_t``), each ``(num_layers * D, L, N, H)``: what the step-through
        #: page shows flowing back through time
        self.state_grads: tuple[np.ndarray, ...] | None = None
        self._fixed_mask: tuple[np.ndarray, ...] | None = None  # set by gradcheck

    @classmethod
    def state_shapes(cls, input_size, hidden_size, num_layers=1, bias=True, bidirectional=False,
                     dtype=np.float32, **others):  # fmt: skip
        """``weight_ih_l{k}`` (G*H, in: ``input_size`` for the first layer, ``D * H`` after),
        ``weight_hh_l{k}`` (G*H, H), ``bias_ih_l{k}``, ``bias_hh_l{k}`` (G*H,), and the same
        with ``_reverse`` when bidirectional, in torch's order, without allocating them."""
        owner = cls.__name__
        first = _positive_int(input_size, owner, "input_size")
        h = _positive_int(hidden_size, owner, "hidden_size")
        suffixes = ("", "_reverse") if bidirectional else ("",)
        layers = [
            (f"_l{k}{suffix}", first if k == 0 else len(suffixes) * h)
            for k in range(_positive_int(num_layers, owner, "num_layers"))
            for suffix in suffixes
        ]
        return _state_shapes(owner, cls._gates, first, h, bias, dtype, layers)

    def _weights(self, layer: int, direction: int) -> tuple:
        """``weight_ih, weight_hh, bias_ih, bias_hh`` of one layer and direction (arrays)."""
        suffix = f"_l{layer}" + ("_reverse" if direction else "")
        p = self._parameters
        w_ih, w_hh = p["weight_ih" + suffix].data, p["weight_hh" + suffix].data
        if not self.bias:
            return w_ih, w_hh, None, None
        return w_ih, w_hh, p["bias_ih" + suffix].data, p["bias_hh" + suffix].data

    # -- forward -------------------------------------------------------------------------------

    def forward(self, input: Any, hx: Any = None) -> tuple:
        """Every layer in turn, each direction a loop of steps over time; the output of a layer
        (both directions side by side) is the next layer's input, through dropout in training.
        """
        x, layout = self._time_major(input)  # (T, N, in)
        directions = 2 if self.bidirectional else 1
        stacked = (self.num_layers * directions, x.shape[1], self.hidden_size)
        states = self._state_arrays(hx, stacked, layout == "unbatched")
        runs, masks, finals = [], [], []
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                k = layer * directions + direction
                run = self._run(layer_input, tuple(s[k] for s in states), layer, direction)
                outputs.append(run["hs"])
                finals.append(run["final"])
                runs.append(run)
            layer_input = outputs[0] if directions == 1 else np.concatenate(outputs, axis=-1)
            if layer < self.num_layers - 1 and self.training and self.dropout > 0:
                mask = self._draw_mask(layer, layer_input.shape, layout)
                masks.append(mask)
                layer_input = (
                    layer_input * mask / (1 - self.dropout)
                    if self.dropout < 1
                    else (layer_input * 0)
                )
        self._runs, self._masks = runs, masks
        self._given, self._layout = hx is not None, layout
        self.mask = tuple(_to_layout(m, layout) for m in masks) if masks else None
        h_n = tuple(np.stack([f[i] for f in finals]) for i in range(self._states))
        output, h_n = _to_layout(layer_input, layout), tuple(_unbatch(s, layout) for s in h_n)
        return (output, h_n) if self._states == 2 else (output, h_n[0])

    def _run(self, layer_input: np.ndarray, state: tuple, layer: int, direction: int) -> dict:
        """One layer in one direction over the whole sequence: the input projection of every
        time step in one product, then the steps in order (backwards for the reverse
        direction). Keeps what its backward needs."""
        w_ih, w_hh, b_ih, b_hh = self._weights(layer, direction)
        gx = layer_input @ w_ih.T  # (T, N, G*H): x W_ih^T for all time steps at once
        if b_ih is not None:
            gx += b_ih
        steps = range(len(gx) - 1, -1, -1) if direction else range(len(gx))
        h_before = np.empty((*gx.shape[:2], self.hidden_size), self.dtype)  # (T, N, H)
        hs = np.empty_like(h_before)
        caches = [None] * len(gx)
        for t in steps:
            h_before[t] = state[0]
            state, caches[t] = self._step(gx[t], state, w_hh, b_hh)
            hs[t] = state[0]
        return {"input": layer_input, "h_before": h_before, "hs": hs, "caches": caches,
                "final": state, "layer": layer, "direction": direction}  # fmt: skip

    def _draw_mask(self, layer: int, shape: tuple, layout: str) -> np.ndarray:
        """A keep-mask for the output of ``layer``: drawn, or the one gradcheck fixed."""
        fixed = self._fixed_mask
        if fixed is not None and len(fixed) > layer:
            mask = _time_major_mask(fixed[layer], layout)
            if mask.shape == shape:
                return mask
        return self.rng.random(shape) >= self.dropout

    def _time_major(self, input: Any) -> tuple[np.ndarray, str]:
        """The input as (T, N, input_size), and its layout: ``"unbatched"`` (T, in),
        ``"batch_first"`` (N, T, in) or ``"time_first"`` (T, N, in)."""
        x = as_float_array(input, self, "input", self.dtype)
        if x.ndim not in (2, 3):
            raise ValueError(f"{type(self).__name__}: Expected input to be 2D or 3D, got "
                             f"{x.ndim}D instead")  # fmt: skip
        if x.shape[-1] != self.input_size or x.shape[-2 if self.batch_first else 0] == 0:
            length = "(L, N, " if not self.batch_first else "(N, L, "
            raise ValueError(
                f"{self!r}: expected input of shape {length}{self.input_size}) or "
                f"(L, {self.input_size}) with L > 0, got {shape_str(x.shape)}"
            )
        if x.ndim == 2:
            return x[:, None], "unbatched"
        if self.batch_first:
            return x.transpose(1, 0, 2), "batch_first"
        return x, "time_first"

    # -- backward ------------------------------------------------------------------------------

    def backward(self, grad_output: Any, grad_state: Any, *, input_grad: bool = True) -> Any:
        """Backpropagation through time, layer by layer from the last:

        for each direction, the steps in reverse order, each adding ``dJ/dh_t`` from the output
        to the gradient coming back from step ``t + 1``; then, once per layer and direction,
        ``dJ/dW_ih += dgx^T x``, ``dJ/dW_hh += dgh^T h_before``, the biases the sums, and
        ``dJ/d(layer input) += dgx W_ih``, each one product over all time steps.

        Returns ``dJ/dx``, or with the state given ``(dJ/dx, dJ/dh_0)`` (LSTM:
        ``(dJ/dx, (dJ/dh_0, dJ/dc_0))``); with ``input_grad=False``, None (the parameters'
        gradients only: the first layer's input product is skipped). Afterwards ``grad_norms``
        holds the size of ``dJ/dh_t`` at every step: vanishing and exploding gradients, visible.
        """
        d_output, d_final = self._incoming(grad_output, grad_state)
        directions = 2 if self.bidirectional else 1
        d_first: list = [None] * len(self._runs)
        shape = (len(self._runs), *d_output.shape[:2], self.hidden_size)  # (L*D, T, N, H)
        grads = tuple(np.empty(shape, self.dtype) for _ in range(self._states))
        for layer in range(self.num_layers - 1, -1, -1):
            runs = self._runs[layer * directions : (layer + 1) * directions]
            d_input = None
            for run, d_hs in zip(runs, np.split(d_output, directions, axis=-1), strict=True):
                k = layer * directions + run["direction"]
                d_state = tuple(d[k] for d in d_final)
                wanted = input_grad or layer > 0  # the input's gradient, or the layer below's
                through = tuple(g[k] for g in grads)  # (this run's rows, written in place)
                d_first[k], d_in = self._backward_run(run, d_hs, d_state, through, wanted)
                d_input = d_in if d_input is None else d_input + d_in
            if layer > 0 and self._masks:  # back through the dropout after the layer before
                d_input = (
                    d_input
                    * self._masks[layer - 1]
                    * (1 / (1 - self.dropout) if self.dropout < 1 else 0)
                )
            d_output = d_input
        self.state_grads = grads
        self.grad_norms = np.sqrt(np.square(grads[0], dtype=np.float64).sum(axis=(2, 3)))
        if not input_grad:
            return None
        dx = _to_layout(d_output, self._layout)
        if not self._given:
            return dx
        d_h0 = tuple(_unbatch(np.stack([d[i] for d in d_first]), self._layout)
                     for i in range(self._states))  # fmt: skip
        return (dx, d_h0) if self._states == 2 else (dx, d_h0[0])

    def _backward_run(
        self, run: dict, d_hs: np.ndarray, d_state: tuple, through: tuple, input_grad: bool
    ) -> tuple:
        """One layer in one direction back through time: each step's backward, last step
        first; the parameter gradients and the input's after the loop, one product each.
        Writes the gradient that reached each state at every step into ``through`` (T, N, H)
        each; returns the first state's gradient and the layer input's (None without
        ``input_grad``)."""
        w_ih, w_hh, _, _ = self._weights(run["layer"], run["direction"])
        caches = run["caches"]
        steps = range(len(d_hs)) if run["direction"] else range(len(d_hs) - 1, -1, -1)
        dgx = np.empty((*d_hs.shape[:2], w_hh.shape[0]), self.dtype)  # (T, N, G*H)
        dgh = dgx if self._gates != 3 else np.empty_like(dgx)  # the GRU's differ
        for t in steps:
            d_state = (d_state[0] + d_hs[t], *d_state[1:])  # dJ/dh_t: from above, and from t+1
            for every, each in zip(through, self._reaching(d_state, caches[t]), strict=True):
                every[t] = each  # what reached h_t (and c_t) in total: kept for the page
            dgx[t], step_dgh, d_state = self._step_backward(d_state, caches[t], w_hh)
            if dgh is not dgx:
                dgh[t] = step_dgh
        self._accumulate(run, dgx, dgh)
        return d_state, dgx @ w_ih if input_grad else None

    def _accumulate(self, run: dict, dgx: np.ndarray, dgh: np.ndarray) -> None:
        """``dJ/dW_ih += dgx^T x`` and ``dJ/dW_hh += dgh^T h_before``, summed over every time
        step and sample in one product each; the biases the sums of ``dgx`` and ``dgh``."""
        suffix = f"_l{run['layer']}" + ("_reverse" if run["direction"] else "")
        p, rows = self._parameters, dgx.shape[-1]
        x, h = run["input"], run["h_before"]
        p["weight_ih" + suffix].accumulate_grad(
            dgx.reshape(-1, rows).T @ x.reshape(-1, x.shape[-1])
        )
        p["weight_hh" + suffix].accumulate_grad(
            dgh.reshape(-1, rows).T @ h.reshape(-1, h.shape[-1])
        )
        if self.bias:
            p["bias_ih" + suffix].accumulate_grad(dgx.sum(axis=(0, 1)))
            p["bias_hh" + suffix].accumulate_grad(dgh.sum(axis=(0, 1)))

    def _incoming(self, grad_output: Any, grad_state: Any) -> tuple:
        """The gradients received, checked and made time-major: ``dJ/d(output)`` (T, N, D*H)
        and each state's (L*D, N, H)."""
        layout, run = self._layout, self._runs[-1]
        length, batch = run["hs"].shape[:2]
        width = self.hidden_size * (2 if self.bidirectional else 1)
        shape = {"unbatched": (length, width), "batch_first": (batch, length, width),
                 "time_first": (length, batch, width)}[layout]  # fmt: skip
        d_output = _time_major_mask(self._grad_output(grad_output, shape, self.dtype), layout)
        stacked = (len(self._runs), batch, self.hidden_size)
        state_shape = stacked[:1] + stacked[2:] if layout == "unbatched" else stacked
        grads = grad_state if self._states == 2 else (grad_state,)
        d_final = tuple(
            self._grad_output(g, state_shape, self.dtype).reshape(stacked) for g in grads
        )
        return d_output, d_final

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            text += f", nonlinearity={self.nonlinearity}"
        for name, default in (("bias", True), ("batch_first", False), ("dropout", 0.0),
                              ("bidirectional", False)):  # fmt: skip
            if getattr(self, name) != default:
                text += f", {name}={getattr(self, name)}"
        return text


def _dropout_probability(p: Any, num_layers: int) -> float:
    """torch's checks of ``dropout``, and its warning for one layer (nothing to drop between)."""
    if (
        isinstance(p, bool)
        or not isinstance(p, (int, float, np.integer, np.floating))
        or not (0 <= p <= 1)
    ):
        raise ValueError(
            "dropout should be a number in range [0, 1] representing the probability of an "
            "element being zeroed"
        )
    if p > 0 and num_layers == 1:
        warnings.warn(
            "dropout option adds dropout after all but last recurrent layer, so non-zero "
            f"dropout expects num_layers greater than 1, but got dropout={p} and "
            f"num_layers={num_layers}",
            UserWarning,
            stacklevel=4,
        )
    return float(p)


def _to_layout(a: np.ndarray, layout: str) -> np.ndarray:
    """A time-major (T, N, F) array in the caller's layout."""
    if layout == "unbatched":
        return a[:, 0]
    return a.transpose(1, 0, 2) if layout == "batch_first" else a


def _time_major_mask(a: np.ndarray, layout: str) -> np.ndarray:
    """An array in the caller's layout, time-major (T, N, F)."""
    if layout == "unbatched":
        return a[:, None]
    return a.transpose(1, 0, 2) if layout == "batch_first" else a


def _unbatch(state: np.ndarray, layout: str) -> np.ndarray:
    """A stacked state (L*D, N, H), as (L*D, H) for an unbatched input."""
    return state[:, 0] if layout == "unbatched" else state


class RNN(_Layered):
    """An Elman recurrent network over a whole sequence, torch's ``nn.RNN``: for each layer and
    time step, ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (``rnn_step``).

    Args:
        input_size: the size of each input ``x_t``.
        hidden_size: the size of each hidden state ``h_t``.
        num_layers: recurrent layers stacked; layer ``k > 0`` reads layer ``k - 1``'s outputs.
        nonlinearity: ``"tanh"`` (default) or ``"relu"``.
        bias: learn ``b_ih`` and ``b_hh`` (default True).
        batch_first: input and output as ``(N, L, features)`` instead of ``(L, N, features)``
            (the states stay ``(num_layers * D, N, H)``, as torch's).
        dropout: in training, dropout on the output of every layer but the last, drawn from
            ``rng``; the masks are in ``.mask`` after the forward.
        bidirectional: a second direction per layer runs from the last time step to the first;
            the output holds both, side by side (``D = 2``).
        dtype: ``np.float32`` (default, like torch) or ``np.float64``.
        rng: seed (int) or ``np.random.Generator`` for the initial values, then the dropout
            masks; None draws fresh entropy.

    Shape:
        - Input: ``(L, N, input_size)`` (``(N, L, input_size)`` with ``batch_first``), or
          ``(L, input_size)`` for one sequence
        - ``hx``: ``(num_layers * D, N, hidden_size)`` (``(num_layers * D, hidden_size)``), the
          first state of each layer and direction; zeros if left out
        - Output: the tuple ``(output, h_n)``: ``output`` ``(L, N, D * hidden_size)`` (each time
          step's last-layer state, both directions), ``h_n`` like ``hx`` (each layer and
          direction's last state)
        - Parameters: ``weight_ih_l{k}`` ``(hidden_size, input_size)`` for ``k = 0``,
          ``(hidden_size, D * hidden_size)`` after; ``weight_hh_l{k}`` ``(hidden_size,
          hidden_size)``; ``bias_ih_l{k}``, ``bias_hh_l{k}`` ``(hidden_size,)``; the same with
          ``_reverse``

    Backward: one gradient per output, ``rnn.backward(d_output, d_h_n)`` (``None`` for one that
    does not reach the loss); returns ``dJ/dx``, or ``(dJ/dx, dJ/dhx)`` when ``hx`` was passed.

    Examples:
        >>> rnn = RNN(3, 4, num_layers=2, rng=0)
        >>> output, h_n = rnn(np.ones((5, 2, 3)))    # 5 time steps of a batch of 2
        >>> output.shape, h_n.shape
        ((5, 2, 4), (2, 2, 4))
        >>> dx = rnn.backward(np.ones((5, 2, 4)), None)
        >>> dx.shape, rnn.weight_hh_l1.grad.shape
        ((5, 2, 3), (4, 4))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        dtype: Any = np.float32,
        rng: int | np.random.Generator | None = None,
    ) -> None:
        _check_nonlinearity(nonlinearity)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype=dtype, rng=rng)  # fmt: skip
        self.nonlinearity = nonlinearity


class LSTM(_Layered):
    """A long short-term memory network over a whole sequence, torch's ``nn.LSTM``: for each
    layer and time step, ``lstm_step`` (gates ``i, f, g, o``; ``c_t = f * c_{t-1} + i * g``;
    ``h_t = o * tanh(c_t)``).

    Args:
        input_size: the size of each input ``x_t``.
        hidden_size: the size of each state.
        num_layers: layers stacked (default 1).
        bias: learn the biases (default True).
        batch_first: input and output as ``(N, L, features)`` (default False).
        dropout: in training, dropout on the output of every layer but the last (default 0).
        bidirectional: a second direction per layer, from the last step to the first.
        dtype: ``np.float32`` (default, like torch) or ``np.float64``.
        rng: seed (int) or ``np.random.Generator`` for the initial values, then the dropout
            masks; None draws fresh entropy. (All as ``RNN``'s.)

    Shape:
        - Input: as ``RNN``'s
        - ``hx``: the tuple ``(h_0, c_0)``, each ``(num_layers * D, N, hidden_size)``; zeros if
          left out
        - Output: ``(output, (h_n, c_n))``, ``output`` as ``RNN``'s, ``h_n`` and ``c_n`` like
          ``h_0``
        - Parameters: as ``RNN``'s with ``4 * hidden_size`` rows: the blocks of ``i``, ``f``,
          ``g`` and ``o``, one under the other

    Backward: ``lstm.backward(d_output, (d_h_n, d_c_n))``; returns ``dJ/dx``, or
    ``(dJ/dx, (dJ/dh_0, dJ/dc_0))`` when ``hx`` was passed.

    Examples:
        >>> lstm = LSTM(3, 4, batch_first=True, rng=0)
        >>> output, (h_n, c_n) = lstm(np.ones((2, 5, 3)))   # a batch of 2, 5 steps each
        >>> output.shape, c_n.shape
        ((2, 5, 4), (1, 2, 4))
        >>> dx = lstm.backward(np.ones((2, 5, 4)), (None, None))
        >>> lstm.weight_ih_l0.grad.shape
        (16, 3)
    """

    _gates, _gate_names, _states = 4, ("i", "f", "g", "o"), 2

    def _step(self, gx, state, weight_hh, bias_hh):
        return lstm_step(gx, state, weight_hh, bias_hh)

    def _step_backward(self, d_state, cache, weight_hh):
        return lstm_step_backward(d_state, cache, weight_hh)

    def _reaching(self, d_state, cache):
        return d_state[0], lstm_cell_state_gradient(d_state, cache)


class GRU(_Layered):
    """A gated recurrent unit network over a whole sequence, torch's ``nn.GRU``: for each layer
    and time step, ``gru_step`` (gates ``r, z, n``; ``h_t = (1 - z) * n + z * h_{t-1}``).

    Args:
        input_size: the size of each input ``x_t``.
        hidden_size: the size of each state.
        num_layers: layers stacked (default 1).
        bias: learn the biases (default True).
        batch_first: input and output as ``(N, L, features)`` (default False).
        dropout: in training, dropout on the output of every layer but the last (default 0).
        bidirectional: a second direction per layer, from the last step to the first.
        dtype: ``np.float32`` (default, like torch) or ``np.float64``.
        rng: seed (int) or ``np.random.Generator`` for the initial values, then the dropout
            masks; None draws fresh entropy. (All as ``RNN``'s.)

    Shape: as ``RNN``'s, the parameters with ``3 * hidden_size`` rows (``r``, ``z``, ``n``).

    Backward: ``gru.backward(d_output, d_h_n)``; returns ``dJ/dx``, or ``(dJ/dx, dJ/dhx)`` when
    ``hx`` was passed.

    Examples:
        >>> gru = GRU(3, 4, bidirectional=True, rng=0)
        >>> output, h_n = gru(np.ones((5, 3)))        # one sequence of 5 steps, unbatched
        >>> output.shape, h_n.shape
        ((5, 8), (2, 4))
    """

    _gates, _gate_names = 3, ("r", "z", "n")

    def _step(self, gx, state, weight_hh, bias_hh):
        return gru_step(gx, state, weight_hh, bias_hh)

    def _step_backward(self, d_state, cache, weight_hh):
        return gru_step_backward(d_state, cache, weight_hh)
