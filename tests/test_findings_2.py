"""The findings of the second round of attacks (``shared/reference/reliability_findings_2.md``),
one test (or a few) per finding, each failing on the code the attack found (commit 511dd64).

The ids (A1, A2, ...) are the report's; each test says what the attack did and what must hold.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import handprop
from handprop import Module, Parameter, Sequential
from handprop.exercises import grade
from handprop.explain.diagnose import check_module
from handprop.layers import Linear, ReLU, Sigmoid, Tanh
from handprop.losses import MSELoss
from handprop.optim import SGD, Adagrad, Adam, AdamW, RMSprop

# -- A1: the grader is not fooled by a backward that writes into what it is given -------------


class InPlaceWrongReLU(Module):
    """Twice the right gradient, computed in place in grad_output (the attack's learner)."""

    def forward(self, x):
        self.x = x
        return np.maximum(x, 0)

    def backward(self, grad_output):
        grad_output *= self.x > 0
        grad_output *= 2
        return grad_output


class InPlaceSigmoid(Module):
    """A right backward that multiplies grad_output in place (bad style, right numbers)."""

    def forward(self, x):
        self.y = 1 / (1 + np.exp(-x))
        return self.y

    def backward(self, grad_output):
        grad_output *= self.y * (1 - self.y)
        return grad_output


class InPlaceBatchNorm1d(Module):
    """BatchNorm1d's right backward, with ``g *= self.weight.data`` in place."""

    def __init__(self, num_features):
        super().__init__()
        self.weight = Parameter(np.ones(num_features))
        self.bias = Parameter(np.zeros(num_features))

    def forward(self, x):
        mean, var = x.mean(axis=0), x.var(axis=0)
        self.inv_std = 1 / np.sqrt(var + 1e-5)
        self.x_hat = (x - mean) * self.inv_std
        return self.x_hat * self.weight.data + self.bias.data

    def backward(self, g):
        self.weight.accumulate_grad((g * self.x_hat).sum(axis=0))
        self.bias.accumulate_grad(g.sum(axis=0))
        g *= self.weight.data
        m = len(g)
        terms = m * g - g.sum(axis=0) - self.x_hat * (g * self.x_hat).sum(axis=0)
        return self.inv_std / m * terms


def test_a1_a_wrong_backward_that_writes_into_grad_output_fails():
    results = grade("relu", InPlaceWrongReLU)
    assert not any(r.passed for r in results)


@pytest.mark.parametrize(
    ("name", "cls"), [("sigmoid", InPlaceSigmoid), ("batchnorm1d", InPlaceBatchNorm1d)]
)
def test_a1_right_backwards_that_write_into_grad_output_pass(name, cls):
    results = grade(name, cls)
    assert all(r.passed for r in results), [str(r.report) for r in results]


@pytest.mark.parametrize("reference", ["handprop", "finite differences"])
def test_a1_check_module_gives_the_module_its_own_arrays(reference):
    x = np.random.default_rng(0).standard_normal((3, 4))
    own = reference == "handprop"
    wrong = check_module(InPlaceWrongReLU(), x, reference=ReLU() if own else None, rng=0)
    assert not wrong.passed
    assert [m.code for m in wrong.mistakes] == ["scaled"]
    right = check_module(InPlaceSigmoid(), x, reference=Sigmoid() if own else None, rng=0)
    assert right.passed, str(right)


class ComplexReLU(Module):
    def forward(self, x):
        self.x = x
        return np.maximum(x, 0)

    def backward(self, grad_output):
        return (grad_output * (self.x > 0)).astype(np.complex128)


def test_a19_a_complex_gradient_fails_with_its_dtype_named():
    x = np.random.default_rng(0).standard_normal((3, 4))
    report = check_module(ComplexReLU(), x, reference=ReLU(), rng=0)
    assert not report.passed
    assert [m.code for m in report.mistakes] == ["wrong-dtype"]
    assert "complex128" in report.mistakes[0].hint


# -- A2: no_grad on generator functions, and bare ------------------------------------------------


def _trained_forward():
    rng = np.random.default_rng(0)
    model = Sequential(Linear(2, 3, rng=0, dtype=np.float64), Tanh(), Linear(3, 1, rng=1))
    model = model.to(np.float64) if hasattr(model, "to") else model
    X, y = rng.standard_normal((4, 2)), rng.standard_normal((4, 1))
    return model, X, y


def _grads_after(evaluate):
    """dJ/dW of the first layer, with ``evaluate(model, X_val)`` run between forward and
    backward."""
    model, X, y = _trained_forward()
    loss_fn = MSELoss()
    loss_fn(model(X), y)
    evaluate(model, X[::-1] * 3)
    model.backward(loss_fn.backward())
    return model[0].weight.grad


def test_a2_no_grad_covers_a_generator_function():
    @handprop.no_grad()
    def predictions(model, batches):
        for xb in batches:
            assert not handprop.is_grad_enabled()
            yield model(xb)

    right = _grads_after(lambda model, X: None)
    got = _grads_after(lambda model, X: list(predictions(model, [X, X])))
    np.testing.assert_array_equal(got, right)


def test_a2_no_grad_between_a_generators_steps_leaves_the_callers_mode_alone():
    """torch's rule: the mode is set while the generator runs, and the caller's own mode is
    back between its steps."""

    @handprop.no_grad()
    def modes():
        yield handprop.is_grad_enabled()
        yield handprop.is_grad_enabled()

    seen = []
    for mode in modes():
        seen.append((mode, handprop.is_grad_enabled()))
    assert seen == [(False, True), (False, True)]


def test_a2_bare_no_grad_decorates_as_torchs():
    @handprop.no_grad
    def evaluate(model, X):
        assert not handprop.is_grad_enabled()
        return model(X)

    right = _grads_after(lambda model, X: None)
    got = _grads_after(evaluate)
    np.testing.assert_array_equal(got, right)
    assert evaluate.__name__ == "evaluate"
    assert handprop.is_grad_enabled()


def test_a2_enable_grad_decorates_a_generator_too():
    @handprop.enable_grad()
    def inner():
        yield handprop.is_grad_enabled()

    with handprop.no_grad():
        assert list(inner()) == [True]
        assert not handprop.is_grad_enabled()


# -- A3: the optimizers' fast paths and parameters that share memory ---------------------------


def _tied_autoencoder(dtype):
    enc = Linear(4, 2, rng=0, dtype=dtype)
    dec = Linear(2, 4, rng=1, dtype=dtype)
    dec.weight = Parameter(enc.weight.data.T)  # shared memory: a transposed view
    return Sequential(enc, Tanh(), dec)


OPTIMIZERS = {
    "SGD": lambda ps, f: SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01, foreach=f),
    "Adam": lambda ps, f: Adam(ps, lr=0.01, weight_decay=0.01, foreach=f),
    "AdamW": lambda ps, f: AdamW(ps, lr=0.01, foreach=f),
    "RMSprop": lambda ps, f: RMSprop(ps, lr=0.01, foreach=f),
    "Adagrad": lambda ps, f: Adagrad(ps, lr=0.05, weight_decay=0.01, foreach=f),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("block", [None, 4], ids=["batched", "blocked"])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_a3_fast_paths_equal_the_plain_path_for_parameters_sharing_memory(
    monkeypatch, name, dtype, block
):
    """The attack: Adam's batch of small parameters copied both tied weights in, updated
    them, and copied both back, the second copy overwriting the first's update. With a small
    block size the 4 x 2 weights take the blocked path instead."""
    from handprop.optim import _foreach

    if block is not None:
        monkeypatch.setattr(_foreach, "_BLOCK", block)
    X = np.random.default_rng(3).standard_normal((5, 4)).astype(dtype)
    runs = {}
    for foreach in (False, None, True):
        model, loss_fn = _tied_autoencoder(dtype), MSELoss()
        opt = OPTIMIZERS[name](list(model.parameters()), foreach)
        for _ in range(20):
            opt.zero_grad()
            loss_fn(model(X), X)
            model.backward(loss_fn.backward())
            opt.step()
        runs[foreach] = [p.data.copy() for p in model.parameters()]
    assert np.shares_memory(model[0].weight.data, model[2].weight.data)
    for foreach in (None, True):
        for plain, fast in zip(runs[False], runs[foreach], strict=True):
            assert plain.tobytes() == fast.tobytes(), foreach


@pytest.mark.torch
def test_a3_tied_autoencoder_under_adams_default_follows_torch():
    """The attack's model: 20 Adam steps of a tied, transposed autoencoder weight, the
    default foreach, against torch's Adam on the same tie (a view of one storage)."""
    import torch
    from closeness import assert_close

    torch.manual_seed(0)
    dtype = np.float64
    model, loss_fn = _tied_autoencoder(dtype), MSELoss()
    enc = torch.nn.Linear(4, 2, dtype=torch.float64)
    dec = torch.nn.Linear(2, 4, dtype=torch.float64)
    with torch.no_grad():
        enc.weight.copy_(torch.from_numpy(model[0].weight.data))
        enc.bias.copy_(torch.from_numpy(model[0].bias.data))
        dec.bias.copy_(torch.from_numpy(model[2].bias.data))
    dec.weight = torch.nn.Parameter(enc.weight.detach().T)  # the same storage
    twin = torch.nn.Sequential(enc, torch.nn.Tanh(), dec)
    opt = Adam(list(model.parameters()), lr=0.01)
    t_opt = torch.optim.Adam(twin.parameters(), lr=0.01)
    X = np.random.default_rng(3).standard_normal((5, 4))
    for _ in range(20):
        opt.zero_grad()
        loss_fn(model(X), X)
        model.backward(loss_fn.backward())
        opt.step()
        t_opt.zero_grad()
        tx = torch.from_numpy(X)
        torch.nn.functional.mse_loss(twin(tx), tx).backward()
        t_opt.step()
    assert_close("tied weight", model[0].weight.data, enc.weight.detach().numpy(), dtype)
    assert_close("decoder bias", model[2].bias.data, dec.bias.detach().numpy(), dtype)


# -- A6: an optimizer's state keeps what its schedules wrote into its group ---------------------


def _sgd_with_steps(scheduler, steps):
    p = Parameter(np.ones(3))
    opt = SGD([p], lr=0.1)
    schedule = scheduler(opt)
    for _ in range(steps):
        p.grad = np.ones(3)
        opt.step()
        schedule.step()
    return p, opt, schedule


def test_a6_a_schedule_resumes_after_the_optimizers_state_is_loaded():
    from handprop.optim.lr_scheduler import OneCycleLR, StepLR

    _, opt, schedule = _sgd_with_steps(lambda o: StepLR(o, 2, 0.5), 4)
    fresh = SGD([Parameter(np.ones(3))], lr=0.1)
    fresh.load_state_dict(opt.state_dict())
    assert fresh.param_groups[0]["initial_lr"] == 0.1
    resumed = StepLR(fresh, 2, 0.5, last_epoch=4)
    assert resumed.get_last_lr() == [0.025]  # torch's figure in the attack

    make = lambda o: OneCycleLR(o, max_lr=1.0, total_steps=10)  # noqa: E731
    _, opt, schedule = _sgd_with_steps(make, 3)
    fresh = SGD([Parameter(np.ones(3))], lr=0.1, momentum=0.9)
    fresh.load_state_dict(opt.state_dict())
    for key in ("initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"):
        assert fresh.param_groups[0][key] == opt.param_groups[0][key], key
    resumed = OneCycleLR(fresh, max_lr=1.0, total_steps=10, last_epoch=schedule.last_epoch)
    schedule.step()  # (a schedule built with last_epoch=N takes its step N + 1, as torch's)
    assert resumed.get_last_lr() == schedule.get_last_lr()
    assert fresh.param_groups[0]["momentum"] == opt.param_groups[0]["momentum"]


def test_a6_a_saved_groups_other_entries_must_be_numbers():
    opt = SGD([Parameter(np.ones(3))], lr=0.1)
    saved = opt.state_dict()
    saved["param_groups"][0]["initial_lr"] = "fast"
    with pytest.raises(ValueError, match=r"'initial_lr' must be a number .* got 'fast'"):
        opt.load_state_dict(saved)
    assert "initial_lr" not in opt.param_groups[0]


# -- A7: check_module on a Dropout, with no reference ------------------------------------------


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_a7_check_module_passes_handprops_own_dropout(p):
    from handprop.layers import Dropout

    x = np.random.default_rng(1).standard_normal((3, 4))
    report = check_module(Dropout(p, rng=0), x, rng=0)
    assert report.passed, str(report)
    nested = check_module(Sequential(Linear(4, 4, rng=2), Dropout(p, rng=0)), x, rng=0)
    assert nested.passed, str(nested)


def test_a7_a_dropout_backward_with_another_mask_still_fails():
    from handprop.layers import Dropout

    class OtherMask(Dropout):
        def backward(self, grad_output, *, input_grad=True):
            return np.asarray(grad_output) * (~self.mask) / (1 - self.p)

    x = np.random.default_rng(1).standard_normal((3, 4))
    assert not check_module(OtherMask(0.5, rng=0), x, rng=0).passed


# -- A8: gradcheck watches the kinks inside nested Sequentials -----------------------------------


def _on_the_kink(nested):
    first = Linear(2, 2, dtype=np.float64)
    first.weight.data[...] = np.eye(2)
    first.bias.data[...] = 0
    last = Linear(2, 1, rng=1, dtype=np.float64)
    if nested:
        return Sequential(Sequential(first, ReLU()), last)
    return Sequential(first, ReLU(), last)


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
def test_a8_gradcheck_sees_a_kink_inside_a_nested_sequential(nested):
    from handprop import gradcheck

    X, y = np.array([[0.0, 1.0], [2.0, -1.0]]), np.zeros((2, 1))
    report = gradcheck(_on_the_kink(nested), MSELoss(), X, y)
    assert report.passed, str(report)
    assert [k.value for k in report.kinks] == ["Z1[0, 0]"]


# -- A4, A5: load reads a bounded amount of memory for any file ---------------------------------


def _architecture_file(path, model: dict, **members) -> None:
    import json

    header = {"format": "handprop", "version": 1, "model": model}
    np.savez(path, architecture=np.array(json.dumps(header)), **members)


@pytest.fixture
def nothing_built(monkeypatch):
    """Fails the test if load builds any module (it must refuse the file before)."""

    def refuse(self, *args, **kwargs):
        raise AssertionError(f"load built a {type(self).__name__} before refusing the file")

    monkeypatch.setattr(Module, "__init__", refuse)


BIG_NORMS = {
    "BatchNorm1d": {
        "type": "BatchNorm1d",
        "num_features": 200_000_000,
        "eps": 1e-5,
        "momentum": 0.1,
        "affine": True,
        "track_running_stats": True,
        "bias": True,
        "dtype": "float64",
    },
    "LayerNorm": {
        "type": "LayerNorm",
        "normalized_shape": [20_000, 10_000],
        "eps": 1e-5,
        "elementwise_affine": True,
        "bias": True,
        "dtype": "float64",
    },
}


@pytest.mark.parametrize("kind", sorted(BIG_NORMS))
def test_a4_a_norm_is_not_built_before_its_arrays_are_checked(tmp_path, nothing_built, kind):
    path = tmp_path / "norm.npz"
    _architecture_file(path, BIG_NORMS[kind])
    with pytest.raises(ValueError, match=r"do not fit the architecture \(missing \['bias'"):
        handprop.load(path)


def test_a4_a_huge_num_features_is_refused_with_a_value_error(tmp_path, nothing_built):
    path = tmp_path / "norm.npz"
    _architecture_file(path, {**BIG_NORMS["BatchNorm1d"], "num_features": 10**12})
    with pytest.raises(ValueError, match="do not fit the architecture"):
        handprop.load(path)


@pytest.mark.parametrize("kind", sorted(BIG_NORMS))
def test_a4_a_norms_arguments_are_still_checked(tmp_path, kind):
    path = tmp_path / "norm.npz"
    bad = {"BatchNorm1d": {"momentum": 2.0}, "LayerNorm": {"normalized_shape": [3, 0]}}[kind]
    _architecture_file(path, {**BIG_NORMS[kind], **bad})
    with pytest.raises(ValueError, match=f"invalid architecture: {kind}: "):
        handprop.load(path)


def _claiming_more_than_it_holds(path, claimed: int) -> None:
    """The attack's file: a Linear(20000, 20000) whose weight member holds a .npy header and
    8 bytes, its zip size fields (local and central) patched to ``claimed``."""
    import io
    import json
    import struct
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (20000, 20000)}
    )
    model = {"type": "Linear", "in_features": 20000, "out_features": 20000, "bias": False}
    model["dtype"] = "float32"
    text = io.BytesIO()
    arch = np.array(json.dumps({"format": "handprop", "version": 1, "model": model}))
    np.lib.format.write_array(text, arch)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("architecture.npy", text.getvalue())
        archive.writestr("param:weight.npy", header.getvalue() + bytes(8))
    data = bytearray(path.read_bytes())
    name = b"param:weight.npy"
    local = data.index(b"PK\x03\x04", data.index(b"PK\x03\x04") + 4)  # the second member's
    struct.pack_into("<II", data, local + 18, claimed, claimed)
    central = data.index(b"PK\x01\x02", data.index(b"PK\x01\x02") + 4)
    assert data[central + 46 : central + 46 + len(name)] == name
    struct.pack_into("<II", data, central + 20, claimed, claimed)
    path.write_bytes(bytes(data))


