"""Losses: ``BCELoss``, ``BCEWithLogitsLoss`` and ``MSELoss``.

A loss compares the model's output with the target. ``loss(input, target)`` computes the
per-element losses ``L`` and reduces them to the cost ``J``:

- ``reduction="mean"`` (default): ``J = L.mean()``, a Python float;
- ``reduction="sum"``: ``J = L.sum()``, a Python float;
- ``reduction="none"``: ``L`` itself, an array of the input's shape.

``loss.backward(grad_output=1.0)`` returns dJ/d(input), the gradient that starts
backpropagation (``model.backward(loss.backward())``). With ``reduction="mean"`` every element
carries a factor ``1/numel``: this is the gradient of the *cost*, as torch's ``.grad`` is, not
of one sample's loss.

The input and target must have the same shape; the target is cast to the input's dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._arrays import as_float_array, shape_str
from .layers import sigmoid

__all__ = ["BCELoss", "BCEWithLogitsLoss", "MSELoss"]

_REDUCTIONS = ("mean", "sum", "none")
_BCE_EPSILON = float(np.float32(1e-12))


class _Loss:
    """Shared plumbing: argument checks, reduction, and backward's scaling by ``grad_output``."""

    _cache = ("_input", "_target")

    def __init__(self, reduction: str = "mean") -> None:
        if reduction not in _REDUCTIONS:
            raise ValueError(
                f"{type(self).__name__}: reduction must be 'mean', 'sum' or 'none', "
                f"got {reduction!r}"
            )
        self.reduction = reduction
        self._input: np.ndarray | None = None
        self._target: np.ndarray | None = None

    def __call__(self, input: Any, target: Any) -> float | np.ndarray:
        return self.forward(input, target)

    def forward(self, input: Any, target: Any) -> float | np.ndarray:
        input, target = self._check(input, target)
        losses = self._losses(input, target)
        self._input, self._target = input, target
        if self.reduction == "mean":
            return float(losses.mean())
        if self.reduction == "sum":
            return float(losses.sum())
        return losses

    def backward(self, grad_output: Any = 1.0) -> np.ndarray:
        """dJ/d(input) for the last forward, scaled by ``grad_output`` = dOut/dJ (1.0 by default).

        For ``reduction="none"`` the output is an array, so ``grad_output`` must be an array of
        the input's shape (as torch requires an explicit gradient for non-scalar outputs).
        """
        if self._input is None:
            raise RuntimeError(
                f"{self!r}: backward() was called before forward(); "
                "compute the loss first with loss(input, target)"
            )
        input, target = self._input, self._target
        g = as_float_array(grad_output, repr(self), "grad_output", input.dtype)
        expected = input.shape if self.reduction == "none" else ()
        if g.shape != expected:
            what = "an array of the input's shape" if expected else "a scalar"
            raise ValueError(
                f"{self!r}: backward() expected grad_output to be {what} "
                f"{shape_str(expected)}, got shape {shape_str(g.shape)}"
            )
        return self._grad(input, target, g, input.size if self.reduction == "mean" else 1)

    def _check(self, input: Any, target: Any) -> tuple[np.ndarray, np.ndarray]:
        name = repr(self)
        input = as_float_array(input, name, "input")
        target = as_float_array(target, name, "target", input.dtype)
        if target.shape != input.shape:
            raise ValueError(
                f"{name}: target shape {shape_str(target.shape)} is different from input shape "
                f"{shape_str(input.shape)}; they must be equal (e.g. y.reshape(-1, 1) for "
                "a (N, 1) output)"
            )
        if input.size == 0:
            raise ValueError(f"{name}: input is empty (shape {shape_str(input.shape)})")
        return input, target

    def _broadcast_weight(self, weight: np.ndarray | None, name: str, input: np.ndarray):
        """An optional per-element weight, checked to broadcast to the input's shape."""
        if weight is None:
            return None
        try:
            shape = np.broadcast_shapes(weight.shape, input.shape)
        except ValueError:
            shape = None
        if shape != input.shape:
            raise ValueError(
                f"{self!r}: {name} of shape {shape_str(weight.shape)} does not broadcast to the "
                f"input shape {shape_str(input.shape)}"
            )
        return weight.astype(input.dtype, copy=False)

    def _losses(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _grad(self, input: np.ndarray, target: np.ndarray, g: np.ndarray, n: int) -> np.ndarray:
        """dJ/d(input) given ``g`` = dOut/dJ; ``n`` is the mean's divisor (1 for sum and none)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = [f"reduction={self.reduction!r}"] if self.reduction != "mean" else []
        return f"{type(self).__name__}({', '.join(args)})"


def _optional_weight(weight: Any, owner: str, name: str) -> np.ndarray | None:
    return None if weight is None else as_float_array(weight, owner, name)


def _check_unit_interval(values: np.ndarray, owner: str, name: str) -> None:
    """torch's check: every element in [0, 1]; NaN fails it too."""
    inside = (values >= 0) & (values <= 1)
    if not inside.all():
        bad = values[~inside].flat[0]
        raise ValueError(
            f"{owner}: all elements of {name} should be between 0 and 1, "
            f"got {bad} at index {np.argwhere(~inside)[0].tolist()}"
        )


class BCELoss(_Loss):
    """Binary cross-entropy on probabilities: ``L = -w (t log p + (1 - t) log(1 - p))``.

    As in torch, each log is clamped at -100, so ``p = 0`` or ``p = 1`` gives a finite loss
    (at most 100 per element) instead of inf, and a finite gradient.

    Args:
        weight: optional per-element weight ``w``, broadcast to the input's shape.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.

    Shape: input ``p`` any shape with values in [0, 1]; target ``t`` the same shape, values in
    [0, 1] (usually 0 or 1).

    Example:
        >>> bce = BCELoss()
        >>> round(bce(np.array([[0.25], [0.75]]), np.array([[0], [1]])), 6)  # -log(0.75)
        0.287682
        >>> bce.backward()  # (p - t) / (p (1 - p)) / N
        array([[ 0.666667],
               [-0.666667]])
    """

    def __init__(self, weight: Any = None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.weight = _optional_weight(weight, "BCELoss", "weight")

    def _check(self, input: Any, target: Any) -> tuple[np.ndarray, np.ndarray]:
        input, target = super()._check(input, target)
        _check_unit_interval(input, repr(self), "input")
        _check_unit_interval(target, repr(self), "target")
        return input, target

    def _losses(self, p: np.ndarray, t: np.ndarray) -> np.ndarray:
        w = self._broadcast_weight(self.weight, "weight", p)
        # log(0) is -inf (clamped to -100 next); NumPy would warn about it, torch does not.
        with np.errstate(divide="ignore"):
            log_p = np.maximum(np.log(p), -100)
            log_1mp = np.maximum(np.log1p(-p), -100)
        losses = (t - 1) * log_1mp - t * log_p  # torch's order of the same formula
        return losses if w is None else losses * w

    def _grad(self, p: np.ndarray, t: np.ndarray, g: np.ndarray, n: int) -> np.ndarray:
        """``dL/dp = w (p - t) / (p (1 - p))``, the denominator clamped at 1e-12 as in torch.

        Without the clamp the gradient at p = 0 or 1 would divide by zero; with it, it is
        finite (0 where p equals t, about -1e12 at p = 0, t = 1). torch's clamp constant is
        the float32 number nearest 1e-12, in float64 too, so it is used here as well.
        """
        w = self._broadcast_weight(self.weight, "weight", p)
        grad = g * (p - t) / np.maximum((1 - p) * p, _BCE_EPSILON)
        if w is not None:
            grad = grad * w
        return grad / p.dtype.type(n)


class BCEWithLogitsLoss(_Loss):
    """Sigmoid and binary cross-entropy in one step, on logits ``z``:

    ``L = w ((1 - t) z - (1 + (pw - 1) t) log sigmoid(z))``

    which equals ``BCELoss`` applied to ``sigmoid(z)`` but never takes the log of a rounded
    probability: ``log sigmoid(z) = min(z, 0) - log1p(exp(-|z|))`` is exact for any z, so
    logits of +-1000 give correct finite losses and gradients.

    Args:
        weight: optional per-element weight ``w``, broadcast to the input's shape.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
        pos_weight: optional weight ``pw`` of the positive term, broadcast to the input's
            shape (one per class along the last axis).

    Shape: input ``z`` any shape (any real values); target ``t`` the same shape.

    Example:
        >>> loss = BCEWithLogitsLoss()
        >>> loss(np.array([-1000.0, 1000.0]), np.array([0.0, 0.0]))  # (0 + 1000) / 2
        500.0
        >>> loss.backward()  # (sigmoid(z) - t) / N
        array([0. , 0.5])
    """

    def __init__(self, weight: Any = None, reduction: str = "mean", pos_weight: Any = None) -> None:
        super().__init__(reduction)
        self.weight = _optional_weight(weight, "BCEWithLogitsLoss", "weight")
        self.pos_weight = _optional_weight(pos_weight, "BCEWithLogitsLoss", "pos_weight")

    def _losses(self, z: np.ndarray, t: np.ndarray) -> np.ndarray:
        w = self._broadcast_weight(self.weight, "weight", z)
        pw = self._broadcast_weight(self.pos_weight, "pos_weight", z)
        log_sigmoid = np.minimum(z, 0) - np.log1p(np.exp(-np.abs(z)))
        if pw is not None:
            log_sigmoid = log_sigmoid * ((pw - 1) * t + 1)
        losses = (1 - t) * z - log_sigmoid
        return losses if w is None else losses * w

    def _grad(self, z: np.ndarray, t: np.ndarray, g: np.ndarray, n: int) -> np.ndarray:
        """``dL/dz = w (sigmoid(z) - t)``.

        With pos_weight: ``dL/dz = w ((pw t + 1 - t) sigmoid(z) - pw t)``.
        """
        w = self._broadcast_weight(self.weight, "weight", z)
        pw = self._broadcast_weight(self.pos_weight, "pos_weight", z)
        if pw is None:
            grad = sigmoid(z) - t
        else:
            pw_t = pw * t
            grad = (pw_t + 1 - t) * sigmoid(z) - pw_t
        grad = grad * g
        if w is not None:
            grad = grad * w
        return grad / z.dtype.type(n)


class MSELoss(_Loss):
    """Mean squared error: ``L = (x - t)^2`` per element.

    Args:
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.

    Shape: input ``x`` any shape; target ``t`` the same shape.

    Example:
        >>> mse = MSELoss()
        >>> mse(np.array([1.0, 3.0]), np.array([0.0, 0.0]))  # (1 + 9) / 2
        5.0
        >>> mse.backward()  # 2 (x - t) / N
        array([1., 3.])
    """

    def _losses(self, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        diff = x - t
        return diff * diff

    def _grad(self, x: np.ndarray, t: np.ndarray, g: np.ndarray, n: int) -> np.ndarray:
        """``dL/dx = 2 (x - t)``; for the mean, torch folds 1/n into the 2, and so do we."""
        norm = x.dtype.type(2.0 / n)
        return norm * (x - t) * g
