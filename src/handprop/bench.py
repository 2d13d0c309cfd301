"""``handprop bench``: the speed table of docs/performance.md, measured on your own machine.

One training step (zero_grad, forward, cost, backward, optimizer step) of each network below,
timed three ways in this one process, interleaved (a block of handprop steps, a block of torch
steps, a block of the limit, repeated; medians, and the ratios taken within each repeat):

- **handprop**: the step as a learner writes it;
- **torch**: the same network, weights and optimizer in torch eager on the CPU (where torch
  is installed; without it these columns are left out);
- **the limit**: the work no implementation of the step can avoid, done by NumPy on arrays
  of the step's shapes:

  * the matrix products: every layer's forward ``x @ W.T`` and weight gradient ``g.T @ x``,
    and its input gradient ``g @ W`` but for the first layer (nobody needs dJ/dX); for a
    convolution, the same three on its im2col matrices;
  * the optimizer's memory traffic: every optimizer must read and write its state once per
    step, SGD 3 numbers per parameter (read p and g, write p), Adam 7 (read p, g, m, v; write
    p, m, v), streamed as one plain copy moving that many bytes (NumPy's own copy, timed with
    the rest, so at the bandwidth this machine gives it for that size);
  * for the convolutional network also its activations: each written once in the forward,
    read once and its gradient written once in the backward (3 passes over every module's
    output), streamed the same way;
  * for the LSTM, its products as the layer must do them: the input projection and the two
    weight gradients as one product each over all time steps, and at every step the
    recurrent product ``h W_hh^T`` forward and ``dz W_hh`` backward (the next step needs the
    previous one's result, so those cannot be merged).

  Nothing can go under it: a step must multiply those matrices and move those bytes, and
  here nothing else is done. Fused kernels (torch's, or none at all) still pay it.

The goals are the table's last column (``GOALS``); a row says whether this run met them.
Speed is measured here and in ``benchmarks/``, never asserted in tests.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .grad_mode import no_grad
from .layers import LSTM, Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sigmoid
from .losses import BCELoss, CrossEntropyLoss, MSELoss
from .module import Module, Sequential
from .optim import SGD, Adam

__all__ = ["CASES", "GOALS", "main", "run", "table", "verdict"]

#: (network, layer widths, None for LeNet-5 or "lstm" for the LSTM, batch)
CASES: list[tuple[str, list[int] | str | None, int]] = [
    ("worked example 2-3-2-1", [2, 3, 2, 1], 2),
    ("64-128-64-1", [64, 128, 64, 1], 64),
    ("784-512-256-10", [784, 512, 256, 10], 256),
    ("784-2048-2048-1", [784, 2048, 2048, 1], 512),
    ("LeNet-5", None, 64),
    ("LSTM 64-256, 50 steps", "lstm", 32),
]
#: the LSTM's sizes: time steps, input size, hidden size
LSTM_SIZES = (50, 64, 256)
#: the goals, per network: (largest handprop / torch, largest handprop / limit or None)
GOALS: dict[str, tuple[float, float | None]] = {
    "worked example 2-3-2-1": (0.40, None),
    "64-128-64-1": (0.50, None),
    "784-512-256-10": (1.0, 1.15),
    "784-2048-2048-1": (1.0, 1.10),
    "LeNet-5": (1.0, 2.0),
    "LSTM 64-256, 50 steps": (1.0, None),
}
#: numbers an optimizer must read and write per parameter element and step
TRAFFIC = {"SGD": 3, "Adam": 7}


def _torch() -> Any:
    """torch, or None where it is not installed (the torch columns are then left out)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


# -- the networks ------------------------------------------------------------------------


def mlp(widths: list[int], seed: int = 0) -> Sequential:
    """Linear and ReLU, a Sigmoid at the end (the worked example's shape, any widths)."""
    rng = np.random.default_rng(seed)
    modules: list[Module] = []
    for i in range(len(widths) - 1):
        modules.append(Linear(widths[i], widths[i + 1], rng=rng))
        modules.append(ReLU() if i < len(widths) - 2 else Sigmoid())
    return Sequential(*modules)


