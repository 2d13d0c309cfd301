"""Train a small MLP on scikit-learn's breast cancer data (569 samples, 30 features, binary).

    pip install 'handprop[examples]'      # scikit-learn (ships the data) and matplotlib
    python examples/train_breast_cancer.py --epochs 30 --plot breast_cancer.png

The network outputs one logit per sample; BCEWithLogitsLoss applies the sigmoid inside the
loss, stably. Everything random (initial weights, the split, the batch order) comes from
--seed, so a run is reproducible.
"""

import argparse

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from training import plot, standardise, train

from handprop import Sequential
from handprop.layers import Linear, ReLU
from handprop.losses import BCEWithLogitsLoss
from handprop.optim import Adam


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", metavar="FILE.png", help="save the curves (needs matplotlib)")
    args = parser.parse_args()

    X, y = load_breast_cancer(return_X_y=True)  # y: 0 = malignant, 1 = benign
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=args.seed
    )
    X_train, X_test = standardise(X_train, X_test)
    y_train = y_train.reshape(-1, 1).astype(np.float32)  # (N, 1), like the model's output

    rng = np.random.default_rng(args.seed)
    model = Sequential(Linear(30, 16, rng=rng), ReLU(), Linear(16, 1, rng=rng))
    print(model)
    history = train(
        model,
        BCEWithLogitsLoss(),
        Adam(model.parameters(), lr=args.lr),
        (X_train, y_train),
        (X_test, y_test),
        epochs=args.epochs,
        batch_size=args.batch_size,
        rng=rng,
        predict=lambda X: (model(X) > 0).astype(int).ravel(),  # logit > 0 <=> p > 0.5
    )
    if args.plot:
        plot(history, args.plot, "breast cancer, 30-16-1 MLP")


if __name__ == "__main__":
    main()
