"""Beyond the chain (issue "Contract 3"): layers on the leading-axis shapes torch accepts,
checked against torch through the one parity helper, in both dtypes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from handprop import Module, Parameter, Sequential
from handprop.layers import Linear, Softmax, Tanh
from handprop.losses import MSELoss

pytestmark = pytest.mark.torch
DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])

try:
    from parity import check_network
except ImportError:  # torch missing: the tests are skipped by their mark
    check_network = None


@DTYPES
@given(
    leading=st.lists(st.integers(1, 4), min_size=0, max_size=3),
    sizes=st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 4)),
    seed=st.integers(0, 2**16),
)
def test_linear_on_any_leading_axes_matches_torch(dtype, leading, sizes, seed):
    """(*, in_features): one sample (in,), a batch (N, in), a batch of sequences (B, T, in),
    more axes too; dW and db sum over every leading position, as torch's; Softmax over the
    last axis of the same shapes."""
    n_in, hidden, n_out = sizes
    rng = np.random.default_rng(seed)
    model = Sequential(  # (no normalisation: one of two or three nearly equal features is
        # rounding noise amplified, different in each implementation, as parity.py explains)
        Linear(n_in, hidden, rng=rng, dtype=dtype),
        Tanh(),
        Linear(hidden, n_out, rng=rng, dtype=dtype),
        Softmax(dim=-1),
    )
    X = rng.standard_normal((*leading, n_in)).astype(dtype)
    y = rng.standard_normal((*leading, n_out)).astype(dtype)
    check_network(model, MSELoss(), X, y)


@DTYPES
def test_linear_on_a_batch_of_sequences_is_each_position_on_its_own(dtype):
    """(B, T, in) gives what the (B * T, in) batch gives: the same outputs, dJ/dx rows, and
    parameter gradients summed over all B * T positions."""
    rng = np.random.default_rng(0)
    layer, flat = Linear(3, 2, rng=1, dtype=dtype), Linear(3, 2, rng=1, dtype=dtype)
    X = rng.standard_normal((4, 5, 3)).astype(dtype)
    G = rng.standard_normal((4, 5, 2)).astype(dtype)
    y = layer(X)
    assert y.shape == (4, 5, 2) and y.dtype == dtype
    dx = layer.backward(G)
    y_flat = flat(X.reshape(20, 3))
    dx_flat = flat.backward(G.reshape(20, 2))
    np.testing.assert_array_equal(y.reshape(20, 2), y_flat)
    np.testing.assert_array_equal(dx.reshape(20, 3), dx_flat)
    np.testing.assert_array_equal(layer.weight.grad, flat.weight.grad)
    np.testing.assert_array_equal(layer.bias.grad, flat.bias.grad)


@DTYPES
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 4),
    positions=st.lists(st.integers(1, 3), min_size=1, max_size=2),
    reduction=st.sampled_from(["mean", "sum", "none"]),
    kind=st.sampled_from(["indices", "ignored", "probabilities", "nll"]),
    seed=st.integers(0, 2**16),
)
def test_classification_losses_take_a_class_axis_with_positions_after_it(
    dtype, n, c, positions, reduction, kind, seed
):
    """CrossEntropyLoss and NLLLoss on (N, C, d1, ...) with targets (N, d1, ...) (or class
    probabilities of the input's shape), as torch's: losses, reduction="none"'s shape, and
    dJ/dx in the input's shape."""
    import torch
    from closeness import assert_close

    from handprop.layers import log_softmax
    from handprop.losses import CrossEntropyLoss, NLLLoss

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, *positions)).astype(dtype)
    target = rng.integers(0, c, (n, *positions))
    if kind == "ignored":
        target.reshape(-1)[0] = -100
    if kind == "probabilities":
        target = np.moveaxis(rng.dirichlet(np.ones(c), (n, *positions)), -1, 1).astype(dtype)
    if kind == "nll":
        x = np.moveaxis(log_softmax(np.moveaxis(x, 1, -1)), -1, 1).astype(dtype)
        ours, theirs = NLLLoss(reduction=reduction), torch.nn.NLLLoss(reduction=reduction)
    else:
        ours = CrossEntropyLoss(reduction=reduction)
        theirs = torch.nn.CrossEntropyLoss(reduction=reduction)
    out = ours(x, target)
    tx = torch.tensor(x, requires_grad=True)
    t_out = theirs(tx, torch.tensor(target))
    g = rng.standard_normal(np.shape(out)).astype(dtype) if reduction == "none" else 1.0
    t_out.backward(torch.tensor(g) if reduction == "none" else None)
    assert np.shape(out) == tuple(t_out.shape)
    assert_close("loss", out, t_out.detach().numpy(), dtype)
    dx = ours.backward(g)
    assert dx.shape == x.shape
    assert_close("dJ/dx", dx, tx.grad.numpy(), dtype)