def test_a5_zip_size_fields_are_not_trusted(tmp_path, nothing_built):
    path = tmp_path / "liar.npz"
    _claiming_more_than_it_holds(path, 20000 * 20000 * 4 + 128)
    with pytest.raises(
        ValueError,
        match=r"param:weight.npy' is truncated: its header declares "
        r"1600000000 bytes of values, the archive holds \d+$",
    ):
        handprop.load(path)


def test_a5_every_refusal_says_why(tmp_path):
    path = tmp_path / "cut.npz"
    handprop.save(Sequential(Linear(3, 2)), path)
    data = path.read_bytes()
    for cut in (len(data) // 3, len(data) // 2, len(data) - 30):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError) as error:
            handprop.load(path)
        reason = str(error.value).rsplit("model file", 1)[-1]
        assert reason.strip(" :"), str(error.value)


# -- A12, A13: the exercise command and a learner file that misbehaves ---------------------------


def _relu_file(tmp_path, backward: str, top: str = "") -> str:
    """relu.py with ``backward`` as its backward's body (and ``top`` at the file's top level)."""
    path = tmp_path / "relu.py"
    path.write_text(
        "import sys\nimport numpy as np\nfrom handprop import Module\n"
        + top
        + "\n\nclass ReLU(Module):\n"
        "    def forward(self, x):\n"
        "        self.x = x\n"
        "        return np.maximum(x, 0)\n\n"
        "    def backward(self, grad_output):\n" + backward + "\n"
    )
    return str(path)


@pytest.mark.parametrize(
    ("top", "said"),
    [
        (
            "sys.exit(0)",
            r"could not be imported: your code called sys.exit\(0\), which a graded file",
        ),
        (
            "def broken(:\n    pass",
            r"could not be imported: your code raised SyntaxError: .*\(relu.py, line 4\)",
        ),
        (
            "1 / 0",
            r"imported: your code raised ZeroDivisionError: division by zero \(relu.py, line 4",
        ),
    ],
    ids=["exit", "syntax", "raises"],
)
def test_a12_a_file_that_does_not_import_gets_a_short_message(tmp_path, capsys, top, said):
    import re

    from handprop.cli import main

    path = _relu_file(tmp_path, "        return grad_output * (self.x > 0)", top)
    assert main(["exercise", "check", "relu", path]) == 2
    out, err = capsys.readouterr()
    assert re.search(said, err), err
    assert "all cases pass" not in out and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 2, err


@pytest.mark.parametrize(
    ("backward", "said"),
    [
        (
            "        sys.exit(0)",
            r"your code called sys.exit\(0\).*\(relu.py, line 12, in backward\)",
        ),
        (
            "        return 1 / 0",
            r"your code raised ZeroDivisionError: division by zero \(relu.py, line 12",
        ),
    ],
    ids=["exit", "raises"],
)
def test_a12_a_backward_that_exits_or_raises_fails_its_cases_with_the_line(
    tmp_path, capsys, backward, said
):
    import re

    from handprop.cli import main

    assert main(["exercise", "check", "relu", _relu_file(tmp_path, backward)]) == 1
    out = capsys.readouterr().out
    assert re.search(said, out), out
    assert "0 of 2 cases pass: not yet" in out


def test_a12_an_endless_backward_is_stopped_by_the_time_limit(tmp_path, capsys, monkeypatch):
    import handprop.exercises as exercises
    from handprop.cli import main

    monkeypatch.setattr(exercises, "TIME_LIMIT", 0.2)
    path = _relu_file(tmp_path, "        while True:\n            pass")
    assert main(["exercise", "check", "relu", path]) == 1
    out = capsys.readouterr().out
    assert "your code ran longer than 0.2 s, the time limit of a case" in out, out
    assert "0 of 2 cases pass: not yet" in out


def test_a13_start_never_writes_through_a_link_or_into_a_file(tmp_path, capsys):
    from handprop.cli import main

    outside = tmp_path / "outside.py"
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "relu.py").symlink_to(outside)  # dangling: outside.py does not exist
    assert main(["exercise", "start", "relu", str(folder)]) == 2
    assert "exists already" in capsys.readouterr().err
    assert not outside.exists()
    afile = tmp_path / "afile"
    afile.write_text("notes")
    assert main(["exercise", "start", "relu", str(afile)]) == 2
    assert "afile is a file, not a folder" in capsys.readouterr().err
    assert afile.read_text() == "notes"


