"""Time one optimizer step alone: handprop's plain loop (foreach=False), its fast path
(foreach=True), its default (foreach=None) and torch.optim's CPU default, float32.

The parameters are the layers (weights and biases) of the worked example 2-3-2-1 (six tiny
arrays) and of 784-512-256-10, or one weight with its bias: 2048 x 784 (6 MiB in float32),
2048 x 2048 (16 MiB) or 4096 x 2048 (32 MiB). Each gradient is fixed and random; every
variant runs a block of steps in turn, repeated, and the median time per step is reported.
This is what decides ``foreach=None``: it should take the fast path exactly where the fast
path is quicker (see handprop/optim/_foreach.py, ``split``).

Usage:  python benchmarks/bench_optimizers.py [--quick] [--markdown]

Not part of the test suite: speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from handprop import Parameter
from handprop import optim as hp_optim

SHAPES = {  # network: the shapes of its parameters
    "worked example 2-3-2-1": [(3, 2), (3,), (2, 3), (2,), (1, 2), (1,)],
    "784-512-256-10": [(512, 784), (512,), (256, 512), (256,), (10, 256), (10,)],
    "2048 x 784 weight": [(2048, 784), (2048,)],
    "2048 x 2048 weight": [(2048, 2048), (2048,)],
    "4096 x 2048 weight": [(4096, 2048), (4096,)],
}

OPTIMIZERS = [  # (label, class name, hyper-parameters)
    ("SGD", "SGD", {"lr": 0.01}),
    ("SGD momentum", "SGD", {"lr": 0.01, "momentum": 0.9}),
    ("Adam", "Adam", {"lr": 1e-3}),
    ("RMSprop", "RMSprop", {"lr": 1e-3}),
    ("RMSprop centered momentum", "RMSprop", {"lr": 1e-3, "centered": True, "momentum": 0.9}),
    ("Adagrad", "Adagrad", {"lr": 1e-2}),
]


def _handprop(shapes, name, hyper, foreach):
    rng = np.random.default_rng(0)
    params = [Parameter(rng.standard_normal(s).astype(np.float32)) for s in shapes]
    for p in params:
        p.grad = rng.standard_normal(p.shape).astype(np.float32) * 1e-3
    return getattr(hp_optim, name)(params, foreach=foreach, **hyper).step


def _torch(shapes, name, hyper):
    gen = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s, generator=gen)) for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen) * 1e-3
    return getattr(torch.optim, name)(params, **hyper).step


def _time(step, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        step()
    return (time.perf_counter() - start) / count * 1e6


def run(network: str, label: str, repeats: int = 15, budget: float = 0.05) -> dict:
    """Median microseconds per step of each variant for one network and optimizer."""
    _, name, hyper = next(o for o in OPTIMIZERS if o[0] == label)
    shapes = SHAPES[network]
    steps = {
        "plain": _handprop(shapes, name, hyper, False),
        "fast": _handprop(shapes, name, hyper, True),
        "default": _handprop(shapes, name, hyper, None),
        "torch": _torch(shapes, name, hyper),
    }
    for step in steps.values():  # warm up: state created, caches filled
        step()
    count = max(1, int(budget / max(_time(steps["plain"], 1) * 1e-6, 1e-9)))
    times = {key: [] for key in steps}
    for _ in range(repeats):
        for key, step in steps.items():
            times[key].append(_time(step, count))
    row = {"network": network, "optimizer": label}
    row.update({f"{key}_us": statistics.median(values) for key, values in times.items()})
    row["fast_vs_plain"] = row["fast_us"] / row["plain_us"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 15")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = parser.parse_args()
    torch.set_num_threads(2)
    rows = [
        run(network, label, repeats=3 if args.quick else 15)
        for network in SHAPES
        for label, _, _ in OPTIMIZERS
    ]
    header = ["network", "optimizer", "plain (us)", "fast (us)", "default (us)", "torch (us)"]
    header.append("fast / plain")
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
    for row in rows:
        cells = [row["network"], row["optimizer"]]
        cells += [f"{row[k]:.1f}" for k in ("plain_us", "fast_us", "default_us", "torch_us")]
        cells.append(f"{row['fast_vs_plain']:.2f}")
        print(("| " + " | ".join(cells) + " |") if args.markdown else "  ".join(cells))


if __name__ == "__main__":
    main()
