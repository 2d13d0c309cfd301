"""Module, Parameter and Sequential: names, state_dict, repr, accumulation, as in torch."""

from collections import OrderedDict

import numpy as np
import pytest

from handprop import Parameter, Sequential
from handprop import worked_example as we
from handprop.layers import LeakyReLU, Linear, ReLU, Sigmoid, Tanh
from handprop.losses import BCELoss

try:  # the tests marked torch need it (and skip without it); the others run anyway
    import torch
    from parity import to_torch_model
except ImportError:
    torch = None


def model(dtype=np.float32):
    return Sequential(
        Linear(2, 4, dtype=dtype, rng=0),
        Tanh(),
        Linear(4, 3, bias=False, dtype=dtype, rng=1),
        LeakyReLU(0.05),
        Linear(3, 1, dtype=dtype, rng=2),
        Sigmoid(),
    )


@pytest.mark.torch
def test_names_state_dict_keys_and_repr_equal_torchs():
    hp = model()
    twin = to_torch_model(hp)
    assert [n for n, _ in hp.named_parameters()] == [n for n, _ in twin.named_parameters()]
    assert list(hp.state_dict()) == list(twin.state_dict())
    assert repr(hp) == repr(twin)
    assert (
        repr(Linear(3, 2, dtype=np.float64))
        == "Linear(in_features=3, out_features=2, bias=True, dtype=float64)"
    )


@pytest.mark.torch
def test_torch_state_dict_loads_and_round_trips():
    hp = model()
    twin = torch.nn.Sequential(
        torch.nn.Linear(2, 4),
        torch.nn.Tanh(),
        torch.nn.Linear(4, 3, bias=False),
        torch.nn.LeakyReLU(0.05),
        torch.nn.Linear(3, 1),
        torch.nn.Sigmoid(),
    )
    hp.load_state_dict(twin.state_dict())  # torch tensors are accepted as values
    for name, value in twin.state_dict().items():
        np.testing.assert_array_equal(hp.state_dict()[name], value.numpy())
    snapshot = hp.state_dict()
    hp[0].weight.data += 1.0  # state_dict holds copies: the snapshot is unchanged
    assert not np.array_equal(snapshot["0.weight"], hp[0].weight.data)
    hp.load_state_dict(snapshot)
    np.testing.assert_array_equal(snapshot["0.weight"], hp[0].weight.data)


def test_load_state_dict_casts_to_the_parameter_dtype_in_place():
    hp = we.model(np.float64)
    weight = hp[0].weight
    hp.load_state_dict({k: np.asarray(v, dtype=np.float32) for k, v in we.PARAMETERS.items()})
    assert hp[0].weight is weight and weight.dtype == np.float64


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_grads_accumulate_over_two_backwards_and_zero_grad_resets_like_torch(dtype):
    hp = model(dtype)
    twin = to_torch_model(hp)
    X = np.array([[0.5, -1.0], [2.0, 0.25], [1.0, 1.0]], dtype=dtype)
    y = np.array([[0.0], [1.0], [1.0]], dtype=dtype)
    assert all(p.grad is None for p in hp.parameters())
    loss = BCELoss()
    tx, ty = torch.tensor(X), torch.tensor(y)
    for _ in range(2):
        loss(hp(X), y)
        hp.backward(loss.backward())
        torch.nn.functional.binary_cross_entropy(twin(tx), ty).backward()
    t_params = dict(twin.named_parameters())
    for name, p in hp.named_parameters():
        ref = t_params[name].grad.numpy()
        np.testing.assert_allclose(
            p.grad, ref, rtol=1e-5 if dtype is np.float32 else 1e-13, atol=1e-7
        )
    hp.zero_grad()
    twin.zero_grad()
    assert all(p.grad is None for p in hp.parameters())
    assert all(p.grad is None for p in twin.parameters())


def test_first_grad_is_not_aliased_to_anything_the_caller_holds():
    layer = Linear(2, 2, rng=0)
    layer(np.ones((1, 2)))
    g = np.ones((1, 2), dtype=np.float32)
    layer.backward(g)
    first = layer.weight.grad.copy()
    layer(np.ones((1, 2)))
    layer.backward(g)
    np.testing.assert_array_equal(layer.weight.grad, 2 * first)
    np.testing.assert_array_equal(g, 1.0)


def test_sequential_indexing_length_iteration():
    m = model()
    assert len(m) == 6 and isinstance(m[0], Linear) and m[-1] is m[5]
    assert list(m) == [m[i] for i in range(6)]
    head = m[:2]
    assert isinstance(head, Sequential) and len(head) == 2 and head[0] is m[0]
    assert Sequential()(np.ones((1, 2))).shape == (1, 2)


def test_sequential_backward_is_the_modules_backward_in_reverse():
    m = model(np.float64)
    X = np.array([[1.0, 2.0]])
    out = m(X)
    g = np.ones_like(out)
    manual = g
    for module in reversed(list(m)):
        manual = module.backward(manual)
    grads = {n: p.grad.copy() for n, p in m.named_parameters()}
    m.zero_grad()
    m(X)
    np.testing.assert_array_equal(m.backward(g), manual)
    for n, p in m.named_parameters():
        np.testing.assert_array_equal(p.grad, grads[n])