def test_a_class_index_target_of_the_wrong_shape_is_refused_naming_both():
    from handprop.losses import CrossEntropyLoss

    with pytest.raises(ValueError, match=r"target must have shape \(2, 5\) for input \(2, 3, 5\)"):
        CrossEntropyLoss()(np.zeros((2, 3, 5)), np.zeros((2, 3), int))


# -- a module used many times: each backward consumes the most recent forward -----------------


class RNNCell(Module):
    """h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh), a block of two Linears and a Tanh, its
    backward written by hand: the sum's gradient goes to both branches."""

    def __init__(self, n_in, n_hidden, dtype, rng):
        super().__init__()
        self.ih = Linear(n_in, n_hidden, rng=rng, dtype=dtype)
        self.hh = Linear(n_hidden, n_hidden, rng=rng, dtype=dtype)
        self.act = Tanh()

    def forward(self, xh):
        x, h = xh[..., : self.ih.in_features], xh[..., self.ih.in_features :]
        return self.act(self.ih(x) + self.hh(h))

    def backward(self, grad_output):
        g = self.act.backward(grad_output)  # the sum passes g to both of its terms
        return np.concatenate([self.ih.backward(g), self.hh.backward(g)], axis=-1)


@DTYPES
@pytest.mark.parametrize("steps", [1, 7])
def test_a_cell_in_a_loop_of_steps_is_backpropagated_through_time_as_torch(dtype, steps):
    """The BPTT loop of the issue: the same cell T times forward, then T backwards in reverse;
    every gradient (dJ/dx_t for each step, dJ/dh_0, the weights summed over the steps) equals
    torch's autograd through the same unrolled loop."""
    import torch
    from closeness import assert_close

    rng = np.random.default_rng(steps)
    cell = RNNCell(3, 4, dtype, rng)
    xs = rng.standard_normal((steps, 2, 3)).astype(dtype)
    h0 = rng.standard_normal((2, 4)).astype(dtype)
    g_last = rng.standard_normal((2, 4)).astype(dtype)
    h = h0
    for x_t in xs:
        h = cell(np.concatenate([x_t, h], axis=-1))
    dxs, dh = [], g_last
    for _ in range(steps):
        dxh = cell.backward(dh)
        dxs.insert(0, dxh[..., :3])
        dh = dxh[..., 3:]

    tdt = torch.float32 if dtype == np.float32 else torch.float64
    ih, hh = torch.nn.Linear(3, 4, dtype=tdt), torch.nn.Linear(4, 4, dtype=tdt)
    ih.load_state_dict({k: torch.tensor(v) for k, v in cell.ih.state_dict().items()})
    hh.load_state_dict({k: torch.tensor(v) for k, v in cell.hh.state_dict().items()})
    txs, th = torch.tensor(xs, requires_grad=True), torch.tensor(h0, requires_grad=True)
    t_h = th
    for t in range(steps):
        t_h = torch.tanh(ih(txs[t]) + hh(t_h))
    t_h.backward(torch.tensor(g_last))
    assert_close("dJ/dxs", np.stack(dxs), txs.grad.numpy(), dtype)
    assert_close("dJ/dh0", dh, th.grad.numpy(), dtype)
    for name, p in cell.named_parameters():
        module, param = name.split(".")
        expected = getattr({"ih": ih, "hh": hh}[module], param).grad.numpy()
        assert_close(name, p.grad, expected, dtype)
    with pytest.raises(RuntimeError, match="a second time"):
        cell.backward(dh)  # one backward too many: a clear error


# -- tied weights: one parameter in two modules, one module at two places ---------------------


def _tied_models(dtype):
    layers = [Linear(3, 4, rng=0, dtype=dtype), Linear(4, 4, rng=1, dtype=dtype)]
    layers += [Linear(4, 4, rng=2, dtype=dtype), Linear(4, 3, rng=3, dtype=dtype)]
    layers[2].weight = layers[1].weight  # a Parameter held by two modules
    tied = Sequential(layers[0], Tanh(), layers[1], Tanh(), layers[2], Tanh(), layers[3])
    shared = Linear(3, 3, rng=3, dtype=dtype)
    twice = Sequential(shared, Tanh(), shared)  # a module at two places
    return tied, twice


