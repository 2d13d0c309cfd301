"""The contract's bookkeeping: how ``Module`` makes sure a gradient is never silently wrong.

``Module.__init_subclass__`` wraps every subclass's ``forward`` and ``backward`` (built-in layers
and a learner's alike) with the two functions below, so that a layer's own code is its math:

* ``_contract_forward`` runs the forward, stamps it with a number no other forward has, and
  keeps it *pending* on the module's stack (parallel lists: the stamps, a snapshot of the
  cached values once a later forward would overwrite them, a container's *tape* of the child
  forwards it ran, and the outputs). A forward under ``no_grad`` keeps nothing; one that
  raises keeps nothing either, and drops what its children kept.
* ``_contract_backward`` consumes the most recent pending forward (last in, first out, the
  order in which the chain rule walks back): it puts that forward's cached values back in
  place, and for a container first brings the child forwards on its tape to the top of the
  children's stacks, so that a module shared by two models, or used twice, is always
  differentiated at the forward its caller ran. With no forward left it raises, saying why.
* The journal records what a backward changes (each ``.grad`` before, each forward consumed or
  moved) in flat lists, and a backward that fails puts all of it back.

Everything here runs on every forward and backward of every module: it is kept to plain dict
and list operations, and makes no object per call in the common case (one forward, one
backward), which keeps the garbage collector quiet.
"""

from __future__ import annotations

import functools
import inspect
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from . import grad_mode
from ._arrays import freeze, is_private

if TYPE_CHECKING:
    from .module import Module


# -- the bookkeeping behind the contract -------------------------------------------------------
#
# A module may run forward several times before its backwards (a cell over time steps, a layer
# used twice); each backward consumes the most recent forward not consumed yet: last in, first
# out, the order of the chain rule. Each module keeps its pending forwards in four parallel
# lists (no object made per call in the common case of one forward, one backward):
#
#   _pending_stamps   the forward's stamp (a number that no other forward has);
#   _pending_saved    None while that forward's cached values are the attributes themselves (the
#                     most recent forward: "live"), else a snapshot of them, taken when a later
#                     forward was about to overwrite them;
#   _pending_tapes    for a container, the (child, stamp, child, stamp, ...) of the child
#                     forwards that this forward ran; None for a leaf;
#   _pending_outputs  the shape of what the forward returned, for its backward's one gradient
#                     per output: an array's shape and dtype (not the array: keeping it would
#                     hold every layer's output until its backward), a tuple's nested.
#
# A container's backward first brings its children's forwards from its own tape to the top of
# their stacks, in the order they ran: one Linear in models a and b, forward a, forward b,
# backward a then uses a's forward of the Linear, not b's. _state says what happened last (for
# the error messages): None (never run), _READY (forwards pending), _CONSUMED, _FAILED (a
# forward raised halfway: backward refuses until the next forward), _NO_GRAD; while a forward or
# backward runs, _FORWARD or _BACKWARD (a super().forward call inside then goes straight through).
# The journal records what a backward changes, so that a backward that fails changes nothing.

_READY, _CONSUMED, _FAILED, _NO_GRAD = "ready", "consumed", "failed", "no_grad"
_NOT_GIVEN = object()  # backward() called without a gradient: 1.0 for a scalar output
_FORWARD, _BACKWARD = "in forward", "in backward"
_stamps = itertools.count(1)
_tapes: list[list[Any]] = []  # the tapes of the container forwards now running
_grad_mode = grad_mode._mode  # read on every forward: .enabled is False inside no_grad()
#: functions called as ``watch(module, x, more)`` at every forward run under no_grad, inside
#: blocks too: gradcheck watches the inputs of the modules with kinks with it. (Only the
#: no_grad path looks at it: training forwards never pay for it.)
_watchers: list[Callable[[Any, Any, tuple], None]] = []
#: functions called on every forward and backward while a trace of the calls runs
#: (``explain/calls.py``): ``record("forward", module, inputs, output)`` when a forward has
#: returned, ``record("enter", module, None, None)`` when a backward starts and
#: ``record("backward", module, gradients received, gradient returned)`` when it has returned.
#: Empty otherwise: one check of an empty list per call.
_recorders: list[Callable[[str, Any, Any, Any], None]] = []
#: a module's own bookkeeping: never part of what its forward caches
_INTERNAL = frozenset(
    (
        "_parameters",
        "_modules",
        "_buffers",
        "_non_persistent_buffers",
        "training",
        "_state",
        "_pending_stamps",
        "_pending_saved",
        "_pending_tapes",
        "_pending_outputs",
    )
)


