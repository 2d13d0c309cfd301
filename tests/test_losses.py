"""Losses at the edges against torch: probabilities 0 and 1, logits of +-1000, weights."""

import numpy as np
import pytest
from closeness import assert_close
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from strategies import EDGE_PROBABILITIES

from handprop.layers import Softmax
from handprop.losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss

try:  # the tests marked torch need it (and skip without it); the others run anyway
    import torch

    F = torch.nn.functional
except ImportError:
    torch = None

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
REDUCTIONS = pytest.mark.parametrize("reduction", ["mean", "sum", "none"])


def torch_value_and_grad(fn, x, t, reduction, **kwargs):
    tx = torch.tensor(x, requires_grad=True)
    out = fn(tx, torch.tensor(t), reduction=reduction, **kwargs)
    g = (
        torch.linspace(0.5, 1.5, x.size, dtype=tx.dtype).reshape(x.shape)
        if reduction == "none"
        else None
    )
    out.backward(g)
    return out.detach().numpy(), tx.grad.numpy(), None if g is None else g.numpy()


@pytest.mark.torch
@DTYPES
@REDUCTIONS
def test_bce_at_probabilities_exactly_zero_and_one(dtype, reduction):
    p = np.array([0.0, 0.0, 1.0, 1.0, 0.5, 1e-30], dtype=dtype)
    t = np.array([0.0, 1.0, 0.0, 1.0, 0.3, 1.0], dtype=dtype)
    expected, t_grad, g = torch_value_and_grad(F.binary_cross_entropy, p, t, reduction)
    loss = BCELoss(reduction=reduction)
    value = loss(p, t)
    grad = loss.backward(1.0 if g is None else g)
    assert_close("bce", value, expected, dtype)
    assert_close("bce grad", grad, t_grad, dtype)
    assert np.all(np.isfinite(grad))
    if reduction == "none":
        assert value[0] == 0 and value[3] == 0 and value[1] == 100 and value[2] == 100


@pytest.mark.torch
@DTYPES
@REDUCTIONS
def test_bce_with_logits_is_finite_at_plus_minus_1000(dtype, reduction):
    z = np.array([-1000.0, -1000.0, 1000.0, 1000.0, 0.0, 30.0], dtype=dtype)
    t = np.array([0.0, 1.0, 0.0, 1.0, 0.5, 0.0], dtype=dtype)
    pw = np.array([2.0, 0.5, 1.0, 3.0, 1.0, 1.5], dtype=dtype)
    for pos_weight in (None, pw):
        kwargs = {} if pos_weight is None else {"pos_weight": torch.tensor(pos_weight)}
        expected, t_grad, g = torch_value_and_grad(
            F.binary_cross_entropy_with_logits, z, t, reduction, **kwargs
        )
        loss = BCEWithLogitsLoss(reduction=reduction, pos_weight=pos_weight)
        value = loss(z, t)
        grad = loss.backward(1.0 if g is None else g)
        assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))
        assert_close("bce logits", value, expected, dtype)
        assert_close("bce logits grad", grad, t_grad, dtype)


@pytest.mark.torch
@DTYPES
@given(data=st.data())
def test_losses_match_torch_on_edge_values(dtype, data):
    n = data.draw(st.integers(1, 20))
    shape = (n, data.draw(st.integers(1, 3)))
    reduction = data.draw(st.sampled_from(["mean", "sum", "none"]))
    probs = st.one_of(st.sampled_from(EDGE_PROBABILITIES), st.floats(0, 1, width=32))
    p = data.draw(arrays(dtype, shape, elements=probs))
    t = data.draw(arrays(dtype, shape, elements=probs))
    weight = data.draw(
        st.one_of(st.none(), arrays(dtype, shape[-1:], elements=st.floats(0, 2, width=32)))
    )
    logits = data.draw(
        arrays(
            dtype,
            shape,
            elements=st.one_of(
                st.sampled_from([0.0, -1000.0, 1000.0, 40.0, -40.0]), st.floats(-20, 20, width=32)
            ),
        )
    )
    cases = [
        (BCELoss(weight=weight, reduction=reduction), F.binary_cross_entropy, p, t),
        (
            BCEWithLogitsLoss(weight=weight, reduction=reduction),
            F.binary_cross_entropy_with_logits,
            logits,
            t,
        ),
        (MSELoss(reduction=reduction), F.mse_loss, logits, p),
    ]
    for loss, fn, x, target in cases:
        kwargs = (
            {"weight": torch.tensor(weight)} if weight is not None and fn is not F.mse_loss else {}
        )
        expected, t_grad, g = torch_value_and_grad(fn, x, target, reduction, **kwargs)
        value = loss(x, target)
        assert_close(repr(loss), value, expected, dtype)
        assert_close(f"{loss!r} grad", loss.backward(1.0 if g is None else g), t_grad, dtype)


