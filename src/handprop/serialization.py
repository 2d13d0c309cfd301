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
import inspect
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

from . import layers
from .layers import _exported
from .module import (
    Module,
    Parameter,
    Sequential,
    _check_module_name,
    _constructor_arguments,
    _sharing,
)

__all__ = ["load", "save"]

FORMAT, VERSION = "handprop", 1
_KINDS = {"param:": "parameter", "buffer:": "buffer"}
_MAX_DEPTH = 64  # Sequentials nested deeper than this are refused (no real model needs more)
_MAX_ARCHITECTURE = 1 << 20  # characters of JSON


# -- what each layer looks like in the file: its config(), read from the layer itself ---------


_PREFIXES = {"parameter": "param:", "buffer": "buffer:"}
_CUSTOM = "custom"  # a module of the learner's own: its values are in the file, not its code


class _Custom(ValueError):
    """The file holds a module of the learner's own, which only their code can build."""

    def __init__(self, name: Any) -> None:
        super().__init__(
            f"it holds {name if isinstance(name, str) else 'a module'}, a module of your own "
            "that only your code can build: build the model, then load(path, into=model)"
        )


def _describe(module: Module) -> dict[str, Any]:
    """The JSON description of a module: its type and its ``config()`` (exact types only: a
    subclass may behave otherwise)."""
    kind = type(module)
    if kind is Sequential:
        spec: dict[str, Any] = {"type": "Sequential", "modules": [_describe(m) for m in module]}
        names = list(module._modules)
        if names != [str(i) for i in range(len(names))]:  # named children, or a slice's numbers
            spec["names"] = names
        return spec
    if _exported(kind.__name__) is not kind:  # a layer or block of your own: its values are
        return {"type": _CUSTOM, "class": kind.__name__}  # saved, its code is yours to keep
    return {"type": kind.__name__, **_json_values(module.config())}


def _json_values(config: dict[str, Any]) -> dict[str, Any]:
    """Tuples as lists (JSON has no tuples; load turns them back), and an argument that is a
    module (a transformer layer's activation) as ``{"module": its description}``."""
    return {k: _json_value(v) for k, v in config.items()}


def _json_value(value: Any) -> Any:
    if isinstance(value, Module):
        return {"module": _describe(value)}
    return list(value) if isinstance(value, tuple) else value


def _arguments(value: Any, depth: int = 0) -> Any:
    """A JSON value as a constructor argument: lists become tuples, as torch's take them, and
    a module's description the module (checked as any layer's, and no deeper than any)."""
    if isinstance(value, dict) and set(value) == {"module"}:
        return _plan(value["module"], depth=depth + 1).build()
    return tuple(_arguments(v, depth) for v in value) if isinstance(value, list) else value


@dataclass
class _Plan:
    """A checked architecture: how to build it, and the state entries it will have."""

    build: Callable[[], Module]
    state: dict[str, tuple[tuple[int, ...], np.dtype, str]]


def _plan(spec: Any, prefix: str = "", depth: int = 0) -> _Plan:
    """Check a module description and say what it needs, allocating nothing: the layer's own
    ``state_shapes`` says what arrays its arguments make, and checks them."""
    if depth >= _MAX_DEPTH:
        raise ValueError(f"Sequentials nested more than {_MAX_DEPTH} deep")
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"a module description must be an object with a 'type', got {spec!r}")
    kind, args = spec["type"], {k: v for k, v in spec.items() if k != "type"}
    if kind == "Sequential":
        return _plan_sequential(args, prefix, depth)
    if kind == _CUSTOM:
        raise _Custom(args.get("class"))
    args = {k: _arguments(v, depth) for k, v in args.items()}
    cls = _exported(kind)
    if cls is None:
        raise ValueError(
            f"unknown layer type {kind!r}; known: Sequential, {', '.join(sorted(layers.__all__))}"
        )
    fields, signature = _constructor_arguments(cls), inspect.signature(cls).parameters
    missing = [f for f in fields if f not in args and signature[f].default is signature[f].empty]
    if missing:
        raise ValueError(f"{kind} is missing {missing[0]!r}")
    extra = sorted(set(args) - set(fields))
    if extra:
        raise ValueError(f"{kind} has unexpected fields {extra}")
    shapes = cls.state_shapes(**args)
    state = {prefix + k: (tuple(s), np.dtype(d), _PREFIXES[w]) for k, (s, d, w) in shapes.items()}
    seed = {"rng": 0} if "rng" in signature else {}  # the values come from the file anyway
    return _Plan(lambda: cls(**args, **seed), state)


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
    try:
        expected = _plan(description).state
    except _Custom:  # a block of the learner's own inside: its state as the model has it
        expected = {key: _entry(value) for key, value in model._state_entries()}
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


