"""GELU, LogSoftmax, Identity, Dropout and the losses L1Loss, HuberLoss, NLLLoss: torch's
values at the edges in both dtypes, Dropout's semantics, errors on bad input, and their reach
(gradcheck, save/load, torch interop, trace). Random networks with all of them are checked
against torch in test_parity_random.py."""

import json
from pathlib import Path

import numpy as np
import pytest
from closeness import assert_close

import handprop
from handprop import Sequential, gradcheck
from handprop.layers import GELU, Dropout, Identity, Linear, LogSoftmax
from handprop.losses import CrossEntropyLoss, HuberLoss, L1Loss, MSELoss, NLLLoss

try:  # the tests marked torch need it (and skip without it); the others run anyway
    import torch

    TORCH = {np.float32: torch.float32, np.float64: torch.float64}
except ImportError:
    torch = None

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
EDGES = [-1000.0, -30.0, -5.0, -1.0, -1e-8, -0.0, 0.0, 1e-8, 0.5, 1.0, 3.0, 30.0, 1000.0]


# -- layers against torch ---------------------------------------------------------------------


@pytest.mark.torch
@DTYPES
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_matches_torch_at_the_edges(dtype, approximate):
    x = np.array(EDGES, dtype=dtype)
    g = np.linspace(-1, 1, x.size).astype(dtype)
    gelu = GELU(approximate)
    y, dx = gelu(x), gelu.backward(g)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.gelu(tx, approximate=approximate)
    ty.backward(torch.tensor(g))
    assert_close(f"GELU({approximate})", y, ty.detach().numpy(), dtype)
    assert_close(f"GELU({approximate})'", dx, tx.grad.numpy(), dtype)
    assert y.dtype == dx.dtype == dtype


@pytest.mark.torch
@DTYPES
def test_log_softmax_matches_torch_for_large_logits_and_any_dim(dtype):
    x = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0], [1e-8, -30.0, 30.0]], dtype=dtype)
    g = np.arange(9, dtype=dtype).reshape(3, 3) - 4
    for dim in (0, 1, -1):
        layer = LogSoftmax(dim)
        y, dx = layer(x), layer.backward(g)
        tx = torch.tensor(x, requires_grad=True)
        ty = torch.log_softmax(tx, dim=dim)
        ty.backward(torch.tensor(g))
        assert_close(f"LogSoftmax({dim})", y, ty.detach().numpy(), dtype)
        assert_close(f"LogSoftmax({dim})'", dx, tx.grad.numpy(), dtype, scale=12.0)
        assert np.isfinite(y).all()  # log(softmax) would give log(0) = -inf at -1000


def test_identity_passes_values_and_gradients_unchanged_and_read_only():
    x = np.array([[1.0, -2.0]], dtype=np.float32)
    identity = Identity(54, unused="ignored")  # arguments ignored, as torch's
    y = identity(x)
    np.testing.assert_array_equal(y, x)
    assert not y.flags.writeable and x.flags.writeable  # the caller's array stays its own
    x[0, 0] = 7.0
    assert y[0, 0] == 1.0  # a copy: the caller's later edit does not reach the output
    g = identity.backward(np.array([[3.0, 4.0]], dtype=np.float64))
    np.testing.assert_array_equal(g, [[3.0, 4.0]])
    assert g.dtype == np.float32  # the forward's dtype


# -- Dropout ----------------------------------------------------------------------------------


def test_dropout_drops_with_probability_p_and_keeps_the_expected_value():
    dropout = Dropout(p=0.3, rng=0)
    x = np.ones((200, 500))
    y = dropout(x)
    kept = dropout.mask
    assert kept.dtype == bool and kept.shape == x.shape
    assert abs(kept.mean() - 0.7) < 0.005  # 100000 draws: 4.5 standard deviations
    np.testing.assert_allclose(y[kept], 1 / 0.7)  # inverted scaling
    assert (y[~kept] == 0).all()
    assert abs(y.mean() - 1.0) < 0.01  # E[y] = x
    g = np.full(x.shape, 2.0)
    np.testing.assert_array_equal(dropout.backward(g), np.where(kept, 2.0 / 0.7, 0.0))


