"""Draw the documentation's pictures with handprop's own code, and write the worked-example page.

    .venv/bin/python tools/make_pictures.py        # rewrites docs/img/*.svg, docs/worked_example.md

Every number in a picture comes from handprop: the worked example's network and graph from
``handprop.trace``, each activation's derivative from its own ``backward``, the loss curves from
the training examples run as they are. The SVG is written by hand here (no plotting library),
so the same numbers give the same file. ``tests/test_pictures.py`` redraws everything and fails
when a committed picture is stale.
"""

from __future__ import annotations

import math
import sys
from html import escape
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
IMG = ROOT / "docs" / "img"
COLOURS = ("#1f5fbf", "#d0452b", "#2e8b3e", "#8a4fbf", "#c98a00")
FONT = 'font-family="Helvetica, Arial, sans-serif"'


def _n(value: float) -> str:
    """A coordinate to 0.1 px: enough for the eye, and stable across machines."""
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


# --- line charts ------------------------------------------------------------------------------


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering [low, high]."""
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = min((m * power for m in (1, 2, 5, 10) if m * power >= raw), default=10 * power)
    first = math.ceil(low / step - 1e-9) * step
    return [round(first + i * step, 10) for i in range(int((high - first) / step + 1e-9) + 1)]


def _tag(name: str, text: str | None = None, **attributes) -> str:
    """One SVG element; ``text_anchor=`` is written ``text-anchor=``, numbers to 0.1 px."""
    attrs = " ".join(
        f'{key.replace("_", "-")}="{_n(value) if isinstance(value, float) else escape(str(value))}"'
        for key, value in attributes.items()
    )
    if text is None:
        return f"<{name} {attrs}/>"
    return f"<{name} {attrs}>{escape(text)}</{name}>"


def _label(value: float) -> str:
    return f"{value:g}"


def chart(
    series, *, title, xlabel, ylabel, xlim, ylim, dots=(), width=340, height=250, legend="top"
):
    """One line chart as an SVG group, and its size.

    ``series``: ``(label, xs, ys)`` triples; a polyline breaks where ys is NaN. ``dots``:
    ``(label_index, x, y)`` points drawn as filled circles in their series' colour.
    ``legend``: "top" (left) or "bottom" (right) corner of the plot.
    """
    left, right, top, bottom = 48, 12, 30, 40
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(x):
        return left + (x - xlim[0]) / (xlim[1] - xlim[0]) * plot_w

    def sy(y):
        return top + (ylim[1] - y) / (ylim[1] - ylim[0]) * plot_h

    parts = [_tag("rect", x=left, y=top, width=plot_w, height=plot_h, fill="#fafafa")]
    for x in _ticks(*xlim):
        parts.append(_tag("line", x1=sx(x), y1=top, x2=sx(x), y2=top + plot_h, stroke="#ddd"))
        parts.append(_tag("text", _label(x), x=sx(x), y=top + plot_h + 15, text_anchor="middle"))
    for y in _ticks(*ylim, count=4):
        parts.append(_tag("line", x1=left, y1=sy(y), x2=left + plot_w, y2=sy(y), stroke="#ddd"))
        parts.append(_tag("text", _label(y), x=left - 5, y=sy(y) + 4, text_anchor="end"))
    parts.append(
        _tag("rect", x=left, y=top, width=plot_w, height=plot_h, fill="none", stroke="#999")
    )
    for i, (_, xs, ys) in enumerate(series):
        for piece in _pieces(xs, ys):
            points = " ".join(f"{_n(sx(x))},{_n(sy(y))}" for x, y in piece)
            parts.append(
                _tag("polyline", points=points, fill="none", stroke=COLOURS[i], stroke_width=2)
            )
    for i, x, y in dots:
        parts.append(_tag("circle", cx=sx(x), cy=sy(y), r=3.5, fill=COLOURS[i]))
    for i, (label, _, _) in enumerate(series):
        if legend == "top":
            x, y = left + 8, top + 14 + 16 * i
        else:  # bottom right, as wide as the longest label (about 6.5 px a character)
            widest = max(len(label) for label, _, _ in series)
            x = left + plot_w - 30 - round(6.5 * widest)
            y = top + plot_h - 8 - 16 * (len(series) - 1 - i)
        parts.append(
            _tag("line", x1=x, y1=y - 4, x2=x + 18, y2=y - 4, stroke=COLOURS[i], stroke_width=2)
        )
        parts.append(_tag("text", label, x=x + 23, y=y))
    middle = left + plot_w / 2
    parts.append(_tag("text", title, x=middle, y=18, text_anchor="middle", font_weight="bold"))
    parts.append(_tag("text", xlabel, x=middle, y=height - 6, text_anchor="middle"))
    parts.append(
        _tag(
            "text",
            ylabel,
            transform=f"translate(13 {_n(top + plot_h / 2)}) rotate(-90)",
            text_anchor="middle",
        )
    )
    return "\n".join(parts), (width, height)


def _pieces(xs, ys):
    """The (x, y) runs between NaNs: a jump is drawn as a break, not as a slope."""
    piece = []
    for x, y in zip(xs, ys, strict=True):
        if np.isnan(y):
            if piece:
                yield piece
            piece = []
        else:
            piece.append((float(x), float(y)))
    if piece:
        yield piece


def figure(charts, title: str) -> str:
    """Charts side by side in one SVG document."""
    width = sum(size[0] for _, size in charts)
    height = max(size[1] for _, size in charts)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" {FONT} font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    x = 0
    for body, (w, _) in charts:
        parts += [f'<g transform="translate({x} 0)">', body, "</g>"]
        x += w
    return "\n".join([*parts, "</svg>"]) + "\n"


def grid(rows, title: str) -> str:
    """Rows of charts, each row's charts side by side, in one SVG document."""
    width = max(sum(size[0] for _, size in row) for row in rows)
    heights = [max(size[1] for _, size in row) for row in rows]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{sum(heights)}" '
        f'viewBox="0 0 {width} {sum(heights)}" {FONT} font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{width}" height="{sum(heights)}" fill="white"/>',
    ]
    y = 0
    for row, height in zip(rows, heights, strict=True):
        x = 0
        for body, (w, _) in row:
            parts += [f'<g transform="translate({x} {y})">', body, "</g>"]
            x += w
        y += height
    return "\n".join([*parts, "</svg>"]) + "\n"


