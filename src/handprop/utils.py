"""Gradient clipping, as ``torch.nn.utils``: ``clip_grad_norm_`` and ``clip_grad_value_``.

Both act on the ``.grad`` of the parameters given, between ``backward`` and ``optimizer.step()``:

    model.backward(loss_fn.backward())
    clip_grad_norm_(model.parameters(), max_norm=1.0)
    optimizer.step()

Like every handprop function, they never write into an array in place: a clipped ``.grad`` is
a new array.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from .module import Parameter

__all__ = ["clip_grad_norm_", "clip_grad_value_"]

_EPS = 1e-6  # torch's: keeps max_norm / total finite when every gradient is 0


def _parameters(parameters: Parameter | Iterable[Parameter], owner: str) -> list[Parameter]:
    """A Parameter or an iterable of them (a generator is read once) as a list."""
    found = [parameters] if isinstance(parameters, Parameter) else list(parameters)
    for p in found:
        if not isinstance(p, Parameter):
            raise TypeError(
                f"{owner}: expected Parameters (e.g. model.parameters()), got {type(p).__name__}"
            )
    return found


def _number(value: Any, owner: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}")
    return float(value)


def _norm(g: np.ndarray, p: float) -> np.ndarray:
    """The p-norm of ``g`` seen as one vector, in its own dtype: ``(sum |g|^p)^(1/p)``; inf:
    the largest ``|g|``; 0: the number of non-zero elements (torch's definitions)."""
    return np.asarray(np.linalg.norm(g.ravel(), ord=p), dtype=g.dtype)


def clip_grad_norm_(
    parameters: Parameter | Iterable[Parameter],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    """Scale all gradients by one factor so that their norm, taken together, is at most
    ``max_norm``; returns that total norm (before clipping).

    With ``g_1, ..., g_k`` the gradients (parameters whose ``.grad`` is None are skipped) and
    ``p = norm_type``:

    - ``total = || (||g_1||_p, ..., ||g_k||_p) ||_p``, the p-norm of all gradients as one vector;
    - ``coef = min(1, max_norm / (total + 1e-6))``;
    - every ``g_i <- g_i * coef``: the direction of the whole gradient is kept, only its
      length is capped. Clipping each parameter's gradient to ``max_norm`` on its own, as some
      texts do, changes the direction; torch and handprop clip the global norm.

    The norms are computed in the gradients' dtype (float64 when the dtypes are mixed).

    Args:
        parameters: a Parameter or an iterable of them, e.g. ``model.parameters()``.
        max_norm: the largest total norm allowed.
        norm_type: p, any real number or ``float("inf")`` (default 2).
        error_if_nonfinite: raise a ``RuntimeError`` if the total norm is NaN or infinite
            (default False: the gradients are then scaled by a NaN coefficient, as in torch).

    Examples:
        >>> from handprop import Parameter
        >>> a, b = Parameter(np.zeros(2)), Parameter(np.zeros(1))
        >>> a.grad, b.grad = np.array([3.0, 0.0]), np.array([4.0])
        >>> clip_grad_norm_([a, b], max_norm=1.0)  # sqrt(3^2 + 4^2)
        5.0
        >>> a.grad.round(6), b.grad.round(6)  # scaled by 1 / (5 + 1e-6): length 1, same direction
        (array([0.6, 0. ]), array([0.8]))
    """
    owner = "clip_grad_norm_"
    params = _parameters(parameters, owner)
    max_norm = _number(max_norm, owner, "max_norm")
    p = _number(norm_type, owner, "norm_type")
    grads = [param.grad for param in params if param.grad is not None]
    if not grads:
        return 0.0
    dtype = np.result_type(*grads)
    # inf and NaN as torch gives them, silently (a negative p raises 0 to a negative power)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        norms = np.stack([_norm(g.astype(dtype, copy=False), p) for g in grads])
        total = _norm(norms, p)
    if error_if_nonfinite and not math.isfinite(float(total)):
        raise RuntimeError(
            f"The total norm of order {p} for gradients from `parameters` is non-finite, so it "
            "cannot be clipped. To disable this error and scale the gradients by the non-finite "
            "norm anyway, set `error_if_nonfinite=False`"
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        coef = np.minimum(dtype.type(max_norm) / (total + dtype.type(_EPS)), dtype.type(1.0))
        for param in params:
            if param.grad is not None:
                param.grad = param.grad * coef.astype(param.grad.dtype)
    return float(total)


def clip_grad_value_(parameters: Parameter | Iterable[Parameter], clip_value: float) -> None:
    """Clip every gradient element into ``[-clip_value, clip_value]``.

    Unlike ``clip_grad_norm_`` this changes the direction of the gradient (each element is
    capped on its own); NaN stays NaN, as in torch.

    Examples:
        >>> from handprop import Parameter
        >>> w = Parameter(np.zeros(3))
        >>> w.grad = np.array([-5.0, 0.5, 2.0])
        >>> clip_grad_value_([w], 1.0)
        >>> w.grad
        array([-1. ,  0.5,  1. ])
    """
    owner = "clip_grad_value_"
    params = _parameters(parameters, owner)
    clip_value = _number(clip_value, owner, "clip_value")
    for param in params:
        if param.grad is not None:
            param.grad = np.clip(param.grad, -clip_value, clip_value).astype(param.grad.dtype)
