"""The sequence examples: sequence_mnist.py (an LSTM reading MNIST digits row by row) and
char_lm.py (a character-level language model on Python's own documentation), each beside its
torch twin."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
pytest.importorskip("sklearn", reason="train_cnn's loader, which sequence_mnist reuses")
import sequence_mnist  # noqa: E402


@pytest.mark.torch
def test_the_row_reader_follows_its_torch_twin_in_float64_and_learns():
    """Two epochs on 2,000 digits in float64: the loss curves of handprop and torch agree to
    1e-10 of the first epoch's loss (measured: 0 here, 1.4e-13 on the full 4,000), so every
    step's gradients were torch's; and it learns (measured: loss 2.21 then 1.47, test accuracy
    0.36 then 0.61, chance being 0.1)."""
    history = sequence_mnist.train(epochs=2, limit=2000, dtype=np.float64)
    assert sequence_mnist.loss_gap(history) < 1e-10
    assert history["test"] == history["torch_test"]
    assert history["loss"][1] < 0.8 * history["loss"][0]
    assert history["test"][-1] > 0.4


@pytest.mark.torch
def test_sequence_mnist_script_prints_each_epoch(capsys):
    sequence_mnist.main(["--epochs", "1"])
    out = capsys.readouterr().out
    assert "epoch   1  loss " in out and "torch: loss" in out
    assert "loss curves apart by at most" in out
    with pytest.raises(SystemExit):
        sequence_mnist.main(["--epochs", "0"])
