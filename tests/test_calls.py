"""The trace of a model with blocks of a learner's own: every call a step, every value equal to
torch's (autograd's retained gradients), and the sum shown where two gradients meet."""

from __future__ import annotations

import numpy as np
import pytest

import handprop
from handprop import Module, Sequential
from handprop.explain.calls import CallTrace, frames
from handprop.layers import Linear, ReLU, Tanh
from handprop.losses import MSELoss

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])


class Residual(Module):
    """y = x + f(x)."""

    def __init__(self, width, dtype):
        super().__init__()
        self.f = Sequential(
            Linear(width, width, rng=0, dtype=dtype),
            ReLU(),
            Linear(width, width, rng=1, dtype=dtype),
        )

    def forward(self, x):
        return x + self.f(x)

    def backward(self, grad_output):
        return grad_output + self.f.backward(grad_output)


class Twice(Module):
    """y = tanh(g(tanh(g(x)))): one Linear used twice."""

    def __init__(self, width, dtype):
        super().__init__()
        self.g, self.act = Linear(width, width, rng=4, dtype=dtype), Tanh()

    def forward(self, x):
        return self.act(self.g(self.act(self.g(x))))

    def backward(self, grad_output):
        inner = self.g.backward(self.act.backward(grad_output))
        return self.g.backward(self.act.backward(inner))


def model(dtype):
    return Sequential(
        Linear(2, 3, rng=2, dtype=dtype),
        Residual(3, dtype),
        Twice(3, dtype),
        Linear(3, 1, rng=3, dtype=dtype),
    )


X = np.array([[0.3, -0.2], [1.0, 0.5], [-0.7, 0.1]])
Y = np.array([[0.5], [-1.0], [0.25]])


def torch_twin(net, dtype):
    """The same computation in torch, by hand (a block of one's own has no torch class), with
    every intermediate value's gradient retained."""
    torch = pytest.importorskip("torch")
    tdt = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[
        np.dtype(dtype)
    ]
    params = {
        k: torch.tensor(v, dtype=tdt, requires_grad=True) for k, v in net.state_dict().items()
    }

    def lin(name, h):
        return h @ params[f"{name}.weight"].T + params[f"{name}.bias"]

    x = torch.tensor(X, dtype=tdt, requires_grad=True)
    out = {"0": lin("0", x)}
    f = lin("1.f.2", torch.relu(lin("1.f.0", out["0"])))
    out["1"] = out["0"] + f
    out["2.g"] = lin("2.g", out["1"])
    out["2.act"] = torch.tanh(out["2.g"])
    out["2.g (use 2)"] = lin("2.g", out["2.act"])
    out["2.act (use 2)"] = torch.tanh(out["2.g (use 2)"])  # the block's output: its last child's
    out["3"] = lin("3", out["2.act (use 2)"])
    for value in out.values():
        value.retain_grad()
    loss = torch.nn.functional.mse_loss(out["3"], torch.tensor(Y, dtype=tdt))
    loss.backward()
    return x, out, params, loss


@DTYPES
def test_a_model_with_blocks_is_traced_call_by_call_and_every_value_is_torchs(dtype):
    net = model(dtype)
    before = net.state_dict()
    t = handprop.trace(net, MSELoss(), X, Y)
    assert isinstance(t, CallTrace)
    x, out, params, loss = torch_twin(net, dtype)
    tol = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}[np.dtype(dtype)]
    np.testing.assert_allclose(t["J"], loss.item(), rtol=tol)
    for name, value in out.items():
        np.testing.assert_allclose(t[name], value.detach().numpy(), rtol=tol, atol=tol)
        np.testing.assert_allclose(t[f"dJ/d{name}"], value.grad.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(t["dJ/dX"], x.grad.numpy(), rtol=tol, atol=tol)
    for name, p in params.items():  # 2.g.weight: the sum over its two uses
        np.testing.assert_allclose(t[f"dJ/d{name}"], p.grad.numpy(), rtol=tol, atol=tol)
    for name, p in net.named_parameters():  # the model itself is untouched
        assert p.grad is None and np.array_equal(p.data, before[name])


def test_where_two_gradients_meet_the_trace_shows_their_sum():
    t = handprop.trace(model(np.float64), MSELoss(), X, Y)
    np.testing.assert_allclose(t["dJ/d0"], t["dJ/d0 via 1.f"] + t["dJ/d0 via the rest"])
    np.testing.assert_array_equal(t["dJ/d0 via the rest"], t["dJ/d1"])  # the skip path
    meeting = [f for f in frames(t) if "where gradients meet" in f["title"]]
    assert [f["title"] for f in meeting] == ["Backward: 1 (Residual), where gradients meet"]
    assert meeting[0]["formula"].startswith("dJ/d0 = [1.f] + [the rest]")
    assert meeting[0]["writes"] == ["dJ/d0"] and meeting[0]["reads"] == ["dJ/d1"]
    shown = "\n".join(meeting[0]["values"])
    assert "dJ/d0 via 1.f " in shown and "dJ/d0 via the rest " in shown
    # a module used twice is a chain, not a fork: its second backward gets the first's result
    assert not [f for f in frames(t) if f["title"].startswith("Backward: 2 (Twice), where")]


def test_every_call_is_a_step_in_the_order_it_ran():
    t = handprop.trace(model(np.float64), MSELoss(), X, Y)
    titles = [f["title"] for f in frames(t)]
    forward = [s.split(": ")[1].split(" ")[0] for s in titles if s.startswith("Forward")]
    assert forward == ["0", "1.f.0", "1.f.1", "1.f.2", "1.f", "1", "2.g", "2.act", "2.g",
                       "2.act", "2", "3", "the"]  # fmt: skip
    backward = [s for s in titles if s.startswith("Backward")]
    assert backward[0] == "Backward: the loss" and backward[-1].startswith("Backward: 0 ")
    assert len(backward) == len(forward)
    stats = t.stats()
    for name in ("1.f.0", "1.f.1", "2.g (use 2)", "3"):
        assert f"\n{name} " in stats
    page = t.to_html()
    assert page.count("<li data-name=") == len(set(t.names()) & set(_listed(page)))


def _listed(page):
    import re

    return re.findall(r'<li data-name="([^"]*)"', page)
