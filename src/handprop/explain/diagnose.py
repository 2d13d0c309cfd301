"""``check_module``: a module's backward against a reference, with the likely mistake named.

A gradient checker that prints one relative error leaves the learner to guess what is wrong.
``check_module(module, x)`` runs the module's forward on ``x`` and its backward on a random
upstream gradient ``g``, computes the same gradients a second way (a reference module, handprop's
or torch's, with the same parameters; else central differences in float64), compares them
tensor by tensor, and where they differ, tries the classic mistakes one by one and names the
one that explains the numbers:

========================  ===================================================================
code                      the backward returned ...
========================  ===================================================================
``wrong-shape``           an array of another shape than the tensor it is the gradient of
``transposed``            the right gradient, transposed (``x.T @ g`` for ``g.T @ x``)
``not-summed-over-batch`` one gradient per sample, for a parameter shared by all samples
``sign``                  the right gradient with the opposite sign
``scaled``                the right gradient times a factor (the batch size: mean vs sum)
``elementwise-product``   ``g * W`` (elementwise) where the chain rule needs ``g @ W``
``diagonal-only``         only the diagonal of a Jacobian that is not diagonal (softmax's)
``kink-choice``           another derivative than torch's at a kink (ReLU's at exactly 0)
``wrong-dtype``           complex numbers (or no numbers at all) where a gradient is real
``overwritten-shared``    one use's share of a parameter used several times (``.grad`` set,
                          not added to)
``repeated-index``        a table's gradient with a repeated index's gradients overwritten,
                          not added (``dW[x] += g`` where ``np.add.at(dW, x, g)`` is needed)
``h-path-dropped``        a recurrent step's gradient without the path back through the state
                          ``h_{t-1}`` (its gradient left at zero, or not carried back)
``not-summed-over-time``  one time step's share of a recurrent weight's gradient, where every
                          step's share adds up (or ``.grad`` set at each step, not added to)
``gates-order``           the gate blocks of an LSTM's or GRU's weight gradient in another
                          order than torch's ``i, f, g, o`` (``r, z, n``)
``softmax-diagonal``      attention's softmax Jacobian taken as its diagonal
``scale-forgotten``       attention's ``1 / sqrt(d)`` left out of ``dJ/dq`` and ``dJ/dk``
``mask-gradient``         attention's backward through the unmasked scores: masked positions
                          given gradient
``heads-order``           the heads' gradient split in another order than they were merged
========================  ===================================================================

Integer inputs (an Embedding's indices) get no gradient: they are not perturbed, and the
backward's return for them is not compared.

Examples:
    >>> import numpy as np
    >>> from handprop.layers import Linear
    >>> class MeanBias(Linear):  # averages the bias gradient instead of summing it
    ...     def backward(self, grad_output, *, input_grad=True):
    ...         dx = super().backward(grad_output, input_grad=input_grad)
    ...         self.bias.grad = self.bias.grad / len(grad_output)
    ...         return dx
    >>> report = check_module(MeanBias(3, 2, rng=0), np.ones((4, 3)), rng=0)
    >>> report.passed, [(m.tensor, m.code) for m in report.mistakes]
    (False, [('bias', 'scaled')])
    >>> print(report.mistakes[0].hint)  # (one line, wrapped here)
    bias: your gradient is 1/4 of the right one: 4 is the batch size (a mean where the
    chain rule sums over the batch, or the other way round)
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._contract import _watchers
from .._gradcheck import _draws_masks
from ..grad_mode import no_grad
from ..module import Module, Parameter
from . import _attention_mistakes as attention
from . import _recurrent_mistakes as recurrent

__all__ = ["Mistake", "ModuleReport", "TensorCheck", "check_module"]

EPS = 1e-6  # the central differences' step, in float64
TOLERANCE = {  # (rtol, atol) by how the reference was computed
    "finite differences": (1e-4, 1e-6),
    np.dtype(np.float32): (1e-4, 1e-5),
    np.dtype(np.float64): (1e-10, 1e-12),
}


@dataclass
class TensorCheck:
    """One gradient: the module's against the reference."""

    name: str  # "X" (dJ/dx) or the parameter's name
    shape: tuple[int, ...] | None  # of the module's gradient (None: it returned none)
    expected_shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    passed: bool
    #: Where the difference is largest, and the two values there (a failed tensor of the right
    #: shape): a learner sees which number is off and by how much.
    worst: tuple[int, ...] | None = None
    worst_got: float | None = None
    worst_expected: float | None = None

    def worst_text(self) -> str:
        """``dJ/dx[0, 1]: yours 0.7311, expected 0.1966 (...)``, or ``dJ/dweight[...]`` (empty
        when there is nothing to show)."""
        if self.worst is None:
            return ""
        where = "dJ/dx" if self.name == "X" else f"dJ/d{self.name}"
        if self.worst:  # () for a scalar
            where += f"[{', '.join(map(str, self.worst))}]"
        return (
            f"{where}: yours {self.worst_got:.4g}, expected {self.worst_expected:.4g} "
            "(the largest difference)"
        )


