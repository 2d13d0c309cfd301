"""``MaxPool2d`` and ``AvgPool2d`` on ``(N, C, H, W)`` images, torch's arguments and tie,
NaN and divisor rules (torch's ``nn/modules/pooling.py``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..module import Module
from .conv import _crop, _image, _output_size, _pad, _pair, _taps


class _Pool2d(Module):
    """What MaxPool2d and AvgPool2d share: the arguments, the output size, the windows."""

    role = "pool"

    def __init__(self, kernel_size, stride, padding, dilation, ceil_mode) -> None:
        super().__init__()
        name = type(self).__name__
        self.kernel_size = _pair(kernel_size, name, "kernel_size", minimum=1)
        self.stride = (
            self.kernel_size if stride is None else _pair(stride, name, "stride", minimum=1)
        )
        self.padding = _pair(padding, name, "padding", minimum=0)
        self.dilation = _pair(dilation, name, "dilation", minimum=1)
        self.ceil_mode = bool(ceil_mode)
        for p, k, d in zip(self.padding, self.kernel_size, self.dilation, strict=True):
            if p > (d * (k - 1) + 1) // 2:
                raise ValueError(
                    f"{name}: pad should be at most half of effective kernel size, but got "
                    f"pad={p}, kernel_size={k} and dilation={d}"
                )
        (ph, pw), (kh, kw) = self.padding, self.kernel_size
        if ph > kh // 2 or pw > kw // 2:  # torch checks this too, dilation or not
            raise ValueError(
                f"{name}: pad should be smaller than or equal to half of kernel size, but got "
                f"padW = {pw}, padH = {ph}, kW = {kw}, kH = {kh}"
            )
        self._pads = tuple((p, p) for p in self.padding)

    def _geometry(self, x: np.ndarray):
        """The output's (Ho, Wo), and the padding actually needed: with ``ceil_mode`` the
        last window may hang over the bottom/right edge, so extra padding is added there."""
        out = tuple(
            _output_size(
                x.shape[2 + i],
                self.kernel_size[i],
                self.stride[i],
                self._pads[i],
                self.dilation[i],
                self.ceil_mode,
            )
            for i in range(2)
        )
        if min(out) < 1:
            raise ValueError(
                f"{self!r}: given input size: ({x.shape[1]}x{x.shape[2]}x{x.shape[3]}). "
                f"Calculated output size: ({x.shape[1]}x{out[0]}x{out[1]}). Output size is "
                "too small"
            )
        pads = []
        for i in range(2):
            needed = (
                (out[i] - 1) * self.stride[i] + self.dilation[i] * (self.kernel_size[i] - 1) + 1
            )
            before = self.padding[i]
            pads.append((before, max(needed - x.shape[2 + i] - before, self.padding[i])))
        return out, tuple(pads)

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class MaxPool2d(_Pool2d):
    """Max pooling: each output is the largest input of its window (padding counts as -inf,
    so it never wins).

    Which input gets the gradient: the one that was the maximum, torch's way: on a tie, the
    *first* maximum in row-major order of the window (``argmax``); if the window holds a NaN,
    the output is NaN and the gradient goes to the *last* NaN. Windows that overlap (stride
    smaller than the kernel) and pick the same input add their gradients there.

    Args:
        kernel_size: the window, an int or a pair.
        stride: step between windows (default: the kernel size).
        padding: -inf added on each side (at most half the kernel).
        dilation: spacing between a window's taps (default 1).
        ceil_mode: round the output size up: a last, partial window at the bottom/right.

    Shape: input ``(N, C, H, W)``; output ``(N, C, Ho, Wo)`` (Conv2d's formula, floor or ceil).

    Examples:
        >>> pool = MaxPool2d(2)
        >>> pool(np.array([[[[1.0, 3.0, 3.0, 0.0], [3.0, 2.0, 1.0, 3.0]]]]))
        array([[[[3., 3.]]]])
        >>> pool.backward(np.ones((1, 1, 1, 2)))  # ties: the first maximum of each window
        array([[[[0., 1., 1., 0.],
                 [0., 0., 0., 0.]]]])
    """

    _cache = ("_where", "_padded_shape", "_x_shape", "_dtype", "_geometry_pads")

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)
        if return_indices:
            raise ValueError("MaxPool2d: return_indices=True is not supported")
        self.return_indices = False  # kept, as torch keeps it (config() reads it)

    def _choose(self, x: np.ndarray):
        """Each window's maximum and chosen input: ``(y, where, padded shape, pads)``, with
        ``where`` (N, C, Ho, Wo) the chosen tap's index in row-major order of the window.

        torch's loop, one pass per tap (kH * kW of them), each over all windows at once:
        start from -inf and the window's first tap inside the input; a tap replaces the
        choice when it is larger (so the first of equal maxima stays) or NaN (so a NaN wins,
        the last one). Padding is -inf: never larger, never chosen."""
        out, pads = self._geometry(x)
        xp = _pad(x, pads, value=-np.inf)
        taps = [
            xp[:, :, rows, columns]
            for _, _, rows, columns in _taps(self.kernel_size, self.stride, self.dilation, out)
        ]
        y = np.full((*x.shape[:2], *out), -np.inf, x.dtype)
        where = self._first_inside(x.shape, out, pads)
        for index, tap in enumerate(taps):
            where = np.where(tap > y, index, where)  # strictly larger: ties keep the first
            np.maximum(y, tap, out=y)
        if np.isnan(y).any():  # rare: a NaN wins its window, the last NaN in it
            for index, tap in enumerate(taps):
                where[np.isnan(tap)] = index
        return y, where, xp.shape, pads

    def _first_inside(self, shape, out, pads) -> np.ndarray:
        """Per window, the index of its first tap that reads the input, not the padding
        (torch's starting choice, which a window of -inf inputs keeps), broadcastable to the
        output's shape; 0 without padding."""
        first = np.full(out, -1, np.intp)
        if not any(p for pair in pads for p in pair):
            return np.zeros(out, np.intp)
        for index, (a, b, _, _) in enumerate(
            _taps(self.kernel_size, self.stride, self.dilation, out)
        ):
            r = np.arange(out[0]) * self.stride[0] + a * self.dilation[0] - pads[0][0]
            c = np.arange(out[1]) * self.stride[1] + b * self.dilation[1] - pads[1][0]
            inside = np.outer((r >= 0) & (r < shape[2]), (c >= 0) & (c < shape[3]))
            first[(first < 0) & inside] = index
        # a window of padding only (output -inf): its first tap, where no input is; torch's
        # index there points outside the input, and its backward drops that gradient or
        # writes out of bounds (seen aborting the process): handprop's goes nowhere
        return np.maximum(first, 0)

    def forward(self, input: Any) -> np.ndarray:
        x = _image(self, input)
        y, where, padded_shape, pads = self._choose(x)
        self._where, self._padded_shape, self._x_shape = where, padded_shape, x.shape
        self._dtype, self._geometry_pads = x.dtype, pads
        return y

    def _scatter(self, where, values, padded_shape, pads, x_shape) -> np.ndarray:
        """An input-shaped array in which each window adds its value at the input it chose:
        per tap, the windows that chose it add their values at its slice."""
        dxp = np.zeros(padded_shape, values.dtype)
        taps = _taps(self.kernel_size, self.stride, self.dilation, where.shape[2:])
        for index, (_, _, rows, columns) in enumerate(taps):
            dxp[:, :, rows, columns] += np.where(where == index, values, 0)
        return np.ascontiguousarray(_crop(dxp, pads, x_shape))

    def backward(self, grad_output: Any, *, input_grad: bool = True) -> np.ndarray | None:
        """``dJ/dx``: each output's gradient goes to the input its window chose, nowhere else;
        an input chosen by several (overlapping) windows receives their sum."""
        where = self._where
        g = self._grad_output(grad_output, where.shape, self._dtype)
        if not input_grad:
            return None
        return self._scatter(where, g, self._padded_shape, self._geometry_pads, self._x_shape)

    def branches(self, x: np.ndarray) -> np.ndarray:
        """How many windows choose each input (input-shaped). A max has a kink where two inputs
        tie: a tiny change makes a window choose another input and the derivative jumps.
        ``gradcheck`` compares this count before and after each perturbation, and judges the
        elements whose perturbation changed it as at a kink (as it does ReLU's 0)."""
        x = np.asarray(x, np.float64)
        _, where, padded_shape, pads = self._choose(x)
        return self._scatter(where, np.ones(where.shape), padded_shape, pads, x.shape)


class AvgPool2d(_Pool2d):
    """Average pooling: each output is the mean of its window: the window's sum divided by

    - ``divisor_override`` if given; else
    - with ``count_include_pad`` (default), the window's size counting padding but not the
      part that ``ceil_mode`` lets hang past the padding; else
    - the number of real (unpadded) inputs in the window.

    The backward gives each input of a window ``g / divisor``; overlapping windows add up.

    Args:
        kernel_size: the window, an int or a pair.
        stride: step between windows (default: the kernel size).
        padding: zeros added on each side (at most half the kernel).
        ceil_mode: round the output size up: a last, partial window at the bottom/right.
        count_include_pad: count padding zeros in the divisor (default True).
        divisor_override: divide every window by this instead.

    Examples:
        >>> AvgPool2d(2)(np.arange(8.0).reshape(1, 1, 2, 4))
        array([[[[2.5, 4.5]]]])
    """

    _cache = ("_divisor", "_padded_shape", "_x_shape", "_dtype", "_geometry_pads")

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        super().__init__(kernel_size, stride, padding, 1, ceil_mode)
        self.count_include_pad = bool(count_include_pad)
        if divisor_override is not None:
            divisor_override = _pair(divisor_override, "AvgPool2d", "divisor_override", minimum=1)[
                0
            ]
        self.divisor_override = divisor_override

    def _divisors(self, x_shape, out) -> np.ndarray:
        """Each window's divisor, (Ho, Wo), by the rules in the class docstring."""
        if self.divisor_override is not None:
            return np.full(out, float(self.divisor_override))
        counts = []
        for i in range(2):
            start = np.arange(out[i]) * self.stride[i] - self.padding[i]
            end = start + self.kernel_size[i]
            if self.count_include_pad:  # up to the padding's edge, not past it
                size = np.minimum(end, x_shape[2 + i] + self.padding[i]) - start
            else:  # real inputs only
                size = np.minimum(end, x_shape[2 + i]) - np.maximum(start, 0)
            counts.append(size)
        return np.outer(counts[0], counts[1]).astype(np.float64)

    def forward(self, input: Any) -> np.ndarray:
        x = _image(self, input)
        out, pads = self._geometry(x)
        xp = _pad(x, pads)
        total = np.zeros((*x.shape[:2], *out), x.dtype)
        for _, _, rows, columns in _taps(self.kernel_size, self.stride, (1, 1), out):
            total += xp[:, :, rows, columns]  # the window sums, one tap at a time
        divisor = self._divisors(x.shape, out).astype(x.dtype)
        self._divisor, self._padded_shape, self._x_shape = divisor, xp.shape, x.shape
        self._dtype, self._geometry_pads = x.dtype, pads
        return total / divisor

    def backward(self, grad_output: Any, *, input_grad: bool = True) -> np.ndarray | None:
        """``dJ/dx``: every input of a window receives ``g / divisor`` from it."""
        n, c = self._x_shape[:2]
        g = self._grad_output(grad_output, (n, c, *self._divisor.shape), self._dtype)
        if not input_grad:
            return None
        share = g / self._divisor
        dxp = np.zeros(self._padded_shape, self._dtype)
        for _, _, rows, columns in _taps(self.kernel_size, self.stride, (1, 1), share.shape[2:]):
            dxp[:, :, rows, columns] += share
        return np.ascontiguousarray(_crop(dxp, self._geometry_pads, self._x_shape))

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"ceil_mode={self.ceil_mode}, count_include_pad={self.count_include_pad}"
            + (f", divisor_override={self.divisor_override}" if self.divisor_override else "")
        )


# --- Flatten ----------------------------------------------------------------------------------
