"""Losses: ``BCELoss``, ``BCEWithLogitsLoss``, ``MSELoss``, ``L1Loss``, ``HuberLoss``,
``CrossEntropyLoss`` and ``NLLLoss``.

A loss compares the model's output with the target. ``loss(input, target)`` computes the
per-element losses ``L`` and reduces them to the cost ``J``:

- ``reduction="mean"`` (default): ``J = L.mean()``, a Python float;
- ``reduction="sum"``: ``J = L.sum()``, a Python float;
- ``reduction="none"``: ``L`` itself, an array (one loss per element; per sample for
  ``CrossEntropyLoss``).

``loss.backward(grad_output=1.0)`` returns dJ/d(input), the gradient that starts
backpropagation (``model.backward(loss.backward())``). With ``reduction="mean"`` every element
carries a factor ``1/numel``: this is the gradient of the *cost*, as torch's ``.grad`` is, not
of one sample's loss.

The input and target must have the same shape (``CrossEntropyLoss`` also takes class
indices); the target is cast to the input's dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._arrays import as_float_array, owner_name, shape_str
from .layers._functional import log_softmax, sigmoid
from .module import Module

__all__ = [
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "HuberLoss",
    "L1Loss",
    "MSELoss",
    "NLLLoss",
]

_REDUCTIONS = ("mean", "sum", "none")
_BCE_EPSILON = float(np.float32(1e-12))


class _Loss(Module):
    """What every loss shares: argument checks, reduction, and backward's scaling by
    ``grad_output``. A loss is a module under the same contract as a layer: ``loss(input,
    target)`` is a forward with two inputs, the target one without gradient (backward returns
    dJ/d(input) alone), and ``loss.backward()`` without a gradient means 1.0, the gradient of
    a scalar with respect to itself, as torch's ``J.backward()`` does."""

    #: values of ``input - target`` where the loss has no derivative (L1Loss: 0); gradcheck
    #: watches for perturbations that cross them
    kinks_at: tuple[float, ...] = ()
    role = "loss"
    _cache = ("_input", "_target", "_loss_shape")

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(
                f"{type(self).__name__}: reduction must be 'mean', 'sum' or 'none', "
                f"got {reduction!r}"
            )
        self.reduction = reduction

    def forward(self, input: Any, target: Any) -> float | np.ndarray:
        x, t = self._check(input, target)
        losses = self._losses(x, t)
        self._input, self._target, self._loss_shape = x, t, losses.shape
        if self.reduction == "mean":
            divisor = self._mean_divisor(x, t)
            return float(losses.sum() / divisor) if divisor else float("nan")  # torch: NaN
        if self.reduction == "sum":
            return float(losses.sum())
        return losses

    def backward(self, grad_output: Any = 1.0) -> np.ndarray:
        """dJ/d(input) for the last forward, scaled by ``grad_output`` = dOut/dJ (1.0 by default).

        For ``reduction="none"`` the output is an array, so ``grad_output`` must be an array of
        its shape (as torch requires an explicit gradient for non-scalar outputs).
        """
        input, target = self._input, self._target
        g = as_float_array(grad_output, self, "grad_output", input.dtype)
        expected = self._loss_shape if self.reduction == "none" else ()
        if g.shape != expected:
            what = "an array of the losses' shape" if expected else "a scalar"
            raise ValueError(
                f"{self!r}: backward() expected grad_output to be {what} "
                f"{shape_str(expected)}, got shape {shape_str(g.shape)}"
            )
        n = self._mean_divisor(input, target) if self.reduction == "mean" else 1
        if not n:  # a mean over a total weight of 0: NaN, as torch gives, without warnings
            with np.errstate(invalid="ignore", divide="ignore"):
                return self._grad(input, target, g, n)
        return self._grad(input, target, g, n)

    def _mean_divisor(self, input: np.ndarray, target: np.ndarray) -> float:
        """What ``reduction="mean"`` divides the summed losses by: the number of elements."""
        return input.size

    def _check(self, input: Any, target: Any) -> tuple[np.ndarray, np.ndarray]:
        input = as_float_array(input, self, "input")
        target = as_float_array(target, self, "target", input.dtype)
        if target.shape != input.shape:
            raise ValueError(
                f"{self!r}: target shape {shape_str(target.shape)} is different from input shape "
                f"{shape_str(input.shape)}; they must be equal (e.g. y.reshape(-1, 1) for "
                "a (N, 1) output)"
            )
        if input.size == 0:
            raise ValueError(f"{self!r}: input is empty (shape {shape_str(input.shape)})")
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