def test_dropout_is_the_identity_in_eval_and_for_p_0_and_zero_for_p_1():
    x = np.arange(6.0).reshape(2, 3)
    for module in (Dropout(0.5, rng=0).eval(), Dropout(0.0, rng=0)):
        np.testing.assert_array_equal(module(x), x)
        np.testing.assert_array_equal(module.backward(np.ones((2, 3))), np.ones((2, 3)))
    everything = Dropout(1.0, rng=0)
    np.testing.assert_array_equal(everything(x), np.zeros((2, 3)))  # zeros, not 0 * inf = NaN
    assert not everything.mask.any()
    np.testing.assert_array_equal(everything.backward(np.ones((2, 3))), np.zeros((2, 3)))


def test_dropout_masks_are_seeded_locally_and_fresh_each_forward():
    state = np.random.get_state()  # noqa: NPY002 (checking the legacy global state)
    a, b = Dropout(0.5, rng=7), Dropout(0.5, rng=np.random.default_rng(7))
    first = a(np.ones(64))
    np.testing.assert_array_equal(first, b(np.ones(64)))  # a seed or a Generator: the same
    assert not np.array_equal(first, a(np.ones(64)))  # each forward draws a new mask
    assert np.array_equal(state[1], np.random.get_state()[1])  # noqa: NPY002


@pytest.mark.torch
@DTYPES
def test_dropout_with_torchs_mask_gives_torchs_values(dtype):
    """The test the .mask is for: torch's native dropout given handprop's mask."""
    dropout = Dropout(0.25, rng=3)
    x = np.random.default_rng(0).normal(size=(4, 5)).astype(dtype)
    y = dropout(x)
    g = np.random.default_rng(1).normal(size=(4, 5)).astype(dtype)
    dx = dropout.backward(g)
    mask = torch.from_numpy(np.array(dropout.mask))
    scale = 1 / (1 - 0.25)
    np.testing.assert_array_equal(y, (torch.from_numpy(x) * mask * scale).numpy())
    t_dx = torch.ops.aten.native_dropout_backward(torch.from_numpy(g), mask, scale)
    np.testing.assert_array_equal(dx, t_dx.numpy())


def test_dropout_under_no_grad_in_training_still_drops_as_torch():
    dropout = Dropout(0.5, rng=0)
    with handprop.no_grad():
        y = dropout(np.ones(1000))
    assert 400 < int((y == 0).sum()) < 600


# -- losses against torch ---------------------------------------------------------------------


@pytest.mark.torch
@DTYPES
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_l1_and_huber_match_torch_at_the_kinks_and_joins(dtype, reduction):
    x = np.array([[0.0, 1.0, -1.0, 2.5], [0.5, -0.5, 3.0, 1e-8]], dtype=dtype)
    t = np.array([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]], dtype=dtype)  # |d| = 0, 1, 2
    for loss, t_loss in (
        (L1Loss(reduction), torch.nn.L1Loss(reduction=reduction)),
        (HuberLoss(reduction, 1.0), torch.nn.HuberLoss(reduction=reduction, delta=1.0)),
        (HuberLoss(reduction, 0.5), torch.nn.HuberLoss(reduction=reduction, delta=0.5)),
        (HuberLoss(reduction, 2.5), torch.nn.HuberLoss(reduction=reduction, delta=2.5)),
    ):
        cost = loss(x, t)
        g = 1.0 if reduction != "none" else np.linspace(0.5, 1.5, x.size).reshape(x.shape)
        dx = loss.backward(np.asarray(g, dtype=dtype))
        tx = torch.tensor(x, requires_grad=True)
        t_cost = t_loss(tx, torch.tensor(t))
        t_cost.backward(None if reduction != "none" else torch.tensor(g, dtype=TORCH[dtype]))
        assert_close(repr(loss), cost, t_cost.detach().numpy(), dtype)
        assert_close(f"{loss!r}'", dx, tx.grad.numpy(), dtype)
    assert L1Loss().backward is not None and L1Loss.kinks_at == (0.0,)


