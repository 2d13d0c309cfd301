"""The activations: ``ReLU``, ``Sigmoid``, ``Tanh``, ``LeakyReLU``, ``Softmax``,
``LogSoftmax`` and ``GELU``, each forward beside its backward (torch's
``nn/modules/activation.py``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._arrays import as_float_array
from .._fast import keep_where_active
from ..module import Module
from ._functional import _check_dim, _dim, erf, log_softmax, sigmoid


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

    #: the forward and its derivative in LaTeX, for the derivation (Z: the input, A: the output)
    latex = (r"\mathrm{ReLU}(Z^{[l]}) = \max(0, Z^{[l]})", r"\mathbb{1}[Z^{[l]} > 0]")

    @staticmethod
    def derivative(z: np.ndarray, a: np.ndarray) -> np.ndarray:
        """dA/dZ at each element (the derivation's Jacobian view): 1 where z > 0."""
        return (z > 0).astype(np.float64)

    _cache = ("_y",)
    kinks_at = (0.0,)

    def forward(self, x: Any) -> np.ndarray:
        x = as_float_array(x, self, "input")
        self._y = np.maximum(x, 0)
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

    latex = (r"\sigma(Z^{[l]}) = \frac{1}{1 + e^{-Z^{[l]}}}", r"A^{[l]} \odot (1 - A^{[l]})")

    @staticmethod
    def derivative(z: np.ndarray, a: np.ndarray) -> np.ndarray:
        """dA/dZ at each element, from the output: a (1 - a)."""
        return a * (1 - a)

    _cache = ("_y",)

    def forward(self, x: Any) -> np.ndarray:
        x = as_float_array(x, self, "input")
        self._y = sigmoid(x)
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

    latex = (r"\tanh(Z^{[l]})", r"1 - A^{[l]} \odot A^{[l]}")

    @staticmethod
    def derivative(z: np.ndarray, a: np.ndarray) -> np.ndarray:
        """dA/dZ at each element, from the output: 1 - a^2."""
        return 1 - a * a

    _cache = ("_y",)

    def forward(self, x: Any) -> np.ndarray:
        x = as_float_array(x, self, "input")
        self._y = np.tanh(x)
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

    latex = (
        r"\max(Z^{[l]}, \alpha Z^{[l]})",
        r"\mathbb{1}[Z^{[l]} > 0] + \alpha\, \mathbb{1}[Z^{[l]} \le 0]",
    )

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        """dA/dZ at each element: 1 where z > 0, the negative slope elsewhere."""
        return np.where(z > 0, 1.0, self.negative_slope)

    _cache = ("_x",)
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
        self._x = x
        with np.errstate(invalid="ignore"):  # +-inf times a slope of 0: NaN, as in torch
            return np.where(x > 0, x, x * self.negative_slope)

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

    latex = (
        r"\mathrm{softmax}(Z^{[l]})_{nj} = \frac{e^{Z_{nj}}}{\sum_k e^{Z_{nk}}}",
        r"\text{(not elementwise: see the Jacobian)}",
    )
    #: its backward in words, for the derivation (not elementwise)
    latex_rows = r"Row by row: $G \mapsto A \odot (G - \sum_j G \odot A)$"

    @staticmethod
    def jacobian(a_row: np.ndarray) -> np.ndarray:
        """dA_i/dZ_j of one row (the derivation's Jacobian view): A_i ([i == j] - A_j)."""
        return np.diag(a_row) - np.outer(a_row, a_row)

    _cache = ("_y",)

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = _dim(dim, "Softmax")

    def forward(self, x: Any) -> np.ndarray:
        x = as_float_array(x, self, "input")
        _check_dim(self, x)
        if x.size == 0:  # nothing to normalise (torch returns the empty tensor too)
            self._y = x.copy()
            return self._y
        # (silenced: exp underflowing to 0 is expected; +inf or a row of all -inf gives NaN,
        # as in torch)
        with np.errstate(under="ignore", invalid="ignore"):
            e = np.exp(x - x.max(axis=self.dim, keepdims=True))
            self._y = e / e.sum(axis=self.dim, keepdims=True)
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

    latex = (
        r"\log \mathrm{softmax}(Z^{[l]})_{nj} = Z_{nj} - \log \sum_k e^{Z_{nk}}",
        r"\text{(not elementwise: see the Jacobian)}",
    )
    latex_rows = r"Row by row: $G \mapsto G - e^{A} \sum_j G$ (with $e^{A}$ the softmax)"

    @staticmethod
    def jacobian(a_row: np.ndarray) -> np.ndarray:
        """dA_i/dZ_j of one row: [i == j] - p_j, with p = e^A the softmax."""
        return np.eye(len(a_row)) - np.outer(np.ones_like(a_row), np.exp(a_row))

    _cache = ("_y",)

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = _dim(dim, "LogSoftmax")

    def forward(self, x: Any) -> np.ndarray:
        x = as_float_array(x, self, "input")
        _check_dim(self, x)
        if x.size == 0:  # nothing to normalise (torch returns the empty tensor too)
            self._y = x.copy()
        else:
            self._y = log_softmax(x, axis=self.dim)
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

    @property
    def latex(self) -> tuple[str, str]:
        """The forward and its derivative in LaTeX (exact, or the tanh approximation)."""
        if self.approximate == "tanh":
            return (
                r"\tfrac{1}{2} Z^{[l]} \odot \left(1 + \tanh U\right), \quad U = \sqrt{2/\pi}\,"
                r"(Z^{[l]} + 0.044715\, (Z^{[l]})^{3})",
                r"\tfrac{1}{2}(1 + \tanh U) + \tfrac{1}{2} Z^{[l]} \odot (1 - \tanh^2 U) \odot "
                r"\sqrt{2/\pi}\,(1 + 3 \cdot 0.044715\, (Z^{[l]})^{2})",
            )
        return (
            r"Z^{[l]} \odot \Phi(Z^{[l]}), \quad \Phi(z) = \tfrac{1}{2}\left(1 + "
            r"\operatorname{erf}(z / \sqrt{2})\right)",
            r"\Phi(Z^{[l]}) + Z^{[l]} \odot \varphi(Z^{[l]}), \quad \varphi(z) = "
            r"\tfrac{1}{\sqrt{2\pi}} e^{-z^2/2}",
        )

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        """dA/dZ at each element: a fresh GELU of the same kind, run in float64."""
        gelu = GELU(self.approximate)
        gelu(z)
        return gelu.backward(np.ones_like(z))

    _cache = ("_x",)
    _KAPPA = 0.044715
    _SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input: Any) -> np.ndarray:
        x = as_float_array(input, self, "input")
        self._x = x
        with np.errstate(over="ignore", invalid="ignore"):  # x^3 overflowing: tanh is +-1
            return x * self._cdf(x)

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
