"""Conv2d, MaxPool2d, AvgPool2d, Flatten and BatchNorm2d: against torch over hypothesis-drawn
configurations in both dtypes (ties and NaN made on purpose for max pooling), the loop version
of the convolution, gradcheck with pooling ties, saving, interop and bad input."""

import re

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from handprop import Sequential, gradcheck, load, save
from handprop.layers import (
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Flatten,
    Linear,
    MaxPool2d,
    ReLU,
    Tanh,
)
from handprop.layers.conv import conv2d_loops
from handprop.losses import CrossEntropyLoss, MSELoss

try:
    import torch
    from parity import check_modules, check_network
except ImportError:  # the torch tests skip (marker), the others run
    torch = None

DTYPES = st.sampled_from([np.float32, np.float64])

# torch warns (once per process) that it copies the input for padding="same" with an even
# kernel; a note about its own speed, not about the numbers compared here
pytestmark = pytest.mark.filterwarnings(
    "ignore:Using padding='same' with even kernel lengths:UserWarning"
)


@st.composite
def conv_configs(draw):
    """A Conv2d and an input it fits: channels, kernel, stride, padding (numbers or
    'same'/'valid'), dilation, groups, bias, and odd or even image sizes."""
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(
        st.one_of(
            st.tuples(st.integers(0, 2), st.integers(0, 2)),
            st.sampled_from(["valid", "same"]) if stride == (1, 1) else st.just((0, 0)),
        )
    )
    span = [d * (k - 1) + 1 for d, k in zip(dilation, kernel, strict=True)]
    pads = (0, 0) if isinstance(padding, str) else padding
    h = draw(st.integers(max(1, span[0] - 2 * pads[0]), 9))
    w = draw(st.integers(max(1, span[1] - 2 * pads[1]), 9))
    conv = {
        "in_channels": c_in,
        "out_channels": c_out,
        "kernel_size": kernel,
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "groups": groups,
        "bias": draw(st.booleans()),
    }
    return conv, (draw(st.integers(1, 3)), c_in, h, w)


