"""The layout docs/architecture.md shows is the code's: every source file is on the page, and
the imports go the way the page says (no circle between the optimizers and the schedules; the
trust tools never import the teaching tools)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import handprop
from handprop import layers
from handprop.module import Module

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "handprop"
PAGE = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")


def _sources() -> list[str]:
    return sorted(
        p.relative_to(SRC).as_posix()
        for p in SRC.rglob("*.py")
        if "templates" not in p.parts  # the exercises' starting files: one line for all
    )


@pytest.mark.parametrize("path", _sources())
def test_every_source_file_is_on_the_architecture_page(path):
    assert f"`{path}`" in PAGE, f"{path} is not on docs/architecture.md"
    assert "`exercises/templates/*.py`" in PAGE


def _imports(path: str) -> set[str]:
    """The handprop modules that ``path`` imports, as dotted names relative to the package
    (``layers``, ``explain.naming``, ...), at any depth of the file (lazy imports too)."""
    tree = ast.parse((SRC / path).read_text(encoding="utf-8"))
    package = Path(path).parent.parts
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - (node.level - 1)])
                module = ".".join([*base, *(node.module.split(".") if node.module else [])])
                names = [module] if node.module else [".".join([*base, a.name]) for a in node.names]
                found.update(n for n in names if n)
            elif node.module and node.module.startswith("handprop"):
                found.add(node.module.removeprefix("handprop").lstrip("."))
        elif isinstance(node, ast.Import):
            found.update(
                a.name.removeprefix("handprop").lstrip(".")
                for a in node.names
                if a.name.startswith("handprop.")
            )
    return found


@pytest.mark.parametrize("path", ["_gradcheck.py", "interop.py", "serialization.py"])
def test_the_trust_tools_do_not_import_the_teaching_tools(path):
    teaching = {m for m in _imports(path) if m.startswith(("explain", "exercises"))}
    assert not teaching, f"{path} imports {sorted(teaching)}"


def test_the_schedules_import_only_the_optimizer_base_class():
    assert {m for m in _imports("optim/lr_scheduler.py") if m.startswith("optim")} == {
        "optim.optimizer"
    }
    assert "optim" not in _imports("optim/optimizer.py")
    assert not {m for m in _imports("optim/_foreach.py") if m.startswith("optim")}


def test_the_import_reader_sees_relative_and_lazy_imports():
    """_imports itself: the test above would pass vacuously if it saw nothing."""
    assert "optim.optimizer" in _imports("optim/lr_scheduler.py")
    assert "naming" in _imports("interop.py") and "layers" in _imports("interop.py")
    assert "explain.diagnose" in _imports("__init__.py")


# -- each layer described once --------------------------------------------------------------


# a few constructions of every exported layer: the arguments a test would give
EXAMPLES = {
    "Linear": [(2, 3), (4, 1, False), {"in_features": 3, "out_features": 2, "dtype": np.float64}],
    "Conv2d": [(2, 4, 3), (4, 2, (3, 1), 2, 1, 1, 2, False), (1, 1, 3, 1, "same")],
    "BatchNorm1d": [(3,), (5, 1e-3, None, False, True), (2, 1e-5, 0.1, True, False)],
    "BatchNorm2d": [(3,), {"num_features": 2, "bias": False, "dtype": np.float64}],
    "LayerNorm": [(4,), ((2, 3), 1e-5, False), ((3,), 1e-6, True, False)],
    "MaxPool2d": [(2,), (3, 2, 1, 2, False, True)],
    "AvgPool2d": [(2,), (3, 1, 1, True, False, 2)],
    "Dropout": [(), (0.25,)],
    "Flatten": [(), (0, -2)],
    "LeakyReLU": [(), (0.2,)],
    "Softmax": [(), (0,)],
    "LogSoftmax": [(1,)],
    "GELU": [(), ("tanh",)],
    "RNNCell": [
        (3, 2),
        (2, 4, False, "relu"),
        {"input_size": 2, "hidden_size": 3, "dtype": np.float64},
    ],
    "LSTMCell": [(3, 2), (2, 4, False), {"input_size": 2, "hidden_size": 3, "dtype": np.float64}],
    "GRUCell": [(3, 2), (2, 4, False)],
    "RNN": [(3, 2), (2, 4, 3, "relu", False, True, 0.5, True)],
    "LSTM": [(3, 2), (2, 4, 2, False, True, 0.25, True), {"input_size": 2, "hidden_size": 3}],
    "GRU": [(3, 2), {"input_size": 2, "hidden_size": 3, "num_layers": 2, "bidirectional": True}],
    "MultiheadAttention": [
        (4, 2),
        (6, 3, 0.25, False, True, True, None, None, True),
        {"embed_dim": 4, "num_heads": 1, "kdim": 4, "vdim": 4, "dtype": np.float64},
    ],
    "TransformerEncoderLayer": [
        (4, 2, 8),
        (6, 3, 5, 0.0, "gelu", 1e-6, False, True, False),
        {"d_model": 4, "nhead": 1, "dim_feedforward": 3, "dtype": np.float64},
    ],
    "TransformerDecoderLayer": [(4, 2, 8), (6, 3, 5, 0.0, "gelu", 1e-6, True, True, False)],
    "Embedding": [
        (5, 3),
        (4, 2, -1),
        {"num_embeddings": 3, "embedding_dim": 2, "dtype": np.float64},
    ],
}


def _built(name):
    cls = getattr(layers, name)
    for args in EXAMPLES.get(name, [()]):
        yield cls(**args) if isinstance(args, dict) else cls(*args)


def _state(module):
    return {k: (np.shape(v), np.asarray(v).dtype) for k, v in module.state_dict().items()}


@pytest.mark.parametrize("name", layers.__all__)
def test_a_layers_config_rebuilds_it_and_state_shapes_says_its_arrays(name):
    """config() (read from the layer's attributes) rebuilds an equal layer; state_shapes
    gives, without building, exactly the arrays a build has; a layer with arrays has its own
    state_shapes (Module's default builds the layer to see, which would allocate)."""
    for module in _built(name):
        config = module.config()
        again = type(module)(**config)
        assert again.config() == config and repr(again) == repr(module)
        shapes = type(module).state_shapes(**config)
        assert {k: (s, d) for k, (s, d, _) in shapes.items()} == _state(module)
        kinds = {k for k, (_, _, kind) in shapes.items() if kind == "parameter"}
        assert kinds == {k for k, _ in module.named_parameters()}
        if shapes:
            assert type(module).state_shapes.__func__ is not Module.state_shapes.__func__


@pytest.mark.parametrize(
    "path", ["serialization.py", "naming.py", "explain/trace.py", "interop.py"]
)
def test_save_load_interop_and_naming_keep_no_table_of_layers(path):
    """They read a layer's config(), state_shapes() and role: none imports a layer by name
    (interop's one exception: Dropout, whose twin draws the same masks)."""
    tree = ast.parse((SRC / path).read_text(encoding="utf-8"))
    named = {
        a.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("layers")
        for a in node.names
    }
    allowed = {"Dropout"} if path == "interop.py" else set()
    assert named & set(layers.__all__) <= allowed, f"{path} imports {sorted(named)}"


class Hardtanh(Module):
    """A layer written for this test only: ``y = clip(x, min_val, max_val)``. It is known to
    nothing in serialization or interop; being exported from handprop.layers is enough."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0) -> None:
        super().__init__()
        self.min_val, self.max_val = float(min_val), float(max_val)

    def forward(self, x):
        self._x = np.asarray(x)
        return np.clip(self._x, self.min_val, self.max_val)

    def backward(self, grad_output):
        inside = (self._x > self.min_val) & (self._x < self.max_val)
        return np.where(inside, grad_output, 0.0)


def test_a_new_layer_reaches_save_load_and_torch_by_being_written(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from handprop.interop import from_torch, to_torch

    monkeypatch.setattr(layers, "Hardtanh", Hardtanh, raising=False)
    monkeypatch.setattr(layers, "__all__", [*layers.__all__, "Hardtanh"])
    model = handprop.Sequential(layers.Linear(2, 3, rng=0), Hardtanh(-0.5, 0.25))
    handprop.save(model, tmp_path / "m.npz")
    back = handprop.load(tmp_path / "m.npz")
    assert type(back[1]) is Hardtanh and back[1].config() == {"min_val": -0.5, "max_val": 0.25}
    twin = to_torch(back)
    assert isinstance(twin[1], torch.nn.Hardtanh) and twin[1].max_val == 0.25
    x = np.array([[0.3, -2.0], [1.0, 0.5]], np.float32)
    np.testing.assert_array_equal(twin(torch.from_numpy(x)).detach().numpy(), model(x))
    assert from_torch(torch.nn.Hardtanh(-2.0, 3.0)).config() == {"min_val": -2.0, "max_val": 3.0}


# -- one contract: every layer guarded the same way by Module ------------------------------


@pytest.mark.parametrize("path", sorted(p.name for p in (SRC / "layers").glob("*.py")))
def test_a_built_in_forward_is_its_math_without_guard_calls_or_flags(path):
    text = (SRC / "layers" / path).read_text(encoding="utf-8")
    for word in ("private(", "freeze(", "_guards_its_arrays"):
        assert word not in text, f"layers/{path} still has {word}"


def _input_for(module):
    if type(module).__name__ == "Embedding":
        return np.random.default_rng(0).integers(0, module.num_embeddings, size=(3, 4))
    shape = {
        "Linear": (2, module.config().get("in_features", 1)),
        "RNNCell": (2, module.config().get("input_size", 1)),
        "LSTMCell": (2, module.config().get("input_size", 1)),
        "GRUCell": (2, module.config().get("input_size", 1)),
        **{name: (5, 2, module.config().get("input_size", 1)) for name in ("RNN", "LSTM", "GRU")},
        "MultiheadAttention": (3, 2, module.config().get("embed_dim", 1)),
        "TransformerEncoderLayer": (3, 2, module.config().get("d_model", 1)),
        "TransformerDecoderLayer": (3, 2, module.config().get("d_model", 1)),
    }.get(type(module).__name__)
    if type(module).__name__ in ("Conv2d", "BatchNorm2d", "MaxPool2d", "AvgPool2d"):
        shape = (
            2,
            module.config().get("in_channels", module.config().get("num_features", 1)),
            6,
            6,
        )
    elif type(module).__name__ == "BatchNorm1d":
        shape = (4, module.num_features)
    elif type(module).__name__ == "LayerNorm":
        shape = (2, *module.normalized_shape)
    return np.random.default_rng(0).normal(size=shape or (3, 4)).astype(np.float32)


@pytest.mark.parametrize("name", layers.__all__)
def test_every_layer_keeps_what_it_needs_whatever_the_caller_does_after_forward(name):
    """The caller's input changed in place after forward, and the output refused an in-place
    edit: backward is what it would have been (Module guards built-in layers as a learner's)."""
    for module in _built(name):
        module.train()
        reference = type(module)(**module.config())
        reference.load_state_dict(module.state_dict())
        for each in (module, reference):  # the same draws in both (a block's children too)
            for part in each.modules():
                if hasattr(part, "rng"):
                    part.rng = np.random.default_rng(1)
        x = _input_for(module)
        y, y_ref = _call(module, x), _call(reference, x.copy())
        outputs = _leaves(y)  # (h', c') of an LSTMCell, (output, (h_n, c_n)) of an LSTM
        for a, b in zip(outputs, _leaves(y_ref), strict=True):
            np.testing.assert_array_equal(a, b)
        x[...] = 7.0
        for a in outputs:
            with pytest.raises(ValueError, match="read-only"):
                a += 1.0
        rng = np.random.default_rng(2)
        g = _like(y, lambda a, rng=rng: rng.normal(size=a.shape).astype(a.dtype))
        gs = g if isinstance(g, tuple) else (g,)
        np.testing.assert_array_equal(module.backward(*gs), reference.backward(*gs))
        for (key, p), (_, q) in zip(
            module.named_parameters(), reference.named_parameters(), strict=True
        ):
            np.testing.assert_array_equal(p.grad, q.grad, err_msg=key)


def _call(module, x):
    """The layer's forward on x: attention's on x as query, key and value."""
    if type(module).__name__ == "MultiheadAttention":
        return module(x, x, x)
    if type(module).__name__ == "TransformerDecoderLayer":  # (x as target and memory)
        return module(x, x)
    return module(x)


def _leaves(value) -> list:
    """The arrays of a (nested) tuple of outputs, in order."""
    if isinstance(value, tuple):
        return [a for item in value for a in _leaves(item)]
    return [value]


def _like(value, make):
    """``make(a)`` for each array of a (nested) tuple of outputs, nested the same."""
    if isinstance(value, tuple):
        return tuple(_like(item, make) for item in value)
    return make(value)


class _Square(Module):
    """y = x^2, with its formulas stated beside its forward and backward, as the library's
    activations state theirs: the derivation shows them, with nothing written there for it."""

    latex = (r"(Z^{[l]})^{2}", r"2 Z^{[l]}")

    @staticmethod
    def derivative(z, a):
        return 2 * z

    def forward(self, x):
        self._x = np.asarray(x)
        return self._x**2

    def backward(self, grad_output):
        return 2 * self._x * grad_output


def test_a_new_activation_reaches_the_derivation_by_stating_its_formulas():
    from handprop.layers import Linear
    from handprop.losses import MSELoss

    model = handprop.Sequential(
        Linear(2, 3, rng=0, dtype=np.float64), _Square(), Linear(3, 1, rng=1, dtype=np.float64)
    )
    X, y = np.array([[0.5, -1.0], [2.0, 0.25]]), np.array([[1.0], [0.0]])
    md = handprop.trace(model, MSELoss(), X, y).to_markdown()
    assert r"A^{[1]} = (Z^{[1]})^{2}" in md and r"2 Z^{[1]}" in md
    assert "up to float64 rounding" in md  # its Jacobian, from its derivative, agrees
