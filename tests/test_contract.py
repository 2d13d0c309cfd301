"""The Module contract: no silent wrong gradient, modes, no_grad, buffers, a learner's own layer.

Each case of "no silent wrong gradient" ends either in torch's gradient or in a clear error,
and is checked against what torch does with the same code. Tests that need torch import it
themselves (``needs_torch``), so the rest run without it.
"""

from __future__ import annotations

import copy
import pickle
import re

import numpy as np
import pytest

import handprop
from handprop import Module, Parameter, Sequential
from handprop import worked_example as we
from handprop.layers import LeakyReLU, Linear, ReLU, Sigmoid, Softmax, Tanh
from handprop.losses import BCELoss, MSELoss
from handprop.optim import SGD, Adam

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])


def needs_torch():
    return pytest.importorskip("torch")


def torch_grads(model, loss_fn, X, y):
    """dJ/dX and every parameter's gradient, from torch's twin of ``model`` on (X, y)."""
    torch = needs_torch()
    from handprop.interop import to_torch, to_torch_loss

    dtype = next(model.parameters()).dtype
    twin = to_torch(model)
    tdt = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[dtype]
    tx = torch.tensor(np.asarray(X), dtype=tdt, requires_grad=True)
    ty = torch.tensor(np.asarray(y), dtype=tx.dtype)
    to_torch_loss(loss_fn, dtype)(twin(tx), ty).backward()
    return tx.grad.numpy(), {n: p.grad.numpy() for n, p in twin.named_parameters()}


def assert_grads_equal_torch(model, grad_x, expected):
    from closeness import assert_close

    dtype = next(model.parameters()).dtype
    t_grad_x, t_grads = expected
    assert_close("dJ/dX", grad_x, t_grad_x, dtype)
    for name, p in model.named_parameters():
        assert_close(f"{name}.grad", p.grad, t_grads[name], dtype)


# -- 1. the caller changes an array a module still needs -------------------------------------


@DTYPES
@pytest.mark.parametrize("first", ["Linear", "LeakyReLU", "ReLU", "Sigmoid", "Tanh", "Softmax"])
def test_writing_into_X_after_forward_does_not_change_the_gradient(dtype, first):
    """A reused batch buffer: X is overwritten between forward and backward (torch raises or
    is unaffected); handprop gives the gradient of the X that forward saw."""
    rng = np.random.default_rng(0)
    head = {
        "Linear": lambda: Linear(3, 3, dtype=dtype, rng=1),
        "LeakyReLU": lambda: LeakyReLU(0.1),
        "ReLU": ReLU,
        "Sigmoid": Sigmoid,
        "Tanh": Tanh,
        "Softmax": Softmax,
    }[first]()
    model = Sequential(head, Linear(3, 2, dtype=dtype, rng=2), Sigmoid())
    X = rng.standard_normal((4, 3)).astype(dtype)
    y = rng.integers(0, 2, (4, 2)).astype(dtype)
    expected = torch_grads(model, BCELoss(), X, y)
    loss = BCELoss()
    loss(model(X), y)
    X[...] = -X + 100.0  # the caller reuses its buffer
    y[...] = 1 - y
    grad_x = model.backward(loss.backward())
    assert_grads_equal_torch(model, grad_x, expected)


@pytest.mark.parametrize("layer", [Linear(2, 2, rng=0), ReLU(), Sigmoid(), Tanh(), Softmax()])
def test_outputs_are_read_only_so_an_in_place_edit_fails_at_once(layer):
    """torch raises at backward ('modified by an inplace operation'); handprop's outputs are
    read-only, so the same edit fails where it is made, and backward stays right."""
    X = np.array([[0.5, -1.0]], np.float32)
    out = layer(X)
    with pytest.raises(ValueError, match="read-only"):
        np.clip(out, 0.1, 0.9, out=out)
    with pytest.raises(ValueError, match="read-only"):
        out -= 5
    writable = out.copy()  # the way to get an array to edit
    writable -= 5
    reference = copy.deepcopy(layer)
    reference(X)
    np.testing.assert_array_equal(
        layer.backward(np.ones_like(out)), reference.backward(np.ones_like(out))
    )