@dataclass
class Mistake:
    """A mistake that explains a tensor's numbers: its code and a hint in words."""

    tensor: str
    code: str
    hint: str


@dataclass
class ModuleReport:
    """What ``check_module`` found: ``passed``, one row per tensor, and the mistakes named."""

    module: str
    reference: str
    rows: list[TensorCheck] = field(default_factory=list)
    mistakes: list[Mistake] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(row.passed for row in self.rows)

    def __str__(self) -> str:
        lines = [
            f"check_module: {'PASSED' if self.passed else 'FAILED'}: {self.module} against "
            f"{self.reference}",
        ]
        shapes = [
            str(r.shape) if r.shape == r.expected_shape else f"{r.shape} != {r.expected_shape}"
            for r in self.rows
        ]
        wn = max([14] + [len(r.name) + 1 for r in self.rows])  # as wide as the longest entry
        ws = max([16] + [len(shape) for shape in shapes])
        lines.append(
            f"{'tensor':<{wn}}{'shape':<{ws}}{'max abs err':>13}{'max rel err':>13}  result"
        )
        for r, shape in zip(self.rows, shapes, strict=True):
            lines.append(
                f"{r.name:<{wn}}{shape:<{ws}}{r.max_abs:>13.3g}{r.max_rel:>13.3g}  "
                f"{'ok' if r.passed else 'FAIL'}"
            )
        lines += [f"  {r.worst_text()}" for r in self.rows if r.worst_text()]
        for m in self.mistakes:
            lines.append(f"  {m.code}: {m.hint}")
        if not self.passed and not self.mistakes:
            lines.append("  (no classic mistake explains the difference)")
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        lines = [
            f"**check_module: {'passed' if self.passed else 'FAILED'}** ({self.reference})",
            "",
            "| tensor | shape | max abs error | max rel error | result |",
            "|---|---|---|---|---|",
        ]
        for r in self.rows:
            result = "ok" if r.passed else "**FAIL**"
            lines.append(
                f"| `{r.name}` | {r.shape} | {r.max_abs:.3g} | {r.max_rel:.3g} | {result} |"
            )
        lines += ["", *(f"- {r.worst_text()}" for r in self.rows if r.worst_text())]
        lines += [f"- `{m.code}` ({m.tensor}): {m.hint}" for m in self.mistakes]
        return "\n".join(lines)


