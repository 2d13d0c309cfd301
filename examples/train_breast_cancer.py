"""Train a small MLP on scikit-learn's breast cancer data (569 samples, 30 features, binary).

    pip install 'handprop[examples]'      # scikit-learn (ships the data) and matplotlib
    python examples/train_breast_cancer.py --epochs 30 --plot breast_cancer.png

The network outputs one logit per sample; BCEWithLogitsLoss applies the sigmoid inside the
loss, stably. Everything random (initial weights, the split, the batch order) comes from
--seed, so a run is reproducible.
"""

import numpy as np
from sklearn.datasets import load_breast_cancer
from training import parse_args, plot, split, train

from handprop import Sequential
from handprop.layers import Linear, ReLU
from handprop.losses import BCEWithLogitsLoss
from handprop.optim import Adam


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], batch_size=32)
    run(args.epochs, args.batch_size, args.lr, args.seed, plot_to=args.plot)


def run(epochs=30, batch_size=32, lr=1e-3, seed=0, *, plot_to=None, verbose=True):
    """Train with these settings (the command line's defaults); returns the history."""
    X, y = load_breast_cancer(return_X_y=True)  # y: 0 = malignant, 1 = benign
    X_train, X_test, y_train, y_test = split(X, y, seed)
    y_train = y_train.reshape(-1, 1).astype(np.float32)  # (N, 1), like the model's output

    rng = np.random.default_rng(seed)
    model = Sequential(Linear(30, 16, rng=rng), ReLU(), Linear(16, 1, rng=rng))
    if verbose:
        print(model)
    history = train(
        model,
        BCEWithLogitsLoss(),
        Adam(model.parameters(), lr=lr),
        (X_train, y_train),
        (X_test, y_test),
        epochs=epochs,
        batch_size=batch_size,
        rng=rng,
        predict=lambda X: (model(X) > 0).astype(int).ravel(),  # logit > 0 <=> p > 0.5
        verbose=verbose,
    )
    if plot_to:
        plot(history, plot_to, "breast cancer, 30-16-1 MLP")
    return history


if __name__ == "__main__":
    main()
