"""What the initial weights do to the activations, layer by layer (Deep Learning from Scratch,
figures 6-10 to 6-14).

    pip install 'handprop[examples]'      # matplotlib, for --plot
    python examples/init_histograms.py --activation tanh --plot init_tanh.png
    python examples/init_histograms.py --activation relu --plot init_relu.png

1,000 inputs of 100 standard-normal numbers go forward through five 100-unit layers, each a
Linear (no bias) and an activation, with weights drawn four ways by ``handprop.init``:
N(0, 1) and N(0, 0.01) (``normal_(w, 0, std)``), Xavier (``xavier_normal_``, gain 1) and
Kaiming (``kaiming_normal_``, the activation's gain). The script prints each layer's activation
statistics and plots one histogram per layer and initialisation. Large weights push tanh and
sigmoid into their flat ends; small ones make the signal die out layer after layer; the right
scale keeps it alive to the last layer, which is what lets the gradient come back (it passes
through the same weights).
"""

from __future__ import annotations

import argparse

import numpy as np

from handprop import Sequential, init
from handprop.layers import Linear, ReLU, Sigmoid, Tanh

ACTIVATIONS = {"sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU}
INITS = ("N(0, 1)", "N(0, 0.01)", "Xavier", "Kaiming")
LAYERS, WIDTH, SAMPLES = 5, 100, 1000


def initialise(weight, scheme: str, activation: str, rng) -> None:
    """Fill ``weight`` in place by ``scheme`` (one of INITS) with handprop.init."""
    if scheme == "N(0, 1)":
        init.normal_(weight, 0.0, 1.0, rng=rng)
    elif scheme == "N(0, 0.01)":
        init.normal_(weight, 0.0, 0.01, rng=rng)
    elif scheme == "Xavier":
        init.xavier_normal_(weight, rng=rng)
    elif scheme == "Kaiming":
        init.kaiming_normal_(weight, nonlinearity=activation, rng=rng)
    else:
        raise ValueError(f"unknown initialisation {scheme!r}; choose from {', '.join(INITS)}")


def activations(scheme: str, activation: str = "tanh", seed: int = 0) -> list[np.ndarray]:
    """Each layer's output (after its activation) for the same 1,000 inputs, float64."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose from {', '.join(ACTIVATIONS)}")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((SAMPLES, WIDTH))
    modules = []
    for _ in range(LAYERS):
        layer = Linear(WIDTH, WIDTH, bias=False, dtype=np.float64)
        initialise(layer.weight, scheme, activation, rng)
        modules += [layer, ACTIVATIONS[activation]()]
    model = Sequential(*modules)
    outputs = []
    for i in range(1, 2 * LAYERS, 2):  # after each activation: model[: i + 1] runs to it
        outputs.append(np.asarray(model[: i + 1](x)))
    return outputs


def statistics(outputs: list[np.ndarray], activation: str) -> list[dict]:
    """Per layer: mean, standard deviation, and the share of outputs that are stuck: exactly 0
    for ReLU (no gradient passes), within 0.01 of the flat ends for tanh (-1, 1) and sigmoid
    (0, 1), where the slope is nearly 0."""
    rows = []
    for a in outputs:
        if activation == "relu":
            stuck = a == 0
        elif activation == "tanh":
            stuck = np.abs(a) > 0.99
        else:
            stuck = (a < 0.01) | (a > 0.99)
        rows.append({"mean": float(a.mean()), "std": float(a.std()), "stuck": float(stuck.mean())})
    return rows


STUCK = {"relu": "exactly 0", "tanh": "saturated", "sigmoid": "saturated"}


def plot(results: dict, activation: str, path: str) -> None:
    """One row per initialisation, one histogram per layer (ReLU's zeros left out: half of
    every layer, they would dwarf the rest; its values beyond 4 counted in the last bin)."""
    import matplotlib

    matplotlib.use("Agg")  # no screen needed
    import matplotlib.pyplot as plt

    # ReLU is unbounded: one shared range, with what lies beyond it piled in the last bin
    low, high = {"tanh": (-1, 1), "sigmoid": (0, 1), "relu": (0, 4)}[activation]
    fig, axes = plt.subplots(len(results), LAYERS, figsize=(3 * LAYERS, 2.4 * len(results)))
    for row, (scheme, outputs) in zip(axes, results.items(), strict=True):
        for layer, (ax, a) in enumerate(zip(row, outputs, strict=True), start=1):
            values = a[a != 0] if activation == "relu" else a.ravel()
            ax.hist(np.clip(values, low, high), bins=30, range=(low, high), color="#1f5fbf")
            ax.set_title(f"{scheme}: layer {layer}, std {a.std():.2g}", fontsize=9)
            ax.set_yticks([])
    fig.suptitle(f"{activation} activations per layer, for {len(results)} initialisations")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activation", choices=sorted(ACTIVATIONS), default="tanh")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", metavar="FILE.png", help="save the histograms (needs matplotlib)")
    args = parser.parse_args(argv)
    results = {scheme: activations(scheme, args.activation, args.seed) for scheme in INITS}
    stuck = STUCK[args.activation]
    print(f"{args.activation}: the std of each layer's activations (share {stuck}), layers 1-5")
    for scheme, outputs in results.items():
        rows = statistics(outputs, args.activation)
        cells = [f"{row['std']:<8.3g} ({row['stuck']:3.0%})" for row in rows]
        print(f"  {scheme:<11}" + "  ".join(cells))
    if args.plot:
        plot(results, args.activation, args.plot)


if __name__ == "__main__":
    main()
