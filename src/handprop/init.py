"""Weight initialisation, as ``torch.nn.init``: the same names, arguments, bounds and stds.

Each function fills a ``Parameter`` (its ``.data``) or a NumPy array in place and returns it;
``rng=`` (a seed or an ``np.random.Generator``; None draws fresh entropy) makes the draw
repeatable without touching NumPy's global seed.

Why the scales: a layer ``y = x W^T`` with ``fan_in`` inputs of variance 1 and weights of
variance ``s^2`` gives outputs of variance ``fan_in * s^2``. Keeping that at 1 through many
layers needs ``s = gain / sqrt(fan_in)`` (Kaiming/He), where the *gain* makes up for what the
activation removes: ReLU zeroes half its inputs, so ``gain = sqrt(2)``; tanh squashes, so
``5/3``; a linear layer or sigmoid, 1. Xavier/Glorot averages the forward and the backward
view, ``s = gain * sqrt(2 / (fan_in + fan_out))``. docs/init.md shows the activations per
layer that each choice gives.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .module import Parameter

__all__ = [
    "calculate_gain",
    "constant_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "orthogonal_",
    "trunc_normal_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]

_LINEAR = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The gain for an activation (torch's values):

    ============================  ==================================
    linear, conv, sigmoid          1
    tanh                           5/3
    relu                           sqrt(2)
    leaky_relu                     sqrt(2 / (1 + negative_slope^2)), slope ``param`` (0.01)
    selu                           3/4
    ============================  ==================================

    Examples:
        >>> calculate_gain("relu") == 2 ** 0.5, calculate_gain("tanh")
        (True, 1.6666666666666667)
    """
    if nonlinearity in (*_LINEAR, "conv_transpose3d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _array(tensor: Any, owner: str) -> np.ndarray:
    """The array to fill: a Parameter's data or a float ndarray itself (written in place)."""
    array = tensor.data if isinstance(tensor, Parameter) else tensor
    if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
        raise TypeError(
            f"{owner}: expected a Parameter or a float ndarray, got {type(tensor).__name__}"
        )
    if not array.flags.writeable:
        raise ValueError(f"{owner}: the array is read-only (a module's output?); pass a copy")
    return array


def _fill(tensor: Any, values: np.ndarray) -> Any:
    _array(tensor, "init")[...] = values
    return tensor


def _fans(array: np.ndarray, owner: str) -> tuple[int, int]:
    """(fan_in, fan_out): for a weight (out, in, *kernel), in * kernel size and out * kernel
    size."""
    if array.ndim < 2:
        raise ValueError(
            f"{owner}: Fan in and fan out can not be computed for tensor with fewer than 2 "
            f"dimensions (got shape {array.shape})"
        )
    receptive = math.prod(array.shape[2:])
    return array.shape[1] * receptive, array.shape[0] * receptive


def _fan(array: np.ndarray, mode: str, owner: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{owner}: Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _fans(array, owner)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor: Any, a: float = 0.0, b: float = 1.0, *, rng: Any = None) -> Any:
    """Fill with values drawn from U(a, b)."""
    array = _array(tensor, "uniform_")
    return _fill(tensor, np.random.default_rng(rng).uniform(a, b, size=array.shape))


def normal_(tensor: Any, mean: float = 0.0, std: float = 1.0, *, rng: Any = None) -> Any:
    """Fill with values drawn from N(mean, std^2)."""
    array = _array(tensor, "normal_")
    return _fill(tensor, np.random.default_rng(rng).normal(mean, std, size=array.shape))


def constant_(tensor: Any, val: float) -> Any:
    """Fill with ``val``."""
    _array(tensor, "constant_")
    return _fill(tensor, val)


def zeros_(tensor: Any) -> Any:
    """Fill with 0."""
    return constant_(tensor, 0.0)


def ones_(tensor: Any) -> Any:
    """Fill with 1."""
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor: Any, gain: float = 1.0, *, rng: Any = None) -> Any:
    """Glorot/Xavier uniform: U(-a, a), ``a = gain * sqrt(6 / (fan_in + fan_out))`` (the std
    ``gain * sqrt(2 / (fan_in + fan_out))`` times sqrt(3), a uniform's std-to-bound ratio).

    Examples:
        >>> w = xavier_uniform_(np.empty((30, 20)), rng=0)
        >>> bool(np.abs(w).max() <= (6 / 50) ** 0.5)
        True
    """
    array = _array(tensor, "xavier_uniform_")
    if array.size == 0:  # nothing to fill (torch warns and returns too)
        return tensor
    fan_in, fan_out = _fans(array, "xavier_uniform_")
    bound = math.sqrt(3.0) * gain * math.sqrt(2.0 / (fan_in + fan_out))
    return _fill(tensor, np.random.default_rng(rng).uniform(-bound, bound, size=array.shape))


