"""Layers: ``Linear``; the activations ``ReLU``, ``Sigmoid``, ``Tanh``, ``LeakyReLU``, ``GELU``,
``Softmax``, ``LogSoftmax``; ``Dropout`` and ``Identity``; ``BatchNorm1d``, ``BatchNorm2d`` and
``LayerNorm``; and, from ``conv.py``, ``Conv2d``, ``MaxPool2d``, ``AvgPool2d`` and ``Flatten``.

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

__all__ = [
    "GELU",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "Dropout",
    "Flatten",
    "Identity",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MaxPool2d",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
]


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
        self.dim = _dim(dim, "Softmax")

    def forward(self, x: Any) -> np.ndarray:
        x = as_float_array(x, self, "input")
        _check_dim(self, x)
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


class LogSoftmax(Module):
    """Log-softmax along ``dim``: ``y_j = x_j - log sum_k exp(x_k)``, the log of ``Softmax``.

    Computed as ``x - max - log(sum(exp(x - max)))`` (see ``log_softmax``): no overflow for
    large logits, and no ``log(0) = -inf`` for very unlikely classes, which ``log(softmax(x))``
    would give. Followed by ``NLLLoss`` it is ``CrossEntropyLoss``, in two steps.

    Args:
        dim: the axis the probabilities are taken along (default -1, the last).

    Shape: input any shape with at least ``dim + 1`` axes (``(N, C)`` usually); output the same.

    Examples:
        >>> log_softmax_layer = LogSoftmax(dim=1)
        >>> log_softmax_layer(np.array([[0.0, 0.0], [100.0, 0.0]])).round(6)  # log(1/2)
        array([[  -0.693147,   -0.693147],
               [   0.      , -100.      ]])
        >>> log_softmax_layer.backward(np.array([[1.0, 0.0], [1.0, 0.0]])).round(6)  # g - p sum(g)
        array([[ 0.5, -0.5],
               [ 0. , -0. ]])
    """

    _cache = ("_y",)
    _guards_its_arrays = True

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = _dim(dim, "LogSoftmax")

    def forward(self, x: Any) -> np.ndarray:
        x = as_float_array(x, self, "input")
        _check_dim(self, x)
        if x.size == 0:  # nothing to normalise (torch returns the empty tensor too)
            self._y = freeze(x.copy())
        else:
            self._y = freeze(log_softmax(x, axis=self.dim))
        return self._y

    def backward(self, grad_output: Any, *, input_grad: bool = True) -> np.ndarray | None:
        """``dJ/dx = g - softmax(x) * sum(g)``, the sum along ``dim``, softmax = ``exp(y)``.

        From ``dy_i/dx_j = [i == j] - softmax(x)_j``: every output depends on every input of
        its slice through the log-sum-exp, so each input gets its own gradient minus its
        probability times the slice's total gradient.
        """
        y = self._y
        g = self._grad_output(grad_output, y.shape, y.dtype)
        if not input_grad:  # no parameters: nothing else to do
            return None
        with np.errstate(invalid="ignore", under="ignore"):  # inf/NaN as torch, silently
            return g - np.exp(y) * g.sum(axis=self.dim, keepdims=True)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class GELU(Module):
    """Gaussian error linear unit: ``y = x * Phi(x)``, elementwise, ``Phi`` the standard normal
    distribution function, ``Phi(x) = (1 + erf(x / sqrt(2))) / 2``.

    With ``approximate="tanh"``, torch's (and GPT-2's) approximation
    ``Phi(x) ~ (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2``.

    Args:
        approximate: ``"none"`` (default, the exact erf form) or ``"tanh"``.

    Shape: input any shape, output the same.

    Examples:
        >>> gelu = GELU()
        >>> gelu(np.array([-1.0, 0.0, 1.0]))
        array([-0.15865525,  0.        ,  0.84134475])
        >>> gelu.backward(np.array([1.0, 1.0, 1.0]))  # Phi(x) + x phi(x)
        array([-0.08331547,  0.5       ,  1.08331547])
    """

    _cache = ("_x",)
    _guards_its_arrays = True
    _KAPPA = 0.044715
    _SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input: Any) -> np.ndarray:
        x = as_float_array(input, self, "input")
        self._x = private(x, input)
        with np.errstate(over="ignore", invalid="ignore"):  # x^3 overflowing: tanh is +-1
            return freeze(x * self._cdf(x))

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        """``Phi(x)``, exact or approximated."""
        if self.approximate == "tanh":
            x_cube = x * x * x  # as torch: (x * x) * x
            return 0.5 * (1 + np.tanh(self._SQRT_2_OVER_PI * (x + self._KAPPA * x_cube)))
        return 0.5 * (1 + erf(x / np.sqrt(x.dtype.type(2))))

    def backward(self, grad_output: Any, *, input_grad: bool = True) -> np.ndarray | None:
        """``dJ/dx = g * (Phi(x) + x * phi(x))``, the product rule on ``x * Phi(x)``, with
        ``phi(x) = exp(-x^2 / 2) / sqrt(2 pi)`` the normal density (``Phi' = phi``).

        For ``"tanh"``: with ``u = sqrt(2/pi) (x + 0.044715 x^3)`` and ``t = tanh(u)``,
        ``d/dx [x (1 + t) / 2] = (1 + t) / 2 + x / 2 * (1 - t^2) * du/dx``, where
        ``du/dx = sqrt(2/pi) (1 + 3 * 0.044715 x^2)``.
        """
        x = self._x
        g = self._grad_output(grad_output, x.shape, x.dtype)
        if not input_grad:  # no parameters: nothing else to do
            return None
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            if self.approximate == "tanh":
                # torch's association, term by term: where 1 + t cancels (x below about -3)
                # the rounding of each step shows, so the steps are torch's
                x_sq = x * x
                t = np.tanh(self._SQRT_2_OVER_PI * (x + self._KAPPA * (x_sq * x)))
                du_dx = self._SQRT_2_OVER_PI * (1 + 3 * self._KAPPA * x_sq)
                slope = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du_dx
            else:
                pdf = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
                slope = self._cdf(x) + x * pdf
            return g * slope.astype(x.dtype, copy=False)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Identity(Module):
    """``y = x``: a placeholder that passes its input through (and its gradient back).

    Useful where a model has an optional step (``Dropout(p) if p else Identity()``).
    Arguments are accepted and ignored, as in torch.

    Shape: input any shape, output the same.

    Examples:
        >>> identity = Identity()
        >>> identity(np.array([1.0, -2.0]))
        array([ 1., -2.])
        >>> identity.backward(np.array([3.0, 4.0]))
        array([3., 4.])
    """

    _cache = ("_shape", "_dtype")
    _guards_its_arrays = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Any) -> np.ndarray:
        x = as_float_array(input, self, "input")
        self._shape, self._dtype = x.shape, x.dtype
        return private(x, input)  # read-only like every output; the caller's array is copied

    def backward(self, grad_output: Any, *, input_grad: bool = True) -> np.ndarray | None:
        """``dJ/dx = g``: the derivative of ``x`` is 1."""
        g = self._grad_output(grad_output, self._shape, self._dtype)
        return g if input_grad else None


class Dropout(Module):
    """Dropout: in training, each element is zeroed with probability ``p`` and the others are
    scaled by ``1 / (1 - p)``; in evaluation (``model.eval()``), ``y = x``.

    The scaling ("inverted dropout", torch's) keeps every element's expected value:
    ``E[y] = (1 - p) * x / (1 - p) = x``, so evaluation needs no rescaling. ``p`` is the
    probability to *drop* (torch's convention; some texts use the keep probability). After a
    training forward, ``.mask`` is the boolean keep-mask used (True = kept), so the same mask
    can be given to torch or used by hand.

    Args:
        p: drop probability in [0, 1] (default 0.5); ``p = 1`` zeroes everything.
        rng: seed (int) or ``np.random.Generator`` for the masks; None draws fresh entropy.

    Shape: input any shape, output the same.

    Examples:
        >>> dropout = Dropout(p=0.5, rng=0)
        >>> dropout(np.ones((2, 4)))
        array([[2., 0., 0., 0.],
               [2., 2., 2., 2.]])
        >>> dropout.mask
        array([[ True, False, False, False],
               [ True,  True,  True,  True]])
        >>> dropout.backward(np.ones((2, 4)))  # the same mask and scale
        array([[2., 0., 0., 0.],
               [2., 2., 2., 2.]])
        >>> dropout.eval()(np.ones((1, 2)))  # evaluation: the identity
        array([[1., 1.]])
    """

    _cache = ("_mask", "_scale", "_shape", "_dtype")
    _guards_its_arrays = True

    def __init__(self, p: float = 0.5, *, rng: int | np.random.Generator | None = None) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
            raise TypeError(f"Dropout: p must be a number, got {p!r}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = float(p)
        self.rng = np.random.default_rng(rng)
        self.mask: np.ndarray | None = None
        # set by gradcheck: a mask every training forward reuses instead of drawing one, so
        # that finite differences see the function whose gradient backward computed
        self._fixed_mask: np.ndarray | None = None

    def forward(self, input: Any) -> np.ndarray:
        x = as_float_array(input, self, "input")
        self._shape, self._dtype = x.shape, x.dtype
        if not self.training or self.p == 0.0:
            self._mask, self._scale = None, None
            return private(x, input)
        # keep each element with probability 1 - p; p = 1 keeps none (and scales by 0, not inf)
        fixed = self._fixed_mask
        if fixed is not None and fixed.shape == x.shape:
            self.mask = fixed
        else:
            self.mask = freeze(self.rng.random(x.shape) >= self.p)
        self._mask = self.mask
        self._scale = x.dtype.type(0.0 if self.p == 1.0 else 1.0 / (1.0 - self.p))
        with np.errstate(invalid="ignore"):  # inf * 0 for a dropped infinity: NaN, as torch
            return freeze(x * self._mask * self._scale)

    def backward(self, grad_output: Any, *, input_grad: bool = True) -> np.ndarray | None:
        """``dJ/dx = g * mask / (1 - p)`` in training (the same mask and scale as forward:
        a dropped element got no input, so it passes no gradient); ``g`` in evaluation."""
        g = self._grad_output(grad_output, self._shape, self._dtype)
        if not input_grad:  # no parameters: nothing else to do
            return None
        if self._mask is None:  # evaluation (or p = 0): the identity
            return g
        with np.errstate(invalid="ignore"):
            return g * self._mask * self._scale

    def extra_repr(self) -> str:
        return f"p={self.p}"


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

    _cache = ("_x_hat", "_inv_std", "_axes")
    _guards_its_arrays = True

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
        self._x_hat, self._inv_std, self._axes = freeze(x_hat), inv_std.reshape(shape), axes
        if not batch_stats:  # the statistics are constants: backward is a plain scaling
            self._axes = None
        y = x_hat if not self.affine else x_hat * self.weight.data.reshape(shape)
        if self.bias is not None:
            y = y + self.bias.data.reshape(shape)
        return freeze(y)

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

    _cache = ("_x_hat", "_inv_std")
    _guards_its_arrays = True

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
        self._x_hat, self._inv_std = freeze(x_hat), inv_std
        y = x_hat
        if self.weight is not None:
            y = y * self.weight.data
        if self.bias is not None:
            y = y + self.bias.data
        return freeze(y)

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


# The convolutional layers live in conv.py (one file per topic stays readable) and are part of
# this module's namespace, so that ``from handprop.layers import Conv2d`` works as for Linear.
from .conv import AvgPool2d, Conv2d, Flatten, MaxPool2d  # noqa: E402
