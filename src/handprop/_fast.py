"""Fast paths of the layers: each does what a one-line NumPy formula says, faster.

A layer's ``backward`` reads as its formula and calls the helper here by name; each helper's
docstring gives the plain formula it replaces, and ``tests/test_fast.py`` checks that the two
agree bit for bit (NaN, infinities and signed zeros included).
"""

from __future__ import annotations

import numpy as np

_WORDS = {np.dtype(np.float32): np.uint32, np.dtype(np.float64): np.uint64}


def keep_where_active(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``np.where(~(y <= 0), g, 0)``: ``g`` where the unit was active, +0.0 elsewhere.

    ``~(y <= 0)`` is torch's test: ``y > 0``, except that a NaN activation passes its
    gradient on. NumPy runs ``np.where`` several times slower than arithmetic (it branches on
    every element), and ``g * (y > 0)`` would turn an infinite ``g`` at an inactive unit into
    NaN (inf * 0) with a warning. So the selection is done on g's bit pattern, read as an
    unsigned integer: times 1 it is kept exactly, times 0 it becomes 0, the bits of +0.0,
    whatever g was. (On a 512 x 2048 batch: 0.7 ms, against 5 ms for np.where.)
    """
    word = _WORDS[g.dtype]
    return np.multiply(g.view(word), ~(y <= 0)).view(g.dtype)
