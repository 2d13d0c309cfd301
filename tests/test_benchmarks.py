"""The benchmarks still run (one tiny configuration, one repeat), and so does ``handprop
bench``, with and without torch. No timing is asserted here: speed is measured by running
them, see docs/performance.md."""

import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import numpy as np

import handprop.cli
from handprop import bench

TINY = [("worked example 2-3-2-1", [2, 3, 2, 1], 2)]


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_a_row_is_measured_on_the_worked_example_shape(optimizer):
    import torch

    row = bench.measure("worked example 2-3-2-1", [2, 3, 2, 1], 2, optimizer, 1, 0.001, torch)
    assert set(row) >= {"handprop_us", "torch_us", "limit_us", "vs_torch", "vs_limit", "peak_mib"}
    assert row["handprop_us"] > 0 and row["torch_us"] > 0 and row["peak_mib"] >= 0
    assert row["verdict"].startswith("<= 0.40x torch: ")


def test_the_verdict_reads_the_goals():
    row = {"network": "784-512-256-10", "vs_torch": 0.5, "vs_limit": 1.2}
    assert bench.verdict(row) == "<= 1.00x torch, <= 1.15x limit: missed"
    assert bench.verdict({**row, "vs_limit": 1.1}).endswith(": met")
    assert bench.verdict({"network": "64-128-64-1", "vs_torch": 0.51, "vs_limit": 9}) == (
        "<= 0.50x torch: missed"
    )
    assert bench.verdict({"network": "LeNet-5", "vs_torch": None, "vs_limit": 1.9}) == (
        "<= 2.00x limit: met"
    )
    assert set(bench.GOALS) == {name for name, _, _ in bench.CASES}


def test_the_limit_moves_the_optimizers_compulsory_bytes():
    """SGD's limit streams 3 numbers per parameter, Adam's 7, and LeNet-5's also 3 passes
    over every activation; its copy moves that many bytes (it reads n and writes n)."""
    model = bench.mlp([4, 8, 1])
    n = sum(p.data.size for p in model.parameters())
    for optimizer, numbers in (("SGD", 3), ("Adam", 7)):
        step = bench.limit(model, np.ones((2, 4), np.float32), optimizer, activations=False)
        assert step.streamed_bytes == numbers * 4 * n
        assert abs(step.copied_bytes - step.streamed_bytes) <= 8
        step()
    lenet, X = bench.lenet5(), np.ones((2, 1, 28, 28), np.float32)
    outputs = 2 * (6 * 28 * 28 + 6 * 28 * 28 + 6 * 14 * 14 + 2 * 16 * 10 * 10 + 16 * 5 * 5)
    outputs += 2 * (400 + 120 + 120 + 84 + 84 + 10)
    step = bench.limit(lenet, X, "SGD", activations=True)
    params = sum(p.data.size for p in lenet.parameters())
    assert step.streamed_bytes == 3 * 4 * params + 3 * 4 * outputs


def test_handprop_bench_prints_the_table_with_and_without_torch(monkeypatch, capsys):
    """``handprop bench`` in a fresh install: with torch, every column; without it (torch
    hidden), the torch columns left out and the goals against torch not judged."""
    monkeypatch.setattr(bench, "CASES", TINY)
    assert handprop.cli.main(["bench"]) == 0
    out = capsys.readouterr()
    assert "| worked example 2-3-2-1 | 2 | SGD |" in out.out and "torch 2." in out.out
    assert "1/2" in out.err and "2/2" in out.err  # the progress bar
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    assert bench._torch() is None
    assert handprop.cli.main(["bench"]) == 0
    out = capsys.readouterr().out
    assert "torch not installed" in out
    row = next(line for line in out.splitlines() if line.startswith("| worked example"))
    assert "| - |" in row and "not measured (torch is not installed)" in row


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
    assert {"handprop_us", "torch_us", "limit_us", "vs_torch", "vs_limit"} <= set(row)
    assert row["handprop_us"] > 0 and row["torch_us"] > 0 and row["peak_mib"] > 0
    assert row["torch_peak_mib"] > 0
    assert bench.verdict({"network": "LeNet-5", "vs_torch": 0.9, "vs_limit": 2.5}).endswith(
        ": missed"
    )
    assert bench.verdict({"network": "LeNet-5", "vs_torch": 0.9, "vs_limit": 1.9}) == (
        "<= 1.00x torch, <= 2.00x limit: met"
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


def test_the_lstm_row_and_its_profile_run():
    """The LSTM row (one repeat) with every column, its limit's bytes (SGD: 3 numbers per
    parameter), and bench_lstm's profile with every phase."""
    import bench_lstm
    import torch

    network, kind, batch = bench_lstm.CASE
    row = bench.measure(network, kind, batch, "SGD", 1, 0.001, torch)
    assert row["handprop_us"] > 0 and row["torch_us"] > 0 and row["limit_us"] > 0
    assert row["verdict"].startswith("<= 1.00x torch: ")
    lstm = bench.LSTM(64, 256, rng=0)
    step = bench.lstm_limit(lstm, batch, "SGD")
    assert step.streamed_bytes == 3 * 4 * sum(p.data.size for p in lstm.parameters())
    phases = dict(bench_lstm.profile(1))  # (what they say is measured by running it)
    assert len(phases) == 8 and "  h W_hh^T, 50 steps" in phases


def test_bench_gpt_runs_its_three_steps():
    import bench_gpt

    handprop_step, torch_step, limit_step = bench_gpt.steps()
    for step in (handprop_step, torch_step, limit_step):
        step()