def histogram(values, *, low, high, title, bins=30, width=150, height=96):
    """A small histogram (bar heights relative to the tallest) as an SVG group, and its size;
    values outside [low, high] are counted in the first or last bin."""
    left, right, top, bottom = 8, 8, 18, 18
    plot_w, plot_h = width - left - right, height - top - bottom
    counts, _ = np.histogram(np.clip(values, low, high), bins=bins, range=(low, high))
    tallest = max(int(counts.max()), 1)
    bar = plot_w / bins
    parts = [_tag("rect", x=left, y=top, width=plot_w, height=plot_h, fill="#fafafa")]
    for i, count in enumerate(counts):
        h = count / tallest * plot_h
        if h > 0:
            parts.append(
                _tag(
                    "rect",
                    x=left + i * bar,
                    y=top + plot_h - h,
                    width=bar,
                    height=h,
                    fill=COLOURS[0],
                )
            )
    parts.append(
        _tag("rect", x=left, y=top, width=plot_w, height=plot_h, fill="none", stroke="#999")
    )
    for value, anchor in ((low, "start"), (high, "end")):
        x = left if anchor == "start" else left + plot_w
        parts.append(_tag("text", _label(value), x=x, y=height - 5, text_anchor=anchor))
    parts.append(_tag("text", title, x=left + plot_w / 2, y=13, text_anchor="middle"))
    return "\n".join(parts), (width, height)


# --- activations: f and f', the derivative from handprop's own backward -----------------------


def activation_figure(name: str, module, *, note: str = "") -> str:
    """f(x) and f'(x) on [-4, 4]; f' is ``module.backward(ones)`` after ``module(x)``.

    Where f' jumps (ReLU's kink at 0), the line breaks and a dot marks the value handprop
    (like torch) gives at the kink itself.
    """
    x = np.linspace(-4.0, 4.0, 401)  # x = 0 is on the grid: the kink is evaluated exactly
    y = module(x)
    slope = module.backward(np.ones_like(x))
    lines, dots = _broken_at_kinks(x, slope, module.kinks_at)
    low = min(float(np.min(y)), float(np.min(slope)), 0.0)
    high = max(float(np.max(y)), float(np.max(slope)), 1.0)
    pad = 0.08 * (high - low)
    body, size = chart(
        [(f"{name}(x)", x, y), (f"{name}'(x) from backward" + note, x, lines)],
        title=f"{name} and its derivative",
        xlabel="x",
        ylabel="",
        xlim=(-4.0, 4.0),
        ylim=(low - pad, high + pad),
        dots=dots,
        width=420,
        height=280,
    )
    return figure([(body, size)], f"{name}(x) and its derivative, computed by handprop")


def _broken_at_kinks(x, slope, kinks):
    """The derivative as a line that breaks at each kink (a grid point of ``x``) where it
    jumps, and a dot (on series 1) at the value handprop gives at the kink itself."""
    lines = np.array(slope, dtype=float)
    dots = []
    for kink in kinks:
        j = int(np.flatnonzero(x == kink)[0])
        if abs(lines[j + 1] - lines[j - 1]) > 0.2:
            dots.append((1, float(x[j]), float(lines[j])))
            lines[j] = np.nan
    return lines, dots


def loss_figure(name: str, loss, x, inputs, target, *, xlabel: str, ylim, column=None) -> str:
    """One element's loss L against the input, and dL/d(input) from ``loss.backward`` (with
    ``reduction="none"`` and an upstream gradient of ones: one element's derivative each)."""
    losses = loss(inputs, target)
    grad = loss.backward(np.ones_like(losses))
    slope = grad if column is None else grad[:, column]
    lines, dots = _broken_at_kinks(x, slope, loss.kinks_at)  # (the target is 0)
    body, size = chart(
        [("L, one element's loss", x, losses), ("dL/d(input), from backward", x, lines)],
        title=f"{name}: the loss and its gradient",
        xlabel=xlabel,
        ylabel="",
        xlim=(float(x[0]), float(x[-1])),
        ylim=ylim,
        dots=dots,
        width=420,
        height=280,
    )
    return figure([(body, size)], f"{name} and its gradient, computed by handprop")


def loss_figures() -> dict[str, str]:
    """Each loss's picture (NLLLoss, a straight line -x[t], has none)."""
    from handprop.losses import (
        BCELoss,
        BCEWithLogitsLoss,
        CrossEntropyLoss,
        HuberLoss,
        L1Loss,
        MSELoss,
    )

    x = np.linspace(-3.0, 3.0, 301)  # x = 0 on the grid: L1's kink is evaluated exactly
    error = "the input x, for the target 0"
    p = np.linspace(0.1, 0.98, 221)
    z = np.linspace(-6.0, 6.0, 241)
    logits = np.stack([z, np.zeros_like(z)], axis=1)
    none = {"reduction": "none"}
    return {
        "mse.svg": loss_figure(
            "MSELoss", MSELoss(**none), x, x, 0 * x, xlabel=error, ylim=(-6.5, 9.5)
        ),
        "l1.svg": loss_figure(
            "L1Loss", L1Loss(**none), x, x, 0 * x, xlabel=error, ylim=(-1.5, 3.5)
        ),
        "huber.svg": loss_figure(
            "HuberLoss (delta 1)", HuberLoss(**none), x, x, 0 * x, xlabel=error, ylim=(-1.5, 3.5)
        ),
        "bce.svg": loss_figure(
            "BCELoss",
            BCELoss(**none),
            p,
            p,
            np.ones_like(p),
            xlabel="the probability p, for the target 1",
            ylim=(-10.5, 5.0),
        ),
        "bce_with_logits.svg": loss_figure(
            "BCEWithLogitsLoss",
            BCEWithLogitsLoss(**none),
            z,
            z,
            np.ones_like(z),
            xlabel="the logit z, for the target 1",
            ylim=(-1.5, 6.5),
        ),
        "cross_entropy.svg": loss_figure(
            "CrossEntropyLoss",
            CrossEntropyLoss(**none),
            z,
            logits,
            np.zeros(len(z), int),
            xlabel="the first logit x of (x, 0), for the class 0",
            ylim=(-1.5, 6.5),
            column=0,
        ),
    }


def softmax_figure(log: bool = False) -> str:
    """Softmax (or LogSoftmax) of the two logits (x, 0): its first output, and the derivative
    of that output with respect to x, from backward (upstream gradient 1 on output 0: one row
    of the Jacobian, per sample)."""
    from handprop.layers import LogSoftmax, Softmax

    name = "LogSoftmax" if log else "Softmax"
    layer = (LogSoftmax if log else Softmax)(dim=1)
    x = np.linspace(-6.0, 6.0, 241)
    logits = np.stack([x, np.zeros_like(x)], axis=1)
    out = layer(logits)[:, 0]
    upstream = np.zeros_like(logits)
    upstream[:, 0] = 1.0
    slope = layer.backward(upstream)[:, 0]
    label = "log_softmax(x, 0)[0]" if log else "softmax(x, 0)[0]"
    body, size = chart(
        [(label, x, out), ("its derivative, from backward", x, slope)],
        title=f"{name} of two logits (x, 0)",
        xlabel="x (the first logit; the second is 0)",
        ylabel="",
        xlim=(-6.0, 6.0),
        ylim=(-6.5, 1.5) if log else (-0.08, 1.08),
        legend="bottom" if log else "top",
        width=420,
        height=280,
    )
    return figure([(body, size)], f"{name} and its derivative, computed by handprop")


