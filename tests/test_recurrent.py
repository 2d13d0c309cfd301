"""LSTMCell, GRUCell, RNN, LSTM and GRU against torch: outputs, final states, dJ/dx, the initial
states' gradients and every parameter gradient, in both dtypes, over random sizes, layers,
directions, layouts and initial states; inter-layer dropout with the same masks given to torch;
the cells in a Python loop equal to the full layer; gradcheck; save/load, torch both ways; bad
inputs refused with nothing changed."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from closeness import assert_close
from hypothesis import given
from hypothesis import strategies as st
from parity import check_module_against_torch

import handprop
from handprop import check_module
from handprop.interop import from_torch, to_torch
from handprop.layers import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

torch = pytest.importorskip("torch")
DTYPES = [np.float32, np.float64]
LAYERS = {"RNN": RNN, "LSTM": LSTM, "GRU": GRU}


def _states(value, kind) -> tuple:
    """An LSTM's (h, c), or the one state of the others, as a tuple."""
    return tuple(value) if kind == "LSTM" else (value,)


def _pack(states: tuple, kind):
    return tuple(states) if kind == "LSTM" else states[0]


def _compare_parameters(mine, theirs, dtype, scale) -> None:
    pairs = zip(mine.named_parameters(), theirs.named_parameters(), strict=True)
    for (name, p), (their_name, q) in pairs:
        assert name == their_name
        assert_close(f"{name}.grad", p.grad, q.grad.numpy(), dtype, scale=scale)


@st.composite
def layers(draw):
    kind = draw(st.sampled_from(sorted(LAYERS)))
    return {
        "kind": kind,
        "input_size": draw(st.integers(1, 4)),
        "hidden_size": draw(st.integers(1, 4)),
        "num_layers": draw(st.integers(1, 3)),
        "bias": draw(st.booleans()),
        "batch_first": draw(st.booleans()),
        "bidirectional": draw(st.booleans()),
        "nonlinearity": draw(st.sampled_from(["tanh", "relu"])) if kind == "RNN" else None,
        "length": draw(st.integers(1, 6)),
        "batch": draw(st.one_of(st.none(), st.integers(1, 3))),  # None: one sequence, unbatched
        "state": draw(st.booleans()),
        "grad_state": draw(st.booleans()),  # False: the final states do not reach the loss
        "dtype": draw(st.sampled_from(DTYPES)),
        "seed": draw(st.integers(0, 2**31 - 1)),
    }


def _build(case):
    options = {k: case[k] for k in ("num_layers", "bias", "batch_first", "bidirectional")}
    if case["nonlinearity"]:
        options["nonlinearity"] = case["nonlinearity"]
    cls = LAYERS[case["kind"]]
    return cls(case["input_size"], case["hidden_size"], **options, dtype=case["dtype"],
               rng=case["seed"])  # fmt: skip


def _shapes(case, layer):
    d = 2 if case["bidirectional"] else 1
    length, batch, h = case["length"], case["batch"], case["hidden_size"]
    if batch is None:
        return (length, case["input_size"]), (layer.num_layers * d, h)
    lead = (batch, length) if case["batch_first"] else (length, batch)
    return (*lead, case["input_size"]), (layer.num_layers * d, batch, h)


@given(layers())
def test_full_layer_equals_torch(case):
    """Outputs, final states, dJ/dx, dJ/dh_0 (and dJ/dc_0) and every parameter gradient."""
    dtype, kind = case["dtype"], case["kind"]
    layer = _build(case)
    rng = np.random.default_rng(case["seed"])
    x_shape, state_shape = _shapes(case, layer)
    count = 2 if kind == "LSTM" else 1
    x = rng.standard_normal(x_shape).astype(dtype)
    h0 = tuple(rng.standard_normal(state_shape).astype(dtype) for _ in range(count))
    output_shape = (*x_shape[:-1], layer.hidden_size * (2 if case["bidirectional"] else 1))
    g = rng.standard_normal(output_shape).astype(dtype)
    g_state = tuple(rng.standard_normal(state_shape).astype(dtype) for _ in range(count))
    if not case["grad_state"]:  # None: the final states do not reach the cost
        g_state = (None,) * count
    inputs = (x, _pack(h0, kind)) if case["state"] else (x,)
    scale = max(1.0, case["length"] * case["num_layers"])  # errors add up over steps and layers
    check_module_against_torch(
        layer, inputs, (g, _pack(g_state, kind)), scale=scale,
        parameter_scale=scale * max(1, case["batch"] or 1),
    )  # fmt: skip