def test_parameter_attributes_and_repr():
    p = Parameter(np.zeros((2, 3), dtype=np.float64))
    assert p.shape == (2, 3) and p.dtype == np.float64 and p.grad is None
    assert repr(p).startswith("Parameter containing:\narray(")


def test_relu_module_in_a_model_repr():
    assert repr(Sequential(ReLU())) == "Sequential(\n  (0): ReLU()\n)"


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_input_grad_false_skips_dx_but_not_parameter_grads(dtype):
    m = model(dtype)
    X = np.array([[0.5, -1.0], [2.0, 0.25]], dtype=dtype)
    out = m(X)
    g = np.ones_like(out)
    dx = m.backward(g)
    full = {n: p.grad.copy() for n, p in m.named_parameters()}
    m.zero_grad()
    m(X)
    assert m.backward(g, input_grad=False) is None
    for n, p in m.named_parameters():
        np.testing.assert_array_equal(p.grad, full[n], err_msg=n)  # bit for bit the same
    assert dx is not None and dx.shape == X.shape
    # only the first module is told: an activation first returns None, the Linear after it
    # still computes dJ/d(its input) for it
    act_first = Sequential(Tanh(), Linear(2, 1, dtype=dtype, rng=0))
    act_first(X)
    assert act_first.backward(np.ones((2, 1), dtype=dtype), input_grad=False) is None
    assert act_first[1].weight.grad is not None
    for layer in (Linear(2, 3, dtype=dtype, rng=0), ReLU(), Sigmoid(), Tanh(), LeakyReLU()):
        y = layer(X)
        assert layer.backward(np.ones_like(y), input_grad=False) is None


def named_model():
    return Sequential(
        OrderedDict(fc1=Linear(2, 3, rng=0), act=ReLU(), fc2=Linear(3, 1, rng=1), out=Sigmoid())
    )


def test_sequential_takes_named_children_as_torch_does():
    """torch's Sequential(OrderedDict(fc1=..., ...)): the names key state_dict and repr, the
    children are attributes, and indexing and slicing keep working (a slice keeps its names)."""
    m = named_model()
    assert [n for n, _ in m.named_parameters()] == [
        "fc1.weight",
        "fc1.bias",
        "fc2.weight",
        "fc2.bias",
    ]
    assert repr(m).splitlines()[1] == "  (fc1): Linear(in_features=2, out_features=3, bias=True)"
    assert m.fc1 is m[0] and m.out is m[-1] and len(m) == 4
    tail = m[2:]
    assert list(tail._modules) == ["fc2", "out"] and tail.fc2 is m.fc2
    m.fc2 = Linear(3, 1, rng=5)  # replacing a child keeps its place, as in torch
    assert m[2] is m.fc2 and list(m._modules) == ["fc1", "act", "fc2", "out"]
    out = m(np.ones((2, 2)))
    assert m.backward(np.ones_like(out)).shape == (2, 2)
    with pytest.raises(AttributeError, match="'Sequential' object has no attribute 'fc3'"):
        m.fc3  # noqa: B018


def test_a_numbered_sequential_slice_keeps_its_numbers_as_torch_does():
    m = model()
    assert [n for n, _ in m[2:].named_parameters()] == ["2.weight", "4.weight", "4.bias"]
    assert m[2:][0] is m[2]  # indexing is by position, whatever the names


@pytest.mark.parametrize(
    ("names", "error", "message"),
    [
        ([1], TypeError, "module name should be a string. Got int"),
        (["a.b"], KeyError, 'module name can\'t contain ".", got: a.b'),
        ([""], KeyError, 'module name can\'t be empty string ""'),
        (["forward"], KeyError, "attribute 'forward' already exists"),
        (["training"], KeyError, "attribute 'training' already exists"),
    ],
)
def test_sequential_refuses_the_names_torch_refuses(names, error, message):
    with pytest.raises(error) as refused:
        Sequential(OrderedDict((name, ReLU()) for name in names))
    assert refused.value.args == (message,)  # torch's words (a KeyError's str adds quotes)


def test_sequential_refuses_a_plain_dict_as_torch_does():
    with pytest.raises(
        TypeError, match="Sequential: argument 0 must be a handprop Module, got dict"
    ):
        Sequential({"a": ReLU()})


@pytest.mark.torch
def test_named_sequential_state_dict_loads_into_torchs_named_sequential():
    m = named_model()
    twin = torch.nn.Sequential(
        OrderedDict(
            fc1=torch.nn.Linear(2, 3),
            act=torch.nn.ReLU(),
            fc2=torch.nn.Linear(3, 1),
            out=torch.nn.Sigmoid(),
        )
    )
    twin.load_state_dict({k: torch.tensor(v) for k, v in m.state_dict().items()})
    assert list(twin.state_dict()) == list(m.state_dict())
    x = np.array([[0.5, -1.0], [2.0, 0.25]], np.float32)
    # the same weights under the same keys (outputs to float32 rounding: BLAS orders sums)
    np.testing.assert_allclose(m(x), twin(torch.tensor(x)).detach().numpy(), rtol=1e-6)
