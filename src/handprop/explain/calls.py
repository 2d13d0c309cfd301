"""The trace of a model with blocks of a learner's own: every call, forward and backward, a step.

``trace(model, loss_fn, X, y)`` names a plain network's values after the worked example (Z1,
A1, ...). A model with a block in it (a module whose forward calls its children in any
pattern: a residual add, two branches summed, a child used twice) has no such layers, so its
trace records the calls themselves, as they run: each module's forward (innermost first, in
the order they return), then the loss, then each backward. Values are named by the module's
place in the model:

- ``X``, ``Y``, ``J``: the input, the target, the cost;
- ``1.f.0``: the output of the module at ``1.f.0`` (``model[1].f[0]``); a module used again
  is ``1.f.0 (use 2)``, ...;
- ``dJ/d1.f.0``: the gradient of the cost with respect to that output; ``dJ/dX``;
- ``dJ/d1.f.0.weight``: a parameter's gradient (the sum over every use, as ``.grad``).

Where two gradients meet, the page shows the sum: the backward of a block returns the
gradient of its input, which is what its children's backwards returned for it *added*
(``dJ/d0 via 1.f``), plus what the block's own backward added on paths through no child (the
identity of a residual connection: ``the rest``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from html import escape
from typing import Any

import numpy as np

from .._contract import _recorders
from ..module import Module, Sequential
from .heatmap import heat_map
from .stats import time_steps
from .trace import _Named

__all__ = ["Call", "CallTrace", "has_blocks", "trace_calls"]


def has_blocks(model: Module) -> bool:
    """Whether ``model`` holds a block (a module with children that is not a Sequential), or
    is one: then its trace is the trace of its calls."""
    return any(m._modules and not isinstance(m, Sequential) for m in model.modules())


@dataclass
class Call:
    """One forward or backward call of one module."""

    kind: str  # "forward" or "backward"
    path: str  # where the module sits ("1.f.0"); "model" for the model, "loss" for the loss
    module: Module
    reads: list[str]  # the names of the values it received
    writes: str  # the name of the value it returned
    parts: list[tuple[str, np.ndarray]] = field(default_factory=list)  # where gradients meet

    @property
    def depth(self) -> int:
        return 0 if self.path in ("model", "loss") else self.path.count(".") + 1


class CallTrace(_Named):
    """The named values of one forward and backward pass of a model with blocks, and its
    calls in the order they ran (see the module docstring)."""

    def __init__(
        self, model: Module, loss_fn: Any, calls: list[Call], values: dict, time_steps=None
    ) -> None:
        self.model, self.loss_fn, self.calls, self._values = model, loss_fn, calls, values
        #: per recurrent layer's path, its backward's time steps in the order computed:
        #: (which layer and direction, step t, the names of dJ/dh_t and dJ/dc_t)
        self.time_steps: dict[str, list[tuple[str, int, list[str]]]] = time_steps or {}

    def __repr__(self) -> str:
        return f"Trace({len(self.calls)} calls, {self.loss_fn!r}: {', '.join(self._values)})"

    def stats(self) -> str:
        """Per forward call: the output's mean and std, and its gradient's (vanishing or
        exploding gradients show as a grad std that shrinks or grows from call to call, a
        cell's time steps being calls); then, for a full recurrent layer (``LSTM``, ...), the
        size of ``dJ/dh_t`` at each of its time steps (``stats.time_steps``)."""
        lines = [
            f"{'call':<24}{'module':<28}{'mean':>10}{'std':>10}{'grad mean':>12}{'grad std':>11}"
        ]
        for call in self.calls:
            if call.kind != "forward" or call.path in ("model", "loss"):
                continue
            out = np.asarray(_main(self._values[call.writes]), dtype=np.float64)
            grad = _main(self._values.get(f"dJ/d{call.writes}"))
            g = np.asarray(grad, dtype=np.float64) if grad is not None else None
            lines.append(
                f"{call.writes:<24}{_short(call.module):<28}{out.mean():>10.3g}{out.std():>10.3g}"
                + (f"{g.mean():>12.3g}{g.std():>11.3g}" if g is not None else f"{'-':>12}{'-':>11}")
            )
        recurrent = {id(c.module): c.module for c in self.calls if c.kind == "forward"}
        for module in recurrent.values():
            if getattr(module, "grad_norms", None) is not None:
                lines += ["", time_steps(module)]
        return "\n".join(lines)

    def frames(self) -> list[dict[str, Any]]:
        """The steps of the page, one per call: title, formula, shapes, what it reads and
        writes, its numbers."""
        return frames(self)


def _main(value: Any) -> Any:
    """The main array of an output (an LSTM's ``output`` of ``(output, (h_n, c_n))``)."""
    while isinstance(value, (tuple, list)):
        value = value[0] if value else None
    return value


def _short(module: Any) -> str:
    text = type(module).__name__ if module._modules else repr(module)
    return text if len(text) <= 27 else text[:26] + "…"


# -- recording -------------------------------------------------------------------------------


class _Recorder:
    """Turns the contract's events into calls with named values (see ``_contract._recorders``).

    Forwards are recorded as they return, so a block's children before the block; the name
    of what a call read is known only when the call that made it has returned (the model's
    input, X, last of all), so the names of inputs are given at the end (``finish``)."""

    def __init__(self, net: Module, loss: Any) -> None:
        self.paths = {id(m): p for p, m in net.named_modules() if p}
        self.paths[id(net)], self.paths[id(loss)] = "model", "loss"
        self.values: dict[str, Any] = {}
        self.calls: list[Call] = []
        self.names: dict[int, str] = {}  # id(array) -> its name (the arrays stay alive here)
        self.keep: list[Any] = []
        self.uses: dict[int, int] = {}
        self.pending: dict[int, list[tuple[Any, str]]] = {}  # module -> (input, output name)
        self.frames: list[list[tuple[str, Any, Any]]] = []  # open backwards: their children

    def remember(self, name: str, array: Any) -> None:
        self.values[name] = array
        self.names.setdefault(id(array), name)
        self.keep.append(array)

    def __call__(self, event: str, module: Module, a: Any, b: Any) -> None:
        path = self.paths.get(id(module), type(module).__name__)
        if event == "forward":
            self.forward(module, path, a, b)
        elif event == "enter":
            self.frames.append([])
        else:
            self.backward(module, path, a, b)

    def forward(self, module: Module, path: str, inputs: tuple, output: Any) -> None:
        if path == "model":
            self.remember("X", inputs[0])
        elif path == "loss" and len(inputs) > 1:
            self.remember("Y", inputs[1])
        if path == "loss":
            name = "J"
        elif id(output) in self.names:  # a container handing on its last child's output
            name = self.names[id(output)]
        else:
            use = self.uses[id(module)] = self.uses.get(id(module), 0) + 1
            name = path if use == 1 else f"{path} (use {use})"
        self.remember(name, output)
        arrays = [x for x in inputs if isinstance(x, np.ndarray)]
        self.pending.setdefault(id(module), []).append((arrays[0] if arrays else None, name))
        self.calls.append(Call("forward", path, module, arrays, name))  # reads named later

    def backward(self, module: Module, path: str, received: tuple, returned: Any) -> None:
        children = self.frames.pop()
        source, output_name = self.pending[id(module)].pop()  # last in, first out
        # one gradient per output: an LSTMCell's (dJ/dh', dJ/dc') kept together
        self.values.setdefault(
            f"dJ/d{output_name}", received[0] if len(received) == 1 else received
        )
        parts = _meeting(children, returned)
        call = Call("backward", path, module, [f"dJ/d{output_name}"], source, parts)
        self.calls.append(call)  # writes: dJ/d(what it read), named in finish
        if self.frames:  # a child of the backward that called it
            self.frames[-1].append((path, received[0], returned))
        self.keep.append(returned)
        call.returned = returned  # type: ignore[attr-defined]

    def finish(self) -> None:
        """Name what each call read, now that every value has its name."""
        last: dict[str, Call] = {}
        for call in self.calls:
            if call.kind == "forward":
                call.reads = [self.names.get(id(x), f"input of {call.path}") for x in call.reads]
                continue
            call.writes = f"dJ/d{self.names.get(id(call.writes), f'input of {call.path}')}"
            before = last.get(call.writes)
            if before is None or call.returned is not before.returned:  # type: ignore[attr-defined]
                last[call.writes] = call  # (a container handing on its child's gradient: not)
        for call in self.calls:
            if call.kind == "forward":
                continue
            total = call.writes
            if call.returned is not last[total].returned:  # type: ignore[attr-defined]
                call.writes = f"{total} via {call.path}"  # one path's share: not the total
            self.values[call.writes] = call.returned  # type: ignore[attr-defined]
            for child, grad in call.parts:
                self.values[f"{total} via {child}"] = grad
        self.values["dJ/dJ"] = 1.0


def _meeting(children: list[tuple[str, Any, Any]], total: Any) -> list[tuple[str, Any]]:
    """Where gradients meet in a block's backward: the gradients its children's backwards
    returned for its input (those of the input gradient's shape that no later child was given:
    a chain passes its gradient on, a fork adds it), and the rest its own code added (the
    paths through no child). Nothing when only one path reaches the input."""
    if not isinstance(total, np.ndarray) or not children:
        return []
    given = {id(received) for _, received, _ in children}
    parts = [
        (path, returned)
        for path, _, returned in children
        if isinstance(returned, np.ndarray)
        and returned.shape == total.shape
        and id(returned) not in given
    ]
    rest = total - sum(g for _, g in parts) if parts else total
    scale = max(float(np.max(np.abs(total), initial=0.0)), 1.0)
    if np.max(np.abs(rest), initial=0.0) > 1e-6 * scale:
        parts.append(("the rest", rest))  # the paths through no child (a skip connection)
    return parts if len(parts) > 1 else []


def trace_calls(model: Module, loss_fn: Any, X: Any, y: Any) -> CallTrace:
    """Run forward, cost and backward on a copy of ``model``, recording every call.

    The model itself is not changed (its ``.grad`` stay as they were)."""
    net = copy.deepcopy(model)
    net.zero_grad()
    loss = copy.deepcopy(loss_fn)
    recorder = _Recorder(net, loss)
    _recorders.append(recorder)
    try:
        out = net(X)
        cost = loss(out, y)
        grad = loss.backward() if np.ndim(cost) == 0 else loss.backward(np.ones_like(cost))
        net.backward(grad)
    finally:
        _recorders.remove(recorder)
    recorder.finish()
    values = {"X": recorder.values.pop("X"), "Y": np.asarray(y), **recorder.values}
    for name, param in net.named_parameters():
        values[name] = param.data
        values[f"dJ/d{name}"] = param.grad
    steps = {path: _time_steps(path, m, values) for path, m in net.named_modules() if path}
    steps = {path: s for path, s in steps.items() if s}
    return CallTrace(model, loss_fn, recorder.calls, values, steps)


def _time_steps(path: str, module: Module, values: dict) -> list[tuple[str, int, list[str]]]:
    """A recurrent layer's backward through time, step by step in the order it ran (the last
    layer first; each direction from its last step): the gradient that reached ``h_t`` (and
    ``c_t``) at each, from its ``state_grads``, added to ``values`` under its own names."""
    grads = getattr(module, "state_grads", None)
    if grads is None:
        return []
    directions = 2 if module.bidirectional else 1
    length = grads[0].shape[1]
    steps = []
    for k in sorted(range(len(grads[0])), key=lambda k: (-(k // directions), k % directions)):
        reverse = k % directions == 1
        which = f"layer {k // directions}" + (", reverse" if reverse else "")
        for t in range(length) if reverse else range(length - 1, -1, -1):
            names = []
            for state, grad in zip(("h", "c"), grads, strict=False):
                name = f"dJ/d{path}.{state}[{which}, t={t + 1}]"
                values[name] = grad[k, t]
                names.append(name)
            steps.append((which, t + 1, names))
    return steps


# -- the page --------------------------------------------------------------------------------


def frames(t: CallTrace) -> list[dict[str, Any]]:
    """One frame per call, in the order the calls ran (the model's own calls left out: they
    only hand X in and the gradient out)."""
    from .stepper import _numbers, parts

    out, nodes = [], set(_nodes(t))
    for call in t.calls:
        if call.path == "model":
            continue
        who = f"{call.path} ({_short(call.module)})" if call.path != "loss" else "the loss"
        if call.kind == "forward":
            title = f"Forward: {who}"
            formula = f"{call.writes} = {call.path}.forward({', '.join(call.reads)})"
            shown = [call.writes]
        elif call.parts:
            title = f"Backward: {who}, where gradients meet"
            terms = " + ".join(f"[{path}]" for path, _ in call.parts)
            formula = (
                f"{call.writes} = {terms}: the paths from the input to J, each one's gradient, "
                "added (the chain rule sums over every path)"
            )
            shown = [*(f"{call.writes} via {path}" for path, _ in call.parts), call.writes]
        else:
            title = f"Backward: {who}"
            formula = f"{call.writes} = {call.path}.backward({', '.join(call.reads)})"
            shown = [call.writes]
        shapes = ", ".join(
            f"{label} {tuple(np.shape(a))}"
            for n in [*call.reads, call.writes]
            if n in t
            for label, a in parts(n, t[n])
        )
        if call.kind == "backward" and " via " not in call.writes:
            out += _time_step_frames(t, call, who)  # its loop through time, then its result
        if call.kind == "backward":
            out += _softmax_frames(call, who)  # attention: back through its softmax first
        frame = {
            "title": title,
            "formula": formula,
            "shapes": shapes,
            "reads": [r for r in call.reads if r in nodes],
            "writes": [call.writes],
            "values": _numbers(t, shown),
        }
        if call.kind == "forward":
            frame.update(_attention_picture(t, call))
        out.append(frame)
    return out


def _attention_picture(t: CallTrace, call: Call) -> dict[str, str]:
    """An attention's forward: its weights (the first sample's) as a heat map."""
    value = t[call.writes] if call.writes in t else None
    if not (isinstance(value, tuple) and len(value) == 2 and hasattr(call.module, "num_heads")):
        return {}
    weights = value[1]
    if weights is None:  # need_weights=False
        return {}
    first = np.asarray(weights)
    while first.ndim > 2:
        first = first[0]
    return {"picture": heat_map(first, "attention weights, sample 0 (row: query, column: key)")}


def _softmax_frames(call: Call, who: str) -> list[dict[str, Any]]:
    """An attention's backward through its softmax: dJ/d(scores) of the first sample's first
    head as a heat map, with the formula that gives it."""
    grads = getattr(call.module, "score_grads", None)
    if grads is None or not hasattr(call.module, "num_heads"):
        return []
    first = np.asarray(grads)[0, 0]
    rows = [", ".join(f"{v:.4g}" for v in row) for row in first[:8]]
    return [
        {
            "title": f"Backward through the softmax: {who}, sample 0, head 0",
            "formula": (
                "dS = P * (dP - rowsum(dP * P)): every weight of a row depends on every score "
                "of the row, so each score's gradient takes the whole row (a masked key: P = 0, "
                "no gradient); then dq = dS k / sqrt(d), dk = dS^T q / sqrt(d)"
            ),
            "shapes": f"dS {tuple(np.shape(grads))} (N, heads, L, S)",
            "reads": [],
            "writes": [call.writes],
            "values": [f"dS[0, 0]  {first.shape}", *(f"  [{row}]" for row in rows)],
            "picture": heat_map(first, "dJ/d(scores), sample 0, head 0", signed=True),
        }
    ]


def _time_step_frames(t: CallTrace, call: Call, who: str) -> list[dict[str, Any]]:
    """A recurrent layer's backward, one frame per time step in the order its loop ran: the
    gradient that reached h_t (and c_t) there, from above and from the step after."""
    from .stepper import _numbers

    frames_, steps = [], t.time_steps.get(call.path, [])
    for number, (which, step, names) in enumerate(steps):
        first = number == 0 or steps[number - 1][0] != which  # where this layer's loop began
        later = step - 1 if "reverse" in which else step + 1  # the step it comes back from
        before = step + 1 if "reverse" in which else step - 1
        source = "the final state's gradient" if first else f"what step {later} sent back"
        above = (
            "the output" if which.startswith(f"layer {_top_layer(steps)}") else "the layer above"
        )
        cell = " and c (along c times the forget gate f)" if len(names) == 2 else ""
        frames_.append(
            {
                "title": f"Backward through time: {who}, {which}, step t = {step}",
                "formula": (
                    f"dJ/dh_{step} = dJ/dh_{step} from {above} at t = {step} + {source}; the "
                    f"step's backward adds its share into dJ/dW and sends the gradient back "
                    f"through h{cell} to step {before}"
                ),
                "shapes": ", ".join(f"{n} {tuple(np.shape(t[n]))}" for n in names),
                "reads": [],
                "writes": [call.writes],
                "values": _numbers(t, names),
            }
        )
    return frames_


def _top_layer(steps: list[tuple[str, int, list[str]]]) -> int:
    return max(int(which.split()[1].rstrip(",")) for which, _, _ in steps)


def _nodes(t: CallTrace) -> list[str]:
    """The values the page lists, once each, in the order they were made: X and Y, then what
    each call wrote."""
    names = ["X", "Y"]
    for call in t.calls:
        if call.path != "model" and call.writes not in names:
            names.append(call.writes)
    return names


def to_html(t: CallTrace) -> str:
    """The step-through page of a trace of calls: the list of calls beside the frames (the
    page of ``handprop.explain.stepper``, a list of values in place of its graph)."""
    from .stepper import page

    makers = {c.writes: c for c in reversed(t.calls) if c.path != "model"}  # the first maker
    items = []
    for name in _nodes(t):
        call = makers.get(name)
        indent = 18 * max(call.depth - 1, 0) if call else 0
        arrow = "" if call is None else "→ " if call.kind == "forward" else "← "
        who = "" if call is None else f"{call.path} {_short(call.module)}"
        items.append(
            f'<li data-name="{escape(name)}" style="margin-left: {indent}px">{arrow}'
            f'<code>{escape(name)}</code> <span class="who">{escape(who)}</span></li>'
        )
    intro = (
        f"Loss: <code>{escape(repr(t.loss_fn))}</code>. Each call is a step: the forwards as "
        "they\nreturn (the innermost first), then the backwards. Step with the buttons or the "
        "arrow keys."
    )
    style = (
        "#graph ol { font-size: 13px; columns: 2; }\n"
        "#graph li.active { outline: 2px solid #d0452b; }\n"
        "#graph li.written { background: #ffe1d6; }\n"
        "#graph .who { color: #777; }\n"
    )
    title = f"Backpropagation step by step: {type(t.model).__name__}, call by call"
    return page(title, intro, f"<ol>{''.join(items)}</ol>", frames(t), style)
