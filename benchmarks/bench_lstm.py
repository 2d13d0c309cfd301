"""Time one LSTM training step, handprop against torch eager (CPU) and its limit, and say where
handprop's time goes.

The step (``handprop.bench``'s LSTM row): ``LSTM(64, 256)`` over 50 time steps of a batch of
32, float32, the output sequence against a target by mean squared error, SGD (lr 0.01).
What is timed and what the limit counts is said once, in ``handprop.bench``; this script runs
that row with the longer repeats, then a profile of handprop's step by phase:

- forward and backward, each timed alone (the forward in training, keeping its caches);
- inside them, the matrix products the layer must do (the input projection of all steps at
  once, the recurrent product at every step, forward and backward, the two weight gradients),
  timed alone on arrays of the same shapes;
- what is left: the gates' elementwise work, the copies into the per-step arrays, and the
  bookkeeping.

Usage:  python benchmarks/bench_lstm.py [--quick]

Not part of the test suite: speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from handprop import bench
from handprop.layers import LSTM
from handprop.losses import MSELoss

CASE = next(case for case in bench.CASES if case[1] == "lstm")


def median_ms(fn, repeats: int, steps: int) -> float:
    fn()
    return statistics.median(bench.timed(fn, steps) for _ in range(repeats)) * 1e3


def profile(repeats: int) -> list[tuple[str, float]]:
    """Milliseconds of each phase of handprop's step (see the module docstring)."""
    steps_t, inputs, hidden = bench.LSTM_SIZES
    batch = CASE[2]
    rng = np.random.default_rng(2)
    lstm = LSTM(inputs, hidden, rng=0)
    X = rng.standard_normal((steps_t, batch, inputs)).astype(np.float32)
    Y = rng.standard_normal((steps_t, batch, hidden)).astype(np.float32)
    loss = MSELoss()

    forward_times, backward_times = [], []
    for _ in range(repeats + 2):
        start = time.perf_counter()
        output, _ = lstm(X)
        loss(output, Y)
        middle = time.perf_counter()
        lstm.backward(loss.backward(), (None, None), input_grad=False)
        forward_times.append(middle - start)
        backward_times.append(time.perf_counter() - middle)
    forward_ms = statistics.median(forward_times[2:]) * 1e3  # (the first two: warm-up)
    backward_ms = statistics.median(backward_times[2:]) * 1e3
    w_ih, w_hh = lstm.weight_ih_l0.data, lstm.weight_hh_l0.data
    h = rng.standard_normal((batch, hidden), dtype=np.float32)
    g = rng.standard_normal((batch, 4 * hidden), dtype=np.float32)
    x2 = X.reshape(-1, inputs)
    hs = rng.standard_normal((steps_t * batch, hidden), dtype=np.float32)
    dz = rng.standard_normal((steps_t * batch, 4 * hidden), dtype=np.float32)

    def recurrent_forward():
        for _ in range(steps_t):
            h @ w_hh.T

    def recurrent_backward():
        for _ in range(steps_t):
            g @ w_hh

    phases = [
        ("forward + cost + backward", forward_ms + backward_ms),
        ("  input projection x W_ih^T, all steps", median_ms(lambda: x2 @ w_ih.T, repeats, 5)),
        ("  h W_hh^T, 50 steps", median_ms(recurrent_forward, repeats, 3)),
        ("  dz W_hh, 50 steps", median_ms(recurrent_backward, repeats, 3)),
        ("  dJ/dW_ih = dgx^T x, all steps", median_ms(lambda: dz.T @ x2, repeats, 5)),
        ("  dJ/dW_hh = dgh^T h, all steps", median_ms(lambda: dz.T @ hs, repeats, 5)),
    ]
    products = sum(ms for _, ms in phases[1:])
    phases.append(("  the rest: gates, copies, bookkeeping", phases[0][1] - products))
    phases[1:1] = [("  of which the forward and cost", forward_ms)]
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter repeats")
    args = parser.parse_args()
    print(f"# {bench.machine(torch)}")
    rows = bench.run(quick=args.quick, torch=torch, progress=bench.progress_bar, cases=[CASE])
    print(bench.table(rows))
    print("\nhandprop's step by phase (ms, medians):")
    for name, ms in profile(5 if args.quick else 21):
        print(f"  {name:<44}{ms:>8.2f}")


if __name__ == "__main__":
    main()
