"""RNNCell against torch's nn.RNNCell: one step (outputs, dJ/dx, dJ/dhx and every parameter
gradient) in both dtypes over random sizes, batched and not, tanh and relu, with and without
a state; and a cell run over 7 time steps and backpropagated through time, last step first,
equal to torch's autograd through the same loop."""

from __future__ import annotations

import numpy as np
import pytest
from closeness import assert_close
from hypothesis import given
from hypothesis import strategies as st
from parity import check_module_against_torch

import handprop
from handprop import Module
from handprop.interop import from_torch, to_torch
from handprop.layers import Linear, RNNCell
from handprop.losses import MSELoss

torch = pytest.importorskip("torch")
DTYPES = [np.float32, np.float64]


def _scale(*arrays) -> float:
    """The size of the terms a product sums: at least 1."""
    return max([1.0] + [float(np.abs(a).sum(axis=-1).max(initial=0.0)) for a in arrays])


@st.composite
def steps(draw):
    return {
        "input_size": draw(st.integers(1, 5)),
        "hidden_size": draw(st.integers(1, 5)),
        "batch": draw(st.one_of(st.none(), st.integers(1, 4))),  # None: one sample, unbatched
        "bias": draw(st.booleans()),
        "nonlinearity": draw(st.sampled_from(["tanh", "relu"])),
        "state": draw(st.booleans()),
        "dtype": draw(st.sampled_from(DTYPES)),
        "seed": draw(st.integers(0, 2**31 - 1)),
    }


@given(steps())
def test_one_step_equals_torch(case):
    rng = np.random.default_rng(case["seed"])
    dtype, batch = case["dtype"], case["batch"]
    cell = RNNCell(
        case["input_size"], case["hidden_size"], case["bias"], case["nonlinearity"],
        dtype=dtype, rng=rng,
    )  # fmt: skip
    lead = () if batch is None else (batch,)
    x = rng.standard_normal((*lead, case["input_size"])).astype(dtype)
    h = rng.standard_normal((*lead, case["hidden_size"])).astype(dtype)
    g = rng.standard_normal((*lead, case["hidden_size"])).astype(dtype)
    scale = _scale(x, h, cell.weight_ih.data, cell.weight_hh.data)
    inputs = (x, h) if case["state"] else (x,)
    check_module_against_torch(cell, inputs, (g,), scale=_scale(g) * scale)


class Unrolled(Module):
    """An RNN by hand: the same cell over T steps, then a Linear on the last state."""

    def __init__(self, dtype, nonlinearity="tanh"):
        super().__init__()
        self.cell = RNNCell(3, 4, nonlinearity=nonlinearity, dtype=dtype, rng=0)
        self.head = Linear(4, 1, dtype=dtype, rng=1)

    def forward(self, xs):  # xs (T, N, 3)
        self.steps = len(xs)
        h = self.cell(xs[0])
        for x in xs[1:]:
            h = self.cell(x, h)
        return self.head(h)

    def backward(self, grad_output):
        dh = self.head.backward(grad_output)
        dxs = []
        for _ in range(self.steps - 1):  # backpropagation through time: last step first
            dx, dh = self.cell.backward(dh)
            dxs.append(dx)
        dxs.append(self.cell.backward(dh))  # the first step had no state: dJ/dx alone
        return np.stack(dxs[::-1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_seven_steps_backpropagated_through_time_equal_torch(dtype, nonlinearity):
    model = Unrolled(dtype, nonlinearity)
    cell, head = to_torch(model.cell), to_torch(model.head)
    rng = np.random.default_rng(5)
    xs = rng.standard_normal((7, 2, 3)).astype(dtype)
    y = rng.standard_normal((2, 1)).astype(dtype)
    loss = MSELoss()
    loss(model(xs), y)
    dxs = model.backward(loss.backward())
    txs = torch.tensor(xs, requires_grad=True)
    h = cell(txs[0])
    for t in range(1, 7):
        h = cell(txs[t], h)
    torch.nn.functional.mse_loss(head(h), torch.tensor(y)).backward()
    assert_close("dJ/dxs", dxs, txs.grad.numpy(), dtype)
    for name, p in model.cell.named_parameters():  # each the sum over the 7 steps
        assert_close(f"cell.{name}.grad", p.grad, getattr(cell, name).grad.numpy(), dtype)
    assert not model.cell._pending_stamps  # every step's forward consumed


def test_an_unrolled_rnn_passes_gradcheck_and_its_trace_has_every_step():
    model, xs = Unrolled(np.float64), np.random.default_rng(6).standard_normal((4, 2, 3))
    y = np.zeros((2, 1))
    assert handprop.gradcheck(model, MSELoss(), xs, y).passed
    t = handprop.trace(model, MSELoss(), xs, y)
    forward = [c.writes for c in t.calls if c.kind == "forward" and c.path == "cell"]
    assert forward == ["cell", "cell (use 2)", "cell (use 3)", "cell (use 4)"]
    backward = [c for c in t.calls if c.kind == "backward" and c.path == "cell"]
    assert len(backward) == 4 and backward[0].reads == ["dJ/dcell (use 4)"]


def test_save_load_torch_both_ways_and_bad_input(tmp_path):
    cell = RNNCell(3, 2, bias=False, nonlinearity="relu", rng=2)
    handprop.save(handprop.Sequential(cell), tmp_path / "m.npz")
    back = handprop.load(tmp_path / "m.npz")[0]
    assert repr(back) == "RNNCell(3, 2, bias=False, nonlinearity=relu)"
    np.testing.assert_array_equal(back.weight_hh.data, cell.weight_hh.data)
    again = from_torch(to_torch(cell))
    assert again.config() == cell.config()
    with pytest.raises(
        ValueError, match=r"expected input of shape \(N, 3\) or \(3,\), got \(2, 4\)"
    ):
        cell(np.ones((2, 4)))
    with pytest.raises(
        ValueError, match=r"expected hx of shape \(2, 2\) for this input, got \(3, 2\)"
    ):
        cell(np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="Unknown nonlinearity 'gelu'"):
        RNNCell(3, 2, nonlinearity="gelu")
    with pytest.raises(RuntimeError, match="backward"):  # nothing pending: those failed
        cell.backward(np.ones((2, 2)))
