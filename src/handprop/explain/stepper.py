"""``Trace.to_html()``: one self-contained page that steps through a trace, frame by frame.

The page shows the computational graph (``Trace.to_svg``) and, below it, one step of the
computation per frame: forward, from X to the cost J, then backward, one chain-rule step at a
time. Each frame has a title, the formula in plain text, the shapes, the numbers it computes,
and highlights (class ``active``) the graph nodes it reads and writes, by their trace names
(``data-name="Z1"``, ``data-name="dJ/dW3"``). Buttons ``#prev`` and ``#next`` and the arrow
keys move between frames; the frame's title is in ``#step-title``.

Everything is inline (styles, script, the graph, the frames as JSON), so the page works
offline, from a file, and in a notebook (``Trace`` displays as this page, in an iframe).
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

import numpy as np

from .graph import _rows

__all__ = ["frames", "to_html"]

MAX_LINES = 12  # of numbers per array shown in a frame


def _numbers(t: Any, names: list[str]) -> list[str]:
    lines = []
    for name in names:
        if name in t:
            for label, value in parts(name, t[name]):
                lines += _rows(f"{label}  {tuple(np.shape(value))}", value)[: MAX_LINES + 1]
    return lines


def parts(name: str, value: Any) -> list[tuple[str, Any]]:
    """``(label, array)`` for each array of a value: itself, or for several outputs nested as
    an LSTM's ``(output, (h_n, c_n))``, ``name[0]``, ``name[1][0]``, ``name[1][1]``."""
    if isinstance(value, (tuple, list)):
        return [part for i, item in enumerate(value) for part in parts(f"{name}[{i}]", item)]
    return [(name, value)]


def _frame(t, title, formula, shapes, reads, writes) -> dict[str, Any]:
    reads = [r for r in reads if r in t]
    writes = [w for w in writes if w in t]
    return {
        "title": title,
        "formula": formula,
        "shapes": shapes,
        "reads": reads,
        "writes": writes,
        "values": _numbers(t, writes),
    }


def _shape(t: Any, name: str) -> str:
    return str(tuple(np.shape(t[name])))


def frames(t: Any) -> list[dict[str, Any]]:
    """The frames of trace ``t``: forward, the loss, then backward, in the order computed (for
    the trace of a model with blocks, one frame per call: ``handprop.explain.calls``)."""
    if hasattr(t, "calls"):
        from .calls import frames as call_frames

        return call_frames(t)
    out = _forward_frames(t)
    last = t.layers[-1].output_node
    out.append(
        _frame(
            t,
            f"Loss: L = {t.loss_fn!r}({last}, Y)",
            f"L = loss({last}, Y), one value per element",
            f"{_shape(t, last)} and Y {_shape(t, 'Y')} give L {_shape(t, 'L')}",
            [last, "Y"],
            ["L"],
        )
    )
    out.append(_frame(t, "Cost: J", "J = the loss's reduction of L", "a number", ["L"], ["J"]))
    out += _backward_frames(t)
    total = len(out)
    for number, frame in enumerate(out, start=1):
        frame["title"] = f"{number}/{total}. {frame['title']}"
    return out


def _forward_frames(t: Any) -> list[dict[str, Any]]:
    out = []
    for layer in t.layers:
        n, x = layer.number, t.input_of(layer, node=True)
        params = [f"W{n}", f"b{n}"]
        if layer.is_conv:
            formula = f"Z{n}[n,o,i,j] = b{n}[o] + Σ W{n}[o,c,a,e] · {x}[n,c,i·s+a·d,j·s+e·d]"
        else:
            formula = f"Z{n} = {x} · W{n}ᵀ + b{n}"
        shapes = f"{x} {_shape(t, x)} and W{n} {_shape(t, f'W{n}')} give Z{n} {_shape(t, f'Z{n}')}"
        out.append(_frame(t, f"Forward: Z{n}", formula, shapes, [x, *params], [f"Z{n}"]))
        source = f"Z{n}"
        if layer.norm is not None:
            out.append(
                _frame(
                    t,
                    f"Forward: N{n}, {type(layer.norm).__name__}",
                    f"N{n} = gamma{n} ⊙ (Z{n} - mean) / sqrt(var + eps) + beta{n}",
                    f"{_shape(t, f'N{n}')}, like Z{n}",
                    [source, f"gamma{n}", f"beta{n}"],
                    [f"N{n}"],
                )
            )
            source = f"N{n}"
        steps = [
            (layer.activation, f"A{n}", f"A{n} = {layer.activation!r}({source})"),
            (layer.pool, f"P{n}", f"P{n} = {type(layer.pool).__name__}(A{n})"),
            (layer.flatten, f"F{n}", f"F{n} = flatten(P{n} or A{n})"),
        ]
        for module, name, formula in steps:
            if module is None:
                continue
            out.append(_frame(t, f"Forward: {name}", formula, _shape(t, name), [source], [name]))
            source = name
    return out