def check_module(module: Module, x: Any, *, reference: Any = None, rng: Any = None) -> ModuleReport:
    """Check ``module``'s backward on input ``x`` against ``reference`` (a handprop or torch
    module with the same parameters; None: central differences in float64).

    ``g``, the upstream gradient, is drawn from ``rng`` (a seed or a Generator); the module's
    own ``.grad`` and cached values are not touched (it runs on a copy)."""
    rng = np.random.default_rng(rng)
    mine = copy.deepcopy(module)
    xs, names = _inputs(x)
    # The module gets copies of x and g, and what it returns is copied: whatever its code
    # does to the arrays it is given (g *= ..., in place) cannot change the x, y and g that
    # the reference and the diagnosis use, so it cannot change the verdict.
    y = _copied(mine(*_copied(xs)))
    g = _random_like(y, rng)
    for p in mine.parameters():
        p.grad = None
    overwritten: dict[int, list[np.ndarray]] = {}  # id(parameter): the .grad values set over
    with _any_shape(), _watching_overwrites(overwritten):  # both kept, to be diagnosed
        dx = _backward(mine, _copied(g))
    analytic = _by_name(dx, xs, names)
    analytic.update({n: p.grad for n, p in mine.named_parameters()})

    expected, how = _reference(module, reference, xs, g, mine, names)
    for x, top in zip(xs, names, strict=True):
        for name, a in _leaves(x, top):
            if a.dtype.kind in "iub":  # indices, masks: no gradient to compare (torch: none)
                expected.pop(name, None)
    y0, g0 = _first(y), _first(g)
    rtol, atol = TOLERANCE["finite differences" if reference is None else np.dtype(y0.dtype)]
    report = ModuleReport(repr(module), how)
    discarded = {n: overwritten[id(p)] for n, p in mine.named_parameters() if id(p) in overwritten}
    context = _Context(module, _first(xs), y0, g0, reference, discarded, (xs, g, names))
    for name, right in expected.items():
        got = analytic.get(name)
        if isinstance(right, _Numeric):  # at a kink, either one-sided slope is right too
            got = right.closest(got)
            right = right.central
        row, ok = _compare(name, got, right, rtol, atol)
        report.rows.append(row)
        if not ok:
            mistake = _diagnose(name, got, right, rtol, atol, context)
            if mistake is not None:
                report.mistakes.append(mistake)
    return report


@contextlib.contextmanager
def _watching_overwrites(found: dict[int, list[np.ndarray]]):
    """While the module's backward runs, a ``.grad`` that is *set* over a gradient already
    there (``p.grad = ...`` rather than ``accumulate_grad``) is recorded in ``found``: the
    value it replaced, so that the diagnosis can tell a shared parameter whose uses overwrite
    each other's share."""
    slot = Parameter.__dict__["grad"]  # the slot's own descriptor
    accumulate = Parameter.accumulate_grad
    adding = []

    def set_grad(self, value):
        old = slot.__get__(self)
        if old is not None and not adding and value is not old:
            found.setdefault(id(self), []).append(np.asarray(old))
        slot.__set__(self, value)

    def accumulate_grad(self, grad):
        adding.append(True)
        try:
            accumulate(self, grad)
        finally:
            adding.pop()

    Parameter.grad = property(slot.__get__, set_grad)
    Parameter.accumulate_grad = accumulate_grad
    try:
        yield
    finally:
        Parameter.grad = slot
        Parameter.accumulate_grad = accumulate


@contextlib.contextmanager
def _any_shape():
    """While the module's backward runs, ``Parameter.accumulate_grad`` keeps a gradient of
    the wrong shape or dtype as ``.grad`` (instead of raising), so that the diagnosis can say
    what it is (one per sample, transposed, ...)."""
    original = Parameter.accumulate_grad

    def keep(self, grad):
        grad = np.asarray(grad)
        if grad.shape != self.data.shape or grad.dtype != self.data.dtype:
            self.grad = grad
            return
        original(self, grad)

    Parameter.accumulate_grad = keep
    try:
        yield
    finally:
        Parameter.accumulate_grad = original


# --- the reference gradients -------------------------------------------------------------------


def _inputs(x: Any) -> tuple[list[Any], list[str]]:
    """The module's inputs (a tuple of them for several, nested as an LSTM's ``(x, (h, c))``)
    and their names: ``X``, or ``X0``, ``X1``, ... for several; ``X1.0``, ``X1.1`` inside a
    nested one."""

    def arrays(value: Any) -> Any:
        return tuple(arrays(v) for v in value) if isinstance(value, tuple) else np.asarray(value)

    if not isinstance(x, tuple):
        return [arrays(x)], ["X"]
    return [arrays(v) for v in x], [f"X{i}" for i in range(len(x))]


def _leaves(value: Any, name: str) -> list[tuple[str, Any]]:
    """``(name, array)`` for every array of a (nested) input."""
    if isinstance(value, tuple):
        return [leaf for j, v in enumerate(value) for leaf in _leaves(v, f"{name}.{j}")]
    return [(name, value)]