def test_the_readme_findings_exact_cases():
    """reliability finding 1, as written: Linear's dW and a Sigmoid clipped in place."""
    lin = Linear(2, 1, rng=0)
    X = np.array([[1.0, 2.0]], np.float32)
    lin(X)
    X[:] = 100.0
    lin.backward(np.ones((1, 1), np.float32))
    np.testing.assert_array_equal(lin.weight.grad, [[1.0, 2.0]])
    sig = Sigmoid()
    out = sig(np.array([0.0, 2.0]))
    with pytest.raises(ValueError, match="read-only"):
        np.clip(out, 0.0, 0.5, out=out)
    np.testing.assert_allclose(sig.backward(np.ones(2)), [0.25, 0.104994], rtol=1e-5)


def test_a_loss_keeps_its_own_copy_of_input_and_target():
    p = np.array([[0.25], [0.75]])
    t = np.array([[0.0], [1.0]])
    loss = BCELoss()
    loss(p, t)
    expected = BCELoss()
    expected(p.copy(), t.copy())
    p[:] = 0.5
    t[:] = 0.5
    np.testing.assert_array_equal(loss.backward(), expected.backward())


def test_an_input_that_shares_memory_with_a_torch_tensor_is_copied():
    torch = needs_torch()
    tx = torch.tensor([[1.0, 2.0]])
    lin = Linear(2, 1, rng=0)
    lin(tx)
    tx[:] = 100.0
    lin.backward(np.ones((1, 1), np.float32))
    np.testing.assert_array_equal(lin.weight.grad, [[1.0, 2.0]])


# -- 2. one module in two places --------------------------------------------------------------


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
def test_a_module_twice_in_one_tree_gets_torchs_summed_gradients(nested):
    """The same Linear at two places (once inside a nested Sequential too), as torch allows:
    listed once by parameters(), at both keys in state_dict, and its gradient the sum over
    both uses, equal to torch's."""
    torch = needs_torch()
    lin = Linear(2, 2, rng=0, dtype=np.float64)
    model = Sequential(lin, Tanh(), Sequential(lin) if nested else lin)
    twin_lin = torch.nn.Linear(2, 2, dtype=torch.float64)
    twin_lin.load_state_dict({k: torch.tensor(v) for k, v in lin.state_dict().items()})
    twin = torch.nn.Sequential(
        twin_lin, torch.nn.Tanh(), torch.nn.Sequential(twin_lin) if nested else twin_lin
    )
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias"]
    assert list(model.state_dict()) == list(twin.state_dict())
    X = np.array([[0.5, -1.0], [2.0, 1.0]])
    dx = model.backward(np.ones_like(model(X)))
    tx = torch.tensor(X, requires_grad=True)
    twin(tx).sum().backward()
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-13)
    np.testing.assert_allclose(lin.weight.grad, twin_lin.weight.grad.numpy(), rtol=1e-13)
    np.testing.assert_allclose(lin.bias.grad, twin_lin.bias.grad.numpy(), rtol=1e-13)


def _alone(layer, X, head, grad):
    """``layer``'s gradients from a copy of it, run on ``X`` alone then ``head``: the
    reference a shared layer's backward must give (computed without any sharing)."""
    reference = Sequential(copy.deepcopy(layer), head)
    reference.zero_grad()
    reference(X)
    return reference.backward(grad), reference[0].weight.grad, reference[0].bias.grad


