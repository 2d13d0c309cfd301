"""``Conv2d``: a 2-D convolution with torch's arguments, shapes and numbers (torch's
``nn/modules/conv.py``); the pooling layers and ``Flatten`` have files of their own.

Images are ``(N, C, H, W)``: batch, channels, height, width. The forward and backward sit side
by side, as in every file of ``handprop.layers``. A convolution is computed the fast way,
*im2col*: every window the kernel visits is copied into one row of a matrix, so that the whole
convolution is one matrix product; ``conv2d_loops`` below is the same convolution as the nested
loops of its definition, for reading (a test checks that both give the same numbers).
docs/layers/conv2d.md derives the backward.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from .._arrays import DEFAULT_DTYPE, as_float_array, float_dtype, shape_str
from ..module import Module, Parameter


def _pair(value: Any, owner: str, name: str, *, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, each at least ``minimum``, as a pair (torch's ``_pair``)."""
    values = value if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2 or any(
        isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in values
    ):
        raise TypeError(f"{owner}: {name} must be an int or a pair of ints, got {value!r}")
    if any(v < minimum for v in values):
        raise ValueError(f"{owner}: {name} must be at least {minimum}, got {value!r}")
    return int(values[0]), int(values[1])


def _image(module: Module, input: Any, dtype: np.dtype | None = None) -> np.ndarray:
    """The input as a float (N, C, H, W) array, or a clear error (a single image needs its
    batch axis: ``x[None]``)."""
    x = as_float_array(input, module, "input", dtype)
    if x.ndim != 4:
        hint = "; for one image use x[None]" if x.ndim == 3 else ""
        raise ValueError(
            f"{module!r}: expected input of shape (N, C, H, W), got {shape_str(x.shape)}{hint}"
        )
    return x


def _output_size(
    size: int, kernel: int, stride: int, pad: tuple[int, int], dilation: int, ceil_mode=False
) -> int:
    """How many windows fit: ``floor((size + pads - dilation * (kernel - 1) - 1) / stride) + 1``
    (rounded up with ``ceil_mode``; then a last window must still start inside the input or
    its left padding, torch's rule). 0 when not even one fits."""
    span = size + pad[0] + pad[1] - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1  # // floors, as torch's
    if ceil_mode and (out - 1) * stride >= size + pad[0]:
        out -= 1
    return max(out, 0)


def _taps(kernel, stride, dilation, out):
    """For each kernel position (a, b), in row-major order, the slices of the padded input that
    it reads across all windows: rows ``a*dH, a*dH + sH, ...`` (Ho of them), columns alike.
    Window (i, j) reads ``xp[..., i*sH + a*dH, j*sW + b*dW]`` at tap (a, b), so the slice
    pair gives that tap for every window at once."""
    for a in range(kernel[0]):
        rows = slice(a * dilation[0], a * dilation[0] + stride[0] * (out[0] - 1) + 1, stride[0])
        for b in range(kernel[1]):
            cols = slice(b * dilation[1], b * dilation[1] + stride[1] * (out[1] - 1) + 1, stride[1])
            yield a, b, rows, cols


def _im2col(xp: np.ndarray, kernel, stride, dilation, out) -> np.ndarray:
    """The windows of the padded input ``xp`` (N, C, Hp, Wp) as columns: an array
    ``(C, kH, kW, Ho, Wo, N)`` whose element ``[c, a, b, i, j, n]`` is the input under tap
    (a, b) of window (i, j): ``xp[n, c, i*sH + a*dH, j*sW + b*dW]``. Reshaped to
    ``(C*kH*kW, Ho*Wo*N)`` it is the matrix X_col (transposed: one row per channel and tap,
    one column per window). Filled with one strided copy per tap; the batch axis is last so
    that each copy moves runs of N numbers, not single ones."""
    cols = np.empty((xp.shape[1], *kernel, *out, xp.shape[0]), xp.dtype)
    batch_last = np.ascontiguousarray(xp.transpose(1, 2, 3, 0))  # (C, Hp, Wp, N)
    for a, b, rows, columns in _taps(kernel, stride, dilation, out):
        cols[:, a, b] = batch_last[:, rows, columns]
    return cols


def _col2im(dcols: np.ndarray, padded_shape, stride, dilation) -> np.ndarray:
    """The backward of ``_im2col``: ``dcols`` (C, kH, kW, Ho, Wo, N) added back where each
    element was copied from, into an array of the padded input's shape (N, C, Hp, Wp). An
    input read by several windows (they overlap) receives the sum of their gradients."""
    c, kh, kw, ho, wo, n = dcols.shape
    dxp = np.zeros((c, *padded_shape[2:], n), dcols.dtype)  # batch last, as dcols
    for a, b, rows, columns in _taps((kh, kw), stride, dilation, (ho, wo)):
        dxp[:, rows, columns] += dcols[:, a, b]
    return dxp.transpose(3, 0, 1, 2)


