"""Train an MLP on scikit-learn's digits (1797 images of 8x8 pixels, ten classes).

    pip install 'handprop[examples]'      # scikit-learn (ships the data) and matplotlib
    python examples/train_digits.py --epochs 30 --plot digits.png

The network outputs ten logits per image; CrossEntropyLoss applies log-softmax inside the
loss, stably, against integer class labels. Everything random comes from --seed.
"""

import numpy as np
from sklearn.datasets import load_digits
from training import parse_args, plot, split, train

from handprop import Sequential
from handprop.layers import Linear, ReLU
from handprop.losses import CrossEntropyLoss
from handprop.optim import Adam


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], batch_size=64)
    run(args.epochs, args.batch_size, args.lr, args.seed, plot_to=args.plot)


def run(epochs=30, batch_size=64, lr=1e-3, seed=0, *, plot_to=None, verbose=True):
    """Train with these settings (the command line's defaults); returns the history."""
    X, y = load_digits(return_X_y=True)  # pixels 0..16; y: the digit 0..9
    X_train, X_test, y_train, y_test = split(X, y, seed)

    rng = np.random.default_rng(seed)
    model = Sequential(Linear(64, 64, rng=rng), ReLU(), Linear(64, 10, rng=rng))
    if verbose:
        print(model)
    history = train(
        model,
        CrossEntropyLoss(),
        Adam(model.parameters(), lr=lr),
        (X_train, y_train),
        (X_test, y_test),
        epochs=epochs,
        batch_size=batch_size,
        rng=rng,
        predict=lambda X: model(X).argmax(axis=1),  # the class with the largest logit
        verbose=verbose,
    )
    if plot_to:
        plot(history, plot_to, "digits, 64-64-10 MLP")
    return history


if __name__ == "__main__":
    main()