def _grad_leaves(grad: Any, like: Any, name: str) -> list[tuple[str, Any]]:
    """A returned gradient matched to the input it is for, leaf by leaf (None where the
    backward returned none, or not nested as the input is)."""
    if isinstance(like, tuple):
        fits = isinstance(grad, (tuple, list)) and len(grad) == len(like)
        return [
            leaf
            for j, v in enumerate(like)
            for leaf in _grad_leaves(grad[j] if fits else None, v, f"{name}.{j}")
        ]
    return [(name, None if grad is None else np.asarray(grad))]


def _by_name(dx: Any, xs: list[Any], names: list[str]) -> dict[str, Any]:
    """What a backward returned, as one gradient per input array, by name."""
    per = _per_input(dx, len(xs))
    return {
        n: g for d, x, name in zip(per, xs, names, strict=True) for n, g in _grad_leaves(d, x, name)
    }


def _copied(value: Any) -> Any:
    """Arrays copied, tuples and lists of them too (nested, as outputs may be)."""
    if isinstance(value, (tuple, list)):
        return type(value)(_copied(v) for v in value)
    return np.array(value)


def _random_like(y: Any, rng: np.random.Generator) -> Any:
    """An upstream gradient for each output, nested as the outputs are."""
    if isinstance(y, (tuple, list)):
        return tuple(_random_like(v, rng) for v in y)
    return rng.standard_normal(y.shape).astype(y.dtype if y.dtype.kind == "f" else np.float64)


def _first(value: Any) -> np.ndarray:
    while isinstance(value, (tuple, list)):
        value = value[0]
    return np.asarray(value)


def _backward(module: Any, g: Any) -> Any:
    """The module's backward with one gradient per output."""
    return module.backward(*g) if isinstance(g, tuple) else module.backward(g)


def _per_input(dx: Any, n: int) -> list[Any]:
    """What a backward returned, one entry per input (a lone input: its gradient itself)."""
    if n == 1:
        return [dx]
    if not isinstance(dx, (tuple, list)) or len(dx) != n:
        return [None] * n  # not one gradient per input: none of them can be told apart
    return list(dx)


def _dot(g: Any, y: Any) -> float:
    """sum(g * y) over every output: the cost whose gradients a backward computes."""
    if isinstance(y, (tuple, list)):
        return sum(_dot(a, b) for a, b in zip(g, y, strict=True))
    return float(np.sum(np.asarray(g, np.float64) * np.asarray(y, dtype=np.float64)))


def _reference(module, reference, xs, g, ran, names) -> tuple[dict[str, np.ndarray], str]:
    """The reference gradients by name, and how they were computed (on a copy of the
    reference, whose own gradients stay as they were). ``ran``: the copy of ``module`` whose
    forward and backward are being checked (its dropout masks are the ones to differentiate)."""
    if reference is None:
        return _finite_differences(module, xs, g, ran, names), "central differences in float64"
    ref = copy.deepcopy(reference)
    if isinstance(ref, Module):
        ref(*xs)
        for p in ref.parameters():
            p.grad = None
        grads = _by_name(_backward(ref, g), xs, names)
        grads.update({n: p.grad for n, p in ref.named_parameters()})
        return grads, f"handprop's {reference!r}"
    import torch  # a torch module: the caller has torch

    ref.zero_grad(set_to_none=True)

    def tensors(value: Any) -> Any:
        if isinstance(value, tuple):
            return tuple(tensors(v) for v in value)
        return torch.tensor(value, requires_grad=value.dtype.kind == "f")

    txs = [tensors(x) for x in xs]
    ty = ref(*txs)
    outputs, grads_out = (ty, g) if isinstance(ty, tuple) else ((ty,), (g,))
    torch.autograd.backward(
        outputs,
        [torch.as_tensor(a, dtype=t.dtype) for a, t in zip(grads_out, outputs, strict=True)],
    )
    leaves = [leaf for t, name in zip(txs, names, strict=True) for leaf in _leaves(t, name)]
    grads = {n: None if t.grad is None else t.grad.numpy() for n, t in leaves}
    grads.update({n: p.grad.numpy() for n, p in ref.named_parameters()})
    return grads, f"torch's {reference!r}"


def _float64(module: Module) -> Module:
    clone = copy.deepcopy(module)
    for p in clone.parameters():
        p.data = p.data.astype(np.float64)
    return clone


