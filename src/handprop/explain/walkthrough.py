"""The worked example, walked through: ``handprop walkthrough`` (or ``python -m handprop
walkthrough``, or ``examples/worked_example.py``).

Prints the source document's network and parameters, the forward pass, the per-sample
losses and the cost, then backpropagation step by step in the document's order: for each
step the formula, the shape, handprop's value, the value the document prints, and torch's
value with a match mark when torch is installed. Where the document differs it says why
(rounding, per-sample loss vs cost, its step-4 error, the ReLU kink). It ends with the
document's ``Adam(lr=0.01)`` step. NumPy is all it needs.
"""

from __future__ import annotations

import copy
import textwrap
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

from .. import worked_example as we
from ..optim import Adam
from .trace import Trace, trace

__all__ = ["walkthrough"]

CHECK, CROSS = "✓", "✗"
WIDTH = 100  # columns: a terminal's line, wider only for what cannot break


DIGITS = 4  # significant digits of the values shown beside the document's 4 decimals


def _num(v: Any, digits: int | None = None) -> str:
    """``v`` to ``digits`` significant digits, without trailing zeros (4, -7.8, -16, 0.09112,
    as the intro says: every value is rounded so); ``None``: in full, the shortest text that
    reads back as the same number in its own dtype (float32: about 7 digits; float64: up to
    17). (Keeping the zeros of rounded values only, -16.00 beside an exact -7.8, read as a
    difference in precision where there is none.)
    """
    v = np.asarray(v)[()]
    v = v if isinstance(v, np.floating) else np.float64(v)
    text = str(v).removesuffix(".0") if digits is None else f"{float(v):.{digits}g}"
    return "0" if text == "-0" else text


def show(a: Any, digits: int | None = None) -> str:
    """An array as a nested list: ``show(Z1, 4)`` is [[4, 2, -7.8], [6, 9, -16]]; without
    ``digits``, every number in full (see ``_num``)."""
    a = np.asarray(a)
    if a.ndim == 0:
        return _num(a, digits)
    return "[" + ", ".join(show(row, digits) for row in a) + "]"


def _doc_agrees(value: Any, printed: Any) -> bool:
    value, printed = np.asarray(value, dtype=np.float64), np.asarray(printed, dtype=np.float64)
    return value.shape == printed.shape and bool(np.all(np.abs(value - printed) <= 5.01e-5))


class _Printer:
    def __init__(self, t: Trace, out: TextIO, report: Any, digits: int | None, dtype) -> None:
        self.t, self.out, self.report, self.digits, self.dtype = t, out, report, digits, dtype

    def show(self, a: Any) -> str:
        """A value computed in the walkthrough's dtype (Python floats such as the cost too),
        with its significant digits: 4, or all that dtype holds with ``full=True``."""
        return show(np.asarray(a, dtype=self.dtype), self.digits)

    def line(self, text: str = "") -> None:
        """Print ``text``, each line wrapped at 100 columns (continuations indented)."""
        for raw in text.split("\n"):
            indent = " " * (len(raw) - len(raw.lstrip()) + 4)
            wrapped = textwrap.fill(
                raw, WIDTH, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False
            )
            print(wrapped if len(raw) > WIDTH else raw, file=self.out)

    def heading(self, text: str) -> None:
        self.line()
        self.line(text)
        self.line("=" * len(text))

    def value(
        self,
        label: str,
        value: Any,
        document: Any = None,
        torch_name: str | None = None,
        torch_scale: float = 1.0,
        why: str | None = None,
    ) -> None:
        """handprop's value; the document's (agreeing to 4 decimals, or why not); torch's."""
        self.line(f"    handprop  {label} = {self.show(value)}")
        if document is not None:
            if _doc_agrees(value, document):
                self.line(f"    document  {show(document)}   (agrees to its 4 decimals)")
            else:
                self.line(f"    document  {show(document)}   DIFFERS: {why or 'see below'}")
        if self.report is not None and torch_name is not None:
            row = self.report[torch_name]
            mark = CHECK if row.passed else CROSS
            torch_value = self.show(np.asarray(row.torch_value) * torch_scale)
            self.line(f"    torch     {torch_value}   {mark} (max difference {row.max_abs:.1e})")


def _torch_report(model, loss_fn, X, Y):
    try:
        from ..interop import parity_report

        return parity_report(copy.deepcopy(model), loss_fn, X, Y)
    except ImportError:
        return None