@pytest.mark.torch
@DTYPES
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_matches_torch_with_weights_and_ignore_index(dtype, reduction):
    log_p = np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]]))
    log_p = log_p.astype(dtype)
    target = np.array([0, -100, 2])
    weight = np.array([2.0, 1.0, 0.5], dtype=dtype)
    for loss, t_loss in (
        (NLLLoss(reduction=reduction), torch.nn.NLLLoss(reduction=reduction)),
        (
            NLLLoss(weight, ignore_index=2, reduction=reduction),
            torch.nn.NLLLoss(torch.tensor(weight), ignore_index=2, reduction=reduction),
        ),
    ):
        t = np.where(target == -100, 1, target) if loss.ignore_index != -100 else target
        cost = loss(log_p, t)
        g = 1.0 if reduction != "none" else np.array([0.5, 1.0, 1.5], dtype=dtype)
        dx = loss.backward(np.asarray(g, dtype=dtype))
        tx = torch.tensor(log_p, requires_grad=True)
        t_cost = t_loss(tx, torch.tensor(t))
        t_cost.backward(None if reduction != "none" else torch.tensor(g))
        assert_close(repr(loss), cost, t_cost.detach().numpy(), dtype)
        assert_close(f"{loss!r}'", dx, tx.grad.numpy(), dtype)


@pytest.mark.torch
def test_nll_loss_of_every_sample_ignored_is_nan_for_the_mean_as_torch():
    loss = NLLLoss()
    cost = loss(np.zeros((2, 3)), np.array([-100, -100]))
    t_cost = torch.nn.NLLLoss()(torch.zeros(2, 3), torch.tensor([-100, -100]))
    assert np.isnan(cost) and torch.isnan(t_cost)
    np.testing.assert_array_equal(loss.backward(), np.zeros((2, 3)))


@DTYPES
def test_log_softmax_then_nll_is_cross_entropy(dtype):
    """NLLLoss on LogSoftmax's output is CrossEntropyLoss on the logits: cost and gradient."""
    logits = np.random.default_rng(0).normal(size=(5, 4)).astype(dtype) * 3
    y = np.array([0, 3, 1, 1, 2])
    weight = np.array([1.0, 2.0, 0.5, 1.5])
    pair, nll = LogSoftmax(dim=1), NLLLoss(weight)
    cost = nll(pair(logits), y)
    grad = pair.backward(nll.backward())
    ce = CrossEntropyLoss(weight)
    assert_close("cost", cost, ce(logits, y), dtype)
    assert_close("dJ/dlogits", grad, ce.backward(), dtype)


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: Dropout(1.5),
            ValueError,
            r"dropout probability has to be between 0 and 1, but got 1.5",
        ),
        (lambda: Dropout(-0.1), ValueError, r"dropout probability has to be between 0 and 1"),
        (lambda: Dropout("0.5"), TypeError, r"Dropout: p must be a number, got '0.5'"),
        (lambda: GELU("erf"), ValueError, r"GELU: approximate must be 'none' or 'tanh', got 'erf'"),
        (lambda: LogSoftmax(1.0), TypeError, r"LogSoftmax: dim must be an int, got 1.0"),
        (
            lambda: LogSoftmax(2)(np.ones((2, 2))),
            ValueError,
            r"dim 2 is out of range for input of shape \(2, 2\)",
        ),
        (lambda: HuberLoss(delta=0.0), ValueError, r"HuberLoss: delta must be positive, got 0.0"),
        (lambda: HuberLoss(delta="1"), TypeError, r"HuberLoss: delta must be a number"),
        (
            lambda: L1Loss()(np.ones(3), np.ones(2)),
            ValueError,
            r"target shape \(2,\) is different from input shape \(3,\)",
        ),
        (
            lambda: NLLLoss()(np.zeros((2, 3)), np.array([0.0, 1.0])),
            TypeError,
            r"NLLLoss\(\): target must be integer class indices",
        ),
        (
            lambda: NLLLoss()(np.zeros((2, 3)), np.array([0, 3])),
            ValueError,
            r"class-index target must be in \[0, 2\] for 3 classes \(or ignore_index=-100\), got 3 at index 1",
        ),
        (
            lambda: NLLLoss()(np.zeros(3), np.array([0])),
            ValueError,
            r"expected input of shape \(N, C\)",
        ),
        (
            lambda: NLLLoss(weight=[1.0, 2.0])(np.zeros((1, 3)), np.array([0])),
            ValueError,
            r"weight must have one entry per class, shape \(3,\), got \(2,\)",
        ),
        (
            lambda: NLLLoss(ignore_index=0.5),
            TypeError,
            r"NLLLoss: ignore_index must be an int, got 0.5",
        ),
    ],
)
def test_bad_input_raises_a_clear_error(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.torch
def test_torchs_own_errors_are_errors_here():
    """torch refuses these too (same reasons): p outside [0, 1], an out-of-range class."""
    with pytest.raises(ValueError):
        torch.nn.Dropout(1.5)
    with pytest.raises(ValueError):
        Dropout(1.5)
    with pytest.raises(IndexError):
        torch.nn.NLLLoss()(torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError):
        NLLLoss()(np.zeros((2, 3)), np.array([0, 3]))


def test_backward_before_forward_names_the_module():
    for module in (GELU(), LogSoftmax(), Identity(), Dropout()):
        with pytest.raises(RuntimeError, match=type(module).__name__):
            module.backward(np.ones(2))


# -- reach: gradcheck, save/load, interop, trace ----------------------------------------------


def test_gradcheck_passes_for_every_new_module_and_loss():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 4))
    cases = [
        (
            Sequential(Linear(4, 5, rng=0), GELU(), Linear(5, 3, rng=1)),
            MSELoss(),
            rng.normal(size=(3, 3)),
        ),
        (
            Sequential(Linear(4, 5, rng=0), GELU("tanh"), Linear(5, 3, rng=1)),
            HuberLoss(delta=0.2),
            rng.normal(size=(3, 3)),
        ),
        (Sequential(Linear(4, 3, rng=0), LogSoftmax(dim=1)), NLLLoss(), np.array([0, 2, 1])),
        (
            Sequential(Linear(4, 5, rng=0), Identity(), Linear(5, 3, rng=1)),
            L1Loss(),
            rng.normal(size=(3, 3)),
        ),
        # Dropout in training mode: gradcheck holds the mask its backward used
        (
            Sequential(Linear(4, 6, rng=0), Dropout(0.5, rng=1), Linear(6, 3, rng=2)),
            MSELoss(),
            rng.normal(size=(3, 3)),
        ),
    ]
    for model, loss, y in cases:
        report = gradcheck(model, loss, X, y)
        assert report.passed, f"{model}\n{report}"