@dataclass
class _Numeric:
    """A tensor's finite differences: the central one, and where a perturbation crossed one
    of the module's kinks, the two one-sided ones (any of the three is a valid derivative
    there; which one torch takes is for a handprop or torch reference to say)."""

    central: np.ndarray
    plus: np.ndarray
    minus: np.ndarray
    at_kink: np.ndarray

    def closest(self, got):
        """``got``, where it matches a one-sided slope at a kink, replaced by the central
        difference (so that it passes); elsewhere as it is."""
        if got is None or np.shape(got) != self.central.shape or not self.at_kink.any():
            return got
        got = np.asarray(got, dtype=np.float64).copy()
        for side in (self.plus, self.minus):
            hit = self.at_kink & (np.abs(got - side) <= 1e-6 + 1e-4 * np.abs(side))
            got[hit] = self.central[hit]
        return got


def _finite_differences(module, xs, g, ran, names) -> dict[str, _Numeric]:
    """dJ/d(each tensor) of J = sum(g * module(x)) by central differences in float64, with
    the module's kinks watched (``kinks_at`` values, or ``branches`` as for max pooling).

    A training ``Dropout`` inside (or a recurrent layer's dropout) keeps the mask of the
    forward that ``ran`` (as gradcheck does): a new mask for every evaluation would
    differentiate noise."""
    net = _float64(module)
    for copy_, original in zip(net.modules(), ran.modules(), strict=True):
        if _draws_masks(copy_) and original.training and original.mask is not None:
            copy_._fixed_mask = original.mask

    def float64(value: Any) -> Any:  # indices and masks stay as they are, and unperturbed
        if isinstance(value, tuple):
            return tuple(float64(v) for v in value)
        return np.array(value) if value.dtype.kind in "iub" else np.array(value, np.float64)

    x64s = [float64(x) for x in xs]

    def evaluate() -> tuple[float, list[np.ndarray]]:
        """The cost, and which side of its kinks every call of a module with kinks was on:
        the module's own and those inside it (a ReLU inside a block), in the order they ran
        (watched through ``_contract._watchers``)."""
        sides: list[np.ndarray] = []

        def watch(m: Any, xin: Any, more: tuple) -> None:
            kinks = tuple(getattr(m, "kinks_at", ()))
            if not kinks and not hasattr(m, "branches"):
                return
            v = np.asarray(xin, dtype=np.float64)
            origin = more[0] if getattr(m, "role", None) == "loss" and more else 0
            origin = getattr(m, "kink_origin", origin)
            sides.extend(v - origin > k for k in kinks)
            if hasattr(m, "branches"):
                sides.append(m.branches(v))

        _watchers.append(watch)
        try:
            with no_grad():
                value = _dot(g, net(*x64s))
        finally:
            _watchers.remove(watch)
        return value, sides

    leaves = [leaf for x, name in zip(x64s, names, strict=True) for leaf in _leaves(x, name)]
    grads = {name: _numeric(a, evaluate) for name, a in leaves if a.dtype.kind == "f"}
    for name, p in net.named_parameters():
        grads[name] = _numeric(p.data, evaluate)
    return grads


def _numeric(array: np.ndarray, evaluate) -> _Numeric:
    """The finite differences of the cost for every element of ``array`` (changed in place
    and restored), and whether its perturbation crossed a kink."""
    base, before = evaluate()
    central, plus_side, minus_side = (np.zeros(array.shape) for _ in range(3))
    at_kink = np.zeros(array.shape, bool)
    for index in np.ndindex(array.shape):
        original = array[index]
        array[index] = original + EPS
        plus, after_plus = evaluate()
        array[index] = original - EPS
        minus, after_minus = evaluate()
        array[index] = original
        central[index] = (plus - minus) / (2 * EPS)
        plus_side[index], minus_side[index] = (plus - base) / EPS, (base - minus) / EPS
        at_kink[index] = len(after_plus) != len(before) or any(
            not (np.array_equal(b, p) and np.array_equal(b, m))
            for b, p, m in zip(before, after_plus, after_minus, strict=False)
        )
    return _Numeric(central, plus_side, minus_side, at_kink)


