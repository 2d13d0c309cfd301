"""``save(model, path)`` and ``load(path)``: a model in one ``.npz`` file, no pickle.

The file holds each parameter as an array (``param:0.weight``, ...), each persistent buffer
likewise (``buffer:0.running_mean``), and the architecture as JSON text (``architecture``),
e.g. ``{"format": "handprop", "version": 1, "model": {"type": "Sequential", "modules": [...]}}``;
a Sequential whose children are not numbered 0, 1, 2, ... (named children, or a slice) also
lists their ``"names"``. A model that shares (a module at two places, a parameter held by two
modules: tied weights) lists what it shares under ``"ties"``, and load shares it again.

Loading trusts nothing in the file. It never unpickles (so a file can never run code), and it
checks before it reads: the member names against the architecture, each member's ``.npy``
header (dtype, shape, and the size it declares) against what the architecture needs, and
only then allocates the model and reads the values; so a small file cannot make it allocate
memory that the file does not hold. Anything that is not a well-formed handprop model file
raises a ``ValueError`` that says what is wrong.

Saving writes a temporary file next to the target (``.NAME.PID.XXXX.tmp``, named after it and
the saving process) and renames it into place, so a crash mid-save leaves the old file (or
none), never half a file; the next save of the same file removes the temporary files of saves
whose process is gone (killed mid-write). The new file gets the permissions a plain ``open()``
would give it (or keeps the old file's).

Examples:
    >>> import tempfile, pathlib
    >>> from handprop import worked_example
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.npz"
    >>> save(worked_example.model(), path)
    >>> load(path)[4].weight.data
    array([[ 0.5, -0.3]], dtype=float32)
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import tempfile
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._arrays import float_dtype
from .layers import (
    GELU,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Flatten,
    Identity,
    LayerNorm,
    LeakyReLU,
    Linear,
    LogSoftmax,
    MaxPool2d,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from .layers._functional import _positive_int
from .layers.conv import _pair
from .layers.normalization import _eps, _features, _momentum, _normalized_shape
from .module import Module, Parameter, Sequential, _check_module_name, _sharing

__all__ = ["load", "save"]

FORMAT, VERSION = "handprop", 1
_KINDS = {"param:": "parameter", "buffer:": "buffer"}
_MAX_DEPTH = 64  # Sequentials nested deeper than this are refused (no real model needs more)
_MAX_ARCHITECTURE = 1 << 20  # characters of JSON


# -- what each layer type looks like in the file ------------------------------------------------


@dataclass(frozen=True)
class _Layer:
    """How one layer type is written and rebuilt.

    ``fields``: the JSON fields besides "type"; ``describe``: the module's values for them;
    ``check``: validate the JSON values, return constructor arguments; ``build``: the module;
    ``state``: the state_dict entries the module will have, ``{name: (shape, dtype, kind)}``,
    computed from the checked arguments without building anything.
    """

    cls: type
    fields: tuple[str, ...]
    describe: Callable[[Any], dict[str, Any]]
    check: Callable[[dict[str, Any]], dict[str, Any]]
    build: Callable[..., Module]
    state: Callable[..., dict[str, tuple[tuple[int, ...], np.dtype, str]]]


def _no_state(**_: Any) -> dict:
    return {}


def _check_linear(a: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(a["bias"], bool):
        raise ValueError(f"Linear: bias must be true or false, got {a['bias']!r}")
    return {
        "in_features": _positive_int(a["in_features"], "Linear", "in_features"),
        "out_features": _positive_int(a["out_features"], "Linear", "out_features"),
        "bias": a["bias"],
        "dtype": float_dtype(a["dtype"], "Linear"),
    }


def _linear_state(in_features, out_features, bias, dtype):
    state = {"weight": ((out_features, in_features), dtype, "param:")}
    if bias:
        state["bias"] = ((out_features,), dtype, "param:")
    return state


def _check_leaky(a: dict[str, Any]) -> dict[str, Any]:
    LeakyReLU(a["negative_slope"])  # its own checks
    return {"negative_slope": a["negative_slope"]}


def _check_softmax(a: dict[str, Any]) -> dict[str, Any]:
    Softmax(a["dim"])
    return {"dim": a["dim"]}


def _check_gelu(a: dict[str, Any]) -> dict[str, Any]:
    GELU(a["approximate"])
    return {"approximate": a["approximate"]}


def _flag(a: dict[str, Any], name: str, owner: str) -> bool:
    if not isinstance(a[name], bool):
        raise ValueError(f"{owner}: {name} must be true or false, got {a[name]!r}")
    return a[name]


def _check_batch_norm(a: dict[str, Any]) -> dict[str, Any]:
    """The constructor's checks, without building it (building allocates num_features
    numbers four times before the file's arrays are compared with them)."""
    flags = {k: _flag(a, k, "BatchNorm1d") for k in ("affine", "track_running_stats", "bias")}
    return {
        "num_features": _features(a["num_features"], "BatchNorm1d"),
        "eps": _eps(a["eps"], "BatchNorm1d"),
        "momentum": _momentum(a["momentum"], "BatchNorm1d"),
        **flags,
        "dtype": float_dtype(a["dtype"], "BatchNorm1d"),
    }