# -- A9, A10, A11: an empty batch in Conv2d; a learner's activation in the derivation and page ---


@pytest.mark.parametrize("groups", [1, 2])
def test_a9_conv2d_takes_an_empty_batch_as_torch_does(groups):
    from handprop.layers import Conv2d

    conv = Conv2d(4, 2, 3, groups=groups, rng=0)
    y = conv(np.zeros((0, 4, 5, 6), np.float32))
    assert y.shape == (0, 2, 3, 4)  # torch.nn.Conv2d(4, 2, 3)(torch.zeros(0, 4, 5, 6)).shape
    dx = conv.backward(np.zeros(y.shape, np.float32))
    assert dx.shape == (0, 4, 5, 6)
    np.testing.assert_array_equal(conv.weight.grad, np.zeros_like(conv.weight.data))


class SiLU(Module):
    """x * sigmoid(x), a learner's activation (the docs' own custom layer)."""

    def forward(self, x):
        self.x, self.s = x, 1 / (1 + np.exp(-x))
        return x * self.s

    def backward(self, grad_output):
        return grad_output * self.s * (1 + self.x * (1 - self.s))

    def __repr__(self):
        return "SiLU(<!--<script>)"  # A11: a repr that opens an HTML comment and a script


def _silu_trace():
    from handprop.explain.trace import trace

    model = Sequential(Linear(2, 3, rng=0), SiLU(), Linear(3, 1, rng=1))
    X = np.array([[0.5, -1.0], [2.0, 0.25]], np.float32)
    return trace(model, MSELoss(), X, np.zeros((2, 1), np.float32))


