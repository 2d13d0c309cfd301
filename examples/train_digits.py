"""Train an MLP on scikit-learn's digits (1797 images of 8x8 pixels, ten classes).

    pip install 'handprop[examples]'      # scikit-learn (ships the data) and matplotlib
    python examples/train_digits.py --epochs 30 --plot digits.png

The network outputs ten logits per image; CrossEntropyLoss applies log-softmax inside the
loss, stably, against integer class labels. Everything random comes from --seed.
"""

import argparse

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from training import plot, standardise, train

from handprop import Sequential
from handprop.layers import Linear, ReLU
from handprop.losses import CrossEntropyLoss
from handprop.optim import Adam


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", metavar="FILE.png", help="save the curves (needs matplotlib)")
    args = parser.parse_args()

    X, y = load_digits(return_X_y=True)  # pixels 0..16; y: the digit 0..9
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=args.seed
    )
    X_train, X_test = standardise(X_train, X_test)

    rng = np.random.default_rng(args.seed)
    model = Sequential(Linear(64, 64, rng=rng), ReLU(), Linear(64, 10, rng=rng))
    print(model)
    history = train(
        model,
        CrossEntropyLoss(),
        Adam(model.parameters(), lr=args.lr),
        (X_train, y_train),
        (X_test, y_test),
        epochs=args.epochs,
        batch_size=args.batch_size,
        rng=rng,
        predict=lambda X: model(X).argmax(axis=1),  # the class with the largest logit
    )
    if args.plot:
        plot(history, args.plot, "digits, 64-64-10 MLP")


if __name__ == "__main__":
    main()