def test_mean_cost_is_a_python_float_and_none_an_array():
    assert isinstance(BCELoss()(np.array([0.5]), np.array([1.0])), float)
    assert isinstance(MSELoss(reduction="sum")(np.array([0.5]), np.array([1.0])), float)
    out = BCELoss(reduction="none")(np.array([0.5], dtype=np.float64), np.array([1]))
    assert isinstance(out, np.ndarray) and out.dtype == np.float64


def test_backward_scales_by_grad_output_and_does_not_write_into_it():
    loss = MSELoss(reduction="none")
    loss(np.array([1.0, 2.0]), np.array([0.0, 0.0]))
    g = np.array([1.0, 10.0])
    np.testing.assert_array_equal(loss.backward(g), [2.0, 40.0])
    np.testing.assert_array_equal(g, [1.0, 10.0])
    mean = MSELoss()
    mean(np.array([1.0, 2.0]), np.array([0.0, 0.0]))
    np.testing.assert_array_equal(mean.backward(3.0, retain_graph=True), 3.0 * mean.backward())


@pytest.mark.torch
@DTYPES
@REDUCTIONS
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("targets", ["indices", "probabilities"])
def test_cross_entropy_matches_torch_with_huge_logits(
    dtype, reduction, smoothing, weighted, targets
):
    x = np.array(
        [[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0], [-5.0, 30.0, 2.0], [1.0, 2.0, 3.0]], dtype=dtype
    )
    if targets == "indices":
        t = np.array([2, 0, 1, 2])
    else:
        t = np.array(
            [[0.0, 0.0, 1.0], [0.2, 0.3, 0.5], [0.0, 1.0, 0.0], [1 / 3, 1 / 3, 1 / 3]], dtype=dtype
        )
    weight = np.array([0.5, 2.0, 1.0], dtype=dtype) if weighted else None
    kwargs = {"label_smoothing": smoothing}
    if weighted:
        kwargs["weight"] = torch.tensor(weight)
    tx = torch.tensor(x, requires_grad=True)
    out = F.cross_entropy(tx, torch.tensor(t), reduction=reduction, **kwargs)
    g = torch.linspace(0.5, 1.5, 4, dtype=tx.dtype) if reduction == "none" else None
    out.backward(g)
    loss = CrossEntropyLoss(weight=weight, reduction=reduction, label_smoothing=smoothing)
    value = loss(x, t)
    grad = loss.backward(1.0 if g is None else g.numpy())
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))
    assert_close("cross entropy", value, out.detach().numpy(), dtype)
    assert_close("cross entropy grad", grad, tx.grad.numpy(), dtype)


@pytest.mark.torch
@DTYPES
def test_softmax_matches_torch_along_each_dim(dtype):
    x = np.array([[[1000.0, 0.0], [-1000.0, 3.0]], [[1.0, 2.0], [0.0, 0.0]]], dtype=dtype)
    g = np.arange(8, dtype=dtype).reshape(x.shape) - 3
    for dim in (0, 1, 2, -1):
        softmax = Softmax(dim)
        y = softmax(x)
        tx = torch.tensor(x, requires_grad=True)
        ty = torch.softmax(tx, dim)
        ty.backward(torch.tensor(g))
        assert_close(f"softmax dim={dim}", y, ty.detach().numpy(), dtype)
        assert_close(f"softmax' dim={dim}", softmax.backward(g), tx.grad.numpy(), dtype)
        np.testing.assert_allclose(y.sum(axis=dim), 1.0, rtol=1e-6)
