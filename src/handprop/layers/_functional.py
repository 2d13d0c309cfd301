"""The functions the layers (and the losses) share: argument checks, and the stable
``sigmoid``, ``log_softmax`` and ``erf`` that several forwards compute."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._arrays import shape_str
from ..module import Module


def _positive_int(value: Any, owner: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{owner}: {name} must be a positive int, got {value!r}")
    if value <= 0:
        raise ValueError(f"{owner}: {name} must be a positive int, got {value}")
    return int(value)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` with torch's formula, without NumPy's overflow warning.

    For very negative x, ``exp(-x)`` overflows to inf (float32 below about -88.7) and
    ``1 / (1 + inf)`` is exactly 0, which is also torch's value; for very positive x it
    underflows to 0. Both are expected, so their warnings are silenced here (also under a
    user's ``np.seterr(all="raise")``).
    """
    with np.errstate(over="ignore", under="ignore"):  # under: exp(-1000) is 0, as expected
        return 1.0 / (1.0 + np.exp(-x))


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``log(softmax(x))`` along ``axis`` as ``x - m - log(sum(exp(x - m)))``, ``m = max(x)``.

    Subtracting the maximum changes nothing mathematically and keeps every ``exp`` at most 1,
    so logits of any size neither overflow nor lose the largest term.
    """
    # (silenced: exp underflowing to 0 is expected; a row of all -inf gives NaN, as in torch)
    with np.errstate(under="ignore", invalid="ignore"):
        shifted = x - x.max(axis=axis, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


_ERF_CHUNK = 1 << 16  # elements per batch of Python floats (bounded memory for any size)


def erf(x: np.ndarray) -> np.ndarray:
    """The error function ``erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt``, elementwise.

    Evaluated in float64 by Python's ``math.erf`` and returned in ``x``'s dtype (float32 is
    then correctly rounded, as close as torch's own float32 erf or closer). NumPy has no erf,
    so this is a Python call per element (about 90 ns): 65,536 elements at a time, so that
    the Python floats in flight stay a few MB whatever the size of ``x``.
    """
    flat = x.astype(np.float64).ravel()
    out = np.empty(flat.size)
    for start in range(0, flat.size, _ERF_CHUNK):
        part = flat[start : start + _ERF_CHUNK]
        out[start : start + part.size] = np.fromiter(map(math.erf, part.tolist()), float, part.size)
    return out.reshape(x.shape).astype(x.dtype, copy=False)


def _dim(dim: Any, owner: str) -> int:
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{owner}: dim must be an int, got {dim!r}")
    return int(dim)


def _check_dim(module: Module, x: np.ndarray) -> None:
    if not -x.ndim <= module.dim < x.ndim:
        raise ValueError(
            f"{module!r}: dim {module.dim} is out of range for input of shape {shape_str(x.shape)}"
        )
