"""save / load: a bit-for-bit round trip, atomic writes, and hostile files refused clearly."""

import io
import json
import os
import re
import zipfile
from collections import OrderedDict

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
            lambda p: write_npz(p, architecture=architecture({"type": "Conv3d"})),
            ValueError,
            "invalid architecture: unknown layer type 'Conv3d'; known: Sequential, AvgPool2d, .*Linear",
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


def test_named_children_round_trip_with_their_names(tmp_path):
    """Sequential(OrderedDict(...)) and a slice that keeps numbers 2, 3: the names are saved
    beside the modules, and the loaded model has the same state_dict keys and values."""
    named = Sequential(OrderedDict(fc1=Linear(2, 3, rng=0), act=ReLU(), fc2=Linear(3, 1, rng=1)))
    numbered_tail = every_layer(np.float32)[2:]
    for model in (named, numbered_tail, Sequential(OrderedDict(block=named))):
        save(model, tmp_path / "m.npz")
        loaded = load(tmp_path / "m.npz")
        assert repr(loaded) == repr(model)
        assert list(loaded.state_dict()) == list(model.state_dict())
        for key, value in model.state_dict().items():
            np.testing.assert_array_equal(loaded.state_dict()[key], value)


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ("fc1", "Sequential's 'names' must be a list of strings, one per module"),
        (["fc1"], "Sequential's 'names' must be a list of strings, one per module"),
        (["fc1", 2], "Sequential's 'names' must be a list of strings, one per module"),
        (["fc1", "fc1"], "Sequential's names must be different, got 'fc1' twice"),
        (["fc1", "a.b"], 'module name can\'t contain ".", got: a.b'),
    ],
)
def test_malformed_names_in_a_file_are_value_errors(tmp_path, names, message):
    spec = {"type": "Sequential", "modules": [LINEAR, {"type": "ReLU"}], "names": names}
    write_npz(tmp_path / "m.npz", architecture=architecture(spec))
    with pytest.raises(ValueError, match=re.escape(message)):
        load(tmp_path / "m.npz")


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

    with pytest.raises(TypeError, match="load: into must be a handprop Module, got dict"):
        load(tmp_path / "x.npz", into={})
    with pytest.raises(ValueError, match="is a directory, not a model file"):
        load(tmp_path)
    assert handprop.save is save and handprop.load is load


# -- hostile files: refused before anything large is read or allocated (reliability F1-F20) ------


def good_file(tmp_path):
    path = tmp_path / "good.npz"
    save(we.model(), path)
    return path


def rewrite(src, dst, change):
    """Copy the zip ``src`` to ``dst`` member by member, ``change(name, bytes)`` -> bytes."""
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst, "w") as b:
        for name in a.namelist():
            b.writestr(name, change(name, a.read(name)))


def peak_bytes_of(action):
    import tracemalloc

    tracemalloc.start()
    try:
        action()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_a_stray_member_is_refused_without_inflating_it(tmp_path):
    """F5: a 64 MiB member of zeros deflates to a few hundred KiB; load must not read it."""
    path = tmp_path / "bomb.npz"
    rewrite(good_file(tmp_path), path, lambda name, data: data)
    with (
        zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as z,
        z.open("zzz.npy", "w") as f,
    ):
        for _ in range(64):
            f.write(bytes(1 << 20))
    assert path.stat().st_size < 1 << 20

    def attempt():
        with pytest.raises(ValueError, match=r"unexpected \['zzz'\]"):
            load(path)

    assert peak_bytes_of(attempt) < 4 << 20


def test_an_architecture_that_asks_for_a_huge_layer_is_refused_before_allocating(tmp_path):
    """F8: 850 bytes asking for Linear(20000, 20000, float64) (3.2 GB) or 100000^2 (80 GB)."""
    for n in (20000, 100000):
        path = tmp_path / f"big{n}.npz"
        spec = {**LINEAR, "in_features": n, "out_features": n, "dtype": "float64"}
        write_npz(path, architecture=architecture(spec))
        assert path.stat().st_size < 2000

        def attempt(path=path):
            with pytest.raises(ValueError, match=r"missing \['bias', 'weight'\]"):
                load(path)

        assert peak_bytes_of(attempt) < 1 << 20


