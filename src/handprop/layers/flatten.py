"""``Flatten``: ``(N, C, H, W)`` to ``(N, C * H * W)``, and the gradient back to the input's
shape (torch's ``nn/modules/flatten.py``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._arrays import as_float_array, shape_str
from ..module import Module


class Flatten(Module):
    """Flatten axes ``start_dim`` to ``end_dim`` into one (torch's default: all but the batch
    axis), e.g. a convolution's ``(N, C, H, W)`` into the ``(N, C*H*W)`` a Linear takes. The
    backward reshapes the gradient back: nothing else happens to the numbers.

    Examples:
        >>> Flatten()(np.zeros((2, 3, 4, 5))).shape
        (2, 60)
    """

    role = "flatten"
    _cache = ("_shape", "_dtype")

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        for name, value in (("start_dim", start_dim), ("end_dim", end_dim)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"Flatten: {name} must be an int, got {value!r}")
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def _flat_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        nd = len(shape)
        if not (-nd <= self.start_dim < nd and -nd <= self.end_dim < nd) or (
            self.start_dim % nd > self.end_dim % nd
        ):
            raise ValueError(
                f"{self!r}: cannot flatten dims {self.start_dim} to {self.end_dim} of an input "
                f"of shape {shape_str(shape)}"
            )
        start, end = self.start_dim % nd, self.end_dim % nd
        return (*shape[:start], math.prod(shape[start : end + 1]), *shape[end + 1 :])

    def forward(self, input: Any) -> np.ndarray:
        x = as_float_array(input, self, "input")
        flat = self._flat_shape(x.shape)
        self._shape, self._dtype = x.shape, x.dtype
        return x.reshape(flat)

    def backward(self, grad_output: Any, *, input_grad: bool = True) -> np.ndarray | None:
        """``dJ/dx`` is ``g`` in the input's shape."""
        g = self._grad_output(grad_output, self._flat_shape(self._shape), self._dtype)
        return None if not input_grad else g.reshape(self._shape)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
