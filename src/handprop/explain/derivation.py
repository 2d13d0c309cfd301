"""A trace written out as a derivation: Markdown with LaTeX, in the worked example's order.

Each step gives the chain-rule formula, the shapes, and the numbers from the computation.
Where the sizes are small, each backward step is also shown in its second form: the full
Jacobian matrix of the step, multiplied by the incoming gradient, agreeing with the
vector-Jacobian product the code computes (without ever forming that matrix).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from ..grad_mode import enable_grad
from ..layers import (
    BatchNorm1d,
    LayerNorm,
    MaxPool2d,
)

__all__ = ["fmt", "to_markdown"]


def fmt(value: float, digits: int = 4) -> str:
    """A number to ``digits`` significant digits, without trailing zeros: 4, -7.8, 0.09112,
    0.0004386 (fixed decimals would say 0.0004), -0 -> 0; very small or large ones as
    ``1.2e-12``.

    Examples:
        >>> [fmt(v) for v in (4.0, -7.8, 0.091122949, 0.000438568, -0.0, 1.2e-12, 15.999999)]
        ['4', '-7.8', '0.09112', '0.0004386', '0', '1.2e-12', '16']
    """
    v = float(value)
    if v == 0 or not np.isfinite(v):
        return "0" if v == 0 else str(v)
    # .g: fixed notation from 1e-4 up to 10**digits, scientific outside (1.2e-05 -> 1.2e-5)
    mantissa, _, exponent = f"{v:.{digits}g}".partition("e")
    return mantissa + (f"e{int(exponent)}" if exponent else "")


def _latex_number(value: float) -> str:
    mantissa, _, exponent = fmt(value).partition("e")
    return rf"{mantissa} \times 10^{{{exponent}}}" if exponent else mantissa


#: Arrays with more elements than this are summarised (shape and range), not written out.
LATEX_LIMIT = 64


def latex(a: Any) -> str:
    """A scalar, vector (one row, as the worked example writes biases) or matrix in LaTeX; a
    large array (more than LATEX_LIMIT elements) as its shape, smallest, largest and mean."""
    a = np.asarray(a)
    if a.ndim == 0:
        return _latex_number(a)
    if a.size > LATEX_LIMIT:
        a64 = a.astype(np.float64)
        return (
            rf"\left[\text{{{' x '.join(map(str, a.shape))}: from }} {_latex_number(a64.min())}"
            rf" \text{{ to }} {_latex_number(a64.max())}\text{{, mean }} "
            rf"{_latex_number(a64.mean())}\right]"
        )
    rows = a.reshape(1, -1) if a.ndim == 1 else a.reshape(a.shape[0], -1)
    body = r" \\ ".join(" & ".join(_latex_number(v) for v in row) for row in rows)
    return rf"\begin{{bmatrix}} {body} \end{{bmatrix}}"


def _shape(a: Any) -> str:
    return str(tuple(np.shape(a)))


def formulas(module: Any) -> tuple[str, str]:
    """LaTeX of an activation's forward and of its derivative, ``[l]`` for the layer number:
    the layer's own ``latex`` (written beside its forward and backward); for a layer of one's
    own, its name."""
    if _known(module):
        return module.latex
    name = r"\operatorname{" + type(module).__name__.replace("_", r"\_") + "}"
    return rf"{name}(Z^{{[l]}})", rf"{name}'(Z^{{[l]}})"  # a layer of one's own


def _known(module: Any) -> bool:
    """Whether ``module``'s class states its own formulas (``latex``): a learner's subclass
    of ReLU may differ from ReLU, so it is differentiated by its own backward."""
    return "latex" in vars(type(module))


def _activation_jacobian(module: Any, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """d vec(A) / d vec(Z), rows and columns in row-major order: from the layer's own
    ``jacobian`` (of a row: softmax) or ``derivative`` (elementwise: the diagonal), else from
    its backward."""
    z64, a64 = z.astype(np.float64), a.astype(np.float64)
    if not _known(module):
        return _jacobian_from_backward(module, z64)
    if hasattr(module, "jacobian"):  # row by row: a block per row
        n, k = a.shape
        jac = np.zeros((n * k, n * k))
        for i, row in enumerate(a64):
            jac[i * k : (i + 1) * k, i * k : (i + 1) * k] = module.jacobian(row)
        return jac
    return np.diag(np.asarray(module.derivative(z64, a64), dtype=np.float64).ravel())


def _jacobian_from_backward(module: Any, z64: np.ndarray) -> np.ndarray:
    """A layer of one's own: its Jacobian row by row from its own backward, in float64 on a
    copy (row i = backward(e_i), the gradient of output element i)."""
    clone = copy.deepcopy(module)
    for p in clone.parameters():
        p.data = p.data.astype(np.float64)
    with enable_grad():
        a = np.asarray(clone(z64))
    rows = []
    for i in range(a.size):
        unit = np.zeros(a.size)
        unit[i] = 1.0
        rows.append(np.asarray(clone.backward(unit.reshape(a.shape), retain_graph=True)).ravel())
    return np.array(rows).reshape(a.size, z64.size)


def _jacobian_block(
    title: str, jac: np.ndarray, upstream: np.ndarray, code: np.ndarray, what: str
) -> list[str]:
    product = upstream.astype(np.float64).ravel() @ jac
    diff = float(np.max(np.abs(product - code.astype(np.float64).ravel()), initial=0.0))
    # The code's float32 (or float64) result differs from this float64 product in the last
    # bits, which depend on the machine's BLAS: say so, and print a number only beyond that.
    scale = max(1.0, float(np.max(np.abs(product), initial=0.0)))
    if diff <= 16 * np.finfo(code.dtype).eps * scale:
        agreement = f"up to {code.dtype} rounding"
    else:
        agreement = f"max difference {diff:.1e}"
    return [
        f"*Jacobian view.* {title}, a {jac.shape[0]} x {jac.shape[1]} matrix:",
        "",
        f"$$ {latex(jac)} $$",
        "",
        f"and $\\operatorname{{vec}}({what})^\\top$ = incoming gradient (as a row) times it "
        f"$= {latex(product)}$, the same as the code's result "
        f"({agreement}).",
        "",
    ]


def _loss_lines(loss: Any, last: str, t: Any) -> tuple[list[str], str]:
    """The loss formula, and the formula of dJ/d(last output)."""
    # what the mean divides by: the number of elements (for CrossEntropyLoss with class indices,
    # the summed weights of the target classes)
    m = fmt(loss._mean_divisor(t[f"A{t.layers[-1].number}"], t["Y"]))
    scale = {"mean": rf"\frac{{1}}{{{m}}}", "sum": "", "none": ""}[loss.reduction]
    formula, grad = loss.latex(last, scale)  # written beside the loss's own backward
    reduce = {
        "mean": rf"J = \frac{{1}}{{{m}}} \sum L",
        "sum": r"J = \sum L",
        "none": r"J = L \text{ (no reduction; gradients are of } \sum L)",
    }[loss.reduction]
    lines = [f"$${formula}$$", "", f"$${reduce}$$", ""]
    options = [
        name
        for name in ("weight", "pos_weight", "label_smoothing")
        if getattr(loss, name, None) is not None and getattr(loss, name, None) != 0.0
    ]
    if options:
        lines += [
            f"The formulas are written without the loss's {', '.join(options)}; the numbers "
            "below are computed with them (see the loss's own page for the full form).",
            "",
        ]
    return lines, grad


def to_markdown(t: Any, jacobian_limit: int = 16) -> str:
    """The derivation of trace ``t`` (see the module docstring): one section after another."""
    last = t.layers[-1].number
    loss_lines, loss_grad = _loss_lines(t.loss_fn, f"A^{{[{last}]}}", t)
    out = _network_section(t) + _forward_section(t)
    out += ["## Loss and cost", "", *loss_lines]
    out += [f"$$L = {latex(t['L'])} \\qquad J = {latex(t['J'])}$$", ""]
    out += _Backward(t, jacobian_limit).section(loss_grad)
    return "\n".join(out)


def _network_section(t: Any) -> list[str]:
    """The network, the data and the parameters."""
    arrow = " → ".join(repr(m) for m in t.model)
    out = [
        "# Backpropagation, step by step",
        "",
        f"Network: {arrow}; loss: `{t.loss_fn!r}`; dtype {t['X'].dtype}. Samples are rows.",
        "",
        f"$$X = {latex(t['X'])} \\qquad Y = {latex(t['Y'])}$$",
        "",
        "## Parameters",
        "",
    ]
    for layer in t.layers:
        n = layer.number
        line = f"$$W^{{[{n}]}} = {latex(t[f'W{n}'])}"
        if f"b{n}" in t:
            line += f" \\qquad \\vec b^{{[{n}]}} = {latex(t[f'b{n}'])}"
        for name, tex in (("gamma", r"\vec\gamma"), ("beta", r"\vec\beta")):
            if f"{name}{n}" in t:
                line += f" \\qquad {tex}^{{[{n}]}} = {latex(t[f'{name}{n}'])}"
        out += [line + "$$", ""]
    return out


def _forward_section(t: Any) -> list[str]:
    """Each layer's Z = A W^T + b with its shapes, its activation, and any kink hit exactly."""
    out = ["## Forward", ""]
    for layer in t.layers:
        if layer.is_conv:
            out += _conv_forward(t, layer)
            continue
        n, prev = layer.number, _tex(t.input_of(layer))
        prev_value = t[t.input_of(layer)]
        bias = f" + \\vec b^{{[{n}]}}" if f"b{n}" in t else ""
        out += [
            f"### Layer {n}",
            "",
            f"$$Z^{{[{n}]}} = {prev} \\, W^{{[{n}]\\top}}{bias} = {latex(t[f'Z{n}'])}$$",
            "",
            f"Shapes: {_shape(prev_value)} times {_shape(t[f'W{n}'].T)}"
            + (f" plus {_shape(t[f'b{n}'])} broadcast over the rows" if bias else "")
            + f" gives {_shape(t[f'Z{n}'])}.",
            "",
        ]
        out += _after_the_layer(t, layer)
    return out