def test_a_header_that_declares_more_than_the_member_holds_is_refused(tmp_path):
    """F6: a .npy header declaring shape (10**13,) float64 over 16 bytes of data."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "<f4", "fortran_order": False, "shape": (10**13,)}
    )
    payload = buffer.getvalue() + bytes(16)
    path = tmp_path / "m.npz"
    spec = {"type": "Sequential", "modules": [LINEAR]}
    write_npz(path, architecture=architecture(spec), **{"param:0.weight": W, "param:0.bias": B})
    rewrite(path, tmp_path / "m2.npz", lambda n, d: payload if n == "param:0.weight.npy" else d)
    with pytest.raises(
        ValueError,
        match=r"not a readable handprop model file: member 'param:0.weight.npy' declares \(10000000000000,\) float32 \(40000000000000 bytes\) but holds 16 bytes",
    ):
        load(tmp_path / "m2.npz")


@pytest.mark.parametrize("depth", [65, 600, 100000])
def test_deeply_nested_architectures_are_refused(tmp_path, depth):
    """F7: JSON nested 600 or 100000 deep (json's RecursionError) and 65 deep (would load,
    then overflow the stack in forward and repr)."""
    text = '{"type": "Sequential", "modules": [' * depth + "]}" * depth
    path = tmp_path / "deep.npz"
    header = '{"format": "handprop", "version": 1, "model": ' + text + "}"
    write_npz(path, architecture=np.array(header))
    with pytest.raises(
        ValueError, match="invalid architecture: .*(nested more than 64 deep|longer than 1048576)"
    ):
        load(path)


def test_a_plain_npy_file_raw_members_and_duplicates_are_value_errors(tmp_path):
    """F1, F2, F19."""
    np.save(tmp_path / "x.npy", np.ones(3))
    with pytest.raises(
        ValueError, match="is not a readable handprop model file: File is not a zip file"
    ):
        load(tmp_path / "x.npy")
    raw = tmp_path / "raw.npz"
    rewrite(good_file(tmp_path), raw, lambda n, d: d)
    with zipfile.ZipFile(raw, "a") as z:
        z.writestr("param:4.bias", b"\x00\x00\x80\x3f")
    with pytest.raises(ValueError, match=r"appears twice|unexpected \['param:4.bias'\]"):
        load(raw)
    dup = tmp_path / "dup.npz"
    rewrite(good_file(tmp_path), dup, lambda n, d: d)
    buffer = io.BytesIO()
    np.save(buffer, np.full((1, 2), 666.0, np.float32))
    with zipfile.ZipFile(dup, "a") as z, pytest.warns(UserWarning, match="Duplicate name"):
        z.writestr("param:4.weight.npy", buffer.getvalue())
    with pytest.raises(ValueError, match="member 'param:4.weight.npy' appears twice"):
        load(dup)


def patch_first_member(path, offset_local, offset_central, value: bytes):
    data = bytearray(path.read_bytes())
    local = data.index(b"PK\x03\x04")
    central = data.index(b"PK\x01\x02")
    data[local + offset_local : local + offset_local + len(value)] = value
    data[central + offset_central : central + offset_central + len(value)] = value
    path.write_bytes(bytes(data))


def test_encrypted_and_unknown_compression_members_are_value_errors(tmp_path):
    """F3 (the 'encrypted' flag bit) and F4 (compression method 99)."""
    path = tmp_path / "enc.npz"
    rewrite(good_file(tmp_path), path, lambda n, d: d)
    patch_first_member(path, 6, 8, b"\x01\x00")  # general purpose flags: encrypted
    with pytest.raises(
        ValueError, match="not a readable handprop model file: member .* is encrypted"
    ):
        load(path)
    path = tmp_path / "method.npz"
    rewrite(good_file(tmp_path), path, lambda n, d: d)
    patch_first_member(path, 8, 10, b"\x63\x00")  # compression method 99
    with pytest.raises(ValueError, match="uses compression method 99, not stored or deflated"):
        load(path)


def test_a_fifo_is_refused_at_once(tmp_path):
    """F12: load() used to block forever opening a named pipe."""
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="is not a regular file"):
        load(fifo)
    loop = tmp_path / "loop.npz"
    os.symlink(loop, loop)
    with pytest.raises(ValueError, match="cannot be read: Too many levels of symbolic links"):
        load(loop)


def test_saved_files_get_a_normal_files_permissions(tmp_path):
    """F17: mkstemp's 0600 used to stick; now umask applies, and an existing file's mode stays."""
    old = os.umask(0o022)
    try:
        save(we.model(), tmp_path / "new.npz")
        assert oct((tmp_path / "new.npz").stat().st_mode & 0o777) == "0o644"
        existing = tmp_path / "shared.npz"
        existing.write_bytes(b"old")
        existing.chmod(0o664)
        save(we.model(), existing)
        assert oct(existing.stat().st_mode & 0o777) == "0o664"
    finally:
        os.umask(old)


def test_temporary_files_are_named_after_the_target_and_removed_on_failure(tmp_path, monkeypatch):
    """F15: a killed save left tmpXXXX.tmp files that said nothing about what they were."""
    seen = []

    def failing_replace(src, dst):
        seen.append(os.path.basename(src))
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        save(we.model(), tmp_path / "model.npz")
    assert seen[0].startswith(".model.npz.") and seen[0].endswith(".tmp")
    assert list(tmp_path.iterdir()) == []


def test_save_writes_through_a_symlink_and_names_a_missing_folder(tmp_path):
    """F18 and F14."""
    (tmp_path / "runs").mkdir()
    target = tmp_path / "runs" / "model.npz"
    save(Linear(2, 2, rng=0), target)
    link = tmp_path / "latest.npz"
    link.symlink_to(target)
    new = Linear(2, 2, rng=1)
    save(new, link)
    assert link.is_symlink()
    np.testing.assert_array_equal(load(target).weight.data, new.weight.data)
    with pytest.raises(
        FileNotFoundError, match=r"save: cannot write '.*nowhere/m.npz': No such file"
    ):
        save(new, tmp_path / "nowhere" / "m.npz")


def test_save_refuses_a_parameter_whose_dtype_load_would_refuse(tmp_path):
    """F20: bias.data replaced by a float64 array in a float32 Linear."""
    layer = Linear(2, 2, rng=0)
    layer.bias.data = layer.bias.data.astype(np.float64)
    with pytest.raises(
        ValueError,
        match=r"save: parameter 'bias' is float64 \(2,\), but its layer declares float32 \(2,\)",
    ):
        save(layer, tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


def test_buffers_round_trip_through_a_registered_layer(tmp_path, monkeypatch):
    """Buffers are saved under 'buffer:' and loaded back (as BatchNorm's are); a
    non-persistent buffer is not saved. The layer is known to nothing in serialization."""

    class Shift(handprop.Module):
        def __init__(self, n):
            super().__init__()
            self.n = n
            self.register_buffer("offset", np.zeros(n, np.float32))
            self.register_buffer("scratch", np.zeros(n, np.float32), persistent=False)

        def forward(self, x):
            return x + self.offset

        def backward(self, grad_output):
            return grad_output

    # a new layer reaches save/load by being exported from handprop.layers: its arguments
    # are read from its attributes (config), its arrays from a build (state_shapes' default)
    monkeypatch.setattr(handprop.layers, "Shift", Shift, raising=False)
    monkeypatch.setattr(handprop.layers, "__all__", [*handprop.layers.__all__, "Shift"])
    model = Sequential(Linear(3, 3, rng=0), Shift(3))
    model[1].offset[...] = [1.0, 2.0, 3.0]
    save(model, tmp_path / "m.npz")
    with zipfile.ZipFile(tmp_path / "m.npz") as z:
        assert "buffer:1.offset.npy" in z.namelist() and not any(
            "scratch" in n for n in z.namelist()
        )
    back = load(tmp_path / "m.npz")
    np.testing.assert_array_equal(back[1].offset, [1.0, 2.0, 3.0])
    assert list(back.state_dict()) == list(model.state_dict())
    rewrite(tmp_path / "m.npz", tmp_path / "m2.npz", lambda n, d: d)
    with zipfile.ZipFile(tmp_path / "m.npz") as a, zipfile.ZipFile(tmp_path / "m3.npz", "w") as b:
        for name in a.namelist():  # the buffer stored as a parameter: refused
            b.writestr(name.replace("buffer:", "param:"), a.read(name))
    with pytest.raises(ValueError, match=r"missing \['1.offset'\], unexpected \['1.offset'\]"):
        load(tmp_path / "m3.npz")


def test_the_deepest_nesting_allowed_loads_and_runs(tmp_path):
    model = Linear(2, 2, rng=0)
    for _ in range(63):
        model = Sequential(model)
    save(model, tmp_path / "deep.npz")
    back = load(tmp_path / "deep.npz")
    X = np.ones((1, 2), np.float32)
    np.testing.assert_array_equal(back(X), model(X))
    assert repr(back).count("Sequential") == 63


class _MyReLU(ReLU):
    """A layer of the learner's own (a subclass: its forward may differ from ReLU's)."""


class _Residual(handprop.Module):
    def __init__(self, width, seed=0, dtype=np.float32):
        super().__init__()
        self.f = Sequential(
            Linear(width, width, rng=seed, dtype=dtype),
            _MyReLU(),
            Linear(width, width, rng=seed + 1, dtype=dtype),
        )

    def forward(self, x):
        return x + self.f(x)

    def backward(self, grad_output):
        return grad_output + self.f.backward(grad_output)


def _blocky(dtype, seed):
    return Sequential(
        Linear(2, 3, rng=seed, dtype=dtype),
        _Residual(3, seed + 1, dtype),
        Linear(3, 1, rng=seed + 3, dtype=dtype),
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_a_model_with_blocks_of_your_own_saves_its_values_and_loads_into_your_code(tmp_path, dtype):
    """save keeps the values of a block it cannot rebuild; load says so, and load(path,
    into=model) puts them into the model built in code (torch's load_state_dict way)."""
    model, path = _blocky(dtype, 0), tmp_path / "m.npz"
    save(model, path)
    with pytest.raises(
        ValueError, match=r"it holds _Residual, a module of your own .* load\(path, into=model\)"
    ):
        load(path)
    fresh = _blocky(dtype, 10)
    assert load(path, into=fresh) is fresh
    for (key, a), (_, b) in zip(
        model.state_dict().items(), fresh.state_dict().items(), strict=True
    ):
        assert a.dtype == b.dtype == dtype and a.tobytes() == b.tobytes(), key
    x = np.array([[0.5, -1.0]], dtype)
    np.testing.assert_array_equal(fresh(x), model(x))


def test_load_into_a_model_that_does_not_fit_changes_nothing(tmp_path):
    path = tmp_path / "m.npz"
    save(we.model(), path)
    other = Sequential(Linear(2, 3), ReLU(), Linear(3, 1))
    wrong_shape = Sequential(Linear(2, 4), ReLU(), Linear(4, 2), ReLU(), Linear(2, 1))
    before = [other.state_dict(), wrong_shape.state_dict()]
    with pytest.raises(
        ValueError, match=r"do not fit the model \(missing \[\], unexpected \['4.bias'"
    ):
        load(path, into=other)
    with pytest.raises(
        ValueError, match=r"parameter '0.weight' is stored as float32 \(3, 2\), the model"
    ):
        load(path, into=wrong_shape)
    for model, values in zip((other, wrong_shape), before, strict=True):
        for key, value in model.state_dict().items():
            np.testing.assert_array_equal(value, values[key])
    plain = we.model(np.float32)
    for p in plain.parameters():
        p.data[...] = 0
    load(path, into=plain)  # a model load could rebuild loads into code as well
    np.testing.assert_array_equal(plain[4].weight.data, we.model()[4].weight.data)
