"""handprop.init against torch.nn.init: the gains, the fans, the bounds and stds (checked on
large draws in both dtypes, and against torch's own formulas and draws), errors."""

import math

import numpy as np
import pytest

from handprop import Parameter, init
from handprop.layers import Linear

try:  # the tests marked torch need it (and skip without it); the others run anyway
    import torch
except ImportError:
    torch = None

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
SHAPE = (400, 300)  # 120000 draws: a sample std within 1% of the true one (about 5 sigma)


@pytest.mark.torch
@pytest.mark.parametrize(
    ("nonlinearity", "param"),
    [
        ("linear", None),
        ("sigmoid", None),
        ("tanh", None),
        ("relu", None),
        ("leaky_relu", None),
        ("leaky_relu", 0.2),
        ("selu", None),
        ("conv2d", None),
    ],
)
def test_gains_are_torchs(nonlinearity, param):
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(
        torch.nn.init.calculate_gain(nonlinearity, param), rel=1e-15
    )


def _std_and_bound(name, shape, **kwargs):
    """The std and (for uniform draws) the bound torch's own formulas give."""
    t = torch.empty(shape)
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(t)
    if name.startswith("xavier"):
        std = kwargs.get("gain", 1.0) * math.sqrt(2.0 / (fan_in + fan_out))
    else:
        fan = fan_in if kwargs.get("mode", "fan_in") == "fan_in" else fan_out
        gain = torch.nn.init.calculate_gain(
            kwargs.get("nonlinearity", "leaky_relu"), kwargs.get("a", 0)
        )
        std = gain / math.sqrt(fan)
    return std, math.sqrt(3.0) * std


@pytest.mark.torch
@DTYPES
@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("xavier_uniform_", {}),
        ("xavier_uniform_", {"gain": 5 / 3}),
        ("xavier_normal_", {"gain": 2.0}),
        ("kaiming_uniform_", {}),
        ("kaiming_uniform_", {"a": 0.1, "mode": "fan_out", "nonlinearity": "leaky_relu"}),
        ("kaiming_normal_", {"nonlinearity": "relu"}),
        ("kaiming_normal_", {"mode": "fan_out", "nonlinearity": "tanh"}),
    ],
)
def test_bounds_and_stds_equal_torchs(dtype, name, kwargs):
    for shape in (SHAPE, (60, 40, 5, 10)):  # a conv weight: fans times the kernel size
        std, bound = _std_and_bound(name, shape, **kwargs)
        w = getattr(init, name)(np.empty(shape, dtype), **kwargs, rng=0)
        t = getattr(torch.nn.init, name)(torch.empty(shape, dtype=torch.float64), **kwargs)
        assert w.dtype == dtype
        assert abs(w.std() - std) < 0.01 * std and abs(w.mean()) < 0.01 * std
        assert abs(w.std() - float(t.std())) < 0.02 * std  # torch's own draw agrees
        if name.endswith("uniform_"):
            assert np.abs(w).max() <= bound and np.abs(w).max() > 0.999 * bound


@DTYPES
def test_uniform_normal_constant_and_the_parameter_itself(dtype):
    p = Parameter(np.empty(SHAPE, dtype))
    assert init.uniform_(p, -2.0, 3.0, rng=1) is p
    assert p.data.min() >= -2.0 and p.data.max() < 3.0 and abs(p.data.mean() - 0.5) < 0.02
    init.normal_(p, 1.0, 0.5, rng=1)
    assert abs(p.data.mean() - 1.0) < 0.005 and abs(p.data.std() - 0.5) < 0.005
    init.constant_(p, 0.3)
    assert (p.data == dtype(0.3)).all() and p.data.dtype == dtype
    assert not init.zeros_(p).data.any() and (init.ones_(p).data == 1).all()


def test_the_same_seed_gives_the_same_weights_and_the_global_seed_is_untouched():
    state = np.random.get_state()  # noqa: NPY002 (checking the legacy global state)
    a = init.kaiming_uniform_(np.empty((5, 4)), rng=7)
    b = init.kaiming_uniform_(np.empty((5, 4)), rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert np.array_equal(state[1], np.random.get_state()[1])  # noqa: NPY002


def test_linear_default_init_is_kaiming_uniform_with_a_sqrt5():
    """torch's Linear.reset_parameters: kaiming_uniform_(a=sqrt(5)), i.e. U(+-1/sqrt(in))."""
    bound = math.sqrt(3.0) * init.calculate_gain("leaky_relu", math.sqrt(5)) / math.sqrt(300)
    assert bound == pytest.approx(1 / math.sqrt(300), rel=1e-12)
    assert np.abs(Linear(300, 400, rng=0).weight.data).max() <= bound


@DTYPES
def test_trunc_normal_bounds_are_values_not_stds(dtype):
    w = init.trunc_normal_(np.empty(SHAPE, dtype), std=0.02, rng=0)  # [-2, 2]: cuts nothing
    assert abs(w.std() - 0.02) < 0.0005
    w = init.trunc_normal_(np.empty(SHAPE, dtype), std=1.0, a=-1.0, b=1.0, rng=0)
    assert w.min() >= -1.0 and w.max() <= 1.0
    # the std of N(0, 1) truncated to [-1, 1]: sqrt(1 - 2 phi(1) / (2 Phi(1) - 1))
    phi, big_phi = math.exp(-0.5) / math.sqrt(2 * math.pi), 0.5 * (1 + math.erf(1 / math.sqrt(2)))
    assert abs(w.std() - math.sqrt(1 - 2 * phi / (2 * big_phi - 1))) < 0.005


@DTYPES
@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (3, 2, 2, 2)])
def test_orthogonal_rows_or_columns_are_orthonormal(dtype, shape):
    w = init.orthogonal_(np.empty(shape, dtype), gain=2.0, rng=0).reshape(shape[0], -1)
    small = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
    np.testing.assert_allclose(small, 4.0 * np.eye(small.shape[0]), atol=1e-5)


def test_zero_element_tensors_are_left_alone():
    for fn in (init.xavier_uniform_, init.kaiming_normal_, init.orthogonal_):
        assert fn(np.empty((0, 3))).shape == (0, 3)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: init.xavier_uniform_(np.empty(3)),
            ValueError,
            r"xavier_uniform_: Fan in and fan out can not be computed for tensor with fewer than 2 dimensions",
        ),
        (lambda: init.xavier_normal_(np.array(1.0)), ValueError, r"fewer than 2 dimensions"),
        (
            lambda: init.kaiming_uniform_(np.empty((2, 2)), mode="fan_inn"),
            ValueError,
            r"Mode fan_inn not supported, please use one of fan_in, fan_out",
        ),
        (lambda: init.calculate_gain("gelu"), ValueError, r"Unsupported nonlinearity gelu"),
        (
            lambda: init.calculate_gain("leaky_relu", "0.1"),
            ValueError,
            r"negative_slope 0.1 not a valid number",
        ),
        (
            lambda: init.orthogonal_(np.empty(4)),
            ValueError,
            r"Only tensors with 2 or more dimensions are supported",
        ),
        (
            lambda: init.normal_([1.0, 2.0]),
            TypeError,
            r"normal_: expected a Parameter or a float ndarray, got list",
        ),
        (
            lambda: init.trunc_normal_(np.empty(4), std=0.02, a=2.0, b=3.0),
            ValueError,
            r"are a and b given in units of std\? they are values",
        ),
        (
            lambda: init.uniform_(Linear(2, 2)(np.ones((1, 2)))),
            ValueError,
            r"uniform_: the array is read-only",
        ),
    ],
)
def test_bad_input_raises_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()
