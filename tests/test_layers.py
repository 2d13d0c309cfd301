"""Layers: torch's numerics at the edges, dtypes, initialisation."""

import numpy as np
import pytest
from closeness import assert_close

from handprop.layers import LeakyReLU, Linear, ReLU, Sigmoid, Tanh

try:  # the tests marked torch need it (and skip without it); the others run anyway
    import torch

    TORCH = {np.float32: torch.float32, np.float64: torch.float64}
except ImportError:
    torch = None

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])


@pytest.mark.torch
@DTYPES
def test_relu_gradient_at_zero_and_minus_zero_is_zero_like_torch(dtype):
    x = np.array([-1.0, -0.0, 0.0, 1e-30, 2.0], dtype=dtype)
    relu = ReLU()
    y = relu(x)
    g = relu.backward(np.ones_like(x))
    tx = torch.tensor(x, requires_grad=True)
    torch.relu(tx).backward(torch.ones_like(tx))
    np.testing.assert_array_equal(g, tx.grad.numpy())
    np.testing.assert_array_equal(g, [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(
        y, [0, 0, 0, 1e-30 if dtype is np.float64 else np.float32(1e-30), 2]
    )


@pytest.mark.torch
@DTYPES
def test_sigmoid_saturates_to_torchs_values_without_warnings(dtype):
    x = np.array([-1000.0, -100.0, -88.8, -17.0, 0.0, 17.0, 100.0, 1000.0], dtype=dtype)
    sig = Sigmoid()
    y = sig(x)  # warnings are errors in this suite: an overflow warning would fail here
    g = sig.backward(np.ones_like(x))
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.sigmoid(tx)
    ty.backward(torch.ones_like(tx))
    assert_close("sigmoid", y, ty.detach().numpy(), dtype)
    assert_close("sigmoid'", g, tx.grad.numpy(), dtype)
    assert y[0] == 0.0 and y[-1] == 1.0 and g[0] == 0.0 and g[-1] == 0.0
    assert y.dtype == g.dtype == dtype


@pytest.mark.torch
@DTYPES
def test_tanh_and_leaky_relu_at_the_edges_match_torch(dtype):
    x = np.array([-1000.0, -20.0, -1.0, -0.0, 0.0, 0.5, 9.0, 1000.0], dtype=dtype)
    for module, t_fn in [
        (Tanh(), torch.tanh),
        (LeakyReLU(0.2), lambda t: torch.nn.functional.leaky_relu(t, 0.2)),
    ]:
        y = module(x)
        g = module.backward(np.linspace(-1, 1, x.size).astype(dtype))
        tx = torch.tensor(x, requires_grad=True)
        t_fn(tx).backward(torch.linspace(-1, 1, x.size, dtype=TORCH[dtype]))
        assert_close(repr(module), y, t_fn(torch.tensor(x)).numpy(), dtype)
        assert_close(f"{module!r}'", g, tx.grad.numpy(), dtype)


@DTYPES
def test_dtype_is_preserved_end_to_end(dtype):
    layer = Linear(3, 2, dtype=dtype, rng=0)
    other = np.float64 if dtype is np.float32 else np.float32
    for x in (
        np.ones((4, 3), dtype=dtype),
        np.ones((4, 3), dtype=other),
        np.ones((4, 3), dtype=int),
        np.ones((4, 3), dtype=bool),
        [[1, 2, 3]],
    ):
        y = layer(x)
        assert y.dtype == dtype
        assert layer.backward(np.ones(y.shape, dtype=other)).dtype == dtype
        assert layer.weight.grad.dtype == dtype and layer.bias.grad.dtype == dtype
    for act in (ReLU(), Sigmoid(), Tanh(), LeakyReLU()):
        assert act(np.ones(3, dtype=dtype)).dtype == dtype
        assert act.backward(np.ones(3)).dtype == dtype  # grad_output cast to the forward dtype
        assert act(np.array([1, 2])).dtype == np.float32  # ints: the default float32


def test_integer_input_is_cast_not_floored():
    layer = Linear(2, 1, rng=0)
    np.testing.assert_array_equal(layer(np.array([[1, 2]])), layer(np.array([[1.0, 2.0]])))


def test_init_follows_torchs_uniform_bound_and_is_seeded_locally():
    state = np.random.get_state()  # noqa: NPY002 (checking the legacy global state)
    layer = Linear(400, 300, rng=123)
    bound = 1 / np.sqrt(400)
    for p in (layer.weight.data, layer.bias.data):
        assert p.min() >= -bound and p.max() <= bound
    # uniform on [-b, b]: mean 0, std b / sqrt(3) (120000 weights: tight)
    assert abs(layer.weight.data.mean()) < 0.01 * bound
    assert abs(layer.weight.data.std() - bound / np.sqrt(3)) < 0.01 * bound
    np.testing.assert_array_equal(Linear(400, 300, rng=123).weight.data, layer.weight.data)
    gen = np.random.default_rng(7)
    a = Linear(3, 3, rng=gen)
    b = Linear(3, 3, rng=gen)  # the generator advances: a different draw
    assert not np.array_equal(a.weight.data, b.weight.data)
    assert np.all(np.random.get_state()[1] == state[1])  # noqa: NPY002 (global seed untouched)


@pytest.mark.torch
@DTYPES
def test_linear_without_bias_matches_torch(dtype):
    from parity import check_network

    from handprop import Sequential
    from handprop.losses import MSELoss

    model = Sequential(Linear(3, 2, bias=False, dtype=dtype, rng=1))
    assert [n for n, _ in model.named_parameters()] == ["0.weight"]
    check_network(model, MSELoss(), np.arange(6.0).reshape(2, 3), np.zeros((2, 2)))


@pytest.mark.torch
@DTYPES
def test_relu_backward_selects_like_torch_even_for_non_finite_values(dtype):
    """An inactive unit passes no gradient at all, whatever arrives: inf and NaN included
    (a multiplication by the 0/1 mask would give NaN and a warning); a NaN activation, which
    torch's test ``y <= 0`` does not call inactive, passes it on."""
    x = np.array([-1.0, 2.0, 0.0, 3.0, -0.0, np.nan, np.nan], dtype)
    upstream = np.array([np.inf, np.inf, np.nan, -np.inf, 7.0, 5.0, np.nan], dtype)
    relu = ReLU()
    relu(x)
    g = relu.backward(upstream)
    tx = torch.tensor(x, requires_grad=True)
    torch.relu(tx).backward(torch.tensor(upstream))
    np.testing.assert_array_equal(g, tx.grad.numpy())
    np.testing.assert_array_equal(g, [0.0, np.inf, 0.0, -np.inf, 0.0, 5.0, np.nan])
    assert g.dtype == dtype and not np.signbit(g[[0, 2, 4]]).any()  # +0.0, as torch