def _compare(name, got, right, rtol, atol) -> tuple[TensorCheck, bool]:
    right = np.asarray(right, dtype=np.float64)
    if got is None or np.shape(got) != right.shape or not _real(got):
        shape = None if got is None else tuple(np.shape(got))
        return TensorCheck(name, shape, right.shape, np.inf, np.inf, False), False
    got = np.asarray(got, dtype=np.float64)
    err = np.abs(got - right)
    scale = np.maximum(np.abs(got), np.abs(right))
    rel = np.divide(err, scale, out=np.zeros_like(err), where=scale > 0)
    ok = bool(np.all(err <= atol + rtol * np.abs(right)))
    row = TensorCheck(
        name, right.shape, right.shape, float(err.max(initial=0)), float(rel.max(initial=0)), ok
    )
    if not ok:  # NaN counts as the largest difference (np.argmax finds the first NaN)
        worst = np.unravel_index(np.argmax(np.where(np.isnan(err), np.inf, err)), err.shape)
        row.worst = tuple(int(i) for i in worst)
        row.worst_got, row.worst_expected = float(got[worst]), float(right[worst])
    return row, ok


# --- naming the mistake ------------------------------------------------------------------------


@dataclass
class _Context:
    """What a mistaken backward could have used: the module, x, its output y, g; and the
    reference, whose kinks count when a learner's module declares none."""

    module: Module
    x: np.ndarray
    y: np.ndarray
    g: np.ndarray
    reference: Any = None
    #: per parameter name, the gradients its backward set over (shares it overwrote)
    discarded: dict[str, list[np.ndarray]] = field(default_factory=dict)
    #: every input, every upstream gradient and the inputs' names (a mistaken reference's run)
    run: tuple = ((), None, ())
    #: the gradients of each mistaken copy of the reference, computed once when first needed
    mistaken: dict[int, dict[str, Any]] = field(default_factory=dict)


def _close(a, b, rtol, atol) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= atol + rtol * np.abs(b)))


def _diagnose(name, got, right, rtol, atol, c: _Context) -> Mistake | None:
    """The first classic mistake that reproduces ``got`` from the right gradient ``right``."""
    right = np.asarray(right, dtype=np.float64)
    what = "dJ/dx" if name == "X" else name
    if got is None and recurrent.recurrent(c.reference) and name[:2] == "X1":  # a state's
        return Mistake(name, "h-path-dropped", recurrent.H_PATH_HINT.format(what=what))
    if got is None:
        return Mistake(name, "wrong-shape", f"{what}: your backward gave no gradient")
    if not _real(got):
        return Mistake(name, "wrong-dtype", _dtype_hint(what, got))
    got = np.asarray(got, dtype=np.float64)
    checks = (
        _overwrite_mistake,
        _recurrent_mistakes,
        _repeated_index_mistake,
        _batch_mistakes,
        _product_mistakes,
        _value_mistakes,
        _shape_mistake,
        _kink_mistakes,
    )
    for check in checks:  # the specific explanations before the general ones
        found = check(what, got, right, rtol, atol, c)
        if found is not None:
            return Mistake(name, *found)
    return None


def _real(got) -> bool:
    """Whether a gradient holds real numbers (a complex or non-numeric one never passes: its
    cast to float64 would drop the imaginary part with only a warning)."""
    return np.asarray(got).dtype.kind in "fiub"


def _dtype_hint(what: str, got) -> str:
    return (
        f"{what}: your gradient has dtype {np.asarray(got).dtype}; the gradient of a real "
        "function of real numbers is real (float): where did a complex or other number come in?"
    )


def _overwrite_mistake(what, got, right, rtol, atol, c):
    """A parameter used several times whose backward set ``.grad`` instead of adding to it:
    the right gradient is what it kept plus the shares it overwrote."""
    shares = c.discarded.get(what)
    if not shares or got.shape != right.shape:
        return None
    total = got + sum(np.asarray(s, dtype=np.float64) for s in shares)
    if _close(total, right, rtol, atol):
        uses = len(shares) + 1
        if recurrent.recurrent(c.reference):  # a layer's own loop over time steps
            return "not-summed-over-time", recurrent.OVERWRITTEN_HINT.format(what=what, uses=uses)
        return "overwritten-shared", (
            f"{what}: your backward set {what}.grad where it must add to it: the parameter is "
            f"used {uses} times, and each use's backward adds its share "
            f"(accumulate_grad, or grad = grad + ...); the last share replaced the others"
        )
    return None


