"""Layers: ``Linear``; the activations ``ReLU``, ``Sigmoid``, ``Tanh``, ``LeakyReLU``, ``Softmax``.

Each class has its forward and its backward side by side. Notation: ``N`` is the batch size,
``x`` the forward input, ``y`` the forward output, ``g = dJ/dy`` the ``grad_output`` that
backward receives; backward returns ``dJ/dx``. Derivations with LaTeX live in ``docs/``.

What a forward keeps for its backward is private (``private``: the caller's input is copied
unless it is another module's read-only output) and outputs are returned read-only
(``freeze``), so nothing the caller does between forward and backward can change a gradient.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._arrays import DEFAULT_DTYPE, as_float_array, float_dtype, freeze, private, shape_str
from ._fast import keep_where_active
from .module import Module, Parameter

__all__ = ["LeakyReLU", "Linear", "ReLU", "Sigmoid", "Softmax", "Tanh"]


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


class Linear(Module):
    """Affine layer: ``y = x @ W.T + b``.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        bias: learn an additive bias ``b`` (default True).
        dtype: ``np.float32`` (default, like torch) or ``np.float64``. Inputs of any other
            numeric dtype (ints, bools, the other float) are cast to it, so outputs and
            gradients always have the layer's dtype.
        rng: seed (int) or ``np.random.Generator`` for the initial values; None draws fresh
            entropy. The global NumPy seed is never touched.

    Weight and bias start uniform in ``[-1/sqrt(in_features), 1/sqrt(in_features)]``, torch's
    default initialisation.

    Shape:
        - Input ``x``: ``(N, in_features)``
        - Output ``y``: ``(N, out_features)``
        - ``weight``: ``(out_features, in_features)``, ``bias``: ``(out_features,)``

    Examples:
        >>> layer = Linear(2, 3, rng=0)
        >>> layer.weight.shape, layer.bias.shape
        ((3, 2), (3,))
        >>> y = layer(np.array([[1, 2], [3, 4]]))  # ints are cast to float32
        >>> y.shape, y.dtype
        ((2, 3), dtype('float32'))
    """

    _cache = ("_x",)
    _guards_its_arrays = True

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        dtype: Any = np.float32,
        rng: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_features = _positive_int(in_features, "Linear", "in_features")
        self.out_features = _positive_int(out_features, "Linear", "out_features")
        dtype = float_dtype(dtype, "Linear")
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dtype=dtype))
        self.bias = Parameter(np.empty(self.out_features, dtype=dtype)) if bias else None
        self.reset_parameters(rng)

    def reset_parameters(self, rng: int | np.random.Generator | None = None) -> None:
        """Draw weight and bias from U(-1/sqrt(in_features), 1/sqrt(in_features)) again."""
        rng = np.random.default_rng(rng)
        bound = 1.0 / math.sqrt(self.in_features)
        self.weight.data[...] = rng.uniform(-bound, bound, size=self.weight.shape)
        if self.bias is not None:
            self.bias.data[...] = rng.uniform(-bound, bound, size=self.bias.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.weight.dtype

    def forward(self, input: Any) -> np.ndarray:
        """``y = x @ W.T + b``: (N, in) @ (in, out) + (out,) -> (N, out)."""
        x = as_float_array(input, self, "input", self.weight.data.dtype)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            hint = "; for one sample use x.reshape(1, -1)" if x.ndim == 1 else ""
            raise ValueError(
                f"{self!r}: expected input of shape (N, {self.in_features}), "
                f"got {shape_str(x.shape)}{hint}"
            )
        self._x = private(x, input)
        y = x @ self.weight.data.T
        if self.bias is not None:
            y += self.bias.data  # y = y + b, added in place into the fresh product
        return freeze(y)

    def backward(self, grad_output: Any, *, input_grad: bool = True) -> np.ndarray | None:
        """Accumulate dJ/dW and dJ/db, return dJ/dx (None with ``input_grad=False``).

        With ``g = dJ/dy`` of shape (N, out):

        - ``dJ/dW = g.T @ x``   (out, N) @ (N, in) -> (out, in): each sample's outer product,
          summed over the batch;
        - ``dJ/db = g.sum(0)``  (N, out) -> (out,): b is added to every row;
        - ``dJ/dx = g @ W``     (N, out) @ (out, in) -> (N, in).
        """
        x = self._x
        g = self._grad_output(grad_output, (x.shape[0], self.out_features), x.dtype)
        self.weight.accumulate_grad(g.T @ x)
        if self.bias is not None:
            self.bias.accumulate_grad(g.sum(axis=0))
        if not input_grad:  # the first layer: dJ/dX is not needed, skip its matrix product
            return None
        return g @ self.weight.data

    def extra_repr(self) -> str:
        text = (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )
        if self.dtype != DEFAULT_DTYPE:
            text += f", dtype={self.dtype}"
        return text


class ReLU(Module):
    """Rectified linear unit: ``y = max(x, 0)``, elementwise.

    The derivative is 1 where ``x > 0`` and 0 elsewhere, **including at x = 0** where ReLU has
    a kink and no derivative: 0 is PyTorch's choice there (its mask is ``x > 0``, not
    ``x >= 0``). The worked example has ``Z2[0, 0] = 0`` exactly, so the choice matters.

    Shape: input any shape, output the same.

    Examples:
        >>> relu = ReLU()
        >>> relu(np.array([-1.0, 0.0, 2.0]))
        array([0., 0., 2.])
        >>> relu.backward(np.array([5.0, 5.0, 5.0]))  # no gradient flows at x = 0
        array([0., 0., 5.])
    """

    _cache = ("_y",)
    _guards_its_arrays = True
    kinks_at = (0.0,)

    def forward(self, x: Any) -> np.ndarray:
        x = as_float_array(x, self, "input")
        self._y = freeze(np.maximum(x, 0))
        return self._y

    def backward(self, grad_output: Any, *, input_grad: bool = True) -> np.ndarray | None:
        """``dJ/dx = g * (x > 0)``: the gradient passes where the unit was active, else 0.

        ``x > 0`` exactly where the saved output ``y > 0``, so the output is all we keep.
        """
        y = self._y
        g = self._grad_output(grad_output, y.shape, y.dtype)
        if not input_grad:  # no parameters: nothing else to do
            return None
        return keep_where_active(g, y)  # np.where(y > 0, g, 0), faster: see _fast.py


class Sigmoid(Module):
    """Logistic function: ``y = 1 / (1 + exp(-x))``, elementwise.

    Computed with torch's formula (see ``sigmoid``): exactly 0 for x below about -88.7 in
    float32, exactly 1 above about 17, with no NumPy warnings.

    Shape: input any shape, output the same.

    Examples:
        >>> sigmoid = Sigmoid()
        >>> sigmoid(np.array([-1000.0, 0.0, 1000.0]))
        array([0. , 0.5, 1. ])
        >>> sigmoid.backward(np.array([1.0, 1.0, 1.0]))  # y * (1 - y)
        array([0.  , 0.25, 0.  ])
    """

    _cache = ("_y",)
    _guards_its_arrays = True

    def forward(self, x: Any) -> np.ndarray:
        x = as_float_array(x, self, "input")
        self._y = freeze(sigmoid(x))
        return self._y

    def backward(self, grad_output: Any, *, input_grad: bool = True) -> np.ndarray | None:
        """``dJ/dx = g * y * (1 - y)``, using the saved output y (sigma' = sigma (1 - sigma)).

        Evaluated as ``(g * (1 - y)) * y``, the order torch uses, so float32 results agree bit
        for bit.
        """
        y = self._y
        g = self._grad_output(grad_output, y.shape, y.dtype)
        if not input_grad:  # no parameters: nothing else to do
            return None
        return (g * (1 - y)) * y


class Tanh(Module):
    """Hyperbolic tangent: ``y = tanh(x)``, elementwise.

    Shape: input any shape, output the same.

    Examples:
        >>> tanh = Tanh()
        >>> tanh(np.array([0.0, 1000.0]))
        array([0., 1.])
        >>> tanh.backward(np.array([1.0, 1.0]))  # 1 - y**2
        array([1., 0.])
    """

    _cache = ("_y",)
    _guards_its_arrays = True

    def forward(self, x: Any) -> np.ndarray:
        x = as_float_array(x, self, "input")
        self._y = freeze(np.tanh(x))
        return self._y

    def backward(self, grad_output: Any, *, input_grad: bool = True) -> np.ndarray | None:
        """``dJ/dx = g * (1 - y^2)``, using the saved output y (tanh' = 1 - tanh^2).

        Evaluated as ``(1 - y) * (1 + y)``, the same number: near saturation (|y| close to 1)
        ``1 - y * y`` would subtract two nearly equal numbers after rounding ``y * y`` and
        lose most of its digits; the factored form keeps them (torch gets the same accuracy
        from a fused multiply-add).
        """
        y = self._y
        g = self._grad_output(grad_output, y.shape, y.dtype)
        if not input_grad:  # no parameters: nothing else to do
            return None
        with np.errstate(invalid="ignore"):  # an infinite g at y = +-1: NaN, as in torch
            return g * ((1 - y) * (1 + y))


class LeakyReLU(Module):
    """Leaky ReLU: ``y = x`` where ``x > 0``, else ``negative_slope * x``, elementwise.

    Like ReLU, the derivative at the kink x = 0 is taken from the left: ``negative_slope``.

    Args:
        negative_slope: slope for x <= 0 (default 0.01).

    Shape: input any shape, output the same.

    Examples:
        >>> leaky = LeakyReLU(0.1)
        >>> leaky(np.array([-2.0, 0.0, 3.0]))
        array([-0.2,  0. ,  3. ])
        >>> leaky.backward(np.array([1.0, 1.0, 1.0]))
        array([0.1, 0.1, 1. ])
    """

    _cache = ("_x",)
    _guards_its_arrays = True
    kinks_at = (0.0,)

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        if isinstance(negative_slope, bool) or not isinstance(
            negative_slope, (int, float, np.integer, np.floating)
        ):
            raise TypeError(f"LeakyReLU: negative_slope must be a number, got {negative_slope!r}")
        if not math.isfinite(negative_slope):
            raise ValueError(f"LeakyReLU: negative_slope must be finite, got {negative_slope}")
        self.negative_slope = float(negative_slope)

    def forward(self, input: Any) -> np.ndarray:
        x = as_float_array(input, self, "input")
        self._x = private(x, input)
        with np.errstate(invalid="ignore"):  # +-inf times a slope of 0: NaN, as in torch
            return freeze(np.where(x > 0, x, x * self.negative_slope))

    def backward(self, grad_output: Any, *, input_grad: bool = True) -> np.ndarray | None:
        """``dJ/dx = g`` where ``x > 0``, else ``g * negative_slope``."""
        x = self._x
        g = self._grad_output(grad_output, x.shape, x.dtype)
        if not input_grad:  # no parameters: nothing else to do
            return None
        with np.errstate(invalid="ignore"):
            return np.where(x > 0, g, g * self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Softmax(Module):
    """Softmax along ``dim``: ``y_j = exp(x_j) / sum_k exp(x_k)``, each slice summing to 1.

    Computed as ``exp(x - max(x))`` normalised, which is the same value without overflow.
    For a classifier's loss, give the logits to ``CrossEntropyLoss`` instead, which applies
    log-softmax itself, stably; this layer is for when the probabilities themselves are needed.

    Args:
        dim: the axis that sums to 1 (default -1, the last).

    Shape: input any shape with at least ``dim + 1`` axes (``(N, C)`` usually); output the same.

    Examples:
        >>> softmax = Softmax()
        >>> softmax(np.array([[0.0, 0.0], [1000.0, 0.0]]))
        array([[0.5, 0.5],
               [1. , 0. ]])
        >>> softmax.backward(np.array([[1.0, 0.0], [1.0, 0.0]]))
        array([[ 0.25, -0.25],
               [ 0.  ,  0.  ]])
    """

    _cache = ("_y",)
    _guards_its_arrays = True

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
            raise TypeError(f"Softmax: dim must be an int, got {dim!r}")
        self.dim = int(dim)

    def forward(self, x: Any) -> np.ndarray:
        x = as_float_array(x, self, "input")
        if not -x.ndim <= self.dim < x.ndim:
            raise ValueError(
                f"{self!r}: dim {self.dim} is out of range for input of shape {shape_str(x.shape)}"
            )
        if x.size == 0:  # nothing to normalise (torch returns the empty tensor too)
            self._y = freeze(x.copy())
            return self._y
        # (silenced: exp underflowing to 0 is expected; +inf or a row of all -inf gives NaN,
        # as in torch)
        with np.errstate(under="ignore", invalid="ignore"):
            e = np.exp(x - x.max(axis=self.dim, keepdims=True))
            self._y = freeze(e / e.sum(axis=self.dim, keepdims=True))
        return self._y

    def backward(self, grad_output: Any, *, input_grad: bool = True) -> np.ndarray | None:
        """``dJ/dx = y * (g - sum(g * y))``, the sum along ``dim``.

        The Jacobian of softmax is ``diag(y) - y y^T``; multiplying it by g gives this without
        forming the C x C matrix.
        """
        y = self._y
        g = self._grad_output(grad_output, y.shape, y.dtype)
        if not input_grad:  # no parameters: nothing else to do
            return None
        with np.errstate(invalid="ignore"):  # an infinite g: NaN where torch has NaN
            return y * (g - (g * y).sum(axis=self.dim, keepdims=True))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
