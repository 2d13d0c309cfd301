"""Where a training step's time goes, phase by phase, next to its unavoidable matrix products.

Usage (from benchmarks/):  python profile_step.py [widths, default 784-2048-2048-1] [batch]

Each phase is timed alone (best of 7 repeats, so that machine noise is left out): the
forward pass, the loss and its gradient, zero_grad + the backward pass, the SGD and Adam
updates; beside forward and backward, their bare NumPy matrix products alone; beside the
updates, torch.optim's own SGD and Adam updates of the same parameters (default options).
"""

import sys
import timeit

import numpy as np
import torch

from handprop.bench import mlp as build
from handprop.layers import Linear
from handprop.losses import BCELoss
from handprop.optim import SGD, Adam


def best(fn, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=7)) / number * 1e3  # ms


def main() -> None:
    widths = [int(w) for w in (sys.argv[1] if len(sys.argv) > 1 else "784-2048-2048-1").split("-")]
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else 512
    model = build(widths)
    rng = np.random.default_rng(2)
    X = rng.standard_normal((batch, widths[0])).astype(np.float32)
    y = rng.integers(0, 2, size=(batch, widths[-1])).astype(np.float32)
    loss = BCELoss()
    out = model(X)
    loss(out, y)
    g = loss.backward()
    linears = [m for m in model if isinstance(m, Linear)]
    inputs, grads, h = [], [], X
    for layer in linears:
        inputs.append(h)
        h = rng.standard_normal((batch, layer.out_features), dtype=np.float32)
        grads.append(h)
    pairs = list(zip(grads, inputs, linears, strict=True))

    def forward_products():
        return [x @ m.weight.data.T for _, x, m in pairs]

    def backward_products():
        return [(gr.T @ x, gr @ m.weight.data if i else None) for i, (gr, x, m) in enumerate(pairs)]

    n = 3 if X.shape[0] * widths[1] > 5e5 else 50
    rows = {
        "forward": best(lambda: model(X), n),
        "  forward matrix products alone": best(forward_products, n),
        "loss and its gradient": best(lambda: (loss(out, y), loss.backward()), n),
        "zero_grad + backward (input_grad=False)": best(
            lambda: (model.zero_grad(), model.backward(g, input_grad=False, retain_graph=True)),
            n,
        ),
        "  backward matrix products alone": best(backward_products, n),
    }
    size = sum(p.data.size for p in model.parameters())
    model.backward(g, input_grad=False, retain_graph=True)
    for name, opt in (
        ("SGD", SGD(model.parameters(), lr=1e-3)),
        ("Adam", Adam(model.parameters())),
    ):
        rows[f"{name} step ({size:,} parameters)"] = best(opt.step, n)
    # torch's own updates of the same parameters and gradients, for comparison
    twin = [torch.nn.Parameter(torch.from_numpy(p.data.copy())) for p in model.parameters()]
    for t_p, p in zip(twin, model.parameters(), strict=True):
        t_p.grad = torch.from_numpy(p.grad.copy())
    for name, opt in (
        ("SGD", torch.optim.SGD(twin, lr=1e-3)),
        ("Adam", torch.optim.Adam(twin)),
    ):
        rows[f"  torch.optim.{name} step, the same parameters"] = best(opt.step, n)
    print(f"{'-'.join(map(str, widths))}, batch {batch} (ms, best of 7)")
    for name, ms in rows.items():
        print(f"  {name:<44}{ms:9.3f}")


if __name__ == "__main__":
    main()