def test_gradcheck_fails_a_wrong_gelu_backward_and_a_dropout_that_draws_again():
    class WrongGELU(GELU):  # the product rule forgotten: Phi(x) only
        def backward(self, grad_output, *, input_grad=True):
            return grad_output * self._cdf(self._x)

    X = np.random.default_rng(0).normal(size=(3, 4))
    y = np.zeros((3, 3))
    wrong = Sequential(Linear(4, 5, rng=0), WrongGELU(), Linear(5, 3, rng=1))
    assert not gradcheck(wrong, MSELoss(), X, y).passed

    class RedrawingDropout(Dropout):  # a mask not held fixed: finite differences see noise
        def forward(self, input):
            self._fixed_mask = None
            return super().forward(input)

    noisy = Sequential(Linear(4, 6, rng=0), RedrawingDropout(0.5, rng=1), Linear(6, 3, rng=2))
    assert not gradcheck(noisy, MSELoss(), X, y).passed


def test_gradcheck_names_l1s_kink_where_the_output_equals_the_target():
    X = np.array([[1.0, 2.0], [0.5, -1.0]])
    model = Sequential(Linear(2, 2, dtype=np.float64, rng=0))
    y = np.array(model(X)) + np.array([[0.0, 0.3], [-0.2, 1.0]])  # d = 0 exactly at [0, 0]
    report = gradcheck(model, L1Loss(), X, y)
    assert report.passed
    assert [k.value for k in report.kinks] == ["(Z1 - Y)[0, 0]"]
    assert "input of the loss L1Loss()" in str(report.kinks[0])


def test_save_and_load_keep_every_new_module(tmp_path):
    model = Sequential(
        Linear(3, 4, rng=0),
        GELU("tanh"),
        Dropout(0.2),
        Identity(),
        Linear(4, 3, rng=1),
        LogSoftmax(1),
    )
    handprop.save(model, tmp_path / "m.npz")
    again = handprop.load(tmp_path / "m.npz")
    assert repr(again) == repr(model)
    x = np.random.default_rng(0).normal(size=(2, 3))
    np.testing.assert_array_equal(again.eval()(x), model.eval()(x))


