"""Time one LeNet-5 training step, handprop against torch eager (CPU) and against its limit.

The network (``handprop.bench.lenet5``): conv 6@5x5 (padding 2), ReLU, max pool 2, conv
16@5x5, ReLU, max pool 2, Flatten, Linear 400-120, ReLU, 120-84, ReLU, 84-10; cross-entropy;
SGD (lr 0.01). Batch 64 of 1x28x28, float32. What is timed and what the limit counts (the
products on the im2col matrices, the optimizer's traffic, and three streaming passes over
every activation) is said once, in ``handprop.bench``; this script runs that row with more
and longer repeats, and adds torch's peak memory.

Peak memory: NumPy's peak allocation during one handprop step (tracemalloc), and torch's
peak CPU allocation during one step (its profiler's memory events, summed in time order).

Usage:  python benchmarks/bench_cnn.py [--quick] [--batch N]

Not part of the test suite: speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from handprop import bench
from handprop.interop import to_torch


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
    """The LeNet-5 row of ``handprop.bench``, and torch's peak step memory beside it."""
    row = bench.measure("LeNet-5", None, batch, "SGD", repeats, budget, torch)
    model = bench.lenet5()
    twin = to_torch(model)
    X = np.random.default_rng(2).random((batch, 1, 28, 28), dtype=np.float32)
    y = np.random.default_rng(3).integers(0, 10, size=batch)
    t_opt, t_loss = torch.optim.SGD(twin.parameters(), lr=0.01), torch.nn.CrossEntropyLoss()

    def tt():
        t_opt.zero_grad()
        t_loss(twin(torch.from_numpy(X)), torch.from_numpy(y)).backward()
        t_opt.step()

    tt()
    row["torch_peak_mib"] = torch_peak(tt) / 2**20
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 short repeats instead of 21")
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    print(f"# {bench.machine(torch)}")
    row = run(args.batch, *((5, 0.05) if args.quick else (21, 0.2)))
    print(
        f"LeNet-5, batch {row['batch']}, SGD: handprop {row['handprop_us'] / 1e3:.2f} ms, "
        f"torch {row['torch_us'] / 1e3:.2f} ms, limit {row['limit_us'] / 1e3:.2f} ms; "
        f"handprop / torch {row['vs_torch']:.2f}, handprop / limit {row['vs_limit']:.2f} "
        f"({row['verdict']}); peak step memory handprop {row['peak_mib']:.2f} MiB, "
        f"torch {row['torch_peak_mib']:.2f} MiB"
    )


if __name__ == "__main__":
    main()
