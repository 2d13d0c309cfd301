"""The training loop the examples share: mini-batches, one optimizer step per batch, and a
line of progress per epoch. Read it top to bottom: it is the whole of training."""

from __future__ import annotations

import argparse

import numpy as np

from handprop import no_grad
from handprop.data import batches


def parse_args(description: str, batch_size: int) -> argparse.Namespace:
    """The examples' command line: --epochs, --batch-size, --lr, --seed, --plot."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", metavar="FILE.png", help="save the curves (needs matplotlib)")
    return parser.parse_args()


def split(X: np.ndarray, y: np.ndarray, seed: int):
    """A stratified 75/25 train/test split, features standardised with the training set's
    statistics: ``(X_train, X_test, y_train, y_test)``."""
    from sklearn.model_selection import train_test_split

    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=seed
    )
    X_train, X_test = standardise(X_train, X_test)
    return X_train, X_test, y_train, y_test


@no_grad()  # an evaluation pass: it keeps nothing for a backward (nothing left pending)
def accuracy(predict, X: np.ndarray, y: np.ndarray) -> float:
    """Fraction of samples whose predicted class equals the label."""
    return float(np.mean(predict(X) == y.reshape(-1)))


def train(
    model,
    loss_fn,
    optimizer,
    train_set,
    test_set,
    *,
    epochs,
    batch_size,
    rng,
    predict,
    verbose=True,
):
    """Train ``model`` for ``epochs`` passes over ``train_set``; returns the per-epoch history.

    ``predict(X)`` turns the model's outputs into class labels for the accuracy columns;
    ``verbose=False`` prints nothing.
    """
    (X_train, y_train), (X_test, y_test) = train_set, test_set
    history = {"loss": [], "train_accuracy": [], "test_accuracy": []}
    for epoch in range(1, epochs + 1):
        total = 0.0
        for X_batch, y_batch in batches(X_train, y_train, batch_size, rng=rng):
            optimizer.zero_grad()  # grads back to None: each step sees only its own batch
            cost = loss_fn(model(X_batch), y_batch)  # forward
            model.backward(loss_fn.backward())  # backward: every parameter's .grad
            optimizer.step()  # update
            total += cost * len(X_batch)
        history["loss"].append(total / len(X_train))
        history["train_accuracy"].append(accuracy(predict, X_train, y_train))
        history["test_accuracy"].append(accuracy(predict, X_test, y_test))
        if verbose:
            print(
                f"epoch {epoch:3d}   loss {history['loss'][-1]:.4f}   "
                f"train accuracy {history['train_accuracy'][-1]:.3f}   "
                f"test accuracy {history['test_accuracy'][-1]:.3f}"
            )
    return history


def plot(history, path, title):
    """Save the loss and accuracy curves as a PNG; returns False if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no screen needed
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: pip install 'handprop[examples]' to plot")
        return False
    epochs = range(1, len(history["loss"]) + 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, history["loss"])
    left.set(xlabel="epoch", ylabel="training loss", title=title)
    right.plot(epochs, history["train_accuracy"], label="train")
    right.plot(epochs, history["test_accuracy"], label="test")
    right.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02))
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")
    return True


def standardise(train, test):
    """Scale each feature to mean 0, std 1 using the training set's statistics only."""
    mean, std = train.mean(axis=0), train.std(axis=0)
    std[std == 0] = 1.0  # constant features (digits has some) stay 0
    return (train - mean) / std, (test - mean) / std
