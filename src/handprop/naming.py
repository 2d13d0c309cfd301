"""Names of a network's intermediate values, as the worked example writes them.

Layers are numbered by their Linear (or Conv2d): ``Z{l}`` is the output of the l-th Linear or
Conv2d, ``N{l}`` that of a normalisation right after it, ``A{l}`` the output of the activation
right after those, ``P{l}`` that of a pooling layer after them and ``F{l}`` that of a Flatten.
Any other module's output is ``out{i}``, i its position. Each layer says which it is by its
``role`` (``Linear.role == "affine"``), so a new layer is named without an edit here.
"""

from __future__ import annotations

from collections.abc import Sequence

from .module import Module


def output_names(modules: Sequence[Module]) -> list[str]:
    """One name per module output.

    Examples:
        >>> from handprop.layers import Linear, ReLU, Sigmoid
        >>> output_names([Linear(2, 3), ReLU(), Linear(3, 1), Sigmoid()])
        ['Z1', 'A1', 'Z2', 'A2']
        >>> output_names([ReLU(), Linear(2, 2), Linear(2, 1)])
        ['out0', 'Z1', 'Z2']
        >>> from handprop.layers import BatchNorm1d
        >>> output_names([Linear(2, 3), BatchNorm1d(3), ReLU(), Linear(3, 1)])
        ['Z1', 'N1', 'A1', 'Z2']
        >>> from handprop.layers import Conv2d, Flatten, MaxPool2d
        >>> output_names([Conv2d(1, 2, 3), ReLU(), MaxPool2d(2), Flatten(), Linear(8, 1)])
        ['Z1', 'A1', 'P1', 'F1', 'Z2']
    """
    names, layer = [], 0
    for i, module in enumerate(modules):
        before, role = (names[-1][0] if names else ""), module.role
        if role == "affine":
            layer += 1
            names.append(f"Z{layer}")
        elif before == "Z" and role == "norm":
            names.append(f"N{layer}")
        elif before in ("Z", "N", "A") and role == "pool":
            names.append(f"P{layer}")
        elif before in ("Z", "N", "A", "P") and role == "flatten":
            names.append(f"F{layer}")
        elif before in ("Z", "N"):
            names.append(f"A{layer}")
        else:
            names.append(f"out{i}")
    return names
