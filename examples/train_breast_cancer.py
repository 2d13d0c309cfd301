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

    X, y = load_breast_cancer(return_X_y=True)  # y: 0 = malignant, 1 = benign
    X_train, X_test, y_train, y_test = split(X, y, args.seed)
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
