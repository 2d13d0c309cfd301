"""examples/regularisation.py: an overfitting MLP without and with Dropout and BatchNorm,
trained in handprop and in torch side by side (same weights, batches and dropout masks)."""

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="the example's data ship with scikit-learn")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import regularisation


@pytest.mark.torch
@pytest.mark.parametrize("variant", regularisation.VARIANTS)
def test_each_variant_trains_as_its_torch_twin(variant):
    history = regularisation.train(variant, epochs=25)
    # measured over 100 epochs: 9e-8 (plain, dropout) and 3e-5 (batchnorm) of the first loss
    assert regularisation.loss_gap(history) < 1e-3
    # the test accuracies agree to a few of 1497 images: early on, while many logits are nearly
    # tied, float32 differences flip some predictions (measured: at most 3, with BatchNorm)
    assert np.max(np.abs(np.subtract(history["test"], history["torch_test"]))) <= 5 / 1497
    assert history["loss"][-1] < 0.5 * history["loss"][0]  # it learned


def test_the_plain_network_overfits_and_dropout_and_batchnorm_narrow_the_gap():
    gaps = {}
    for variant in regularisation.VARIANTS:
        history = regularisation.train(variant, epochs=60, with_torch=False)
        gaps[variant] = history["train"][-1] - history["test"][-1]
        if variant == "plain":
            assert history["train"][-1] == 1.0  # learnt by heart
    assert gaps["plain"] > 0.05
    assert gaps["dropout"] < gaps["plain"] and gaps["batchnorm"] < gaps["plain"]


@pytest.mark.torch
def test_the_script_prints_a_line_per_variant_and_draws_the_png(tmp_path, capsys):
    path = tmp_path / "curves.png"
    regularisation.main(["--epochs", "3", "--plot", str(path)])
    out = capsys.readouterr().out
    for variant in regularisation.VARIANTS:
        assert f"{variant:<10} train accuracy" in out
    assert "loss vs torch: max difference" in out
    assert path.read_bytes().startswith(b"\x89PNG")