class _Journal:
    """What the backward now running has changed, so that a failure can put it back.

    ``grads`` holds parameter, its grad before, parameter, ... (two appends, no tuple, per
    gradient); ``undo`` holds one tuple per change to a module's pending forwards,
    ``(what, module, a, b, c, d, e)``, undone last first by ``_undo``."""

    __slots__ = ("active", "grads", "retain", "undo")

    def __init__(self) -> None:
        self.active = False  # a backward is running
        self.grads: list[Any] = []  # parameter, its grad before, parameter, ...
        self.undo: list[tuple] = []  # (what, module, a, b, c, d, e) per change
        self.retain = False  # retain_graph=True: the forwards stay pending

    def open(self, retain: bool) -> bool:
        """Start journaling for the outermost backward (whether this is it: the backwards it
        calls write into the same journal)."""
        if self.active:
            return False
        self.active, self.retain = True, retain
        return True

    def finish(self, failed: bool) -> None:
        """Put every grad and module back if the backward failed; then forget it all."""
        if failed:
            grads = self.grads
            for i in range(len(grads) - 2, -1, -2):
                grads[i].grad = grads[i + 1]
            for change in reversed(self.undo):
                _undo(*change)
        self.grads.clear()
        self.undo.clear()
        self.active = False


#: What a backward changed in a module's pending forwards (the journal's "what"):
_POPPED = "popped"  # a, b, c, d: the consumed forward's stamp, saved, tape, output; e: state
_MADE_LIVE = "made live"  # a: the snapshot put back into the attributes
_MOVED = "moved"  # a: where the forward was in the stack; b: the snapshot taken of the top


def _undo(what: str, module: Module, a: Any, b: Any, c: Any, d_: Any, e: Any) -> None:
    """Undo one change a backward made to ``module``'s pending forwards."""
    d = module.__dict__
    stamps, saved, tapes = d["_pending_stamps"], d["_pending_saved"], d["_pending_tapes"]
    outputs = d["_pending_outputs"]
    if what is _POPPED:
        stamps.append(a)
        saved.append(b)
        tapes.append(c)
        outputs.append(d_)
        d["_state"] = e
    elif what is _MADE_LIVE:
        saved[-1] = a
    else:  # _MOVED: back to where it was; the top that lost its place is live again
        stamps.insert(a, stamps.pop())
        saved.insert(a, saved.pop())
        tapes.insert(a, tapes.pop())
        outputs.insert(a, outputs.pop())
        if b is not None:
            _restore(module, b)
            saved[-1] = None


_journal = _Journal()


def _snapshot(module: Module) -> Any:
    """The values a forward cached: the declared ``_cache`` attributes (handprop's layers), or
    every plain attribute (a learner's layer, which declares none)."""
    d = module.__dict__
    names = type(module)._cache
    if names:
        return tuple(d[name] for name in names)
    registered = (*d["_parameters"], *d["_modules"], *d["_buffers"])
    return {k: v for k, v in d.items() if k not in _INTERNAL and k not in registered}


def _restore(module: Module, cache: Any) -> None:
    d = module.__dict__
    if isinstance(cache, tuple):
        for name, value in zip(type(module)._cache, cache, strict=True):
            d[name] = value
    else:
        d.update(cache)


