"""Gradient clipping against torch.nn.utils: the total norm, the clipped gradients, the
edge cases (no gradient, all zero, infinite, NaN), errors."""

import math

import numpy as np
import pytest
from closeness import assert_close
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from handprop import Parameter, Sequential
from handprop.layers import Linear, ReLU
from handprop.losses import MSELoss
from handprop.utils import clip_grad_norm_, clip_grad_value_

try:  # the tests marked torch need it (and skip without it); the others run anyway
    import torch
except ImportError:
    torch = None

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
NORMS = [2.0, 1.0, math.inf, 3.5, 0.5, 0.0, -math.inf]


@st.composite
def gradients(draw, dtype):
    """1 to 4 parameters of random shapes; each gradient random (scale 1e-3 to 1e3) or None."""
    grads = []
    for _ in range(draw(st.integers(1, 4))):
        shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
        if draw(st.integers(0, 4)) == 0:
            grads.append(np.zeros(shape, dtype) if draw(st.booleans()) else None)
            continue
        scale = draw(st.sampled_from([1e-3, 1.0, 1e3]))
        values = arrays(dtype, shape, elements=st.floats(-1, 1, width=32))
        grads.append((draw(values) * scale).astype(dtype))
    return grads


def _both(grads, dtype):
    ours, theirs = [], []
    for g in grads:
        shape = (1,) if g is None else g.shape
        p = Parameter(np.zeros(shape, dtype))
        p.grad = None if g is None else g.copy()
        t = torch.zeros(shape, dtype=torch.float32 if dtype is np.float32 else torch.float64)
        t.requires_grad_(True)
        t.grad = None if g is None else torch.tensor(g)
        ours.append(p)
        theirs.append(t)
    return ours, theirs


@pytest.mark.torch
@DTYPES
@given(data=st.data())
def test_clip_grad_norm_matches_torch(dtype, data):
    grads = data.draw(gradients(dtype))
    norm_type = data.draw(st.sampled_from(NORMS))
    max_norm = data.draw(st.sampled_from([1e-2, 1.0, 5.0, 1e4]))
    ours, theirs = _both(grads, dtype)
    total = clip_grad_norm_(ours, max_norm, norm_type)
    t_total = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert_close("total norm", total, t_total.numpy(), dtype)
    for i, (p, t) in enumerate(zip(ours, theirs, strict=True)):
        if t.grad is None:
            assert p.grad is None
            continue
        assert p.grad.dtype == dtype
        assert_close(f"clipped grad {i}", p.grad, t.grad.numpy(), dtype)


@pytest.mark.torch
@DTYPES
@given(data=st.data())
def test_clip_grad_value_matches_torch(dtype, data):
    grads = data.draw(gradients(dtype))
    clip = data.draw(st.sampled_from([1e-3, 0.5, 100.0]))
    ours, theirs = _both(grads, dtype)
    clip_grad_value_(ours, clip)
    if all(g is None for g in grads):  # torch 2.13 raises on a list of no gradients at all
        assert all(p.grad is None for p in ours)
        return
    torch.nn.utils.clip_grad_value_(theirs, clip)
    for p, t in zip(ours, theirs, strict=True):
        if t.grad is not None:
            np.testing.assert_array_equal(p.grad, t.grad.numpy())


@pytest.mark.torch
def test_infinite_and_nan_gradients_as_torch():
    for bad in (np.inf, np.nan):
        ours, theirs = _both([np.array([1.0, bad]), np.array([2.0])], np.float64)
        total = clip_grad_norm_(ours, 1.0)
        t_total = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
        assert (math.isnan(total) and t_total.isnan()) or total == t_total.item()
        for p, t in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(p.grad, t.grad.numpy())  # NaN at the same places
        with pytest.raises(RuntimeError, match="is non-finite, so it cannot be clipped"):
            clip_grad_norm_(_both([np.array([bad])], np.float64)[0], 1.0, error_if_nonfinite=True)


def test_the_global_norm_keeps_the_direction_and_per_parameter_clipping_would_not():
    a, b = Parameter(np.zeros(2)), Parameter(np.zeros(2))
    a.grad, b.grad = np.array([30.0, 0.0]), np.array([0.0, 40.0])  # total norm 50
    total = clip_grad_norm_([a, b], max_norm=5.0)
    assert total == 50.0
    np.testing.assert_allclose(a.grad, [3.0, 0.0], rtol=1e-6)  # both scaled by 5 / 50
    np.testing.assert_allclose(b.grad, [0.0, 4.0], rtol=1e-6)
    assert math.isclose(np.hypot(np.linalg.norm(a.grad), np.linalg.norm(b.grad)), 5.0, rel_tol=1e-6)


def test_small_gradients_and_no_gradients_are_left_alone():
    w = Parameter(np.zeros(3))
    w.grad = np.array([0.1, -0.2, 0.2])
    before = w.grad
    assert math.isclose(clip_grad_norm_(w, 1.0), 0.3, rel_tol=1e-12)
    np.testing.assert_array_equal(w.grad, before)  # coef clamped at 1: an exact no-op
    assert clip_grad_norm_([Parameter(np.zeros(2))], 1.0) == 0.0  # no .grad: nothing to do
    zero = Parameter(np.zeros(2))
    zero.grad = np.zeros(2)
    assert clip_grad_norm_([zero], 1.0) == 0.0 and not zero.grad.any()  # 1e-6: no 0 / 0


def test_the_callers_gradient_array_is_not_written_into():
    w = Parameter(np.zeros(2))
    mine = np.array([3.0, 4.0])
    w.grad = mine
    clip_grad_norm_([w], 1.0)
    clip_grad_value_([w], 0.1)
    np.testing.assert_array_equal(mine, [3.0, 4.0])
    np.testing.assert_allclose(w.grad, [0.1, 0.1])


def test_in_a_training_step_between_backward_and_step():
    model = Sequential(Linear(3, 8, rng=0), ReLU(), Linear(8, 1, rng=1))
    X, y = np.full((4, 3), 10.0), np.zeros((4, 1))
    loss = MSELoss()
    loss(model(X), y)
    model.backward(loss.backward())
    total = clip_grad_norm_(model.parameters(), 0.5)
    grads = [p.grad for p in model.parameters()]
    after = math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads))
    assert total > 0.5 and math.isclose(after, 0.5, rel_tol=1e-5)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: clip_grad_norm_([np.ones(2)], 1.0),
            TypeError,
            r"clip_grad_norm_: expected Parameters \(e.g. model.parameters\(\)\), got ndarray",
        ),
        (
            lambda: clip_grad_norm_([], "1"),
            TypeError,
            r"clip_grad_norm_: max_norm must be a number, got '1'",
        ),
        (
            lambda: clip_grad_norm_([], 1.0, norm_type="fro"),
            TypeError,
            r"norm_type must be a number, got 'fro'",
        ),
        (
            lambda: clip_grad_value_([Parameter(np.ones(2))], None),
            TypeError,
            r"clip_grad_value_: clip_value must be a number, got None",
        ),
    ],
)
def test_bad_input_raises_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()