# --- the training examples' curves ----------------------------------------------------------------


def training_figure(history, title: str) -> str:
    epochs = np.arange(1, len(history["loss"]) + 1)
    loss = np.asarray(history["loss"])
    left = chart(
        [("training loss (mean per sample)", epochs, loss)],
        title=title,
        xlabel="epoch",
        ylabel="loss",
        xlim=(0, len(epochs)),
        ylim=(0.0, float(loss.max()) * 1.08),
    )
    right = chart(
        [
            ("train", epochs, history["train_accuracy"]),
            ("test", epochs, history["test_accuracy"]),
        ],
        title="accuracy",
        xlabel="epoch",
        ylabel="accuracy",
        xlim=(0, len(epochs)),
        ylim=(0.5, 1.02),
        legend="bottom",
    )
    return figure([left, right], f"{title}: loss and accuracy per epoch")


def run_example(name: str, *args, **kwargs):
    """The history of examples/<name>.py's training run, with its defaults (``run``) or with
    the given function and arguments (``train``: the regularisation example)."""
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        module = __import__(name)
        if args or kwargs:
            return module.train(*args, **kwargs)
        return module.run(verbose=False)
    finally:
        sys.path.remove(str(ROOT / "examples"))


def regularisation_figure() -> str:
    """examples/regularisation.py without torch: train and test accuracy of each variant."""
    charts = []
    for variant in ("plain", "dropout", "batchnorm"):
        history = run_example("regularisation", variant, 100, with_torch=False)
        epochs = np.arange(1, len(history["train"]) + 1)
        gap = history["train"][-1] - history["test"][-1]
        charts.append(
            chart(
                [("train", epochs, history["train"]), ("test", epochs, history["test"])],
                title=f"{variant}: test {history['test'][-1]:.3f}, gap {gap:.3f}",
                xlabel="epoch",
                ylabel="accuracy",
                xlim=(0, len(epochs)),
                ylim=(0.0, 1.02),
                legend="bottom",
            )
        )
    return figure(charts, "An overfitting MLP on 300 digits, without and with regularisation")


def optimizers_figure() -> str:
    """examples/compare_optimizers.py: each optimizer's training loss, smoothed over 20 steps."""
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import compare_optimizers as example
    finally:
        sys.path.remove(str(ROOT / "examples"))
    series = []
    for label, _, _ in example.OPTIMIZERS:
        result = example.train(label)
        losses = example.smooth(result["loss"])
        steps = np.arange(1, len(losses) + 1)
        series.append((f"{label}: test {result['test_accuracy']:.3f}", steps, losses))
    body = chart(
        series,
        title="training loss (mean of 20 steps)",
        xlabel="step (mini-batch of 128)",
        ylabel="loss",
        xlim=(0, len(series[0][1])),
        ylim=(0.0, 3.0),
        width=560,
        height=320,
        legend="bottom",
    )
    return figure([body], "Five optimizers, one network, the same batches (8x8 digits)")


def filters_chart(filters, *, title, cell=22):
    """Small grey images of a convolution's filters (one input channel each), darker for larger
    weights, each scaled to its own range; an SVG group and its size."""
    count, kh, kw = filters.shape
    columns = (count + 1) // 2
    gap, top = 10, 40
    width = 20 + columns * (kw * cell + gap)
    height = top + 2 * (kh * cell + gap) + 10
    parts = []
    for k, kernel in enumerate(filters):
        x0 = 10 + (k % columns) * (kw * cell + gap)
        y0 = top + (k // columns) * (kh * cell + gap)
        low, high = float(kernel.min()), float(kernel.max())
        for (r, c), value in np.ndenumerate(kernel):
            level = 0.0 if high == low else (value - low) / (high - low)
            grey = round(255 * (1 - level))  # darker for larger
            parts.append(
                _tag(
                    "rect",
                    x=x0 + c * cell,
                    y=y0 + r * cell,
                    width=cell,
                    height=cell,
                    fill=f"rgb({grey},{grey},{grey})",
                )
            )
        parts.append(
            _tag("rect", x=x0, y=y0, width=kw * cell, height=kh * cell, fill="none", stroke="#999")
        )
    parts.append(_tag("text", title, x=width / 2, y=18, text_anchor="middle", font_weight="bold"))
    return "\n".join(parts), (width, height)


def cnn_figure() -> str:
    """examples/train_cnn.py on the digits without torch: loss, test accuracy, filters."""
    history = run_example("train_cnn", "digits", with_torch=False)
    epochs = np.arange(1, len(history["loss"]) + 1)
    left = chart(
        [("training loss", epochs, history["loss"])],
        title="loss per epoch",
        xlabel="epoch",
        ylabel="cross-entropy",
        xlim=(0, len(epochs)),
        ylim=(0.0, 2.4),
    )
    middle = chart(
        [("test", epochs, history["test"])],
        title=f"test accuracy: {history['test'][-1]:.3f}",
        xlabel="epoch",
        ylabel="accuracy",
        xlim=(0, len(epochs)),
        ylim=(0.4, 1.0),
        legend="bottom",
    )
    right = filters_chart(history["filters"][:, 0], title="first-layer filters")
    return figure([left, middle, right], "LeNet-5-style CNN on the 8x8 digits")


def init_figure(activation: str) -> str:
    """examples/init_histograms.py: one row of per-layer histograms per initialisation."""
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import init_histograms as example
    finally:
        sys.path.remove(str(ROOT / "examples"))
    low, high = {"tanh": (-1, 1), "sigmoid": (0, 1), "relu": (0, 4)}[activation]
    rows = []
    for scheme in example.INITS:
        row = []
        for layer, a in enumerate(example.activations(scheme, activation), start=1):
            values = a[a != 0] if activation == "relu" else a.ravel()
            title = f"{scheme} L{layer}: std {a.std():.2g}"
            row.append(histogram(values, low=low, high=high, title=title, width=168))
        rows.append(row)
    return grid(rows, f"{activation} activations per layer, for each initialisation")


# --- the worked example's network: values forward, gradients backward --------------------------


def network_figure(t, sample: int = 0) -> str:
    """The 2-3-2-1 network as neurons: each shows its forward value and its gradient for one
    sample; each edge's width is its weight's size (blue positive, red negative)."""
    layers = [("X", "dJ/dX", "x")]
    for layer in t.layers:
        n = layer.number
        layers.append((f"A{n}", f"dJ/dZ{n}", f"a{n}"))
    column_x = [70 + 190 * i for i in range(len(layers))]
    height, radius = 350, 36

    def centre(column: int, row: int, count: int):
        return column_x[column], 175 + (row - (count - 1) / 2) * 100

    parts = []
    for i, layer in enumerate(t.layers, start=1):
        weight = np.asarray(t[f"W{layer.number}"])
        for j in range(weight.shape[0]):
            for k in range(weight.shape[1]):
                x1, y1 = centre(i - 1, k, weight.shape[1])
                x2, y2 = centre(i, j, weight.shape[0])
                colour = COLOURS[0] if weight[j, k] >= 0 else COLOURS[1]
                stroke = 0.8 + 1.4 * min(abs(float(weight[j, k])), 4.0)
                parts.append(
                    f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" '
                    f'stroke="{colour}" stroke-opacity="0.45" stroke-width="{_n(stroke)}"/>'
                )
    for i, (value_name, grad_name, label) in enumerate(layers):
        values = np.asarray(t[value_name])[sample]
        grads = np.asarray(t[grad_name])[sample]
        for j, (value, grad) in enumerate(zip(values, grads, strict=True)):
            x, y = centre(i, j, len(values))
            parts += [
                f'<circle cx="{_n(x)}" cy="{_n(y)}" r="{radius}" fill="white" stroke="#333"/>',
                f'<text x="{_n(x)}" y="{_n(y - 4)}" text-anchor="middle">{_fmt(value)}</text>',
                f'<text x="{_n(x)}" y="{_n(y + 12)}" text-anchor="middle" fill="{COLOURS[1]}">'
                f"{_fmt(grad)}</text>",
            ]
        parts.append(
            f'<text x="{column_x[i]}" y="{height - 12}" text-anchor="middle" '
            f'font-weight="bold">{label}</text>'
        )
    cost_x = column_x[-1] + 150
    parts += [
        f'<line x1="{column_x[-1] + radius}" y1="175" x2="{cost_x - 48}" y2="175" stroke="#333" '
        'marker-end="url(#arrow)"/>',
        _tag(
            "rect", x=cost_x - 48, y=150, width=96, height=50, rx=6, fill="#fff4d6", stroke="#333"
        ),
        f'<text x="{cost_x}" y="171" text-anchor="middle">cost J</text>',
        f'<text x="{cost_x}" y="188" text-anchor="middle">{_fmt(t["J"])}</text>',
        f'<text x="{cost_x}" y="{height - 12}" text-anchor="middle" font-weight="bold">'
        f"{escape(repr(t.loss_fn))}</text>",
        f'<text x="12" y="22">Each neuron: its forward value (black) and the gradient dJ/dz '
        f"(red; dJ/dx for the inputs), sample {sample + 1}. Edges: weights, blue positive, "
        "red negative.</text>",
    ]
    width = cost_x + 70
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" {FONT} font-size="12">\n'
        "<title>The worked example's network, forward values and gradients, by handprop</title>\n"
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M 0 0 L 10 5 L 0 10 z" fill="#333"/></marker>'
        f'</defs>\n<rect width="{width}" height="{height}" fill="white"/>'
    )
    return "\n".join([head, *parts, "</svg>"]) + "\n"


