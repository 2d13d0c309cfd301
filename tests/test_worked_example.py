"""The source document's worked example, three ways.

1. against live torch (float32 and float64): every forward value, every intermediate and
   parameter gradient, dJ/dX;
2. against golden values that torch wrote (tests/golden/make_golden.py), so these run where
   torch is absent;
3. against the numbers the document prints (4 decimals), including the places where the
   document is wrong, checked to be wrong.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from closeness import assert_close

from handprop import worked_example as we
from handprop.losses import BCELoss

GOLDEN = json.loads((Path(__file__).parent / "golden" / "worked_example.json").read_text())
NAMES = ["Z1", "A1", "Z2", "A2", "Z3", "A3"]  # outputs of modules 0..5
DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])


def run(dtype):
    """handprop's values under the golden file's names."""
    model = we.model(dtype)
    X, Y = we.data(dtype)
    loss_fn = we.loss_fn()
    values, h = {}, X
    for name, module in zip(NAMES, model, strict=True):
        h = module(h)
        values[name] = h
    values["J"] = loss_fn(h, Y)
    values["L"] = BCELoss(reduction="none")(h, Y)
    grad = loss_fn.backward()
    for name, module in zip(reversed(NAMES), reversed(list(model)), strict=True):
        values[f"dJ/d{name}"] = grad
        grad = module.backward(grad)
    values["dJ/dX"] = grad
    for name, p in model.named_parameters():
        values[f"{name}.grad"] = p.grad
    return values


@DTYPES
def test_every_value_matches_torchs_golden_values(dtype):
    golden = GOLDEN[np.dtype(dtype).name]
    values = run(dtype)
    assert set(values) == set(golden)
    for name, expected in golden.items():
        assert_close(name, values[name], np.array(expected), dtype)


@DTYPES
def test_every_value_matches_live_torch(dtype):
    pytest.importorskip("torch")
    from parity import check_network

    X, Y = we.data(dtype)
    run_ = check_network(we.model(dtype), we.loss_fn(), X, Y)
    assert len(run_.outputs) == 6 and len(run_.grads) == 6


@pytest.mark.torch
def test_golden_file_was_written_by_the_torch_the_tests_run():
    """The golden values must come from the torch the live parity tests use: regenerate them
    (tests/golden/make_golden.py) when the pinned torch changes."""
    import torch

    assert GOLDEN["torch_version"] == torch.__version__


# --- the document's printed numbers ----------------------------------------------------------
# Copied from ../shared/reference/worked_example_source.md (torch's printout and the hand
# derivation). They are printed to 4 decimals, so each must be within 5e-5 of handprop's.

# The document's printed numbers (handprop.worked_example.DOCUMENT, transcribed from the source)
# under the golden file's names; the source's per-sample gradients are m = 2 times the cost's.
DOCUMENT = {
    name: we.DOCUMENT[source]
    for name, source in [
        ("Z1", "Z1"),
        ("A1", "A1"),
        ("Z2", "Z2"),
        ("A2", "A2"),
        ("Z3", "Z3"),
        ("A3", "A3"),
        ("L", "L"),
        ("J", "J"),
        ("0.weight.grad", "dJ/dW1"),
        ("0.bias.grad", "dJ/db1"),
        ("2.weight.grad", "dJ/dW2"),
        ("2.bias.grad", "dJ/db2"),
        ("4.weight.grad", "dJ/dW3"),
        ("4.bias.grad", "dJ/db3 printed by torch"),
    ]
}
DOCUMENT_PER_SAMPLE = {"dJ/dA3": we.DOCUMENT["dL/dA3"], "dJ/dZ3": we.DOCUMENT["dL/dZ3"]}


@DTYPES
def test_document_values_to_four_decimals(dtype):
    values = run(dtype)
    for name, printed in DOCUMENT.items():
        np.testing.assert_allclose(values[name], printed, rtol=0, atol=5e-5, err_msg=name)
    m = 2
    for name, printed in DOCUMENT_PER_SAMPLE.items():
        np.testing.assert_allclose(m * values[name], printed, rtol=0, atol=5e-5, err_msg=name)


@DTYPES
def test_document_step_4_is_wrong_and_why(dtype):
    """Step 4 multiplies dL/dZ3 (2, 1) elementwise by W3.T (2, 1); the chain rule for
    Z3 = A2 @ W3.T needs the matrix product dL/dZ3 @ W3, shape (2, 2)."""
    values = run(dtype)
    model = we.model(dtype)
    per_sample_dZ3 = 2 * values["dJ/dZ3"]
    document_dA2 = [[0.0456], [0.0766]]  # dL_dZ3 * W3.T, as printed
    np.testing.assert_allclose(
        per_sample_dZ3 * model[4].weight.data.T, document_dA2, atol=5e-5
    )  # handprop reproduces the mistake when asked to make it ...
    correct = 2 * values["dJ/dA2"]  # ... and its own backward does the right thing:
    assert correct.shape == (2, 2)
    np.testing.assert_allclose(correct, [[0.0456, -0.0273], [-0.1277, 0.0766]], atol=5e-5)
    np.testing.assert_allclose(correct, per_sample_dZ3 @ model[4].weight.data, rtol=1e-6)
    # the document's step 5 carries its step 4 on; the correct dL/dZ2 differs
    document_dZ2 = [[0, 0.0456], [0.0766, 0.0766]]
    assert not np.allclose(2 * values["dJ/dZ2"], document_dZ2, atol=1e-3)
    np.testing.assert_allclose(2 * values["dJ/dZ2"], [[0, -0.0273], [-0.1277, 0.0766]], atol=5e-5)


@DTYPES
def test_the_relu_kink_at_z2_is_exactly_zero_and_blocks_the_gradient(dtype):
    values = run(dtype)
    assert values["Z2"][0, 0] == 0.0  # exactly on the kink
    assert values["dJ/dA2"][0, 0] != 0.0  # gradient arrives ...
    assert values["dJ/dZ2"][0, 0] == 0.0  # ... and ReLU'(0) = 0 stops it, as in torch
