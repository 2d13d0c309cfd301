"""trace(): every named value of the worked example and of random networks against torch's
retain_grad() values, both dtypes; the derivation, the graph and the walkthrough."""

import ast
import copy
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from closeness import assert_close
from hypothesis import given
from hypothesis import strategies as st
from strategies import generic_problems

import handprop
from handprop import Sequential, trace
from handprop import worked_example as we
from handprop.interop import to_torch_loss
from handprop.layers import (
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Flatten,
    Linear,
    MaxPool2d,
    ReLU,
    Sigmoid,
    Tanh,
)
from handprop.losses import CrossEntropyLoss, MSELoss
from handprop.naming import output_names

try:  # the tests marked torch need it (and skip without it); the others run anyway
    import torch
    from parity import (
        NetworkRun,
        _parameter_scales,
        _torch_target,
        _upstream_scales,
        to_torch_model,
    )
except ImportError:
    torch = None

ROOT = Path(__file__).resolve().parents[1]
DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])


def torch_values(model, loss, X, y):
    """torch's values under the trace's names: Z/N/A via retain_grad, dJ of the configured
    cost and dL of sum(L) (torch with reduction='none', backward of ones)."""
    dtype = next(model.parameters()).dtype
    tdt = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[dtype]
    names = output_names(list(model))
    values = {}
    for of, reduction in (("J", loss.reduction), ("L", "none")):
        twin = to_torch_model(model)
        t_loss = copy.deepcopy(loss)
        t_loss.reduction = reduction
        h = torch.tensor(np.asarray(X), dtype=tdt, requires_grad=True)
        x, kept = h, {}
        for name, t_module in zip(names, twin, strict=True):
            h = t_module(h)
            h.retain_grad()
            kept[name] = h
            if name[0] in "ZN":  # A{l} is the last of Z{l}, N{l}, A{l} that the layer has
                kept["A" + name[1:]] = h
        cost = to_torch_loss(t_loss, dtype)(h, _torch_target(y, tdt))
        cost.backward(torch.ones_like(cost) if cost.ndim else None)
        for name, tensor in kept.items():
            values[f"d{of}/d{name}"] = tensor.grad.numpy()
            values[name] = tensor.detach().numpy()
        values[f"d{of}/dX"] = x.grad.numpy()
        values["L" if of == "L" else "J"] = cost.detach().numpy()
        if of == "J":
            for name, t_module in zip(names, twin, strict=True):
                if name[0] in "ZN":
                    w, b = ("W", "b") if name[0] == "Z" else ("gamma", "beta")
                    for prefix, param in ((w, t_module.weight), (b, t_module.bias)):
                        if param is not None:
                            values[f"dJ/d{prefix}{name[1:]}"] = param.grad.numpy()
    values.pop("dL/dX")
    return values


def tolerance_scales(model, loss, X, y) -> dict:
    """The parity helper's scales (the size of the terms a value sums, where a normalisation
    cancels), under the trace's names; from a run on a copy (Dropout masks stay unused)."""
    model = copy.deepcopy(model)
    run, h = NetworkRun(), X
    for module in model:
        h = module(h)
        run.outputs.append(h)
    cost = loss(h, y)
    grad = loss.backward(1.0 if np.ndim(cost) == 0 else np.ones_like(cost))
    for module in reversed(list(model)):
        run.grad_outputs.insert(0, grad)
        grad = module.backward(grad)
    upstream = _upstream_scales(model, X, run)
    params = _parameter_scales(model, X, run, upstream)
    names = output_names(list(model))
    scales = {"dJ/dX": upstream[0]}
    for i, name in enumerate(names):
        scales[f"dJ/d{name}"] = upstream[i + 1]
        if name[0] == "Z":
            scales[f"dJ/dW{name[1:]}"] = params.get(f"{i}.weight")
            scales[f"dJ/db{name[1:]}"] = params.get(f"{i}.bias")
    for i, name in enumerate(names):  # A{l} is the last output of the layer
        if name[0] in "ZN" and f"dJ/dA{name[1:]}" not in scales:
            scales[f"dJ/dA{name[1:]}"] = upstream[i + 1]
    return scales