def xavier_normal_(tensor: Any, gain: float = 1.0, *, rng: Any = None) -> Any:
    """Glorot/Xavier normal: N(0, std^2), ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    array = _array(tensor, "xavier_normal_")
    if array.size == 0:  # nothing to fill (torch warns and returns too)
        return tensor
    fan_in, fan_out = _fans(array, "xavier_normal_")
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return _fill(tensor, np.random.default_rng(rng).normal(0.0, std, size=array.shape))


def _kaiming_std(array, a, mode, nonlinearity, owner) -> float:
    return calculate_gain(nonlinearity, a) / math.sqrt(_fan(array, mode, owner))


def kaiming_uniform_(
    tensor: Any,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    *,
    rng: Any = None,
) -> Any:
    """He/Kaiming uniform: U(-bound, bound), ``bound = sqrt(3) * gain / sqrt(fan)``, with
    ``gain = calculate_gain(nonlinearity, a)`` and ``fan`` the ``mode``'s (fan_in keeps the
    forward pass's variance, fan_out the backward's). torch's defaults (``a=0``,
    ``leaky_relu``) give ReLU's gain sqrt(2)."""
    array = _array(tensor, "kaiming_uniform_")
    if array.size == 0:  # nothing to fill (torch warns and returns too)
        return tensor
    bound = math.sqrt(3.0) * _kaiming_std(array, a, mode, nonlinearity, "kaiming_uniform_")
    return _fill(tensor, np.random.default_rng(rng).uniform(-bound, bound, size=array.shape))


def kaiming_normal_(
    tensor: Any,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    *,
    rng: Any = None,
) -> Any:
    """He/Kaiming normal: N(0, std^2), ``std = gain / sqrt(fan)`` (see ``kaiming_uniform_``)."""
    array = _array(tensor, "kaiming_normal_")
    if array.size == 0:  # nothing to fill (torch warns and returns too)
        return tensor
    std = _kaiming_std(array, a, mode, nonlinearity, "kaiming_normal_")
    return _fill(tensor, np.random.default_rng(rng).normal(0.0, std, size=array.shape))


def trunc_normal_(
    tensor: Any,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    *,
    rng: Any = None,
) -> Any:
    """N(mean, std^2) truncated to [a, b]. As in torch, ``a`` and ``b`` are values, **not**
    multiples of std: ``trunc_normal_(w, std=0.02)`` keeps everything in [-2, 2], which cuts
    nothing; for two standard deviations write ``a=-0.04, b=0.04``.

    Values outside [a, b] are drawn again until none is left (the distribution is exactly the
    truncated normal's)."""
    array = _array(tensor, "trunc_normal_")
    if not a < b:
        raise ValueError(f"trunc_normal_: a must be less than b, got a={a}, b={b}")
    mass = 0.5 * (
        math.erf((b - mean) / (std * math.sqrt(2))) - math.erf((a - mean) / (std * math.sqrt(2)))
    )
    if mass < 1e-4:
        raise ValueError(
            f"trunc_normal_: [{a}, {b}] holds {mass:.1e} of N({mean}, {std}^2): nothing to draw "
            "from (are a and b given in units of std? they are values)"
        )
    generator = np.random.default_rng(rng)
    values = generator.normal(mean, std, size=array.shape)
    outside = (values < a) | (values > b)
    while outside.any():
        values[outside] = generator.normal(mean, std, size=int(outside.sum()))
        outside = (values < a) | (values > b)
    return _fill(tensor, values)


def orthogonal_(tensor: Any, gain: float = 1.0, *, rng: Any = None) -> Any:
    """A (semi-)orthogonal matrix times ``gain``: the rows (or the columns, whichever are
    fewer) are orthonormal, from the QR decomposition of a Gaussian matrix, signs fixed by
    R's diagonal so that the result is uniformly distributed (torch's method). A tensor of
    more than 2 dimensions is viewed as (shape[0], the rest)."""
    array = _array(tensor, "orthogonal_")
    if array.size == 0:  # nothing to fill (torch warns and returns too)
        return tensor
    if array.ndim < 2:
        raise ValueError("orthogonal_: Only tensors with 2 or more dimensions are supported")
    rows, cols = array.shape[0], array.size // array.shape[0]
    flat = np.random.default_rng(rng).normal(size=(rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))  # the sign of each column from R: a uniform draw, not a biased one
    if rows < cols:
        q = q.T
    return _fill(tensor, (gain * q).reshape(array.shape))
