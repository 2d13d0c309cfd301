"""The computational graph of a trace as SVG, drawn by hand (no graphviz needed).

Nodes: X and Y, each layer's W and b (above), Z and A (on the main line; N, P and F too
after a normalisation, a pooling layer and a Flatten), the per-element losses L and the cost
J; edges in forward order. Each node shows its shape, its value and its
gradient dJ/d(node), so the picture is the whole computation at a glance.
"""

from __future__ import annotations

from html import escape
from typing import Any

import numpy as np

from .derivation import fmt

__all__ = ["to_svg"]

WIDTH, LINE, GAP_X, GAP_Y, PAD = 205, 15, 60, 40, 8  # WIDTH: the narrowest a box may be
CHAR = 6.7  # px per character of the 11 px monospace font (0.6 em), with a little room
LEGEND = [
    "Arrows run forward: X -> Z = A W^T + b (-> N, normalised) -> A (-> P, F) -> L -> J.",
    "Blue boxes: values (value = the forward value); yellow: parameters W, b (gamma, beta).",
    "dJ/d...: the gradient of the cost J at that node, what backward computes.",
]
B_SHIFT = 24  # b sits a little right of W, so that W's edge to Z passes beside it
MAX_ROWS, MAX_COLS = 4, 4


def _rows(label: str, value: Any) -> list[str]:
    """A few text lines showing an array (clipped to MAX_ROWS x MAX_COLS)."""
    a = np.asarray(value)
    if a.ndim == 0:
        return [f"{label} {fmt(a)}"]
    a2 = a.reshape(1, -1) if a.ndim == 1 else a.reshape(a.shape[0], -1)
    lines = [label]
    for row in a2[:MAX_ROWS]:
        cells = [fmt(v) for v in row[:MAX_COLS]] + (["…"] if row.size > MAX_COLS else [])
        lines.append("  [" + ", ".join(cells) + "]")
    if a2.shape[0] > MAX_ROWS:
        lines.append("  …")
    return lines


def _node(t: Any, name: str, grad: str | None) -> dict[str, Any]:
    value = t[name]
    lines = [f"{name}  {tuple(np.shape(value))}", *_rows("value", value)]
    node = {"name": name, "grad": None, "grad_from": len(lines)}
    if grad is not None and grad in t:
        lines += _rows(grad, t[grad])
        node["grad"] = grad
    return {**node, "lines": lines, "height": PAD * 2 + LINE * len(lines)}


def _nodes_and_edges(t: Any) -> tuple[list[dict], dict[int, list[dict]], list[tuple[str, str]]]:
    """The main row (X, Z1, A1, ..., L, J), the boxes above its columns (W, b; Y) and the
    edges between them."""
    main: list[dict] = [_node(t, "X", "dJ/dX")]
    above: dict[int, list[dict]] = {}
    edges: list[tuple[str, str]] = []
    previous = "X"
    for layer in t.layers:
        n = layer.number
        column = len(main)
        params = [_node(t, f"W{n}", f"dJ/dW{n}")]
        edges.append((f"W{n}", f"Z{n}"))
        if f"b{n}" in t:
            params.append(_node(t, f"b{n}", f"dJ/db{n}"))
            edges.append((f"b{n}", f"Z{n}"))
        above[column] = params
        main.append(_node(t, f"Z{n}", f"dJ/dZ{n}"))
        edges.append((previous, f"Z{n}"))
        previous = f"Z{n}"
        if layer.norm is not None:  # N = gamma * (Z - mean) / std + beta
            norm_params = [
                _node(t, f"{name}{n}", f"dJ/d{name}{n}")
                for name in ("gamma", "beta")
                if f"{name}{n}" in t
            ]
            if norm_params:
                above[len(main)] = norm_params
            edges += [(p["name"], f"N{n}") for p in norm_params]
            main.append(_node(t, f"N{n}", f"dJ/dN{n}"))
            main[-1]["lines"][0] += f"  {type(layer.norm).__name__}"
            edges.append((previous, f"N{n}"))
            previous = f"N{n}"
        after = [(layer.activation, "A"), (layer.pool, "P"), (layer.flatten, "F")]
        for module, letter in after:  # the activation, a pooling layer, a Flatten
            if module is None:
                continue
            main.append(_node(t, f"{letter}{n}", f"dJ/d{letter}{n}"))
            label = repr(module) if letter == "A" else type(module).__name__  # pools: long
            main[-1]["lines"][0] += f"  {label}"
            edges.append((previous, f"{letter}{n}"))
            previous = f"{letter}{n}"
    loss_column = len(main)
    main.append(_node(t, "L", None))
    main[-1]["lines"][0] += f"  {t.loss_fn!r}"
    above[loss_column] = [_node(t, "Y", None)]
    edges += [(previous, "L"), ("Y", "L")]
    main.append(_node(t, "J", None))
    edges.append(("L", "J"))
    return main, above, edges