@DTYPES
def test_tied_weights_are_one_parameter_stepped_once_and_saved_tied(dtype, tmp_path):
    """A tie is one parameter: listed once, stepped once by an optimizer, its gradient the sum
    of both uses; state_dict has both keys, as torch's; save and load keep the tie (and a
    module at two places stays one module)."""
    import handprop
    from handprop.optim import SGD

    X = np.random.default_rng(4).standard_normal((5, 3)).astype(dtype)
    for model in _tied_models(dtype):
        names = [n for n, _ in model.named_parameters()]
        assert len(names) == len({id(p) for p in model.parameters()})  # each once
        assert len(model.state_dict()) > len(names)  # both keys of a tie
        path = tmp_path / "tied.npz"
        handprop.save(model, path)
        loaded = handprop.load(path)
        assert [n for n, _ in loaded.named_parameters()] == names
        for m in (model, loaded):
            m.zero_grad()
            m.backward(np.ones_like(m(X)))
            SGD(list(m.parameters()), lr=0.1).step()
        for (name, p), q in zip(model.named_parameters(), loaded.parameters(), strict=True):
            np.testing.assert_array_equal(p.data, q.data, err_msg=name)
        state = loaded.state_dict()
        for keys in handprop.module._sharing(model)["parameters"]:
            assert all(np.array_equal(state[keys[0]], state[k]) for k in keys)


def test_a_file_whose_ties_do_not_fit_is_refused(tmp_path):
    import json
    import zipfile

    import handprop

    model = _tied_models(np.float64)[0]
    path = tmp_path / "tied.npz"
    handprop.save(model, path)
    with zipfile.ZipFile(path) as archive:
        members = {n: np.load(archive.open(n)) for n in archive.namelist()}
    header = json.loads(str(members.pop("architecture.npy")[()]))
    for ties, said in (
        ({"modules": [], "parameters": [["2.weight", "9.weight"]]}, "does not have"),
        ({"modules": [], "parameters": [["2.bias", "4.bias"]]}, "hold different values"),
        ({"parameters": []}, "must hold 'modules' and 'parameters'"),
        (
            {"modules": [["0", "1"]], "parameters": []},
            r"tied modules \['0', '1'\] are not the same",
        ),
        ({"modules": [["0", "2"]], "parameters": []}, "are not the same layer"),  # other weights
    ):
        bad = {**header, "ties": ties}
        arrays = {k.removesuffix(".npy"): v for k, v in members.items()}
        np.savez(path, architecture=np.array(json.dumps(bad)), **arrays)
        with pytest.raises(ValueError, match=said):
            handprop.load(path)


class FailsOnce(Module):
    """Identity whose first backward raises (after the layers behind it have run theirs)."""

    def __init__(self):
        super().__init__()
        self.failed = False

    def forward(self, x):
        return x * 1

    def backward(self, grad_output):
        if not self.failed:
            self.failed = True
            raise ZeroDivisionError("on purpose")
        return grad_output


def test_a_backward_that_fails_after_moves_and_pops_changes_nothing():
    """One Linear in models a and b (forward a, forward b), a's backward fails halfway, after
    a's Tanh consumed its forward and the Linear's forwards were reordered: every pending
    forward, cached value and grad is back as it was, and the retried backwards of a, then b,
    give each model's own gradients."""
    lin = Linear(2, 2, dtype=np.float64, rng=0)
    a = Sequential(lin, FailsOnce(), Tanh())
    b = Sequential(lin, Tanh())
    Xa, Xb = np.array([[1.0, 2.0]]), np.array([[-3.0, 5.0]])
    a(Xa)
    b(Xb)
    stacks = [list(m._pending_stamps) for m in (lin, a, b, a[2])]
    with pytest.raises(ZeroDivisionError):
        a.backward(np.ones((1, 2)))
    assert [list(m._pending_stamps) for m in (lin, a, b, a[2])] == stacks
    assert lin.weight.grad is None
    np.testing.assert_array_equal(lin._x, Xb)  # the live (latest) forward's input, again
    a.backward(np.ones((1, 2)))
    alone = Sequential(Linear(2, 2, dtype=np.float64, rng=0), Tanh())
    alone(Xa)
    alone.backward(np.ones((1, 2)))
    np.testing.assert_array_equal(lin.weight.grad, alone[0].weight.grad)
    b.backward(np.ones((1, 2)))
    alone(Xb)
    alone.backward(np.ones((1, 2)))
    np.testing.assert_allclose(lin.weight.grad, alone[0].weight.grad, rtol=1e-15)