def _backward_frames(t: Any) -> list[dict[str, Any]]:
    """One frame per chain-rule step, from the cost down to X."""
    layers = t.layers
    last = layers[-1].output_node
    out = [
        _frame(
            t,
            f"Backward: dJ/d{last}, from the loss",
            f"dJ/d{last} = ∂J/∂{last} of {t.loss_fn!r}",
            f"{_shape(t, f'dJ/d{last}')}, like {last}",
            [last, "Y", "J"],
            [f"dJ/d{last}"],
        )
    ]
    for layer in reversed(layers):
        out += _backward_layer(t, layer)
    return out


def _backward_layer(t: Any, layer: Any) -> list[dict[str, Any]]:
    n, out = layer.number, []
    chain = [
        (f"F{n}", layer.flatten, "reshape back"),
        (f"P{n}", layer.pool, "to each window's input"),
    ]
    below = {f"F{n}": f"P{n}" if layer.pool is not None else f"A{n}", f"P{n}": f"A{n}"}
    for name, module, how in chain:
        if module is not None:
            target = below[name]
            out.append(
                _frame(
                    t,
                    f"Backward: dJ/d{target}, through {type(module).__name__}",
                    f"dJ/d{target} = dJ/d{name}, {how}",
                    _shape(t, f"dJ/d{target}"),
                    [f"dJ/d{name}", target],
                    [f"dJ/d{target}"],
                )
            )
    source = f"N{n}" if layer.norm is not None else f"Z{n}"
    if layer.activation is not None:
        out.append(
            _frame(
                t,
                f"Backward: dJ/d{source}, through {layer.activation!r}",
                f"dJ/d{source} = dJ/dA{n} ⊙ f'({source})",
                f"elementwise, {_shape(t, f'dJ/d{source}')}",
                [f"dJ/dA{n}", source, f"A{n}"],
                [f"dJ/d{source}"],
            )
        )
    if layer.norm is not None:
        out.append(
            _frame(
                t,
                f"Backward: dJ/dZ{n}, through {type(layer.norm).__name__}",
                f"dJ/dZ{n} = inv_std / m · (m·G - ΣG - Ẑ ⊙ Σ(G ⊙ Ẑ)), G = dJ/dN{n} ⊙ gamma{n}",
                _shape(t, f"dJ/dZ{n}"),
                [f"dJ/dN{n}", f"N{n}", f"gamma{n}"],
                [f"dJ/dZ{n}", f"dJ/dgamma{n}", f"dJ/dbeta{n}"],
            )
        )
    x = t.input_of(layer, node=True)
    out.append(
        _frame(
            t,
            f"Backward: dJ/dW{n} and dJ/db{n}",
            f"dJ/dW{n} = dJ/dZ{n}ᵀ · {x};  dJ/db{n} = Σ over the batch of dJ/dZ{n}"
            + ("  (summed over every window)" if layer.is_conv else ""),
            f"{_shape(t, f'dJ/dW{n}')}, the shape of W{n}",
            [f"dJ/dZ{n}", x],
            [f"dJ/dW{n}", f"dJ/db{n}"],
        )
    )
    out.append(
        _frame(
            t,
            f"Backward: dJ/d{x}, back through layer {n}",
            f"dJ/d{x} = dJ/dZ{n} · W{n}" + ("  (col2im: windows add up)" if layer.is_conv else ""),
            f"{_shape(t, f'dJ/d{x}')}, the shape of {x}",
            [f"dJ/dZ{n}", f"W{n}"],
            [f"dJ/d{x}"],
        )
    )
    return out


