"""Time one LeNet-5 training step, handprop against torch eager (CPU) and against its limit.

The network: conv 6@5x5 (padding 2), ReLU, max pool 2, conv 16@5x5, ReLU, max pool 2, Flatten,
Linear 400-120, ReLU, 120-84, ReLU, 84-10; cross-entropy; SGD (lr 0.01). Batch 64 of 1x28x28,
float32. A step is zero_grad, forward, cost, backward (no dJ/dX for the input) and the SGD
update, in each library, interleaved in one process (blocks of steps, repeated; medians).

The "limit" is what any implementation of this step must at least do, timed in NumPy on
arrays of the step's shapes:

- the matrix products on the im2col matrices: for each convolution its forward
  ``cols @ W.T``, its weight gradient ``g.T @ cols`` and, but for the first, ``g @ W`` (the
  input gradient before col2im); the same three for each Linear;
- the optimizer's memory traffic: ``p -= lr * g`` over every parameter.

Peak memory: NumPy's peak allocation during one handprop step (tracemalloc), and torch's
peak CPU allocation during one step (its profiler's memory events, summed in time order).

Usage:  python benchmarks/bench_cnn.py [--quick] [--batch N]

Not part of the test suite: speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics

import numpy as np
import torch
from bench_step import peak_memory, timed

from handprop import Sequential
from handprop.interop import to_torch
from handprop.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from handprop.losses import CrossEntropyLoss
from handprop.optim import SGD

GOALS = {"vs_torch": 1.5, "vs_limit": 1.5}


def lenet5(seed: int = 0) -> Sequential:
    rng = np.random.default_rng(seed)
    return Sequential(
        Conv2d(1, 6, 5, padding=2, rng=rng), ReLU(), MaxPool2d(2),
        Conv2d(6, 16, 5, rng=rng), ReLU(), MaxPool2d(2),
        Flatten(),
        Linear(400, 120, rng=rng), ReLU(),
        Linear(120, 84, rng=rng), ReLU(),
        Linear(84, 10, rng=rng),
    )  # fmt: skip


def limit(model: Sequential, X: np.ndarray):
    """A function doing the step's unavoidable work on arrays of its shapes (see above)."""
    rng = np.random.default_rng(1)
    products, h = [], X
    for i, module in enumerate(model):
        out = module(h)
        if isinstance(module, Conv2d):
            n, (ho, wo) = h.shape[0], out.shape[2:]
            w = module.weight.data.reshape(module.out_channels, -1)
            cols = rng.standard_normal((n * ho * wo, w.shape[1]), dtype=np.float32)
            g = rng.standard_normal((n * ho * wo, w.shape[0]), dtype=np.float32)
            products.append((cols, w, g, i > 0))
        elif isinstance(module, Linear):
            g = rng.standard_normal(out.shape, dtype=np.float32)
            products.append((np.ascontiguousarray(h), module.weight.data, g, True))
        h = out
    params = [p.data.copy() for p in model.parameters()]
    grads = [np.ones_like(p) for p in params]

    def step():
        for x, w, g, input_grad in products:
            x @ w.T  # forward
            g.T @ x  # weight gradient
            if input_grad:
                g @ w  # input gradient (before col2im for a convolution)
        for p, g in zip(params, grads, strict=True):
            p -= 0.01 * g

    return step


def torch_peak(fn) -> int:
    """torch's peak CPU allocation during ``fn``: its profiler's memory events, in time order
    (each an allocation, positive, or a release, negative), summed, the highest sum kept."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = [
        (e.time_range.start, e.cpu_memory_usage)
        for e in prof.events()
        if e.cpu_memory_usage and e.device_type == DeviceType.CPU and not e.cpu_children
    ]
    total = peak = 0
    for _, change in sorted(events):
        total += change
        peak = max(peak, total)
    return peak


def run(batch: int = 64, repeats: int = 21, budget: float = 0.2) -> dict:
    model = lenet5()
    twin = to_torch(model)
    rng = np.random.default_rng(2)
    X = rng.random((batch, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, size=batch)
    tX, ty = torch.from_numpy(X), torch.from_numpy(y)
    opt, t_opt = SGD(model.parameters(), lr=0.01), torch.optim.SGD(twin.parameters(), lr=0.01)
    loss, t_loss = CrossEntropyLoss(), torch.nn.CrossEntropyLoss()

    def hp():
        opt.zero_grad()
        loss(model(X), y)
        model.backward(loss.backward(), input_grad=False)
        opt.step()

    def tt():
        t_opt.zero_grad()
        t_loss(twin(tX), ty).backward()
        t_opt.step()

    bare = limit(model, X)
    for fn in (hp, tt, bare):  # warm up
        timed(fn, 3)
    steps = max(1, int(budget / max(timed(hp, 3), 1e-7)))
    times = {"handprop": [], "torch": [], "limit": []}
    for _ in range(repeats):
        times["handprop"].append(timed(hp, steps))
        times["torch"].append(timed(tt, steps))
        times["limit"].append(timed(bare, steps))
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    ratio = {
        other: statistics.median(
            h / o for h, o in zip(times["handprop"], times[other], strict=True)
        )
        for other in ("torch", "limit")
    }
    return {
        "batch": batch,
        "handprop_ms": med["handprop"],
        "torch_ms": med["torch"],
        "limit_ms": med["limit"],
        "vs_torch": ratio["torch"],
        "vs_limit": ratio["limit"],
        "handprop_peak_mib": peak_memory(hp) / 2**20,
        "torch_peak_mib": torch_peak(tt) / 2**20,
    }


def verdict(row: dict) -> str:
    met = all(row[k] <= goal for k, goal in GOALS.items())
    goals = ", ".join(f"<= {goal:.2f}x {k[3:]}" for k, goal in GOALS.items())
    return f"{goals}: {'met' if met else 'missed'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 short repeats instead of 21")
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )
    row = run(args.batch, *((5, 0.05) if args.quick else (21, 0.2)))
    print(
        f"LeNet-5, batch {row['batch']}, SGD: handprop {row['handprop_ms']:.2f} ms, "
        f"torch {row['torch_ms']:.2f} ms, limit {row['limit_ms']:.2f} ms; "
        f"handprop / torch {row['vs_torch']:.2f}, handprop / limit {row['vs_limit']:.2f} "
        f"({verdict(row)}); peak step memory handprop {row['handprop_peak_mib']:.2f} MiB, "
        f"torch {row['torch_peak_mib']:.2f} MiB"
    )


if __name__ == "__main__":
    main()
