"""The worked example of "Neural Networks - Backpropagation" on pooya.io (``SOURCE``): a 2-3-2-1
network, two samples, BCE.

``Linear(2, 3) -> ReLU -> Linear(3, 2) -> ReLU -> Linear(2, 1) -> Sigmoid``, with the
document's hand-picked weights (``PARAMETERS``, keyed like the torch ``state_dict`` of the same
``nn.Sequential``), input ``X`` (one sample per row) and target ``Y``.

Examples:
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

#: The document handprop's worked example comes from, and compares against: its title and address.
SOURCE = (
    "Neural Networks - Backpropagation",
    "https://pooya.io/ai/neural-networks-backpropagation/",
)

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


# The numbers the source document prints, to 4 decimals (its torch printouts and its hand
# derivation), keyed by handprop's trace names. The source differentiates each sample's loss
# (dL, twice the cost's dJ here); the keys say which. Some of these are wrong, on purpose:
# they are what the document says, and the walkthrough explains each difference.
DOCUMENT = {
    "Z1": [[4, 2, -7.8], [6, 9, -16]],
    "A1": [[4, 2, 0], [6, 9, 0]],
    "Z2": [[0, 8], [8, 10.1]],
    "A2": [[0, 8], [8, 10.1]],
    "Z3": [[-2.3], [1.07]],
    "A3": [[0.0911], [0.7446]],
    "L": [[0.0955], [0.2949]],
    "J": 0.1952,
    "dL/dA3": [[1.1003], [-1.3430]],
    "dA3/dZ3": [[0.0828], [0.1901]],
    "dL/dZ3": [[0.0911], [-0.2554]],
    "dJ/db3": [-0.0822],  # hand-averaged from rounded values ...
    "dJ/db3 printed by torch": [-0.0821],  # ... while its torch printout says -0.0821
    "dL/dW3 per sample": [[0, 0.7289], [-2.0432, -2.5795]],
    "dJ/dW3": [[-1.0216, -0.9253]],
    "dL/dA2": [[0.0456], [0.0766]],  # step 4: elementwise, shape (2, 1): wrong
    "dL/dZ2": [[0, 0.0456], [0.0766, 0.0766]],  # step 5 carries step 4 on: wrong
    # the document's torch printout of .grad after cost.backward()
    "dJ/dW2": [[-0.3831, -0.5747, 0], [0.1752, 0.3175, 0]],
    "dJ/db2": [-0.0639, 0.0246],
    "dJ/dW1": [[-0.0249, -0.0396], [-0.1814, -0.2428], [0, 0]],
    "dJ/db1": [-0.0147, -0.0614, 0],
}
