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

    X, y = load_digits(return_X_y=True)  # pixels 0..16; y: the digit 0..9
    X_train, X_test, y_train, y_test = split(X, y, args.seed)

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
