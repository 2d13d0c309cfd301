"""The classic mistakes of an attention backward, for ``check_module``'s diagnosis: named, as
the recurrent ones, by making handprop's reference commit each mistake and comparing.

* ``softmax-diagonal``: the softmax's Jacobian taken as its diagonal, ``dS = P (1 - P) dP``,
  where every weight of a row depends on every score of the row:
  ``dS = P * (dP - sum(dP * P))``;
* ``scale-forgotten``: the ``1 / sqrt(d)`` of the scores left out of ``dJ/dq`` and ``dJ/dk``;
* ``mask-gradient``: the backward through the softmax of the scores *without* the mask, so
  that positions the forward masked get gradient;
* ``heads-order``: the gradient of the merged heads split back in another order than the
  forward merged them (``(N, L, head_dim, heads)`` for ``(N, L, heads, head_dim)``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..layers.attention import scaled_dot_product_attention_backward


def _diagonal(base: type) -> type:
    class DiagonalSoftmax(base):
        def _attention_backward(self, d_out, d_weights, cache):
            q_scaled, k, v, weights, dropped, _, _ = cache  # (no dropout in the exercises)
            d_p = d_out @ np.swapaxes(v, -1, -2)
            if d_weights is not None:
                d_p = d_p + d_weights
            d_scores = weights * (1 - weights) * d_p  # the mistake: the diagonal only
            scale = math.sqrt(1.0 / q_scaled.shape[-1])
            return (
                (d_scores @ k) * scale,
                np.swapaxes(d_scores, -1, -2) @ q_scaled,
                (np.swapaxes(dropped, -1, -2) @ d_out),
            )

    return DiagonalSoftmax


def _unscaled(base: type) -> type:
    class ScaleForgotten(base):
        def _attention_backward(self, d_out, d_weights, cache):
            dq, dk, dv = base._attention_backward(self, d_out, d_weights, cache)
            root = math.sqrt(cache[0].shape[-1])
            return dq * root, dk * root, dv  # the mistake: no 1/sqrt(d)

    return ScaleForgotten


def _unmasked(base: type) -> type:
    class MaskIgnored(base):
        def _attention_backward(self, d_out, d_weights, cache):
            q_scaled, k, v, _, dropped, keep, p = cache
            scores = q_scaled @ np.swapaxes(k, -1, -2)  # the mistake: the scores unmasked
            e = np.exp(scores - scores.max(axis=-1, keepdims=True))
            unmasked = e / e.sum(axis=-1, keepdims=True)
            cache = (q_scaled, k, v, unmasked, dropped, keep, p)
            return scaled_dot_product_attention_backward(d_out, d_weights, cache)

    return MaskIgnored


def _heads_swapped(base: type, where: str) -> type:
    """The reference splitting the heads' gradient (``where="split"``), or merging the
    heads' input gradients (``"merge"``), as (N, L, head_dim, heads)."""

    class HeadsInAnotherOrder(base):
        def _split_gradient(self, d_merged):
            if where != "split":
                return base._split_gradient(self, d_merged)
            n, length, _ = d_merged.shape
            shape = (n, length, self.head_dim, self.num_heads)
            return d_merged.reshape(shape).transpose(0, 3, 1, 2)

        def _merge(self, d):
            if where != "merge":
                return base._merge(self, d)
            n, _, length, _ = d.shape
            return d.transpose(0, 2, 3, 1).reshape(n, length, self.embed_dim)

    return HeadsInAnotherOrder


_HINTS = {
    "softmax-diagonal": (
        "{what}: your backward took the softmax's Jacobian as its diagonal, P (1 - P) dP; every "
        "weight of a row depends on every score of it: dS = P * (dP - sum(dP * P, row))"
    ),
    "scale-forgotten": (
        "{what}: your gradient is sqrt(d) times the right one: the scores are q k^T / sqrt(d), "
        "so dJ/dq and dJ/dk carry the 1 / sqrt(d) too"
    ),
    "mask-gradient": (
        "{what}: your backward went through the softmax of the unmasked scores: the positions "
        "the forward masked got gradient; use the weights the forward computed (0 there)"
    ),
    "heads-order": (
        "{what}: your backward split the heads' gradient in another order than the forward "
        "merged them: (N, L, heads, head_dim), head by head, each head_dim features"
    ),
}


def variants(reference: Any) -> list[tuple[str, str, Callable[[], Any]]]:
    """``(code, hint, make)`` for each mistaken copy of an attention reference (a module
    with ``_attention_backward``; the heads' order where it has heads)."""
    if not hasattr(type(reference), "_attention_backward"):
        return []
    base = type(reference)
    makers = [("softmax-diagonal", _diagonal), ("scale-forgotten", _unscaled),
              ("mask-gradient", _unmasked)]  # fmt: skip
    if getattr(reference, "num_heads", 1) > 1:
        makers.append(("heads-order", lambda b: _heads_swapped(b, "split")))
        makers.append(("heads-order", lambda b: _heads_swapped(b, "merge")))

    def mistaken(cls: type) -> Callable[[], Any]:
        def make() -> Any:
            clone = copy.deepcopy(reference)
            clone.__class__ = cls
            return clone

        return make

    return [(code, _HINTS[code], mistaken(maker(base))) for code, maker in makers]
