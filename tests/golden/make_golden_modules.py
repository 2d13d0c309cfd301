"""Regenerate modules.json: torch's values for GELU, LogSoftmax, Dropout (a given mask),
BatchNorm1d (two training steps, then evaluation), LayerNorm, L1Loss, HuberLoss and NLLLoss on
fixed inputs, in float32 and float64.

Written by torch alone (no handprop code runs here), so the tests that read it
(tests/test_regularisation.py) check handprop against an independent reference, torch or not.

Usage:  python tests/golden/make_golden_modules.py   (needs torch==2.13.0)
"""

import json
from pathlib import Path

import torch

X = [[-3.0, -1.0, -0.25, 0.0, 0.5, 2.0], [4.0, -0.0, 1e-3, -6.0, 1.5, 10.0]]
G = [[0.5, -1.0, 2.0, 1.0, -0.5, 0.25], [1.0, 3.0, -2.0, 0.5, 1.5, -1.0]]
TARGET = [[0.0, -1.0, 1.0, 0.0, 2.0, 0.0], [3.0, 0.5, 0.0, -6.0, 0.0, 9.0]]
MASK = [[True, False, True, True, False, True], [False, True, True, True, True, False]]
CLASSES = [5, -100]
WEIGHT = [1.0, 2.0, 0.5, 1.0, 1.5, 3.0]


def layer(fn, dtype):
    x = torch.tensor(X, dtype=dtype, requires_grad=True)
    y = fn(x)
    y.backward(torch.tensor(G, dtype=dtype))
    return {"output": y.tolist(), "grad_input": x.grad.tolist()}


def loss(module, target, dtype):
    x = torch.tensor(X, dtype=dtype, requires_grad=True)
    cost = module(x, target)
    cost.backward()
    return {"cost": cost.item(), "grad_input": x.grad.tolist()}


def batch_norm(dtype):
    """Two training steps (X, then X reversed and scaled), then evaluation on X: outputs,
    input gradients, weight and bias gradients and the buffers after each step."""
    bn = torch.nn.BatchNorm1d(6, momentum=0.2, dtype=dtype)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(WEIGHT, dtype=dtype))
        bn.bias.copy_(torch.tensor(G[0], dtype=dtype))
    steps = []
    for training, scale in ((True, 1.0), (True, -2.0), (False, 1.0)):
        bn.train(training)
        bn.zero_grad()
        x = torch.tensor(X, dtype=dtype) * scale
        x.requires_grad_(True)
        y = bn(x)
        y.backward(torch.tensor(G, dtype=dtype))
        steps.append(
            {
                "output": y.tolist(),
                "grad_input": x.grad.tolist(),
                "weight_grad": bn.weight.grad.tolist(),
                "bias_grad": bn.bias.grad.tolist(),
                "running_mean": bn.running_mean.tolist(),
                "running_var": bn.running_var.tolist(),
                "num_batches_tracked": int(bn.num_batches_tracked),
            }
        )
    return steps


def layer_norm(dtype):
    ln = torch.nn.LayerNorm(6, dtype=dtype)
    with torch.no_grad():
        ln.weight.copy_(torch.tensor(WEIGHT, dtype=dtype))
    x = torch.tensor(X, dtype=dtype, requires_grad=True)
    y = ln(x)
    y.backward(torch.tensor(G, dtype=dtype))
    return {
        "output": y.tolist(),
        "grad_input": x.grad.tolist(),
        "weight_grad": ln.weight.grad.tolist(),
        "bias_grad": ln.bias.grad.tolist(),
    }


def values(dtype: torch.dtype) -> dict:
    f = torch.nn.functional
    mask = torch.tensor(MASK)
    target = torch.tensor(TARGET, dtype=dtype)
    classes = torch.tensor(CLASSES)
    return {
        "GELU(approximate='none')": layer(lambda x: f.gelu(x), dtype),
        "GELU(approximate='tanh')": layer(lambda x: f.gelu(x, approximate="tanh"), dtype),
        "LogSoftmax(dim=1)": layer(lambda x: f.log_softmax(x, dim=1), dtype),
        "LogSoftmax(dim=0)": layer(lambda x: f.log_softmax(x, dim=0), dtype),
        "Dropout(p=0.25)": layer(lambda x: x * mask * (1 / 0.75), dtype),
        "L1Loss()": loss(torch.nn.L1Loss(), target, dtype),
        "HuberLoss(delta=1.5)": loss(torch.nn.HuberLoss(delta=1.5), target, dtype),
        "BatchNorm1d(6, momentum=0.2)": batch_norm(dtype),
        "LayerNorm(6)": layer_norm(dtype),
        "NLLLoss(weight)": loss(
            torch.nn.NLLLoss(weight=torch.tensor(WEIGHT, dtype=dtype)), classes, dtype
        ),
    }


if __name__ == "__main__":
    data = {
        "inputs": {
            "X": X,
            "G": G,
            "TARGET": TARGET,
            "MASK": MASK,
            "CLASSES": CLASSES,
            "WEIGHT": WEIGHT,
        },
        "torch": torch.__version__,
        "float32": values(torch.float32),
        "float64": values(torch.float64),
    }
    path = Path(__file__).with_name("modules.json")
    path.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {path}")
