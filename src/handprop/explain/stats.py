"""``Trace.stats()``: the health of each layer at a glance, as makemore part 3 teaches it.

Per layer of a trace: the activations' mean and standard deviation, the share of them that
are saturated (tanh or sigmoid within 0.03 of a flat end, where the slope is almost 0) or of
units that are dead (a ReLU-like unit that is 0 for every sample of the batch: it passes no
gradient at all), the gradient's mean and standard deviation at the activation, and, given a
learning rate, each weight's update-to-data ratio ``lr * std(dJ/dW) / std(W)`` (about 1e-3 is
the rule of thumb: much smaller and the layer barely learns, much larger and it jumps).
``plot_stats`` draws the histograms (needs matplotlib).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..layers import GELU, LeakyReLU, ReLU, Sigmoid, Tanh

__all__ = ["LayerStats", "StatsTable", "layer_stats", "plot_stats", "time_steps"]

SATURATED = 0.97  # |tanh| above this (sigmoid: within 0.03 of 0 or 1): slope below 0.06


@dataclass
class LayerStats:
    """One layer's statistics (None where a measure does not apply)."""

    layer: int
    activation: str
    mean: float
    std: float
    saturated: float | None  # share of outputs near a flat end (tanh, sigmoid)
    dead: float | None  # share of units zero for every sample (ReLU-like)
    grad_mean: float
    grad_std: float
    update_ratio: float | None  # lr * std(dJ/dW) / std(W), with a learning rate


class StatsTable(list):
    """A list of ``LayerStats`` that prints as a table."""

    def __str__(self) -> str:
        head = (
            f"{'layer':<6}{'activation':<14}{'mean':>9}{'std':>9}{'saturated':>11}{'dead':>7}"
            f"{'grad mean':>12}{'grad std':>11}{'update/data':>13}"
        )
        lines = [head]
        for s in self:
            lines.append(
                f"{s.layer:<6}{s.activation:<14}{s.mean:>9.3g}{s.std:>9.3g}"
                f"{_share(s.saturated):>11}{_share(s.dead):>7}{s.grad_mean:>12.3g}"
                f"{s.grad_std:>11.3g}{_ratio(s.update_ratio):>13}"
            )
        return "\n".join(lines)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2e}"


def layer_stats(t: Any, lr: float | None = None) -> StatsTable:
    """The statistics of every layer of trace ``t`` (see the module docstring)."""
    table = StatsTable()
    for layer in t.layers:
        n = layer.number
        a = np.asarray(t[f"A{n}"], dtype=np.float64)
        grad = np.asarray(t[f"dJ/dA{n}"], dtype=np.float64)
        activation = layer.activation
        ratio = None
        if lr is not None:
            w, dw = np.asarray(t[f"W{n}"], np.float64), np.asarray(t[f"dJ/dW{n}"], np.float64)
            ratio = float(lr * dw.std() / w.std()) if w.std() > 0 else None
        table.append(
            LayerStats(
                layer=n,
                activation=type(activation).__name__ if activation is not None else "(none)",
                mean=float(a.mean()),
                std=float(a.std()),
                saturated=_saturated(activation, a),
                dead=_dead(activation, a),
                grad_mean=float(grad.mean()),
                grad_std=float(grad.std()),
                update_ratio=ratio,
            )
        )
    return table


def _saturated(activation: Any, a: np.ndarray) -> float | None:
    if isinstance(activation, Tanh):
        return float(np.mean(np.abs(a) > SATURATED))
    if isinstance(activation, Sigmoid):
        return float(np.mean(np.abs(a - 0.5) > SATURATED - 0.5))
    return None


def _dead(activation: Any, a: np.ndarray) -> float | None:
    """The share of units (features, or channels of an image) that are 0 for every sample."""
    if not isinstance(activation, (ReLU, LeakyReLU, GELU)) or a.ndim < 2:
        return None
    per_unit = np.moveaxis(a, 1, 0).reshape(a.shape[1], -1)  # (units, everything else)
    if isinstance(activation, ReLU):
        return float(np.mean(np.all(per_unit == 0, axis=1)))
    return float(np.mean(np.all(per_unit <= 0, axis=1)))  # the negative side: nearly flat


def time_steps(layer: Any) -> str:
    """``|dJ/dh_t|`` at every time step of a recurrent layer's last backward (``RNN``, ``LSTM``,
    ``GRU``: their ``grad_norms``), one row per layer and direction, and how much the gradient
    shrank or grew from the step where it entered to the step farthest from it: a factor far
    below 1 is a vanishing gradient (the first steps barely learn), far above 1 an exploding one.

    Examples:
        >>> from handprop.layers import RNN
        >>> rnn = RNN(2, 3, rng=0, dtype=np.float64)
        >>> out, h = rnn(np.ones((4, 1, 2)))
        >>> d_out = np.zeros((4, 1, 3)); d_out[-1] = 1.0     # the loss reads the last step only
        >>> _ = rnn.backward(d_out, None)
        >>> print(time_steps(rnn))
        |dJ/dh_t| per time step of RNN(2, 3):
        t               1        2        3        4   first/last
        layer 0    0.0245   0.0655    0.443     1.73       0.0142
    """
    norms = getattr(layer, "grad_norms", None)
    if norms is None:
        raise ValueError(f"{layer!r} has no gradient norms: run its forward and backward first")
    directions = 2 if getattr(layer, "bidirectional", False) else 1
    steps = norms.shape[1]
    lines = [
        f"|dJ/dh_t| per time step of {layer!r}:",
        "t       " + "".join(f"{t:>9}" for t in range(1, steps + 1)) + "   first/last",
    ]
    for k, row in enumerate(norms):
        reverse = k % directions == 1
        name = f"layer {k // directions}" + (" rev" if reverse else "")
        # where the gradient entered (the last step; the first for the reverse direction)
        entered, farthest = (row[0], row[-1]) if reverse else (row[-1], row[0])
        factor = farthest / entered if entered > 0 else float("nan")
        lines.append(f"{name:<8}" + "".join(f"{v:>9.3g}" for v in row) + f"{factor:>13.3g}")
    return "\n".join(lines)


def plot_stats(t: Any, path: str) -> None:
    """Histograms of each layer's activations (top) and of their gradients (bottom), as in
    makemore part 3; needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")  # no screen needed
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6))
    for layer, s in zip(t.layers, layer_stats(t), strict=True):
        n = layer.number
        label = f"layer {n} ({s.activation}): std {s.std:.2f}"
        values, edges = np.histogram(np.asarray(t[f"A{n}"], np.float64), bins=50)
        top.plot((edges[:-1] + edges[1:]) / 2, values, label=label)
        grads, edges = np.histogram(np.asarray(t[f"dJ/dA{n}"], np.float64), bins=50)
        bottom.plot((edges[:-1] + edges[1:]) / 2, grads, label=f"layer {n}: std {s.grad_std:.2e}")
    top.set_title("activation distribution")
    bottom.set_title("gradient distribution (dJ/dA)")
    top.legend(fontsize=8)
    bottom.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