def walkthrough(
    out: TextIO | None = None, dtype: Any = np.float32, use_torch: bool = True, full: bool = False
) -> Trace:
    """Print the walkthrough to ``out`` (default stdout); returns the trace it is built on.

    Values show 4 significant digits, beside the document's 4 decimals; ``full=True`` shows
    every digit of the dtype (also ``handprop walkthrough --full``), and the returned trace
    holds every value as an array (``t["dJ/dW1"]``).

    One function per part of the story, in order; every number an explanation cites is
    computed from handprop's values or the document's, never typed in.
    """
    import sys

    model, (X, Y), loss_fn = we.model(dtype), we.data(dtype), we.loss_fn()
    t = trace(model, loss_fn, X, Y)
    report = _torch_report(model, loss_fn, X, Y) if use_torch else None
    printer = _Printer(t, out or sys.stdout, report, None if full else DIGITS, np.dtype(dtype))
    w = _Walk(printer, t, model, X, Y, loss_fn, np.dtype(dtype))
    for part in (
        _introduction,
        _network_and_parameters,
        _forward,
        _loss_and_cost,
        _step_1_from_the_cost,
        _step_2_through_the_sigmoid,
        _step_3_last_layer_parameters,
        _step_4_back_to_a2,
        _step_5_through_the_relu,
        _step_6_on,
        _adam_step,
    ):
        part(w)
    return t


@dataclass
class _Walk:
    """What every part of the walkthrough reads: the printer, the trace and the example."""

    p: _Printer
    t: Trace
    model: Any
    X: np.ndarray
    Y: np.ndarray
    loss_fn: Any
    dtype: np.dtype
    doc: dict = field(default_factory=lambda: we.DOCUMENT)

    @property
    def m(self) -> int:
        """Samples (one output each): the document's per-sample gradients are m times dJ."""
        return self.Y.size


def _introduction(w: _Walk) -> None:
    w.p.line("handprop walkthrough: the worked example, forward and backward by hand")
    w.p.line(f'Source: "{we.SOURCE[0]}", {we.SOURCE[1]}')
    w.p.line(
        "Values: handprop's own computation; 'document': the number the source prints; 'torch': "
        + ("autograd's value, with a match mark." if w.p.report else "(torch is not installed).")
        + (
            " Values show 4 significant digits, beside the document's 4 decimals (--full: every"
            " digit)."
            if w.p.digits
            else " Values in full: every digit of their dtype."
        )
    )


def _network_and_parameters(w: _Walk) -> None:
    p = w.p
    p.heading("1. The network")
    p.line(str(w.model))
    data = f"X = {p.show(w.X)}, y = {p.show(w.Y)}"
    p.line(f"dtype {w.dtype}; loss {w.loss_fn!r}; {data} (samples are rows)")
    p.heading("2. Parameters, set by hand as in the source (.grad is None until a backward)")
    for name, param in w.model.named_parameters():
        p.line(f"  {name:<9} shape {param.shape!s:<7} {p.show(param.data)}   grad {param.grad}")


def _forward(w: _Walk) -> None:
    p, t = w.p, w.t
    p.heading("3. Forward: Z = A_prev @ W.T + b, then A = activation(Z)")
    for layer in t.layers:
        n = layer.number
        prev = "X" if n == 1 else f"A{n - 1}"
        z = t[f"Z{n}"]
        p.line(
            f"  Z{n} = {prev} @ W{n}.T + b{n}     {t[prev].shape} @ {t[f'W{n}'].T.shape} "
            f"+ {t[f'b{n}'].shape} -> {z.shape}"
        )
        p.value(f"Z{n}", z, w.doc[f"Z{n}"], f"Z{n}")
        p.line(f"  A{n} = {type(layer.activation).__name__}(Z{n})")
        p.value(f"A{n}", t[f"A{n}"], w.doc[f"A{n}"], f"A{n}")
    kinks = np.argwhere(t["Z2"] == 0).tolist()
    assert kinks == [[0, 0]], kinks  # the example's kink, which step 5 explains
    p.line(
        "  Note: Z2[0, 0] is exactly 0, the point where ReLU bends (its 'kink'); it matters in "
        "step 5."
    )


def _loss_and_cost(w: _Walk) -> None:
    p, t = w.p, w.t
    p.heading("4. Loss and cost")
    p.line("  L = -(y log A3 + (1 - y) log(1 - A3)), one loss per sample; J = mean(L), the cost")
    p.value("L", t["L"], w.doc["L"])
    p.value("J", t["J"], w.doc["J"], "J")
    p.heading("5. Backpropagation, from the cost back to the parameters")
    p.line(
        "  torch's .grad holds gradients of the cost J = mean(L). The source differentiates each\n"
        f"  sample's loss L instead and averages only at the parameters: its dL values are\n"
        f"  m = {w.m} times torch's dJ values. Both are shown: dL for the source's steps,\n"
        "  dJ for .grad."
    )