def test_a10_the_derivation_writes_a_learners_activation_through_its_backward():
    t = _silu_trace()
    text = t.to_markdown()
    assert r"\operatorname{SiLU}(Z^{[1]})" in text
    assert "By `SiLU.backward` (its Jacobian below)" in text
    # the Jacobian view, from SiLU.backward itself, agrees with the trace's dJ/dZ1
    assert "the same as the code's result (up to float32 rounding)" in text.split("### 5.")[0]


def test_a11_the_step_through_pages_data_cannot_end_its_script():
    import json
    import re

    page = _silu_trace().to_html()
    data = re.search(r'<script type="application/json" id="frames">(.*?)</script>', page, re.S)
    assert "<" not in data[1] and ">" not in data[1]
    assert "SiLU(<!--<script>)" in json.dumps(json.loads(data[1]), ensure_ascii=False)


# -- A16: a count in a state_dict must be one ----------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, 1e30, -5, 2.5, np.array(-1)])
def test_a16_num_batches_tracked_must_be_a_whole_number(bad):
    from handprop.layers import BatchNorm1d

    norm = BatchNorm1d(3)
    state = norm.state_dict()
    state["num_batches_tracked"] = np.asarray(bad)
    with pytest.raises(ValueError, match="num_batches_tracked must hold whole numbers from 0 to"):
        norm.load_state_dict(state)
    assert norm.num_batches_tracked == 0
    for good in (7, np.array(7.0), np.int32(7)):
        state["num_batches_tracked"] = good
        norm.load_state_dict(state)
        assert norm.num_batches_tracked == 7 and norm.num_batches_tracked.dtype == np.int64


