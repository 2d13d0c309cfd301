"""Values outside the everyday range, and odd inputs: torch's numbers, no NumPy warnings.

The suite runs with warnings as errors, so a NumPy RuntimeWarning escaping from handprop fails
these tests (reliability findings N5-N13, N20, N24, I2, I3). Each value is compared with
torch's where torch gives one.
"""

from __future__ import annotations

import numpy as np
import pytest

from handprop._arrays import as_float_array
from handprop.layers import LeakyReLU, Linear, Sigmoid, Softmax, Tanh
from handprop.losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
INF = np.inf


def needs_torch():
    return pytest.importorskip("torch")


def same(actual, expected):
    """Equal, NaN where NaN; float32 within a few units in the last place."""
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=1e-6, atol=0)


@DTYPES
def test_cross_entropy_with_a_masked_minus_inf_logit_is_finite_like_torch(dtype):
    """N10: torch gathers the target's log-probability, so a -inf on another class is fine."""
    torch = needs_torch()
    x = np.array([[0.0, -INF, 1.0], [2.0, 0.5, -INF]], dtype)
    t = np.array([0, 1])
    tx = torch.tensor(x, requires_grad=True)
    t_loss = torch.nn.functional.cross_entropy(tx, torch.tensor(t))
    t_loss.backward()
    ce = CrossEntropyLoss()
    loss = ce(x, t)
    assert np.isfinite(loss)
    same(loss, t_loss.item())
    same(ce.backward(), tx.grad.numpy())
    per_sample = CrossEntropyLoss(reduction="none")(x, t)
    same(
        per_sample,
        torch.nn.functional.cross_entropy(tx, torch.tensor(t), reduction="none").detach(),
    )


def test_cross_entropy_with_zero_total_weight_is_nan_silently_like_torch():
    """N11."""
    torch = needs_torch()
    x, t, w = np.array([[1.0, 2.0]]), np.array([0]), np.array([0.0, 1.0])
    ce = CrossEntropyLoss(weight=w)
    assert np.isnan(ce(x, t))
    assert np.isnan(ce.backward()).all()
    tx = torch.tensor(x, requires_grad=True)
    t_loss = torch.nn.functional.cross_entropy(tx, torch.tensor(t), weight=torch.tensor(w))
    t_loss.backward()
    assert np.isnan(t_loss.item()) and torch.isnan(tx.grad).all()


@DTYPES
def test_bce_with_logits_at_infinite_logits_matches_torch_silently(dtype):
    """N12: NaN losses where torch's are NaN, and the same gradients."""
    torch = needs_torch()
    z, t = np.array([INF, -INF, INF, -INF], dtype), np.array([1.0, 0.0, 0.0, 1.0], dtype)
    loss = BCEWithLogitsLoss(reduction="none")
    tz = torch.tensor(z, requires_grad=True)
    t_out = torch.nn.functional.binary_cross_entropy_with_logits(
        tz, torch.tensor(t), reduction="none"
    )
    t_out.backward(torch.ones(4, dtype=tz.dtype))
    same(loss(z, t), t_out.detach())
    same(loss.backward(np.ones(4, dtype)), tz.grad)


@DTYPES
def test_mse_overflow_is_inf_or_nan_silently_like_torch(dtype):
    """N13."""
    torch = needs_torch()
    big = 1e20 if dtype == np.float32 else 1e200
    x, t = np.array([big, INF], dtype), np.array([-big, INF], dtype)
    loss = MSELoss(reduction="none")
    tx = torch.tensor(x, requires_grad=True)
    t_out = torch.nn.functional.mse_loss(tx, torch.tensor(t), reduction="none")
    t_out.backward(torch.ones(2, dtype=tx.dtype))
    same(loss(x, t), t_out.detach())
    same(loss.backward(np.ones(2, dtype)), tx.grad)


def test_documented_thousands_hold_under_seterr_raise():
    """N20: a user's np.seterr(all="raise") must not turn the expected underflow of
    exp(-1000) into a FloatingPointError."""
    old = np.seterr(all="raise")
    try:
        x = np.array([[-1000.0, 0.0, 1000.0]])
        same(Sigmoid()(x), [[0.0, 0.5, 1.0]])
        same(Softmax()(x), [[0.0, 0.0, 1.0]])
        loss = BCEWithLogitsLoss()
        same(loss(x, np.array([[0.0, 1.0, 1.0]])), np.log(2) / 3)
        loss.backward()
        ce = CrossEntropyLoss()
        same(ce(x, np.array([2])), 0.0)
        ce.backward()
    finally:
        np.seterr(**old)


@DTYPES
def test_infinite_gradients_through_tanh_softmax_and_leaky_relu_match_torch_silently(dtype):
    """N5, N6: inf * 0 inside backward (or inside the unused branch of a where)."""
    torch = needs_torch()
    x = np.array([[-INF, 0.0, INF]], dtype)
    g = np.array([[INF, -INF, INF]], dtype)
    for layer, t_fn in (
        (Tanh(), torch.tanh),
        (Softmax(), lambda v: torch.softmax(v, dim=-1)),
        (LeakyReLU(0.0), lambda v: torch.nn.functional.leaky_relu(v, 0.0)),
    ):
        tx = torch.tensor(x, requires_grad=True)
        t_y = t_fn(tx)
        t_y.backward(torch.tensor(g))
        same(layer(x), t_y.detach())
        same(layer.backward(g), tx.grad)


@DTYPES
def test_softmax_of_inf_rows_is_nan_silently_like_torch(dtype):
    """N7: a row with +inf, and a fully masked row of -inf."""
    torch = needs_torch()
    x = np.array([[INF, 0.0], [-INF, -INF]], dtype)
    same(Softmax()(x), torch.softmax(torch.tensor(x), dim=-1))