# --- number grids: convolution and pooling -----------------------------------------------------

HIGHLIGHT = ("#fff0b3", "#d9e8ff", "#ffd9d2")  # yellow, blue, red fills for marked cells


def number_grid(values, x0, y0, *, title, marks=None, windows=None, cell=34, digits=False):
    """A matrix of numbers as cells; ``marks`` maps (row, column) to a fill colour, and
    ``windows=k`` outlines k x k blocks (pooling windows); ``digits``: 4 significant digits,
    as the derivation prints them (else integers, or 2 decimals). Returns the SVG parts and the
    grid's width and height (title above it)."""
    values = np.asarray(values)
    values = values.reshape(1, -1) if values.ndim == 1 else values  # a vector: one row
    rows, columns = values.shape
    parts = [_tag("text", title, x=x0 + columns * cell / 2, y=y0 - 8, text_anchor="middle")]
    for (r, c), value in np.ndenumerate(values):
        fill = (marks or {}).get((r, c), "white")
        parts.append(
            _tag(
                "rect",
                x=x0 + c * cell,
                y=y0 + r * cell,
                width=cell,
                height=cell,
                fill=fill,
                stroke="#999",
            )
        )
        if digits:
            text = _fmt(value)
        else:
            text = f"{value:g}" if float(value).is_integer() else f"{value:.2f}"
        parts.append(
            _tag(
                "text",
                text,
                x=x0 + (c + 0.5) * cell,
                y=y0 + (r + 0.5) * cell + 4,
                text_anchor="middle",
            )
        )
    size = (windows or 0) * cell
    for r, c in np.ndindex(rows // windows, columns // windows) if windows else ():
        parts.append(
            _tag(
                "rect",
                x=x0 + c * size,
                y=y0 + r * size,
                width=size,
                height=size,
                fill="none",
                stroke="#333",
                stroke_width=2,
            )
        )
    return parts, columns * cell, rows * cell


def _grids_svg(title: str, rows, caption_lines, *, gap=34, top=50) -> str:
    """Rows of (label between grids, grid arguments) laid out left to right, captions below."""
    parts, y, width = [], top, 0
    for row in rows:
        x, tallest = 16, 0
        for item in row:
            if isinstance(item, str):  # an operator or arrow between grids
                parts.append(
                    _tag("text", item, x=x + gap / 2, y=y + 44, text_anchor="middle", font_size=24)
                )
                x += gap
                continue
            values, kwargs = item
            grid_parts, w, h = number_grid(values, x, y, **kwargs)
            parts += grid_parts
            x, tallest = x + w, max(tallest, h)
        width, y = max(width, x + 16), y + tallest + 56
    for line in caption_lines:
        parts.append(_tag("text", line, x=16, y=y - 20))
        y += 18
    # (text is about 6.5 px a character at 12 px; the title at 14 px, bold, about 8)
    width = max(width, 16 + 8 * len(title), 32 + 6.5 * max(map(len, caption_lines)))
    width = math.ceil(width)
    height = y - 4
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" {FONT} font-size="12">\n<title>{escape(title)}</title>\n'
        f'<rect width="{width}" height="{height}" fill="white"/>\n'
        + _tag("text", title, x=16, y=22, font_weight="bold", font_size=14)
    )
    return "\n".join([head, *parts, "</svg>"]) + "\n"


