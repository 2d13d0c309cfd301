"""``BatchNorm1d``, ``BatchNorm2d`` and ``LayerNorm``: normalise, then scale and shift;
the backward's three terms (torch's ``nn/modules/batchnorm.py`` and ``normalization.py``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._arrays import DEFAULT_DTYPE, as_float_array, float_dtype, shape_str
from ..module import Module, Parameter
from ._functional import _positive_int


def _normalise_backward(g_hat: np.ndarray, x_hat: np.ndarray, inv_std, axes) -> np.ndarray:
    """dJ/dx of ``x_hat = (x - mean(x)) / sqrt(var(x) + eps)`` over ``axes`` (mean and biased
    variance of the same x), given ``g_hat = dJ/dx_hat``:

    ``dJ/dx = inv_std / m * (m * g_hat - sum(g_hat) - x_hat * sum(g_hat * x_hat))``

    with m the number of values each statistic is taken over. The derivation (docs/layers/
    batch_norm.md) goes through the graph x -> mean, var -> x_hat node by node; the three
    terms are the direct path, the path through the mean, and the path through the variance.
    """
    m = math.prod(x_hat.shape[a] for a in axes)
    sum_g = g_hat.sum(axis=axes, keepdims=True)
    sum_gx = (g_hat * x_hat).sum(axis=axes, keepdims=True)
    return (inv_std / m) * (m * g_hat - sum_g - x_hat * sum_gx)


def _own_dtype(module: Module) -> np.dtype | None:
    """The dtype of a module's first parameter or float buffer, or None if it has neither."""
    for _, array in module.named_parameters():
        return array.dtype
    for _, array in module.named_buffers():
        if array.dtype.kind == "f":
            return array.dtype
    return None


def _features(value: Any, owner: str) -> int:
    return _positive_int(value, owner, "num_features")


def _momentum(value: Any, owner: str) -> float | None:
    """A batch norm's momentum: a number in [0, 1], or None (a cumulative average)."""
    if value is not None and (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not 0.0 <= value <= 1.0
    ):
        raise ValueError(f"{owner}: momentum must be a number in [0, 1] or None, got {value!r}")
    return None if value is None else float(value)


def _normalized_shape(value: Any) -> tuple[int, ...]:
    """LayerNorm's normalized_shape: a positive int, or a non-empty tuple of them."""
    shape = (value,) if isinstance(value, (int, np.integer)) else value
    try:
        shape = tuple(_positive_int(n, "LayerNorm", "normalized_shape") for n in shape)
    except TypeError:
        raise TypeError(
            f"LayerNorm: normalized_shape must be a positive int or a tuple of them, got {value!r}"
        ) from None
    if not shape:
        raise ValueError("LayerNorm: normalized_shape must not be empty")
    return shape