def _entry(value: Any) -> tuple[tuple[int, ...], np.dtype, str]:
    array = value.data if isinstance(value, Parameter) else value
    return array.shape, array.dtype, "param:" if isinstance(value, Parameter) else "buffer:"


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


def load(path: str | os.PathLike, *, into: Module | None = None) -> Module:
    """Rebuild the model saved at ``path``: the same layers, names, dtypes and values.

    ``into=model``: load the values into a model you built in code instead, and return it (a
    model with blocks or layers of your own, whose code no file holds, as torch's
    ``model.load_state_dict(torch.load(path))``). Its parameters and buffers must be the
    file's, name for name, shape for shape and dtype for dtype; nothing is changed otherwise.
    """
    if into is not None and not isinstance(into, Module):
        raise TypeError(f"load: into must be a handprop Module, got {type(into).__name__}")
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
            return _load(archive, where, into)
    except _Unreadable as error:
        raise ValueError(f"{where} is not a readable handprop model file: {error}") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError) as error:
        reason = str(error) or type(error).__name__  # (a bare EOFError says nothing)
        raise ValueError(f"{where} is not a readable handprop model file: {reason}") from None


def _load(archive: zipfile.ZipFile, where: str, into: Module | None) -> Module:
    members = _members(archive)
    if "architecture" not in members:
        raise ValueError(f"{where} is not a handprop model file: it has no 'architecture'")
    plan, ties = _planned(archive, members.pop("architecture"), where, into)
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
            f"{where}: the parameters do not fit the {'model' if into else 'architecture'} "
            f"(missing {missing}, unexpected {unexpected})"
        )
    headers = {}
    for key, (shape, dtype, prefix) in plan.state.items():  # every header, before any data
        info = members[prefix + key]
        header = _npy_header(archive, info)
        if header[1] != dtype or header[0] != shape:
            raise ValueError(
                f"{where}: {_KINDS[prefix]} {key!r} is stored as {header[1]} {header[0]}, the "
                f"{'model' if into else 'architecture'} needs {dtype} {shape}"
            )
        headers[key] = header
    # the values, read before anything is built: a member whose directory entry claims more
    # bytes than the archive holds is refused having cost only the bytes it really holds
    values = {
        key: _npy_data(archive, members[p + key], headers[key])
        for key, (_, _, p) in plan.state.items()
    }
    try:  # the constructors' own checks of the arguments the file gives
        model = plan.build()
    except (ValueError, TypeError) as error:
        raise ValueError(f"{where}: invalid architecture: {error}") from None
    model.load_state_dict(values)
    _tie(model, ties, values, where)
    return model


def _planned(archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, into: Module | None):
    """The file's architecture, checked: its plan (or, loading ``into`` a model built in code,
    what that model holds) and its ties; a ``ValueError`` saying what is wrong otherwise."""
    try:
        model_spec, ties = _architecture(archive, info)
        if into is None:
            return _plan(model_spec), ties
        state = {key: _entry(value) for key, value in into._state_entries()}
        return _Plan(lambda: into, state), None  # (the model's own code shares what it shares)
    except (ValueError, TypeError, AttributeError, RecursionError) as error:
        if isinstance(error, _Unreadable):
            raise
        if isinstance(error, _Custom):
            raise ValueError(f"{where}: {error}") from None
        if isinstance(error, RecursionError):
            error = ValueError(f"nested more than {_MAX_DEPTH} deep")
        raise ValueError(f"{where}: invalid architecture: {error}") from None


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