def check_trace(model, loss, X, y):
    dtype = next(model.parameters()).dtype
    t = trace(model, loss, X, y)
    expected = torch_values(model, loss, X, y)
    scales = tolerance_scales(model, loss, X, y)
    last = t[f"A{t.layers[-1].number}"]
    per_sample = float(loss._mean_divisor(last, t["Y"])) if loss.reduction == "mean" else 1.0
    for name, value in expected.items():
        scale = scales.get(name.replace("dL/", "dJ/"))
        if name.startswith("dL/") and scale is not None:  # dL = divisor * dJ for the mean
            scale *= max(1.0, per_sample)
        assert_close(f"trace[{name!r}]", t[name], value, dtype, scale)
    return t, expected


@pytest.mark.torch
@DTYPES
def test_worked_example_trace_matches_torch(dtype):
    X, y = we.data(dtype)
    t, expected = check_trace(we.model(dtype), we.loss_fn(), X, y)
    assert {"X", "Y", "W1", "b3", "L", "J", "dL/dZ2", "dJ/dX"} <= set(t.names())
    assert set(expected) <= set(t.names())
    np.testing.assert_allclose(
        t["dL/dA3"], 2 * t["dJ/dA3"], rtol=1e-6
    )  # the source's per-sample values
    np.testing.assert_allclose(t["dL/dA3"].ravel(), [1.1003, -1.3430], atol=5e-5)


@pytest.mark.torch
@DTYPES
@given(data=st.data())
def test_random_network_traces_match_torch(dtype, data):
    """Every named value of random networks, end to end against torch. Without normalisations:
    compared end to end, a normalised small batch is ill-conditioned (float32 rounding noise,
    amplified by 1/std, differs from run to run in torch), and this test compares every value
    with the plain tolerance. A normalisation's trace values are checked equal to handprop's own
    backward (test_normalisation.py), and that against torch in test_parity_random.py."""
    model, loss, X, y = data.draw(generic_problems(dtype, norms=False))
    check_trace(model, loss, X, y)


def _small_cnn(dtype):
    return Sequential(
        Conv2d(1, 2, 3, padding=1, dtype=dtype, rng=0),
        BatchNorm2d(2, dtype=dtype),
        ReLU(),
        MaxPool2d(2),
        Conv2d(2, 3, 2, dtype=dtype, rng=1),
        Tanh(),
        AvgPool2d(1),
        Flatten(),
        Linear(3, 3, dtype=dtype, rng=2),
    )