# -- blocks a learner writes: residual, branch and sum, reuse; drawn at random ---------------


class Residual(Module):
    """y = x + f(x): the input forks, so its gradient is the sum of both paths'."""

    def __init__(self, f):
        super().__init__()
        self.f = f

    def forward(self, x):
        return x + self.f(x)

    def backward(self, grad_output):
        return grad_output + self.f.backward(grad_output)


class BranchSum(Module):
    """y = f(x) + g(x): two branches of the same input, summed."""

    def __init__(self, f, g):
        super().__init__()
        self.f, self.g = f, g

    def forward(self, x):
        return self.f(x) + self.g(x)

    def backward(self, grad_output):
        return self.f.backward(grad_output) + self.g.backward(grad_output)


class Reuse(Module):
    """y = f(f(x)): one module used twice; its backwards, last use first."""

    def __init__(self, f):
        super().__init__()
        self.f = f

    def forward(self, x):
        return self.f(self.f(x))

    def backward(self, grad_output):
        return self.f.backward(self.f.backward(grad_output))


def _torch_of(module, torch):
    """A torch function computing what ``module`` computes, with its own torch parameters
    (the same values), and the dict of those parameters under handprop's names."""
    from handprop.interop import to_torch

    if isinstance(module, Residual):
        f, ps = _torch_of(module.f, torch)
        return (lambda x: x + f(x)), {f"f.{k}": v for k, v in ps.items()}
    if isinstance(module, BranchSum):
        f, pf = _torch_of(module.f, torch)
        g, pg = _torch_of(module.g, torch)
        params = {**{f"f.{k}": v for k, v in pf.items()}, **{f"g.{k}": v for k, v in pg.items()}}
        return (lambda x: f(x) + g(x)), params
    if isinstance(module, Reuse):
        f, ps = _torch_of(module.f, torch)
        return (lambda x: f(f(x))), {f"f.{k}": v for k, v in ps.items()}
    if isinstance(module, Sequential) and any(
        isinstance(m, (Residual, BranchSum, Reuse)) for m in module
    ):
        parts = [_torch_of(m, torch) for m in module]

        def run(x):
            for f, _ in parts:
                x = f(x)
            return x

        params = {f"{i}.{k}": v for i, (_, ps) in enumerate(parts) for k, v in ps.items()}
        return run, params
    twin = to_torch(module)
    return twin, dict(twin.named_parameters())


@st.composite
def blocks(draw, width, dtype, depth=0):
    """A random block of the given width: a Linear and an activation, or a residual, a branch
    and sum, or a reuse of smaller blocks."""
    from handprop.layers import ReLU

    kind = draw(
        st.sampled_from(["layer", "layer", "residual", "branch", "reuse"][: 2 + 3 * (depth < 2)])
    )
    if kind == "layer":
        act = draw(st.sampled_from([Tanh, ReLU]))
        return Sequential(Linear(width, width, rng=draw(st.integers(0, 999)), dtype=dtype), act())
    if kind == "residual":
        return Residual(draw(blocks(width, dtype, depth + 1)))
    if kind == "branch":
        return BranchSum(
            draw(blocks(width, dtype, depth + 1)), draw(blocks(width, dtype, depth + 1))
        )
    return Reuse(draw(blocks(width, dtype, depth + 1)))


@DTYPES
@given(data=st.data(), width=st.integers(1, 4), n=st.integers(1, 3), seed=st.integers(0, 999))
def test_random_blocks_give_torchs_gradients(dtype, data, width, n, seed):
    """Blocks drawn at random (residual adds, branches summed, a block reused, nested): every
    gradient, dJ/dX and each parameter's (shared ones summed over their uses), equals
    torch's autograd on the same computation."""
    import torch
    from closeness import assert_close

    model = Sequential(
        *[data.draw(blocks(width, dtype)) for _ in range(data.draw(st.integers(1, 3)))]
    )
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, width)).astype(dtype)
    G = rng.standard_normal((n, width)).astype(dtype)
    model(X)
    dx = model.backward(G)
    f, t_params = _torch_of(model, torch)
    tx = torch.tensor(X, requires_grad=True)
    f(tx).backward(torch.tensor(G))
    assert_close("dJ/dX", dx, tx.grad.numpy(), dtype)
    ours = dict(model.named_parameters())
    assert set(ours) == set(t_params)
    for name, p in ours.items():
        assert_close(name, p.grad, t_params[name].grad.numpy(), dtype)