def _step_1_from_the_cost(w: _Walk) -> None:
    p, t = w.p, w.t
    p.line("\n  Step 1. dL/dA3 = -y / A3 + (1 - y) / (1 - A3)        shape (2, 1), like A3")
    p.value("dL/dA3", t["dL/dA3"], w.doc["dL/dA3"], "dJ/dA3", torch_scale=w.m)
    p.line(f"    (dJ/dA3 = dL/dA3 / {w.m} = {p.show(t['dJ/dA3'])})")


def _step_2_through_the_sigmoid(w: _Walk) -> None:
    p, t = w.p, w.t
    p.line("\n  Step 2. dL/dZ3 = dL/dA3 * A3 * (1 - A3)   (sigmoid' = A3 (1 - A3))   shape (2, 1)")
    a3 = t["A3"].astype(np.float64)
    slope = a3 * (1 - a3)
    p.value("dA3/dZ3", slope, w.doc["dA3/dZ3"], why=_truncations(slope, w.doc["dA3/dZ3"]))
    p.value("dL/dZ3", t["dL/dZ3"], w.doc["dL/dZ3"], "dJ/dZ3", torch_scale=w.m)


def _step_3_last_layer_parameters(w: _Walk) -> None:
    p, t, doc = w.p, w.t, w.doc
    p.line("\n  Step 3. dJ/db3 = mean over samples of dL/dZ3; dJ/dW3 = dJ/dZ3.T @ A2")
    first, second = np.ravel(doc["dL/dZ3"])
    hand_mean = (first + second) / 2  # the document's own rounded values, averaged
    p.value(
        "dJ/db3",
        t["dJ/db3"],
        doc["dJ/db3"],
        "4.bias.grad",
        why=f"rounding: the document averages its rounded values, ({first:.4f} - {-second:.4f})"
        f" / 2 = {hand_mean:.5f}, and rounds again; the exact mean is "
        f"{float(t['dJ/db3'][0]):.5f} (its own torch printout says "
        f"{doc['dJ/db3 printed by torch'][0]:.4f})",
    )
    per_sample_w3 = t["dL/dZ3"] * t["A2"]  # row n: sample n's dL/dW3
    printed = doc["dL/dW3 per sample"]
    p.value(
        "dL/dW3 per sample (rows)",
        per_sample_w3,
        printed,
        why=_truncations(per_sample_w3, printed),
    )
    p.value("dJ/dW3", t["dJ/dW3"], doc["dJ/dW3"], "4.weight.grad")


def _step_4_back_to_a2(w: _Walk) -> None:
    w.p.line("\n  Step 4. dL/dA2 = dL/dZ3 @ W3        (2, 1) @ (1, 2) -> (2, 2), like A2")
    w.p.value(
        "dL/dA2",
        w.t["dL/dA2"],
        w.doc["dL/dA2"],
        "dJ/dA2",
        torch_scale=w.m,
        why="the document multiplies elementwise, dL_dZ3 * W3.T, which broadcasts (2, 1) * (2, 1) "
        "to shape (2, 1): sample 1 gets W3[0, 0] and sample 2 gets W3[0, 1]. Z3 = A2 @ W3.T "
        "makes every A2[n, j] reach Z3[n] through W3[0, j], so the chain rule is the matrix "
        "product dL/dZ3 @ W3, shape (2, 2), as torch computes",
    )


def _step_5_through_the_relu(w: _Walk) -> None:
    p, t = w.p, w.t
    p.line("\n  Step 5. dL/dZ2 = dL/dA2 * (Z2 > 0)    ReLU' is 1 where Z2 > 0 and 0 where Z2 < 0")
    # the other choice at the kink, ReLU'(0) = 1: the mask Z2 >= 0
    db2_other = (t["dJ/dA2"].astype(np.float64) * (t["Z2"] >= 0)).sum(axis=0)
    p.line(
        "    At Z2[0, 0] = 0 exactly ReLU has no derivative. handprop, like torch, takes 0 there\n"
        "    (the mask is Z2 > 0, not Z2 >= 0), so no gradient reaches Z2[0, 0] although\n"
        f"    dL/dA2[0, 0] = {p.show(t['dL/dA2'][0, 0])}; with the other choice, 1, dJ/db2 "
        "would be "
        f"[{', '.join(f'{v:.4f}' for v in db2_other)}]."
    )
    mask = (t["Z2"] > 0).astype(int).tolist()
    p.value(
        "dL/dZ2",
        t["dL/dZ2"],
        w.doc["dL/dZ2"],
        "dJ/dZ2",
        torch_scale=w.m,
        why=f"the document carries on its step-4 values; the mask (Z2 > 0) = {mask} is right",
    )


