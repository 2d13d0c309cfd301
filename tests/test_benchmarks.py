"""The benchmark scripts still run (one tiny configuration, one repeat). No timing is
asserted here: speed is measured by running benchmarks/bench_step.py, see docs/performance.md."""

import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_step


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_bench_step_runs_on_the_worked_example_shape(optimizer):
    row = bench_step.run("worked example", [2, 3, 2, 1], 2, optimizer, repeats=1, budget=0.001)
    assert set(row) >= {"handprop_us", "torch_us", "limit_us", "vs_torch", "vs_limit", "peak_mib"}
    assert row["handprop_us"] > 0 and row["torch_us"] > 0 and row["peak_mib"] >= 0
