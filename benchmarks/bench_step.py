"""Time one full training step, handprop against torch eager (CPU), float32.

A step is: zero_grad, forward, BCE cost, backward, optimizer step. Both frameworks run in this
process, interleaved (a block of handprop steps, a block of torch steps, a block of the bare
matrix products, repeated), and each reports the median time per step over the blocks; the
ratios are medians of the per-repeat ratios. The "limit" is the time of the bare
NumPy matrix products that any step must do: forward x @ W.T and dW = g.T @ x for every
layer, and dX = g @ W for every layer but the first (nobody needs dJ/dX there).

Usage:  python benchmarks/bench_step.py [--quick] [--markdown]

Not part of the test suite: speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import tracemalloc

import numpy as np
import torch

from handprop import Sequential
from handprop.interop import to_torch
from handprop.layers import Linear, ReLU, Sigmoid
from handprop.losses import BCELoss
from handprop.optim import SGD, Adam

CONFIGS = [  # (name, layer widths, batch size)
    ("worked example 2-3-2-1", [2, 3, 2, 1], 2),
    ("64-128-64-1", [64, 128, 64, 1], 64),
    ("784-512-256-10", [784, 512, 256, 10], 256),
    ("784-2048-2048-1", [784, 2048, 2048, 1], 512),
]

#: handprop's speed goals, per network: (largest handprop/torch, largest handprop/limit or None).
TARGETS = {
    "worked example 2-3-2-1": (0.30, None),
    "64-128-64-1": (0.50, None),
    "784-512-256-10": (1.0, 1.15),
    "784-2048-2048-1": (1.0, 1.10),
}


def verdict(row: dict) -> str:
    """The row's goals and whether this run met them: "<= 1.00x torch, <= 1.15x limit: met"."""
    torch_max, limit_max = TARGETS[row["network"]]
    goals = [f"<= {torch_max:.2f}x torch"]
    met = row["vs_torch"] <= torch_max
    if limit_max is not None:
        goals.append(f"<= {limit_max:.2f}x limit")
        met = met and row["vs_limit"] <= limit_max
    return f"{', '.join(goals)}: {'met' if met else 'missed'}"


def build(widths: list[int]) -> Sequential:
    rng = np.random.default_rng(0)
    modules = []
    for i in range(len(widths) - 1):
        modules.append(Linear(widths[i], widths[i + 1], rng=rng))
        modules.append(ReLU() if i < len(widths) - 2 else Sigmoid())
    return Sequential(*modules)


def handprop_step(model, loss_fn, optimizer, X, y):
    optimizer.zero_grad()
    loss_fn(model(X), y)
    model.backward(loss_fn.backward(), input_grad=False)
    optimizer.step()


def torch_step(model, loss_fn, optimizer, X, y):
    optimizer.zero_grad()
    loss_fn(model(X), y).backward()
    optimizer.step()


def matmul_limit(model: Sequential, X: np.ndarray):
    """A function doing exactly the step's unavoidable matrix products, on the same shapes."""
    linears = [m for m in model if isinstance(m, Linear)]
    rng = np.random.default_rng(1)
    inputs, grads = [], []
    h = X
    for layer in linears:
        inputs.append(h)
        h = rng.standard_normal((X.shape[0], layer.out_features), dtype=np.float32)
        grads.append(h)

    def products():
        for i, layer in enumerate(linears):
            inputs[i] @ layer.weight.data.T  # forward
            grads[i].T @ inputs[i]  # dW
            if i:
                grads[i] @ layer.weight.data  # dX, except for the input layer

    return products


def timed(fn, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


def peak_memory(fn) -> int:
    """Peak bytes NumPy allocates during one call (tracemalloc sees NumPy's allocations)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak


def run(name, widths, batch, optimizer_name, repeats, budget):
    model = build(widths)
    twin = to_torch(model)
    rng = np.random.default_rng(2)
    X = rng.standard_normal((batch, widths[0])).astype(np.float32)
    y = rng.integers(0, 2, size=(batch, widths[-1])).astype(np.float32)
    tX, ty = torch.from_numpy(X), torch.from_numpy(y)
    if optimizer_name == "SGD":
        opt, t_opt = SGD(model.parameters(), lr=0.01), torch.optim.SGD(twin.parameters(), lr=0.01)
    else:
        opt, t_opt = Adam(model.parameters(), lr=1e-3), torch.optim.Adam(twin.parameters(), lr=1e-3)
    loss, t_loss = BCELoss(), torch.nn.BCELoss()

    def hp():
        handprop_step(model, loss, opt, X, y)

    def tt():
        torch_step(twin, t_loss, t_opt, tX, ty)

    limit = matmul_limit(model, X)
    for fn in (hp, tt, limit):  # warm up (first-call allocations, thread pools)
        timed(fn, 3)
    steps = max(1, int(budget / max(timed(hp, 3), 1e-7)))  # a block takes about `budget` s
    times = {"handprop": [], "torch": [], "limit": []}
    for _ in range(repeats):
        times["handprop"].append(timed(hp, steps))
        times["torch"].append(timed(tt, steps))
        times["limit"].append(timed(limit, steps))
    med = {k: statistics.median(v) for k, v in times.items()}
    # Ratios are taken within each repeat (the three blocks ran back to back, under the same
    # machine load) and then the median over repeats: robust to load that comes and goes.
    ratio = {
        other: statistics.median(
            h / o for h, o in zip(times["handprop"], times[other], strict=True)
        )
        for other in ("torch", "limit")
    }
    return {
        "network": name,
        "batch": batch,
        "optimizer": optimizer_name,
        "handprop_us": med["handprop"] * 1e6,
        "torch_us": med["torch"] * 1e6,
        "limit_us": med["limit"] * 1e6,
        "vs_torch": ratio["torch"],
        "vs_limit": ratio["limit"],
        "peak_mib": peak_memory(hp) / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter repeats")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()
    repeats, budget = (5, 0.05) if args.quick else (31, 0.1)
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads); "
        f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}"
    )
    rows = [
        run(name, widths, batch, opt, repeats, budget)
        for name, widths, batch in CONFIGS
        for opt in ("SGD", "Adam")
    ]
    if args.markdown:
        print(
            "| network | batch | optimizer | handprop (µs) | torch (µs) | matmul limit (µs) "
            "| handprop / torch | handprop / limit | peak step memory (MiB) | goal |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['network']} | {r['batch']} | {r['optimizer']} | {r['handprop_us']:.1f} | "
                f"{r['torch_us']:.1f} | {r['limit_us']:.1f} | {r['vs_torch']:.2f} | "
                f"{r['vs_limit']:.2f} | {r['peak_mib']:.2f} | {verdict(r)} |"
            )
    else:
        for r in rows:
            print(
                f"{r['network']:<24} batch {r['batch']:<4} {r['optimizer']:<5} handprop "
                f"{r['handprop_us']:>10.1f} us  torch {r['torch_us']:>10.1f} us  limit "
                f"{r['limit_us']:>10.1f} us  handprop/torch {r['vs_torch']:5.2f}  "
                f"handprop/limit {r['vs_limit']:5.2f}  peak {r['peak_mib']:7.2f} MiB  "
                f"({verdict(r)})"
            )


if __name__ == "__main__":
    main()
