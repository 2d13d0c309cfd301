"""``save(model, path)`` and ``load(path)``: a model in one ``.npz`` file, no pickle.

The file holds each parameter as an array (``param:0.weight``, ...) and the architecture as
JSON text (``architecture``), e.g.
``{"format": "handprop", "version": 1, "model": {"type": "Sequential", "modules": [...]}}``.
Loading reads it with ``allow_pickle=False``, so a file can never run code; anything that is
not a well-formed handprop model file raises a ``ValueError`` that says what is wrong.
Saving writes a temporary file next to the target and renames it into place, so a crash
mid-save leaves the old file (or none), never half a file.

Examples:
    >>> import tempfile, pathlib
    >>> from handprop import worked_example
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.npz"
    >>> save(worked_example.model(), path)
    >>> load(path)[4].weight.data
    array([[ 0.5, -0.3]], dtype=float32)
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from typing import Any

import numpy as np

from .layers import LeakyReLU, Linear, ReLU, Sigmoid, Softmax, Tanh
from .module import Module, Sequential

__all__ = ["load", "save"]

FORMAT, VERSION = "handprop", 1
_PARAM = "param:"


def _describe(module: Module) -> dict[str, Any]:
    """The JSON description of a module (exact types only: a subclass may behave otherwise)."""
    kind = type(module)
    if kind is Sequential:
        return {"type": "Sequential", "modules": [_describe(m) for m in module]}
    if kind is Linear:
        return {
            "type": "Linear",
            "in_features": module.in_features,
            "out_features": module.out_features,
            "bias": module.bias is not None,
            "dtype": module.dtype.name,
        }
    if kind is LeakyReLU:
        return {"type": "LeakyReLU", "negative_slope": module.negative_slope}
    if kind is Softmax:
        return {"type": "Softmax", "dim": module.dim}
    if kind in (ReLU, Sigmoid, Tanh):
        return {"type": kind.__name__}
    raise TypeError(
        f"save: cannot describe {kind.__name__}; supported: Sequential, Linear, ReLU, Sigmoid, "
        "Tanh, LeakyReLU, Softmax"
    )


def _build(spec: Any) -> Module:
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"a module description must be an object with a 'type', got {spec!r}")
    kind, args = spec["type"], {k: v for k, v in spec.items() if k != "type"}
    if kind == "Sequential":
        modules = args.pop("modules", None)
        if not isinstance(modules, list) or args:
            raise ValueError("Sequential needs exactly a 'modules' list")
        return Sequential(*(_build(m) for m in modules))
    builders = {
        "Linear": lambda a: Linear(
            a.pop("in_features"), a.pop("out_features"), a.pop("bias"), dtype=a.pop("dtype"), rng=0
        ),
        "LeakyReLU": lambda a: LeakyReLU(a.pop("negative_slope")),
        "Softmax": lambda a: Softmax(a.pop("dim")),
        "ReLU": lambda a: ReLU(),
        "Sigmoid": lambda a: Sigmoid(),
        "Tanh": lambda a: Tanh(),
    }
    if kind not in builders:
        raise ValueError(
            f"unknown layer type {kind!r}; known: {', '.join(['Sequential', *builders])}"
        )
    try:
        module = builders[kind](args)
    except KeyError as missing:
        raise ValueError(f"{kind} is missing {missing}") from None
    if args:
        raise ValueError(f"{kind} has unexpected fields {sorted(args)}")
    return module


def save(model: Module, path: str | os.PathLike) -> None:
    """Write ``model`` (architecture and parameters) to ``path`` atomically."""
    if not isinstance(model, Module):
        raise TypeError(f"save: expected a handprop Module, got {type(model).__name__}")
    description = json.dumps({"format": FORMAT, "version": VERSION, "model": _describe(model)})
    arrays = {_PARAM + name: p.data for name, p in model.named_parameters()}
    arrays["architecture"] = np.array(description)  # a unicode array, not an object array
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic: readers see the old file or the new one
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(path: str | os.PathLike) -> Module:
    """Rebuild the model saved at ``path``: the same layers, names, dtypes and values."""
    path = os.fspath(path)
    where = f"handprop.load: {path!r}"
    try:
        # open the file ourselves: np.load leaves it open when the zip turns out broken
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise FileNotFoundError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise ValueError(f"{where} is a directory, not a model file") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"{where} is not a readable handprop model file: {error}") from None
    if not isinstance(arrays, dict) or "architecture" not in arrays:
        raise ValueError(f"{where} is not a handprop model file: it has no 'architecture'")
    text = arrays.pop("architecture")
    try:
        if text.dtype.kind != "U" or text.ndim != 0:
            raise ValueError("'architecture' is not a text value")
        header = json.loads(str(text))
        if header.get("format") != FORMAT or header.get("version") != VERSION:
            raise ValueError(f"format {header.get('format')!r} version {header.get('version')!r}")
        model = _build(header.get("model"))
    except (ValueError, TypeError, AttributeError) as error:
        raise ValueError(f"{where}: invalid architecture: {error}") from None
    params = dict(model.named_parameters())
    stored = {k[len(_PARAM) :]: v for k, v in arrays.items() if k.startswith(_PARAM)}
    strays = sorted(set(arrays) - {_PARAM + k for k in stored})
    missing, unexpected = sorted(set(params) - set(stored)), sorted(set(stored) - set(params))
    if missing or unexpected or strays:
        raise ValueError(
            f"{where}: the parameters do not fit the architecture (missing {missing}, "
            f"unexpected {unexpected + strays})"
        )
    for name, value in stored.items():
        if value.dtype != params[name].dtype or value.shape != params[name].shape:
            raise ValueError(
                f"{where}: parameter {name!r} is stored as {value.dtype} {value.shape}, the "
                f"architecture needs {params[name].dtype} {params[name].shape}"
            )
    model.load_state_dict(stored)
    return model