def lenet5(seed: int = 0) -> Sequential:
    """LeNet-5: conv 6@5x5 (padding 2), ReLU, max pool 2, conv 16@5x5, ReLU, max pool 2,
    Flatten, Linear 400-120, ReLU, 120-84, ReLU, 84-10."""
    rng = np.random.default_rng(seed)
    return Sequential(
        Conv2d(1, 6, 5, padding=2, rng=rng), ReLU(), MaxPool2d(2),
        Conv2d(6, 16, 5, rng=rng), ReLU(), MaxPool2d(2),
        Flatten(),
        Linear(400, 120, rng=rng), ReLU(),
        Linear(120, 84, rng=rng), ReLU(),
        Linear(84, 10, rng=rng),
    )  # fmt: skip


# -- the limit ---------------------------------------------------------------------------


def limit(model: Sequential, X: np.ndarray, optimizer: str, activations: bool) -> Callable:
    """A function doing the step's unavoidable work on arrays of its shapes (see the module
    docstring): the matrix products, the optimizer's traffic and, with ``activations``, three
    passes over every module's output."""
    rng = np.random.default_rng(1)
    products, h, activation_bytes = [], X, 0
    first = True
    for module in model:
        with no_grad():  # (only the shapes are wanted)
            out = module(h)
        activation_bytes += out.nbytes
        if isinstance(module, Conv2d):
            n, (ho, wo) = h.shape[0], out.shape[2:]
            w = module.weight.data.reshape(module.out_channels, -1)
            cols = rng.standard_normal((n * ho * wo, w.shape[1]), dtype=np.float32)
            g = rng.standard_normal((n * ho * wo, w.shape[0]), dtype=np.float32)
            products.append((cols, w, g, not first))
            first = False
        elif isinstance(module, Linear):
            g = rng.standard_normal(out.shape, dtype=np.float32)
            products.append((np.ascontiguousarray(h), module.weight.data, g, not first))
            first = False
        h = out
    parameter_bytes = sum(p.data.nbytes for p in model.parameters())
    streamed = TRAFFIC[optimizer] * parameter_bytes + (3 * activation_bytes if activations else 0)
    # a copy reads n bytes and writes n: moving `streamed` bytes is a copy of half of them
    source = np.ones(max(1, streamed // 2 // 4), np.float32)
    target = np.empty_like(source)

    def step() -> None:
        for x, w, g, input_grad in products:
            x @ w.T  # forward
            g.T @ x  # weight gradient
            if input_grad:
                g @ w  # input gradient (before col2im, for a convolution)
        np.copyto(target, source)  # the bytes the step must move

    step.streamed_bytes = streamed  # type: ignore[attr-defined]
    step.copied_bytes = 2 * source.nbytes  # type: ignore[attr-defined]  # read + written
    return step


def lstm_limit(lstm: LSTM, batch: int, optimizer: str) -> Callable:
    """The LSTM step's unavoidable work: its products (see the module docstring) and the
    optimizer's traffic."""
    rng = np.random.default_rng(1)
    steps, inputs, hidden = LSTM_SIZES
    w_ih, w_hh = lstm.weight_ih_l0.data, lstm.weight_hh_l0.data
    x = rng.standard_normal((steps * batch, inputs), dtype=np.float32)
    hs = rng.standard_normal((steps * batch, hidden), dtype=np.float32)
    dz = rng.standard_normal((steps * batch, 4 * hidden), dtype=np.float32)
    h, g = hs[:batch], dz[:batch]
    streamed = TRAFFIC[optimizer] * sum(p.data.nbytes for p in lstm.parameters())
    source = np.ones(max(1, streamed // 2 // 4), np.float32)
    target = np.empty_like(source)

    def step() -> None:
        x @ w_ih.T  # the input projection, all steps at once
        for _ in range(steps):
            h @ w_hh.T  # forward, one step
        for _ in range(steps):
            g @ w_hh  # backward, one step: dJ/dh_(t-1)
        dz.T @ x  # dJ/dW_ih, all steps
        dz.T @ hs  # dJ/dW_hh, all steps
        np.copyto(target, source)

    step.streamed_bytes = streamed  # type: ignore[attr-defined]
    step.copied_bytes = 2 * source.nbytes  # type: ignore[attr-defined]
    return step


# -- one row -----------------------------------------------------------------------------


@dataclass
class _Case:
    handprop: Callable[[], None]
    torch: Callable[[], None] | None
    limit: Callable[[], None]


def _lstm_case(batch: int, optimizer: str, torch) -> _Case:
    """One LSTM training step: the output sequence against a target, mean squared error."""
    rng = np.random.default_rng(2)
    steps, inputs, hidden = LSTM_SIZES
    lstm = LSTM(inputs, hidden, rng=0)
    X = rng.standard_normal((steps, batch, inputs)).astype(np.float32)
    Y = rng.standard_normal((steps, batch, hidden)).astype(np.float32)
    loss, opt = MSELoss(), _optimizer(optimizer, lstm.parameters(), None)

    def hp() -> None:
        opt.zero_grad()
        output, _ = lstm(X)
        loss(output, Y)
        lstm.backward(loss.backward(), (None, None), input_grad=False)
        opt.step()

    tt = None
    if torch is not None:
        from .interop import to_torch

        twin, tX, tY = to_torch(lstm), torch.from_numpy(X), torch.from_numpy(Y)
        t_loss, t_opt = torch.nn.MSELoss(), _optimizer(optimizer, twin.parameters(), torch.optim)

        def tt() -> None:
            t_opt.zero_grad()
            t_loss(twin(tX)[0], tY).backward()
            t_opt.step()

    return _Case(hp, tt, lstm_limit(lstm, batch, optimizer))


def _case(network: str, widths: list[int] | str | None, batch: int, optimizer: str, torch) -> _Case:
    """The three step functions of one row, on the same network, weights and data."""
    if widths == "lstm":
        return _lstm_case(batch, optimizer, torch)
    rng = np.random.default_rng(2)
    if widths is None:
        model = lenet5()
        X = rng.random((batch, 1, 28, 28), dtype=np.float32)
        y = rng.integers(0, 10, size=batch)
        loss, t_loss_name = CrossEntropyLoss(), "CrossEntropyLoss"
    else:
        model = mlp(widths)
        X = rng.standard_normal((batch, widths[0])).astype(np.float32)
        y = rng.integers(0, 2, size=(batch, widths[-1])).astype(np.float32)
        loss, t_loss_name = BCELoss(), "BCELoss"
    bare = limit(model, X, optimizer, activations=widths is None)
    tt = None
    if torch is not None:
        from .interop import to_torch

        twin = to_torch(model)
        tX, ty = torch.from_numpy(X), torch.from_numpy(y)
        t_loss = getattr(torch.nn, t_loss_name)()
        t_opt = _optimizer(optimizer, twin.parameters(), torch.optim)

        def tt() -> None:
            t_opt.zero_grad()
            t_loss(twin(tX), ty).backward()
            t_opt.step()

    opt = _optimizer(optimizer, model.parameters(), None)

    def hp() -> None:
        opt.zero_grad()
        loss(model(X), y)
        model.backward(loss.backward(), input_grad=False)
        opt.step()

    return _Case(hp, tt, bare)


def _optimizer(name: str, params, optim) -> Any:
    """SGD (lr 0.01) or Adam (lr 1e-3): handprop's, or torch's with ``optim``."""
    kinds = {"SGD": (SGD, 0.01), "Adam": (Adam, 1e-3)}
    cls, lr = kinds[name]
    return (getattr(optim, name) if optim is not None else cls)(params, lr=lr)


def timed(fn: Callable[[], None], steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


def peak_memory(fn: Callable[[], None]) -> int:
    """Peak bytes NumPy allocates during one call (tracemalloc sees NumPy's allocations)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak


def measure(
    network: str,
    widths: list[int] | str | None,
    batch: int,
    optimizer: str,
    repeats: int,
    budget: float,
    torch: Any = None,
) -> dict[str, Any]:
    """One row: median µs per step of each, the ratios (medians of the per-repeat ratios,
    robust to load that comes and goes), handprop's peak step memory and the verdict."""
    case = _case(network, widths, batch, optimizer, torch)
    fns = {"handprop": case.handprop, "limit": case.limit}
    if case.torch is not None:
        fns["torch"] = case.torch
    for fn in fns.values():  # warm up (first-call allocations, thread pools)
        timed(fn, 3)
    steps = max(1, int(budget / max(timed(case.handprop, 3), 1e-7)))  # a block: ~budget s
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(timed(fn, steps))
    row: dict[str, Any] = {"network": network, "batch": batch, "optimizer": optimizer}
    for name in ("handprop", "torch", "limit"):
        row[f"{name}_us"] = statistics.median(times[name]) * 1e6 if name in times else None
        if name != "handprop":
            row[f"vs_{name}"] = (
                statistics.median(
                    h / o for h, o in zip(times["handprop"], times[name], strict=True)
                )
                if name in times
                else None
            )
    row["peak_mib"] = peak_memory(case.handprop) / 2**20
    row["verdict"] = verdict(row)
    return row


def verdict(row: dict[str, Any]) -> str:
    """The row's goals and whether this run met them (``<= 1.00x torch, <= 1.15x limit:
    met``); a goal against torch is not judged where torch was not measured."""
    torch_goal, limit_goal = GOALS[row["network"]]
    goals, met = [], True
    if row.get("vs_torch") is not None:
        goals.append(f"<= {torch_goal:.2f}x torch")
        met = met and row["vs_torch"] <= torch_goal
    if limit_goal is not None:
        goals.append(f"<= {limit_goal:.2f}x limit")
        met = met and row["vs_limit"] <= limit_goal
    if not goals:
        return f"<= {torch_goal:.2f}x torch: not measured (torch is not installed)"
    return f"{', '.join(goals)}: {'met' if met else 'missed'}"


# -- the table ---------------------------------------------------------------------------


def run(
    quick: bool = True,
    torch: Any = "auto",
    progress: Callable[[int, int, str], None] | None = None,
    cases: list[tuple[str, list[int] | None, int]] | None = None,
) -> list[dict[str, Any]]:
    """Every row: each network with SGD and Adam (LeNet-5 and the LSTM with SGD, as their
    goals are stated).
    ``quick``: 5 repeats of about 0.03 s each (the whole table in well under a minute);
    otherwise 21 of 0.1 s, as ``benchmarks/`` runs it."""
    torch = _torch() if torch == "auto" else torch
    repeats, budget = (5, 0.03) if quick else (21, 0.1)
    jobs = [
        (network, widths, batch, optimizer)
        for network, widths, batch in (CASES if cases is None else cases)
        for optimizer in (("SGD", "Adam") if isinstance(widths, list) else ("SGD",))
    ]
    rows = []
    for done, (network, widths, batch, optimizer) in enumerate(jobs):
        if progress is not None:
            progress(done, len(jobs), f"{network}, {optimizer}")
        rows.append(measure(network, widths, batch, optimizer, repeats, budget, torch))
    if progress is not None:
        progress(len(jobs), len(jobs), "done")
    return rows


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as the Markdown table of docs/performance.md."""
    lines = [
        "| network | batch | optimizer | handprop (µs) | torch (µs) | limit (µs) "
        "| handprop / torch | handprop / limit | peak step memory (MiB) | goal |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['network']} | {r['batch']} | {r['optimizer']} | {_number(r['handprop_us'])} "
            f"| {_number(r['torch_us'])} | {_number(r['limit_us'])} | {_number(r['vs_torch'], 2)} "
            f"| {_number(r['vs_limit'], 2)} | {r['peak_mib']:.2f} | {r['verdict']} |"
        )
    return "\n".join(lines)


def machine(torch: Any) -> str:
    """One line: the processor, cores and library versions the figures belong to."""
    text = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"numpy {np.__version__}"
    )
    if torch is not None:
        text += f", torch {torch.__version__} ({torch.get_num_threads()} threads)"
    else:
        text += ", torch not installed (its columns are left out)"
    return text


def progress_bar(done: int, total: int, what: str, stream=None) -> None:
    """``[#########-----------]  4/9  784-512-256-10, SGD`` on one line, rewritten in place."""
    stream = sys.stderr if stream is None else stream
    width = 24
    filled = width * done // max(total, 1)
    end = "\n" if done == total else ""
    stream.write(f"\r[{'#' * filled}{'-' * (width - filled)}] {done:>2}/{total}  {what:<32}{end}")
    stream.flush()


def main(full: bool = False) -> int:
    """``handprop bench``: the table on this machine, with a progress bar on stderr."""
    torch = _torch()
    print(f"# {machine(torch)}")
    rows = run(quick=not full, torch=torch, progress=progress_bar)
    print(table(rows))
    missed = [r for r in rows if r["verdict"].endswith("missed")]
    print(
        f"\n{len(rows) - len(missed)} of {len(rows)} rows meet their goal; docs/performance.md "
        "gives the figures of the reference machine and, where a goal is missed, where the "
        "time goes."
    )
    return 0
