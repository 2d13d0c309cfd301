"""save / load: a bit-for-bit round trip, atomic writes, and hostile files refused clearly."""

import io
import json
import os
import zipfile

import numpy as np
import pytest

import handprop
from handprop import Sequential, load, save
from handprop import worked_example as we
from handprop.layers import LeakyReLU, Linear, ReLU, Sigmoid, Softmax, Tanh


def every_layer(dtype):
    return Sequential(
        Linear(3, 4, dtype=dtype, rng=0),
        ReLU(),
        Linear(4, 4, bias=False, dtype=dtype, rng=1),
        Tanh(),
        Linear(4, 3, dtype=dtype, rng=2),
        LeakyReLU(0.25),
        Sequential(Linear(3, 2, dtype=dtype, rng=3), Softmax(1)),
        Linear(2, 1, dtype=dtype, rng=4),
        Sigmoid(),
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_round_trip_is_bit_for_bit(tmp_path, dtype):
    model = every_layer(dtype)
    path = tmp_path / "m.npz"
    save(model, path)
    back = load(path)
    assert repr(back) == repr(model)
    assert [n for n, _ in back.named_parameters()] == [n for n, _ in model.named_parameters()]
    for (_, p), (_, q) in zip(model.named_parameters(), back.named_parameters(), strict=True):
        assert q.dtype == p.dtype and q.grad is None
        assert p.data.tobytes() == q.data.tobytes()
    X = np.random.default_rng(0).normal(size=(5, 3))
    np.testing.assert_array_equal(model(X), back(X))


def test_a_single_layer_and_a_string_path(tmp_path):
    path = str(tmp_path / "layer.npz")
    save(Linear(2, 2, rng=5), path)
    assert isinstance(load(path), Linear)
    assert sorted(os.listdir(tmp_path)) == ["layer.npz"]  # no temporary file left behind


def test_a_crash_mid_save_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    save(we.model(), path)
    good = path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        save(every_layer(np.float32), path)
    assert path.read_bytes() == good
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


def write_npz(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def architecture(model_spec):
    return np.array(json.dumps({"format": "handprop", "version": 1, "model": model_spec}))


LINEAR = {"type": "Linear", "in_features": 2, "out_features": 1, "bias": True, "dtype": "float32"}
W = np.ones((1, 2), np.float32)
B = np.ones(1, np.float32)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda p: None, FileNotFoundError, "no such file"),
        (
            lambda p: p.write_text("hello, I am not a model"),
            ValueError,
            "is not a readable handprop model file",
        ),
        (lambda p: p.write_bytes(b""), ValueError, "is not a readable handprop model file"),
        (
            lambda p: write_npz(p, architecture=np.array([{"type": "ReLU"}], dtype=object)),
            ValueError,
            "is not a readable handprop model file: Object arrays cannot be loaded when allow_pickle=False",
        ),
        (lambda p: write_npz(p, **{"param:weight": W}), ValueError, "it has no 'architecture'"),
        (
            lambda p: write_npz(p, architecture=np.array("{not json")),
            ValueError,
            "invalid architecture: Expecting property name",
        ),
        (
            lambda p: write_npz(
                p, architecture=np.array(json.dumps({"format": "other", "version": 1}))
            ),
            ValueError,
            "invalid architecture: format 'other' version 1",
        ),
        (
            lambda p: write_npz(p, architecture=architecture({"type": "Conv2d"})),
            ValueError,
            "invalid architecture: unknown layer type 'Conv2d'; known: Sequential, Linear",
        ),
        (
            lambda p: write_npz(p, architecture=architecture({"type": "Linear", "in_features": 2})),
            ValueError,
            "invalid architecture: Linear is missing 'out_features'",
        ),
        (
            lambda p: write_npz(p, architecture=architecture({**LINEAR, "in_features": -2})),
            ValueError,
            "invalid architecture: Linear: in_features must be a positive int, got -2",
        ),
        (
            lambda p: write_npz(p, architecture=architecture({**LINEAR, "dtype": "int8"})),
            ValueError,
            "invalid architecture: Linear: dtype must be np.float32 or np.float64, got 'int8'",
        ),
        (
            lambda p: write_npz(p, architecture=architecture({**LINEAR, "extra": 1})),
            ValueError,
            r"invalid architecture: Linear has unexpected fields \['extra'\]",
        ),
        (
            lambda p: write_npz(p, architecture=architecture(LINEAR), **{"param:weight": W}),
            ValueError,
            r"do not fit the architecture \(missing \['bias'\], unexpected \[\]\)",
        ),
        (
            lambda p: write_npz(
                p,
                architecture=architecture(LINEAR),
                **{"param:weight": W, "param:bias": B, "evil": B},
            ),
            ValueError,
            r"unexpected \['evil'\]",
        ),
        (
            lambda p: write_npz(
                p,
                architecture=architecture(LINEAR),
                **{"param:weight": np.ones((2, 2), np.float32), "param:bias": B},
            ),
            ValueError,
            r"parameter 'weight' is stored as float32 \(2, 2\), the architecture needs float32 \(1, 2\)",
        ),
        (
            lambda p: write_npz(
                p,
                architecture=architecture(LINEAR),
                **{"param:weight": W.astype(np.float64), "param:bias": B},
            ),
            ValueError,
            r"parameter 'weight' is stored as float64 \(1, 2\), the architecture needs float32",
        ),
    ],
)
def test_hostile_and_broken_files_are_refused_clearly(tmp_path, make, error, message):
    path = tmp_path / "m.npz"
    make(path)
    with pytest.raises(error, match=r"handprop.load: '.*m.npz'.*" + message):
        load(path)


def test_a_truncated_file_is_refused(tmp_path):
    path = tmp_path / "m.npz"
    save(every_layer(np.float64), path)
    data = path.read_bytes()
    for cut in (len(data) // 3, len(data) - 30):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="is not a readable handprop model file"):
            load(path)


def test_a_pickle_inside_is_never_run(tmp_path):
    """A zip member that is a pickle (the classic payload) is refused, not unpickled."""
    import pickle

    good, path = tmp_path / "good.npz", tmp_path / "m.npz"
    save(we.model(), good)
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, "w") as dst:
        for name in src.namelist():
            payload = src.read(name)
            if name == "param:4.bias.npy":  # an object-array .npy: its body is a pickle
                buffer = io.BytesIO()
                np.save(buffer, np.array([os.system], dtype=object), allow_pickle=True)
                payload = buffer.getvalue()
                assert pickle.dumps(os.system)[2:] in payload or b"system" in payload
            dst.writestr(name, payload)
    with pytest.raises(ValueError, match="not a readable handprop model file: Object arrays"):
        load(path)


def test_save_arguments(tmp_path):
    with pytest.raises(TypeError, match="save: expected a handprop Module, got dict"):
        save({"0.weight": W}, tmp_path / "x.npz")

    class MyReLU(ReLU):
        pass

    with pytest.raises(
        TypeError, match="save: cannot describe MyReLU; supported: Sequential, Linear"
    ):
        save(Sequential(Linear(2, 2), MyReLU()), tmp_path / "x.npz")
    with pytest.raises(ValueError, match="is a directory, not a model file"):
        load(tmp_path)
    assert handprop.save is save and handprop.load is load
