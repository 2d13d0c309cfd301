"""Count the CPU instructions of one worked-example-sized training step, phase by phase.

Timings of a step this small (about 150 µs) move by ±30% on a shared machine, more than most
changes one would want to measure. The number of instructions the CPU executes for it does not:
this script runs the step under valgrind's callgrind (a simulated CPU that counts every
instruction), once for 0 steps and once for ``--steps`` steps after the same warm-up, and divides
the difference by the number of steps. Runs are repeatable to about 1% (hash seed fixed).

Each phase is counted cumulatively (zero_grad; + forward; + loss; + its backward; + the model's
backward; + the optimizer step) and reported as the difference to the previous one.
``--against PATH`` counts another checkout of handprop the same way, side by side (for example
``git worktree add /tmp/v010 <commit>``), so that a change's cost is measured, not guessed.

Instructions are not time: a cache miss costs time and is not counted, and in time the step
grew more than its count did (docs/performance.md). They are a repeatable measure of the work
a change adds or removes.

Usage:  python benchmarks/count_instructions.py [--steps N] [--optimizer SGD|Adam] [--against PATH]

Needs valgrind (Debian: apt-get install valgrind). Not part of the test suite's measurements:
tests/test_benchmarks.py only checks that it runs.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHASES = ["zero_grad", "forward", "loss", "loss backward", "backward", "optimizer step"]
WARM_UP = 50

#: The program valgrind runs: the worked example's 2-3-2-1 network (random weights), two
#: samples, BCE; warm_up + steps steps of which only the first ``phases`` phases run.
STEP_PROGRAM = """
import sys
src, optimizer = sys.argv[1], sys.argv[2]
warm_up, steps, phases = (int(a) for a in sys.argv[3:6])
sys.path.insert(0, src)
import numpy as np
from handprop import Sequential
from handprop.layers import Linear, ReLU, Sigmoid
from handprop.losses import BCELoss
from handprop.optim import SGD, Adam

rng = np.random.default_rng(0)
model = Sequential(
    Linear(2, 3, rng=rng), ReLU(), Linear(3, 2, rng=rng), ReLU(), Linear(2, 1, rng=rng), Sigmoid()
)
loss_fn = BCELoss()
opt = (SGD if optimizer == "SGD" else Adam)(model.parameters(), lr=0.01)
X = np.array([[0.35, 0.9], [0.1, -0.6]], dtype=np.float32)
y = np.array([[1.0], [0.0]], dtype=np.float32)
for _ in range(warm_up + steps):
    opt.zero_grad()
    if phases >= 2:
        out = model(X)
    if phases >= 3:
        loss_fn(out, y)
    if phases >= 4:
        g = loss_fn.backward()
    if phases >= 5:
        model.backward(g, input_grad=False)
    if phases >= 6:
        opt.step()
"""


def have_valgrind() -> bool:
    return shutil.which("valgrind") is not None


def instructions(src: Path, steps: int, phases: int, optimizer: str) -> int:
    """Instructions executed by the whole program (start-up included) for ``steps`` steps."""
    result = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-c",
            STEP_PROGRAM,
            str(src),
            optimizer,
            *(str(n) for n in (WARM_UP, steps, phases)),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
        check=True,
    )
    found = re.search(r"Collected\s*:\s*(\d+)", result.stderr)
    if found is None:
        raise RuntimeError(f"valgrind printed no instruction count:\n{result.stderr[-2000:]}")
    return int(found.group(1))


def count(src: Path, steps: int, optimizer: str, phases: int = len(PHASES)) -> dict[str, float]:
    """Instructions per step of each phase (the first ``phases`` of PHASES), and their total.

    The first k phases cost (count(steps) - count(0)) / steps; each phase, the difference."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        runs = {
            (k, n): pool.submit(instructions, src, n, k, optimizer)
            for k in range(1, phases + 1)
            for n in (0, steps)
        }
        cumulative = [
            (runs[k, steps].result() - runs[k, 0].result()) / steps for k in range(1, phases + 1)
        ]
    each = [cumulative[0]] + [b - a for a, b in itertools.pairwise(cumulative)]
    return {**dict(zip(PHASES[:phases], each, strict=True)), "total": cumulative[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="steps counted (default 2000)")
    parser.add_argument("--optimizer", choices=["SGD", "Adam"], default="SGD")
    parser.add_argument("--against", type=Path, help="another checkout of handprop to count")
    args = parser.parse_args()
    if not have_valgrind():
        sys.exit("count_instructions.py needs valgrind (Debian: apt-get install valgrind)")
    columns = {"this checkout": count(ROOT / "src", args.steps, args.optimizer)}
    if args.against is not None:
        columns[str(args.against)] = count(args.against / "src", args.steps, args.optimizer)
    print(f"# instructions per worked-example step, {args.optimizer}, {args.steps} steps counted")
    print("| phase | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for phase in [*PHASES, "total"]:
        print(f"| {phase} | " + " | ".join(f"{c[phase]:,.0f}" for c in columns.values()) + " |")


if __name__ == "__main__":
    main()