def _step_6_on(w: _Walk) -> None:
    p, t, doc = w.p, w.t, w.doc
    p.line("\n  Step 6 on (the document stops here, but prints torch's .grad for every parameter):")
    p.line("  dJ/dW2 = dJ/dZ2.T @ A1, dJ/db2 = sum over samples of dJ/dZ2")
    p.value("dJ/dW2", t["dJ/dW2"], doc["dJ/dW2"], "2.weight.grad")
    p.value("dJ/db2", t["dJ/db2"], doc["dJ/db2"], "2.bias.grad")
    p.line("  dJ/dA1 = dJ/dZ2 @ W2     (2, 2) @ (2, 3) -> (2, 3)")
    p.value("dJ/dA1", t["dJ/dA1"], None, "dJ/dA1")
    off = [j for j in range(t["Z1"].shape[1]) if (t["Z1"][:, j] <= 0).all()]
    assert off == [2], off  # the unit the next line speaks of
    p.line("  dJ/dZ1 = dJ/dA1 * (Z1 > 0)   (the third unit is off for both samples: no gradient)")
    p.value("dJ/dZ1", t["dJ/dZ1"], None, "dJ/dZ1")
    p.line("  dJ/dW1 = dJ/dZ1.T @ X, dJ/db1 = sum over samples of dJ/dZ1")
    p.value("dJ/dW1", t["dJ/dW1"], doc["dJ/dW1"], "0.weight.grad")
    p.value("dJ/db1", t["dJ/db1"], doc["dJ/db1"], "0.bias.grad")
    p.line("  dJ/dX = dJ/dZ1 @ W1 (not needed to train, X is data)")
    p.value("dJ/dX", t["dJ/dX"], None, "dJ/dX")


def _adam_step(w: _Walk) -> None:
    p, model = w.p, w.model
    p.heading("6. One Adam step, optimizer = Adam(model.parameters(), lr=0.01)")
    model.zero_grad()
    w.loss_fn(model(w.X), w.Y)
    model.backward(w.loss_fn.backward())
    grads = {name: param.grad.copy() for name, param in model.named_parameters()}
    before = model.state_dict()
    Adam(model.parameters(), lr=0.01).step()
    p.line(
        "  On the first step Adam moves every parameter by lr = 0.01 against the sign of its\n"
        "  gradient (m / sqrt(v) = g / |g|); parameters whose gradient is 0 do not move."
    )
    torch_after = _torch_adam_step(we.model(w.dtype), w.X, w.Y) if p.report is not None else None
    for name, param in model.named_parameters():
        moved = param.data - before[name]
        p.line(f"  {name:<9} {p.show(param.data)}")
        p.line(
            f"            moved {p.show(moved)}   (gradient sign {p.show(np.sign(grads[name]))})"
        )
        if torch_after is not None:
            from ..interop import compare

            _, _, ok = compare(param.data, torch_after[name], w.dtype)
            p.line(f"            torch {p.show(torch_after[name])}   {CHECK if ok else CROSS}")
    p.line(
        f"  cost after the step: {p.show(w.loss_fn(model(w.X), w.Y))} (before: {p.show(w.t['J'])})"
    )


def _truncations(values: Any, printed: Any) -> str:
    """Why the document's 4-decimal ``printed`` values differ from ``values``: each one it cut
    instead of rounding, with the value it cut and the rounded one."""
    values = np.asarray(values, np.float64).ravel()
    printed = np.asarray(printed, np.float64).ravel()
    cuts = [
        (v, d)
        for v, d in zip(values, printed, strict=True)
        if abs(round(v, 4) - d) > 5e-9 and abs(np.trunc(v * 1e4) / 1e4 - d) < 5e-9
    ]
    assert cuts, "no truncation explains the difference"  # the walkthrough's claim, checked
    cut = " and ".join(f"{_num(v, 7)} to {d:.4f}" for v, d in cuts)
    rounded = ", ".join(f"{round(v, 4):.4f}" for v, _ in cuts)
    return f"truncation: the document cuts {cut} instead of rounding ({rounded})"


def _torch_adam_step(model, X, Y) -> dict[str, np.ndarray]:
    """torch's parameters after the same Adam step (torch is known to be installed)."""
    import torch

    from ..interop import to_torch

    twin = to_torch(model)
    optimizer = torch.optim.Adam(twin.parameters(), lr=0.01)
    optimizer.zero_grad()
    torch.nn.functional.binary_cross_entropy(
        twin(torch.from_numpy(X)), torch.from_numpy(Y)
    ).backward()
    optimizer.step()
    return {name: p.detach().numpy().copy() for name, p in twin.named_parameters()}