def conv2d_figure() -> str:
    """A 3x3 convolution of a 5x5 image, forward and backward, with handprop's Conv2d: one
    output and the window it reads; dJ/dW; dJ/dx, where overlapping windows add up."""
    from handprop.layers import Conv2d

    conv = Conv2d(1, 1, 3, bias=False, dtype=np.float64)
    conv.weight.data[0, 0] = [[1, 0, -1], [2, 0, -2], [1, 0, -1]]
    x = np.array([[0, 0, 1, 2, 2]] * 5, dtype=np.float64)  # a vertical edge
    g = np.array([[1, 0, -1], [0, 2, 0], [1, 0, 1]], dtype=np.float64)
    y = conv(x[None, None])[0, 0]
    dx = conv.backward(g[None, None])[0, 0]
    dw = conv.weight.grad[0, 0]
    w = conv.weight.data[0, 0]
    # what the captions say, checked on handprop's numbers
    assert y[0, 1] == np.sum(x[0:3, 1:4] * w) and dx[0, 0] == g[0, 0] * w[0, 0]
    assert dx[2, 2] == sum(g[i, j] * w[2 - i, 2 - j] for i, j in np.ndindex(3, 3))
    assert np.array_equal(dw, sum(g[i, j] * x[i : i + 3, j : j + 3] for i, j in np.ndindex(3, 3)))
    yellow, blue, red = HIGHLIGHT
    window = {(r, c): yellow for r in range(3) for c in range(1, 4)}
    return _grids_svg(
        "Conv2d(1, 1, kernel_size=3): forward and backward, computed by handprop",
        [
            [
                (x, {"title": "x (5 x 5)", "marks": window}),
                "\u2217",  # the asterisk operator
                (
                    conv.weight.data[0, 0],
                    {"title": "W (3 x 3)", "marks": dict.fromkeys(np.ndindex(3, 3), yellow)},
                ),
                "=",
                (y, {"title": "y (3 x 3)", "marks": {(0, 1): yellow}}),
            ],
            [
                (g, {"title": "g = dJ/dy", "marks": {(0, 0): blue}}),
                "→",
                (dw, {"title": "dJ/dW", "marks": {}}),
                "",
                (dx, {"title": "dJ/dx", "marks": {(2, 2): red, (0, 0): blue}}),
            ],
        ],
        [
            f"Forward: y[0, 1] = {y[0, 1]:g} is the yellow window of x times W, summed "
            "(cross-correlation, as torch: the kernel is not flipped).",
            "dJ/dW = sum over the 9 windows of g[i, j] times window (i, j): each weight met "
            "one input in every window.",
            f"dJ/dx: x[0, 0] is in one window only (dJ/dx = g[0, 0] W[0, 0] = {dx[0, 0]:g}); "
            f"x[2, 2] is in all 9, and its {dx[2, 2]:g} is",
            "the sum of g[i, j] times the weight x[2, 2] met in window (i, j): overlapping "
            "windows add up (col2im).",
        ],
    )


def pooling_figure() -> str:
    """2x2 max and average pooling of a 4x4 input with handprop's layers: where each window's
    gradient goes (max: to the first maximum, ties included; average: a quarter to each)."""
    from handprop.layers import AvgPool2d, MaxPool2d

    x = np.array([[1, 3, 2, 0], [5, 2, 1, 4], [0, 6, 3, 3], [2, 1, 3, 1]], dtype=np.float64)
    g = np.array([[1, 2], [3, 4]], dtype=np.float64)
    maxpool, avgpool = MaxPool2d(2), AvgPool2d(2)
    y_max = maxpool(x[None, None])[0, 0]
    dx_max = maxpool.backward(g[None, None])[0, 0]
    y_avg = avgpool(x[None, None])[0, 0]
    dx_avg = avgpool.backward(g[None, None])[0, 0]
    yellow, blue, red = HIGHLIGHT
    chosen = {tuple(int(i) for i in rc): yellow for rc in np.argwhere(dx_max != 0)}
    assert (2, 2) in chosen and dx_max[2, 2] == g[1, 1]  # the first of the tied 3s, all of g
    assert np.array_equal(dx_avg, np.kron(g, np.ones((2, 2))) / 4)
    tie = {(2, 2): red, (2, 3): red, (3, 2): red}
    return _grids_svg(
        "MaxPool2d(2) and AvgPool2d(2): forward and backward, computed by handprop",
        [
            [
                (
                    x,
                    {
                        "title": "x (4 x 4)",
                        "marks": {**chosen, **tie, (2, 2): yellow},
                        "windows": 2,
                    },
                ),
                "→",
                (y_max, {"title": "max pool y"}),
                "",
                (g, {"title": "g = dJ/dy", "marks": dict.fromkeys(np.ndindex(2, 2), blue)}),
                "→",
                (dx_max, {"title": "max pool dJ/dx", "marks": chosen, "windows": 2}),
            ],
            [
                (x, {"title": "x (4 x 4)", "windows": 2}),
                "→",
                (y_avg, {"title": "average pool y"}),
                "",
                (g, {"title": "g = dJ/dy", "marks": dict.fromkeys(np.ndindex(2, 2), blue)}),
                "→",
                (dx_avg, {"title": "average pool dJ/dx", "windows": 2}),
            ],
        ],
        [
            "Max pooling: each window's gradient goes to the input it chose (yellow), all of it; "
            "the others get 0.",
            "The bottom-right window holds three 3s (a tie, red): as torch, handprop chooses the "
            "first in row-major order.",
            "Average pooling: every input of a window gets a quarter of the window's gradient.",
        ],
    )


def linear_figure() -> str:
    """The worked example's first layer, backward, with its own numbers: dJ/dW = G^T X summed
    over the batch, dJ/db = the column sums of G, dJ/dX = G W."""
    from handprop import trace, worked_example

    X, y = worked_example.data(np.float64)
    t = trace(worked_example.model(np.float64), worked_example.loss_fn(), X, y)
    x, g, w = (np.asarray(t[name]) for name in ("X", "dJ/dZ1", "W1"))
    dw, db, dx = (np.asarray(t[name]) for name in ("dJ/dW1", "dJ/db1", "dJ/dX"))
    assert np.allclose(dw, g.T @ x) and np.allclose(db, g.sum(0)) and np.allclose(dx, g @ w)
    # docs/layers/linear.md: "the third unit's gradients are 0: its ReLU was inactive for both"
    assert np.all(np.asarray(t["Z1"])[:, 2] < 0) and not dw[2].any() and db[2] == 0
    yellow, blue, red = HIGHLIGHT
    grid = {"digits": True, "cell": 64}
    return _grids_svg(
        "Linear(2, 3), the worked example's first layer: backward, computed by handprop",
        [
            [
                (
                    g.T,
                    {
                        "title": "G^T = (dJ/dZ1)^T (3 x 2)",
                        "marks": {(1, 0): blue, (1, 1): blue},
                        **grid,
                    },
                ),
                "@",
                (x, {"title": "X (2 x 2)", "marks": {(0, 0): yellow, (1, 0): yellow}, **grid}),
                "=",
                (dw, {"title": "dJ/dW1 (3 x 2)", "marks": {(1, 0): red}, **grid}),
            ],
            [
                (g, {"title": "G = dJ/dZ1 (2 x 3)", "marks": {(0, 1): blue, (1, 1): blue}, **grid}),
                "Σ",
                (db, {"title": "dJ/db1 (3,): the column sums", "marks": {(0, 1): red}, **grid}),
                "",
                (dx, {"title": "dJ/dX = G W1 (2 x 2)", **grid}),
            ],
        ],
        [
            f"dJ/dW1[1, 0] = {_fmt(dw[1, 0])} is row 1 of G^T (blue) times column 0 of X "
            "(yellow): g[0, 1] x[0, 0] + g[1, 1] x[1, 0],",
            "one term per sample: the weight gradient is each sample's outer product g_n x_n^T, "
            "summed over the batch.",
            f"dJ/db1[1] = {_fmt(db[1])} is the sum of G's column 1: b is added to every row, so "
            "its gradient sums over the rows.",
            "The batch has 2 samples, and the cost is their mean: G already carries the 1/2.",
        ],
    )