def _recurrent_mistakes(what, got, right, rtol, atol, c):
    """Against a recurrent or attention reference: gate blocks in another order, or the
    gradient of a reference made to commit a classic mistake (see ``_recurrent_mistakes``
    and ``_attention_mistakes``)."""
    reference = recurrent.recurrent(c.reference)
    if reference is not None:
        found = recurrent.gates_order(
            what, got, right, lambda a, b: _close(a, b, rtol, atol), reference
        )
        if found is not None:
            return found
        mistakes = recurrent.variants(reference)
    else:
        mistakes = attention.variants(c.reference)
    name = "X" if what == "dJ/dx" else what
    xs, g, names = c.run
    for number, (code, hint, make) in enumerate(mistakes):
        if number not in c.mistaken:
            c.mistaken[number] = _reference(None, make(), xs, g, None, names)[0]
        wrong = c.mistaken[number].get(name)
        if wrong is None or _close(wrong, right, rtol, atol):  # the mistake changes nothing here
            continue
        if _close(got, np.asarray(wrong, dtype=np.float64), rtol, atol):
            return code, hint.format(what=what)
    return None


def _batch_mistakes(what, got, right, rtol, atol, c):
    """A transposed product, or one gradient per sample for a shared parameter."""
    if got.ndim == 2 and _close(got.T, right, rtol, atol) and not _close(got, right, rtol, atol):
        return "transposed", (
            f"{what}: your gradient is the right one transposed, {got.shape} for "
            f"{right.shape}: check the order of the matrix product (g.T @ x, not x.T @ g)"
        )
    if got.shape[1:] == right.shape and _close(got.sum(axis=0), right, rtol, atol):
        samples = "the one sample" if got.shape[0] == 1 else f"all {got.shape[0]} samples"
        return "not-summed-over-batch", (
            f"{what}: you return one gradient per sample, shape {got.shape}; the parameter "
            f"is shared by {samples}, so its gradient is their sum over the batch axis, "
            f"shape {right.shape}"
        )
    return None


def _shape_mistake(what, got, right, rtol, atol, c):
    if got.shape != right.shape:
        return "wrong-shape", (
            f"{what}: your gradient has shape {got.shape}, but a gradient has the shape of "
            f"what it is the gradient of: {right.shape}"
        )
    return None


def _value_mistakes(what, got, right, rtol, atol, c):
    """The right numbers with the other sign, or times a factor."""
    if got.shape != right.shape:
        return None
    if _close(-got, right, rtol, atol):
        return "sign", f"{what}: your gradient has the opposite sign of the right one"
    norm = float(np.sum(right * right))
    if norm > 0:
        factor = float(np.sum(got * right)) / norm
        if (
            abs(factor - 1) > 1e-6
            and abs(factor) > 1e-12
            and _close(got, factor * right, rtol, atol)
        ):
            return "scaled", f"{what}: " + _factor_hint(factor, c)
    return None


def _factor_hint(factor: float, c: _Context) -> str:
    n = c.x.shape[0] if c.x.ndim else 1
    for k, words in ((n, "the batch size"), (c.x.size, "the number of input elements")):
        if k > 1 and np.isclose(factor, k):
            return (
                f"your gradient is {k} times the right one: {k} is {words} (a sum where "
                "the cost averages, or a missing 1/N)"
            )
        if k > 1 and np.isclose(factor, 1 / k):
            return (
                f"your gradient is 1/{k} of the right one: {k} is {words} (a mean where the "
                "chain rule sums over the batch, or the other way round)"
            )
    return f"your gradient is {factor:.4g} times the right one: a constant factor is off"


