"""SGD, momentum, RMSprop, Adagrad and Adam on one problem (Deep Learning from Scratch, fig. 6-9).

    pip install 'handprop[examples]'      # scikit-learn (ships the data) and matplotlib
    python examples/compare_optimizers.py --plot compare_optimizers.png

A 64-100-100-100-100-10 ReLU network learns scikit-learn's 8x8 digits (1,797 real images,
1,297 to train on, 500 to test), once per optimizer: the same initial weights and the same
mini-batches of 128 each time, only the update differs. The training loss of every step is
recorded; the curves show plain SGD crawling while the others, each in its own way, adapt
the step to the gradient's history.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
from sklearn.datasets import load_digits

from handprop import Sequential, init, no_grad
from handprop.data import batches
from handprop.layers import Linear, ReLU
from handprop.losses import CrossEntropyLoss
from handprop.optim import SGD, Adagrad, Adam, RMSprop

#: (label, optimizer class, hyper-parameters): DLFS's learning rates, torch's other defaults.
OPTIMIZERS = [
    ("SGD", SGD, {"lr": 0.01}),
    ("Momentum", SGD, {"lr": 0.01, "momentum": 0.9}),
    ("RMSprop", RMSprop, {"lr": 0.001}),
    ("Adagrad", Adagrad, {"lr": 0.01}),
    ("Adam", Adam, {"lr": 0.001}),
]
WIDTHS = [64, 100, 100, 100, 100, 10]
BATCH, TEST_SIZE = 128, 500


def data(seed: int = 0):
    """Training and test images (pixels scaled to [0, 1]) and their labels."""
    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(X))
    X = (X / 16.0).astype(np.float32)
    test, train = order[:TEST_SIZE], order[TEST_SIZE:]
    return X[train], y[train], X[test], y[test]


def network(seed: int = 0) -> Sequential:
    """The same initial weights for every optimizer: He (Kaiming) normal weights and zero
    biases, as in DLFS (torch's default, uniform in +-1/sqrt(fan_in), starts this deep ReLU
    network so small that plain SGD barely moves in 600 steps)."""
    rng = np.random.default_rng(seed)
    modules = []
    for fan_in, fan_out in itertools.pairwise(WIDTHS):
        layer = Linear(fan_in, fan_out)
        init.kaiming_normal_(layer.weight, nonlinearity="relu", rng=rng)
        init.zeros_(layer.bias)
        modules += [layer, ReLU()]
    return Sequential(*modules[:-1])  # no ReLU after the last layer: it gives the logits


def train(label: str, steps: int = 600, seed: int = 0) -> dict:
    """Train with one optimizer of OPTIMIZERS; the loss of every step and the test accuracy."""
    _, cls, hyper = next(o for o in OPTIMIZERS if o[0] == label)
    X, y, X_test, y_test = data(seed)
    model, loss_fn = network(seed), CrossEntropyLoss()
    optimizer = cls(model.parameters(), **hyper)
    rng, losses = np.random.default_rng(seed), []
    while len(losses) < steps:
        for X_batch, y_batch in batches(X, y, BATCH, rng=rng):
            optimizer.zero_grad()
            losses.append(loss_fn(model(X_batch), y_batch))
            model.backward(loss_fn.backward())
            optimizer.step()
            if len(losses) == steps:
                break
    with no_grad():  # an evaluation pass: it keeps nothing for a backward
        predicted = np.asarray(model(X_test)).argmax(axis=1)
    return {"loss": losses, "test_accuracy": float(np.mean(predicted == y_test))}


def smooth(values, window: int = 20) -> np.ndarray:
    """The mean of the last ``window`` values at each step (fewer at the start)."""
    values = np.asarray(values, dtype=float)
    sums = np.cumsum(np.insert(values, 0, 0.0))
    starts = np.maximum(np.arange(1, len(values) + 1) - window, 0)
    return (sums[1:] - sums[starts]) / (np.arange(1, len(values) + 1) - starts)


def plot(results: dict, path: str) -> None:
    """Every optimizer's training loss (smoothed over 20 steps) on one plot."""
    import matplotlib

    matplotlib.use("Agg")  # no screen needed
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, result in results.items():
        ax.plot(np.arange(1, len(result["loss"]) + 1), smooth(result["loss"]), label=label)
    ax.set(xlabel="step (mini-batch of 128)", ylabel="training loss (mean of 20 steps)")
    ax.set_ylim(0, 3)
    ax.legend()
    ax.set_title("Five optimizers, one network, the same batches (8x8 digits)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600, help="training steps per optimizer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", metavar="FILE.png", help="save the curves (needs matplotlib)")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    results = {}
    for label, _, _ in OPTIMIZERS:
        results[label] = result = train(label, args.steps, args.seed)
        print(
            f"{label:<9} loss {result['loss'][0]:.3f} -> {smooth(result['loss'])[-1]:.3f} "
            f"(mean of the last 20 steps)   test accuracy {result['test_accuracy']:.3f}"
        )
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