def dropout_figure() -> str:
    """Dropout(p=0.5) on a 3 x 4 batch, with handprop's own mask: the forward's mask and scale,
    and the backward's use of the very same mask."""
    from handprop.layers import Dropout

    dropout = Dropout(p=0.5, rng=1)
    z = np.arange(1.0, 13.0).reshape(3, 4)
    a = dropout(z)
    g = np.ones((3, 4))
    dz = dropout.backward(g)
    mask = np.asarray(dropout.mask)
    assert np.array_equal(a, z * mask * 2) and np.array_equal(dz, g * mask * 2)
    dropped = {tuple(int(i) for i in rc): "#e0e0e0" for rc in np.argwhere(~mask)}
    return _grids_svg(
        "Dropout(p=0.5) in training: forward and backward, computed by handprop",
        [
            [
                (z, {"title": "Z", "marks": dropped}),
                "→",
                (mask.astype(float), {"title": "mask M (1 = kept)", "marks": dropped}),
                "→",
                (a, {"title": "A = Z M / (1 - p)", "marks": dropped}),
            ],
            [
                (g, {"title": "dJ/dA"}),
                "→",
                (dz, {"title": "dJ/dZ = dJ/dA M / (1 - p)", "marks": dropped}),
            ],
        ],
        [
            "Grey: the elements this forward dropped; the kept ones are doubled, 1/(1 - p), so "
            "each element keeps its expected value.",
            "The backward uses the same mask: a dropped element received nothing, so it sends "
            "no gradient back.",
        ],
    )


def normalisation_figure(layer_norm: bool = False) -> str:
    """BatchNorm1d (or LayerNorm) of a 4 x 3 batch in training, with handprop's layer: each
    column (row) normalised, and a gradient on one output spreading over its whole column (row),
    summing to 0 and orthogonal to z_hat there."""
    from handprop.layers import BatchNorm1d, LayerNorm

    z = np.array([[1.0, 4.0, 2.0], [2.0, 0.0, 2.5], [6.0, 1.0, 3.0], [3.0, 3.0, 0.5]])
    layer = LayerNorm(3, dtype=np.float64) if layer_norm else BatchNorm1d(3, dtype=np.float64)
    z_hat = layer(z)  # weight 1 and bias 0: the output is z_hat itself
    g = np.zeros_like(z)
    g[0, 0] = 1.0
    dz = layer.backward(g)
    axis = 1 if layer_norm else 0
    sums, dots = dz.sum(axis=axis), (dz * z_hat).sum(axis=axis)
    # 0 up to rounding; the second only up to eps = 1e-5 (z_hat divides by sqrt(var + eps))
    assert np.all(np.abs(sums) < 1e-12) and np.all(np.abs(dots) < 1e-5)
    sums, dots = np.round(sums, 4) + 0.0, np.round(dots, 4) + 0.0  # (+ 0.0: no -0)
    if layer_norm:  # one per row: drawn as a column
        sums, dots = sums.reshape(-1, 1), dots.reshape(-1, 1)
    spread = np.zeros(z.shape, bool)
    spread[0 if layer_norm else slice(None), slice(None) if layer_norm else 0] = True
    assert np.array_equal(dz != 0, spread)  # one row (column) reached, all of it
    yellow, blue, _ = HIGHLIGHT
    group = "row" if layer_norm else "column"
    marks = {tuple(int(i) for i in rc): yellow for rc in np.argwhere(spread)}
    grid = {"digits": True, "cell": 58}
    name = "LayerNorm(3)" if layer_norm else "BatchNorm1d(3)"
    return _grids_svg(
        f"{name} in training: forward and backward, computed by handprop",
        [
            [
                (z, {"title": "z (4 samples x 3 features)", "marks": marks, **grid}),
                "→",
                (z_hat, {"title": f"z_hat: each {group} to mean 0, variance 1", **grid}),
            ],
            [
                (g, {"title": "g = dJ/dy (one element)", "marks": {(0, 0): blue}, **grid}),
                "→",
                (dz, {"title": "dJ/dz", "marks": marks, **grid}),
                "",
                (sums, {"title": f"{group} sums of dJ/dz", **grid}),
                "",
                (dots, {"title": f"{group} sums of dJ/dz * z_hat", **grid}),
            ],
        ],
        [
            f"A gradient on one output reaches its whole {group} (yellow): every z there moved "
            f"the {group}'s mean and variance.",
            f"In each {group}, dJ/dz sums to 0 (shifting the {group} changes no z_hat) and is "
            "orthogonal to z_hat (scaling it changes none either,",
            "exactly so but for the eps = 1e-5 added to the variance: 4 decimals shown).",
        ],
    )


def _fmt(value) -> str:
    """4 significant digits, as the derivation prints them."""
    from handprop.explain.derivation import fmt

    return escape(fmt(float(value)))


# --- recurrent networks: the unrolled network, the gradient through time, the LSTM cell --------


def _svg(width: int, height: int, title: str, parts: list[str]) -> str:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" {FONT} font-size="12">\n<title>{escape(title)}</title>\n'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M 0 0 L 10 5 L 0 10 z" fill="#333"/></marker>'
        '<marker id="back" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto"><path d="M 0 0 L 10 5 L 0 10 z" fill="{COLOURS[1]}"/>'
        f'</marker></defs>\n<rect width="{width}" height="{height}" fill="white"/>'
    )
    return "\n".join([head, *parts, "</svg>"]) + "\n"


def _arrow(x1, y1, x2, y2, *, back=False) -> str:
    if back:
        return _tag(
            "line",
            x1=float(x1),
            y1=float(y1),
            x2=float(x2),
            y2=float(y2),
            stroke=COLOURS[1],
            stroke_dasharray="5 3",
            marker_end="url(#back)",
        )
    return _tag(
        "line",
        x1=float(x1),
        y1=float(y1),
        x2=float(x2),
        y2=float(y2),
        stroke="#333",
        marker_end="url(#arrow)",
    )