def _after_the_layer(t: Any, layer: Any) -> list[str]:
    """The normalisation, activation, pooling and Flatten after a layer's Linear or Conv2d."""
    out = []
    if layer.norm is not None:
        out += _norm_forward(t, layer)
    if layer.activation is not None:
        out += _activation_forward(t, layer)
    if layer.pool is not None:
        out += _pool_forward(t, layer)
    if layer.flatten is not None:
        n, before = layer.number, ("P" if layer.pool is not None else "A")
        out += [
            f"$$F^{{[{n}]}} = \\operatorname{{flatten}}({before}^{{[{n}]}}) = {latex(t[f'F{n}'])}$$",
            "",
            f"Shape {_shape(t[f'{before}{n}'])} becomes {_shape(t[f'F{n}'])}; no number changes.",
            "",
        ]
    return out


def _conv_forward(t: Any, layer: Any) -> list[str]:
    """A Conv2d layer: the cross-correlation, its arguments and shapes, then what follows."""
    n, conv, prev = layer.number, layer.linear, t.input_of(layer)
    bias = " + b_o" if f"b{n}" in t else ""
    return [
        f"### Layer {n}: {conv!r}",
        "",
        f"$$Z^{{[{n}]}}_{{n o i j}} = \\sum_{{c, a, e}} W^{{[{n}]}}_{{o c a e}}\\, "
        f"{_tex(prev)}_{{n,\\, c,\\, i s + a d,\\, j s + e d}}{bias} = {latex(t[f'Z{n}'])}$$",
        "",
        f"A cross-correlation (stride s = {conv.stride}, dilation d = {conv.dilation}, the "
        f"input zero-padded by {conv._pads}; c runs over the {conv.weight.shape[1]} input "
        f"channels of the filter's group). Shapes: {_shape(t[prev])} with filters "
        f"{_shape(t[f'W{n}'])} gives {_shape(t[f'Z{n}'])}. The code copies every window "
        "into a column (im2col) and does one matrix product.",
        "",
        *_after_the_layer(t, layer),
    ]