@st.composite
def pool_configs(draw, kind):
    """A pooling layer's arguments (padding at most half the kernel, as torch requires) and
    an input shape that gives at least one window."""
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    dilation = (1, 1) if kind is AvgPool2d else (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    span = [d * (k - 1) + 1 for d, k in zip(dilation, kernel, strict=True)]
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    args = {
        "kernel_size": kernel,
        "stride": stride,
        "padding": padding,
        "ceil_mode": draw(st.booleans()),
    }
    if kind is MaxPool2d:
        args["dilation"] = dilation
    else:
        args["count_include_pad"] = draw(st.booleans())
        args["divisor_override"] = draw(st.one_of(st.none(), st.integers(1, 5)))
    h = draw(st.integers(max(1, span[0] - 2 * padding[0]), 8))
    w = draw(st.integers(max(1, span[1] - 2 * padding[1]), 8))
    return args, (draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w)


def _tied(shape, dtype, seed, *, nan=False):
    """Inputs from few distinct values, so that windows hold ties; a NaN or two if asked."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=shape).astype(dtype) / 2
    if nan:
        x.flat[rng.integers(0, x.size, size=2)] = np.nan
    return x


@pytest.mark.torch
@settings(max_examples=60)
@given(config=conv_configs(), dtype=DTYPES, seed=st.integers(0, 2**16))
def test_conv2d_matches_torch_for_drawn_configurations(config, dtype, seed):
    args, shape = config
    rng = np.random.default_rng(seed)
    conv = Conv2d(**args, dtype=dtype, rng=seed)
    x = rng.standard_normal(shape).astype(dtype)
    model = Sequential(conv, Flatten())
    out = model(x)
    y = rng.standard_normal(out.shape).astype(dtype)
    check_modules(model, MSELoss(), x, y)
    check_network(model, MSELoss(), x, y)


@pytest.mark.torch
@settings(max_examples=60)
@given(config=pool_configs(MaxPool2d), dtype=DTYPES, seed=st.integers(0, 2**16), nan=st.booleans())
def test_max_pool_matches_torch_ties_and_nan_included(config, dtype, seed, nan):
    """Inputs from five values make ties in most windows: the gradient must go where torch's
    does (the first maximum in row-major order; a NaN's window to its last NaN), and
    overlapping windows add up."""
    args, shape = config
    pool = MaxPool2d(**args)
    # a window entirely in the padding: torch 2.13's backward writes out of bounds there and
    # aborts the process (see test_a_window_of_padding_only_outputs_minus_inf_without_gradient)
    assume(_every_window_reads_the_input(pool, shape))
    x = _tied(shape, dtype, seed, nan=nan)
    y = pool(x)
    g = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
    dx = pool.backward(g)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.MaxPool2d(**args)(tx)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_array_equal(y, ty.detach().numpy())  # a max is exact
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-6, atol=1e-6)
    assert dx.dtype == dtype and y.dtype == dtype


def _every_window_reads_the_input(pool, shape) -> bool:
    """Whether every window has at least one tap inside the input, along both axes."""
    out, _ = pool._geometry(np.zeros(shape))
    for axis in range(2):
        k, s, d = pool.kernel_size[axis], pool.stride[axis], pool.dilation[axis]
        p, size = pool.padding[axis], shape[2 + axis]
        if not all(any(0 <= i * s - p + a * d < size for a in range(k)) for i in range(out[axis])):
            return False
    return True


def test_a_window_of_padding_only_outputs_minus_inf_without_gradient():
    """A dilated window can miss the input entirely (kernel 2, dilation 2, padding 1 on a
    one-pixel input): torch then outputs -inf and its backward writes out of bounds (torch
    2.13 aborts with "double free or corruption"); handprop outputs -inf and sends the
    gradient nowhere."""
    pool = MaxPool2d((2, 1), stride=1, padding=(1, 0), dilation=(2, 1))
    y = pool(np.ones((1, 1, 1, 4)))
    np.testing.assert_array_equal(y, -np.inf)
    np.testing.assert_array_equal(pool.backward(np.ones(y.shape)), 0.0)


@pytest.mark.torch
@settings(max_examples=60)
@given(config=pool_configs(AvgPool2d), dtype=DTYPES, seed=st.integers(0, 2**16))
def test_avg_pool_matches_torch(config, dtype, seed):
    args, shape = config
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    model = Sequential(AvgPool2d(**args), Flatten())
    out = model(x)
    check_modules(model, MSELoss(), x, rng.standard_normal(out.shape).astype(dtype))


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False])
def test_a_small_cnn_matches_torch_end_to_end(dtype, training):
    """Conv, BatchNorm2d, ReLU, max pool, conv, average pool, Flatten, Linear, cross-entropy:
    every output, gradient, parameter gradient and running statistic against torch's."""
    rng = np.random.default_rng(0)
    model = Sequential(
        Conv2d(2, 4, 3, padding=1, dtype=dtype, rng=1),
        BatchNorm2d(4, dtype=dtype),
        ReLU(),
        MaxPool2d(2),
        Conv2d(4, 6, 3, stride=(1, 2), dtype=dtype, rng=2),
        Tanh(),
        AvgPool2d(2, ceil_mode=True),
        Flatten(),
        Linear(6, 3, dtype=dtype, rng=3),
    )
    x = rng.standard_normal((5, 2, 8, 9)).astype(dtype)
    if not training:
        model(x)  # running statistics that differ from the defaults
        model.eval()
    y = rng.integers(0, 3, size=5)
    check_network(model, CrossEntropyLoss(), x, y)
    check_modules(model, CrossEntropyLoss(), x, y)


@settings(max_examples=25)
@given(config=conv_configs(), seed=st.integers(0, 2**16))
def test_the_loop_version_gives_the_same_numbers(config, seed):
    """conv2d_loops (the definition's nested loops, for reading) and Conv2d (im2col and a
    matrix product): the same output and gradients, in float64."""
    args, shape = config
    assume(shape[0] * args["out_channels"] * shape[2] * shape[3] <= 400)  # loops are slow
    rng = np.random.default_rng(seed)
    conv = Conv2d(**args, dtype=np.float64, rng=seed)
    x = rng.standard_normal(shape)
    y = conv(x)
    g = rng.standard_normal(y.shape)
    dx = conv.backward(g)
    bias = None if conv.bias is None else conv.bias.data
    y_loops, backward = conv2d_loops(
        x, conv.weight.data, bias, conv.stride, conv._pads, conv.dilation, conv.groups
    )
    dx_loops, dw_loops, db_loops = backward(g)
    np.testing.assert_allclose(y, y_loops, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, dx_loops, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(conv.weight.grad, dw_loops, rtol=1e-12, atol=1e-12)
    if conv.bias is not None:
        np.testing.assert_allclose(conv.bias.grad, db_loops, rtol=1e-12, atol=1e-12)


def test_conv2d_computes_a_hand_worked_example():
    """A 3x3 image, a 2x2 kernel, stride 1, one zero of padding: values worked out by hand."""
    conv = Conv2d(1, 1, 2, padding=1, dtype=np.float64)
    conv.weight.data[...] = [[[[1, 2], [3, 4]]]]
    conv.bias.data[...] = 0.5
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    y = conv(x)
    # top-left window: [[0, 0], [0, 1]] . [[1, 2], [3, 4]] = 4; centre (1, 1): [[1, 2], [4, 5]]
    # . W = 1 + 4 + 12 + 20 = 37; bottom-right: [[9, 0], [0, 0]] . W = 9
    assert y.shape == (1, 1, 4, 4)
    assert (y[0, 0, 0, 0], y[0, 0, 1, 1], y[0, 0, 3, 3]) == (4.5, 37.5, 9.5)
    g = np.zeros_like(y)
    g[0, 0, 1, 1] = 1.0  # only the centre window: its inputs get W, its weights get x
    dx = conv.backward(g)
    np.testing.assert_array_equal(dx[0, 0], [[1, 2, 0], [3, 4, 0], [0, 0, 0]])
    np.testing.assert_array_equal(conv.weight.grad[0, 0], [[1, 2], [4, 5]])
    assert conv.bias.grad[0] == 1.0


def test_gradcheck_passes_a_cnn_with_max_pool_ties_and_names_them():
    conv = Conv2d(1, 2, 2, dtype=np.float64, rng=0)
    model = Sequential(conv, ReLU(), MaxPool2d(2, stride=1), Flatten(), Linear(8, 1, rng=1))
    x = _tied((2, 1, 4, 4), np.float64, 3)
    report = gradcheck(model, MSELoss(), x, np.zeros((2, 1)))
    assert report.passed, str(report)
    plain = Sequential(MaxPool2d(2), Flatten(), Linear(4, 1, dtype=np.float64, rng=1))
    tied = np.array([[[[1.0, 1.0, 0.0, 2.0], [0.0, 1.0, 2.0, 2.0], [3, 3, 1, 0], [0, 0, 1, 1]]]])
    report = gradcheck(plain, MSELoss(), tied, np.zeros((1, 1)))
    assert report.passed, str(report)
    assert any("MaxPool2d" in site.module for site in report.kinks)
    assert "X[0, 0, 0, 0] = 1 (input of module 0 (MaxPool2d" in str(report)


def test_gradcheck_passes_strided_grouped_convolutions_batchnorm2d_and_average_pooling():
    """The layers the CNN test above leaves out, with their less common arguments: a strided,
    padded, dilated, grouped convolution, BatchNorm2d in training, and average pooling with
    ceil_mode and count_include_pad=False."""
    rng = np.random.default_rng(4)
    model = Sequential(
        Conv2d(2, 4, 3, stride=2, padding=2, dilation=2, groups=2, dtype=np.float64, rng=0),
        BatchNorm2d(4, dtype=np.float64),
        Tanh(),
        AvgPool2d(2, padding=1, ceil_mode=True, count_include_pad=False),
        Flatten(),
        Linear(16, 2, dtype=np.float64, rng=1),
    )
    x = rng.standard_normal((3, 2, 5, 6))
    report = gradcheck(model, MSELoss(), x, rng.standard_normal((3, 2)))
    assert report.passed, str(report)
    assert {t.name for t in report.tensors} >= {"0.weight", "0.bias", "1.weight", "1.bias", "X"}


def test_gradcheck_catches_a_max_pool_backward_that_routes_to_the_wrong_input():
    """The check can fail: a backward sending each window's gradient to its smallest input."""

    class WrongPool(MaxPool2d):
        def backward(self, grad_output, *, input_grad=True):
            where = self._where
            self._where = np.zeros_like(where)  # always the window's first input
            try:
                return super().backward(grad_output, input_grad=input_grad)
            finally:
                self._where = where

    rng = np.random.default_rng(0)
    model = Sequential(WrongPool(2), Flatten(), Linear(4, 1, dtype=np.float64, rng=1))
    report = gradcheck(model, MSELoss(), rng.standard_normal((1, 1, 4, 4)), np.zeros((1, 1)))
    assert not report.passed


@pytest.mark.parametrize(
    "module",
    [
        Conv2d(3, 4, (3, 2), stride=(2, 1), padding="same" if False else (1, 0), groups=1),
        Conv2d(4, 6, 3, padding="same", dilation=2, groups=2, bias=False, dtype=np.float64),
        MaxPool2d(3, stride=2, padding=1, dilation=1, ceil_mode=True),
        AvgPool2d((2, 3), padding=(1, 1), count_include_pad=False, divisor_override=4),
        Flatten(0, 2),
        BatchNorm2d(3, momentum=None, affine=False),
    ],
    ids=lambda m: type(m).__name__,
)
def test_save_and_load_keep_every_argument_and_value(tmp_path, module):
    path = tmp_path / "m.npz"
    model = Sequential(module)
    save(model, path)
    loaded = load(path)
    assert repr(loaded) == repr(model)
    for (name, a), (_, b) in zip(
        model.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.torch
def test_interop_round_trip_of_every_new_module():
    from handprop.interop import from_torch, to_torch

    model = Sequential(
        Conv2d(1, 4, 3, padding="same", rng=0),
        BatchNorm2d(4),
        ReLU(),
        MaxPool2d(2, ceil_mode=True),
        Conv2d(4, 6, (3, 2), stride=(1, 2), groups=2, bias=False, rng=1),
        AvgPool2d(2, padding=1, count_include_pad=False),
        Flatten(),
        Linear(24, 3, rng=2),
    )
    x = np.random.default_rng(0).standard_normal((2, 1, 9, 9)).astype(np.float32)
    twin = to_torch(model)
    np.testing.assert_allclose(model(x), twin(torch.from_numpy(x)).detach(), rtol=1e-5, atol=1e-6)
    back = from_torch(twin)
    assert repr(back) == repr(model)
    np.testing.assert_array_equal(back(x), model(x))


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: Conv2d(3, 4, 3, groups=2), ValueError, "in_channels must be divisible by groups"),
        (lambda: Conv2d(4, 3, 3, groups=2), ValueError, "out_channels must be divisible by groups"),
        (
            lambda: Conv2d(3, 4, 3, stride=2, padding="same"),
            ValueError,
            "padding='same' is not supported for strided convolutions",
        ),
        (lambda: Conv2d(3, 4, 3, padding="full"), ValueError, "Invalid padding string 'full'"),
        (lambda: Conv2d(3, 4, 0), ValueError, "Conv2d: kernel_size must be at least 1, got 0"),
        (lambda: Conv2d(3, 4, (3, 3, 3)), TypeError, "kernel_size must be an int or a pair"),
        (lambda: Conv2d(3, 4, 3, padding_mode="reflect"), ValueError, "padding_mode='zeros'"),
        (
            lambda: MaxPool2d(2, padding=2),
            ValueError,
            "pad should be at most half of effective kernel size, but got pad=2, kernel_size=2",
        ),
        (lambda: MaxPool2d(2, return_indices=True), ValueError, "return_indices=True"),
        (lambda: Flatten(1.5), TypeError, "Flatten: start_dim must be an int"),
    ],
)
def test_bad_arguments_are_refused_with_torchs_words(make, error, message):
    with pytest.raises(error, match=re.escape(message)):
        make()


@pytest.mark.parametrize(
    ("module", "shape", "message"),
    [
        (
            Conv2d(3, 4, 3),
            (1, 2, 5, 5),
            "expected input (1, 2, 5, 5) to have 3 channels, but got 2 channels instead",
        ),
        (
            Conv2d(3, 4, 3),
            (1, 3, 2, 2),
            "calculated padded input size per channel: (2 x 2). Kernel size: (3 x 3). "
            "Kernel size can't be greater than actual input size",
        ),
        (
            Conv2d(3, 4, 3),
            (3, 5, 5),
            "expected input of shape (N, C, H, W), got (3, 5, 5); for one image use x[None]",
        ),
        (MaxPool2d(2), (1, 1, 1, 1), "Calculated output size: (1x0x0). Output size is too small"),
        (BatchNorm2d(3), (2, 3, 4), "expected input of shape (N, 3, H, W), got (2, 3, 4)"),
        (Flatten(2, 1), (2, 3, 4), "cannot flatten dims 2 to 1 of an input of shape (2, 3, 4)"),
    ],
    ids=["channels", "kernel-too-large", "3-d", "pool-too-small", "bn-3-d", "flatten-dims"],
)
def test_bad_input_names_the_module_and_the_shapes(module, shape, message):
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        module(np.ones(shape))
    assert type(module).__name__ in str(error.value)


@pytest.mark.torch
@pytest.mark.parametrize(
    "args",
    [
        {"kernel_size": 2, "padding": 1},
        {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
        {"kernel_size": 2, "stride": 1},
    ],
)
def test_max_pool_of_minus_infinity_chooses_a_real_input_as_torch(args):
    """A window of -inf inputs (and -inf padding): torch keeps its first in-bounds input, so
    the gradient reaches the input, not the padding."""
    x = np.full((1, 1, 3, 3), -np.inf)
    x[0, 0, 2, 2] = 1.0
    pool = MaxPool2d(**args)
    y = pool(x)
    g = np.arange(1.0, y.size + 1).reshape(y.shape)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.MaxPool2d(**args)(tx)
    ty.backward(torch.tensor(g))
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_array_equal(pool.backward(g), tx.grad.numpy())
