"""BatchNorm1d and LayerNorm: torch's conventions step by step (several training steps, then
evaluation; buffers, state_dict keys), the backward against a graph-by-graph derivation,
a constant feature, errors, gradcheck, save/load and interop. Random networks containing them
are checked against torch in test_parity_random.py."""

import json
from pathlib import Path

import numpy as np
import pytest
from closeness import assert_close
from hypothesis import given
from hypothesis import strategies as st

import handprop
from handprop import Sequential, gradcheck
from handprop.layers import BatchNorm1d, LayerNorm, Linear, ReLU
from handprop.losses import MSELoss

try:  # the tests marked torch need it (and skip without it); the others run anyway
    import torch
    from parity import _norm_output_scale, _norm_scale

    TORCH = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}
except ImportError:
    torch = None

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])


def _same_start(ours, theirs, rng):
    """Give both the same (non-trivial) weight and bias."""
    for name, p in ours.named_parameters():
        p.data[...] = rng.normal(size=p.shape)
        with torch.no_grad():
            getattr(theirs, name).copy_(torch.from_numpy(p.data.copy()))


@pytest.mark.torch
@DTYPES
@given(
    momentum=st.sampled_from([0.1, None, 0.5, 0.0, 1.0]),
    affine=st.booleans(),
    bias=st.booleans(),
    track=st.booleans(),
    length=st.sampled_from([None, 1, 5]),
    batch=st.integers(2, 9),
    features=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_batch_norm_trains_then_evaluates_as_torch(
    dtype, momentum, affine, bias, track, length, batch, features, seed
):
    rng = np.random.default_rng(seed)
    kwargs = {"momentum": momentum, "affine": affine, "track_running_stats": track, "bias": bias}
    ours = BatchNorm1d(features, dtype=dtype, **kwargs)
    theirs = torch.nn.BatchNorm1d(features, dtype=TORCH[np.dtype(dtype)], **kwargs)
    _same_start(ours, theirs, rng)
    shape = (batch, features) if length is None else (batch, features, length)
    for step in range(5):  # three training steps, then evaluation twice
        training = step < 3
        ours.train(training)
        theirs.train(training)
        ours.zero_grad()
        theirs.zero_grad()
        x = (rng.normal(size=shape) * rng.uniform(0.5, 3) + rng.normal()).astype(dtype)
        g = rng.normal(size=shape).astype(dtype)
        y, dx = ours(x), ours.backward(g)
        tx = torch.tensor(x, requires_grad=True)
        ty = theirs(tx)
        ty.backward(torch.tensor(g))
        where = f"step {step + 1} ({'train' if training else 'eval'})"
        # the size of the terms the output is made of: a batch of two with a small spread
        # amplifies each implementation's rounding of x - mean by inv_std
        expected = ty.detach().numpy()
        scale = max(float(np.abs(expected).max()), _norm_output_scale(ours, x))
        assert_close(f"{where} output", y, expected, dtype, scale=scale)
        # the size of the terms dJ/dx sums (they cancel), at least 10 as before: a batch with a
        # small spread amplifies each implementation's rounding by inv_std (parity._norm_scale)
        scale = max(10.0, _norm_scale(ours, g, x))
        assert_close(f"{where} dJ/dx", dx, tx.grad.numpy(), dtype, scale=scale)
        for name, p in ours.named_parameters():
            assert_close(f"{where} {name}.grad", p.grad, getattr(theirs, name).grad.numpy(), dtype)
        t_buffers = dict(theirs.named_buffers())
        assert list(dict(ours.named_buffers())) == list(t_buffers)
        for name, buffer in ours.named_buffers():
            assert_close(f"{where} {name}", buffer, t_buffers[name].numpy(), dtype)
    assert list(ours.state_dict()) == list(theirs.state_dict())  # torch's keys, torch's order
    if track:
        assert int(ours.num_batches_tracked) == 3 and ours.num_batches_tracked.dtype == np.int64


@pytest.mark.torch
@DTYPES
@given(
    shape=st.sampled_from([(4, 6), (2, 3, 5), (3, 2, 2, 4)]),
    trailing=st.integers(1, 2),
    affine=st.booleans(),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_layer_norm_matches_torch(dtype, shape, trailing, affine, bias, seed):
    rng = np.random.default_rng(seed)
    normalized = shape[-trailing:]
    ours = LayerNorm(normalized, elementwise_affine=affine, bias=bias, dtype=dtype)
    theirs = torch.nn.LayerNorm(
        normalized, elementwise_affine=affine, bias=bias, dtype=TORCH[np.dtype(dtype)]
    )
    _same_start(ours, theirs, rng)
    x = (rng.normal(size=shape) * 4 + 1).astype(dtype)
    g = rng.normal(size=shape).astype(dtype)
    for mode in (True, False):  # the same in training and evaluation
        ours.train(mode).zero_grad()
        theirs.train(mode).zero_grad()
        y, dx = ours(x), ours.backward(g)
        tx = torch.tensor(x, requires_grad=True)
        ty = theirs(tx)
        ty.backward(torch.tensor(g))
        assert_close("output", y, ty.detach().numpy(), dtype)
        assert_close("dJ/dx", dx, tx.grad.numpy(), dtype, scale=10.0)
        for name, p in ours.named_parameters():
            assert_close(f"{name}.grad", p.grad, getattr(theirs, name).grad.numpy(), dtype)
    assert list(ours.state_dict()) == list(theirs.state_dict())


def _graph_backward(x, gamma, g, eps):
    """BatchNorm's dJ/dx the long way, node by node on its graph (CS231n's first version, the
    one docs/layers/batch_norm.md derives), in float64: no shared code with the layer."""
    m = x.shape[0]
    mu = x.sum(axis=0) / m
    xc = x - mu  # centred
    var = (xc**2).sum(axis=0) / m
    std = np.sqrt(var + eps)
    inv = 1.0 / std
    x_hat = xc * inv
    d_x_hat = g * gamma
    d_inv = (d_x_hat * xc).sum(axis=0)
    d_xc = d_x_hat * inv
    d_std = -d_inv / std**2
    d_var = d_std * 0.5 / std
    d_sq = np.ones_like(x) * d_var / m
    d_xc = d_xc + 2 * xc * d_sq
    d_mu = -d_xc.sum(axis=0)
    d_x = d_xc + d_mu / m
    return x_hat, d_x


@given(batch=st.integers(2, 12), features=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_the_compact_backward_equals_the_graph_by_graph_derivation(batch, features, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, features)) * 3 + 1
    g = rng.normal(size=(batch, features))
    bn = BatchNorm1d(features, dtype=np.float64)
    bn.weight.data[...] = rng.normal(size=features)
    y, dx = bn(x), bn.backward(g)
    x_hat, expected = _graph_backward(x, bn.weight.data, g, bn.eps)
    np.testing.assert_allclose(y, x_hat * bn.weight.data + bn.bias.data, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, expected, rtol=1e-9, atol=1e-12)
    # a normalised value's gradient sums to 0 over the batch: shifting x changes nothing
    np.testing.assert_allclose(dx.sum(axis=0), 0, atol=1e-10)


def test_a_constant_feature_normalises_to_exactly_zero():
    """All values equal: x - mean is exactly 0 (the mean is taken in float64), so the output is
    the bias and only the direct path of the gradient is left, g * w / sqrt(eps) centred."""
    bn = BatchNorm1d(2)
    bn.weight.data[...] = [2.0, 3.0]
    bn.bias.data[...] = [0.5, -1.0]
    x = np.array([[30.1, 1.0], [30.1, 2.0], [30.1, 3.0]], dtype=np.float32)
    y = bn(x)
    np.testing.assert_array_equal(y[:, 0], [0.5, 0.5, 0.5])
    g = np.array([[1.0, 0.0], [2.0, 0.0], [6.0, 0.0]], dtype=np.float32)
    dx = bn.backward(g)
    expected = 2.0 / np.sqrt(np.float32(1e-5)) * (g[:, 0] - g[:, 0].mean())
    np.testing.assert_allclose(dx[:, 0], expected, rtol=1e-6)


def test_evaluation_uses_the_running_statistics_and_one_sample_is_fine():
    bn = BatchNorm1d(2, dtype=np.float64)
    x = np.array([[1.0, 10.0], [3.0, 30.0]])
    bn(x)  # one training step: running = 0.9 * (0, 1) + 0.1 * (mean, unbiased var)
    np.testing.assert_allclose(bn.running_mean, [0.2, 2.0])
    np.testing.assert_allclose(bn.running_var, [0.9 + 0.1 * 2.0, 0.9 + 0.1 * 200.0])
    bn.eval()
    one = np.array([[2.0, 20.0]])
    expected = (one - bn.running_mean) / np.sqrt(bn.running_var + 1e-5)
    np.testing.assert_allclose(bn(one), expected)
    np.testing.assert_allclose(bn.backward(np.ones((1, 2))), [1 / np.sqrt(bn.running_var + 1e-5)])
    assert int(bn.num_batches_tracked) == 1  # evaluation does not count


def test_momentum_none_is_the_cumulative_average():
    bn = BatchNorm1d(1, momentum=None, dtype=np.float64)
    batches = [np.array([[0.0], [2.0]]), np.array([[4.0], [8.0]]), np.array([[1.0], [1.0]])]
    for x in batches:
        bn(x)
    np.testing.assert_allclose(bn.running_mean, [np.mean([1.0, 6.0, 1.0])])
    np.testing.assert_allclose(bn.running_var, [np.mean([2.0, 8.0, 0.0])])  # unbiased


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: BatchNorm1d(3)(np.ones((1, 3))),
            ValueError,
            r"expected more than 1 value per channel when training, got input of shape \(1, 3\)",
        ),
        (
            lambda: BatchNorm1d(3)(np.ones((4, 2))),
            ValueError,
            r"expected input of shape \(N, 3\) or \(N, 3, L\), got \(4, 2\)",
        ),
        (lambda: BatchNorm1d(3)(np.ones(3)), ValueError, r"expected input of shape \(N, 3\)"),
        (
            lambda: BatchNorm1d(0),
            ValueError,
            r"BatchNorm1d: num_features must be a positive int, got 0",
        ),
        (
            lambda: BatchNorm1d(3, momentum=1.5),
            ValueError,
            r"momentum must be a number in \[0, 1\] or None, got 1.5",
        ),
        (
            lambda: BatchNorm1d(3, eps=0.0),
            ValueError,
            r"eps must be a positive finite number, got 0.0",
        ),
        (lambda: BatchNorm1d(3, dtype=np.int32), (TypeError, ValueError), r"BatchNorm1d"),
        (
            lambda: LayerNorm(4)(np.ones((2, 3))),
            ValueError,
            r"expected input whose last dimensions are \(4,\), got \(2, 3\)",
        ),
        (lambda: LayerNorm((2, 0)), ValueError, r"normalized_shape must be a positive int"),
        (
            lambda: LayerNorm("4"),
            TypeError,
            r"LayerNorm: normalized_shape must be a positive int or a tuple of them, got '4'",
        ),
        (lambda: LayerNorm(()), ValueError, r"normalized_shape must not be empty"),
    ],
)
def test_bad_input_raises_a_clear_error(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.torch
def test_torch_refuses_one_value_per_channel_in_training_too():
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        torch.nn.BatchNorm1d(3)(torch.ones(1, 3))
    BatchNorm1d(3).eval()(np.ones((1, 3)))  # both accept it in evaluation
    torch.nn.BatchNorm1d(3).eval()(torch.ones(1, 3))


def test_gradcheck_passes_through_batch_and_layer_norm():
    """With MSE against random targets: a loss the normalisation does not make constant."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    for norm in (BatchNorm1d(4), LayerNorm(4), BatchNorm1d(4, affine=False)):
        model = Sequential(Linear(3, 4, rng=0), norm, ReLU(), Linear(4, 2, rng=1))
        report = gradcheck(model, MSELoss(), X, y)
        assert report.passed, str(report)


def test_gradcheck_fails_the_backward_that_forgets_the_statistics_depend_on_x():
    class NaiveBatchNorm(BatchNorm1d):  # dJ/dx = g * w / std: treats mean and var as constants
        def backward(self, grad_output, *, input_grad=True):
            super().backward(grad_output, input_grad=False)
            return grad_output * self.weight.data * self._inv_std

    rng = np.random.default_rng(0)
    model = Sequential(Linear(3, 4, rng=0), NaiveBatchNorm(4), ReLU(), Linear(4, 2, rng=1))
    report = gradcheck(model, MSELoss(), rng.normal(size=(5, 3)), rng.normal(size=(5, 2)))
    assert not report.passed


def test_save_and_load_keep_running_statistics_and_options(tmp_path):
    model = Sequential(
        Linear(3, 4, rng=0),
        BatchNorm1d(4, momentum=None),
        ReLU(),
        Linear(4, 4, rng=1),
        LayerNorm(4, bias=False),
    )
    model(np.random.default_rng(0).normal(size=(6, 3)))  # running statistics move
    handprop.save(model, tmp_path / "m.npz")
    again = handprop.load(tmp_path / "m.npz")
    assert repr(again) == repr(model)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(again.state_dict()[key], value)
        assert again.state_dict()[key].dtype == value.dtype
    x = np.random.default_rng(1).normal(size=(2, 3))
    np.testing.assert_array_equal(again.eval()(x), model.eval()(x))


@pytest.mark.torch
def test_torch_round_trip_carries_buffers_and_mode():
    from handprop.interop import from_torch, to_torch

    bn = BatchNorm1d(3, momentum=0.3)
    bn(np.random.default_rng(0).normal(size=(4, 3)))
    twin = to_torch(bn.eval())
    assert not twin.training and twin.momentum == 0.3
    np.testing.assert_array_equal(twin.running_var.numpy(), bn.running_var)
    assert int(twin.num_batches_tracked) == 1
    back = from_torch(twin)
    assert repr(back) == repr(bn) and not back.training
    np.testing.assert_array_equal(back.running_mean, bn.running_mean)


def test_trace_names_derives_and_draws_a_normalisation():
    rng = np.random.default_rng(0)
    model = Sequential(
        Linear(3, 4, rng=0),
        BatchNorm1d(4),
        ReLU(),
        Linear(4, 5, rng=1),
        LayerNorm(5),
        Linear(5, 1, rng=2),
    )
    X, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 1))
    t = handprop.trace(model, MSELoss(), X, y)
    assert {"N1", "gamma1", "beta1", "dJ/dN1", "dJ/dgamma1", "dJ/dbeta2", "N2"} <= set(t.names())
    assert t["A2"] is t["N2"]  # no activation after the LayerNorm: A is its output
    # the trace's gradients are the model's own backward's
    model.zero_grad()
    loss = MSELoss()
    loss(model(X), y)
    model.backward(loss.backward())
    np.testing.assert_array_equal(t["dJ/dgamma1"], model[1].weight.grad)
    np.testing.assert_array_equal(t["dJ/dbeta2"], model[4].bias.grad)
    md = t.to_markdown()
    assert "through BatchNorm1d(4" in md and "through LayerNorm((5,)" in md
    assert r"\hat Z^{[1]}" in md and r"\partial \vec\gamma^{[1]}" in md
    assert "over the batch, per feature" in md and "over each sample's features" in md
    assert r"\mathrm{ReLU}(N^{[1]})" in md  # the activation acts on N, not Z
    svg = t.to_svg()
    assert 'id="node-N1"' in svg and 'id="node-gamma1"' in svg
    assert 'data-from="gamma1" data-to="N1"' in svg and 'data-from="N1" data-to="A1"' in svg
    evaluating = handprop.trace(model.eval(), MSELoss(), X, y).to_markdown()
    assert "evaluation mode" in evaluating and "a plain scaling" in evaluating


# -- golden values written by torch (tests/golden/make_golden_modules.py): no torch needed ----

GOLDEN = json.loads((Path(__file__).parent / "golden" / "modules.json").read_text())


@DTYPES
def test_batch_norm_and_layer_norm_match_torchs_golden_values(dtype):
    golden, inputs = GOLDEN[np.dtype(dtype).name], GOLDEN["inputs"]
    x, g = np.array(inputs["X"], dtype=dtype), np.array(inputs["G"], dtype=dtype)
    bn = BatchNorm1d(6, momentum=0.2, dtype=dtype)
    bn.weight.data[...] = inputs["WEIGHT"]
    bn.bias.data[...] = inputs["G"][0]
    for step, (training, scale) in enumerate(((True, 1.0), (True, -2.0), (False, 1.0))):
        expected = golden["BatchNorm1d(6, momentum=0.2)"][step]
        bn.train(training).zero_grad()
        where = f"BatchNorm1d step {step + 1}"
        assert_close(f"{where} output", bn(x * dtype(scale)), expected["output"], dtype)
        assert_close(f"{where} dJ/dx", bn.backward(g), expected["grad_input"], dtype, 10.0)
        assert_close(f"{where} weight.grad", bn.weight.grad, expected["weight_grad"], dtype)
        assert_close(f"{where} bias.grad", bn.bias.grad, expected["bias_grad"], dtype)
        assert_close(f"{where} running_mean", bn.running_mean, expected["running_mean"], dtype)
        assert_close(f"{where} running_var", bn.running_var, expected["running_var"], dtype)
        assert int(bn.num_batches_tracked) == expected["num_batches_tracked"]
    ln = LayerNorm(6, dtype=dtype)
    ln.weight.data[...] = inputs["WEIGHT"]
    expected = golden["LayerNorm(6)"]
    assert_close("LayerNorm output", ln(x), expected["output"], dtype)
    assert_close("LayerNorm dJ/dx", ln.backward(g), expected["grad_input"], dtype, 10.0)
    assert_close("LayerNorm weight.grad", ln.weight.grad, expected["weight_grad"], dtype)
    assert_close("LayerNorm bias.grad", ln.bias.grad, expected["bias_grad"], dtype)


@pytest.mark.torch
def test_parity_report_names_and_compares_normalised_values():
    from handprop.interop import parity_report

    rng = np.random.default_rng(0)
    model = Sequential(
        Linear(3, 6, rng=0),
        BatchNorm1d(6),
        ReLU(),
        Linear(6, 4, rng=1),
        LayerNorm(4),
        Linear(4, 2, rng=2),
    )
    report = parity_report(model, MSELoss(), rng.normal(size=(8, 3)), rng.normal(size=(8, 2)))
    assert report.ok, str(report)
    names = [row.name for row in report.rows]
    assert {"N1", "A1", "N2", "dJ/dN1", "1.weight.grad", "4.bias.grad"} <= set(names)
