"""A finite-difference gradient check that knows about kinks.

``gradcheck(model, loss_fn, X, y)`` compares the backward pass with central differences

    dJ/dtheta ~ (J(theta + eps) - J(theta - eps)) / (2 eps)

for every parameter element and every input element, in float64 on a copy of the model (the
model itself, whatever its dtype, is not touched).

Central differences assume J is smooth between theta - eps and theta + eps. ReLU is not: at
0 it has a kink, and a perturbation that pushes a pre-activation across 0 averages the two
one-sided slopes. The worked example has such a point, Z2[0, 0] = 0 exactly, and the usual
checkers report a false error there. This one watches every kinked module's input during each
perturbed forward pass; where a perturbation crosses a kink, the element is judged by the
one-sided differences ``(J(theta + eps) - J(theta)) / eps`` and
``(J(theta) - J(theta - eps)) / eps``, and also by their average, the central difference (it
passes if the analytic gradient matches any of the three: each is a valid choice at a kink;
torch's ReLU'(0) = 0 is a one-sided slope, its |x|'(0) = 0 the average, and torch parity,
not gradcheck, checks the convention), and the kink is listed in ``.kinks``.

A layer of your own with kinks declares where they are in the class attribute ``kinks_at``
(the input values where the function has no derivative, e.g. ``kinks_at = (0.0,)``). A kink
that is not at a fixed value, such as a tie for the maximum of a ``MaxPool2d`` window, is
declared by a method ``branches(x)``: an input-shaped array saying which branch of the function
each input is on (for max pooling, how many windows choose it); a perturbation that changes it
has crossed a kink at the inputs where it changed.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._contract import _watchers
from .grad_mode import no_grad
from .module import Module, Sequential
from .naming import output_names

__all__ = ["GradcheckReport", "gradcheck"]


@dataclass
class KinkSite:
    """A non-differentiable point that a perturbation crossed, and what was done about it."""

    value: str  # e.g. "Z2[0, 0]": the kinked module's input element
    module: str  # e.g. "3 (ReLU())"
    sample: int
    unit: tuple[int, ...]
    at: float  # the input's unperturbed value
    elements: list[tuple[str, tuple[int, ...], bool]] = field(default_factory=list)
    # (tensor, element index, whether a one-sided or the central difference matched)

    def __str__(self) -> str:
        matched = sum(ok is True for _, _, ok in self.elements)
        several = sum(ok is None for _, _, ok in self.elements)
        unit = self.unit[0] if len(self.unit) == 1 else self.unit
        where = self.module if self.module.startswith("the loss") else f"module {self.module}"
        return (
            f"{self.value} = {self.at:g} (input of {where}; sample {self.sample}, "
            f"unit {unit}): crossed by {len(self.elements)} perturbed elements, "
            f"{matched} matched by a one-sided or the central difference"
            + (f", {several} crossing several kinks at once (not judged)" if several else "")
        )


@dataclass
class TensorResult:
    name: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    passed: bool
    one_sided: int  # elements judged by one-sided differences because of a kink
    several: int = 0  # elements whose perturbation crossed several kinks at once: not judged


@dataclass
class GradcheckReport:
    """Per tensor: largest absolute and relative error and pass/fail; ``kinks`` crossed."""

    eps: float
    atol: float
    rtol: float
    tensors: list[TensorResult] = field(default_factory=list)
    kinks: list[KinkSite] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(t.passed for t in self.tensors)

    def __str__(self) -> str:
        lines = [
            f"gradcheck: {'PASSED' if self.passed else 'FAILED'} (float64 central differences, "
            f"eps={self.eps:g}; |analytic - numeric| <= {self.atol:g} + {self.rtol:g} * |numeric|)",
        ]
        # columns as wide as their longest entry (a 4-D convolution weight's shape, say)
        wn = max([12] + [len(t.name) + 1 for t in self.tensors])
        ws = max([10] + [len(str(t.shape)) for t in self.tensors])
        lines.append(
            f"{'tensor':<{wn}}{'shape':<{ws}}{'max abs err':>13}{'max rel err':>13}  result"
        )
        for t in self.tensors:
            note = f" ({t.one_sided} at a kink, judged one-sided)" if t.one_sided else ""
            if t.several:
                note += f" ({t.several} crossing several kinks at once, not judged)"
            lines.append(
                f"{t.name:<{wn}}{t.shape!s:<{ws}}{t.max_abs:>13.3g}{t.max_rel:>13.3g}  "
                f"{'ok' if t.passed else 'FAIL'}{note}"
            )
        if self.kinks:
            lines.append("kinks crossed by a perturbation of +-eps:")
            lines.extend(f"  {k}" for k in self.kinks)
        return "\n".join(lines)


def _report_markdown(report: GradcheckReport) -> str:
    lines = [
        f"**gradcheck: {'passed' if report.passed else 'FAILED'}** (float64 central "
        f"differences, $\\varepsilon = {report.eps:g}$; an element passes when "
        f"$|a - n| \\le {report.atol:g} + {report.rtol:g}\\,|n|$)",
        "",
        "| tensor | shape | max abs error | max rel error | result |",
        "|---|---|---|---|---|",
    ]
    for t in report.tensors:
        note = f" ({t.one_sided} judged one-sided at a kink)" if t.one_sided else ""
        if t.several:
            note += f" ({t.several} crossing several kinks at once, not judged)"
        result = "ok" if t.passed else "**FAIL**"
        lines.append(
            f"| `{t.name}` | {t.shape} | {t.max_abs:.3g} | {t.max_rel:.3g} | {result}{note} |"
        )
    if report.kinks:
        lines += ["", "Kinks crossed by a perturbation of $\\pm\\varepsilon$:", ""]
        lines += [f"- {k}" for k in report.kinks]
    return "\n".join(lines)


GradcheckReport._repr_markdown_ = _report_markdown  # notebook display


def _float64_copy(model: Module) -> Module:
    clone = copy.deepcopy(model)
    for p in clone.parameters():
        p.data = p.data.astype(np.float64)
        p.grad = None
    for module in clone.modules():  # running statistics too (integer counts stay as they are)
        for name, buffer in list(module._buffers.items()):
            if buffer is not None and buffer.dtype.kind == "f":
                module.register_buffer(
                    name, buffer.astype(np.float64), name not in module._non_persistent_buffers
                )
    clone._clear_cache()
    return clone


def gradcheck(
    model: Module,
    loss_fn: Any,
    X: Any,
    y: Any,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
) -> GradcheckReport:
    """Check ``model``'s backward against finite differences of ``loss_fn``'s cost.

    The cost is the loss's output (its sum for ``reduction="none"``). Each element passes when
    ``|analytic - numeric| <= atol + rtol * |numeric|``, torch.autograd.gradcheck's criterion.
    It takes two forward passes per element: meant for small networks.

    Examples:
        >>> from handprop import worked_example
        >>> X, y = worked_example.data()
        >>> report = gradcheck(worked_example.model(), worked_example.loss_fn(), X, y)
        >>> report.passed, [k.value for k in report.kinks]
        (True, ['Z2[0, 0]'])
    """
    eps, atol, rtol = _checked_tolerances(eps, atol, rtol)
    checker = _Checker(model, loss_fn, X, y, eps, atol, rtol)
    report = GradcheckReport(eps, atol, rtol)
    report.tensors = [checker.check(*tensor) for tensor in checker.analytic]
    report.kinks = list(checker.sites.values())
    return report


class _Checker:
    """gradcheck's work on a float64 copy of the model: the analytic gradients from backward,
    then each element's finite difference (one-sided where it crosses a kink).

    The kinks are watched wherever a forward runs, inside a block too: every evaluation
    records the input of each call of a module with kinks (``_contract._watchers``), in the
    order of the calls, and the +eps and -eps evaluations are compared with the first."""

    def __init__(self, model, loss_fn, X, y, eps: float, atol: float, rtol: float) -> None:
        self.net = _float64_copy(model)
        self.loss = copy.deepcopy(loss_fn)
        self.modules = _chain(self.net)
        self.names = output_names(self.modules)
        self.paths = {id(m): path for path, m in self.net.named_modules()}
        X = np.asarray(X)  # integer inputs (an Embedding's indices) stay, and get no gradient
        self.x = X.copy() if X.dtype.kind in "iub" else np.array(X, dtype=np.float64)
        y = np.asarray(y)
        self.y = y if y.dtype.kind in "iu" else y.astype(np.float64)
        self.eps, self.atol, self.rtol = eps, atol, rtol
        self.sites: dict[tuple[int, tuple[int, ...]], KinkSite] = {}
        self.analytic = self.analytic_gradients()
        for module in self.net.modules():  # the masks backward used, for every evaluation
            if _draws_masks(module) and module.training:  # Dropout, a recurrent layer's dropout
                module._fixed_mask = module.mask
        self.cost, self.base_calls = self.evaluate()

    @no_grad()
    def evaluate(self) -> tuple[float, list[tuple[str, Module, np.ndarray]]]:
        """The cost, and ``(name, module, input)`` of every call of a module with kinks, in
        the order they ran (input copies: x changes in place). The flat model's values keep
        the worked example's names (``Z2``); a call inside a block is named by its module's
        path (``1.f.1 input``); the loss's entry is its ``input - target`` (L1Loss's kink)."""
        calls: list[tuple[str, Module, np.ndarray]] = []
        position = [0]  # the top-level module now running

        def watch(module: Module, x: Any, more: tuple) -> None:
            if not (module.kinks_at or hasattr(module, "branches")):
                return
            p = position[0]
            if module is self.loss:
                name, value = f"({self.names[-1] if self.names else 'X'} - Y)", x - more[0]
            elif p < len(self.modules) and module is self.modules[p] and not calls_of[p]:
                name, value = (self.names[p - 1] if p else "X"), x
            else:
                name, value = f"{self.paths.get(id(module), type(module).__name__)} input", x
            if p < len(calls_of):
                calls_of[p] = True
            calls.append((name, module, np.array(value, dtype=np.float64, copy=True)))

        calls_of = [False] * len(self.modules)
        _watchers.append(watch)
        try:
            h = self.x
            for p, module in enumerate(self.modules):
                position[0] = p
                h = module(h)
            position[0] = len(self.modules)
            cost = float(np.sum(self.loss(h, self.y)))
        finally:
            _watchers.remove(watch)
        return cost, calls

    def analytic_gradients(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """``(name, array, gradient)`` for every parameter and for X, from one backward."""
        out = self.loss(self.net(self.x), self.y)
        out_grad = 1.0 if self.loss.reduction != "none" else np.ones(np.shape(out))
        grad_x = self.net.backward(self.loss.backward(out_grad))
        params = [(n, p.data, p.grad) for n, p in self.net.named_parameters()]
        return params if grad_x is None else [*params, ("X", self.x, grad_x)]

    def check(self, name: str, array: np.ndarray, analytic: np.ndarray) -> TensorResult:
        """Every element of one tensor against its finite difference."""
        errors, rel_errors, ok, one_sided, several = [], [], True, 0, 0
        for index in np.ndindex(array.shape):
            a = analytic[index]
            numeric, crossed = self.numeric(array, index, a)
            good = abs(a - numeric) <= self.atol + self.rtol * abs(numeric)
            if not good and len(set(crossed)) > 1:
                # Several kinks crossed at once (ties in overlapping max-pool windows, two
                # ReLUs on opposite sides): a valid derivative may pick a different side at
                # each, a mix that neither one-sided difference shows. Not judged here; the
                # torch parity tests check handprop's choices.
                several += 1
                self.record_kinks(crossed, name, index, None)
                continue
            one_sided += bool(crossed)
            ok &= good
            self.record_kinks(crossed, name, index, good)
            errors.append(abs(a - numeric))
            scale = max(abs(a), abs(numeric))
            rel_errors.append(abs(a - numeric) / scale if scale else 0.0)
        return TensorResult(
            name,
            array.shape,
            max(errors, default=0.0),
            max(rel_errors, default=0.0),
            bool(ok),
            one_sided,
            several,
        )

    def numeric(self, array: np.ndarray, index: tuple[int, ...], a: float):
        """The finite difference for ``array[index]`` and the kinks its perturbations cross:
        central where none is crossed; else whichever of the one-sided slopes or their
        average is closest to the analytic ``a`` (each is a valid choice at a kink)."""
        eps, original = self.eps, array[index]
        array[index] = original + eps
        plus, plus_calls = self.evaluate()
        array[index] = original - eps
        minus, minus_calls = self.evaluate()
        array[index] = original
        crossed = _crossings(self.base_calls, plus_calls, minus_calls)
        central = (plus - minus) / (2 * eps)
        if not crossed:
            return central, crossed
        candidates = [(plus - self.cost) / eps, (self.cost - minus) / eps, central]
        return min(candidates, key=lambda n: abs(a - n)), crossed

    def record_kinks(self, crossed, name: str, index: tuple[int, ...], good: bool | None) -> None:
        """Add this element to each kink site its perturbation crossed (created when new)."""
        for call, cell in crossed:
            key = (call, cell)
            if key not in self.sites:
                value_name, module, value = self.base_calls[call]
                if module is self.loss:
                    where = f"the loss {module!r}"
                elif module in self.modules:
                    where = f"{self.modules.index(module)} ({module!r})"
                else:
                    where = f"{self.paths.get(id(module), '?')} ({module!r})"
                self.sites[key] = KinkSite(
                    value=f"{value_name}[{', '.join(map(str, cell))}]",
                    module=where,
                    sample=cell[0],
                    unit=cell[1:],
                    at=float(value[cell]),
                )
            self.sites[key].elements.append((name, index, None if good is None else bool(good)))


def _chain(module: Module) -> list[Module]:
    """The modules a forward runs one after another, nested Sequentials opened (so that the
    kinks inside them are named as a flat model's are)."""
    if not isinstance(module, Sequential):
        return [module]
    return [leaf for child in module for leaf in _chain(child)]


def _checked_tolerances(eps: Any, atol: Any, rtol: Any) -> tuple[float, float, float]:
    for name, value in (("eps", eps), ("atol", atol), ("rtol", rtol)):
        real = isinstance(value, (int, float, np.integer, np.floating))
        if not real or isinstance(value, bool) or not 0 <= value < math.inf:
            raise ValueError(
                f"gradcheck: {name} must be a finite non-negative number, got {value!r}"
            )
    if eps == 0:
        raise ValueError("gradcheck: eps must be positive, got 0")
    return float(eps), float(atol), float(rtol)


def _crossings(base, plus, minus) -> list[tuple[int, tuple[int, ...]]]:
    """(call, element) of every kink that the +eps or -eps evaluation crossed: the same call
    of the same module, its input on the other side of a kink (or, for a module with
    ``branches``, such as a max's tie, taking another branch)."""
    found = []
    for call, ((_, module, before), (_, _, up), (_, _, down)) in enumerate(
        zip(base, plus, minus, strict=False)
    ):
        if hasattr(module, "branches"):  # a kink where the branch taken changes (a max's tie)
            taken = module.branches(before)
            changed = (module.branches(up) != taken) | (module.branches(down) != taken)
            found.extend((call, tuple(int(i) for i in cell)) for cell in np.argwhere(changed))
        for kink in module.kinks_at:
            side = before > kink
            flipped = ((up > kink) != side) | ((down > kink) != side)
            found.extend((call, tuple(int(i) for i in cell)) for cell in np.argwhere(flipped))
    return found


def _draws_masks(module: Module) -> bool:
    """A module that draws random masks in training (``Dropout``, the dropout between a
    recurrent layer's layers): it keeps the last ones in ``mask`` and reuses ``_fixed_mask``
    instead of drawing when that is set."""
    return "_fixed_mask" in module.__dict__