def test_a_module_shared_by_two_models_gets_each_models_own_gradient():
    """reliability finding 2 (S4): one Linear in models a and b, forward a, forward b,
    backward a: torch computes each graph's own gradient, and so does handprop: a's backward
    consumes the Linear's forward that a ran, then b's backward b's; the gradients add up."""
    lin = Linear(2, 2, dtype=np.float64, rng=0)
    a, b = Sequential(lin, Tanh()), Sequential(lin, Sigmoid())
    Xa, Xb = np.array([[1.0, 2.0]]), np.array([[-3.0, 5.0]])
    ya = a(Xa)
    b(Xb)
    dxa = a.backward(np.ones_like(ya))
    expected_dx, wa, ba = _alone(lin, Xa, Tanh(), np.ones((1, 2)))
    np.testing.assert_array_equal(dxa, expected_dx)
    np.testing.assert_array_equal(lin.weight.grad, wa)
    np.testing.assert_array_equal(lin.bias.grad, ba)
    dxb = b.backward(np.ones((1, 2)))
    expected_dx, wb, bb = _alone(lin, Xb, Sigmoid(), np.ones((1, 2)))
    np.testing.assert_array_equal(dxb, expected_dx)
    np.testing.assert_array_equal(lin.weight.grad, wa + wb)
    np.testing.assert_array_equal(lin.bias.grad, ba + bb)
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        lin.backward(np.ones((1, 2)))  # both forwards consumed


def test_a_slice_run_between_forward_and_backward_does_not_change_the_gradient():
    """The slice's forward of the first two modules stays pending; the model's backward uses
    the model's own forwards (the gradient of a fresh copy), and the slice's can follow."""
    model = we.model()
    reference = copy.deepcopy(model)
    X, y = we.data()
    loss = we.loss_fn()
    loss(model(X), y)
    model[:2](X * 2)
    dx = model.backward(loss.backward())
    loss(reference(X), y)
    np.testing.assert_array_equal(dx, reference.backward(loss.backward()))
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        np.testing.assert_array_equal(p.grad, q.grad)


def test_a_custom_container_that_runs_a_child_twice_gets_torchs_gradient():
    """A block whose forward applies the same Linear twice and whose backward calls its
    backward twice: each call consumes the most recent forward left, and the weight's
    gradient is the sum over both uses, as torch's."""
    torch = needs_torch()

    class Twice(Module):
        def __init__(self):
            super().__init__()
            self.inner = Linear(2, 2, rng=0, dtype=np.float64)

        def forward(self, x):
            return self.inner(self.inner(x))

        def backward(self, grad_output):
            return self.inner.backward(self.inner.backward(grad_output))

    m = Twice()
    X, G = np.array([[1.0, -2.0], [0.5, 3.0]]), np.array([[1.0, 2.0], [-1.0, 0.5]])
    m(X)
    dx = m.backward(G)
    t = torch.nn.Linear(2, 2, dtype=torch.float64)
    t.load_state_dict({k: torch.tensor(v) for k, v in m.inner.state_dict().items()})
    tx = torch.tensor(X, requires_grad=True)
    t(t(tx)).backward(torch.tensor(G))
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-13)
    np.testing.assert_allclose(m.inner.weight.grad, t.weight.grad.numpy(), rtol=1e-13)
    np.testing.assert_allclose(m.inner.bias.grad, t.bias.grad.numpy(), rtol=1e-13)


def test_weight_tying_by_a_shared_parameter_sums_both_uses_like_torch():
    """reliability S6: two layers share one Parameter; torch lists it once and sums its grads."""
    torch = needs_torch()
    l1, l2 = Linear(2, 2, dtype=np.float64, rng=0), Linear(2, 2, dtype=np.float64, rng=1)
    l2.weight = l1.weight
    model = Sequential(l1, Tanh(), l2)
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "2.bias"]
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    X = np.array([[0.5, -1.0], [2.0, 1.0]])
    out = model(X)
    model.backward(np.ones_like(out))

    t1, t2 = torch.nn.Linear(2, 2, dtype=torch.float64), torch.nn.Linear(2, 2, dtype=torch.float64)
    t2.weight = t1.weight
    twin = torch.nn.Sequential(t1, torch.nn.Tanh(), t2)
    twin.load_state_dict({k: torch.tensor(v) for k, v in model.state_dict().items()})
    twin(torch.tensor(X)).sum().backward()
    assert [n for n, _ in twin.named_parameters()] == ["0.weight", "0.bias", "2.bias"]
    np.testing.assert_allclose(l1.weight.grad, t1.weight.grad.numpy(), rtol=1e-13)
    SGD(model.parameters(), lr=0.1).step()  # the optimizer accepts the tied model