def _eps(value: Any, owner: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{owner}: eps must be a number, got {value!r}")
    if not value > 0 or not math.isfinite(value):
        raise ValueError(f"{owner}: eps must be a positive finite number, got {value}")
    return float(value)


class BatchNorm1d(Module):
    """Batch normalisation over the batch (and length) axis, per feature ``c``:

    ``y = (x - mean_c) / sqrt(var_c + eps) * weight_c + bias_c``

    In training, ``mean_c`` and ``var_c`` are the batch's own (the *biased* variance, dividing
    by m, the number of values per feature), and the running estimates are updated:
    ``running = (1 - momentum) * running + momentum * batch_value``, with the *unbiased*
    variance (dividing by m - 1) for ``running_var``; ``momentum=None`` makes them the
    cumulative average over ``num_batches_tracked`` batches. In evaluation (``model.eval()``)
    the running estimates are used instead, so one sample's output does not depend on the
    others. These are torch's conventions exactly; see docs/layers/batch_norm.md for where
    texts differ (momentum as the old value's weight, a biased running variance).

    Args:
        num_features: C, the number of features (channels).
        eps: added to the variance before the square root (default 1e-5).
        momentum: the new value's weight in the running estimates (default 0.1), or None.
        affine: learn ``weight`` (ones) and ``bias`` (zeros) (default True).
        bias: with ``affine``, learn ``bias`` too (default True; torch's keyword).
        track_running_stats: keep ``running_mean`` (zeros), ``running_var`` (ones) and
            ``num_batches_tracked`` as buffers (default True); without them, batch
            statistics are used in evaluation too.
        dtype: ``np.float32`` (default) or ``np.float64``.

    Shape:
        - Input: ``(N, C)`` or ``(N, C, L)``; output the same.

    Examples:
        >>> bn = BatchNorm1d(2)
        >>> bn(np.array([[1.0, 10.0], [3.0, 30.0]])).round(4)  # each column: mean 0, var 1
        array([[-1., -1.],
               [ 1.,  1.]], dtype=float32)
        >>> bn.running_mean, bn.running_var  # 0.9 * (0, 1) + 0.1 * (mean, unbiased var)
        (array([0.2, 2. ], dtype=float32), array([ 1.1, 20.9], dtype=float32))
    """

    role = "norm"
    _cache = ("_x_hat", "_inv_std", "_axes")

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        bias: bool = True,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.num_features = _features(num_features, name)
        self.eps = _eps(eps, name)
        self.momentum = _momentum(momentum, name)
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        dtype = float_dtype(dtype, name)
        c = self.num_features
        self.weight = Parameter(np.ones(c, dtype)) if affine else None
        self.bias = Parameter(np.zeros(c, dtype)) if affine and bias else None
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(c, dtype))
            self.register_buffer("running_var", np.ones(c, dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    @classmethod
    def state_shapes(
        cls,
        num_features,
        eps=1e-5,
        momentum=0.1,
        affine=True,
        track_running_stats=True,
        bias=True,
        dtype=np.float32,
    ):
        """``weight`` and ``bias`` (C,) with ``affine``; ``running_mean``, ``running_var``
        (C,) and ``num_batches_tracked`` () with ``track_running_stats``; the arguments checked
        as the constructor checks them, nothing allocated."""
        name = cls.__name__
        _eps(eps, name), _momentum(momentum, name)
        c, dtype = (_features(num_features, name),), float_dtype(dtype, name)
        shapes = {"weight": (c, dtype, "parameter")} if affine else {}
        if affine and bias:
            shapes["bias"] = (c, dtype, "parameter")
        if track_running_stats:
            shapes["running_mean"] = shapes["running_var"] = (c, dtype, "buffer")
            shapes["num_batches_tracked"] = ((), np.dtype(np.int64), "buffer")
        return shapes

    @property
    def dtype(self) -> np.dtype | None:
        """The dtype of the weight (or of the running statistics); None without either: then
        inputs keep their own float dtype, as an activation's do."""
        return _own_dtype(self)

    def _check_input(self, input: Any) -> tuple[np.ndarray, tuple[int, ...]]:
        x = as_float_array(input, self, "input", self.dtype)
        if x.ndim not in (2, 3) or x.shape[1] != self.num_features:
            raise ValueError(
                f"{self!r}: expected input of shape (N, {self.num_features}) or "
                f"(N, {self.num_features}, L), got {shape_str(x.shape)}"
            )
        return x, (0,) if x.ndim == 2 else (0, 2)

    def forward(self, input: Any) -> np.ndarray:
        x, axes = self._check_input(input)
        shape = [1] * x.ndim
        shape[1] = self.num_features  # per-feature values broadcast along N (and L)
        batch_stats = self.training or not self.track_running_stats
        if batch_stats:
            mean, var = self._batch_statistics(x, axes)
        else:
            mean, var = self.running_mean, self.running_var
        inv_std = (1.0 / np.sqrt(var.astype(np.float64) + self.eps)).astype(x.dtype)
        x_hat = (x - mean.reshape(shape)) * inv_std.reshape(shape)
        self._x_hat, self._inv_std, self._axes = x_hat, inv_std.reshape(shape), axes
        if not batch_stats:  # the statistics are constants: backward is a plain scaling
            self._axes = None
        y = x_hat if not self.affine else x_hat * self.weight.data.reshape(shape)
        if self.bias is not None:
            y = y + self.bias.data.reshape(shape)
        return y

    def _batch_statistics(self, x: np.ndarray, axes) -> tuple[np.ndarray, np.ndarray]:
        """The batch's mean and biased variance per feature (accumulated in float64, as torch
        does on the CPU); in training, also the update of the running estimates."""
        m = math.prod(x.shape[a] for a in axes)
        if self.training and m <= 1:
            raise ValueError(
                f"{self!r}: expected more than 1 value per channel when training, got input "
                f"of shape {shape_str(x.shape)}"
            )
        x64 = x.astype(np.float64)
        mean = x64.mean(axis=axes, keepdims=True)
        var = ((x64 - mean) ** 2).mean(axis=axes)  # biased: divided by m
        mean = mean.reshape(-1)
        if self.training and self.track_running_stats:
            self._update_running(mean, var * m / (m - 1))
        return mean.astype(x.dtype), var.astype(x.dtype)

    def _update_running(self, mean: np.ndarray, unbiased_var: np.ndarray) -> None:
        """``running = (1 - f) * running + f * batch``, f = momentum (or 1 / batches seen)."""
        self.num_batches_tracked[...] += 1
        f = self.momentum if self.momentum is not None else 1.0 / int(self.num_batches_tracked)
        for buffer, value in ((self.running_mean, mean), (self.running_var, unbiased_var)):
            buffer[...] = (1 - f) * buffer.astype(np.float64) + f * value

    def backward(self, grad_output: Any, *, input_grad: bool = True) -> np.ndarray | None:
        """With ``x_hat`` the normalised input and ``g = dJ/dy``:

        - ``dJ/dweight = sum(g * x_hat)``, ``dJ/dbias = sum(g)``, over N (and L);
        - training (batch statistics): the mean and variance depend on every x, so
          ``dJ/dx = inv_std / m * (m * g_hat - sum(g_hat) - x_hat * sum(g_hat * x_hat))``
          with ``g_hat = g * weight`` (see ``_normalise_backward``);
        - evaluation (running statistics, constants): ``dJ/dx = g_hat * inv_std``.
        """
        x_hat = self._x_hat
        g = self._grad_output(grad_output, x_hat.shape, x_hat.dtype)
        reduce = tuple(a for a in range(x_hat.ndim) if a != 1)  # all but the channel axis
        if self.affine:
            self.weight.accumulate_grad((g * x_hat).sum(axis=reduce))
        if self.bias is not None:
            self.bias.accumulate_grad(g.sum(axis=reduce))
        if not input_grad:
            return None
        g_hat = g * self.weight.data.reshape(self._inv_std.shape) if self.affine else g
        if self._axes is None:
            return g_hat * self._inv_std
        return _normalise_backward(g_hat, x_hat, self._inv_std, self._axes)

    def extra_repr(self) -> str:
        text = (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"
        )
        text += f", bias={self.bias is not None}, track_running_stats={self.track_running_stats}"
        if self.dtype not in (None, DEFAULT_DTYPE):
            text += f", dtype={self.dtype}"
        return text


class BatchNorm2d(BatchNorm1d):
    """Batch normalisation of images ``(N, C, H, W)``, per channel ``c``: BatchNorm1d's rules
    (the same arguments, running estimates and backward), with each channel's mean and
    variance taken over the batch and every position, ``m = N * H * W`` values.

    Examples:
        >>> bn = BatchNorm2d(1)
        >>> bn(np.array([[[[1.0, 3.0]]], [[[5.0, 7.0]]]])).round(3).ravel()
        array([-1.342, -0.447,  0.447,  1.342], dtype=float32)
    """

    def _check_input(self, input: Any) -> tuple[np.ndarray, tuple[int, ...]]:
        x = as_float_array(input, self, "input", self.dtype)
        if x.ndim != 4 or x.shape[1] != self.num_features:
            hint = "; for one image use x[None]" if x.ndim == 3 else ""
            raise ValueError(
                f"{self!r}: expected input of shape (N, {self.num_features}, H, W), "
                f"got {shape_str(x.shape)}{hint}"
            )
        return x, (0, 2, 3)


class LayerNorm(Module):
    """Layer normalisation: each sample normalised over its last axes, ``normalized_shape``:

    ``y = (x - mean) / sqrt(var + eps) * weight + bias``

    with the mean and the biased variance taken over the last ``len(normalized_shape)`` axes
    of each sample, in training and evaluation alike (no running statistics, no batch
    dependence). ``weight`` (ones) and ``bias`` (zeros) have the shape ``normalized_shape``.

    Args:
        normalized_shape: the trailing shape to normalise over (an int for the last axis).
        eps: added to the variance before the square root (default 1e-5).
        elementwise_affine: learn ``weight`` and ``bias`` (default True).
        bias: learn ``bias`` too (default True; torch's argument).
        dtype: ``np.float32`` (default) or ``np.float64``.

    Shape:
        - Input: ``(*, *normalized_shape)``; output the same.

    Examples:
        >>> ln = LayerNorm(3)
        >>> ln(np.array([[1.0, 2.0, 3.0], [10.0, 10.0, 10.0]]))  # each row to mean 0, var 1
        array([[-1.2247357,  0.       ,  1.2247357],
               [ 0.       ,  0.       ,  0.       ]], dtype=float32)
    """

    role = "norm"
    _cache = ("_x_hat", "_inv_std")

    def __init__(
        self,
        normalized_shape: int | tuple[int, ...],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        *,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        self.normalized_shape = shape = _normalized_shape(normalized_shape)
        self.eps = _eps(eps, "LayerNorm")
        self.elementwise_affine = bool(elementwise_affine)
        dtype = float_dtype(dtype, "LayerNorm")
        self.weight = Parameter(np.ones(shape, dtype)) if elementwise_affine else None
        self.bias = Parameter(np.zeros(shape, dtype)) if elementwise_affine and bias else None

    @classmethod
    def state_shapes(
        cls, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, dtype=np.float32
    ):
        """``weight`` and ``bias`` of ``normalized_shape`` (with ``elementwise_affine``); the
        arguments checked as the constructor checks them, nothing allocated."""
        _eps(eps, "LayerNorm")
        shape, dtype = _normalized_shape(normalized_shape), float_dtype(dtype, "LayerNorm")
        shapes = {"weight": (shape, dtype, "parameter")} if elementwise_affine else {}
        if elementwise_affine and bias:
            shapes["bias"] = (shape, dtype, "parameter")
        return shapes

    @property
    def dtype(self) -> np.dtype | None:
        """The dtype of the weight; None without one (inputs keep their own float dtype)."""
        return _own_dtype(self)

    def forward(self, input: Any) -> np.ndarray:
        x = as_float_array(input, self, "input", self.dtype)
        k = len(self.normalized_shape)
        if x.ndim < k or x.shape[x.ndim - k :] != self.normalized_shape:
            raise ValueError(
                f"{self!r}: expected input whose last dimensions are {self.normalized_shape}, "
                f"got {shape_str(x.shape)}"
            )
        axes = tuple(range(x.ndim - k, x.ndim))
        x64 = x.astype(np.float64)
        mean = x64.mean(axis=axes, keepdims=True)
        var = ((x64 - mean) ** 2).mean(axis=axes, keepdims=True)
        inv_std = (1.0 / np.sqrt(var + self.eps)).astype(x.dtype)
        x_hat = (x - mean.astype(x.dtype)) * inv_std
        self._x_hat, self._inv_std = x_hat, inv_std
        y = x_hat
        if self.weight is not None:
            y = y * self.weight.data
        if self.bias is not None:
            y = y + self.bias.data
        return y

    def backward(self, grad_output: Any, *, input_grad: bool = True) -> np.ndarray | None:
        """With ``x_hat`` the normalised input and ``g = dJ/dy``: ``dJ/dweight = sum(g * x_hat)``
        and ``dJ/dbias = sum(g)`` over the leading (batch) axes; ``dJ/dx`` is BatchNorm's
        formula taken over each sample's normalised axes (see ``_normalise_backward``)."""
        x_hat = self._x_hat
        g = self._grad_output(grad_output, x_hat.shape, x_hat.dtype)
        k = len(self.normalized_shape)
        batch_axes = tuple(range(x_hat.ndim - k))
        if self.weight is not None:
            self.weight.accumulate_grad((g * x_hat).sum(axis=batch_axes))
        if self.bias is not None:
            self.bias.accumulate_grad(g.sum(axis=batch_axes))
        if not input_grad:
            return None
        g_hat = g * self.weight.data if self.weight is not None else g
        axes = tuple(range(x_hat.ndim - k, x_hat.ndim))
        return _normalise_backward(g_hat, x_hat, self._inv_std, axes)

    def extra_repr(self) -> str:
        text = (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
        )
        text += f", bias={self.bias is not None}"
        if self.dtype not in (None, DEFAULT_DTYPE):
            text += f", dtype={self.dtype}"
        return text