# -- many inputs, many outputs, options ---------------------------------------------------------


class Gate(Module):
    """y = x * sigmoid(h W^T): two inputs; backward returns one gradient per input."""

    def __init__(self, n, dtype):
        super().__init__()
        self.lin = Linear(n, n, rng=5, dtype=dtype)

    def forward(self, x, h, *, scale=1.0):
        self.x, self.s, self.scale = x, 1 / (1 + np.exp(-self.lin(h))), scale
        return scale * x * self.s

    def backward(self, grad_output):
        g = self.scale * grad_output
        dx = g * self.s
        dh = self.lin.backward(g * self.x * self.s * (1 - self.s))
        return dx, dh


class Split(Module):
    """(x[..., :k], (x[..., k:], 2 x[..., k:])): nested outputs; backward takes one gradient
    per output, nested as the outputs are."""

    def __init__(self, k):
        super().__init__()
        self.k = k

    def forward(self, x):
        return x[..., : self.k].copy(), (x[..., self.k :].copy(), 2 * x[..., self.k :])

    def backward(self, g_first, g_rest):
        g_tail, g_double = g_rest
        return np.concatenate([g_first, g_tail + 2 * g_double], axis=-1)


@DTYPES
def test_a_module_of_two_inputs_with_an_option_gives_torchs_gradients(dtype):
    import torch
    from closeness import assert_close

    rng = np.random.default_rng(0)
    gate = Gate(3, dtype)
    X, H, G = (rng.standard_normal((4, 3)).astype(dtype) for _ in range(3))
    mine_x, mine_h = X.copy(), H.copy()
    y = gate(mine_x, mine_h, scale=2.0)
    mine_x[...] = 7  # the caller's arrays change after forward: the backward must not see it
    mine_h[...] = 7
    dx, dh = gate.backward(G)
    lin = torch.nn.Linear(3, 3, dtype=torch.float32 if dtype == np.float32 else torch.float64)
    lin.load_state_dict({k: torch.tensor(v) for k, v in gate.lin.state_dict().items()})
    tx, th = torch.tensor(X, requires_grad=True), torch.tensor(H, requires_grad=True)
    ty = 2.0 * tx * torch.sigmoid(lin(th))
    ty.backward(torch.tensor(G))
    assert_close("y", y, ty.detach().numpy(), dtype)
    assert_close("dJ/dx", dx, tx.grad.numpy(), dtype)
    assert_close("dJ/dh", dh, th.grad.numpy(), dtype)
    assert_close("lin.weight", gate.lin.weight.grad, lin.weight.grad.numpy(), dtype)
    assert not y.flags.writeable


def test_nested_outputs_take_one_gradient_each_and_none_is_zeros():
    split = Split(2)
    X = np.arange(10.0).reshape(2, 5)
    first, (tail, double) = split(X)
    assert not (first.flags.writeable or tail.flags.writeable or double.flags.writeable)
    g1, g2, g3 = np.ones((2, 2)), np.full((2, 3), 0.5), np.full((2, 3), 0.25)
    np.testing.assert_array_equal(split.backward(g1, (g2, g3)), np.hstack([g1, g2 + 2 * g3]))
    split(X)  # None: an output that does not reach the loss, taken as zeros
    np.testing.assert_array_equal(split.backward(None, (g2, None)), np.hstack([0 * g1, g2]))
    split(X)
    with pytest.raises(
        TypeError, match=r"one gradient per output of forward\(\): 2 outputs, got 1"
    ):
        split.backward(g1)
    split.backward(g1, None)  # the forward is still pending after the refusal
    lin = Linear(2, 2)
    lin(np.ones((1, 2)))
    with pytest.raises(TypeError, match=r"1 output, got 2 gradients"):
        lin.backward(np.ones((1, 2)), np.ones((1, 2)))


def test_a_forward_under_no_grad_takes_many_inputs_and_options_too():
    import handprop

    gate = Gate(2, np.float64)
    with handprop.no_grad():
        y = gate(np.ones((1, 2)), np.zeros((1, 2)), scale=3.0)
    np.testing.assert_allclose(y[0], 3.0 / (1 + np.exp(-gate.lin.bias.data)))
    with pytest.raises(RuntimeError, match="no_grad"):
        gate.backward(np.ones((1, 2)))