def _gradient_through_time(kind: str, steps: int = 40, forget_bias: float | None = None):
    """|dJ/dh_t| at every step of handprop's RNN (tanh), LSTM or GRU when only the last step's
    output reaches the loss: each step's size relative to the last one's. ``forget_bias``:
    the LSTM's forget-gate biases set to it (the usual 1, to keep its gate open at first)."""
    from handprop import layers

    layer = getattr(layers, kind)(8, 32, dtype=np.float64, rng=0)
    if forget_bias is not None:
        layer.bias_ih_l0.data[32:64] = forget_bias
        layer.bias_hh_l0.data[32:64] = 0.0
    rng = np.random.default_rng(1)
    layer(rng.standard_normal((steps, 16, 8)))
    g = np.zeros((steps, 16, 32))
    g[-1] = rng.standard_normal((16, 32))
    layer.backward(g, (None, None) if kind == "LSTM" else None)
    norms = layer.grad_norms[0]
    return norms / norms[-1]


def unrolled_figure() -> str:
    """An RNN unrolled over 5 steps (the same cell, forward in black, backward in red), and the
    size of dJ/dh_t through 40 steps of handprop's RNN, LSTM and GRU (their ``grad_norms``),
    and of an LSTM whose forget gate starts open."""
    parts, steps, x0, gap = [], 5, 60, 112
    for t in range(steps):
        x = x0 + gap * t
        parts += [
            _tag(
                "rect", x=float(x), y=80.0, width=70, height=44, rx=6, fill="#eef3fb", stroke="#333"
            ),
            _tag("text", "cell", x=x + 35.0, y=99.0, text_anchor="middle"),
            _tag("text", f"t = {t + 1}", x=x + 35.0, y=114.0, text_anchor="middle", fill="#555"),
            _arrow(x + 35, 170, x + 35, 126),
            _tag("text", f"x{t + 1}", x=x + 35.0, y=184.0, text_anchor="middle"),
            _arrow(x + 35, 78, x + 35, 50),
            _tag("text", f"h{t + 1}", x=x + 35.0, y=44.0, text_anchor="middle"),
        ]
        if t:
            parts.append(_arrow(x - gap + 72, 95, x - 2, 95))
            parts.append(_arrow(x - 2, 112, x - gap + 72, 112, back=True))
    parts += [
        _arrow(14, 95, x0 - 2, 95),
        _tag("text", "h0", x=14.0, y=88.0),
        _tag("text", "forward: the same weights at every step", x=x0 + 0.0, y=218.0),
        _tag(
            "text",
            "backward (red): dJ/dh carried back, each step's share of dJ/dW added",
            x=x0 + 0.0,
            y=236.0,
            fill=COLOURS[1],
        ),
    ]
    runs = [(kind, _gradient_through_time(kind)) for kind in ("RNN", "LSTM", "GRU")]
    runs.append(("LSTM, forget bias 1", _gradient_through_time("LSTM", forget_bias=1.0)))
    body, (w, h) = chart(
        [(label, np.arange(1, 41), np.log10(ratio)) for label, ratio in runs],
        title="|dJ/dh_t| / |dJ/dh_40|, loss on step 40",
        xlabel="time step t",
        ylabel="log10 of the ratio",
        xlim=(1, 40),
        ylim=(-12, 1),
        width=400,
        height=260,
        legend="bottom",
    )
    parts.append(f'<g transform="translate(620 0)">\n{body}\n</g>')
    return _svg(
        620 + w, max(h, 250), "An RNN unrolled in time, and its gradient through time", parts
    )


def _lstm_numbers():
    """One step of handprop's LSTM cell with a hidden size of 1 (every value one number), and
    its backward for dJ/dh_t = 1, dJ/dc_t = 0.5, with ``lstm_step`` and
    ``lstm_step_backward``."""
    from handprop.layers import LSTMCell
    from handprop.layers.rnn import lstm_step, lstm_step_backward

    cell = LSTMCell(2, 1, dtype=np.float64, rng=3)
    x, h, c = np.array([[0.5, -1.0]]), np.array([[0.3]]), np.array([[0.8]])
    gx = x @ cell.weight_ih.data.T + cell.bias_ih.data
    (h_new, c_new), cache = lstm_step(gx, (h, c), cell.weight_hh.data, cell.bias_hh.data)
    dz, _, (dh, dc_prev) = lstm_step_backward(
        (np.ones((1, 1)), np.full((1, 1), 0.5)), cache, cell.weight_hh.data
    )
    _, gates, tanh_c = cache
    i, f, g, o = gates[0]
    dc = 0.5 + 1.0 * o * (1 - tanh_c[0, 0] ** 2)
    return {
        "c_prev": (c[0, 0], dc_prev[0, 0]),
        "f": (f, dz[0, 1]),
        "i": (i, dz[0, 0]),
        "g": (g, dz[0, 2]),
        "o": (o, dz[0, 3]),
        "fc": (f * c[0, 0], dc),
        "ig": (i * g, dc),
        "c_new": (c_new[0, 0], 0.5),
        "plus": (c_new[0, 0], dc),
        "tanh": (tanh_c[0, 0], o),
        "h_new": (h_new[0, 0], 1.0),
        "h_prev": (h[0, 0], dh[0, 0]),
    }


def lstm_cell_figure() -> str:
    """The LSTM cell as a diagram, every node with its value (black) and its gradient (red)
    for one step of handprop's LSTMCell (hidden size 1)."""
    v = _lstm_numbers()
    nodes = {  # name: (centre x, centre y, label, what the red number is the gradient of)
        "c_prev": (70, 60, "c(t-1)", "dJ/dc(t-1)"),
        "fc": (210, 60, "f * c(t-1)", "dJ/d(.)"),
        "plus": (430, 60, "+ : c(t)", "dJ/dc(t), all"),
        "c_new": (720, 60, "c(t)", "from t+1"),
        "ig": (380, 165, "i * g", "dJ/d(.)"),
        "tanh": (600, 150, "tanh c(t)", "dJ/d(.)"),
        "h_new": (720, 240, "h(t) = o tanh c", "dJ/dh(t)"),
        "f": (210, 300, "f = sig", "dJ/dz_f"),
        "i": (320, 300, "i = sig", "dJ/dz_i"),
        "g": (430, 300, "g = tanh", "dJ/dz_g"),
        "o": (580, 300, "o = sig", "dJ/dz_o"),
        "h_prev": (90, 390, "h(t-1)", "dJ/dh(t-1)"),
    }
    parts = [
        _tag("line", x1=90.0, y1=366.0, x2=90.0, y2=355.0, stroke="#333"),
        _tag("line", x1=90.0, y1=355.0, x2=580.0, y2=355.0, stroke="#333"),
        _tag("text", "[h(t-1), x(t)] into every gate", x=150.0, y=372.0, fill="#555"),
    ]
    edges = [
        ("c_prev", "fc"),
        ("fc", "plus"),
        ("plus", "c_new"),
        ("f", "fc"),
        ("i", "ig"),
        ("g", "ig"),
        ("ig", "plus"),
        ("tanh", "h_new"),
        ("o", "h_new"),
    ]
    for a, b in edges:
        (x1, y1, *_), (x2, y2, *_) = nodes[a], nodes[b]
        dx, dy = x2 - x1, y2 - y1
        scale = min(52 / abs(dx) if dx else 1e9, 28 / abs(dy) if dy else 1e9)  # the box's edge
        parts.append(_arrow(x1 + dx * scale, y1 + dy * scale, x2 - dx * scale, y2 - dy * scale))
    parts.append(_arrow(600, 60, 600, 126))  # c(t) into the tanh
    for gate in ("f", "i", "g", "o"):
        x = nodes[gate][0]
        parts.append(_arrow(x, 355, x, 324))
    for name, (x, y, label, grad) in nodes.items():
        value, gradient = v[name]
        parts += [
            _tag(
                "rect",
                x=x - 56.0,
                y=y - 24.0,
                width=112,
                height=48,
                rx=6,
                fill="#f6f6f6",
                stroke="#333",
            ),
            _tag("text", label, x=float(x), y=y - 8.0, text_anchor="middle", font_weight="bold"),
            _tag("text", _fmt(value), x=float(x), y=y + 6.0, text_anchor="middle"),
            _tag(
                "text",
                f"{grad} {_fmt(gradient)}",
                x=float(x),
                y=y + 19.0,
                text_anchor="middle",
                fill=COLOURS[1],
                font_size=10,
            ),
        ]
    parts += [
        _tag(
            "text",
            "One step of an LSTM cell, hidden size 1: each value (black) and its "
            "gradient (red), for dJ/dh(t) = 1 and dJ/dc(t) = 0.5 from the step after.",
            x=12.0,
            y=440.0,
        ),
        _tag(
            "text",
            "dJ/dc(t), all = 0.5 + dJ/dh(t) * o * (1 - tanh(c)^2): the cell state's two "
            "paths add; dJ/dc(t-1) = that * f: the forget gate scales the path back.",
            x=12.0,
            y=458.0,
        ),
    ]
    return _svg(800, 472, "The LSTM cell, one step forward and backward, by handprop", parts)