def test_a_float64_value_beyond_float32_range_becomes_inf_silently():
    """N9, S13: torch's cast gives inf too."""
    layer = Linear(1, 1, rng=0)
    layer.load_state_dict({"weight": np.array([[1e300]]), "bias": np.array([0.0])})
    assert layer.weight.data[0, 0] == INF
    layer2 = Linear(1, 1, rng=0)
    assert np.isinf(layer2(np.array([[1e300]]))).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_a_python_float_grad_output_casts_as_numpy_does_silently(dtype):
    """A Python number (loss.backward()'s default 1.0) takes a shortcut in the array checks;
    it must give NumPy's own cast, bit for bit, at every edge: beyond float32's range (inf,
    as torch), subnormal, signed zero, NaN; and no warning, even under seterr(all="raise")."""
    big = float(np.finfo(np.float32).max)
    values = [1.0, 0.1, -2.5, big, np.nextafter(big, np.inf), 3.5e38, -1e39, 1e300, INF, -INF]
    values += [np.nan, 1e-46, 5e-324, -0.0, 0.0, 1.0000000596046448]  # the last: a tie
    tiny = float(np.finfo(np.float32).smallest_normal)
    values += [tiny, -tiny, np.nextafter(tiny, 0.0), -np.nextafter(tiny, 0.0)]
    loss = MSELoss()
    loss(np.array([1.0, 2.0], dtype), np.zeros(2, dtype))
    for value in map(float, values):  # Python floats (np.nextafter gives np.float64)
        with np.errstate(over="ignore"):
            expected = np.asarray(value).astype(dtype)
        with np.errstate(all="raise"):
            cast = as_float_array(value, "test", "grad_output", np.dtype(dtype))
            grad = loss.backward(value, retain_graph=True)
            reference = loss.backward(np.float64(value), retain_graph=True)  # the long path
        assert cast.dtype == dtype and cast.shape == ()
        assert cast.tobytes() == expected.tobytes(), value
        assert grad.dtype == dtype and grad.tobytes() == reference.tobytes(), value


def test_zero_width_inputs():
    """N24: torch's softmax returns the empty (N, 0) tensor; CrossEntropy needs a class."""
    softmax = Softmax()
    y = softmax(np.zeros((2, 0)))
    assert y.shape == (2, 0)
    assert softmax.backward(np.zeros((2, 0))).shape == (2, 0)
    with pytest.raises(
        ValueError,
        match=r"CrossEntropyLoss\(\): expected input of shape \(N, C\) with N >= 1 and C >= 1 .* got \(2, 0\)",
    ):
        CrossEntropyLoss()(np.zeros((2, 0)), np.array([0, 0]))


def test_ragged_lists_and_unconvertible_tensors_are_refused_naming_the_module():
    """I2, I3."""
    with pytest.raises(
        ValueError,
        match=r"Linear\(in_features=2, .*\): input cannot be made into an array .* every row must have the same length",
    ):
        Linear(2, 1, rng=0)([[1.0, 2.0], [3.0]])
    torch = needs_torch()
    layer = Linear(2, 1, rng=0)
    with pytest.raises(
        TypeError,
        match=r"Linear\(.*\): input cannot be made into an array .*; pass tensor.detach\(\)",
    ):
        layer(torch.ones(1, 2, requires_grad=True))
    with pytest.raises(
        TypeError, match=r"Sigmoid\(\): input cannot be made into an array .* tensor.float\(\)"
    ):
        Sigmoid()(torch.ones(2, dtype=torch.bfloat16))
    assert layer(torch.ones(1, 2, dtype=torch.float16)).dtype == np.float32  # CPU tensors work


@DTYPES
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_ignore_index_matches_torch(dtype, reduction, smoothing, weighted):
    """N23: torch's default ignore_index=-100 used to be refused as an out-of-range class."""
    torch = needs_torch()
    rng = np.random.default_rng(7)
    x = rng.normal(size=(5, 3)).astype(dtype)
    t = np.array([0, -100, 2, 1, -100])
    w = np.array([0.5, 2.0, 1.0], dtype) if weighted else None
    ce = CrossEntropyLoss(weight=w, reduction=reduction, label_smoothing=smoothing)
    tx = torch.tensor(x, requires_grad=True)
    t_loss = torch.nn.functional.cross_entropy(
        tx, torch.tensor(t), weight=None if w is None else torch.tensor(w),
        reduction=reduction, label_smoothing=smoothing,
    )  # fmt: skip
    g = np.linspace(0.5, 1.5, 5).astype(dtype) if reduction == "none" else 1.0
    t_loss.backward(torch.tensor(g) if reduction == "none" else None)
    same(ce(x, t), t_loss.detach().numpy())
    grad = ce.backward(g)
    same(grad, tx.grad.numpy())
    assert (grad[[1, 4]] == 0).all()


def test_cross_entropy_with_every_sample_ignored_is_nan_like_torch():
    torch = needs_torch()
    x, t = np.ones((2, 3)), np.array([-100, -100])
    tx = torch.tensor(x, requires_grad=True)
    t_loss = torch.nn.functional.cross_entropy(tx, torch.tensor(t))
    t_loss.backward()
    ce = CrossEntropyLoss()
    assert np.isnan(ce(x, t)) and np.isnan(t_loss.item())
    same(ce.backward(), tx.grad.numpy())
    custom = CrossEntropyLoss(ignore_index=1)
    custom(x, np.array([1, 0]))
    assert (custom.backward()[0] == 0).all()
    with pytest.raises(TypeError, match="CrossEntropyLoss: ignore_index must be an int, got 0.5"):
        CrossEntropyLoss(ignore_index=0.5)