@st.composite
def cells(draw):
    return {
        "cls": draw(st.sampled_from([LSTMCell, GRUCell])),
        "input_size": draw(st.integers(1, 5)),
        "hidden_size": draw(st.integers(1, 5)),
        "batch": draw(st.one_of(st.none(), st.integers(1, 4))),
        "bias": draw(st.booleans()),
        "state": draw(st.booleans()),
        "dtype": draw(st.sampled_from(DTYPES)),
        "seed": draw(st.integers(0, 2**31 - 1)),
    }


@given(cells())
def test_one_step_of_lstm_and_gru_cells_equals_torch(case):
    rng = np.random.default_rng(case["seed"])
    dtype, batch, lstm = case["dtype"], case["batch"], case["cls"] is LSTMCell
    cell = case["cls"](case["input_size"], case["hidden_size"], case["bias"], dtype=dtype, rng=rng)
    lead = () if batch is None else (batch,)
    x = rng.standard_normal((*lead, case["input_size"])).astype(dtype)
    states = tuple(
        rng.standard_normal((*lead, case["hidden_size"])).astype(dtype) for _ in range(1 + lstm)
    )
    grads = tuple(rng.standard_normal(s.shape).astype(dtype) for s in states)  # dh' (and dc')
    state = states if lstm else states[0]
    inputs = (x, state) if case["state"] else (x,)
    check_module_against_torch(cell, inputs, grads, parameter_scale=max(1, batch or 1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_the_cell_in_a_python_loop_equals_the_full_layer(kind, dtype):
    """The same weights, the cell forward T times and backward T times last step first (the
    gradients summed by the contract), against the full layer: every value and gradient."""
    layer = LAYERS[kind](3, 4, dtype=dtype, rng=3)
    cell = {"RNN": RNNCell, "LSTM": LSTMCell, "GRU": GRUCell}[kind](3, 4, dtype=dtype, rng=0)
    for name, p in cell.named_parameters():
        p.data[...] = getattr(layer, name + "_l0").data
    rng = np.random.default_rng(4)
    xs = rng.standard_normal((6, 2, 3)).astype(dtype)
    g = rng.standard_normal((6, 2, 4)).astype(dtype)
    output, _ = layer(xs)
    dx = layer.backward(g, None)
    state, hs = None, []
    for x in xs:
        state = cell(x) if state is None else cell(x, state)
        hs.append(_states(state, kind)[0])
    assert_close("output", np.stack(hs), output, dtype)
    d_state, dxs = None, []
    for t in range(5, -1, -1):  # backpropagation through time: last step first
        d_h = g[t] if d_state is None else _states(d_state, kind)[0] + g[t]
        d_rest = _states(d_state, kind)[1:] if d_state is not None else (None,) * (kind == "LSTM")
        result = cell.backward(d_h, *d_rest)
        dx_t, d_state = result if t else (result, None)
        dxs.append(dx_t)
    assert_close("dJ/dx", np.stack(dxs[::-1]), dx, dtype)
    for name, p in cell.named_parameters():
        assert_close(f"{name}.grad", p.grad, getattr(layer, name + "_l0").grad, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_dropout_between_layers_equals_torch_given_the_same_masks(kind, dtype):
    """torch draws its masks inside its C++ kernel; the twin here is torch's single layers
    stacked with handprop's masks applied between them, torch's dropout formula."""
    layer = LAYERS[kind](3, 4, num_layers=3, dropout=0.4, bidirectional=True, dtype=dtype, rng=7)
    rng = np.random.default_rng(8)
    x = rng.standard_normal((5, 2, 3)).astype(dtype)
    output, _ = layer(x)
    assert len(layer.mask) == 2 and layer.mask[0].shape == (5, 2, 8)
    assert 0 < layer.mask[0].mean() < 1
    g = rng.standard_normal(output.shape).astype(dtype)
    dx = layer.backward(g, None)
    singles = []
    for k in range(3):
        single = getattr(torch.nn, kind)(
            8 if k else 3,
            4,
            bidirectional=True,
            dtype=dict(float32=torch.float32, float64=torch.float64)[np.dtype(dtype).name],
        )
        with torch.no_grad():
            for name, p in single.named_parameters():
                p.copy_(torch.tensor(getattr(layer, name.replace("_l0", f"_l{k}")).data))
        singles.append(single)
    tx = torch.tensor(x, requires_grad=True)
    y = tx
    for k, single in enumerate(singles):
        y = single(y)[0]
        if k < 2:
            y = y * torch.tensor(layer.mask[k]) / (1 - 0.4)
    assert_close("output", output, y.detach().numpy(), dtype)
    y.backward(torch.tensor(g))
    assert_close("dJ/dx", dx, tx.grad.numpy(), dtype)
    for k, single in enumerate(singles):
        for name, q in single.named_parameters():
            mine = getattr(layer, name.replace("_l0", f"_l{k}"))
            assert_close(name.replace("_l0", f"_l{k}"), mine.grad, q.grad.numpy(), dtype)
    layer.eval()
    assert layer(x)[0] is not None and layer.mask is None  # evaluation: no dropout


def test_full_layers_pass_check_module_against_central_differences():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((4, 2, 3))
    for kind, cls in LAYERS.items():
        layer = cls(3, 2, num_layers=2, bidirectional=True, dtype=np.float64, rng=1)
        h0 = tuple(rng.standard_normal((4, 2, 2)) for _ in range(1 + (kind == "LSTM")))
        report = check_module(layer, (x, _pack(h0, kind)), rng=0)
        assert report.passed, report
    for cls in (LSTMCell, GRUCell):
        report = check_module(cls(3, 2, dtype=np.float64, rng=1), x[0], rng=0)
        assert report.passed, report


def test_dropout_layers_pass_gradcheck_with_their_masks_fixed():
    """gradcheck fixes a training layer's masks, as it does Dropout's, so the finite
    differences see the function whose gradient the backward computed."""

    class Last(handprop.Module):
        def __init__(self):
            super().__init__()
            self.lstm = LSTM(3, 2, num_layers=2, dropout=0.5, dtype=np.float64, rng=2)

        def forward(self, x):
            return self.lstm(x)[0][-1]

        def backward(self, grad_output):
            d_out = np.zeros((4, 2, 2))
            d_out[-1] = grad_output
            return self.lstm.backward(d_out, None)

    x, y = np.random.default_rng(10).standard_normal((4, 2, 3)), np.zeros((2, 2))
    assert handprop.gradcheck(Last(), handprop.losses.MSELoss(), x, y).passed


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_save_load_and_torch_both_ways(kind, tmp_path):
    options = {"nonlinearity": "relu"} if kind == "RNN" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch's own warning on dropout of one layer aside)
        layer = LAYERS[kind](3, 2, num_layers=2, bias=False, batch_first=True, dropout=0.25,
                             bidirectional=True, **options, rng=2)  # fmt: skip
    handprop.save(handprop.Sequential(layer), tmp_path / "m.npz")
    back = handprop.load(tmp_path / "m.npz")[0]
    assert repr(back) == repr(layer)
    assert back.config() == layer.config()
    for (name, p), (_, q) in zip(layer.named_parameters(), back.named_parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    twin = to_torch(layer)
    assert (twin.num_layers, twin.batch_first, twin.dropout, twin.bidirectional) == (
        2,
        True,
        0.25,
        True,
    )
    again = from_torch(twin)
    assert again.config() == layer.config()
    np.testing.assert_array_equal(again.weight_hh_l1_reverse.data, layer.weight_hh_l1_reverse.data)
    cell = {"RNN": RNNCell, "LSTM": LSTMCell, "GRU": GRUCell}[kind](3, 2, rng=0)
    assert from_torch(to_torch(cell)).config() == cell.config()


def test_from_torch_refuses_a_projected_lstm():
    with pytest.raises(TypeError, match="proj_size"):
        from_torch(torch.nn.LSTM(3, 4, proj_size=2))


def test_bad_inputs_are_refused_and_change_nothing():
    lstm = LSTM(3, 2, num_layers=2, rng=0)
    with pytest.raises(ValueError, match="Expected input to be 2D or 3D, got 4D"):
        lstm(np.ones((4, 1, 3, 1)))
    with pytest.raises(ValueError, match=r"expected input of shape \(L, N, 3\).*got \(4, 1, 5\)"):
        lstm(np.ones((4, 1, 5)))
    with pytest.raises(ValueError, match=r"with L > 0, got \(0, 1, 3\)"):
        lstm(np.ones((0, 1, 3)))
    with pytest.raises(ValueError, match=r"expected c of shape \(2, 1, 2\) for this input"):
        lstm(np.ones((4, 1, 3)), (np.zeros((2, 1, 2)), np.zeros((2, 3, 2))))
    with pytest.raises(TypeError, match=r"hx must be a tuple \(h, c\)"):
        lstm(np.ones((4, 1, 3)), np.zeros((2, 1, 2)))
    with pytest.raises(ValueError, match=r"expected hx of shape \(1, 2\) for this input"):
        GRU(3, 2)(np.ones((4, 3)), np.zeros((1, 1, 2)))
    with pytest.raises(RuntimeError, match="failed"):  # a forward that failed: no backward
        lstm.backward(np.ones((4, 1, 2)), (None, None))
    x = np.random.default_rng(0).standard_normal((4, 1, 3))
    lstm(x)
    with pytest.raises(ValueError, match=r"expected grad_output of shape \(4, 1, 2\)"):
        lstm.backward(np.ones((4, 2, 2)), (None, None))
    with pytest.raises(ValueError, match=r"expected grad_output of shape \(2, 1, 2\)"):
        lstm.backward(np.ones((4, 1, 2)), (np.ones((1, 1, 2)), None))
    assert all(p.grad is None for p in lstm.parameters())  # nothing added
    dx = lstm.backward(np.ones((4, 1, 2)), (None, None))  # the pending forward, untouched
    fresh = LSTM(3, 2, num_layers=2, rng=0)
    fresh(x)
    np.testing.assert_array_equal(dx, fresh.backward(np.ones((4, 1, 2)), (None, None)))
    with pytest.raises(ValueError, match="dropout should be a number in range"):
        LSTM(3, 2, dropout=1.5)
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        GRU(3, 2, dropout=0.5)
    with pytest.raises(ValueError, match="Unknown nonlinearity 'gelu'"):
        RNN(3, 2, nonlinearity="gelu")
    with pytest.raises(TypeError, match="num_layers must be a positive int"):
        RNN(3, 2, num_layers=1.5)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_state_grads_and_grad_norms_are_torchs_gradient_at_every_time_step(kind):
    """``state_grads`` holds dJ/dh_t (and an LSTM's dJ/dc_t) at every step of every layer and
    direction, and ``grad_norms`` their sizes: against torch's own gradients of each step's
    state, through a loop of torch's cells with the same weights."""
    from handprop.explain.stats import time_steps

    layer = LAYERS[kind](3, 4, bidirectional=True, dtype=np.float64, rng=11)
    x = np.random.default_rng(12).standard_normal((6, 2, 3))
    g = np.zeros((6, 2, 8))
    g[-1, :, :4] = 1.0  # the forward direction's last step, and
    g[0, :, 4:] = 1.0  # the reverse direction's (its last step is t = 0)
    layer(x)
    layer.backward(g, (None, None) if kind == "LSTM" else None)
    cell_class = {"RNN": torch.nn.RNNCell, "LSTM": torch.nn.LSTMCell, "GRU": torch.nn.GRUCell}
    for k, suffix in enumerate(("_l0", "_l0_reverse")):
        cell = cell_class[kind](3, 4, dtype=torch.float64)
        with torch.no_grad():
            for name, p in cell.named_parameters():
                p.copy_(torch.tensor(getattr(layer, name + suffix).data))
        order = range(6) if k == 0 else range(5, -1, -1)
        state, kept = None, {}
        for t in order:
            state = cell(torch.tensor(x[t]), state)
            for s in state if kind == "LSTM" else (state,):
                s.retain_grad()
            kept[t] = state if kind == "LSTM" else (state,)
        last = kept[order[-1]][0]
        (last * torch.tensor(g[order[-1], :, 4 * k : 4 * k + 4])).sum().backward()
        for i, name in enumerate(("dJ/dh_t", "dJ/dc_t")[: len(layer.state_grads)]):
            expected = np.stack([kept[t][i].grad.numpy() for t in range(6)])
            assert_close(name, layer.state_grads[i][k], expected, np.float64)
        norms = [float(kept[t][0].grad.norm()) for t in range(6)]
        np.testing.assert_allclose(layer.grad_norms[k], norms, rtol=1e-12)
    text = time_steps(layer)
    assert "layer 0 rev" in text and len(text.splitlines()) == 4


class Classifier(handprop.Module):
    """An LSTM over a sequence, a Linear on its last output: sequence classification."""

    def __init__(self, dtype=np.float64):
        super().__init__()
        self.lstm = LSTM(3, 4, num_layers=2, dtype=dtype, rng=0)
        self.head = handprop.layers.Linear(4, 2, dtype=dtype, rng=1)

    def forward(self, x):  # x (T, N, 3)
        self.length = len(x)
        output, _ = self.lstm(x)
        return self.head(output[-1])

    def backward(self, grad_output):
        d_output = np.zeros((self.length, *grad_output.shape[:1], 4), grad_output.dtype)
        d_output[-1] = self.head.backward(grad_output)
        return self.lstm.backward(d_output, (None, None))


def test_a_model_with_an_lstm_traces_passes_gradcheck_and_its_stats_show_each_time_step():
    model = Classifier()
    x = np.random.default_rng(13).standard_normal((5, 3, 3))
    y = np.array([0, 1, 1])
    loss = handprop.losses.CrossEntropyLoss()
    assert handprop.gradcheck(model, loss, x, y).passed
    t = handprop.trace(model, loss, x, y)
    assert [c.path for c in t.calls if c.kind == "forward"][:2] == ["lstm", "head"]
    text = t.stats()
    assert "|dJ/dh_t| per time step of LSTM(3, 4, num_layers=2)" in text
    assert "layer 1" in text and "first/last" in text
    steps = [f for f in t.frames() if f["title"].startswith("Backward through time")]
    assert len(steps) == 2 * 5  # 2 layers, 5 steps each, in the order the loop ran:
    assert [f["title"][-5:] for f in steps[:2]] == ["t = 5", "t = 4"]  # the last layer first
    assert "layer 1" in steps[0]["title"] and "layer 0" in steps[5]["title"]
    assert "the final state's gradient" in steps[0]["formula"]
    assert "what step 5 sent back" in steps[1]["formula"]
    h_grad = t["dJ/dlstm.h[layer 0, t=2]"]  # the trace's copy's state_grads, by name
    c_grad = t["dJ/dlstm.c[layer 0, t=2]"]
    copy = Classifier()
    loss(copy(x), y)
    copy.backward(loss.backward())
    np.testing.assert_array_equal(h_grad, copy.lstm.state_grads[0][0, 1])
    np.testing.assert_array_equal(c_grad, copy.lstm.state_grads[1][0, 1])
    assert "Backward through time: lstm" in t.to_html()


def test_input_grad_false_gives_the_same_parameter_gradients_and_no_input_gradient():
    x = np.random.default_rng(14).standard_normal((5, 2, 3))
    grads = []
    for input_grad in (True, False):
        layer = GRU(3, 4, num_layers=2, bidirectional=True, dtype=np.float64, rng=5)
        output, _ = layer(x, np.zeros((4, 2, 4)))
        result = layer.backward(np.ones_like(output), None, input_grad=input_grad)
        assert (result is None) == (not input_grad)
        grads.append({name: p.grad for name, p in layer.named_parameters()})
    for name in grads[0]:
        np.testing.assert_array_equal(grads[0][name], grads[1][name], err_msg=name)


class _DropsTheCellPath(LSTMCell):
    """An LSTM cell whose backward forgets the path back along c: dJ/dc_(t-1) = 0."""

    def _step_backward(self, d_state, cache, weight_hh):
        dz, dgh, (dh, dc) = super()._step_backward(d_state, cache, weight_hh)
        return dz, dgh, (dh, np.zeros_like(dc))


def test_the_parity_helper_fails_a_backward_that_drops_a_path():
    rng = np.random.default_rng(15)
    x, h, c = (rng.standard_normal((2, n)) for n in (3, 4, 4))
    grads = (rng.standard_normal((2, 4)), rng.standard_normal((2, 4)))
    cell = _DropsTheCellPath(3, 4, dtype=np.float64, rng=0)
    with pytest.raises(AssertionError, match=r"dJ/d\(input 2\)"):  # x, h, then c
        check_module_against_torch(cell, (x, (h, c)), grads)
    check_module_against_torch(LSTMCell(3, 4, dtype=np.float64, rng=0), (x, (h, c)), grads)


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_torchs_initialisation(kind):
    """Every weight and bias uniform in +-1/sqrt(hidden_size), as torch's RNNBase."""
    layer = LAYERS[kind](8, 16, num_layers=2, bidirectional=True, rng=0)
    values = np.concatenate([p.data.ravel() for p in layer.parameters()])  # thousands
    assert np.abs(values).max() <= 1 / 4 and np.abs(values).max() > 0.99 / 4  # 1/sqrt(16)
    assert abs(values.mean()) < 0.01 and abs(values.std() - 0.25 / np.sqrt(3)) < 0.01