def _batch_norm_layer(cls) -> _Layer:
    """BatchNorm1d's and BatchNorm2d's entry: the same arguments and state."""
    return _Layer(
        cls,
        ("num_features", "eps", "momentum", "affine", "track_running_stats", "bias", "dtype"),
        lambda m: {
            "num_features": m.num_features,
            "eps": m.eps,
            "momentum": m.momentum,
            "affine": m.affine,
            "track_running_stats": m.track_running_stats,
            "bias": m.bias is not None,
            "dtype": (m.dtype or np.dtype(np.float32)).name,  # None: nothing stored
        },
        _check_batch_norm,
        lambda dtype, **args: cls(**args, dtype=dtype),
        _batch_norm_state,
    )


def _batch_norm_state(num_features, eps, momentum, affine, track_running_stats, bias, dtype):
    c = (num_features,)
    state = {"weight": (c, dtype, "param:")} if affine else {}
    if affine and bias:
        state["bias"] = (c, dtype, "param:")
    if track_running_stats:
        state["running_mean"] = (c, dtype, "buffer:")
        state["running_var"] = (c, dtype, "buffer:")
        state["num_batches_tracked"] = ((), np.dtype(np.int64), "buffer:")
    return state


def _check_layer_norm(a: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(a["normalized_shape"], list):
        raise ValueError(
            f"LayerNorm: normalized_shape must be a list, got {a['normalized_shape']!r}"
        )
    flags = {k: _flag(a, k, "LayerNorm") for k in ("elementwise_affine", "bias")}
    return {  # the constructor's checks, without allocating its weight
        "normalized_shape": _normalized_shape(tuple(a["normalized_shape"])),
        "eps": _eps(a["eps"], "LayerNorm"),
        **flags,
        "dtype": float_dtype(a["dtype"], "LayerNorm"),
    }


def _layer_norm_state(normalized_shape, eps, elementwise_affine, bias, dtype):
    state = {"weight": (normalized_shape, dtype, "param:")} if elementwise_affine else {}
    if elementwise_affine and bias:
        state["bias"] = (normalized_shape, dtype, "param:")
    return state


def _check_dropout(a: dict[str, Any]) -> dict[str, Any]:
    Dropout(a["p"])
    return {"p": a["p"]}


def _check_conv(a: dict[str, Any]) -> dict[str, Any]:
    """Conv2d's arguments, checked without building it (building would allocate the weight
    before the file's arrays are compared with the shapes it declares)."""
    args = {
        "in_channels": _positive_int(a["in_channels"], "Conv2d", "in_channels"),
        "out_channels": _positive_int(a["out_channels"], "Conv2d", "out_channels"),
        "groups": _positive_int(a["groups"], "Conv2d", "groups"),
        "bias": _flag(a, "bias", "Conv2d"),
        "dtype": float_dtype(a["dtype"], "Conv2d"),
    }
    for name, minimum in (("kernel_size", 1), ("stride", 1), ("dilation", 1)):
        args[name] = _pair(a[name], "Conv2d", name, minimum=minimum)
    padding = a["padding"]
    args["padding"] = (
        padding if padding in ("valid", "same") else _pair(padding, "Conv2d", "padding", minimum=0)
    )
    if args["in_channels"] % args["groups"] or args["out_channels"] % args["groups"]:
        raise ValueError("Conv2d: in_channels and out_channels must be divisible by groups")
    if args["padding"] == "same" and args["stride"] != (1, 1):
        raise ValueError("padding='same' is not supported for strided convolutions")
    return args


def _conv_state(in_channels, out_channels, kernel_size, groups, bias, dtype, **_):
    state = {"weight": ((out_channels, in_channels // groups, *kernel_size), dtype, "param:")}
    if bias:
        state["bias"] = ((out_channels,), dtype, "param:")
    return state


def _pool_fields(m) -> dict[str, Any]:
    fields = {
        "kernel_size": list(m.kernel_size),
        "stride": list(m.stride),
        "padding": list(m.padding),
        "ceil_mode": m.ceil_mode,
    }
    if isinstance(m, MaxPool2d):
        fields["dilation"] = list(m.dilation)
    else:
        fields["count_include_pad"] = m.count_include_pad
        fields["divisor_override"] = m.divisor_override
    return fields


def _check_pool(cls):
    def check(a: dict[str, Any]) -> dict[str, Any]:
        args = {k: (tuple(v) if isinstance(v, list) else v) for k, v in a.items()}
        cls(**args)  # its own checks (a pool holds no arrays)
        return args

    return check


def _check_flatten(a: dict[str, Any]) -> dict[str, Any]:
    Flatten(a["start_dim"], a["end_dim"])
    return {"start_dim": a["start_dim"], "end_dim": a["end_dim"]}


_LAYERS: dict[str, _Layer] = {
    "Linear": _Layer(
        Linear,
        ("in_features", "out_features", "bias", "dtype"),
        lambda m: {
            "in_features": m.in_features,
            "out_features": m.out_features,
            "bias": m.bias is not None,
            "dtype": m.dtype.name,
        },
        _check_linear,
        lambda in_features, out_features, bias, dtype: Linear(
            in_features, out_features, bias, dtype=dtype, rng=0
        ),
        _linear_state,
    ),
    "LeakyReLU": _Layer(
        LeakyReLU,
        ("negative_slope",),
        lambda m: {"negative_slope": m.negative_slope},
        _check_leaky,
        LeakyReLU,
        _no_state,
    ),
    "Softmax": _Layer(
        Softmax, ("dim",), lambda m: {"dim": m.dim}, _check_softmax, Softmax, _no_state
    ),
    "LogSoftmax": _Layer(
        LogSoftmax, ("dim",), lambda m: {"dim": m.dim}, _check_softmax, LogSoftmax, _no_state
    ),
    "GELU": _Layer(
        GELU,
        ("approximate",),
        lambda m: {"approximate": m.approximate},
        _check_gelu,
        GELU,
        _no_state,
    ),
    "BatchNorm1d": _batch_norm_layer(BatchNorm1d),
    "LayerNorm": _Layer(
        LayerNorm,
        ("normalized_shape", "eps", "elementwise_affine", "bias", "dtype"),
        lambda m: {
            "normalized_shape": list(m.normalized_shape),
            "eps": m.eps,
            "elementwise_affine": m.elementwise_affine,
            "bias": m.bias is not None,
            "dtype": (m.dtype or np.dtype(np.float32)).name,  # None: nothing stored
        },
        _check_layer_norm,
        lambda normalized_shape, eps, elementwise_affine, bias, dtype: LayerNorm(
            normalized_shape, eps, elementwise_affine, bias, dtype=dtype
        ),
        _layer_norm_state,
    ),
    "BatchNorm2d": _batch_norm_layer(BatchNorm2d),
    "Conv2d": _Layer(
        Conv2d,
        (
            "in_channels",
            "out_channels",
            "kernel_size",
            "stride",
            "padding",
            "dilation",
            "groups",
            "bias",
            "dtype",
        ),
        lambda m: {
            "in_channels": m.in_channels,
            "out_channels": m.out_channels,
            "kernel_size": list(m.kernel_size),
            "stride": list(m.stride),
            "padding": m.padding if isinstance(m.padding, str) else list(m.padding),
            "dilation": list(m.dilation),
            "groups": m.groups,
            "bias": m.bias is not None,
            "dtype": m.dtype.name,
        },
        _check_conv,
        lambda dtype, **args: Conv2d(**args, dtype=dtype, rng=0),
        _conv_state,
    ),
    "MaxPool2d": _Layer(
        MaxPool2d,
        ("kernel_size", "stride", "padding", "ceil_mode", "dilation"),
        _pool_fields,
        _check_pool(MaxPool2d),
        MaxPool2d,
        _no_state,
    ),
    "AvgPool2d": _Layer(
        AvgPool2d,
        ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
        _pool_fields,
        _check_pool(AvgPool2d),
        AvgPool2d,
        _no_state,
    ),
    "Flatten": _Layer(
        Flatten,
        ("start_dim", "end_dim"),
        lambda m: {"start_dim": m.start_dim, "end_dim": m.end_dim},
        _check_flatten,
        Flatten,
        _no_state,
    ),
    # Dropout: p only; its generator is not saved (a loaded one draws fresh masks)
    "Dropout": _Layer(Dropout, ("p",), lambda m: {"p": m.p}, _check_dropout, Dropout, _no_state),
    **{
        cls.__name__: _Layer(cls, (), lambda m: {}, lambda a: {}, cls, _no_state)
        for cls in (ReLU, Sigmoid, Tanh, Identity)
    },
}


def _describe(module: Module) -> dict[str, Any]:
    """The JSON description of a module (exact types only: a subclass may behave otherwise)."""
    kind = type(module)
    if kind is Sequential:
        spec: dict[str, Any] = {"type": "Sequential", "modules": [_describe(m) for m in module]}
        names = list(module._modules)
        if names != [str(i) for i in range(len(names))]:  # named children, or a slice's numbers
            spec["names"] = names
        return spec
    layer = _LAYERS.get(kind.__name__)
    if layer is None or layer.cls is not kind:
        raise TypeError(
            f"save: cannot describe {kind.__name__}; supported: Sequential, "
            f"{', '.join(_LAYERS)} (a layer of your own can be kept with "
            "model.state_dict() and np.savez, and rebuilt in code)"
        )
    return {"type": kind.__name__, **layer.describe(module)}


@dataclass
class _Plan:
    """A checked architecture: how to build it, and the state entries it will have."""

    build: Callable[[], Module]
    state: dict[str, tuple[tuple[int, ...], np.dtype, str]]


def _plan(spec: Any, prefix: str = "", depth: int = 0) -> _Plan:
    """Check a module description and say what it needs, allocating nothing."""
    if depth >= _MAX_DEPTH:
        raise ValueError(f"Sequentials nested more than {_MAX_DEPTH} deep")
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"a module description must be an object with a 'type', got {spec!r}")
    kind, args = spec["type"], {k: v for k, v in spec.items() if k != "type"}
    if kind == "Sequential":
        return _plan_sequential(args, prefix, depth)
    layer = _LAYERS.get(kind) if isinstance(kind, str) else None
    if layer is None:
        raise ValueError(
            f"unknown layer type {kind!r}; known: {', '.join(['Sequential', *_LAYERS])}"
        )
    missing = [f for f in layer.fields if f not in args]
    if missing:
        raise ValueError(f"{kind} is missing {missing[0]!r}")
    extra = sorted(set(args) - set(layer.fields))
    if extra:
        raise ValueError(f"{kind} has unexpected fields {extra}")
    kwargs = layer.check(args)
    state = {prefix + name: v for name, v in layer.state(**kwargs).items()}
    return _Plan(lambda: layer.build(**kwargs), state)


def _plan_sequential(args: dict[str, Any], prefix: str, depth: int) -> _Plan:
    """A Sequential's description: its ``modules`` and, for named children, their ``names``."""
    modules = args.pop("modules", None)
    if not isinstance(modules, list) or set(args) - {"names"}:
        raise ValueError("Sequential needs exactly a 'modules' list (and optional 'names')")
    names = args.get("names", [str(i) for i in range(len(modules))])
    if (
        not isinstance(names, list)
        or len(names) != len(modules)
        or not all(isinstance(n, str) for n in names)
    ):
        raise ValueError("Sequential's 'names' must be a list of strings, one per module")
    probe, seen = Sequential(), set()  # (a set: a hostile file may hold a million names)
    for name in names:
        if name in seen:
            raise ValueError(f"Sequential's names must be different, got {name!r} twice")
        seen.add(name)
        try:
            _check_module_name(probe, name)  # torch's rules, as Sequential(OrderedDict) applies
        except KeyError as error:
            raise ValueError(error.args[0]) from None
    plans = [_plan(m, f"{prefix}{n}.", depth + 1) for n, m in zip(names, modules, strict=True)]
    state = {k: v for p in plans for k, v in p.state.items()}
    return _Plan(
        lambda: Sequential(OrderedDict((n, p.build()) for n, p in zip(names, plans, strict=True))),
        state,
    )


# -- saving -------------------------------------------------------------------------------------


def save(model: Module, path: str | bytes | os.PathLike) -> None:
    """Write ``model`` (architecture, parameters and buffers) to ``path`` atomically."""
    if not isinstance(model, Module):
        raise TypeError(f"save: expected a handprop Module, got {type(model).__name__}")
    path = os.fsdecode(path)  # a str, bytes or path-like name, as load takes
    if os.path.isdir(path):
        raise IsADirectoryError(f"save: cannot write {path!r}: it is a directory")
    description = _describe(model)
    expected = _plan(description).state
    arrays = {}
    for key, value in model._state_entries():
        array = value.data if isinstance(value, Parameter) else value
        shape, dtype, prefix = expected[key]
        if array.shape != shape or array.dtype != dtype:
            raise ValueError(
                f"save: {_KINDS[prefix]} {key!r} is {array.dtype} {array.shape}, but its layer "
                f"declares {dtype} {shape} (was .data replaced?); load() would refuse the file"
            )
        arrays[prefix + key] = array
    header = {"format": FORMAT, "version": VERSION, "model": description}
    ties = _sharing(model)
    if ties["modules"] or ties["parameters"]:
        header["ties"] = ties
    arrays["architecture"] = np.array(json.dumps(header))  # a unicode array, not an object one
    _write_atomically(path, arrays)


def _write_atomically(path: str, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` into a temporary file beside ``path``, then rename it into place."""
    if os.path.islink(path):
        path = os.path.realpath(path)  # write through a symlink, as open() would
    folder, name = os.path.split(os.path.abspath(path))
    _remove_stale_temporaries(folder, name)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.{os.getpid()}.", suffix=".tmp")
    except OSError as error:
        raise type(error)(error.errno, f"save: cannot write {path!r}: {error.strerror}") from None
    try:
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)  # an existing file keeps its mode
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask  # what open() would give a new file
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic: readers see the old file or the new one
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _remove_stale_temporaries(folder: str, name: str) -> None:
    """Remove the temporary files that saves of this same file left behind when they were
    killed mid-write (``.NAME.PID.XXXX.tmp``): those whose process no longer runs on this
    machine. A save still running in another process keeps its own."""
    prefix = f".{name}."
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        if not (entry.startswith(prefix) and entry.endswith(".tmp")):
            continue
        pid = entry[len(prefix) :].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, entry))


def _running(pid: int) -> bool:
    """Whether process ``pid`` may still be running (True when it cannot be told)."""
    if os.name != "posix":  # (on Windows os.kill(pid, 0) would stop the process)
        return True
    try:
        os.kill(pid, 0)  # signal 0 on POSIX: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists (another user's), or we cannot tell: leave its file alone
    return True


# -- loading ------------------------------------------------------------------------------------


class _Unreadable(ValueError):
    """The file is not a readable model file (its zip or .npy structure is broken)."""


def load(path: str | os.PathLike) -> Module:
    """Rebuild the model saved at ``path``: the same layers, names, dtypes and values."""
    path = os.fspath(path)
    where = f"handprop.load: {path!r}"
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{where}: no such file") from None
    except OSError as error:  # a symlink loop, a name too long, ...
        raise ValueError(f"{where} cannot be read: {error.strerror}") from None
    if stat.S_ISDIR(mode):
        raise ValueError(f"{where} is a directory, not a model file")
    if not stat.S_ISREG(mode):
        raise ValueError(f"{where} is not a regular file (a pipe or a device is never read)")
    try:
        with open(path, "rb") as f, zipfile.ZipFile(f) as archive:
            return _load(archive, where)
    except _Unreadable as error:
        raise ValueError(f"{where} is not a readable handprop model file: {error}") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError) as error:
        reason = str(error) or type(error).__name__  # (a bare EOFError says nothing)
        raise ValueError(f"{where} is not a readable handprop model file: {reason}") from None


def _load(archive: zipfile.ZipFile, where: str) -> Module:
    members = _members(archive)
    if "architecture" not in members:
        raise ValueError(f"{where} is not a handprop model file: it has no 'architecture'")
    try:
        model_spec, ties = _architecture(archive, members.pop("architecture"))
        plan = _plan(model_spec)
    except (ValueError, TypeError, AttributeError, RecursionError) as error:
        if isinstance(error, _Unreadable):
            raise
        if isinstance(error, RecursionError):
            error = ValueError(f"nested more than {_MAX_DEPTH} deep")
        raise ValueError(f"{where}: invalid architecture: {error}") from None
    stored = {}
    for name in members:
        prefix = next((p for p in _KINDS if name.startswith(p)), "")
        stored[name[len(prefix) :] if prefix else name] = prefix
    expected = {key: prefix for key, (_, _, prefix) in plan.state.items()}
    missing = sorted(k for k in expected if stored.get(k) != expected[k])
    unexpected = sorted(
        (k if prefix == "param:" else prefix + k)
        for k, prefix in stored.items()
        if expected.get(k) != prefix
    )
    if missing or unexpected:
        raise ValueError(
            f"{where}: the parameters do not fit the architecture (missing {missing}, "
            f"unexpected {unexpected})"
        )
    headers = {}
    for key, (shape, dtype, prefix) in plan.state.items():  # every header, before any data
        info = members[prefix + key]
        header = _npy_header(archive, info)
        if header[1] != dtype or header[0] != shape:
            raise ValueError(
                f"{where}: {_KINDS[prefix]} {key!r} is stored as {header[1]} {header[0]}, the "
                f"architecture needs {dtype} {shape}"
            )
        headers[key] = header
    # the values, read before anything is built: a member whose directory entry claims more
    # bytes than the archive holds is refused having cost only the bytes it really holds
    values = {
        key: _npy_data(archive, members[p + key], headers[key])
        for key, (_, _, p) in plan.state.items()
    }
    model = plan.build()
    model.load_state_dict(values)
    _tie(model, ties, values, where)
    return model


def _check_ties(ties: Any, modules: dict, values: dict[str, np.ndarray], where: str) -> None:
    """A file's ties, checked before anything is shared: names the model has, groups of two or
    more, and tied parameters that hold equal values."""
    if not isinstance(ties, dict) or set(ties) != {"modules", "parameters"}:
        raise ValueError(f"{where}: 'ties' must hold 'modules' and 'parameters'")
    for kind, known in (("modules", modules), ("parameters", values)):
        groups = ties[kind]
        if not isinstance(groups, list) or not all(
            isinstance(g, list) and len(g) > 1 and all(isinstance(n, str) and n in known for n in g)
            for g in groups
        ):
            raise ValueError(f"{where}: 'ties' lists {kind} that the model does not have")
    for keys in ties["parameters"]:
        if not all(np.array_equal(values[keys[0]], values[k]) for k in keys[1:]):
            raise ValueError(f"{where}: the tied parameters {keys} hold different values")
    for paths in ties["modules"]:  # one module at several places: the same layer, the same state
        if "" in paths or not all(_same_layer(modules[p], modules[paths[0]]) for p in paths[1:]):
            raise ValueError(f"{where}: the tied modules {paths} are not the same layer")


def _same_layer(a: Module, b: Module) -> bool:
    """Whether two modules a file ties are copies of one layer: type, arguments and state."""
    if type(a) is not type(b) or repr(a) != repr(b):
        return False
    return all(
        np.array_equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def _tie(model: Module, ties: Any, values: dict[str, np.ndarray], where: str) -> None:
    """Share again what the saved model shared (see ``module._sharing``): each later place of a
    module gets the first place's object, each later holder of a parameter the first's
    ``Parameter``. Checked first: the names exist, and tied entries are equal."""
    if ties is None:
        return
    modules = dict(model._walk())
    _check_ties(ties, modules, values, where)
    for paths in ties["modules"]:
        for path in paths[1:]:
            parent, _, name = path.rpartition(".")
            modules[parent]._modules[name] = modules[paths[0]]
    for keys in ties["parameters"]:
        first_path, _, first_name = keys[0].rpartition(".")
        shared = modules[first_path]._parameters[first_name]
        for key in keys[1:]:
            path, _, name = key.rpartition(".")
            setattr(modules[path], name, shared)


def _members(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The archive's ``.npy`` members by name (without ``.npy``), checked for what a reader
    could disagree on or cannot read: duplicates, encryption, unknown compression."""
    members: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        if name in members:
            raise _Unreadable(f"member {info.filename!r} appears twice")
        if info.flag_bits & 0x1:
            raise _Unreadable(f"member {info.filename!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _Unreadable(
                f"member {info.filename!r} uses compression method {info.compress_type}, "
                "not stored or deflated"
            )
        if not info.filename.endswith(".npy"):
            name = info.filename  # listed as unexpected by the caller, never read
        members[name] = info
    return members


def _npy_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo):
    """``(shape, dtype, fortran_order, header bytes)`` of a ``.npy`` member, read from its
    first bytes; its declared size must equal the member's size in the zip directory."""
    with archive.open(info) as f:
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        except ValueError as error:
            raise _Unreadable(f"member {info.filename!r}: {error}") from None
        offset = f.tell()
    if dtype.hasobject:
        raise _Unreadable("Object arrays cannot be loaded when allow_pickle=False")
    nbytes = math.prod(shape) * dtype.itemsize
    if offset + nbytes != info.file_size:
        raise _Unreadable(
            f"member {info.filename!r} declares {shape} {dtype} ({nbytes} bytes) but holds "
            f"{info.file_size - offset} bytes"
        )
    return shape, dtype, fortran, offset


_CHUNK = 1 << 20  # bytes read at a time: memory grows only with what the file really holds


def _npy_data(archive: zipfile.ZipFile, info: zipfile.ZipInfo, header) -> np.ndarray:
    """A member's values, read a chunk at a time (never one read of the size its header or
    the zip directory claims: those are the file's word, not its contents)."""
    shape, dtype, fortran, offset = header
    nbytes = math.prod(shape) * dtype.itemsize
    data = bytearray()
    try:
        with archive.open(info) as f:
            f.read(offset)
            while len(data) < nbytes:
                chunk = f.read(min(nbytes - len(data), _CHUNK))
                if not chunk:
                    break
                data += chunk
    except EOFError:
        pass  # (the archive ended inside the member: said below)
    if len(data) != nbytes:
        raise _Unreadable(
            f"member {info.filename!r} is truncated: its header declares {nbytes} bytes of "
            f"values, the archive holds {len(data)}"
        )
    array = np.frombuffer(data, dtype=dtype)
    return array.reshape(shape[::-1]).T if fortran else array.reshape(shape)


def _architecture(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Any:
    """The architecture's model description and its ties, checked for format and version."""
    shape, dtype, fortran, offset = _npy_header(archive, info)
    if dtype.kind != "U" or shape != ():
        raise ValueError("'architecture' is not a text value")
    if dtype.itemsize > 4 * _MAX_ARCHITECTURE:
        raise ValueError(f"'architecture' is longer than {_MAX_ARCHITECTURE} characters")
    header = json.loads(str(_npy_data(archive, info, (shape, dtype, fortran, offset))[()]))
    if not isinstance(header, dict):
        raise ValueError("the architecture is not a JSON object")
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise ValueError(f"format {header.get('format')!r} version {header.get('version')!r}")
    return header.get("model"), header.get("ties")