# -- 3. a second backward, a failed forward, a failed backward ----------------------------------


def test_a_second_backward_after_one_forward_raises_like_torch():
    torch = needs_torch()
    tx = torch.ones(1, 2, requires_grad=True)
    t_out = torch.nn.Linear(2, 1)(tx).sigmoid().sum()
    t_out.backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        t_out.backward()

    model = we.model()
    X, y = we.data()
    loss = we.loss_fn()
    loss(model(X), y)
    model.backward(loss.backward())
    grads = [p.grad.copy() for p in model.parameters()]
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        model.backward(loss.backward())
    for before, p in zip(grads, model.parameters(), strict=True):
        np.testing.assert_array_equal(p.grad, before)  # not doubled
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        model[4].backward(np.ones((2, 1), np.float32))  # a single layer too


def test_retain_graph_allows_a_second_backward_that_accumulates_like_torch():
    model = we.model(np.float64)
    X, y = we.data(np.float64)
    loss = we.loss_fn()
    loss(model(X), y)
    g = loss.backward()
    model.backward(g, retain_graph=True)
    once = model[0].weight.grad.copy()
    model.backward(g)
    np.testing.assert_array_equal(model[0].weight.grad, 2 * once)
    with pytest.raises(RuntimeError, match="second time"):
        model.backward(g)
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()  # a loss is a module: its backward consumes its forward too
    loss(model(X), y)
    np.testing.assert_array_equal(loss.backward(retain_graph=True), g)
    np.testing.assert_array_equal(loss.backward(), g)  # kept once more, as torch's J


def test_backward_after_a_forward_that_failed_halfway_raises():
    model = we.model()
    X, _ = we.data()
    model(X)
    with pytest.raises(ValueError, match=r"Sequential\[0\]"):
        model(np.ones((2, 5)))
    with pytest.raises(RuntimeError, match="after a forward\\(\\) that failed"):
        model.backward(np.ones((2, 1), np.float32))


class _Doubler(Module):
    """y = 2x, a learner's layer; with ``broken`` set, its backward returns the wrong shape."""

    broken = False

    def forward(self, x):
        return x * 2

    def backward(self, grad_output):
        return np.ones((7, 7), np.float32) if self.broken else grad_output * 2


def test_a_backward_that_fails_halfway_changes_nothing_and_can_be_retried():
    """reliability S14: later layers' grads were left accumulated; now all are put back."""
    model = Sequential(Linear(2, 2, rng=0), _Doubler(), Linear(2, 1, rng=1))
    model[1].broken = True
    X = np.ones((3, 2), np.float32)
    out = model(X)
    model[2].weight.grad = np.full((1, 2), 5.0, np.float32)  # an earlier accumulation
    with pytest.raises(ValueError, match="expected grad_output of shape \\(3, 2\\)"):
        model.backward(np.ones_like(out))
    np.testing.assert_array_equal(model[2].weight.grad, [[5.0, 5.0]])
    assert model[2].bias.grad is None and model[0].weight.grad is None
    model[1].broken = False
    model.backward(np.ones_like(out))  # the same forward is still usable
    assert model[0].weight.grad is not None


# -- 4. modes and no_grad ------------------------------------------------------------------------


def test_train_and_eval_propagate_and_return_self_like_torch():
    model = Sequential(Linear(2, 2), Sequential(ReLU(), Linear(2, 1)))
    assert model.training and all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    assert model.train() is model and all(m.training for m in model.modules())
    model[1].train(False)
    assert model.training and not model[1][0].training
    with pytest.raises(ValueError, match="training mode is expected to be boolean, got 'no'"):
        model.train("no")


@DTYPES
def test_an_evaluation_pass_under_no_grad_leaves_the_training_forward_intact(dtype):
    model = we.model(dtype)
    X, y = we.data(dtype)
    loss = we.loss_fn()
    expected = torch_grads(model, loss, X, y)
    loss(model(X), y)
    with handprop.no_grad():
        assert not handprop.is_grad_enabled()
        other = model(X * 3 - 1)
        loss(other, np.ones_like(y))  # the loss keeps nothing either
        model[:3](X[:1])  # a slice: nothing recorded either
    assert handprop.is_grad_enabled()
    grad_x = model.backward(loss.backward())
    assert_grads_equal_torch(model, grad_x, expected)