def _pad(x: np.ndarray, padding, value: float = 0.0) -> np.ndarray:
    (top, bottom), (left, right) = padding
    if not (top or bottom or left or right):
        return x
    width = ((0, 0), (0, 0), (top, bottom), (left, right))
    return np.pad(x, width, constant_values=value)


def _crop(dxp: np.ndarray, padding, shape) -> np.ndarray:
    (top, _), (left, _) = padding
    return dxp[:, :, top : top + shape[2], left : left + shape[3]]


# --- Conv2d -----------------------------------------------------------------------------------


class Conv2d(Module):
    """2-D convolution (torch's, a cross-correlation): for output channel o at (i, j),

    ``y[n, o, i, j] = b[o] + sum_{c, a, e} W[o, c, a, e] * xp[n, g*Cg + c, i*s + a*d, j*s + e*d]``

    where xp is the zero-padded input, s the stride, d the dilation, and the sum runs over the
    Cg = C / groups input channels of o's group g and the kernel's kH x kW positions.

    Args:
        in_channels: C, the input's channels.
        out_channels: O, the output's channels (the number of filters).
        kernel_size: kH x kW, an int or a pair.
        stride: step between windows (default 1), an int or a pair.
        padding: zeros added on each side (default 0), an int, a pair, or ``"valid"`` (none)
            or ``"same"`` (the output as large as the input; stride 1 only; an odd total is
            split with the extra zero at the bottom/right, as torch).
        dilation: spacing between the kernel's taps (default 1).
        groups: split the channels into this many independent convolutions (default 1;
            ``groups = C`` is a depthwise convolution).
        bias: learn a bias per output channel (default True).
        dtype: ``np.float32`` (default) or ``np.float64``.
        rng: seed or Generator for the initial values: uniform in +-1/sqrt(fan_in), with
            fan_in = Cg * kH * kW (torch's default, ``kaiming_uniform_(a=sqrt(5))``).

    Shape:
        - Input ``(N, C, H, W)``; output ``(N, O, Ho, Wo)``, with
          ``Ho = floor((H + pad_top + pad_bottom - d * (kH - 1) - 1) / s) + 1`` (Wo alike).
        - ``weight``: ``(O, C / groups, kH, kW)``; ``bias``: ``(O,)``.

    Examples:
        >>> conv = Conv2d(1, 1, 2, bias=False)
        >>> conv.weight.data[...] = [[[[1, 0], [0, -1]]]]  # top-left minus bottom-right
        >>> conv(np.arange(9.0).reshape(1, 1, 3, 3))
        array([[[[-4., -4.],
                 [-4., -4.]]]], dtype=float32)
    """

    role = "affine"
    _cache = ("_cols", "_x_shape", "_out")

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        *,
        dtype: Any = np.float32,
        rng: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = _pair(in_channels, "Conv2d", "in_channels", minimum=1)[0]
        self.out_channels = _pair(out_channels, "Conv2d", "out_channels", minimum=1)[0]
        self.kernel_size = _pair(kernel_size, "Conv2d", "kernel_size", minimum=1)
        self.stride = _pair(stride, "Conv2d", "stride", minimum=1)
        self.dilation = _pair(dilation, "Conv2d", "dilation", minimum=1)
        self.groups = _pair(groups, "Conv2d", "groups", minimum=1)[0]
        if self.in_channels % self.groups:
            raise ValueError("in_channels must be divisible by groups")
        if self.out_channels % self.groups:
            raise ValueError("out_channels must be divisible by groups")
        if padding_mode != "zeros":
            raise ValueError(
                f"Conv2d: only padding_mode='zeros' is supported, got {padding_mode!r}"
            )
        self.padding_mode = padding_mode
        self.padding = self._padding_argument(padding)
        dtype = float_dtype(dtype, "Conv2d")
        shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        self.weight = Parameter(np.empty(shape, dtype))
        self.bias = Parameter(np.empty(self.out_channels, dtype)) if bias else None
        self.reset_parameters(rng)

    @classmethod
    def state_shapes(
        cls,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        bias=True,
        padding_mode="zeros",
        dtype=np.float32,
    ):
        """``weight`` (C_out, C_in / groups, kH, kW) and ``bias`` (C_out,); the arguments
        checked as the constructor checks them, nothing allocated."""
        strides = _pair(stride, "Conv2d", "stride", minimum=1)
        _pair(dilation, "Conv2d", "dilation", minimum=1)
        if padding_mode != "zeros":
            raise ValueError(
                f"Conv2d: only padding_mode='zeros' is supported, got {padding_mode!r}"
            )
        if padding not in ("valid", "same"):
            _pair(padding, "Conv2d", "padding", minimum=0)
        elif padding == "same" and strides != (1, 1):
            raise ValueError("padding='same' is not supported for strided convolutions")
        c_in = _pair(in_channels, "Conv2d", "in_channels", minimum=1)[0]
        c_out = _pair(out_channels, "Conv2d", "out_channels", minimum=1)[0]
        groups = _pair(groups, "Conv2d", "groups", minimum=1)[0]
        if c_in % groups or c_out % groups:
            raise ValueError("Conv2d: in_channels and out_channels must be divisible by groups")
        dtype = float_dtype(dtype, "Conv2d")
        shape = (c_out, c_in // groups, *_pair(kernel_size, "Conv2d", "kernel_size", minimum=1))
        shapes = {"weight": (shape, dtype, "parameter")}
        if bias:
            shapes["bias"] = ((c_out,), dtype, "parameter")
        return shapes

    def _padding_argument(self, padding):
        """``padding`` as given (torch keeps the string), and the pads per side it means."""
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(
                    f"Invalid padding string {padding!r}, should be one of ('valid', 'same')"
                )
            if padding == "same" and self.stride != (1, 1):
                raise ValueError("padding='same' is not supported for strided convolutions")
            totals = [
                0 if padding == "valid" else d * (k - 1)
                for d, k in zip(self.dilation, self.kernel_size, strict=True)
            ]
            self._pads = tuple((t // 2, t - t // 2) for t in totals)
            return padding
        pair = _pair(padding, "Conv2d", "padding", minimum=0)
        self._pads = ((pair[0], pair[0]), (pair[1], pair[1]))
        return pair

    def reset_parameters(self, rng: int | np.random.Generator | None = None) -> None:
        """Draw weight and bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) again."""
        rng = np.random.default_rng(rng)
        bound = 1.0 / math.sqrt(math.prod(self.weight.shape[1:]))
        self.weight.data[...] = rng.uniform(-bound, bound, size=self.weight.shape)
        if self.bias is not None:
            self.bias.data[...] = rng.uniform(-bound, bound, size=self.bias.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.weight.dtype

    def _check(self, x: np.ndarray) -> tuple[int, int]:
        """The output's (Ho, Wo), or torch's errors for a wrong channel count or an input
        smaller than the (dilated) kernel."""
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"{self!r}: given groups={self.groups}, weight of size "
                f"{shape_str(self.weight.shape)}, expected input {shape_str(x.shape)} to have "
                f"{self.in_channels} channels, but got {x.shape[1]} channels instead"
            )
        out = tuple(
            _output_size(
                x.shape[2 + i], self.kernel_size[i], self.stride[i], self._pads[i], self.dilation[i]
            )
            for i in range(2)
        )
        if min(out) < 1:
            padded = [x.shape[2 + i] + sum(self._pads[i]) for i in range(2)]
            span = [self.dilation[i] * (self.kernel_size[i] - 1) + 1 for i in range(2)]
            raise ValueError(
                f"{self!r}: calculated padded input size per channel: ({padded[0]} x "
                f"{padded[1]}). Kernel size: ({span[0]} x {span[1]}). Kernel size can't be "
                "greater than actual input size"
            )
        return out

    def forward(self, input: Any) -> np.ndarray:
        """im2col, then one matrix product per group:

        - ``cols``: (G, Cg*kH*kW, Ho*Wo*N), one column per window, its inputs (``_im2col``);
        - ``W``: (G, Og, Cg*kH*kW), each filter flattened the same way;
        - ``y = W @ cols + b``: (G, Og, Ho*Wo*N) -> (O, Ho, Wo, N) -> (N, O, Ho, Wo).

        (Linear's ``x @ W.T``, transposed: X_col is stored a row per channel and tap, so that
        it is filled with one contiguous copy per tap.)
        """
        x = _image(self, input, self.weight.data.dtype)
        ho, wo = self._check(x)
        n, g, o = x.shape[0], self.groups, self.out_channels
        xp = _pad(x, self._pads)
        cols = _im2col(xp, self.kernel_size, self.stride, self.dilation, (ho, wo))
        taps = self.in_channels // g * self.kernel_size[0] * self.kernel_size[1]  # Cg*kH*kW
        cols = cols.reshape(g, taps, ho * wo * n)  # (no -1: an empty batch has N = 0)
        w = self.weight.data.reshape(g, o // g, taps)
        y = np.matmul(w, cols).reshape(o, ho, wo, n)
        if self.bias is not None:
            y += self.bias.data.reshape(o, 1, 1, 1)
        self._cols, self._x_shape, self._out = cols, x.shape, (ho, wo)
        return np.ascontiguousarray(y.transpose(3, 0, 1, 2))

    def backward(self, grad_output: Any, *, input_grad: bool = True) -> np.ndarray | None:
        """With ``g = dJ/dy`` as ``gm`` (G, Og, Ho*Wo*N), per group:

        - ``dJ/dW = gm @ cols.T``   (Og, Ho*Wo*N) @ (Ho*Wo*N, Cg*kH*kW): every window's input
          times its output's gradient, summed over windows and batch (Linear's ``g.T @ x``);
        - ``dJ/db = g.sum((0, 2, 3))``: the bias is added at every position;
        - ``dJ/dcols = W.T @ gm``, then col2im: each input element collects the gradients of
          every window that read it (overlapping windows add up), and the padding is cut off.
        """
        cols, (ho, wo) = self._cols, self._out
        n, c, h, w_ = self._x_shape
        g_, o = self.groups, self.out_channels
        g = self._grad_output(grad_output, (n, o, ho, wo), cols.dtype)
        gm = g.transpose(1, 2, 3, 0).reshape(g_, o // g_, ho * wo * n)  # as y before
        dw = np.matmul(gm, cols.transpose(0, 2, 1))  # (G, Og, Cg*kH*kW)
        self.weight.accumulate_grad(dw.reshape(self.weight.shape))
        if self.bias is not None:
            self.bias.accumulate_grad(g.sum(axis=(0, 2, 3)))
        if not input_grad:
            return None
        w = self.weight.data.reshape(g_, o // g_, cols.shape[1])
        dcols = np.matmul(w.transpose(0, 2, 1), gm)  # (G, Cg*kH*kW, Ho*Wo*N)
        dcols = dcols.reshape(c, *self.kernel_size, ho, wo, n)
        padded = (n, c, h + sum(self._pads[0]), w_ + sum(self._pads[1]))
        dxp = _col2im(dcols, padded, self.stride, self.dilation)
        return np.ascontiguousarray(_crop(dxp, self._pads, self._x_shape))

    def extra_repr(self) -> str:
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0, 0):
            text += (
                f", padding={self.padding!r}"
                if isinstance(self.padding, str)
                else (f", padding={self.padding}")
            )
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.dtype != DEFAULT_DTYPE:
            text += f", dtype={self.dtype}"
        return text


def conv2d_loops(
    x, weight, bias=None, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1
):
    """``Conv2d``'s forward as the loops of its definition (slow; for reading and for checking
    the im2col version): for every sample, output channel and output position, the sum over
    the group's input channels and the kernel's taps. ``padding`` is per side:
    ``((top, bottom), (left, right))``. Returns ``(y, backward)``, where ``backward(g)`` gives
    ``(dJ/dx, dJ/dW, dJ/db)`` by the same loops: each term ``W * x`` of a sum sends ``g * x``
    to W and ``g * W`` to x."""
    x, weight = np.asarray(x), np.asarray(weight)
    n, _, h, w = x.shape
    o, cg, kh, kw = weight.shape
    og = o // groups
    xp = _pad(x, padding)
    ho = _output_size(h, kh, stride[0], padding[0], dilation[0])
    wo = _output_size(w, kw, stride[1], padding[1], dilation[1])
    outputs = list(itertools.product(range(n), range(o), range(ho), range(wo)))

    def terms(oc, i, j):
        """(input channel, row and column in xp, weight index) of each term of y[., oc, i, j]."""
        for ci, a, e in itertools.product(range(cg), range(kh), range(kw)):
            row, col = i * stride[0] + a * dilation[0], j * stride[1] + e * dilation[1]
            yield (oc // og) * cg + ci, row, col, (oc, ci, a, e)

    y = np.zeros((n, o, ho, wo), x.dtype)
    for s, oc, i, j in outputs:
        total = bias[oc] if bias is not None else 0.0
        for ch, row, col, k in terms(oc, i, j):
            total += weight[k] * xp[s, ch, row, col]
        y[s, oc, i, j] = total

    def backward(g):
        dxp, dw = np.zeros_like(xp), np.zeros_like(weight)
        for s, oc, i, j in outputs:
            for ch, row, col, k in terms(oc, i, j):
                dw[k] += g[s, oc, i, j] * xp[s, ch, row, col]
                dxp[s, ch, row, col] += g[s, oc, i, j] * weight[k]
        return _crop(dxp, padding, x.shape), dw, g.sum(axis=(0, 2, 3))

    return y, backward


# --- pooling ----------------------------------------------------------------------------------