# -- A17, F15: save's path, and the temporary files of killed saves ------------------------------


def test_a17_save_to_a_directory_says_so_and_takes_bytes(tmp_path):
    model = Sequential(Linear(2, 2, rng=0))
    (tmp_path / "adir").mkdir()
    with pytest.raises(IsADirectoryError, match=r"save: cannot write '.*adir': it is a directory"):
        handprop.save(model, tmp_path / "adir")
    assert list((tmp_path / "adir").iterdir()) == []
    handprop.save(model, bytes(tmp_path / "x.npz"))
    np.testing.assert_array_equal(
        handprop.load(tmp_path / "x.npz")[0].weight.data, model[0].weight.data
    )


def test_f15_the_next_save_removes_what_killed_saves_left(tmp_path):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    gone = int(done.stdout)  # a process that has ended
    stale = tmp_path / f".model.npz.{gone}.abc123.tmp"
    stale.write_bytes(b"half a file")
    running = tmp_path / f".model.npz.{os.getppid()}.def456.tmp"  # a save still running
    running.write_bytes(b"being written")
    other = tmp_path / f".other.npz.{gone}.abc123.tmp"  # another file's: not this save's
    other.write_bytes(b"not ours")
    handprop.save(Sequential(Linear(2, 2)), tmp_path / "model.npz")
    assert not stale.exists()
    assert running.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".model")) == [
        running.name
    ]


