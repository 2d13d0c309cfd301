"""Overfitting, then Dropout and BatchNorm against it (Deep Learning from Scratch, chapter 6).

    pip install 'handprop[examples]' torch    # scikit-learn (the data), matplotlib; torch optional
    python examples/regularisation.py --plot regularisation.png

A network far too large for its data: 300 of scikit-learn's 8x8 digits to train on, a
64-100-100-100-100-10 MLP, 100 epochs of Adam. Without help it learns the training set by heart
(train accuracy 1.0) while the test accuracy stalls well below. The same network is trained
twice more, with Dropout after each hidden ReLU and with BatchNorm1d before each ReLU, from the
same initial weights and the same mini-batches. Each run is repeated in torch beside it (its
twin: the same weights, batches and dropout masks), and the loss curves are compared.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

import numpy as np
from sklearn.datasets import load_digits

from handprop import Sequential, no_grad
from handprop.data import batches
from handprop.interop import sharing_cores
from handprop.layers import BatchNorm1d, Dropout, Linear, ReLU
from handprop.losses import CrossEntropyLoss
from handprop.optim import Adam

HIDDEN, DEPTH, TRAIN_SIZE = 100, 4, 300
VARIANTS = ("plain", "dropout", "batchnorm")


def data(seed: int = 0):
    """300 training images and the other 1497 to test on, pixels scaled to [0, 1]."""
    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(X))
    X = (X / 16.0).astype(np.float32)
    train, test = order[:TRAIN_SIZE], order[TRAIN_SIZE:]
    return X[train], y[train], X[test], y[test]


def network(variant: str, seed: int = 0, p: float = 0.3) -> Sequential:
    """The same Linear layers (same initial weights) for every variant."""
    rng = np.random.default_rng(seed)
    widths = [64] + [HIDDEN] * DEPTH + [10]
    modules = []
    for i in range(len(widths) - 1):
        modules.append(Linear(widths[i], widths[i + 1], rng=rng))
        if i == len(widths) - 2:
            break
        if variant == "batchnorm":
            modules.append(BatchNorm1d(widths[i + 1]))
        modules.append(ReLU())
        if variant == "dropout":
            modules.append(Dropout(p, rng=seed + i))
    return Sequential(*modules)


@no_grad()  # an evaluation pass: it keeps nothing for a backward (nothing left pending)
def accuracy(model, X, y) -> float:
    model.eval()  # Dropout off, BatchNorm on its running statistics
    predicted = np.asarray(model(X)).argmax(axis=1)
    model.train()
    return float(np.mean(predicted == y))


def train(variant: str, epochs: int, lr: float = 1e-3, seed: int = 0, with_torch: bool = True):
    """Train one variant in handprop (and its torch twin); returns the history."""
    X, y, X_test, y_test = data(seed)
    model = network(variant, seed)
    twin = _TorchTwin(model, lr) if with_torch else None
    loss_fn, optimizer = CrossEntropyLoss(), Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    history = {"loss": [], "train": [], "test": [], "torch_loss": [], "torch_test": []}
    # both libraries in one process: one thread each, or their thread pools fight over the cores
    with sharing_cores() if with_torch else contextlib.nullcontext():
        for _ in range(epochs):
            total, t_total = 0.0, 0.0
            for X_batch, y_batch in batches(X, y, 50, rng=rng):
                optimizer.zero_grad()
                cost = loss_fn(model(X_batch), y_batch)
                model.backward(loss_fn.backward())
                optimizer.step()
                total += cost * len(X_batch)
                if twin is not None:
                    t_total += twin.step(X_batch, y_batch) * len(X_batch)
            history["loss"].append(total / len(X))
            history["train"].append(accuracy(model, X, y))
            history["test"].append(accuracy(model, X_test, y_test))
            if twin is not None:
                history["torch_loss"].append(t_total / len(X))
                history["torch_test"].append(twin.accuracy(X_test, y_test))
    return history


class _TorchTwin:
    """torch's copy of a handprop model, trained step by step beside it with torch's Adam; its
    Dropout layers draw the masks handprop's draw (from copies of their generators)."""

    def __init__(self, model: Sequential, lr: float) -> None:
        import torch

        from handprop.interop import same_mask_dropout, to_torch

        self.torch = torch
        modules = []
        for module in model:
            twin = same_mask_dropout(module) if isinstance(module, Dropout) else to_torch(module)
            modules.append(twin)
        self.model = torch.nn.Sequential(*modules)
        self.loss = torch.nn.CrossEntropyLoss()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)

    def step(self, X, y) -> float:
        torch = self.torch
        self.optimizer.zero_grad()
        cost = self.loss(self.model(torch.from_numpy(X)), torch.from_numpy(y))
        cost.backward()
        self.optimizer.step()
        return cost.item()

    def accuracy(self, X, y) -> float:
        torch = self.torch
        self.model.eval()
        with torch.no_grad():
            predicted = self.model(torch.from_numpy(X)).argmax(dim=1).numpy()
        self.model.train()
        return float(np.mean(predicted == y))


def plot(histories: dict, path: str) -> None:
    """Accuracy (train, test) above, training loss below (handprop solid, torch dotted)."""
    import matplotlib

    matplotlib.use("Agg")  # no screen needed
    import matplotlib.pyplot as plt

    n = len(histories)
    fig, axes = plt.subplots(2, n, figsize=(5 * n, 7), sharex=True, squeeze=False)
    for column, (variant, history) in enumerate(histories.items()):
        top, bottom = axes[0][column], axes[1][column]
        epochs = range(1, len(history["train"]) + 1)
        top.plot(epochs, history["train"], label="train (handprop)")
        top.plot(epochs, history["test"], label="test (handprop)")
        if history["torch_test"]:
            top.plot(epochs, history["torch_test"], "k:", label="test (torch)")
        top.set(title=variant, ylim=(0, 1.02))
        top.legend(loc="lower right")
        bottom.semilogy(epochs, history["loss"], label="handprop")
        if history["torch_loss"]:
            bottom.semilogy(epochs, history["torch_loss"], "k:", label="torch")
        bottom.set(xlabel="epoch")
        bottom.legend(loc="upper right")
    axes[0][0].set_ylabel("accuracy")
    axes[1][0].set_ylabel("training loss (log scale)")
    fig.suptitle("An overfitting MLP on 300 digits, without and with regularisation")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")


def loss_gap(history) -> float:
    """How far handprop's loss curve is from torch's: the largest difference, relative to the
    first epoch's loss (late losses are tiny, and float32 differences then loom large)."""
    hp, theirs = np.asarray(history["loss"]), np.asarray(history["torch_loss"])
    return float(np.max(np.abs(hp - theirs)) / abs(theirs[0]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--plot", metavar="FILE.png", help="save the curves (needs matplotlib)")
    parser.add_argument("--no-torch", action="store_true", help="do not train the torch twins")
    args = parser.parse_args(argv)
    with_torch = not args.no_torch
    if with_torch:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("torch is not installed: training handprop alone", file=sys.stderr)
            with_torch = False
    histories = {}
    for variant in VARIANTS:
        history = train(variant, args.epochs, with_torch=with_torch)
        histories[variant] = history
        line = (
            f"{variant:<10} train accuracy {history['train'][-1]:.3f}   "
            f"test accuracy {history['test'][-1]:.3f}   "
            f"gap {history['train'][-1] - history['test'][-1]:.3f}"
        )
        if with_torch:
            line += f"   loss vs torch: max difference {loss_gap(history):.1e} of the first"
        print(line)
    if args.plot:
        plot(histories, args.plot)


if __name__ == "__main__":
    main()