def _check_class_indices(loss: Any, t: np.ndarray, shape: tuple[int, int], ignore: int) -> None:
    """A class-index target: shape (N,), each in [0, C) or the ignore_index."""
    n, c = shape
    if t.shape != (n,):
        raise ValueError(
            f"{loss!r}: class-index target must have shape ({n},) for input "
            f"{shape_str(shape)}, got {shape_str(t.shape)}"
        )
    bad = ((t < 0) | (t >= c)) & (t != ignore)
    if bad.any():
        raise ValueError(
            f"{loss!r}: class-index target must be in [0, {c - 1}] for {c} classes "
            f"(or ignore_index={ignore}), got {t[bad][0]} at index {int(np.argmax(bad))}"
        )


def _ignore_index(value: Any, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{owner}: ignore_index must be an int, got {value!r}")
    return int(value)


def _optional_weight(weight: Any, owner: str, name: str) -> np.ndarray | None:
    return None if weight is None else as_float_array(weight, owner, name)


def _check_unit_interval(values: np.ndarray, owner: Any, name: str) -> None:
    """torch's check: every element in [0, 1]; NaN fails it too (min and max propagate it)."""
    if values.min() >= 0 and values.max() <= 1:  # two reductions, no temporary arrays
        return
    inside = (values >= 0) & (values <= 1)
    if not inside.all():
        bad = values[~inside].flat[0]
        raise ValueError(
            f"{owner_name(owner)}: all elements of {name} should be between 0 and 1, "
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

    Examples:
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
        # torch's check: every element of both in [0, 1]. Done on their elementwise min and
        # max (two reductions, not four: this runs every step); on failure, find which one.
        if not (np.minimum(input, target).min() >= 0 and np.maximum(input, target).max() <= 1):
            _check_unit_interval(input, self, "input")
            _check_unit_interval(target, self, "target")
        return input, target

    @staticmethod
    def latex(last: str, scale: str) -> tuple[str, str]:
        """The per-element loss and dJ/d(input) in LaTeX, for the derivation (``last``: the
        input's name, ``scale``: the mean's factor)."""
        return (
            rf"L = -\left(Y \odot \log {last} + (1 - Y) \odot \log(1 - {last})\right)",
            rf"{scale} \frac{{{last} - Y}}{{{last} \odot (1 - {last})}}",
        )

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

    Examples:
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

    @staticmethod
    def latex(last: str, scale: str) -> tuple[str, str]:
        return (
            rf"L = (1 - Y) \odot {last} - \log \sigma({last})",
            rf"{scale} \left(\sigma({last}) - Y\right)",
        )

    def _losses(self, z: np.ndarray, t: np.ndarray) -> np.ndarray:
        w = self._broadcast_weight(self.weight, "weight", z)
        pw = self._broadcast_weight(self.pos_weight, "pos_weight", z)
        # (silenced: exp(-|z|) underflows for large |z|, as expected; z = +-inf gives NaN,
        # as in torch)
        with np.errstate(under="ignore", invalid="ignore"):
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

    Examples:
        >>> mse = MSELoss()
        >>> mse(np.array([1.0, 3.0]), np.array([0.0, 0.0]))  # (1 + 9) / 2
        5.0
        >>> mse.backward()  # 2 (x - t) / N
        array([1., 3.])
    """

    @staticmethod
    def latex(last: str, scale: str) -> tuple[str, str]:
        return rf"L = ({last} - Y)^2", rf"{scale}\, 2 ({last} - Y)"

    def _losses(self, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):  # inf / NaN as torch, silently
            diff = x - t
            return diff * diff

    def _grad(self, x: np.ndarray, t: np.ndarray, g: np.ndarray, n: int) -> np.ndarray:
        """``dL/dx = 2 (x - t)``; for the mean, torch folds 1/n into the 2, and so do we."""
        norm = x.dtype.type(2.0 / n)
        with np.errstate(over="ignore", invalid="ignore"):
            return norm * (x - t) * g


class _ClassLayout:
    """Class scores of shape ``(N, C, d1, ..., dk)`` (a class axis 1 with positions after it,
    as torch takes them: per pixel, per time step), seen as ``N * d1 * ... * dk`` rows of
    ``C``: the class axis moved last and the rest flattened, so that the loss below is written
    once, for rows. Its losses (``reduction="none"``) come back in the shape
    ``(N, d1, ..., dk)``, and its gradient in the input's shape.
    """

    _cache = ("_input", "_target", "_loss_shape", "_layout")  # _layout: (N, C, d1, ...) or None

    def forward(self, input: Any, target: Any) -> float | np.ndarray:
        # (an array is looked at as it is: the rows' own forward converts and checks it)
        x = input if isinstance(input, np.ndarray) else as_float_array(input, self, "input")
        if x.ndim <= 2:
            self._layout = None
            return super().forward(input, target)
        x = as_float_array(x, self, "input")
        t = np.asarray(target)
        rows = np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])
        if t.dtype.kind in "iu":
            expected = (x.shape[0], *x.shape[2:])
            if t.shape != expected:
                raise ValueError(
                    f"{self!r}: class-index target must have shape {shape_str(expected)} for "
                    f"input {shape_str(x.shape)} (the input without its class axis 1), got "
                    f"{shape_str(t.shape)}"
                )
            t_rows = t.reshape(-1)
        elif t.shape == x.shape:  # class probabilities, with their class axis 1 too
            t_rows = np.moveaxis(t, 1, -1).reshape(-1, x.shape[1])
        else:
            t_rows = t  # refused by the rows' own checks, with their message
        out = super().forward(rows, t_rows)
        self._layout = x.shape
        if self.reduction == "none":
            return out.reshape(x.shape[0], *x.shape[2:])
        return out

    def backward(self, grad_output: Any = 1.0) -> np.ndarray:
        layout = self._layout
        if layout is None:
            return super().backward(grad_output)
        if self.reduction == "none":
            g = as_float_array(grad_output, self, "grad_output", self._input.dtype)
            positions = (layout[0], *layout[2:])
            if g.shape != positions:
                raise ValueError(
                    f"{self!r}: backward() expected grad_output to be an array of the losses' "
                    f"shape {shape_str(positions)}, got shape {shape_str(g.shape)}"
                )
            grad_output = g.reshape(-1)
        rows = super().backward(grad_output)  # (N * d1 * ..., C)
        return np.ascontiguousarray(np.moveaxis(rows.reshape(*layout[:1], *layout[2:], -1), -1, 1))


class CrossEntropyLoss(_ClassLayout, _Loss):
    """Softmax and negative log-likelihood in one step, on logits ``x`` of shape (N, C).

    With ``log p = log_softmax(x)`` (computed stably: ``x - max - log(sum(exp(x - max)))``),
    each sample's loss is a weighted sum of minus log-probabilities,
    ``L_n = -sum_c a[n, c] log p[n, c]``, where the coefficients ``a`` come from the target:

    - class indices ``y`` (ints, shape (N,)):  ``a[n, c] = w[c] ((1 - s) [c == y_n] + s / C)``;
    - class probabilities ``t`` (N, C):        ``a[n, c] = w[c] ((1 - s) t[n, c] + s / C)``;

    with ``w`` the class weights (default 1) and ``s`` the label smoothing. A sample whose class
    index is ``ignore_index`` counts for nothing: all its ``a[n, c]`` are 0. As in torch,
    ``reduction="mean"`` divides by ``sum_n w[y_n]`` over the samples that count (a weighted
    mean) for class indices, and by N for probabilities.

    Args:
        weight: optional per-class weight, shape (C,).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (one loss per sample).
        label_smoothing: ``s`` in [0, 1] (default 0).
        ignore_index: a class-index target value whose samples are left out (default -100,
            torch's: padding positions are usually marked so).

    Shape: input ``(N, C)``; target ``(N,)`` integers in [0, C) or ``ignore_index``, or
    ``(N, C)`` floats. Or, as torch, ``(N, C, d1, ..., dk)`` (a class axis 1, positions after
    it) with target ``(N, d1, ..., dk)`` (or floats of the input's shape): each position is a
    sample, and ``reduction="none"`` gives ``(N, d1, ..., dk)`` losses.

    Examples:
        >>> ce = CrossEntropyLoss()
        >>> round(ce(np.array([[2.0, 0.0, 0.0]]), np.array([0])), 6)  # -log(e^2 / (e^2 + 2))
        0.239545
        >>> ce.backward()  # softmax(x) - onehot(y)
        array([[-0.213014,  0.106507,  0.106507]])
    """

    def __init__(
        self,
        weight: Any = None,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
        *,
        ignore_index: int = -100,
    ) -> None:
        super().__init__(reduction)
        self.weight = _optional_weight(weight, "CrossEntropyLoss", "weight")
        self.ignore_index = _ignore_index(ignore_index, "CrossEntropyLoss")
        if isinstance(label_smoothing, bool) or not isinstance(
            label_smoothing, (int, float, np.integer, np.floating)
        ):
            raise TypeError(
                f"CrossEntropyLoss: label_smoothing must be a number, got {label_smoothing!r}"
            )
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(
                f"CrossEntropyLoss: label_smoothing must be between 0.0 and 1.0, "
                f"got {label_smoothing}"
            )
        self.label_smoothing = float(label_smoothing)

    def _check(self, input: Any, target: Any) -> tuple[np.ndarray, np.ndarray]:
        x = as_float_array(input, self, "input")
        if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(
                f"{self!r}: expected input of shape (N, C) with N >= 1 and C >= 1 (one row of "
                f"logits per sample), got {shape_str(x.shape)}"
            )
        n, c = x.shape
        t = np.asarray(target)
        if t.dtype.kind in "iu":
            _check_class_indices(self, t, x.shape, self.ignore_index)
        elif t.dtype.kind == "f":
            if t.shape != x.shape:
                hint = "; class indices must be integers (y.astype(int))" if t.shape == (n,) else ""
                raise ValueError(
                    f"{self!r}: class-probability target must have the input's shape "
                    f"{shape_str(x.shape)}, got {shape_str(t.shape)}{hint}"
                )
            t = t.astype(x.dtype, copy=False)
        else:
            raise TypeError(
                f"{self!r}: target must be integer class indices or float class probabilities, "
                f"got dtype {t.dtype}"
            )
        if self.weight is not None and self.weight.shape != (c,):
            raise ValueError(
                f"{self!r}: weight must have one entry per class, shape ({c},), "
                f"got {shape_str(self.weight.shape)}"
            )
        return x, t

    def _class_weight(self, x: np.ndarray) -> np.ndarray:
        c = x.shape[1]
        return np.ones(c, x.dtype) if self.weight is None else self.weight.astype(x.dtype)

    def _coefficients(self, x: np.ndarray, target: np.ndarray) -> np.ndarray:
        """``a[n, c]``: how much ``-log p[n, c]`` counts in sample n's loss."""
        n, c = x.shape
        w, s = self._class_weight(x), self.label_smoothing
        counted = None
        if target.dtype.kind in "iu":
            counted = target != self.ignore_index
            target = np.where(counted, target, 0)  # any class: the row is zeroed below
            a = np.zeros_like(x)
            a[np.arange(n), target] = (1 - s) * w[target]
        else:
            a = (1 - s) * target * w
        if s:
            a = a + (s / c) * w
        if counted is not None and not counted.all():
            a[~counted] = 0  # ignored samples count for nothing
        return a

    @staticmethod
    def latex(last: str, scale: str) -> tuple[str, str]:
        return (
            rf"L_n = -\sum_c Y_{{nc}} \log \mathrm{{softmax}}({last})_{{nc}}",
            rf"{scale} \left(\mathrm{{softmax}}({last}) - Y_{{\text{{one-hot}}}}\right)",
        )

    def _losses(self, x: np.ndarray, target: np.ndarray) -> np.ndarray:
        """``-sum_c a[n, c] log p[n, c]``, summing only the classes with ``a != 0``: a masked
        logit of -inf has log p = -inf, and ``0 * -inf`` would turn the loss into NaN where
        torch (which gathers the target's entry) gives the finite loss."""
        a = self._coefficients(x, target)
        terms = np.multiply(a, log_softmax(x), out=np.zeros_like(a), where=a != 0)
        return -terms.sum(axis=1)

    def _mean_divisor(self, x: np.ndarray, target: np.ndarray) -> float:
        if target.dtype.kind in "iu":  # the weights of the samples that count
            counted = target[target != self.ignore_index]
            return self._class_weight(x)[counted].sum()
        return x.shape[0]

    def _grad(self, x: np.ndarray, target: np.ndarray, g: np.ndarray, n: float) -> np.ndarray:
        """``dL_n/dx[n, j] = softmax(x)[n, j] * sum_c a[n, c] - a[n, j]``.

        Differentiating ``-sum_c a_c log p_c`` with ``d log p_c / dx_j = [c == j] - p_j``; for a
        one-hot target with unit weight this is the familiar ``softmax(x) - onehot(y)``.
        """
        a = self._coefficients(x, target)
        with np.errstate(under="ignore"):  # exp of a very negative log-probability: 0
            p = np.exp(log_softmax(x))
        grad = p * a.sum(axis=1, keepdims=True) - a
        grad = grad * (g[:, None] if g.ndim else g)
        grad = grad / x.dtype.type(n)
        if target.dtype.kind in "iu":
            ignored = target == self.ignore_index
            if ignored.any():  # exactly 0, also when every sample is ignored (n = 0), as torch
                grad[ignored] = 0
        return grad


class L1Loss(_Loss):
    """Mean absolute error: ``L = |x - t|`` per element.

    Its gradient is ``sign(x - t)``: +1 or -1 whatever the size of the error (unlike
    ``MSELoss``'s, which shrinks near the target), and 0 where ``x == t`` exactly, torch's
    choice at the kink, where ``|.|`` has no derivative. ``gradcheck`` treats that point as a
    kink, as it does ReLU's 0.

    Args:
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.

    Shape: input ``x`` any shape; target ``t`` the same shape.

    Examples:
        >>> l1 = L1Loss()
        >>> l1(np.array([1.0, -3.0, 2.0]), np.array([0.0, 0.0, 2.0]))  # (1 + 3 + 0) / 3
        1.3333333333333333
        >>> l1.backward()  # sign(x - t) / N: 0 where x == t
        array([ 0.33333333, -0.33333333,  0.        ])
    """

    kinks_at = (0.0,)  # in x - t

    @staticmethod
    def latex(last: str, scale: str) -> tuple[str, str]:
        return (
            rf"L = \left|{last} - Y\right|",
            rf"{scale}\, \operatorname{{sign}}({last} - Y) \quad (0 \text{{ where }} {last} = Y)",
        )

    def _losses(self, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):  # inf - inf: NaN, as torch, silently
            return np.abs(x - t)

    def _grad(self, x: np.ndarray, t: np.ndarray, g: np.ndarray, n: int) -> np.ndarray:
        """``dL/dx = sign(x - t)``, 0 at ``x == t``; times ``g / n`` (n = N for the mean)."""
        with np.errstate(invalid="ignore"):
            return np.sign(x - t) * (g / x.dtype.type(n))


class HuberLoss(_Loss):
    """Huber loss: quadratic for small errors, linear for large ones. With ``d = x - t``:

    ``L = d^2 / 2`` where ``|d| < delta``, else ``delta * (|d| - delta / 2)``.

    The two pieces meet with the same value and the same slope at ``|d| = delta``, so the
    gradient, ``d`` clipped to ``[-delta, delta]``, is continuous: MSE's near the target, L1's
    (times delta) far from it, so outliers pull with a bounded force.

    Args:
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
        delta: where the quadratic turns linear, > 0 (default 1.0).

    Shape: input ``x`` any shape; target ``t`` the same shape.

    Examples:
        >>> huber = HuberLoss(delta=1.0)
        >>> huber(np.array([0.5, 3.0]), np.array([0.0, 0.0]))  # (0.125 + 2.5) / 2
        1.3125
        >>> huber.backward()  # clip(d, -delta, delta) / N
        array([0.25, 0.5 ])
    """

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction)
        if isinstance(delta, bool) or not isinstance(delta, (int, float, np.integer, np.floating)):
            raise TypeError(f"HuberLoss: delta must be a number, got {delta!r}")
        if not delta > 0:
            raise ValueError(f"HuberLoss: delta must be positive, got {delta}")
        self.delta = float(delta)

    def latex(self, last: str, scale: str) -> tuple[str, str]:
        d = f"{self.delta:g}"
        return (
            rf"L = \begin{{cases}} \tfrac{{1}}{{2}} D^2 & |D| < {d} \\ "
            rf"{d}\,(|D| - \tfrac{{1}}{{2}} \cdot {d}) & \text{{otherwise}} \end{{cases}}, "
            rf"\quad D = {last} - Y",
            rf"{scale}\, \operatorname{{clip}}({last} - Y, -{d}, {d})",
        )

    def _losses(self, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        delta = x.dtype.type(self.delta)
        with np.errstate(over="ignore", invalid="ignore"):
            z = np.abs(x - t)
            return np.where(z < delta, 0.5 * z * z, delta * (z - 0.5 * delta))

    def _grad(self, x: np.ndarray, t: np.ndarray, g: np.ndarray, n: int) -> np.ndarray:
        """``dL/dx = d`` where ``|d| < delta``, else ``delta * sign(d)``: ``clip(d, -delta,
        delta)``; times ``g / n``, in torch's order."""
        delta, norm = x.dtype.type(self.delta), x.dtype.type(1.0 / n)
        with np.errstate(invalid="ignore"):
            d = x - t
            return np.clip(d, -delta, delta) * norm * g

    def __repr__(self) -> str:
        args = [f"reduction={self.reduction!r}"] if self.reduction != "mean" else []
        if self.delta != 1.0:
            args.append(f"delta={self.delta}")
        return f"HuberLoss({', '.join(args)})"


class NLLLoss(_ClassLayout, _Loss):
    """Negative log-likelihood of the target class, on log-probabilities ``x`` of shape (N, C):
    ``L_n = -w[y_n] * x[n, y_n]``.

    ``x`` is meant to be ``LogSoftmax(dim=1)``'s output: then ``L_n = -w[y_n] log p[n, y_n]``
    and the pair is ``CrossEntropyLoss``. A sample whose target is ``ignore_index`` counts for
    nothing; ``reduction="mean"`` divides by the total weight ``sum_n w[y_n]`` of the samples
    that count (a weighted mean), as torch does.

    Args:
        weight: optional per-class weight ``w``, shape (C,) (default all 1).
        ignore_index: a target value whose samples are left out (default -100).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (one loss per sample).

    Shape: input ``(N, C)``; target ``(N,)`` integers in [0, C) or ``ignore_index``. Or, as
    torch, ``(N, C, d1, ..., dk)`` with target ``(N, d1, ..., dk)``: each position a sample.

    Examples:
        >>> nll = NLLLoss()
        >>> log_p = np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]))
        >>> round(nll(log_p, np.array([0, 1])), 6)  # -(log 0.5 + log 0.8) / 2
        0.458145
        >>> nll.backward()  # -1/N at each sample's target class, 0 elsewhere
        array([[-0.5,  0. ,  0. ],
               [ 0. , -0.5,  0. ]])
    """

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(reduction)
        self.weight = _optional_weight(weight, "NLLLoss", "weight")
        self.ignore_index = _ignore_index(ignore_index, "NLLLoss")

    def _check(self, input: Any, target: Any) -> tuple[np.ndarray, np.ndarray]:
        x = as_float_array(input, self, "input")
        if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(
                f"{self!r}: expected input of shape (N, C) with N >= 1 and C >= 1 (one row of "
                f"log-probabilities per sample), got {shape_str(x.shape)}"
            )
        t = np.asarray(target)
        if t.dtype.kind not in "iu":
            raise TypeError(
                f"{self!r}: target must be integer class indices (y.astype(int)), "
                f"got dtype {t.dtype}"
            )
        _check_class_indices(self, t, x.shape, self.ignore_index)
        if self.weight is not None and self.weight.shape != (x.shape[1],):
            raise ValueError(
                f"{self!r}: weight must have one entry per class, shape ({x.shape[1]},), "
                f"got {shape_str(self.weight.shape)}"
            )
        return x, t

    def _sample_weight(self, x: np.ndarray, target: np.ndarray) -> np.ndarray:
        """``w[y_n]`` for each sample, 0 for the ignored ones."""
        counted = target != self.ignore_index
        classes = np.where(counted, target, 0)
        w = np.ones(x.shape[1], x.dtype) if self.weight is None else self.weight.astype(x.dtype)
        return np.where(counted, w[classes], x.dtype.type(0))

    @staticmethod
    def latex(last: str, scale: str) -> tuple[str, str]:
        return (
            rf"L_n = -{last}_{{n, y_n}} \quad \text{{(the log-probability of the target class)}}",
            rf"{scale} \left(-Y_{{\text{{one-hot}}}}\right)",
        )

    def _losses(self, x: np.ndarray, target: np.ndarray) -> np.ndarray:
        """``-w[y_n] x[n, y_n]``; an ignored sample's loss is 0 (also if its row has -inf)."""
        w = self._sample_weight(x, target)
        picked = x[np.arange(x.shape[0]), np.where(target != self.ignore_index, target, 0)]
        return -np.multiply(w, picked, out=np.zeros_like(w), where=w != 0)

    def _mean_divisor(self, x: np.ndarray, target: np.ndarray) -> float:
        return self._sample_weight(x, target).sum()

    def _grad(self, x: np.ndarray, target: np.ndarray, g: np.ndarray, n: float) -> np.ndarray:
        """``dL_n/dx[n, c] = -w[y_n]`` at ``c = y_n``, 0 elsewhere; times ``g / n``."""
        w = self._sample_weight(x, target)
        grad = np.zeros_like(x)
        rows = np.flatnonzero(target != self.ignore_index)
        scale = g[rows] if g.ndim else g
        grad[rows, target[rows]] = -w[rows] * scale / x.dtype.type(n)
        return grad

    def __repr__(self) -> str:
        args = [f"reduction={self.reduction!r}"] if self.reduction != "mean" else []
        if self.ignore_index != -100:
            args.append(f"ignore_index={self.ignore_index}")
        return f"NLLLoss({', '.join(args)})"