@pytest.mark.torch
def test_torch_round_trip_and_parity_report_with_dropout_in_training():
    from handprop.interop import from_torch, parity_report, to_torch, to_torch_loss

    model = Sequential(
        Linear(3, 6, rng=0), GELU(), Dropout(0.4, rng=1), Linear(6, 3, rng=2), LogSoftmax(dim=1)
    )
    twin = to_torch(model)
    assert [type(m).__name__ for m in twin] == ["Linear", "GELU", "Dropout", "Linear", "LogSoftmax"]
    assert twin[2].p == 0.4 and twin[2].training
    back = from_torch(twin.eval())
    assert repr(back) == repr(model) and not back[2].training
    assert isinstance(to_torch_loss(HuberLoss(delta=0.3)), torch.nn.HuberLoss)
    assert to_torch_loss(NLLLoss(ignore_index=1)).ignore_index == 1
    X = np.random.default_rng(0).normal(size=(4, 3))
    report = parity_report(model, NLLLoss(), X, np.array([0, 1, 2, 1]))
    assert report.ok, str(report)  # torch was given the masks handprop drew
    assert (model[2].mask == 0).any()  # something was dropped


def test_trace_and_derivation_cover_the_new_modules():
    X = np.random.default_rng(0).normal(size=(2, 3))
    model = Sequential(
        Linear(3, 4, rng=0),
        GELU(),
        Linear(4, 4, rng=1),
        Dropout(0.5, rng=2),
        Linear(4, 3, rng=3),
        LogSoftmax(1),
    )
    t = handprop.trace(model, NLLLoss(), X, np.array([0, 2]))
    md = t.to_markdown()
    assert r"\operatorname{erf}" in md and "LogSoftmax(dim=1)" in md and "M / (1 - p)" in md
    # every Jacobian view agrees with the code's backward
    assert md.count("the same as the code's result (up to float32 rounding)") >= 3
    assert "max difference" not in md
    svg = t.to_svg()
    assert "GELU(approximate=" in svg and "Dropout(p=0.5)" in svg
    eval_md = handprop.trace(model.eval(), NLLLoss(), X, np.array([0, 2])).to_markdown()
    assert "M / (1 - p)" not in eval_md  # a Dropout in evaluation is the identity


# -- golden values written by torch (tests/golden/make_golden_modules.py): no torch needed ----

GOLDEN = json.loads((Path(__file__).parent / "golden" / "modules.json").read_text())


@DTYPES
def test_every_new_module_matches_torchs_golden_values(dtype):
    golden, inputs = GOLDEN[np.dtype(dtype).name], GOLDEN["inputs"]
    x, g = np.array(inputs["X"], dtype=dtype), np.array(inputs["G"], dtype=dtype)
    dropout = Dropout(0.25)
    dropout._fixed_mask = np.array(inputs["MASK"])  # torch was given this mask
    layers = {
        "GELU(approximate='none')": GELU(),
        "GELU(approximate='tanh')": GELU("tanh"),
        "LogSoftmax(dim=1)": LogSoftmax(1),
        "LogSoftmax(dim=0)": LogSoftmax(0),
        "Dropout(p=0.25)": dropout,
    }
    for name, module in layers.items():
        assert_close(f"{name} output", module(x), golden[name]["output"], dtype)
        assert_close(f"{name} grad", module.backward(g), golden[name]["grad_input"], dtype)
    target = np.array(inputs["TARGET"], dtype=dtype)
    losses = {
        "L1Loss()": (L1Loss(), target),
        "HuberLoss(delta=1.5)": (HuberLoss(delta=1.5), target),
        "NLLLoss(weight)": (NLLLoss(np.array(inputs["WEIGHT"])), np.array(inputs["CLASSES"])),
    }
    for name, (loss, t) in losses.items():
        assert_close(f"{name} cost", loss(x, t), golden[name]["cost"], dtype)
        assert_close(f"{name} grad", loss.backward(), golden[name]["grad_input"], dtype)
