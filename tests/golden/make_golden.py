"""Regenerate worked_example.json: torch's values for the worked example, both dtypes.

The golden file lets the worked-example tests run where torch is not installed; it is
written by torch alone (no handprop code runs here), so it is an independent reference.

Usage:  python tests/golden/make_golden.py   (needs torch==2.13.0)
"""

import json
from pathlib import Path

import torch

# The document's network, written out in torch as the source does (not via handprop).
X = [[1.0, 2.0], [3.0, 4.0]]
Y = [[0.0], [1.0]]
PARAMETERS = {
    "0.weight": [[-1.0, 2.0], [3.0, 0.5], [-0.1, -4.0]],
    "0.bias": [1.0, -2.0, 0.3],
    "2.weight": [[0.5, 1.0, -2.0], [0.7, 0.1, 0.3]],
    "2.bias": [-4.0, 5.0],
    "4.weight": [[0.5, -0.3]],
    "4.bias": [0.1],
}
NAMES = ["Z1", "A1", "Z2", "A2", "Z3", "A3"]  # outputs of modules 0..5


def values(dtype: torch.dtype) -> dict:
    model = torch.nn.Sequential(
        torch.nn.Linear(2, 3),
        torch.nn.ReLU(),
        torch.nn.Linear(3, 2),
        torch.nn.ReLU(),
        torch.nn.Linear(2, 1),
        torch.nn.Sigmoid(),
    ).to(dtype)
    model.load_state_dict({k: torch.tensor(v, dtype=dtype) for k, v in PARAMETERS.items()})
    x = torch.tensor(X, dtype=dtype, requires_grad=True)
    y = torch.tensor(Y, dtype=dtype)
    out = {}
    h = x
    hs = []
    for name, module in zip(NAMES, model, strict=True):
        h = module(h)
        h.retain_grad()
        hs.append((name, h))
    per_sample = torch.nn.functional.binary_cross_entropy(h, y, reduction="none")
    cost = per_sample.mean()
    cost.backward()
    for name, h in hs:
        out[name] = h.tolist()
        out[f"dJ/d{name}"] = h.grad.tolist()
    out["L"] = per_sample.tolist()
    out["J"] = cost.item()
    out["dJ/dX"] = x.grad.tolist()
    for name, p in model.named_parameters():
        out[f"{name}.grad"] = p.grad.tolist()
    return out


def main() -> None:
    golden = {
        "generated_by": "tests/golden/make_golden.py",
        "torch_version": torch.__version__,
        "float32": values(torch.float32),
        "float64": values(torch.float64),
    }
    path = Path(__file__).with_name("worked_example.json")
    path.write_text(json.dumps(golden, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
