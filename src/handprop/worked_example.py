"""The source document's worked example: a 2-3-2-1 network, two samples, BCE.

``Linear(2, 3) -> ReLU -> Linear(3, 2) -> ReLU -> Linear(2, 1) -> Sigmoid``, with the
document's hand-picked weights (``PARAMETERS``, keyed like the torch ``state_dict`` of the same
``nn.Sequential``), input ``X`` (one sample per row) and target ``Y``.

Example:
    >>> from handprop import worked_example
    >>> model = worked_example.model()
    >>> X, Y = worked_example.data()
    >>> round(worked_example.loss_fn()(model(X), Y), 4)  # the document's cost
    0.1952
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .layers import Linear, ReLU, Sigmoid
from .losses import BCELoss
from .module import Sequential

X = [[1.0, 2.0], [3.0, 4.0]]
Y = [[0.0], [1.0]]
PARAMETERS = {
    "0.weight": [[-1.0, 2.0], [3.0, 0.5], [-0.1, -4.0]],
    "0.bias": [1.0, -2.0, 0.3],
    "2.weight": [[0.5, 1.0, -2.0], [0.7, 0.1, 0.3]],
    "2.bias": [-4.0, 5.0],
    "4.weight": [[0.5, -0.3]],
    "4.bias": [0.1],
}


def model(dtype: Any = np.float32) -> Sequential:
    """The document's network with its weights, in ``dtype`` (float32 like torch, or float64)."""
    net = Sequential(
        Linear(2, 3, dtype=dtype, rng=0),
        ReLU(),
        Linear(3, 2, dtype=dtype, rng=0),
        ReLU(),
        Linear(2, 1, dtype=dtype, rng=0),
        Sigmoid(),
    )
    net.load_state_dict(PARAMETERS)
    return net


def data(dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """``(X, Y)`` as arrays of ``dtype``."""
    return np.array(X, dtype=dtype), np.array(Y, dtype=dtype)


def loss_fn() -> BCELoss:
    """The document's loss: binary cross-entropy averaged over the batch."""
    return BCELoss()