def test_backward_after_a_no_grad_forward_raises_saying_so():
    model = we.model()
    X, y = we.data()
    loss = we.loss_fn()

    @handprop.no_grad()
    def evaluate():
        return loss(model(X), y)

    evaluate()
    with pytest.raises(RuntimeError, match=r"Sequential: backward\(\) after a forward\(\) run "):
        model.backward(np.ones((2, 1), np.float32))
    with pytest.raises(RuntimeError, match=r"BCELoss\(\): backward\(\) after a forward\(\) run"):
        loss.backward()
    with handprop.no_grad(), handprop.enable_grad():
        loss(model(X), y)
    model.backward(loss.backward())  # enable_grad inside no_grad caches again


def test_no_grad_restores_the_mode_after_an_error():
    with pytest.raises(ZeroDivisionError), handprop.no_grad():
        1 / 0  # noqa: B018
    assert handprop.is_grad_enabled()


# -- 5. buffers ----------------------------------------------------------------------------------


class Scaler(Module):
    """y = (x - mean) * scale, with a running mean buffer and a non-persistent counter."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.scale = Parameter(np.ones(n, np.float32))
        self.register_buffer("running_mean", np.zeros(n, np.float32))
        self.register_buffer("calls", np.zeros((), np.int64), persistent=False)

    def forward(self, x):
        self.x = x
        if self.training:
            self.running_mean = 0.9 * self.running_mean + 0.1 * x.mean(axis=0)
        return (x - self.running_mean) * self.scale.data

    def backward(self, grad_output):
        self.scale.accumulate_grad((grad_output * (self.x - self.running_mean)).sum(axis=0))
        return grad_output * self.scale.data


def test_buffers_are_state_but_not_parameters_as_in_torch():
    torch = needs_torch()
    model = Sequential(Linear(2, 2, rng=0), Scaler(2))
    assert [n for n, _ in model.named_buffers()] == ["1.running_mean", "1.calls"]
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "1.scale"]
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.scale", "1.running_mean"]

    class TorchScaler(torch.nn.Module):  # the same layout in torch: the same keys, in order
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(2))
            self.register_buffer("running_mean", torch.zeros(2))
            self.register_buffer("calls", torch.zeros((), dtype=torch.int64), persistent=False)

    twin = torch.nn.Sequential(torch.nn.Linear(2, 2), TorchScaler())
    assert list(model.state_dict()) == list(twin.state_dict())
    assert [n for n, _ in model.named_buffers()] == [n for n, _ in twin.named_buffers()]

    model(np.ones((3, 2), np.float32))
    assert model[1].running_mean.any()
    snapshot = model.state_dict()
    model(np.ones((3, 2), np.float32))
    assert not np.array_equal(snapshot["1.running_mean"], model[1].running_mean)
    model.load_state_dict(snapshot)
    np.testing.assert_array_equal(model[1].running_mean, snapshot["1.running_mean"])
    model.load_state_dict(twin.state_dict())  # torch's tensors load too
    np.testing.assert_array_equal(model[1].running_mean, [0.0, 0.0])
    with pytest.raises(ValueError, match="size mismatch for 1.running_mean"):
        model.load_state_dict({**snapshot, "1.running_mean": np.zeros(3)})
    assert all(p is not model[1].running_mean for p in model.parameters())


def test_no_grad_does_not_undo_a_buffer_update():
    """torch updates running statistics under no_grad too: buffers are state, not caches."""
    layer = Scaler(2)
    with handprop.no_grad():
        layer(np.ones((3, 2), np.float32))
    np.testing.assert_allclose(layer.running_mean, [0.1, 0.1])


def test_register_buffer_errors_as_torch():
    m = Scaler(2)
    with pytest.raises(KeyError, match="attribute 'scale' already exists"):
        m.register_buffer("scale", np.zeros(2))
    with pytest.raises(KeyError, match="buffer name can.*t contain"):
        m.register_buffer("a.b", np.zeros(2))
    with pytest.raises(TypeError, match="cannot assign 'list' object to buffer 'b'"):
        m.register_buffer("b", [1.0])
    with pytest.raises(TypeError, match="cannot assign 'list' as buffer 'running_mean'"):
        m.running_mean = [1.0, 2.0]


# -- 6. a learner's own layer ---------------------------------------------------------------------


class Square(Module):
    """y = x^2, written the way a learner would: two methods, nothing else."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, grad_output):
        return 2 * self.x * grad_output