_STYLE = """
body { font-family: Helvetica, Arial, sans-serif; margin: 16px; color: #222; }
#graph { overflow-x: auto; border: 1px solid #ccc; padding: 4px; }
#panel { margin-top: 12px; }
#step-title { font-size: 18px; margin: 6px 0; }
#step-formula { font-family: monospace; font-size: 15px; background: #f6f6f6; padding: 6px; }
#step-values { font-size: 12px; background: #fbfbf2; padding: 6px; }
button { font-size: 15px; padding: 4px 14px; margin-right: 6px; }
g.node.active > rect { stroke: #d0452b; stroke-width: 4; }
g.grad.active text { fill: #d0452b; font-weight: bold; }
g.node.written > rect { fill: #ffe1d6; }
"""

_SCRIPT = """
const frames = JSON.parse(document.getElementById("frames").textContent);
let current = 0;
function show(i) {
  current = Math.max(0, Math.min(frames.length - 1, i));
  const f = frames[current];
  document.getElementById("step-title").textContent = f.title;
  document.getElementById("step-formula").textContent = f.formula;
  document.getElementById("step-shapes").textContent = "Shapes: " + f.shapes;
  document.getElementById("step-values").textContent = f.values.join("\\n");
  document.getElementById("step-picture").innerHTML = f.picture || "";  // a heat map, if any
  const used = new Set(f.reads.concat(f.writes));
  const written = new Set(f.writes);
  document.querySelectorAll("[data-name]").forEach((el) => {
    el.classList.toggle("active", used.has(el.dataset.name));
    el.classList.toggle("written", written.has(el.dataset.name));
  });
  const target = f.writes.length
    ? document.querySelector('[data-name="' + CSS.escape(f.writes[0]) + '"]')
    : null;
  if (target) {  // bring the node this frame writes into view (the graph is wide)
    (target.closest("g.node") || target).scrollIntoView({ block: "nearest", inline: "center" });
  }
  document.getElementById("prev").disabled = current === 0;
  document.getElementById("next").disabled = current === frames.length - 1;
}
document.getElementById("prev").addEventListener("click", () => show(current - 1));
document.getElementById("next").addEventListener("click", () => show(current + 1));
document.addEventListener("keydown", (e) => {
  if (e.key === "ArrowRight") show(current + 1);
  if (e.key === "ArrowLeft") show(current - 1);
});
show(0);
"""


def to_html(t: Any) -> str:
    """The step-through page of trace ``t`` (see the module docstring); for the trace of a
    model with blocks, its calls' page (``handprop.explain.calls``)."""
    if hasattr(t, "calls"):
        from .calls import to_html as calls_page

        return calls_page(t)
    title = f"Backpropagation step by step: {' → '.join(repr(m) for m in t.model)}"
    intro = (
        f"Loss: <code>{escape(repr(t.loss_fn))}</code>. Step with the buttons or the arrow "
        "keys;\nthe nodes a step reads and writes are outlined, the ones it writes filled."
    )
    return page(title, intro, t.to_svg(), frames(t))


def page(title: str, intro: str, graph: str, steps: list[dict[str, Any]], style: str = "") -> str:
    """The page itself: ``graph`` (HTML whose elements carry ``data-name``) above the panel
    that shows one of ``steps`` at a time; everything inline, so it works offline."""
    # nothing in it may end the script or start an HTML comment there (`</`, `<!--`): every
    # <, > and & is written as a JSON escape, which the page's JSON.parse reads back
    data = json.dumps(steps)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        data = data.replace(char, escaped)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{escape(title)}</title>
<style>{_STYLE}{style}</style>
</head>
<body>
<h1 style="font-size: 20px">{escape(title)}</h1>
<p>{intro}</p>
<div id="graph">{graph}</div>
<div id="panel">
<button id="prev" type="button">← previous</button>
<button id="next" type="button">next →</button>
<h2 id="step-title"></h2>
<div id="step-formula"></div>
<p id="step-shapes"></p>
<div id="step-picture"></div>
<pre id="step-values"></pre>
</div>
<script type="application/json" id="frames">{data}</script>
<script>{_SCRIPT}</script>
</body>
</html>
"""