def test_a18_clip_grad_norm_with_a_negative_order_warns_nothing():
    """torch.nn.utils.clip_grad_norm_ on the same gradients returns tensor(0.), with no
    warning; warnings are errors in this test suite, so a leaked one fails it."""
    from handprop.utils import clip_grad_norm_

    w, b = Parameter(np.zeros((2, 2))), Parameter(np.zeros(2))
    w.grad, b.grad = np.array([[1.0, 0.0], [0.0, 0.0]]), np.ones(2)
    total = clip_grad_norm_([w, b], 1.0, norm_type=-1)
    # per tensor: (sum |g|^-1)^-1 = 0 for w (its zeros), 0.5 for b; then over the two: 0
    assert total == 0.0


# -- first contact: a layer of one's own whose backward returns nothing or the wrong shape --------


class ReturnsNone(Module):
    def forward(self, x):
        return x * 1

    def backward(self, grad_output):
        return None  # forgot the return value


class ReturnsWrongShape(Module):
    def forward(self, x):
        return x * 1

    def backward(self, grad_output):
        return grad_output[:, :1]


@pytest.mark.parametrize(
    ("layer", "what", "kind"),
    [
        (ReturnsNone, "None", TypeError),
        (ReturnsWrongShape, r"an array of shape \(4, 1\) and dtype float32", ValueError),
    ],
)
def test_the_error_names_the_layer_whose_backward_returned_a_bad_gradient(layer, what, kind):
    model = Sequential(Linear(2, 3, rng=0), layer(), Linear(3, 1, rng=1))
    model(np.ones((4, 2), np.float32))
    with pytest.raises(
        kind,
        match=rf"^Sequential\[1\]: {layer.__name__}\(\)\.backward returned {what}; a backward "
        r"must return dJ/d\(its input\)",
    ):
        model.backward(np.ones((4, 1), np.float32))
    assert all(p.grad is None for p in model.parameters())  # the failed backward undone