class Abs(Module):
    """|x|: a kink at 0, declared for gradcheck."""

    kinks_at = (0.0,)

    def forward(self, x):
        self.x = x
        return np.abs(x)

    def backward(self, grad_output):
        return np.sign(self.x) * grad_output


def learner_model(dtype=np.float64):
    return Sequential(Linear(2, 3, dtype=dtype, rng=0), Square(), Linear(3, 1, dtype=dtype, rng=1))


def test_a_two_method_layer_runs_in_sequential_and_trains_with_adam_like_torch():
    torch = needs_torch()
    model = learner_model()
    X = np.array([[0.5, -1.0], [2.0, 0.25], [1.0, 1.0]])
    y = np.array([[1.0], [0.0], [2.0]])
    twin = torch.nn.Sequential(
        torch.nn.Linear(2, 3, dtype=torch.float64), torch.nn.Identity(),
        torch.nn.Linear(3, 1, dtype=torch.float64),
    )  # fmt: skip
    twin.load_state_dict({k: torch.tensor(v) for k, v in model.state_dict().items()})
    opt, t_opt = Adam(model.parameters(), lr=0.01), torch.optim.Adam(twin.parameters(), lr=0.01)
    loss = MSELoss()
    for _ in range(5):
        opt.zero_grad()
        loss(model(X), y)
        model.backward(loss.backward())
        opt.step()
        t_opt.zero_grad()
        h = twin[0](torch.tensor(X))
        torch.nn.functional.mse_loss(twin[2](h * h), torch.tensor(y)).backward()
        t_opt.step()
    for (name, p), t_p in zip(model.named_parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(p.data, t_p.detach().numpy(), rtol=1e-12, err_msg=name)


def test_a_learner_layer_keeps_a_private_copy_of_the_callers_input():
    layer = Square()
    X = np.array([[1.0, 2.0]])
    layer(X)
    X[:] = 10.0
    np.testing.assert_array_equal(layer.backward(np.ones((1, 2))), [[2.0, 4.0]])
    assert X.flags.writeable  # the caller's array itself is left alone


def test_a_learner_layer_passes_gradcheck_and_a_declared_kink_is_named():
    X = np.array([[0.5, -1.0], [2.0, 0.25]])
    y = np.array([[1.0], [0.0]])
    assert handprop.gradcheck(learner_model(), MSELoss(), X, y).passed
    kinked = Sequential(Abs(), Linear(2, 1, dtype=np.float64, rng=0))
    report = handprop.gradcheck(kinked, MSELoss(), np.array([[0.0, 1.0]]), np.zeros((1, 1)))
    assert report.passed, report
    assert [k.value for k in report.kinks] == ["X[0, 0]"]


def test_a_learner_layer_is_traced_and_its_model_saved_and_loaded_into_code(tmp_path):
    model = learner_model(np.float32)
    X = np.array([[0.5, -1.0], [2.0, 0.25]], np.float32)
    y = np.array([[1.0], [0.0]], np.float32)
    t = handprop.trace(model, MSELoss(), X, y)
    np.testing.assert_allclose(t["A1"], t["Z1"] ** 2, rtol=1e-6)
    assert t["dJ/dZ1"].shape == (2, 3)
    handprop.save(model, tmp_path / "m.npz")
    with pytest.raises(ValueError, match="it holds Square, a module of your own"):
        handprop.load(tmp_path / "m.npz")
    fresh = learner_model(np.float32)
    for p in fresh.parameters():
        p.data[...] = 0.0  # nothing of the saved values: all comes from the file
    again = handprop.load(tmp_path / "m.npz", into=fresh)
    np.testing.assert_array_equal(again(X), model(X))


def test_assigning_an_array_to_a_parameter_raises_type_error_like_torch():
    layer = Linear(2, 2)
    with pytest.raises(
        TypeError,
        match=re.escape(
            "cannot assign 'numpy.ndarray' as parameter 'weight' (handprop.Parameter or None "
            "expected)"
        ),
    ):
        layer.weight = np.zeros((2, 2), np.float32)
    assert "weight" in layer.state_dict()
    new = Parameter(np.ones((2, 2), np.float32))
    layer.weight = new
    assert layer.weight is new and next(layer.parameters()) is new
    with pytest.raises(TypeError, match="cannot assign 'str' as child module '0'"):
        setattr(Sequential(ReLU()), "0", "relu")


def test_a_layer_without_super_init_gets_a_clear_error():
    class Forgot(Module):
        def __init__(self):
            pass

        def forward(self, x):
            return x

    with pytest.raises(RuntimeError, match=r"Forgot: call super\(\).__init__\(\)"):
        Forgot()(np.ones(2))


def test_copies_of_a_model_keep_working():
    """A copy made between forward and backward (deepcopy or pickle) carries the forward's
    caches: its backward gives the original's gradients, into its own parameters only, and
    the original's backward still runs, once."""
    model = we.model()
    X, y = we.data()
    loss = we.loss_fn()
    loss(model(X), y)
    clones = (copy.deepcopy(model), pickle.loads(pickle.dumps(model)))
    g = loss.backward()
    grads_x = [clone.backward(g) for clone in clones]  # each copy's own caches
    assert all(p.grad is None for p in model.parameters())  # the original's untouched
    grad_x = model.backward(g)
    expected = {name: p.grad for name, p in model.named_parameters()}
    assert set(expected) == {"0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"}
    for clone, clone_grad_x in zip(clones, grads_x, strict=True):
        np.testing.assert_array_equal(clone_grad_x, grad_x)
        for name, p in clone.named_parameters():
            np.testing.assert_array_equal(p.grad, expected[name])
            assert p is not dict(model.named_parameters())[name]
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        model.backward(g)


def test_a_read_only_grad_set_by_the_user_is_added_to_not_written_into():
    """reliability S17: backward used to fail with NumPy's 'output array is read-only'."""
    layer = Linear(2, 1, rng=0)
    mine = np.ones((1, 2), np.float32)
    mine.setflags(write=False)
    layer.weight.grad = mine
    layer(np.array([[1.0, 2.0]], np.float32))
    layer.backward(np.ones((1, 1), np.float32))
    np.testing.assert_array_equal(layer.weight.grad, [[2.0, 3.0]])
    np.testing.assert_array_equal(mine, [[1.0, 1.0]])  # the user's array is unchanged


def test_an_error_whose_class_needs_several_arguments_keeps_its_class_and_message():
    """reliability S18: Sequential's 'Sequential[i]: ...' re-wrapping built the same class from
    one message, which raised a TypeError for JSONDecodeError and UnicodeDecodeError."""
    import json

    class Parses(Module):
        def forward(self, x):
            return json.loads("{not json")

        def backward(self, grad_output):
            return grad_output

    with pytest.raises(json.JSONDecodeError, match="Expecting property name"):
        Sequential(ReLU(), Parses())(np.ones(2))
    with pytest.raises(ValueError, match=r"^Sequential\[1\]: Linear"):
        Sequential(ReLU(), Linear(3, 1))(np.ones((1, 2)))


def test_a_backward_called_inside_its_own_forward_says_so():
    class Impatient(Module):
        def forward(self, x):
            self.backward(x)
            return x

        def backward(self, grad_output):
            return grad_output

    with pytest.raises(
        RuntimeError,
        match=r"Impatient\(\): backward\(\) called while its own forward\(\) is still running",
    ):
        Impatient()(np.ones(2))