class Overwrites(Linear):
    """A Linear whose backward sets weight.grad instead of adding to it."""

    def backward(self, grad_output, *, input_grad=True):
        g = np.asarray(grad_output)
        self.weight.grad = g.T @ self._x
        self.bias.accumulate_grad(g.sum(axis=0))
        return g @ self.weight.data


@pytest.mark.parametrize("uses", [2, 3])
def test_check_module_names_a_shared_gradient_overwritten_instead_of_added(uses):
    """Right when used once; used several times, the last use's share replaces the others':
    check_module names overwritten-shared on the weight (and nothing on a correct Linear)."""
    from handprop import check_module

    def block(layer_class):
        class Repeat(Module):
            def __init__(self):
                super().__init__()
                self.f = layer_class(2, 2, rng=0, dtype=np.float64)

            def forward(self, x):
                for _ in range(uses):
                    x = self.f(x)
                return x

            def backward(self, grad_output):
                for _ in range(uses):
                    grad_output = self.f.backward(grad_output)
                return grad_output

        return Repeat()

    X = np.array([[1.0, 2.0], [0.5, -1.0]])
    assert check_module(Overwrites(2, 2, rng=0, dtype=np.float64), X, rng=0).passed  # used once
    report = check_module(block(Overwrites), X, rng=0)
    assert [(m.tensor, m.code) for m in report.mistakes] == [("f.weight", "overwritten-shared")]
    assert f"used {uses} times" in report.mistakes[0].hint
    right = check_module(block(Linear), X, rng=0)
    assert right.passed and not right.mistakes


@DTYPES
def test_to_torch_keeps_what_the_model_shares(dtype):
    """The torch twin of a model with a tied parameter or a module at two places shares them
    too: the same parameter names, and the gradients torch sums equal handprop's."""
    import torch
    from closeness import assert_close

    from handprop.interop import to_torch

    X = np.random.default_rng(6).standard_normal((5, 3)).astype(dtype)
    for model in _tied_models(dtype):
        twin = to_torch(model)
        names = [n for n, _ in model.named_parameters()]
        assert [n for n, _ in twin.named_parameters()] == names
        model.zero_grad()
        model.backward(np.ones_like(model(X)))
        twin(torch.tensor(X)).sum().backward()
        t_params = dict(twin.named_parameters())
        for name, p in model.named_parameters():
            assert_close(name, p.grad, t_params[name].grad.numpy(), dtype)


def test_a_nested_input_is_made_private_too():
    """An input given as a tuple, as an LSTM's state (h, c): the caller changing h or c after
    the forward changes nothing its backward uses."""

    class Pair(Module):
        def forward(self, x, state):
            self.x, (self.h, self.c) = x, state
            return x * self.h + self.c

        def backward(self, grad_output):
            return grad_output * self.h, (grad_output * self.x, grad_output)

    pair = Pair()
    h, c = np.array([2.0, 3.0]), np.array([1.0, 1.0])
    pair(np.ones(2), (h, c))
    h[:] = 100.0
    dx, _ = pair.backward(np.ones(2))
    np.testing.assert_array_equal(dx, [2.0, 3.0])  # the h of the forward, not the caller's 100
    assert not pair.h.flags.writeable


def test_a_backward_of_several_inputs_returns_one_gradient_for_each_or_is_refused():
    """The contract's rule, enforced: a forward of two inputs, a backward returning one
    gradient, is refused naming the module, and changes nothing."""

    class Product(Module):
        def __init__(self, wrong=False):
            super().__init__()
            self.weight = Parameter(np.array([2.0]))
            self.wrong = wrong

        def forward(self, a, b):
            self.a, self.b = a, b
            return a * b * self.weight.data

        def backward(self, grad_output):
            self.weight.accumulate_grad(np.sum(grad_output * self.a * self.b, keepdims=True))
            da = grad_output * self.b * self.weight.data
            return da if self.wrong else (da, grad_output * self.a * self.weight.data)

    right = Product()
    right(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    da, db = right.backward(np.ones(2))
    np.testing.assert_array_equal(da, [6.0, 8.0])
    np.testing.assert_array_equal(db, [2.0, 4.0])
    wrong = Product(wrong=True)
    wrong(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    with pytest.raises(TypeError, match=r"Product\(\): backward\(\) returns one gradient per input "
                       r"of forward\(\): 2 inputs, got one gradient"):  # fmt: skip
        wrong.backward(np.ones(2))
    assert wrong.weight.grad is None  # the failed backward changed nothing
    wrong.wrong = False
    assert len(wrong.backward(np.ones(2))) == 2  # its forward is still there
