"""``Dropout``: inverted dropout with the layer's own generator, its mask inspectable
(torch's ``nn/modules/dropout.py``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._arrays import as_float_array
from ..module import Module


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

    @property
    def latex(self) -> tuple[str, str]:
        """The forward and its derivative in LaTeX: in training with p > 0 the mask and its
        scale, else the identity."""
        if self.training and self.p > 0:
            return (
                r"Z^{[l]} \odot M / (1 - p) \quad \text{(training; } M \text{ the keep-mask)}",
                r"M / (1 - p)",
            )
        return (r"Z^{[l]}", r"1")

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        """dA/dZ at each element: the last training forward's mask, scaled (1 in evaluation)."""
        if self.training and self.p > 0:
            return self.mask * (0.0 if self.p == 1 else 1.0 / (1.0 - self.p))
        return np.ones_like(z)

    _cache = ("_mask", "_scale", "_shape", "_dtype")

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
            return x
        # keep each element with probability 1 - p; p = 1 keeps none (and scales by 0, not inf)
        fixed = self._fixed_mask
        if fixed is not None and fixed.shape == x.shape:
            self.mask = fixed
        else:
            self.mask = self.rng.random(x.shape) >= self.p
        self._mask = self.mask
        self._scale = x.dtype.type(0.0 if self.p == 1.0 else 1.0 / (1.0 - self.p))
        with np.errstate(invalid="ignore"):  # inf * 0 for a dropped infinity: NaN, as torch
            return x * self._mask * self._scale

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