def _pool_forward(t: Any, layer: Any) -> list[str]:
    n, pool = layer.number, layer.pool
    kind = "max" if isinstance(pool, MaxPool2d) else "mean"
    return [
        f"$$P^{{[{n}]}}_{{n c i j}} = \\{kind}_{{\\text{{window }} (i, j)}} A^{{[{n}]}}_{{n c \\cdot \\cdot}} "
        f"= {latex(t[f'P{n}'])}$$",
        "",
        f"{pool!r}: shape {_shape(t[f'A{n}'])} becomes {_shape(t[f'P{n}'])}.",
        "",
    ]


def _norm_over(layer: Any) -> str:
    """Where a normalisation takes its mean and variance, in words."""
    if isinstance(layer.norm, LayerNorm):
        return "over each sample's features (each row)"
    if layer.is_conv and (layer.norm.training or not layer.norm.track_running_stats):
        return "over the batch and every position, per channel (the biased variance)"
    if layer.norm.training or not layer.norm.track_running_stats:
        return "over the batch, per feature (each column; the batch's biased variance)"
    return "the running estimates of training (evaluation mode: constants here)"


def _norm_forward(t: Any, layer: Any) -> list[str]:
    n = layer.number
    gamma = f"\\vec\\gamma^{{[{n}]}} \\odot " if f"gamma{n}" in t else ""
    beta = f" + \\vec\\beta^{{[{n}]}}" if f"beta{n}" in t else ""
    return [
        f"$$N^{{[{n}]}} = {gamma}\\hat Z^{{[{n}]}}{beta}, \\qquad \\hat Z^{{[{n}]}} = "
        f"\\frac{{Z^{{[{n}]}} - \\mu}}{{\\sqrt{{\\sigma^2 + \\epsilon}}}} \\qquad = {latex(t[f'N{n}'])}$$",
        "",
        f"{layer.norm!r}: $\\mu$ and $\\sigma^2$ are the mean and variance {_norm_over(layer)}.",
        "",
    ]


