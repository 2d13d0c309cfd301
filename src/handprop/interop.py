"""PyTorch interop: models both ways, and a per-tensor parity report against torch autograd.

torch is imported only when one of these functions runs, so ``import handprop.interop`` works
without it; calling them without torch raises an ``ImportError`` that says what to install.

- ``to_torch(model)``: the equivalent ``torch.nn.Sequential`` (or single layer), same weights
  and dtype;
- ``from_torch(module)``: a handprop model from a torch ``Sequential`` of supported layers;
- ``to_torch_loss(loss)``: the equivalent torch loss module;
- ``parity_report(model, loss_fn, X, y)``: every forward value, every intermediate gradient,
  dJ/dX and every parameter gradient, handprop against torch, with per-dtype tolerances.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import sys
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import layers, losses
from .layers import Dropout, _exported
from .module import Module, Sequential, _constructor_arguments, _sharing
from .naming import output_names

__all__ = [
    "TOLERANCES",
    "ParityReport",
    "compare",
    "from_torch",
    "parity_report",
    "same_mask_dropout",
    "sharing_cores",
    "to_torch",
    "to_torch_loss",
]

#: Per-dtype tolerance of the parity checks: a value passes when
#: ``|handprop - torch| <= rtol * |torch| + atol * scale``, ``scale`` being the size of the
#: terms it was summed from (by default its largest reference value, at least 1). Measured
#: with benchmarks/measure_tolerances.py: every tensor of ~40000 compared passed at 7.0e-7
#: (float32) and 2.2e-15 (float64); these bounds leave margins of 14x and 45x.
TOLERANCES = {
    np.dtype(np.float32): {"rtol": 1e-5, "atol": 1e-5},
    np.dtype(np.float64): {"rtol": 1e-13, "atol": 1e-13},
}


def _torch():
    try:
        import torch
    except ImportError as error:  # pragma: no cover - exercised in a torch-free environment
        raise ImportError(
            "handprop.interop needs PyTorch, which is not installed: "
            "pip install 'handprop[torch]' (or pip install torch)"
        ) from error
    return torch


@contextlib.contextmanager
def sharing_cores() -> Iterator[None]:
    """Inside: NumPy's BLAS and torch each on one thread, so that, training side by side in
    one process, they do not fight over the cores; both as they were afterwards.

    Why: OpenBLAS and torch each start a thread per core, and their threads spin while they
    wait, so each pool keeps the other's threads waiting. On 2 cores, examples/train_cnn.py
    took 6.0 s an epoch on MNIST with both pools, 3.5 s with one thread each. And torch's
    float32 sums then come in one order: the digits example's loss curves end 2.8e-7 apart
    instead of 4.7e-4 (torch's own multithreaded sums drift that far over 20 epochs). NumPy's
    limit needs ``threadpoolctl`` (scikit-learn installs it); without it only torch's is set.
    """
    torch = sys.modules.get("torch")
    previous = torch.get_num_threads() if torch is not None else None
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        limits: Any = contextlib.nullcontext()
    else:
        limits = threadpool_limits(limits=1, user_api="blas")
    try:
        if torch is not None:
            torch.set_num_threads(1)
        with limits:
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(previous)


def _torch_dtype(dtype: np.dtype):
    torch = _torch()
    return {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[dtype]


# -- models, both ways ------------------------------------------------------------------------


def _layer_to_torch(module: Module):
    """torch's layer of the same name, built from the layer's ``config()`` (torch's names),
    with its parameters and buffers copied and its train/eval mode."""
    nn = _torch().nn
    if type(module) is Sequential:
        children = OrderedDict((name, _layer_to_torch(m)) for name, m in module._modules.items())
        return nn.Sequential(children).train(module.training)
    # the layer's own class, or for a learner's subclass of one (a ReLU with its own backward,
    # say) the library layer it claims to be: its twin is what parity_report compares it with
    kind = next(
        (c.__name__ for c in type(module).__mro__ if _exported(c.__name__) is c),
        type(module).__name__,
    )
    if not hasattr(nn, kind) or _exported(kind) is None:
        raise TypeError(f"to_torch: no torch equivalent for {type(module).__name__}")
    config = module.config()
    if "dtype" in config:
        config["dtype"] = _torch_dtype(np.dtype(config["dtype"]))
    for name, value in config.items():  # an argument that is a module (an activation)
        if isinstance(value, Module):
            config[name] = _layer_to_torch(value)
    twin = getattr(nn, kind)(**config)
    _copy_state_to_torch(module, twin)  # parameters and running statistics
    return twin.train(module.training)  # Dropout's and BatchNorm's mode matter


def _copy_state_to_torch(module: Module, twin) -> None:
    """Parameters and buffers, by their shared state_dict names (copied, not shared)."""
    torch = _torch()
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in module.state_dict().items()})


def to_torch(model: Module):
    """The torch module equivalent to ``model``: same layers, weights (copied) and dtype.

    Examples (these need torch):
        >>> from handprop import worked_example
        >>> print(to_torch(worked_example.model())[:2])
        Sequential(
          (0): Linear(in_features=2, out_features=3, bias=True)
          (1): ReLU()
        )
    """
    twin = _layer_to_torch(model)
    _share_in_torch(model, twin)
    return twin


def _share_in_torch(model: Module, twin) -> None:
    """What ``model`` shares (a module at several places, a parameter held by two modules: see
    ``module._sharing``), shared in its torch twin too, so that torch sums the gradients of
    every use into one parameter as handprop does."""
    shared = _sharing(model)
    for paths in shared["modules"]:
        first = twin.get_submodule(paths[0])
        for path in paths[1:]:
            parent, _, name = path.rpartition(".")
            twin.get_submodule(parent)._modules[name] = first
    for keys in shared["parameters"]:
        first_path, _, first_name = keys[0].rpartition(".")
        param = getattr(twin.get_submodule(first_path), first_name)
        for key in keys[1:]:
            path, _, name = key.rpartition(".")
            setattr(twin.get_submodule(path), name, param)


def _layer_from_torch(module, where: str) -> Module:
    """handprop's layer of the same name, built from the torch layer's attributes (the names
    of handprop's constructor arguments are torch's), values copied."""
    nn = _torch().nn
    if type(module) is nn.Sequential:
        return Sequential(
            OrderedDict(
                (name, _layer_from_torch(m, f"{where}{name}."))
                for name, m in module.named_children()
            )
        )
    place = where.rstrip(".") or "(root)"
    if any(t.is_meta for t in module.state_dict().values()):
        raise TypeError(
            f"from_torch: {type(module).__name__} at '{place}' is on the meta device and has no "
            "values to copy; materialise it first (module.to_empty(device='cpu') and "
            "initialise it)"
        )
    kind = type(module).__name__
    ours = _exported(kind)
    if ours is None or type(module) is not getattr(nn, kind):
        raise _unsupported(module, place, "")
    names = _constructor_arguments(ours)
    config = {name: _torch_argument(module, name, place) for name in names}
    seed = {"rng": 0} if "rng" in inspect.signature(ours).parameters else {}
    try:
        layer = ours(**config, **seed)
    except (TypeError, ValueError) as error:  # e.g. Softmax(dim=None), padding_mode='reflect'
        raise _unsupported(module, place, f" (handprop's {error})") from None
    theirs, twin = _settings(module, names), _settings(_layer_to_torch(layer), names)
    if theirs != twin:  # a setting of torch's that handprop's layer does not take
        raise _unsupported(module, place, f" (handprop's {kind} has {twin})")
    layer.load_state_dict({k: v.detach().cpu().numpy() for k, v in module.state_dict().items()})
    return layer.train(module.training)


def _torch_argument(module, name: str, place: str) -> Any:
    """One constructor argument of a torch layer, read as handprop's ``config()`` reads it."""
    torch = _torch()
    if name == "dtype":
        floats = [t.dtype for t in module.state_dict().values() if t.is_floating_point()]
        dtype = floats[0] if floats else torch.float32  # no arrays: the default
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(
                f"from_torch: {type(module).__name__} at '{place}' has dtype {dtype}; handprop "
                "supports float32 and float64"
            )
        return np.float32 if dtype == torch.float32 else np.float64
    ours = _exported(type(module).__name__)
    alias = getattr(ours, "_torch_attributes", {}).get(name)
    if callable(alias):  # an argument torch keeps only in its children: read back from them
        return alias(module)
    if alias is not None:  # an argument torch keeps only as the parameter it creates
        return getattr(module, alias) is not None
    value = getattr(module, name)
    if name == "bias" and (value is None or isinstance(value, torch.nn.Parameter)):
        return value is not None
    return value


def _settings(module, taken: list[str]) -> dict[str, Any]:
    """A torch layer's public settings that handprop's constructor does not take (``inplace``
    aside: it changes no number), so a conversion can check they are torch's defaults."""
    skip = {*taken, "training", "inplace"}
    return {k: v for k, v in vars(module).items() if not k.startswith("_") and k not in skip}


def _unsupported(module, place: str, why: str) -> TypeError:
    nn = _torch().nn
    known = ("Sequential", *layers.__all__)
    subclass = next((n for n in known if isinstance(module, getattr(nn, n, ()))), None)
    hint = (
        f" (a subclass of {subclass}: its forward may differ, so it is not converted)"
        if subclass and type(module) is not getattr(nn, subclass)
        else why
    )
    return TypeError(
        f"from_torch: unsupported module at '{place}': {module!r}{hint}; supported: "
        f"Sequential, {', '.join(sorted(n for n in layers.__all__ if hasattr(nn, n)))} "
        "(float32/float64)"
    )


def from_torch(module) -> Module:
    """A handprop model equivalent to a torch ``Sequential`` (or single layer) of supported
    layers; an unsupported one raises a ``TypeError`` naming it and where it sits.

    Children keep their names (``OrderedDict(fc1=..., act=..., fc2=...)`` comes back with
    ``fc1.weight`` in its ``state_dict``). Values are copied, never shared, and buffers come
    along with parameters."""
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torch: expected a torch.nn.Module, got {type(module).__name__}")
    return _layer_from_torch(module, "")


def to_torch_loss(loss, dtype: Any = np.float32):
    """torch's loss of the same name, built from the loss's ``config()`` (torch's argument
    names; its weights as tensors of ``dtype``)."""
    torch = _torch()
    nn = torch.nn
    kind = next(
        (c.__name__ for c in type(loss).__mro__ if c.__name__ in losses.__all__),
        type(loss).__name__,
    )
    if not isinstance(loss, Module) or kind not in losses.__all__ or not hasattr(nn, kind):
        raise TypeError(f"to_torch_loss: no torch equivalent for {type(loss).__name__}")
    tdt = _torch_dtype(np.dtype(dtype))
    config = {
        name: torch.tensor(value, dtype=tdt) if isinstance(value, np.ndarray) else value
        for name, value in loss.config().items()
    }
    return getattr(nn, kind)(**config)


# -- comparing --------------------------------------------------------------------------------


def compare(
    actual: Any,
    expected: Any,
    dtype: Any,
    scale: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
) -> tuple[float, float, bool]:
    """``(max absolute error, max relative error, passed)`` of ``actual`` against ``expected``.

    Passed means: same shape, NaN and infinities at the same places, and every finite element
    within ``rtol * |expected| + atol * scale`` (tolerances default to ``TOLERANCES[dtype]``,
    ``scale`` to ``max(1, max |expected|)``). The relative error divides by ``|expected|``
    where it is not 0.
    """
    tol = TOLERANCES[np.dtype(dtype)]
    rtol = tol["rtol"] if rtol is None else rtol
    atol = tol["atol"] if atol is None else atol
    act = np.asarray(actual, dtype=np.float64)
    exp = np.asarray(expected, dtype=np.float64)
    if act.shape != exp.shape:
        return float("inf"), float("inf"), False
    same_specials = np.array_equal(np.isnan(act), np.isnan(exp)) and np.array_equal(
        act[np.isinf(exp)], exp[np.isinf(exp)]
    )
    finite = np.isfinite(exp) & np.isfinite(act)
    err = np.abs(act[finite] - exp[finite])
    ref = np.abs(exp[finite])
    if scale is None:
        scale = max(1.0, float(ref.max(initial=0.0)))
    max_abs = float(err.max(initial=0.0))
    nonzero = ref > 0
    max_rel = float((err[nonzero] / ref[nonzero]).max(initial=0.0))
    within = bool(np.all(err <= rtol * ref + atol * scale))
    return (
        max_abs,
        max_rel,
        bool(same_specials and within and finite.sum() == np.isfinite(exp).sum()),
    )


@dataclass
class ParityRow:
    name: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    passed: bool
    torch_value: np.ndarray | float | None = field(default=None, repr=False)


@dataclass
class ParityReport:
    """Per-tensor differences between handprop and torch; ``ok`` when every tensor passed."""

    dtype: np.dtype
    rows: list[ParityRow] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(row.passed for row in self.rows)

    def __getitem__(self, name: str) -> ParityRow:
        """The row of one tensor, e.g. ``report["dJ/dZ2"]``."""
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"no tensor {name!r} in this report")

    @property
    def first_failure(self) -> ParityRow | None:
        """The first tensor, in forward then backward order, that did not pass."""
        return next((row for row in self.rows if not row.passed), None)

    def _repr_markdown_(self) -> str:
        """Notebook display: the per-tensor table, the first divergence in bold."""
        tol = TOLERANCES[self.dtype]
        first = self.first_failure
        verdict = "all tensors match" if self.ok else f"first divergence at `{first.name}`"
        lines = [
            f"**handprop vs torch** ({self.dtype}): {verdict}. A tensor passes when "
            f"$|h - t| \\le {tol['rtol']:g}\\,|t| + {tol['atol']:g}\\,s$, "
            "$s = \\max(1, \\max|t|)$.",
            "",
            "| tensor | shape | max abs diff | max rel diff | result |",
            "|---|---|---|---|---|",
        ]
        for row in self.rows:
            result = "ok" if row.passed else "**FAIL**"
            name = f"**`{row.name}`** ← first divergence" if row is first else f"`{row.name}`"
            lines.append(
                f"| {name} | {row.shape} | {row.max_abs:.3g} | {row.max_rel:.3g} | {result} |"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        tol = TOLERANCES[self.dtype]
        first = self.first_failure
        lines = [
            f"handprop vs torch ({self.dtype}, rtol={tol['rtol']:g}, atol={tol['atol']:g}): "
            + ("all tensors match" if self.ok else f"first divergence at {first.name}"),
            f"{'tensor':<16}{'shape':<12}{'max abs diff':>14}{'max rel diff':>14}  result",
        ]
        for row in self.rows:
            mark = "ok" if row.passed else "FAIL"
            if row is first:
                mark += "   <-- first divergence"
            lines.append(
                f"{row.name:<16}{row.shape!s:<12}{row.max_abs:>14.3g}{row.max_rel:>14.3g}  {mark}"
            )
        return "\n".join(lines)


def _one_dtype(model: Module) -> np.dtype:
    """The dtype of every parameter, or the error saying why there is none."""
    params = list(model.parameters())
    if not params:
        raise ValueError("parity_report: the model has no parameters to compare")
    dtypes = sorted({p.dtype.name for p in params})
    if len(dtypes) > 1:
        raise ValueError(
            f"parity_report: the model mixes {' and '.join(dtypes)} parameters; handprop runs "
            "it (each Linear casts its input), but its torch twin needs one dtype: make every "
            "layer the same dtype to compare"
        )
    return params[0].dtype


def same_mask_dropout(module: Dropout):
    """The torch twin of a handprop ``Dropout`` that drops what it drops: it draws its
    keep-masks from a copy of the Dropout's generator, so the twin's n-th training forward
    uses the mask of the Dropout's n-th training forward from now on (torch's own Dropout
    would draw other masks, and no number could be compared). In evaluation it is the identity.
    """
    torch = _torch()
    p, rng = module.p, copy.deepcopy(module.rng)

    class SameMaskDropout(torch.nn.Module):
        def forward(self, x):
            if not self.training or p == 0:
                return x
            keep = torch.from_numpy(rng.random(tuple(x.shape)) >= p)
            return x * keep * (0.0 if p == 1.0 else 1.0 / (1.0 - p))  # torch's order

        def extra_repr(self) -> str:
            return f"p={p}"

    return SameMaskDropout().train(module.training)


def parity_report(model: Module, loss_fn, X: Any, y: Any) -> ParityReport:
    """Run ``model`` and ``loss_fn`` forward and backward in handprop and in torch, compare.

    Compared, in this order: each module's output (named as in the worked example: ``Z{l}``
    for the l-th Linear, ``A{l}`` for the activation after it), the cost ``J``, then dJ/d of
    each output from the last back, ``dJ/dX``, and every parameter's gradient. The model's
    gradients are zeroed first and hold this run's values afterwards.

    Examples (these need torch):
        >>> from handprop import worked_example
        >>> X, y = worked_example.data()
        >>> parity_report(worked_example.model(), worked_example.loss_fn(), X, y).ok
        True
    """
    torch = _torch()
    modules = list(model) if isinstance(model, Sequential) else [model]
    dtype = _one_dtype(model)
    tdt = _torch_dtype(dtype)
    names = output_names(modules)

    # the twins first: a Dropout's twin copies its generator before it draws
    twin = [same_mask_dropout(m) if isinstance(m, Dropout) else to_torch(m) for m in modules]
    model.zero_grad()
    outputs, h = [], X
    for module in modules:
        h = module(h)
        outputs.append(h)
    cost = loss_fn(h, y)
    g = 1.0 if np.ndim(cost) == 0 else np.ones_like(cost)
    grads_out, grad = [], loss_fn.backward(g)
    for module in reversed(modules):
        grads_out.insert(0, grad)
        grad = module.backward(grad)

    tx = torch.tensor(np.asarray(X, dtype=dtype), requires_grad=True)
    y_arr = np.asarray(y)
    ty = torch.tensor(y_arr) if y_arr.dtype.kind in "iu" else torch.tensor(y_arr, dtype=tdt)
    t_outs, t_h = [], tx
    for t_module in twin:
        t_h = t_module(t_h)
        t_h.retain_grad()
        t_outs.append(t_h)
    t_cost = to_torch_loss(loss_fn, dtype)(t_h, ty)
    t_cost.backward(None if np.ndim(cost) == 0 else torch.ones_like(t_cost))

    report = ParityReport(np.dtype(dtype))

    def add(name, actual, expected):
        max_abs, max_rel, passed = compare(actual, expected, dtype)
        shape = tuple(np.shape(expected))
        report.rows.append(ParityRow(name, shape, max_abs, max_rel, passed, expected))

    for name, out, t_out in zip(names, outputs, t_outs, strict=True):
        add(name, out, t_out.detach().numpy())
    add("J", cost, t_cost.detach().numpy())
    for name, g_out, t_out in reversed(list(zip(names, grads_out, t_outs, strict=True))):
        add(f"dJ/d{name}", g_out, t_out.grad.numpy())
    add("dJ/dX", grad, tx.grad.numpy())
    t_params = {}
    keys = list(model._modules) if isinstance(model, Sequential) else [None]
    for key, t_module in zip(keys, twin, strict=True):
        prefix = "" if key is None else f"{key}."
        t_params.update({prefix + n: p for n, p in t_module.named_parameters()})
    for name, p in model.named_parameters():
        add(f"{name}.grad", p.grad, t_params[name].grad.numpy())
    return report