def _contract_forward(forward: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a subclass's ``forward``: stamp it, keep it pending for a backward, record it on
    the parent's tape, honour no_grad; and guard its arrays, the same for every module:
    every array input is made private before the forward sees it (the caller's own array is
    copied; another module's read-only output is not), and the outputs and the declared
    ``_cache`` arrays are made read-only after it, so nothing a forward keeps for its
    backward can be changed by anyone in between. (This wrapper runs on every forward of
    every module: it is kept to plain dict and list operations.)
    """

    @functools.wraps(forward)
    def contract_forward(self: Module, x: Any, *more: Any, **options: Any) -> Any:
        d = self.__dict__
        state = d.get("_state", _FORWARD)
        if state == _FORWARD:  # super().forward(x) inside a forward, or no __init__ yet
            if "_state" not in d:
                raise _no_init_error(self)
            return forward(self, x, *more, **options)
        if not _grad_mode.enabled:
            return _forward_without_grad(self, forward, x, more, options)
        x = _private_input(x)
        if more or options:
            more, options = _private_inputs(more, options)
        saved = d["_pending_saved"]
        if saved and saved[-1] is None:  # the live forward's values are about to be replaced
            saved[-1] = _snapshot(self)
        run = _run_container if d["_modules"] else _run_leaf
        y, tape = run(self, forward, x, more, options)
        stamp = next(_stamps)
        d["_pending_stamps"].append(stamp)
        saved.append(None)
        d["_pending_tapes"].append(tape)
        outline = _outline(y)
        d["_pending_outputs"].append(_Several(outline, 1 + len(more)) if more else outline)
        d["_state"] = _READY
        if _tapes:
            parent_tape = _tapes[-1]
            parent_tape.append(self)
            parent_tape.append(stamp)
        _freeze_outputs(self, x, y)
        if _recorders:
            _record("forward", self, (x, *more), y)
        return y

    contract_forward._contract = True  # type: ignore[attr-defined]
    return contract_forward


def _run_leaf(
    self: Module, forward: Callable[..., Any], x: Any, more: tuple, options: dict
) -> tuple[Any, None]:
    """A leaf's ``forward(self, x, ...)`` (no tape: a module it runs itself goes on its
    parent's tape). A forward that raises leaves the module _FAILED."""
    d = self.__dict__
    d["_state"] = _FORWARD
    try:  # (the plain call for one input: a star call costs a tuple and a dict)
        return (forward(self, x, *more, **options) if more or options else forward(self, x)), None
    except BaseException:
        d["_state"] = _FAILED
        raise


def _run_container(
    self: Module, forward: Callable[..., Any], x: Any, more: tuple, options: dict
) -> tuple[Any, list[Any]]:
    """A container's ``forward(self, x, ...)`` and the tape of the child forwards it ran. A
    forward that raises leaves the module _FAILED and its children's forwards of this call
    dropped."""
    d = self.__dict__
    d["_state"] = _FORWARD
    tape: list[Any] = []
    _tapes.append(tape)
    try:
        return forward(self, x, *more, **options), tape
    except BaseException:
        d["_state"] = _FAILED
        _forget(tape)  # the children's forwards of a failed forward: never backwarded
        raise
    finally:
        _tapes.pop()


def _forget(tape: list[Any]) -> None:
    """Drop the pending forwards a tape recorded (those of a container forward that failed)."""
    for i in range(len(tape) - 2, -1, -2):
        child = tape[i].__dict__
        stamps = child["_pending_stamps"]
        if stamps and stamps[-1] == tape[i + 1]:
            stamps.pop()
            child["_pending_saved"].pop()
            child["_pending_outputs"].pop()
            tape_of_child = child["_pending_tapes"].pop()
            if tape_of_child:
                _forget(tape_of_child)
            if not stamps:
                child["_state"] = None


def _private_input(x: Any) -> Any:
    """An input nobody else can change: the caller's array is copied (once: the copy is
    read-only, and so is every module output, which the next module takes as it is)."""
    if x.__class__ is np.ndarray:
        if x.flags.writeable:
            return freeze(x.copy())
        return x if x.base is None or is_private(x) else freeze(x.copy())  # a view: of what?
    if isinstance(x, np.ndarray):  # a subclass
        return x if is_private(x) else freeze(x.copy())
    if x.__class__ is tuple:  # nested inputs, as an LSTM's state (h, c): each made private
        return tuple(_private_input(item) for item in x)
    if hasattr(x, "__array__") or hasattr(x, "__array_interface__"):  # a torch tensor, say:
        try:  # its memory is the caller's; a list or a number converts to a fresh array anyway
            return freeze(np.asarray(x).copy())
        except (TypeError, ValueError, RuntimeError):  # (a tensor that requires grad): the
            return x  # layer's own conversion says why
    return x


def _private_inputs(more: tuple, options: dict) -> tuple[tuple, dict]:
    """The other inputs and the options (a mask, say), each array made private."""
    if more:
        more = tuple(_private_input(m) for m in more)
    if options:
        options = {k: _private_input(v) for k, v in options.items()}
    return more, options


def _freeze_outputs(module: Module, x: Any, y: Any) -> None:
    """Make a forward's outputs read-only (the arrays of a tuple of outputs too, nested as
    LSTM's ``(output, (h_n, c_n))``), and the arrays it cached under its declared ``_cache``
    names; never one of its parameters or buffers, which the optimizer writes. (Making an
    array read-only is always allowed, and cheaper than asking first whether it is.)"""
    d = module.__dict__
    own = d["_parameters"] or d["_buffers"]  # (most layers hold no array: nothing to spare)
    if y.__class__ is np.ndarray:  # (the common case inline: this runs on every forward)
        if not (own and _is_own(module, y)):
            y.setflags(False)
    else:
        _freeze_all(module, y, own)
    for name in type(module)._cache:
        value = d[name]
        if value.__class__ is np.ndarray and value is not x and value is not y:
            if not (own and _is_own(module, value)):
                value.setflags(False)


def _freeze_all(module: Module, y: Any, own: bool) -> None:
    if y.__class__ is np.ndarray:
        if not (own and _is_own(module, y)):
            y.setflags(False)
    elif isinstance(y, (tuple, list)):
        for item in y:
            _freeze_all(module, item, own)


def _is_own(module: Module, array: np.ndarray) -> bool:
    """Whether ``array`` is one of the module's parameter values or buffers."""
    d = module.__dict__
    for param in d["_parameters"].values():
        if param is not None and array is param.data:
            return True
    return any(array is b for b in d["_buffers"].values())


def _forward_without_grad(
    self: Module, forward: Callable[..., Any], x: Any, more: tuple, options: dict
) -> Any:
    """Forward under no_grad: the output only. Whatever the forward assigned to plain
    attributes (its caches) is put back as it was, so the pending training forwards, and their
    backwards, stay intact."""
    d = self.__dict__
    for watch in _watchers:
        watch(self, x, more)
    before = dict(d)
    d["_state"] = _FORWARD
    try:
        return forward(self, x, *more, **options)
    finally:
        registered = (*d["_parameters"], *d["_modules"], *d["_buffers"])
        for key in [k for k in d if k not in registered]:
            if key not in before:
                del d[key]
            elif d[key] is not before[key]:
                d[key] = before[key]
        if not d["_pending_stamps"]:
            d["_state"] = _NO_GRAD


def _contract_backward(backward: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a subclass's ``backward``: consume the most recent pending forward (a container's
    forward first brings its children's forwards to the top); refuse when there is none; pass
    ``input_grad`` only to a backward that takes it; undo everything if it fails.

    ``retain_graph=True`` (torch's name) keeps the forward pending for another backward, whose
    gradients then add to these."""
    raw = backward if _takes_input_grad(backward) else _ignoring_input_grad(backward)

    @functools.wraps(backward)
    def contract_backward(
        self: Module,
        grad_output: Any = _NOT_GIVEN,
        *more: Any,
        input_grad: bool = True,
        retain_graph: bool = False,
    ) -> Any:
        d = self.__dict__
        state = d.get("_state", _BACKWARD)  # (no _state: no __init__, said by the check)
        if state in _NOT_PENDING:  # super().backward inside a backward, or an error
            return _reentrant(self, raw, grad_output, more, input_grad)
        stamps = d["_pending_stamps"]
        if not stamps:
            raise _not_ready_error(self, state)
        journal = _journal
        outermost = journal.open(retain_graph)
        if _recorders:
            _record("enter", self, None, None)
        try:
            grad_input = _backward_of_top(self, raw, grad_output, more, input_grad)
        except BaseException:
            d["_state"] = state
            if outermost:
                journal.finish(failed=True)
            raise
        if not journal.retain:  # consumed: off the stack (put back if a later step fails)
            _pop_top(self, d, state)
        d["_state"] = _AFTER_BACKWARD[bool(stamps)]
        if outermost:
            journal.finish(failed=False)
        if _recorders:
            _record("backward", self, (grad_output, *more), grad_input)
        return grad_input

    contract_backward._contract = True  # type: ignore[attr-defined]
    return contract_backward


def _reentrant(
    self: Module, raw: Callable[..., Any], grad_output: Any, more: tuple, input_grad: bool
) -> Any:
    """``super().backward(g)`` inside the module's own backward: straight through (anything
    else here is an error, which ``_check_reentrant`` raises)."""
    _check_reentrant(self)
    if grad_output is _NOT_GIVEN:
        grad_output = 1.0
    return raw(self, grad_output, *more, input_grad=input_grad)


def _pop_top(module: Module, d: dict, state: Any) -> None:
    """The top forward, consumed: off the stacks, and into the journal's undo list (put back
    if a later step of the same backward fails)."""
    _journal.undo.append(
        (
            _POPPED,
            module,
            d["_pending_stamps"].pop(),
            d["_pending_saved"].pop(),
            d["_pending_tapes"].pop(),
            d["_pending_outputs"].pop(),
            state,
        )
    )


def _record(event: str, module: Module, a: Any, b: Any) -> None:
    """Tell each recorder (a trace of the calls) what just happened; a backward's gradient
    left out (a loss's) is the 1.0 it means."""
    if event == "backward" and a[0] is _NOT_GIVEN:
        a = (1.0, *a[1:])
    for record in _recorders:
        record(event, module, a, b)


def _backward_of_top(
    self: Module, raw: Callable[..., Any], grad_output: Any, more: tuple, input_grad: bool
) -> Any:
    """The module's own backward, run on its top pending forward (its values put in place
    first), with one gradient per output of that forward."""
    d = self.__dict__
    if d["_pending_tapes"][-1] or d["_pending_saved"][-1] is not None:
        _take_top(self)  # (a leaf whose forward is the live one: nothing to do)
    top = d["_pending_outputs"][-1]
    output = top.output if top.__class__ is _Several else top
    if grad_output is _NOT_GIVEN:
        grad_output = _implicit_gradient(self, output)
    if grad_output is None or more or type(output) is tuple:  # several outputs, or None
        grad_output, more = _one_per_output(self, output, grad_output, more)
    d["_state"] = _BACKWARD
    if top.__class__ is _Several:  # a forward of several inputs: one gradient for each
        grads = raw(self, grad_output, *more, input_grad=input_grad)
        return _one_per_input(self, grads, top.inputs, input_grad)
    if more:
        return raw(self, grad_output, *more, input_grad=input_grad)
    return raw(self, grad_output, input_grad=input_grad)  # (a star call costs a tuple)


class _Several:
    """A pending forward of several inputs: its output's outline, and how many inputs its
    backward returns a gradient for."""

    __slots__ = ("inputs", "output")

    def __init__(self, output: Any, inputs: int) -> None:
        self.output, self.inputs = output, inputs


def _one_per_input(self: Module, grads: Any, inputs: int, input_grad: bool) -> Any:
    """What the backward of a forward with several inputs returned: one gradient per input
    (``None`` for an index or a mask), else a ``TypeError`` naming the module (the journal
    then undoes the backward). A loss is the exception: its target is not differentiated, and
    it returns dJ/d(input) alone."""
    if self.role == "loss" or (grads is None and not input_grad):
        return grads
    if not isinstance(grads, (tuple, list)) or len(grads) != inputs:
        got = f"{len(grads)} gradients" if isinstance(grads, (tuple, list)) else "one gradient"
        raise TypeError(
            f"{self._short_name()}: backward() returns one gradient per input of forward(): "
            f"{inputs} inputs, got {got} (None for an input without one: an index, a mask)"
        )
    return grads


_SMALL = 4096  # elements: an output this small is kept as it is, not outlined


class _Outline:
    """What a backward needs to know of an array output: its shape and dtype (for the zeros
    of a ``None`` gradient, and to tell a scalar)."""

    __slots__ = ("dtype", "shape")

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.shape, self.dtype = shape, dtype


def _outline(y: Any) -> Any:
    """A forward's output as its backward needs it: arrays outlined, tuples nested, anything
    else (a loss's float) as it is. (A small array is kept itself: it costs less memory than
    the outline costs time, and this runs on every forward.)"""
    if y.__class__ is np.ndarray:
        return y if y.size <= _SMALL else _Outline(y.shape, y.dtype)
    if isinstance(y, np.ndarray):
        return _Outline(y.shape, y.dtype)
    if isinstance(y, tuple):
        return tuple(_outline(item) for item in y)
    return y


def _implicit_gradient(module: Module, output: Any) -> float:
    """``backward()`` without a gradient: 1.0 for a scalar output (a loss: dJ/dJ = 1, as
    torch's ``J.backward()``); for any other output it must be given."""
    if isinstance(output, (float, int, np.floating, np.integer)) or (
        isinstance(output, (_Outline, np.ndarray)) and output.shape == ()
    ):
        return 1.0
    raise RuntimeError(
        f"{module._short_name()}: backward() needs grad_output, dJ/d(output): only a scalar "
        "output's gradient can be left out (it is then 1.0), as torch's 'grad can be "
        "implicitly created only for scalar outputs'"
    )


def _one_per_output(module: Module, output: Any, grad_output: Any, more: tuple) -> tuple:
    """The gradients a backward receives, one per output of the forward it consumes, nested
    as the outputs are; a ``None`` (an output that does not reach the loss) becomes zeros of
    that output's shape. Returned as ``(first, rest)``, as the backward is called."""
    grads = (grad_output, *more)
    if isinstance(output, tuple):
        if len(grads) != len(output):
            raise TypeError(
                f"{module._short_name()}: backward() takes one gradient per output of forward(): "
                f"{len(output)} outputs, got {len(grads)} gradients"
            )
        grads = tuple(_zeros_where_none(g, y) for g, y in zip(grads, output, strict=True))
    elif more:
        raise TypeError(
            f"{module._short_name()}: backward() takes one gradient per output of forward(): "
            f"1 output, got {len(grads)} gradients"
        )
    else:
        grads = (_zeros_where_none(grad_output, output),)
    return grads[0], grads[1:]


def _zeros_where_none(grad: Any, output: Any) -> Any:
    """``grad`` with zeros of the output's shape and dtype wherever it is None (nested)."""
    if grad is None:
        if isinstance(output, tuple):
            return tuple(_zeros_where_none(None, y) for y in output)
        if isinstance(output, _Outline):
            return np.zeros(output.shape, output.dtype)
        return None if output is None else np.zeros_like(np.asarray(output))
    if isinstance(output, tuple) and isinstance(grad, (tuple, list)) and len(grad) == len(output):
        return tuple(_zeros_where_none(g, y) for g, y in zip(grad, output, strict=True))
    return grad


#: states in which a backward has no pending forward of its own to consume (a backward then is
#: super().backward inside the module's own backward, or an error)
_NOT_PENDING = frozenset((_BACKWARD, _FORWARD, _FAILED))
#: a module's state after a backward: whether forwards are still pending
_AFTER_BACKWARD = (_CONSUMED, _READY)


def _take_top(module: Module) -> None:
    """Make the top pending forward's values the module's attributes: for a container, first
    bring the forwards its own forward ran to the top of its children's stacks."""
    d = module.__dict__
    tape = d["_pending_tapes"][-1]
    if tape:
        _bring_to_top(module, tape)
    saved = d["_pending_saved"][-1]
    if saved is not None:  # an earlier forward's values: put them back in place
        _restore(module, saved)
        d["_pending_saved"][-1] = None
        _journal.undo.append((_MADE_LIVE, module, saved, None, None, None, None))


def _bring_to_top(module: Module, tape: list[Any]) -> None:
    """Move the children's forwards that ``module``'s forward ran (its tape) to the top of
    their stacks, in the order they ran, so that its backward's calls, last first, consume
    exactly those; refuse if one is no longer pending."""
    undo = _journal.undo
    for i in range(0, len(tape), 2):
        child, stamp = tape[i], tape[i + 1]
        d = child.__dict__
        stamps = d["_pending_stamps"]
        if stamps and stamps[-1] == stamp:
            continue  # already on top (the common case: nothing to move)
        try:
            at = stamps.index(stamp)
        except ValueError:
            raise _consumed_child_error(module, i // 2, child) from None
        saved, tapes, outputs = d["_pending_saved"], d["_pending_tapes"], d["_pending_outputs"]
        snapshot = None
        if saved[-1] is None:  # the live top loses its place: keep its values
            snapshot = saved[-1] = _snapshot(child)
        stamps.append(stamps.pop(at))
        saved.append(saved.pop(at))
        tapes.append(tapes.pop(at))
        outputs.append(outputs.pop(at))
        undo.append((_MOVED, child, at, snapshot, None, None, None))


def _takes_input_grad(backward: Callable[..., Any]) -> bool:
    parameters = inspect.signature(backward).parameters
    return "input_grad" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


def _ignoring_input_grad(backward: Callable[..., Any]) -> Callable[..., Any]:
    """A learner's ``backward(self, grad_output)``, callable with ``input_grad=`` like ours."""

    def call(self: Module, grad_output: Any, *more: Any, input_grad: bool = True) -> Any:
        return backward(self, grad_output, *more)

    return call


def _check_reentrant(module: Module) -> None:
    """Backward of a module that is not ready: fine only inside its own backward (a subclass
    calling super().backward); otherwise the error that says why."""
    d = module.__dict__
    if "_state" not in d:
        raise _no_init_error(module)
    if d["_state"] != _BACKWARD:
        raise _not_ready_error(module, d["_state"])


def _no_init_error(module: Module) -> RuntimeError:
    return RuntimeError(
        f"{type(module).__name__}: call super().__init__() in __init__ before using the module"
    )


def _not_ready_error(module: Module, state: str | None) -> RuntimeError:
    name = module._short_name()
    reasons = {
        None: "backward() was called before forward(); run forward(x) first so there is "
        "something to differentiate",
        _CONSUMED: "Trying to backward through the graph a second time: backward() already "
        "ran for every forward() (one more would add the same gradients again); run forward "
        "again first",
        _FAILED: "backward() after a forward() that failed with an error; its cached values "
        "are incomplete: run forward again first",
        _NO_GRAD: "backward() after a forward() run under handprop.no_grad(), which keeps "
        "nothing for backward; run forward outside no_grad",
        _FORWARD: "backward() called while its own forward() is still running; call backward "
        "after forward has returned",
    }
    return RuntimeError(f"{name}: {reasons[state]}")


def _consumed_child_error(module: Module, position: int, child: Module) -> RuntimeError:
    return RuntimeError(
        f"{module._short_name()}: cannot backward: {child._short_name()}, run by this module's "
        "forward, has already been backpropagated through on its own; run this module's "
        "forward again first"
    )
