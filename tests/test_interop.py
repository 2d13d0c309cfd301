"""handprop.interop: models to and from torch, the parity report, the comparison itself."""

import numpy as np
import pytest

from handprop import Sequential
from handprop import worked_example as we
from handprop.interop import from_torch, parity_report, to_torch, to_torch_loss
from handprop.layers import LeakyReLU, Linear, ReLU, Sigmoid, Softmax, Tanh
from handprop.losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss

torch = pytest.importorskip("torch")
nn = torch.nn

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])


def every_layer(dtype):
    return Sequential(
        Linear(3, 5, dtype=dtype, rng=0),
        ReLU(),
        Linear(5, 4, bias=False, dtype=dtype, rng=1),
        Tanh(),
        Linear(4, 4, dtype=dtype, rng=2),
        LeakyReLU(0.2),
        Linear(4, 3, dtype=dtype, rng=3),
        Softmax(dim=1),
        Linear(3, 1, dtype=dtype, rng=4),
        Sigmoid(),
    )


@DTYPES
def test_to_torch_and_back_keeps_weights_dtype_names_and_outputs(dtype):
    model = every_layer(dtype)
    twin = to_torch(model)
    assert repr(twin) == repr(model).replace(", dtype=float64", "")
    assert all(
        p.dtype == {np.float32: torch.float32, np.float64: torch.float64}[dtype]
        for p in twin.parameters()
    )
    X = np.random.default_rng(0).normal(size=(6, 3)).astype(dtype)
    np.testing.assert_allclose(model(X), twin(torch.from_numpy(X)).detach().numpy(), rtol=1e-5)
    back = from_torch(twin)
    assert repr(back) == repr(model)
    for (n, p), (m, q) in zip(model.named_parameters(), back.named_parameters(), strict=True):
        assert n == m and q.dtype == dtype
        np.testing.assert_array_equal(p.data, q.data)


def test_from_torch_reads_a_torch_built_model_and_nested_sequentials():
    torch.manual_seed(0)
    twin = nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.ReLU(), nn.Linear(3, 1)), nn.Sigmoid())
    model = from_torch(twin)
    assert [n for n, _ in model.named_parameters()] == [n for n, _ in twin.named_parameters()]
    X = np.array([[1.0, -2.0]], dtype=np.float32)
    np.testing.assert_allclose(model(X), twin(torch.from_numpy(X)).detach().numpy(), rtol=1e-6)
    assert isinstance(from_torch(nn.Linear(2, 2, dtype=torch.float64)), Linear)


@pytest.mark.parametrize(
    ("module", "message"),
    [
        (
            nn.Sequential(nn.Linear(2, 2), nn.ELU()),
            r"from_torch: unsupported module at '1': ELU\(alpha=1.0\); supported: Sequential, .*Linear",
        ),
        (nn.Sequential(nn.Sequential(nn.Conv1d(1, 1, 3))), r"unsupported module at '0.0': Conv1d"),
        (
            type("MyLinear", (nn.Linear,), {})(2, 2),
            r"unsupported module at '\(root\)': MyLinear\(.*\) \(a subclass of Linear: its forward may differ",
        ),
        (
            nn.Sequential(nn.ReLU(), nn.Linear(2, 2, device="meta")),
            r"from_torch: Linear at '1' is on the meta device and has no values to copy",
        ),
        (nn.ModuleList([nn.ReLU()]), r"unsupported module at '\(root\)': ModuleList"),
        (nn.Softmax(dim=None), r"unsupported module at '\(root\)': Softmax\(dim=None\)"),
        (nn.LogSoftmax(dim=None), r"unsupported module at '\(root\)': LogSoftmax\(dim=None\)"),
        (
            nn.Linear(2, 2, dtype=torch.float16),
            r"from_torch: Linear at '\(root\)' has dtype torch.float16; handprop supports float32 and float64",
        ),
    ],
)
def test_from_torch_names_what_it_cannot_convert(module, message):
    with pytest.raises(TypeError, match=message):
        from_torch(module)


def test_conversions_reject_what_is_not_a_model():
    with pytest.raises(TypeError, match="from_torch: expected a torch.nn.Module, got ndarray"):
        from_torch(np.ones(2))
    with pytest.raises(TypeError, match="to_torch_loss: no torch equivalent for str"):
        to_torch_loss("bce")


@pytest.mark.parametrize(
    "loss",
    [
        BCELoss(weight=[1.0, 2.0]),
        BCEWithLogitsLoss(pos_weight=[3.0, 1.0], reduction="sum"),
        MSELoss(reduction="none"),
        CrossEntropyLoss(weight=[1.0, 0.5], label_smoothing=0.1),
    ],
)
def test_to_torch_loss_gives_the_same_cost(loss):
    x = np.array([[0.2, 0.9], [0.6, 0.1]])
    t = (
        np.array([1, 0])
        if isinstance(loss, CrossEntropyLoss)
        else np.array([[0.0, 1.0], [1.0, 1.0]])
    )
    t_t = torch.tensor(t)  # int64 class indices or float64 targets
    expected = to_torch_loss(loss, np.float64)(torch.tensor(x), t_t).numpy()
    np.testing.assert_allclose(loss(x, t), expected, rtol=1e-13)


