"""Time one training step of examples/gpt.py's GPT, handprop against its torch twin (eager,
CPU) and against the step's bare matrix products.

The step: vocabulary 65, context 64, width 128, 4 heads, 4 blocks, batch 16, cross-entropy on
every position, AdamW (lr 3e-3, weight decay 0.1), float32; random tokens (the time does not
depend on the text). Interleaved in one process as ``handprop.bench`` does it (a block of
handprop steps, a block of torch steps, a block of the limit, repeated; medians, and the
ratios taken within each repeat), with NumPy's BLAS and torch each on their default threads.

The limit: every product the step must do and nothing else, on arrays of its shapes: for each
projection (q, k and v in one, the attention's output, the MLP's two, the tied output layer)
its forward, its weight gradient and its input gradient; for each head's attention the two
forward products (q k^T, P v) and the four backward ones; and AdamW's compulsory traffic, 7
numbers per parameter, streamed as one NumPy copy.

Usage:  python benchmarks/bench_gpt.py [--quick]

Not part of the test suite: speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import gpt

from handprop import bench
from handprop.losses import CrossEntropyLoss
from handprop.optim import AdamW

VOCAB, CONTEXT, WIDTH, HEADS, BLOCKS, BATCH = 65, 64, 128, 4, 4, 16


def steps():
    """The three step functions: handprop's, torch's, the limit's."""
    model = gpt.GPT(VOCAB, CONTEXT, WIDTH, HEADS, BLOCKS, seed=0)
    twin = gpt.torch_twin(model)
    rng = np.random.default_rng(1)
    x = rng.integers(0, VOCAB, size=(BATCH, CONTEXT))
    y = rng.integers(0, VOCAB, size=(BATCH, CONTEXT))
    loss, optimizer = CrossEntropyLoss(), AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)

    def handprop_step() -> None:
        optimizer.zero_grad()
        logits = model(x)
        loss(logits.reshape(-1, VOCAB), y.reshape(-1))
        model.backward(loss.backward().reshape(logits.shape))
        optimizer.step()

    t_opt = torch.optim.AdamW(twin.parameters(), lr=3e-3, weight_decay=0.1)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y).reshape(-1)

    def torch_step() -> None:
        t_opt.zero_grad()
        torch.nn.functional.cross_entropy(twin(tx).reshape(-1, VOCAB), ty).backward()
        t_opt.step()

    return handprop_step, torch_step, limit(sum(p.data.nbytes for p in model.parameters()))


def limit(parameter_bytes: int):
    rng = np.random.default_rng(2)
    rows, head_dim = BATCH * CONTEXT, WIDTH // HEADS

    def a(*shape):
        return rng.standard_normal(shape, dtype=np.float32)

    linears = [
        (a(rows, WIDTH), a(3 * WIDTH, WIDTH)),
        (a(rows, WIDTH), a(WIDTH, WIDTH)),
        (a(rows, WIDTH), a(4 * WIDTH, WIDTH)),
        (a(rows, 4 * WIDTH), a(WIDTH, 4 * WIDTH)),
    ]
    linears = [(x, w, a(rows, w.shape[0])) for x, w in linears] * BLOCKS
    linears.append((a(rows, WIDTH), a(VOCAB, WIDTH), a(rows, VOCAB)))  # the tied output
    q, k, v, p = (a(BATCH * HEADS, CONTEXT, n) for n in (head_dim, head_dim, head_dim, CONTEXT))
    source = np.ones(7 * parameter_bytes // 2 // 4, np.float32)  # AdamW: 7 numbers a parameter
    target = np.empty_like(source)

    def step() -> None:
        for x, w, g in linears:
            x @ w.T  # forward
            g.T @ x  # weight gradient
            g @ w  # input gradient
        for _ in range(BLOCKS):
            q @ k.transpose(0, 2, 1), p @ v  # forward: the scores, the weighted values
            p @ v, p.transpose(0, 2, 1) @ v  # backward: dP = dO V^T, dV = P^T dO (same shapes)
            p @ k, p.transpose(0, 2, 1) @ q  # dQ = dS K, dK = dS^T Q
        np.copyto(target, source)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter repeats")
    args = parser.parse_args()
    repeats, steps_per_block = (3, 2) if args.quick else (11, 5)
    handprop_step, torch_step, limit_step = steps()
    fns = {"handprop": handprop_step, "torch": torch_step, "limit": limit_step}
    for fn in fns.values():
        bench.timed(fn, 2)  # warm up
    times = {name: [] for name in fns}
    for done in range(repeats):
        bench.progress_bar(done, repeats, "GPT step")
        for name, fn in fns.items():
            times[name].append(bench.timed(fn, steps_per_block))
    bench.progress_bar(repeats, repeats, "done")
    ms = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    ratio = {
        other: statistics.median(
            h / o for h, o in zip(times["handprop"], times[other], strict=True)
        )
        for other in ("torch", "limit")
    }
    print(f"# {bench.machine(torch)}")
    print(
        "| step | handprop (ms) | torch (ms) | limit (ms) | handprop / torch | "
        "handprop / limit | goal |"
    )
    print("|---|---|---|---|---|---|---|")
    verdict = "met" if ratio["torch"] <= 1.0 else "missed"
    print(
        f"| GPT 4x128, context 64, batch 16, AdamW | {ms['handprop']:.1f} | "
        f"{ms['torch']:.1f} | {ms['limit']:.1f} | {ratio['torch']:.2f} | "
        f"{ratio['limit']:.2f} | <= 1.00x torch: {verdict} |"
    )


if __name__ == "__main__":
    main()