@pytest.mark.torch
@DTYPES
def test_cnn_traces_match_torch(dtype):
    """Every named value of a small CNN (Z, N, A, P, F and every gradient) against torch's
    retain_grad() values."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 1, 4, 4)).astype(dtype)
    t, expected = check_trace(_small_cnn(dtype), CrossEntropyLoss(), X, np.array([0, 2, 1]))
    assert {"Z1", "N1", "A1", "P1", "Z2", "A2", "P2", "F2", "dJ/dP1", "dJ/dF2"} <= set(expected)
    assert t["W1"].shape == (2, 1, 3, 3) and t["dJ/dW2"].shape == (3, 2, 2, 2)


def test_cnn_derivation_and_graph_name_every_step_and_summarise_large_tensors():
    from handprop.explain.derivation import LATEX_LIMIT

    rng = np.random.default_rng(0)
    X = rng.standard_normal((8, 1, 4, 4))  # 128 values: summarised
    t = trace(_small_cnn(np.float64), CrossEntropyLoss(), X, rng.integers(0, 3, size=8))
    md = t.to_markdown()
    assert X.size > LATEX_LIMIT and r"\text{8 x 1 x 4 x 4: from }" in md
    for heading in (
        "### Layer 1: Conv2d(1, 2",
        "through Flatten",
        "through MaxPool2d",
        "through AvgPool2d",
        "back through layer 2",
        "$\\partial J / \\partial X$, back through layer 1",
    ):
        assert heading in md, heading
    assert "per channel" in md  # BatchNorm2d's statistics, in words
    svg = t.to_svg()
    root = ET.fromstring(svg)
    ids = {g.get("id") for g in root.iter("{http://www.w3.org/2000/svg}g")}
    assert {"node-P1", "node-F2", "node-W1", "node-N1"} <= ids


def test_trace_leaves_the_model_alone_and_aliases_a_without_activation():
    model = Sequential(Linear(2, 3, rng=0), ReLU(), Linear(3, 1, rng=1))
    before = model.state_dict()
    t = trace(model, MSELoss(), np.ones((4, 2)), np.zeros((4, 1)))
    assert all(p.grad is None for p in model.parameters())
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())
    assert t["A2"] is t["Z2"] and t["dJ/dA2"] is t["dJ/dZ2"]
    with pytest.raises(KeyError, match="Trace has no 'dJ/dW9'; it has: X, Y, W1"):
        t["dJ/dW9"]


@pytest.mark.parametrize(
    ("model", "error", "message"),
    [
        (Linear(2, 2), TypeError, "trace: expected a Sequential model, got Linear"),
        (
            Sequential(ReLU(), Linear(2, 2)),
            ValueError,
            r"trace: the model must start with a Linear or Conv2d layer",
        ),
        (
            Sequential(Linear(2, 2), ReLU(), Sigmoid()),
            ValueError,
            r"trace: module 2 \(Sigmoid\(\)\) does not fit: each Linear or Conv2d may be "
            "followed by at most one normalisation, one activation, one pooling layer",
        ),
        (
            Sequential(Conv2d(1, 1, 1), MaxPool2d(1), ReLU()),
            ValueError,
            r"trace: module 2 \(ReLU\(\)\) does not fit",
        ),
        (
            Sequential(Conv2d(1, 1, 1), Flatten(), MaxPool2d(1)),
            ValueError,
            r"trace: module 2 \(MaxPool2d.*\) does not fit",
        ),
        (
            Sequential(Linear(2, 2), Sequential(ReLU())),
            ValueError,
            "trace: module 1 is a nested Sequential",
        ),
    ],
)
def test_trace_needs_linear_activation_pairs(model, error, message):
    with pytest.raises(error, match=message):
        trace(model, MSELoss(), np.ones((1, 2)), np.ones((1, 2)))


def test_markdown_shows_both_views_and_they_agree():
    X, y = we.data(np.float64)
    md = trace(we.model(np.float64), we.loss_fn(), X, y).to_markdown()
    views = md.count("*Jacobian view.*")
    assert views >= 8
    # float64: every Jacobian product agrees with the code's result to rounding
    assert md.count("the same as the code's result (up to float64 rounding)") == views
    assert "max difference" not in md
    # 2 dJ/dA2 (per sample), 4 significant digits: [[0.04556, -0.02734], [-0.1277, 0.07662]]
    assert r"\begin{bmatrix} 0.04556 & -0.02734 \\ -0.1277 & 0.07662 \end{bmatrix}" in md
    assert "Note: $Z^{[2]}_{0, 0} = 0$ exactly" in md


def test_svg_graph_has_every_node_and_edge_with_values_and_gradients(tmp_path):
    X, y = we.data()
    t = trace(we.model(), we.loss_fn(), X, y)
    path = tmp_path / "graph.svg"
    svg = t.to_svg(path)
    assert path.read_text() == svg
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    nodes = {g.get("id")[5:] for g in root.iter(f"{ns}g") if "node" in g.get("class")}
    assert nodes == {"X", "Y", "L", "J"} | {f"{k}{n}" for k in "WbZA" for n in (1, 2, 3)}
    edges = {(e.get("data-from"), e.get("data-to")) for e in root.iter(f"{ns}line")}
    assert ("A2", "Z3") in edges and ("W3", "Z3") in edges and ("L", "J") in edges
    assert len(edges) == 3 * 4 + 3  # per layer: input, W, b -> Z and Z -> A; then A3, Y -> L -> J
    texts = " ".join(e.text or "" for e in root.iter(f"{ns}text"))
    assert "[-1.022, -0.9253]" in texts and "dJ/dW3" in texts and "value 0.1952" in texts
    legend = [g for g in root.iter(f"{ns}g") if g.get("class") == "legend"]
    assert legend and "gradient of the cost" in " ".join(e.text for e in legend[0])


def test_svg_boxes_hold_their_text_for_wider_networks():
    """Every text line fits inside its box (the numbers spilled out for a 4-unit network)."""
    from handprop.explain.graph import CHAR, PAD

    model = Sequential(
        Linear(4, 4, rng=0), ReLU(), Linear(4, 4, rng=1), ReLU(), Linear(4, 1, rng=2), Sigmoid()
    )
    X = np.random.default_rng(0).normal(size=(3, 4))
    svg = trace(model, MSELoss(), X, np.zeros((3, 1))).to_svg()
    ns = "{http://www.w3.org/2000/svg}"
    for g in ET.fromstring(svg).iter(f"{ns}g"):
        if "node" not in g.get("class"):
            continue
        rect = g.find(f"{ns}rect")
        right = float(rect.get("x")) + float(rect.get("width"))
        for text in g.iter(f"{ns}text"):
            assert float(text.get("x")) + CHAR * len(text.text) <= right - PAD / 2, text.text


def run_cli(*args, block_torch=False):
    prelude = "import sys; sys.modules['torch'] = None; " if block_torch else ""
    code = prelude + "import sys; from handprop.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.torch  # it checks torch's column of match marks too
def test_walkthrough_prints_the_correct_values_and_explains_every_difference(tmp_path):
    out = run_cli("walkthrough", "--svg", str(tmp_path / "g.svg"))
    # 4 significant digits beside the document's 4 decimals
    assert "handprop  dL/dA2 = [[0.04556, -0.02734], [-0.1277, 0.07662]]" in out
    assert "document  [[0.0456], [0.0766]]   DIFFERS: the document multiplies elementwise" in out
    assert "handprop  dJ/db2 = [-0.06385, 0.02464]" in out
    # every value to 4 significant digits without trailing zeros (1.100259 is 1.1, and Z1's
    # -16.0000019 is -16 beside the exact -7.8: the zeros of rounded values only read as a
    # difference in precision)
    assert "handprop  dL/dA3 = [[1.1], [-1.343]]" in out
    assert "handprop  Z1 = [[4, 2, -7.8], [6, 9, -16]]" in out
    words = " ".join(out.split())  # explanations wrap at 100 columns
    assert "the document cuts 0.1901724 to 0.1901 instead of rounding (0.1902)" in words
    assert "At Z2[0, 0] = 0 exactly ReLU has no derivative" in out
    # dA3/dZ3 and dL/dW3 (truncation), dJ/db3 (rounding), dL/dA2 (step 4), dL/dZ2 (carried)
    assert out.count("DIFFERS") == 5 and "see below" not in out
    assert "✗" not in out and out.count("✓") == 26
    assert "cost after the step: 0.163 (before: 0.1952)" in out
    # torch's column included; the last line names the SVG file, a path as long as it is
    lines = [line for line in out.splitlines() if not line.startswith("wrote the computational")]
    assert max(len(line) for line in lines) <= 100
    assert (tmp_path / "g.svg").read_text().startswith("<svg")


@pytest.mark.torch
def test_walkthrough_full_prints_every_digit_of_the_dtype():
    full = run_cli("walkthrough", "--full")
    X, y = we.data()
    t = trace(we.model(), we.loss_fn(), X, y)
    for name in ("dL/dA2", "dJ/db2", "dJ/dW1"):
        line = next(x for x in full.splitlines() if x.startswith(f"    handprop  {name} = "))
        printed = np.array(ast.literal_eval(line.split(" = ", 1)[1]), dtype=np.float32)
        np.testing.assert_array_equal(printed, t[name])  # every bit of the float32 value
    assert "handprop  dL/dA2 = [[0.045561474, -0.027336886], [-0.12770158, 0.07662095]]" in full
    assert "cost after the step: 0.16303208 (before: 0.19522892)" in full  # float32, not 17 digits
    assert max(len(line) for line in full.splitlines()) <= 100
    full64 = run_cli("walkthrough", "--full", "--dtype", "float64", "--no-torch")
    # float64: up to 17 digits; the cost computed with Python's math module: 0.1952288621014371
    assert "handprop  J = 0.195228862101437" in full64


def test_walkthrough_runs_without_torch_and_as_a_module():
    out = run_cli("walkthrough", "--dtype", "float64", block_torch=True)
    assert "(torch is not installed)" in " ".join(out.split()) and "✓" not in out
    assert max(len(line) for line in out.splitlines()) <= 100  # wrapped for a terminal
    assert "handprop  J = 0.1952" in out
    as_module = subprocess.run(
        [sys.executable, "-m", "handprop", "walkthrough", "--no-torch"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Step 4. dL/dA2 = dL/dZ3 @ W3" in as_module
    assert handprop.trace is trace


def test_a_jacobian_view_that_disagrees_with_the_code_prints_the_difference():
    from handprop.explain.derivation import _jacobian_block

    jac, upstream = np.eye(2), np.array([[1.0, 2.0]])
    agrees = " ".join(_jacobian_block("J", jac, upstream, np.array([[1.0, 2.0]]), "X"))
    assert "(up to float64 rounding)" in agrees
    wrong = " ".join(_jacobian_block("J", jac, upstream, np.array([[1.0, 2.5]]), "X"))
    assert "(max difference 5.0e-01)" in wrong


def test_the_teaching_tools_live_in_handprop_explain():
    """handprop.trace and handprop.Trace stay the function and the class; the modules behind
    them are handprop.explain.* (so importing the module no longer collides with the
    function of the same name)."""
    import importlib
    import types

    for name in ("trace", "derivation", "graph", "walkthrough", "stepper", "stats", "diagnose"):
        module = importlib.import_module(f"handprop.explain.{name}")
        assert isinstance(module, types.ModuleType)
    assert handprop.trace is importlib.import_module("handprop.explain.trace").trace
    assert handprop.Trace.__module__ == "handprop.explain.trace"
    assert callable(handprop.trace) and not isinstance(handprop.trace, types.ModuleType)


def test_the_walkthroughs_explanations_are_computed_and_checked():
    """The numbers the walkthrough's explanations cite come from the values: the dJ/db2 it
    quotes for ReLU'(0) = 1 equals a backward with that choice, and a truncation it claims is
    checked (a printed value that is no truncation of the real one is an error)."""
    import io
    import re

    from handprop.explain.walkthrough import _truncations, walkthrough

    class ReLUOneAtZero(ReLU):
        def backward(self, grad_output, *, input_grad=True):
            return grad_output * (self._y >= 0)

    model = we.model(np.float64)
    model._modules["1"] = ReLUOneAtZero()  # (the first ReLU has no input at 0)
    model._modules["3"] = ReLUOneAtZero()
    X, y = we.data(np.float64)
    loss = we.loss_fn()
    loss(model(X), y)
    model.backward(loss.backward())
    out = io.StringIO()
    walkthrough(out, dtype=np.float64, use_torch=False)
    quoted = re.search(r"with the other choice, 1, dJ/db2 would be \[(.*?)\]", out.getvalue())
    np.testing.assert_allclose(
        [float(v) for v in quoted.group(1).split(", ")], model[2].bias.grad, atol=5e-5
    )
    text = " ".join(out.getvalue().split())  # long explanations are wrapped at 100 columns
    assert "cuts 0.1901723 to 0.1901 instead of rounding (0.1902)" in text
    with pytest.raises(AssertionError, match="no truncation explains the difference"):
        _truncations([0.19017], [0.1903])


def test_walkthrough_into_a_closed_pipe_ends_quietly():
    """`handprop walkthrough | head -3`: the reader leaves early; no traceback follows. The
    pipe's reading end is closed before the walkthrough writes, so its first line meets it."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    code = "import sys; from handprop.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run(
        [sys.executable, "-c", code, "walkthrough", "--no-torch"],
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    os.close(write_end)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr


def test_walkthrough_writes_the_step_through_page_and_a_trace_displays_as_it(tmp_path, capsys):
    import json
    import re

    from handprop.cli import main
    from handprop.explain.stepper import frames

    path = tmp_path / "steps.html"
    assert main(["walkthrough", "--no-torch", "--html", str(path)]) == 0
    assert f"wrote the step-through page to {path}" in capsys.readouterr().out
    page = path.read_text(encoding="utf-8")
    data = json.loads(re.search(r'id="frames">(.*?)</script>', page, re.S).group(1))
    X, y = we.data()
    t = trace(we.model(), we.loss_fn(), X, y)
    assert data == json.loads(json.dumps(frames(t)))
    assert len(data) == 18 and data[0]["title"] == "1/18. Forward: Z1"
    assert data[-1]["writes"] == ["dJ/dX"]
    shown = t._repr_html_()
    assert shown.startswith("<iframe srcdoc=") and "&lt;!DOCTYPE html&gt;" in shown


def test_the_step_through_frames_of_a_cnn_name_only_nodes_of_its_graph():
    """Every name a frame reads or writes is a node (or a node's gradient) of the graph, for a
    convolutional network too (N, A, P, F, and a last layer without activation)."""
    import re

    from handprop.explain.stepper import frames

    X = np.random.default_rng(0).standard_normal((2, 1, 4, 4))
    t = trace(_small_cnn(np.float64), CrossEntropyLoss(), X, np.array([0, 2]))
    names = set(re.findall(r'data-name="([^"]+)"', t.to_svg()))
    steps = frames(t)
    assert all(set(f["reads"]) | set(f["writes"]) <= names for f in steps)
    titles = [f["title"].split(". ", 1)[1] for f in steps]
    assert "Backward: dJ/dA1, through MaxPool2d" in titles
    assert "Backward: dJ/dP2, through Flatten" in titles
    assert titles[-1] == "Backward: dJ/dX, back through layer 1"