def test_a_bare_handprop_prints_the_help(capsys):
    from handprop.cli import main

    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: handprop") and "walkthrough" in out and "exercise" in out


def _code_lines():
    """(page, line number, line) of every line inside a fenced code block of docs/."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "docs"
    for page in sorted(root.rglob("*.md")):
        inside = False
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            if line.startswith("```"):
                inside = not inside
            elif inside:
                yield page.relative_to(root), number, line


def test_the_docs_code_boxes_show_no_doctest_directive_and_no_overlong_line():
    """First contact: a reader saw `# doctest: +ELLIPSIS`, and a 318-character error message
    ran far out of its code box (pytest's ELLIPSIS and NORMALIZE_WHITESPACE let an example
    wrap its expected output instead)."""
    directives = [f"{p}:{n}" for p, n, line in _code_lines() if "doctest:" in line]
    assert not directives, directives
    long = [f"{p}:{n} ({len(line)})" for p, n, line in _code_lines() if len(line) > 100]
    assert not long, long


@pytest.mark.torch
def test_sharing_cores_puts_one_thread_in_each_pool_and_then_puts_them_back():
    import torch
    from threadpoolctl import threadpool_info

    from handprop.interop import sharing_cores

    def blas_threads():
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    before, torch_before = blas_threads(), torch.get_num_threads()
    with sharing_cores():
        assert torch.get_num_threads() == 1
        assert blas_threads() and all(n == 1 for n in blas_threads())
    assert blas_threads() == before and torch.get_num_threads() == torch_before