def _box_width(nodes: list[dict]) -> float:
    """One width for every box: wide enough for the longest line of text in any of them."""
    longest = max(len(line) for node in nodes for line in node["lines"])
    return max(WIDTH, round(CHAR * longest + 2 * PAD))


def to_svg(t: Any) -> str:
    """SVG text of trace ``t``'s computational graph."""
    main, above, edges = _nodes_and_edges(t)
    everything = main + [p for ps in above.values() for p in ps]
    box = _box_width(everything)
    top_height = max(sum(p["height"] + GAP_Y for p in ps) for ps in above.values())
    main_y = PAD + top_height
    boxes: dict[str, tuple[float, float, float]] = {}  # name -> (x, y, height)
    for column, node in enumerate(main):
        x = PAD + column * (box + GAP_X)
        boxes[node["name"]] = (x, main_y, node["height"])
        y = main_y
        for param in reversed(above.get(column, [])):
            y -= param["height"] + GAP_Y
            shift = B_SHIFT if param is not above[column][0] else 0  # b, beta: right of W
            boxes[param["name"]] = (x + shift, y, param["height"])
    width = max(
        PAD * 2 + len(main) * (box + GAP_X) - GAP_X + B_SHIFT,
        PAD * 2 + CHAR * max(len(line) for line in LEGEND),
    )
    legend_y = main_y + max(n["height"] for n in main) + GAP_Y / 2
    height = legend_y + LINE * len(LEGEND) + PAD

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="monospace" font-size="11">',
        "<title>Computational graph: forward values and gradients dJ/d(node)</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'fill="#555"/></marker></defs>',
    ]
    for source, target in edges:
        sx, sy, sh = boxes[source]
        tx, ty, th = boxes[target]
        if source.startswith(("W", "gamma")):  # down the left, beside b (or beta)
            x1, y1, x2, y2 = sx + B_SHIFT / 2, sy + sh, tx + B_SHIFT / 2, ty
        elif sy < ty and abs(sx - tx) <= B_SHIFT:  # b or Y straight down onto its node
            x1, y1, x2, y2 = sx + box / 2, sy + sh, sx + box / 2, ty
        else:
            x1, y1, x2, y2 = sx + box, sy + min(sh, th) / 2, tx, ty + min(sh, th) / 2
        parts.append(
            f'<line class="edge" data-from="{source}" data-to="{target}" x1="{x1}" y1="{y1}" '
            f'x2="{x2}" y2="{y2}" stroke="#555" marker-end="url(#arrow)"/>'
        )
    for node in everything:
        parts += _box(node, *boxes[node["name"]], box)
    parts.append('<g class="legend">')
    for i, line in enumerate(LEGEND):
        parts.append(
            f'<text x="{PAD}" y="{legend_y + LINE * (i + 0.8)}" fill="#333">{escape(line)}</text>'
        )
    parts.append("</g>")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _box(node: dict, x: float, y: float, h: float, width: float) -> list[str]:
    """One node: its box and lines of text. The group carries ``data-name`` (``Z1``) and its
    gradient's lines a group of their own (``data-name="dJ/dZ1"``), which the step-through
    page highlights."""
    kind = "param" if node["name"].startswith(("W", "b", "gamma")) else "value"
    fill = {"param": "#fff4d6", "value": "#e8f0fe"}[kind]
    name = escape(node["name"])
    parts = [
        f'<g class="node {kind}" id="node-{name}" data-name="{name}">',
        f'<rect x="{x}" y="{y}" width="{width}" height="{h}" rx="6" fill="{fill}" stroke="#333"/>',
    ]
    for i, line in enumerate(node["lines"]):
        if node["grad"] is not None and i == node["grad_from"]:  # the gradient's lines
            parts.append(f'<g class="grad" data-name="{escape(node["grad"])}">')
        weight = ' font-weight="bold"' if i == 0 else ""
        parts.append(
            f'<text x="{x + PAD}" y="{y + PAD + LINE * (i + 0.8)}"{weight} '
            f'xml:space="preserve">{escape(line)}</text>'
        )
    if node["grad"] is not None:
        parts.append("</g>")
    parts.append("</g>")
    return parts
