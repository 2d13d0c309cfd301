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


def test_bench_step_verdict_reads_the_goals():
    row = {"network": "784-512-256-10", "vs_torch": 0.5, "vs_limit": 1.2}
    assert bench_step.verdict(row) == "<= 1.00x torch, <= 1.15x limit: missed"
    assert bench_step.verdict({**row, "vs_limit": 1.1}).endswith(": met")
    assert bench_step.verdict({"network": "64-128-64-1", "vs_torch": 0.51, "vs_limit": 9}) == (
        "<= 0.50x torch: missed"
    )
    assert set(bench_step.TARGETS) == {name for name, _, _ in bench_step.CONFIGS}


def test_profile_step_runs_and_reports_every_phase(monkeypatch, capsys):
    import profile_step

    monkeypatch.setattr(sys, "argv", ["profile_step.py", "2-3-2-1", "2"])
    profile_step.main()
    out = capsys.readouterr().out
    for phase in ("forward", "backward", "SGD step", "Adam step", "torch.optim.Adam step"):
        assert phase in out, phase


def test_bench_optimizers_runs_every_variant():
    import bench_optimizers

    row = bench_optimizers.run("worked example 2-3-2-1", "RMSprop", repeats=1, budget=0.001)
    assert {"plain_us", "fast_us", "default_us", "torch_us", "fast_vs_plain"} <= set(row)
    assert min(row[k] for k in ("plain_us", "fast_us", "default_us", "torch_us")) > 0
    names = {name for _, name, _ in bench_optimizers.OPTIMIZERS}
    assert names == {"SGD", "Adam", "RMSprop", "Adagrad"}


def test_bench_cnn_runs_and_reads_its_goals():
    import bench_cnn

    row = bench_cnn.run(batch=2, repeats=1, budget=0.001)
    assert {"handprop_ms", "torch_ms", "limit_ms", "vs_torch", "vs_limit"} <= set(row)
    assert row["handprop_ms"] > 0 and row["torch_ms"] > 0 and row["handprop_peak_mib"] > 0
    assert bench_cnn.verdict({"vs_torch": 1.2, "vs_limit": 1.6}).endswith(": missed")
    assert bench_cnn.verdict({"vs_torch": 1.2, "vs_limit": 1.4}) == (
        "<= 1.50x torch, <= 1.50x limit: met"
    )


def test_count_instructions_counts_a_step_under_valgrind():
    import count_instructions

    if not count_instructions.have_valgrind():
        pytest.skip("needs valgrind (.ci/run installs it)")
    src = Path(__file__).resolve().parents[1] / "src"
    # (start-up is about 900 million instructions and varies by a few million from run to run:
    # 500 steps make that a few thousand per step; they cost a tenth of the start-up)
    rows = count_instructions.count(src, steps=500, optimizer="SGD", phases=2)
    assert list(rows) == ["zero_grad", "forward", "total"]
    # a forward of six modules on a handful of numbers: tens of NumPy calls, each thousands
    assert 50_000 < rows["forward"] < 1_000_000
    assert rows["total"] == pytest.approx(rows["zero_grad"] + rows["forward"])