@DTYPES
def test_parity_report_on_the_worked_example_is_all_ok(dtype):
    X, y = we.data(dtype)
    report = parity_report(we.model(dtype), we.loss_fn(), X, y)
    assert report.ok and report.first_failure is None
    names = [row.name for row in report.rows]
    assert names == [
        "Z1",
        "A1",
        "Z2",
        "A2",
        "Z3",
        "A3",
        "J",
        "dJ/dA3",
        "dJ/dZ3",
        "dJ/dA2",
        "dJ/dZ2",
        "dJ/dA1",
        "dJ/dZ1",
        "dJ/dX",
        "0.weight.grad",
        "0.bias.grad",
        "2.weight.grad",
        "2.bias.grad",
        "4.weight.grad",
        "4.bias.grad",
    ]
    text = str(report)
    assert "all tensors match" in text and "FAIL" not in text and "dJ/dZ2" in text


class KinkBlindReLU(ReLU):
    """A classic hand-written mistake: the mask x >= 0 lets gradient through at x = 0."""

    def backward(self, grad_output, *, input_grad=True):
        y = self._saved(self._y)
        return np.where(y >= 0, grad_output, 0)


def test_parity_report_finds_the_first_diverging_tensor():
    model = we.model(np.float64)
    model = Sequential(*[KinkBlindReLU() if i == 3 else m for i, m in enumerate(model)])
    X, y = we.data(np.float64)
    report = parity_report(model, we.loss_fn(), X, y)
    assert not report.ok
    assert report.first_failure.name == "dJ/dZ2"  # the kink at Z2[0, 0] = 0
    failed = {row.name for row in report.rows if not row.passed}
    assert failed == {
        "dJ/dZ2",
        "dJ/dA1",
        "dJ/dZ1",
        "dJ/dX",
        "0.weight.grad",
        "0.bias.grad",
        "2.weight.grad",
        "2.bias.grad",
    }
    assert "<-- first divergence" in str(report) and "first divergence at dJ/dZ2" in str(report)


def test_parity_report_needs_parameters():
    with pytest.raises(ValueError, match="parity_report: the model has no parameters to compare"):
        parity_report(Sequential(ReLU()), MSELoss(), np.ones((1, 2)), np.ones((1, 2)))


def test_from_torch_converts_relu_inplace_like_leaky_relu_inplace():
    """reliability G1: nn.ReLU(inplace=True) was refused, nn.LeakyReLU(inplace=True) not."""
    assert isinstance(from_torch(nn.ReLU(inplace=True)), ReLU)
    assert isinstance(from_torch(nn.LeakyReLU(0.1, inplace=True)), LeakyReLU)


def test_parity_report_on_mixed_dtypes_names_the_cause():
    """reliability G5: torch's 'mat1 and mat2 must have the same dtype' came out instead."""
    model = Sequential(Linear(2, 2, rng=0), Linear(2, 1, dtype=np.float64, rng=1))
    X, y = np.ones((1, 2)), np.ones((1, 1))
    with pytest.raises(
        ValueError, match="parity_report: the model mixes float32 and float64 parameters"
    ):
        parity_report(model, MSELoss(), X, y)


def test_to_torch_and_from_torch_carry_buffers():
    """Buffers travel with parameters by their state_dict names (a torch BatchNorm's running
    statistics, say, once handprop has such a layer): checked on a Linear given a buffer."""
    layer = Linear(2, 2, rng=0)
    twin = to_torch(layer)
    twin.register_buffer("running_mean", torch.tensor([1.0, 2.0]))
    layer.register_buffer("running_mean", np.array([5.0, 6.0], np.float32))
    from handprop.interop import _copy_state_to_torch

    _copy_state_to_torch(layer, twin)
    np.testing.assert_array_equal(twin.running_mean.numpy(), [5.0, 6.0])


def test_named_children_keep_their_names_both_ways():
    """torch's Sequential(OrderedDict(...)) comes back with its names, and goes back with them."""
    from collections import OrderedDict

    t_model = nn.Sequential(
        OrderedDict(fc1=nn.Linear(2, 3), act=nn.ReLU(), fc2=nn.Linear(3, 1), out=nn.Sigmoid())
    )
    model = from_torch(t_model)
    assert list(model.state_dict()) == list(t_model.state_dict())
    assert repr(model) == repr(t_model)
    back = to_torch(model)
    assert list(back.state_dict()) == list(t_model.state_dict())
    assert repr(back) == repr(t_model)
    x = np.array([[0.5, -1.0], [2.0, 0.25]], np.float32)
    np.testing.assert_allclose(model(x), t_model(torch.tensor(x)).detach().numpy(), rtol=1e-6)
    report = parity_report(model, BCELoss(), x, np.array([[1.0], [0.0]], np.float32))
    assert report.ok
    assert {row.name for row in report.rows} >= {"fc1.weight.grad", "fc2.bias.grad"}


def test_a_slice_goes_to_torch_with_torchs_own_keys():
    model = every_layer(np.float32)
    t_model = to_torch(model)
    assert list(to_torch(model[2:]).state_dict()) == list(t_model[2:].state_dict())
