"""A matrix drawn as a heat map in SVG: the attention weights (how much each query takes from
each key) and the gradient through the softmax, on the step-through page and in the docs.

Weights (in [0, 1]) go from white to dark blue; a gradient (either sign) from red (negative)
through white to blue (positive), scaled to its largest size. Every cell keeps its number in a
tooltip (``<title>``)."""

from __future__ import annotations

from html import escape

import numpy as np

__all__ = ["heat_map"]


def _colour(value: float, signed: bool, top: float) -> str:
    if not np.isfinite(value):
        return "rgb(200,200,200)"  # NaN: a row with every key masked
    share = min(1.0, abs(value) / top) if top > 0 else 0.0
    fade = round(255 * (1 - share))
    if signed and value < 0:
        return f"rgb(255,{fade},{fade})"  # red
    return f"rgb({fade},{fade},255)" if signed else f"rgb({fade},{round(255 - 130 * share)},255)"


def heat_map(matrix, title: str, *, signed: bool = False, cell: int = 22) -> str:
    """``matrix`` (rows: queries, columns: keys) as an SVG heat map with ``title`` above it;
    ``signed`` for a gradient (red negative, blue positive), else weights from white to blue."""
    m = np.asarray(matrix, dtype=np.float64)
    rows, columns = m.shape
    finite = np.abs(m[np.isfinite(m)])
    top = float(finite.max()) if signed and finite.size else 1.0
    left, upper = 34, 34
    width = max(left + columns * cell + 8, left + 6 * len(title))  # (the title fits)
    height = upper + rows * cell + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="Helvetica, Arial, sans-serif" font-size="10" role="img">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="12" font-weight="bold">{escape(title)}</text>',
    ]
    for j in range(columns):
        parts.append(
            f'<text x="{left + j * cell + cell // 2}" y="{upper - 6}" text-anchor="middle">'
            f"k{j}</text>"
        )
    for i in range(rows):
        y = upper + i * cell
        parts.append(f'<text x="{left - 4}" y="{y + cell // 2 + 3}" text-anchor="end">q{i}</text>')
        for j in range(columns):
            value = m[i, j]
            parts.append(
                f'<rect x="{left + j * cell}" y="{y}" width="{cell}" height="{cell}" '
                f'fill="{_colour(value, signed, top)}" stroke="#fff"><title>q{i}, k{j}: '
                f"{value:.4g}</title></rect>"
            )
    parts.append("</svg>")
    return "".join(parts)
