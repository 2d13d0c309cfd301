"""Mini-batches: ``batches(X, y, batch_size, rng=...)`` walks a data set in (shuffled) slices.

Examples:
    >>> import numpy as np
    >>> X, y = np.arange(10).reshape(5, 2), np.arange(5)
    >>> [yb.tolist() for _, yb in batches(X, y, batch_size=2, shuffle=False)]
    [[0, 1], [2, 3], [4]]
    >>> shuffled = [yb.tolist() for _, yb in batches(X, y, batch_size=2, rng=0)]
    >>> [len(b) for b in shuffled], sorted(sum(shuffled, []))  # every sample once
    ([2, 2, 1], [0, 1, 2, 3, 4])
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["batches"]


def batches(
    X: Any,
    y: Any,
    batch_size: int,
    *,
    shuffle: bool = True,
    rng: int | np.random.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(X_batch, y_batch)`` pairs covering the data set once (one epoch).

    Args:
        X: inputs, one sample per row.
        y: targets, one per row of X.
        batch_size: samples per batch; the last batch is smaller when ``batch_size`` does not
            divide the number of samples, unless ``drop_last`` leaves it out.
        shuffle: visit the samples in a random order (a fresh one each call).
        rng: seed or ``np.random.Generator`` for the order. Pass one Generator to every epoch
            to get a different, reproducible order each time; None draws fresh entropy. The
            global NumPy seed is never used.
        drop_last: leave out a last, smaller batch.
    """
    X, y = np.asarray(X), np.asarray(y)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"batches: batch_size must be a positive int, got {batch_size!r}")
    if batch_size <= 0:
        raise ValueError(f"batches: batch_size must be a positive int, got {batch_size}")
    if X.ndim == 0 or y.ndim == 0 or len(X) != len(y):
        raise ValueError(
            f"batches: X and y must have the same number of rows (samples), got X of shape "
            f"{X.shape} and y of shape {y.shape}"
        )
    n = len(X)
    order = np.random.default_rng(rng).permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        index = order[start : start + batch_size]
        yield X[index], y[index]
