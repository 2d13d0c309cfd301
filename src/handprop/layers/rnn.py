"""Recurrent layers, as torch's ``nn/modules/rnn.py``: ``RNNCell``, one time step.

A cell is used once per time step with the same weights; the contract keeps each step's forward
pending, and the backwards, called last step first, add each step's share into ``.grad``: that
is backpropagation through time. See docs/layers/rnn_cell.md.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._arrays import as_float_array, float_dtype, shape_str
from ..module import Module, Parameter
from ._functional import _positive_int

_NONLINEARITIES = ("tanh", "relu")


class RNNCell(Module):
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
    passed (the state before gets its gradient: the path back to the previous step).

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

    _cache = ("_x", "_h", "_h_new", "_given", "_unbatched")

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
        super().__init__()
        self.input_size = _positive_int(input_size, "RNNCell", "input_size")
        self.hidden_size = _positive_int(hidden_size, "RNNCell", "hidden_size")
        if nonlinearity not in _NONLINEARITIES:
            raise ValueError(
                f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'."
            )
        self.nonlinearity, self.bias = nonlinearity, bool(bias)
        dtype = float_dtype(dtype, "RNNCell")
        h, i = self.hidden_size, self.input_size
        self.weight_ih = Parameter(np.empty((h, i), dtype))
        self.weight_hh = Parameter(np.empty((h, h), dtype))
        self.bias_ih = Parameter(np.empty(h, dtype)) if bias else None
        self.bias_hh = Parameter(np.empty(h, dtype)) if bias else None
        self.reset_parameters(rng)

    @classmethod
    def state_shapes(
        cls, input_size, hidden_size, bias=True, nonlinearity="tanh", dtype=np.float32
    ):
        """``weight_ih`` (H, in), ``weight_hh`` (H, H), ``bias_ih`` and ``bias_hh`` (H,),
        without allocating them."""
        i = _positive_int(input_size, "RNNCell", "input_size")
        h = _positive_int(hidden_size, "RNNCell", "hidden_size")
        if nonlinearity not in _NONLINEARITIES:
            raise ValueError(
                f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'."
            )
        dtype = float_dtype(dtype, "RNNCell")
        shapes = {
            "weight_ih": ((h, i), dtype, "parameter"),
            "weight_hh": ((h, h), dtype, "parameter"),
        }
        if bias:
            shapes["bias_ih"] = shapes["bias_hh"] = ((h,), dtype, "parameter")
        return shapes

    def reset_parameters(self, rng: int | np.random.Generator | None = None) -> None:
        """Draw every weight and bias from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        rng = np.random.default_rng(rng)
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            p.data[...] = rng.uniform(-bound, bound, size=p.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.weight_ih.dtype

    def forward(self, input: Any, hx: Any = None) -> np.ndarray:
        """``z = x W_ih^T + b_ih + h W_hh^T + b_hh``; ``h' = tanh(z)`` (or ``relu(z)``)."""
        x = as_float_array(input, self, "input", self.dtype)
        unbatched = x.ndim == 1
        x = x[None] if unbatched else x
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ValueError(
                f"{self!r}: expected input of shape (N, {self.input_size}) or "
                f"({self.input_size},), got {shape_str(np.shape(input))}"
            )
        if hx is None:
            h = np.zeros((x.shape[0], self.hidden_size), self.dtype)
        else:
            h = as_float_array(hx, self, "hx", self.dtype)
            h = h[None] if unbatched else h
            if h.shape != (x.shape[0], self.hidden_size):
                expected = (self.hidden_size,) if unbatched else (x.shape[0], self.hidden_size)
                raise ValueError(
                    f"{self!r}: expected hx of shape {shape_str(expected)} for this input, got "
                    f"{shape_str(np.shape(hx))}"
                )
        z = x @ self.weight_ih.data.T + h @ self.weight_hh.data.T
        if self.bias:
            z += self.bias_ih.data + self.bias_hh.data
        h_new = np.tanh(z) if self.nonlinearity == "tanh" else np.maximum(z, 0)
        self._x, self._h, self._h_new = x, h, h_new
        self._given, self._unbatched = hx is not None, unbatched
        return h_new[0] if unbatched else h_new

    def backward(self, grad_output: Any) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """With ``g = dJ/dh'`` (N, H) and ``dz = g * (1 - h'^2)`` (tanh; relu: ``g`` where
        ``h' > 0``), the gradient of ``z = x W_ih^T + b_ih + h W_hh^T + b_hh``:

        - ``dJ/dW_ih += dz^T x``  (H, N) @ (N, in); ``dJ/dW_hh += dz^T h``  (H, N) @ (N, H);
        - ``dJ/db_ih += dz`` summed over the batch, and ``dJ/db_hh`` the same;
        - ``dJ/dx = dz W_ih``  (N, in), and ``dJ/dh = dz W_hh``  (N, H): the path back to the
          step before.
        """
        x, h, h_new = self._x, self._h, self._h_new
        shape = h_new.shape[1:] if self._unbatched else h_new.shape
        g = self._grad_output(grad_output, shape, self.dtype).reshape(h_new.shape)
        dz = g * (1 - h_new * h_new) if self.nonlinearity == "tanh" else g * (h_new > 0)
        self.weight_ih.accumulate_grad(dz.T @ x)
        self.weight_hh.accumulate_grad(dz.T @ h)
        if self.bias:
            self.bias_ih.accumulate_grad(dz.sum(axis=0))
            self.bias_hh.accumulate_grad(dz.sum(axis=0))
        dx, dh = dz @ self.weight_ih.data, dz @ self.weight_hh.data
        if self._unbatched:
            dx, dh = dx[0], dh[0]
        return (dx, dh) if self._given else dx

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            text += ", bias=False"
        if self.nonlinearity != "tanh":
            text += f", nonlinearity={self.nonlinearity}"
        return text


def _check_nonlinearity(value: Any) -> None:
    if value not in _NONLINEARITIES:
        raise ValueError(f"Unknown nonlinearity '{value}'. Select from 'tanh' or 'relu'.")