def attention_figure() -> str:
    """Causal self-attention by handprop's MultiheadAttention on 6 tokens: the weights of one
    head, and dJ/d(scores) for a cost on the last token, the gradient through the softmax."""
    from handprop.explain.heatmap import heat_map
    from handprop.layers import MultiheadAttention

    mha = MultiheadAttention(8, 2, batch_first=True, dtype=np.float64, rng=4)
    x = np.random.default_rng(5).standard_normal((1, 6, 8))
    causal = np.triu(np.ones((6, 6), bool), k=1)
    out, weights = mha(x, x, x, attn_mask=causal, average_attn_weights=False)
    g = np.zeros_like(out)
    g[0, -1] = 1.0  # the cost reads the last token's output
    mha.backward(g, None)
    left = heat_map(weights[0, 0], "weights P, head 0 (row: query)", cell=30)
    right = heat_map(mha.score_grads[0, 0], "dJ/d(scores), head 0", signed=True, cell=30)
    width = 560
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="250" '
        f'viewBox="0 0 {width} 250" {FONT} font-size="12">\n'
        "<title>Causal self-attention: its weights and the gradient through its softmax, "
        "by handprop</title>\n"
        f'<rect width="{width}" height="250" fill="white"/>\n'
        f'<svg x="10" y="10">{left}</svg>\n<svg x="270" y="10">{right}</svg>\n'
        '<text x="10" y="242">The cost reads only the last token: only its row of scores gets '
        "gradient (red negative, blue positive); masked keys get none.</text>\n</svg>\n"
    )


# --- everything -------------------------------------------------------------------------------


def pictures() -> dict[str, str]:
    """Each picture's file name under docs/img/, and its SVG text."""
    from handprop import trace, worked_example
    from handprop.layers import GELU, LeakyReLU, ReLU, Sigmoid, Tanh

    X, y = worked_example.data()
    t = trace(worked_example.model(), worked_example.loss_fn(), X, y)
    return {
        "worked_example_network.svg": network_figure(t),
        "worked_example_graph.svg": t.to_svg(),
        "relu.svg": activation_figure("ReLU", ReLU()),
        "leaky_relu.svg": activation_figure(
            "LeakyReLU", LeakyReLU(negative_slope=0.1), note=", slope 0.1"
        ),
        "sigmoid.svg": activation_figure("Sigmoid", Sigmoid()),
        "tanh.svg": activation_figure("Tanh", Tanh()),
        "gelu.svg": activation_figure("GELU", GELU()),
        "softmax.svg": softmax_figure(),
        "log_softmax.svg": softmax_figure(log=True),
        "train_digits.svg": training_figure(run_example("train_digits"), "digits, 64-64-10 MLP"),
        "train_breast_cancer.svg": training_figure(
            run_example("train_breast_cancer"), "breast cancer, 30-16-1 MLP"
        ),
        "regularisation.svg": regularisation_figure(),
        "compare_optimizers.svg": optimizers_figure(),
        "train_cnn.svg": cnn_figure(),
        "init_tanh.svg": init_figure("tanh"),
        "init_relu.svg": init_figure("relu"),
        **loss_figures(),
        "linear.svg": linear_figure(),
        "dropout.svg": dropout_figure(),
        "batch_norm.svg": normalisation_figure(),
        "layer_norm.svg": normalisation_figure(layer_norm=True),
        "conv2d.svg": conv2d_figure(),
        "pooling.svg": pooling_figure(),
        "rnn_unrolled.svg": unrolled_figure(),
        "lstm_cell.svg": lstm_cell_figure(),
        "attention.svg": attention_figure(),
    }


def worked_example_page() -> str:
    """docs/worked_example.md: what `handprop walkthrough --markdown FILE` writes, with the
    network and the computational graph drawn at its top."""
    from handprop import trace, worked_example
    from handprop.cli import MARKDOWN_HEADER

    X, y = worked_example.data()
    t = trace(worked_example.model(), worked_example.loss_fn(), X, y)
    pictures = (
        "![The worked example's network: each neuron's value and gradient]"
        "(img/worked_example_network.svg)\n\n"
        "The whole computation as a graph, every node with its value and its gradient "
        "(`handprop walkthrough --svg FILE` draws it; scroll sideways):\n\n"
        '<div style="overflow-x: auto"><img src="../img/worked_example_graph.svg" '
        'alt="The computational graph of the worked example" style="max-width: none"></div>\n\n'
    )
    return (
        "<!-- Generated by tools/make_pictures.py from handprop's own computation; "
        "tests/test_pictures.py fails when it is stale. -->\n\n"
        + MARKDOWN_HEADER
        + pictures
        + t.to_markdown()
    )


def main() -> None:
    (ROOT / "docs" / "worked_example.md").write_text(worked_example_page(), encoding="utf-8")
    print("wrote docs/worked_example.md")
    IMG.mkdir(parents=True, exist_ok=True)
    for name, svg in pictures().items():
        (IMG / name).write_text(svg, encoding="utf-8")
        print(f"wrote docs/img/{name}")


if __name__ == "__main__":
    main()