def _activation_forward(t: Any, layer: Any) -> list[str]:
    n, source = layer.number, layer.activation_input
    forward, _ = formulas(layer.activation)
    forward = forward.replace("Z^{[l]}", f"{source[0]}^{{[l]}}").replace("[l]", f"[{n}]")
    out = [f"$$A^{{[{n}]}} = {forward} = {latex(t[f'A{n}'])}$$", ""]
    kinks = np.argwhere(t[source] == 0) if layer.activation.kinks_at else []
    for cell in kinks:
        where = ", ".join(map(str, cell))
        out += [
            f"Note: ${source[0]}^{{[{n}]}}_{{{where}}} = 0$ exactly, where {layer.activation!r} has "
            "a kink and no derivative. handprop, like torch, takes the derivative there "
            "to be 0 (the left one); a finite-difference check straddling it sees the "
            "average of the two slopes.",
            "",
        ]
    return out


class _Backward:
    """The backward section, built step by step from the last layer to the input; ``step``
    numbers the steps as they are written."""

    def __init__(self, t: Any, jacobian_limit: int) -> None:
        self.t, self.limit = t, jacobian_limit
        self.out: list[str] = []
        self.step = 0

    def section(self, loss_grad: str) -> list[str]:
        self.out += [
            "## Backward",
            "",
            "Gradients of the cost $J$, what torch stores in `.grad`. Where they differ, the "
            "per-sample gradients $\\partial L / \\partial \\cdot$ (of $\\sum L$: each "
            "sample's loss differentiated on its own, as many texts do) are shown next to them.",
            "",
        ]
        layers = self.t.layers
        for layer in reversed(layers):
            n = layer.number
            if n == layers[-1].number:
                self.from_the_loss(n, loss_grad)
            self.through_flatten_and_pool(layer)
            if layer.activation is not None:
                self.through_the_activation(layer)
            if layer.norm is not None:
                self.through_the_norm(layer)
            if layer.is_conv:
                self.through_the_convolution(layer)
                continue
            self.weight_and_bias(layer)
            if n > 1:
                self.back_through_the_layer(n)
        self.to_the_input()
        return self.out

    def through_flatten_and_pool(self, layer: Any) -> None:
        """dJ/dP back through a Flatten (a reshape) and dJ/dA back through a pooling layer."""
        t, n = self.t, layer.number
        if layer.flatten is not None:
            before = "P" if layer.pool is not None else "A"
            self.add_step(
                f"$\\partial J / \\partial {before}^{{[{n}]}}$, through Flatten",
                f"\\frac{{\\partial J}}{{\\partial {before}^{{[{n}]}}}} = "
                f"\\operatorname{{reshape}}\\left(\\frac{{\\partial J}}{{\\partial F^{{[{n}]}}}}\\right)",
                f"The same numbers in the input's shape, {_shape(t[f'{before}{n}'])}.",
                f"{before}{n}",
            )
        if layer.pool is not None:
            if isinstance(layer.pool, MaxPool2d):
                formula = (
                    f"\\frac{{\\partial J}}{{\\partial A^{{[{n}]}}_{{nchw}}}} = "
                    f"\\sum_{{(i, j) \\text{{ that chose }} (h, w)}} "
                    f"\\frac{{\\partial J}}{{\\partial P^{{[{n}]}}_{{ncij}}}}"
                )
                how = (
                    "Each window's gradient goes to the input it chose (the first maximum), "
                    "the others get 0; overlapping windows add up."
                )
            else:
                formula = (
                    f"\\frac{{\\partial J}}{{\\partial A^{{[{n}]}}_{{nchw}}}} = "
                    f"\\sum_{{(i, j) \\ni (h, w)}} \\frac{{1}}{{D_{{ij}}}} "
                    f"\\frac{{\\partial J}}{{\\partial P^{{[{n}]}}_{{ncij}}}}"
                )
                how = "Each input of a window gets the window's gradient over its divisor."
            self.add_step(
                f"$\\partial J / \\partial A^{{[{n}]}}$, through {layer.pool!r}",
                formula,
                f"{how} Shape {_shape(t[f'A{n}'])}.",
                f"A{n}",
            )

    def through_the_convolution(self, layer: Any) -> None:
        """dJ/dW and dJ/db of a Conv2d, then dJ/d(its input)."""
        t, n, prev = self.t, layer.number, self.t.input_of(layer)
        dz = f"\\frac{{\\partial J}}{{\\partial Z^{{[{n}]}}_{{noij}}}}"
        self.step += 1
        self.out += [
            f"### {self.step}. $\\partial J / \\partial W^{{[{n}]}}$ and $\\partial J / \\partial \\vec b^{{[{n}]}}$",
            "",
            f"$$\\frac{{\\partial J}}{{\\partial W^{{[{n}]}}_{{ocae}}}} = \\sum_{{n, i, j}} {dz}\\, "
            f"{_tex(prev)}_{{n,\\, c,\\, i s + a d,\\, j s + e d}} = {latex(t[f'dJ/dW{n}'])}$$",
            "",
            f"Each weight meets every window: its gradient sums, over the batch and all "
            f"{t[f'Z{n}'].shape[2]} x {t[f'Z{n}'].shape[3]} output positions, the input under "
            f"it times the output's gradient. Shape {_shape(t[f'W{n}'])}, the filters' shape.",
            "",
        ]
        if f"b{n}" in t:
            self.out += [
                f"$$\\frac{{\\partial J}}{{\\partial b^{{[{n}]}}_o}} = \\sum_{{n, i, j}} {dz} "
                f"= {latex(t[f'dJ/db{n}'])}$$",
                "",
            ]
        name = prev if n > 1 else "X"
        self.add_step(
            f"$\\partial J / \\partial {_tex(name)}$, back through layer {n}",
            f"\\frac{{\\partial J}}{{\\partial {_tex(name)}_{{nchw}}}} = \\sum_{{o,\\, (i, j, a, e):\\; "
            f"i s + a d = h,\\; j s + e d = w}} {dz}\\, W^{{[{n}]}}_{{ocae}}",
            "Every window that read an input sends it its gradient times the weight it met "
            "(col2im: overlapping windows add up, the padding's share is dropped). Shape "
            f"{_shape(t[name])}.",
            name,
        )

    def add_step(self, title: str, formula: str, shape_text: str, name: str) -> None:
        """A numbered step: its formula, its shapes, dJ/d(name) and, where it differs, the
        per-sample dL/d(name)."""
        t = self.t
        self.step += 1
        self.out += [f"### {self.step}. {title}", "", f"$${formula}$$", "", shape_text, ""]
        value = f"$$\\frac{{\\partial J}}{{\\partial {_tex(name)}}} = {latex(t['dJ/d' + name])}$$"
        self.out += [value, ""]
        per_sample = f"dL/d{name}"
        if per_sample in t and not np.array_equal(t[per_sample], t["dJ/d" + name]):
            self.out += [
                f"Per sample ($\\partial L / \\partial {_tex(name)}$): ${latex(t[per_sample])}$",
                "",
            ]

    def from_the_loss(self, n: int, loss_grad: str) -> None:
        self.add_step(
            f"$\\partial J / \\partial A^{{[{n}]}}$, from the loss",
            f"\\frac{{\\partial J}}{{\\partial A^{{[{n}]}}}} = {loss_grad}",
            f"Shape {_shape(self.t[f'A{n}'])}, the shape of $A^{{[{n}]}}$.",
            f"A{n}",
        )

    def through_the_activation(self, layer: Any) -> None:
        t, n, source = self.t, layer.number, layer.activation_input
        s = source[0]  # Z, or N after a normalisation
        _, derivative = formulas(layer.activation)
        derivative = derivative.replace("Z^{[l]}", f"{s}^{{[l]}}").replace("[l]", f"[{n}]")
        row_wise = getattr(layer.activation, "latex_rows", None)
        product = f"\\odot {derivative}"
        if not _known(layer.activation):  # a layer of one's own: not assumed elementwise
            row_wise = f"By `{type(layer.activation).__name__}.backward` (its Jacobian below)"
            product = f"\\text{{ through }} {derivative}"
        self.add_step(
            f"$\\partial J / \\partial {s}^{{[{n}]}}$, through {layer.activation!r}",
            f"\\frac{{\\partial J}}{{\\partial {s}^{{[{n}]}}}} = \\frac{{\\partial J}}{{\\partial A^{{[{n}]}}}} "
            f"{product}",
            f"{row_wise or 'Elementwise'}, shape {_shape(t[source])}.",
            source,
        )
        if t[source].size <= self.limit:
            jac = _activation_jacobian(layer.activation, t[source], t[f"A{n}"])
            self.out += _jacobian_block(
                f"$\\partial \\operatorname{{vec}} A^{{[{n}]}} / \\partial \\operatorname{{vec}} {s}^{{[{n}]}}$",
                jac,
                t[f"dJ/dA{n}"],
                t[f"dJ/d{source}"],
                f"\\partial J / \\partial {s}^{{[{n}]}}",
            )

    def through_the_norm(self, layer: Any) -> None:
        """dJ/dZ through a normalisation (the compact formula), and dJ/dgamma, dJ/dbeta."""
        t, n = self.t, layer.number
        upstream = f"\\frac{{\\partial J}}{{\\partial N^{{[{n}]}}}}"
        g_hat = f"G = {upstream}" + (f" \\odot \\vec\\gamma^{{[{n}]}}" if f"gamma{n}" in t else "")
        constant = isinstance(layer.norm, BatchNorm1d) and not (
            layer.norm.training or not layer.norm.track_running_stats
        )
        if constant:
            formula = f"\\frac{{\\partial J}}{{\\partial Z^{{[{n}]}}}} = \\frac{{G}}{{\\sqrt{{\\sigma^2 + \\epsilon}}}}, \\quad {g_hat}"
            how = "The statistics are constants in evaluation mode: a plain scaling."
        else:
            formula = (
                f"\\frac{{\\partial J}}{{\\partial Z^{{[{n}]}}}} = \\frac{{1}}{{m \\sqrt{{\\sigma^2 + \\epsilon}}}}"
                f"\\left(m\\, G - \\textstyle\\sum G - \\hat Z^{{[{n}]}} \\odot \\sum (G \\odot \\hat Z^{{[{n}]}})\\right), \\quad {g_hat}"
            )
            how = (
                f"The sums run {_norm_over(layer).split(' (')[0]}, m values each: the mean and the "
                "variance depend on every $Z$ they are taken over, which gives the second and "
                "third terms (derived on the normalisation's own page)."
            )
        self.add_step(
            f"$\\partial J / \\partial Z^{{[{n}]}}$, through {layer.norm!r}",
            formula,
            f"{how} Shape {_shape(t[f'Z{n}'])}.",
            f"Z{n}",
        )
        for name, tex in (("gamma", "\\vec\\gamma"), ("beta", "\\vec\\beta")):
            if f"dJ/d{name}{n}" in t:
                grad = f"\\sum {upstream}" + (" \\odot \\hat Z" if name == "gamma" else "")
                value = latex(t[f"dJ/d{name}{n}"])
                self.out += [
                    f"$$\\frac{{\\partial J}}{{\\partial {tex}^{{[{n}]}}}} = {grad} = {value}$$",
                    "",
                ]

    def weight_and_bias(self, layer: Any) -> None:
        t, n = self.t, layer.number
        prev = t.input_of(layer)
        prev_tex = _tex(prev)
        dz = f"\\frac{{\\partial J}}{{\\partial Z^{{[{n}]}}}}"
        self.step += 1
        w_formula = f"\\frac{{\\partial J}}{{\\partial W^{{[{n}]}}}} = {dz}^\\top {prev_tex} = {latex(t[f'dJ/dW{n}'])}"
        self.out += [
            f"### {self.step}. $\\partial J / \\partial W^{{[{n}]}}$ and $\\partial J / \\partial \\vec b^{{[{n}]}}$",
            "",
            f"$${w_formula}$$",
            "",
            f"Shapes: {_shape(t[f'dJ/dZ{n}'].T)} times {_shape(t[prev])} gives "
            f"{_shape(t[f'W{n}'])}, the shape of $W^{{[{n}]}}$: each sample's outer product, "
            "summed over the batch (the sum already carries the cost's 1/m).",
            "",
        ]
        if f"b{n}" in t:
            self.out += [
                f"$$\\frac{{\\partial J}}{{\\partial \\vec b^{{[{n}]}}}} = \\sum_{{\\text{{rows}}}} {dz} "
                f"= {latex(t[f'dJ/db{n}'])}$$",
                "",
            ]
        if t[f"Z{n}"].size * t[f"W{n}"].size <= self.limit**2:
            z, a_prev, w = t[f"Z{n}"], t[prev], t[f"W{n}"]
            jac = np.zeros((z.size, w.size))
            for i in range(z.shape[0]):
                for o in range(z.shape[1]):
                    jac[i * z.shape[1] + o, o * w.shape[1] : (o + 1) * w.shape[1]] = a_prev[i]
            self.out += _jacobian_block(
                f"$\\partial \\operatorname{{vec}} Z^{{[{n}]}} / \\partial \\operatorname{{vec}} W^{{[{n}]}}$",
                jac,
                t[f"dJ/dZ{n}"],
                t[f"dJ/dW{n}"],
                f"\\partial J / \\partial W^{{[{n}]}}",
            )

    def back_through_the_layer(self, n: int) -> None:
        t = self.t
        prev = t.input_of(t.layers[n - 1])
        dz = f"\\frac{{\\partial J}}{{\\partial Z^{{[{n}]}}}}"
        self.add_step(
            f"$\\partial J / \\partial {_tex(prev)}$, back through layer {n}",
            f"\\frac{{\\partial J}}{{\\partial {_tex(prev)}}} = {dz} \\, W^{{[{n}]}}",
            f"A matrix product: {_shape(t[f'dJ/dZ{n}'])} times {_shape(t[f'W{n}'])} gives "
            f"{_shape(t[prev])}, the shape of ${_tex(prev)}$ (an elementwise "
            f"product with $W^{{[{n}]\\top}}$ would give the wrong shape and values).",
            prev,
        )
        if t[f"Z{n}"].size * t[prev].size <= self.limit**2:
            jac = np.kron(np.eye(t[f"Z{n}"].shape[0]), t[f"W{n}"].astype(np.float64))
            self.out += _jacobian_block(
                f"$\\partial \\operatorname{{vec}} Z^{{[{n}]}} / \\partial \\operatorname{{vec}} A^{{[{n - 1}]}} = I_N \\otimes W^{{[{n}]}}$",
                jac,
                t[f"dJ/dZ{n}"],
                t[f"dJ/d{prev}"],
                f"\\partial J / \\partial {_tex(prev)}",
            )

    def to_the_input(self) -> None:
        if self.t.layers[0].is_conv:  # written as the first layer's last step
            return
        self.out += [
            f"### {self.step + 1}. $\\partial J / \\partial X$",
            "",
            f"$$\\frac{{\\partial J}}{{\\partial X}} = \\frac{{\\partial J}}{{\\partial Z^{{[1]}}}} W^{{[1]}} = {latex(self.t['dJ/dX'])}$$",
            "",
            "Not needed to train (X is data, not a parameter), but it is what the chain rule "
            "gives at the input, and what torch computes for an input with `requires_grad=True`.",
            "",
        ]


def _tex(name: str) -> str:
    """'A3' -> 'A^{[3]}', 'X' -> 'X'."""
    return name if name == "X" else f"{name[0]}^{{[{name[1:]}]}}"
