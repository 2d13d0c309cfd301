"""``Linear`` (``y = x W^T + b``) and ``Identity``, as torch's ``nn/modules/linear.py``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._arrays import DEFAULT_DTYPE, as_float_array, float_dtype, shape_str
from ..module import Module, Parameter
from ._functional import _positive_int


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
        - Input ``x``: ``(*, in_features)``: any number of leading axes, as in torch: a batch
          ``(N, in_features)``, a batch of sequences ``(B, T, in_features)``, or one sample
          ``(in_features,)``
        - Output ``y``: ``(*, out_features)``, the same leading axes
        - ``weight``: ``(out_features, in_features)``, ``bias``: ``(out_features,)``

    Examples:
        >>> layer = Linear(2, 3, rng=0)
        >>> layer.weight.shape, layer.bias.shape
        ((3, 2), (3,))
        >>> y = layer(np.array([[1, 2], [3, 4]]))  # ints are cast to float32
        >>> y.shape, y.dtype
        ((2, 3), dtype('float32'))
        >>> layer(np.ones((4, 5, 2))).shape  # (B, T, in): the product over the last axis
        (4, 5, 3)
    """

    role = "affine"
    _cache = ("_x",)

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

    @classmethod
    def state_shapes(cls, in_features, out_features, bias=True, dtype=np.float32, **_):
        """``weight`` (out_features, in_features) and ``bias`` (out_features,), without
        allocating them (``load`` compares a file's arrays with these first)."""
        n_in = _positive_int(in_features, "Linear", "in_features")
        n_out = _positive_int(out_features, "Linear", "out_features")
        dtype = float_dtype(dtype, "Linear")
        shapes = {"weight": ((n_out, n_in), dtype, "parameter")}
        if bias:
            shapes["bias"] = ((n_out,), dtype, "parameter")
        return shapes

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
        """``y = x @ W.T + b``: (*, in) @ (in, out) + (out,) -> (*, out), each row of the last
        axis on its own (NumPy's ``@`` runs over the leading axes)."""
        x = as_float_array(input, self, "input", self.weight.data.dtype)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"{self!r}: expected input of shape (*, {self.in_features}) (a last axis of "
                f"{self.in_features} features), got {shape_str(x.shape)}"
            )
        self._x = x
        if x.ndim == 1:  # one sample: a vector-matrix product (see _vector_product)
            y = _vector_product(x, self.weight.data.T)
        else:
            y = x @ self.weight.data.T
        if self.bias is not None:
            y += self.bias.data  # y = y + b, added in place into the fresh product
        return y

    def backward(self, grad_output: Any, *, input_grad: bool = True) -> np.ndarray | None:
        """Accumulate dJ/dW and dJ/db, return dJ/dx (None with ``input_grad=False``).

        With ``g = dJ/dy`` of shape (N, out):

        - ``dJ/dW = g.T @ x``   (out, N) @ (N, in) -> (out, in): each sample's outer product,
          summed over the batch;
        - ``dJ/db = g.sum(0)``  (N, out) -> (out,): b is added to every row;
        - ``dJ/dx = g @ W``     (N, out) @ (out, in) -> (N, in).

        With more leading axes, ``(B, T, in)`` say, every row of the last axis is a sample:
        the same formulas on ``x`` and ``g`` flattened to ``(B * T, in)`` and ``(B * T, out)``
        (W and b are shared by every position, so their gradients sum over all of them), and
        ``dJ/dx = g @ W`` keeps the leading axes.
        """
        x = self._x
        g = self._grad_output(grad_output, (*x.shape[:-1], self.out_features), x.dtype)
        rows_g, rows_x = g, x  # (N, out) and (N, in): for a batch, g and x themselves
        if x.ndim != 2:  # (B, T, in) and the like: one row per position
            rows_g, rows_x = g.reshape(-1, self.out_features), x.reshape(-1, self.in_features)
        self.weight.accumulate_grad(rows_g.T @ rows_x)
        if self.bias is not None:
            self.bias.accumulate_grad(rows_g.sum(axis=0))
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

    latex = (r"Z^{[l]}", r"1")

    @staticmethod
    def derivative(z: np.ndarray, a: np.ndarray) -> np.ndarray:
        """dA/dZ at each element: 1."""
        return np.ones_like(z)

    _cache = ("_shape", "_dtype")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Any) -> np.ndarray:
        x = as_float_array(input, self, "input")
        self._shape, self._dtype = x.shape, x.dtype
        return x  # (read-only, as every output)

    def backward(self, grad_output: Any, *, input_grad: bool = True) -> np.ndarray | None:
        """``dJ/dx = g``: the derivative of ``x`` is 1."""
        g = self._grad_output(grad_output, self._shape, self._dtype)
        return g if input_grad else None


def _vector_product(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``x @ w`` for one sample ``x`` (in,). OpenBLAS's small vector-matrix kernels have been
    seen to raise the floating-point "invalid" flag on finite numbers (on a 5-vector, once in
    a test run: the kernel reads past the vector's end; numpy/numpy#24067 is a case of the
    kind), which NumPy turns into a RuntimeWarning; the product itself is right. The flag is
    ignored here, on this path only: a batch's matrix product is another kernel, and a real
    NaN or infinity still shows in the result."""
    with np.errstate(invalid="ignore"):
        return x @ w
