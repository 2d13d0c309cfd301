"""The sequence examples: sequence_mnist.py (an LSTM reading MNIST digits row by row) and
char_lm.py (a character-level language model on Python's own documentation), each beside its
torch twin."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
pytest.importorskip("sklearn", reason="train_cnn's loader, which sequence_mnist reuses")
import sequence_mnist


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


# --- examples/char_lm.py -----------------------------------------------------------------------
import char_lm  # noqa: E402


def test_the_chunks_read_the_streams_side_by_side_and_say_where_they_start_again():
    data = np.arange(23)
    feed = char_lm.chunks(data, streams=2, length=3)  # 2 streams of 11: 0-10 and 11-21
    x, y, start = next(feed)
    assert (
        start
        and x.tolist() == [[0, 1, 2], [11, 12, 13]]
        and y.tolist() == [[1, 2, 3], [12, 13, 14]]
    )
    x, _, start = next(feed)
    assert not start and x.tolist() == [[3, 4, 5], [14, 15, 16]]
    next(feed)
    x, _, start = next(feed)  # 3 chunks of 3 fit in 11: the streams begin again
    assert start and x[0, 0] == 0


@pytest.mark.torch
def test_the_language_model_follows_its_torch_twin_in_float64():
    """40 chunks of truncated BPTT in float64 (the state carried between chunks, clipping,
    Adam, a cosine schedule): every step's loss equals the torch twin's to 1e-12 (measured:
    at most 8.9e-16), so the carried state, its dropped gradient and the clipping are
    torch's; the loss falls from log(103) = 4.63 (measured: 3.1 over the last 5 steps)."""
    history = char_lm.train(steps=40, streams=8, length=32, dtype=np.float64)
    gap = np.max(np.abs(np.subtract(history["loss"], history["torch_loss"])))
    assert gap < 1e-12
    assert history["loss"][0] == pytest.approx(np.log(103), abs=0.05)
    assert np.mean(history["loss"][-5:]) < 0.75 * history["loss"][0]


def test_a_sample_continues_the_prompt_with_the_texts_characters():
    history = char_lm.train(steps=3, streams=4, length=16, with_torch=False)
    vocab, model = history["vocab"], history["model"]
    written = char_lm.sample(model, vocab, "def ", 50, rng=0)
    assert written.startswith("def ") and len(written) == 54
    assert set(written) <= set(vocab.chars)
    assert written == char_lm.sample(model, vocab, "def ", 50, rng=0)  # its own generator
    assert not model.lstm._pending_stamps  # sampling kept nothing for a backward


@pytest.mark.torch
def test_char_lm_script_prints_losses_and_a_sample(capsys):
    char_lm.main(["--steps", "4", "--sample-every", "2"])
    captured = capsys.readouterr()
    assert "103 characters; loss" in captured.out and "torch's twin:" in captured.out
    assert "what it writes after 4 steps:\ndef " in captured.out
    assert "--- step 2, loss" in captured.err and "4/4" in captured.err  # samples, progress
    with pytest.raises(SystemExit):
        char_lm.main(["--steps", "0"])