def _product_mistakes(what, got, right, rtol, atol, c):
    """g * W elementwise for g @ W, and the diagonal of a non-diagonal Jacobian."""
    weight = getattr(c.module, "weight", None)
    if what == "dJ/dx" and weight is not None and c.g.ndim == 2:
        w = np.asarray(weight.data, dtype=np.float64)
        for label, candidate in (("W", w), ("W.T", w.T)):
            try:
                product = c.g * candidate
            except ValueError:  # shapes that do not broadcast
                continue
            if _close(got, product, rtol, atol):
                return "elementwise-product", (
                    f"{what}: you multiplied elementwise (g * {label}, shape {product.shape}); "
                    f"the chain rule sums over the outputs: dJ/dx = g @ W, shape {right.shape}"
                )
    if what == "dJ/dx" and got.shape == right.shape:
        diagonal = _jacobian_diagonal(c.module, c.x)  # by finite differences: their tolerance
        loose = TOLERANCE["finite differences"]
        if diagonal is not None and _close(got, c.g * diagonal, *loose):
            return "diagonal-only", (
                f"{what}: you used only dy_i/dx_i, the diagonal of the Jacobian; every output "
                "depends on other inputs too (softmax: dJ/dx = y * (g - sum(g * y)) per row)"
            )
    return None


def _jacobian_diagonal(module, x) -> np.ndarray | None:
    """d y_i / d x_i for every element (same-shaped input and output), by central differences
    in float64."""
    net = _float64(module)
    x64 = np.array(x, dtype=np.float64)
    y = net(x64)
    if isinstance(y, tuple) or np.shape(y) != x64.shape:  # (several outputs: no diagonal)
        return None
    out = np.zeros(x64.shape)
    for index in np.ndindex(x64.shape):
        original = x64[index]
        x64[index] = original + EPS
        plus = np.asarray(net(x64))[index]
        x64[index] = original - EPS
        minus = np.asarray(net(x64))[index]
        x64[index] = original
        out[index] = (plus - minus) / (2 * EPS)
    return out


def _repeated_index_mistake(what, got, right, rtol, atol, c):
    """A lookup table's weight gradient (integer input x, a row per index) where a repeated
    index kept one of its gradients: ``dW[x] += g`` assigns once per distinct index."""
    x = np.asarray(c.x)
    if x.dtype.kind not in "iu" or got.ndim != 2 or got.shape != right.shape:
        return None
    rows, g = x.ravel(), np.asarray(c.g, dtype=np.float64).reshape(x.size, -1)
    if g.shape[1] != got.shape[1] or rows.size == np.unique(rows).size:
        return None
    wrong = np.zeros_like(right)
    wrong[rows] += g  # the mistake, as written
    kept = np.isin(np.arange(len(right)), rows)
    kept &= ~((right == 0).all(axis=1) & (got == 0).all(axis=1))  # (a padding row: none)
    if np.allclose(got[kept], wrong[kept], rtol=rtol, atol=atol):
        repeated = int(np.argmax(np.bincount(rows) > 1))  # the first index read twice
        return "repeated-index", (
            f"{what}: index {repeated} occurs more than once, and its row kept only one of its "
            "gradients: dW[x] += g assigns once per distinct index; np.add.at(dW, x, g) adds "
            "every occurrence"
        )
    return None


def _kink_mistakes(what, got, right, rtol, atol, c):
    """Right everywhere except where the input sits exactly on one of the module's kinks
    (measured from ``kink_origin``, a loss's target, where a module has one)."""
    owner = c.module if getattr(c.module, "kinks_at", ()) else c.reference
    kinks = tuple(getattr(owner, "kinks_at", ()))
    if what != "dJ/dx" or not kinks or got.shape != c.x.shape:
        return None
    origin = getattr(owner, "kink_origin", None)
    at_kink = np.isin(c.x if origin is None else c.x - origin, kinks)
    wrong = np.abs(got - right) > atol + rtol * np.abs(right)
    if wrong.any() and not (wrong & ~at_kink).any():
        where = tuple(int(i) for i in np.argwhere(wrong)[0])
        g = np.broadcast_to(c.g, got.shape)[where]  # (a loss's g is one number)
        place = f"x = {c.x[where]:g}" if origin is None else "x = target"
        return "kink-choice", (
            f"{what}: right everywhere but at the kink {place} (e.g. element {where}): there "
            f"the derivative does not exist, and the reference takes {right[where] / g:g} "
            f"where yours takes {got[where] / g:g} (torch's choice: ReLU's mask is x > 0, "
            "not x >= 0; the sign of 0 is 0)"
        )
    return None
