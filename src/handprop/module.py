"""``Parameter``, ``Module`` and ``Sequential``: the contract every layer follows.

A module does two things by hand:

* ``forward(x)`` computes its output and keeps (in attributes such as ``_x``) exactly what its
  backward will need;
* ``backward(grad_output)`` receives dJ/d(output), adds dJ/d(parameter) into each parameter's
  ``.grad`` and returns dJ/d(input). It never writes into ``grad_output`` or its caches.

``Sequential`` chains modules: forward left to right, backward right to left. That loop *is*
backpropagation: the chain rule applied one module at a time.

A module may run forward several times before its backwards (a cell over time steps, a layer
used twice): each backward consumes the most recent forward not consumed yet, and parameter
gradients add up over every use. ``Module`` wraps every subclass's ``forward`` and
``backward`` with the bookkeeping of ``_contract.py`` so that a gradient is never silently
wrong: a backward runs only against a forward it belongs to, once, and a failed backward
changes nothing.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from ._arrays import FLOAT_DTYPES, as_float_array, shape_str
from ._contract import (
    _contract_backward,
    _contract_forward,
    _journal,
    _no_init_error,
    _not_ready_error,
)


class Parameter:
    """A trainable array: ``.data`` holds the values, ``.grad`` the accumulated dJ/d(data).

    ``.grad`` is None until the first backward that reaches the parameter; later backwards add
    into it until ``zero_grad()`` sets it back to None, as in PyTorch.

    Examples:
        >>> p = Parameter(np.zeros((2, 3), dtype=np.float32))
        >>> p.shape, p.dtype, p.grad is None
        ((2, 3), dtype('float32'), True)
        >>> p.accumulate_grad(np.ones((2, 3), dtype=np.float32))
        >>> p.accumulate_grad(np.ones((2, 3), dtype=np.float32))
        >>> p.grad[0, 0]
        np.float32(2.0)
    """

    __slots__ = ("data", "grad")

    def __init__(self, data: np.ndarray) -> None:
        data = np.asarray(data)
        if data.dtype not in FLOAT_DTYPES:
            raise TypeError(
                f"Parameter: data must be a float32 or float64 array, got dtype {data.dtype}"
            )
        self.data: np.ndarray = data
        self.grad: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def accumulate_grad(self, grad: np.ndarray) -> None:
        """``.grad = grad`` the first time, ``.grad = .grad + grad`` afterwards.

        ``grad`` must be a fresh array of the parameter's shape and dtype (a backward's own
        result). The sum makes a new array instead of adding in place: an array the caller set
        as ``.grad`` is never written into, and a backward that fails halfway can put every
        ``.grad`` back as it was (see ``_Journal``).
        """
        if grad.shape != self.data.shape or grad.dtype != self.data.dtype:
            raise ValueError(
                f"Parameter of shape {shape_str(self.data.shape)} and dtype {self.data.dtype}: "
                f"a backward gave it a gradient of shape {shape_str(grad.shape)} and dtype "
                f"{grad.dtype}"
            )
        if _journal.active:  # (two appends, not a tuple: nothing for the garbage collector)
            _journal.grads.append(self)
            _journal.grads.append(self.grad)
        self.grad = grad if self.grad is None else self.grad + grad

    def __repr__(self) -> str:
        return f"Parameter containing:\n{self.data!r}"


class _IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of layers and containers.

    A layer needs two methods: ``forward(self, x)`` returns the output and keeps what backward
    needs in attributes (``self._x = x``); ``backward(self, grad_output)`` adds into each
    parameter's ``.grad`` (``self.weight.accumulate_grad(...)``) and returns dJ/d(input).
    It may also take the keyword ``input_grad`` (see ``backward`` below). Everything else,
    train/eval, no_grad, and the checks that keep gradients right, comes from this class.

    Subclasses that have an ``__init__`` call ``super().__init__()`` first, then assign
    ``Parameter`` and ``Module`` attributes (``self.weight = Parameter(...)``); assignment
    registers them, as in PyTorch, so that ``named_parameters()`` and ``state_dict()`` find
    them. ``register_buffer`` keeps arrays that are state but not parameters.
    """

    #: Names of the attributes in which forward caches what backward needs (optional: a
    #: declared name skips the registration checks of ``__setattr__`` on every forward, and
    #: ``_clear_cache`` forgets it).
    _cache: tuple[str, ...] = ()
    #: Input values where this module's function has no derivative (ReLU: 0); gradcheck
    #: watches for perturbations that cross them.
    kinks_at: tuple[float, ...] = ()
    #: The layer's part in the worked example's names for values (``naming``, ``trace``):
    #: ``"affine"`` starts a layer (Linear, Conv2d: its output is Z), ``"norm"`` (N),
    #: ``"pool"`` (P), ``"flatten"`` (F); None for the others (after Z or N: an activation, A).
    #: A loss's role is ``"loss"``: a module, but not a layer of a Sequential.
    role: str | None = None
    #: The forward and its derivative in LaTeX, for the derivation (``Z^{[l]}`` its input,
    #: ``A^{[l]}`` its output, ``[l]`` the layer's number); None: the derivation names the
    #: layer and takes its Jacobian from its own backward.
    latex: tuple[str, str] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # (looked up through the bases, so a mixin's forward, not a Module's, is wrapped too)
        forward, backward = cls.forward, cls.backward
        if forward is not Module.forward and not getattr(forward, "_contract", False):
            cls.forward = _contract_forward(forward)
            cls.__call__ = cls.forward  # module(x) is forward(x), without a frame between
        if backward is not Module.backward and not getattr(backward, "_contract", False):
            cls.backward = _contract_backward(backward)

    def __init__(self) -> None:
        d = self.__dict__
        d["_parameters"], d["_modules"], d["_buffers"] = {}, {}, {}
        d["_non_persistent_buffers"] = set()
        d["training"] = True
        d["_state"] = None
        d["_pending_stamps"], d["_pending_saved"], d["_pending_tapes"] = [], [], []
        d["_pending_outputs"] = []
        for name in self._cache:
            d[name] = None

    def _clear_cache(self) -> None:
        """Forget the pending forwards everywhere in the tree: backward now raises until the
        next forward (used on copies, whose caches would belong to the original's calls)."""
        for module in self.modules():
            d = module.__dict__
            d["_state"] = None
            d["_pending_stamps"].clear()
            d["_pending_saved"].clear()
            d["_pending_tapes"].clear()
            d["_pending_outputs"].clear()
            for name in module._cache:
                d[name] = None

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._cache:  # forward caching its values (every step): a plain attribute
            object.__setattr__(self, name, value)
            return
        if "_parameters" not in self.__dict__:
            raise _no_init_error(self)
        _register(self, name, value)
        object.__setattr__(self, name, value)

    # -- the two passes -------------------------------------------------------------------

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def backward(self, grad_output: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """Add dJ/d(parameters) into ``.grad`` and return dJ/d(input).

        With ``input_grad=False`` the caller does not need dJ/d(input) (the first layer of a
        network: X is data): a module may skip computing it and return None. A backward
        written without this keyword works too: Module then simply does not pass it.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement backward()")

    def __call__(self, x: Any) -> Any:
        return self.forward(x)

    # -- modes ------------------------------------------------------------------------------

    def train(self, mode: bool = True) -> Module:
        """Set training mode (``mode=True``) or evaluation mode on this module and every
        module inside it; returns ``self``. Layers such as Dropout behave differently in each."""
        if not isinstance(mode, bool):
            raise ValueError(f"training mode is expected to be boolean, got {mode!r}")
        for module in self.modules():
            module.__dict__["training"] = mode
        return self

    def eval(self) -> Module:
        """Evaluation mode: ``train(False)``; returns ``self``."""
        return self.train(False)

    # -- parameters, buffers, children --------------------------------------------------------

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """``(name, module)`` for this module (name ``prefix``) and every module inside it,
        each once even if it appears twice."""
        seen: set[int] = set()
        for name, module in self._walk(prefix):
            if id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def _walk(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """Like named_modules, but an object that appears twice is listed twice."""
        yield prefix, self
        for child_name, child in self._modules.items():
            yield from child._walk(f"{prefix}.{child_name}" if prefix else child_name)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        yield from self._modules.items()

    def children(self) -> Iterator[Module]:
        yield from self._modules.values()

    def named_parameters(
        self, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """``(name, parameter)`` pairs, named like PyTorch: ``weight``, ``0.weight``, ``2.bias``.

        A parameter shared by two layers (weight tying) is listed once, under its first name,
        as in torch (``remove_duplicate=False`` lists every name).
        """
        yield from self._named_members("_parameters", prefix, remove_duplicate)

    def parameters(self) -> Iterator[Parameter]:
        for _, param in self.named_parameters():
            yield param

    def register_buffer(self, name: str, tensor: np.ndarray | None, persistent: bool = True):
        """Keep ``tensor`` as state that is not a parameter (BatchNorm's running mean, say).

        Buffers are reached as attributes (``self.running_mean``), listed by
        ``named_buffers()``, saved in ``state_dict()`` (unless ``persistent=False``) and
        loaded by ``load_state_dict``, but they have no gradient and no optimizer sees them.
        """
        d = self.__dict__
        if "_buffers" not in d:
            raise _no_init_error(self)
        if not isinstance(name, str):
            raise TypeError(f"buffer name should be a string, got {type(name).__name__}")
        if "." in name:
            raise KeyError('buffer name can\'t contain "."')
        if name == "":
            raise KeyError('buffer name can\'t be empty string ""')
        if name in d and name not in d["_buffers"]:
            raise KeyError(f"attribute '{name}' already exists")
        if tensor is not None and not isinstance(tensor, np.ndarray):
            raise TypeError(
                f"cannot assign '{_type_name(tensor)}' object to buffer '{name}' "
                "(a NumPy array or None required)"
            )
        d["_buffers"][name] = tensor
        if persistent:
            d["_non_persistent_buffers"].discard(name)
        else:
            d["_non_persistent_buffers"].add(name)
        object.__setattr__(self, name, tensor)

    def named_buffers(
        self, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, np.ndarray]]:
        """``(name, array)`` for every buffer, named like parameters (``0.running_mean``)."""
        yield from self._named_members("_buffers", prefix, remove_duplicate)

    def buffers(self) -> Iterator[np.ndarray]:
        for _, buffer in self.named_buffers():
            yield buffer

    def _named_members(self, kind: str, prefix: str, remove_duplicate: bool):
        seen: set[int] = set()
        for module_name, module in self._walk():
            for name, value in module.__dict__[kind].items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield prefix + (f"{module_name}.{name}" if module_name else name), value

    def _own_arrays(self) -> Iterator[np.ndarray]:
        """This module's parameter values and buffers (never frozen as outputs)."""
        for param in self._parameters.values():
            yield param.data
        yield from (b for b in self._buffers.values() if b is not None)

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` back to None (torch's default, ``set_to_none=True``)."""
        for param in self.parameters():
            param.grad = None

    # -- state ----------------------------------------------------------------------------

    def _state_entries(self) -> Iterator[tuple[str, Any]]:
        """``(key, Parameter or buffer array)`` in torch's state_dict order: each module's
        parameters, then its persistent buffers, then its children's, depth first."""
        for module_name, module in self._walk():
            where = f"{module_name}." if module_name else ""
            for name, param in module._parameters.items():
                yield where + name, param
            for name, buffer in module._buffers.items():
                if buffer is not None and name not in module._non_persistent_buffers:
                    yield where + name, buffer

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameter values and persistent buffers by name, with the keys of the equivalent
        torch model.

        Unlike torch, whose state_dict shares storage with the model, the arrays are copies:
        a state_dict taken before a training step still holds the old values after it.
        """
        return {
            key: (value.data if isinstance(value, Parameter) else value).copy()
            for key, value in self._state_entries()
        }

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True
    ) -> _IncompatibleKeys:
        """Copy values into the parameters and buffers (in place, cast to each one's dtype).

        Everything is checked before anything is written: with ``strict`` a missing or
        unexpected key raises, and in any mode a wrong shape or a non-numeric value raises,
        leaving the model unchanged. Values may be NumPy arrays, nested lists or CPU tensors.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"{self._short_name()}.load_state_dict: expected a mapping of names to arrays, "
                f"got {type(state_dict).__name__}"
            )
        own = {
            key: (value.data if isinstance(value, Parameter) else value)
            for key, value in self._state_entries()
        }
        missing = [key for key in own if key not in state_dict]
        unexpected = [key for key in state_dict if key not in own]
        problems = []
        if strict and missing:
            problems.append("Missing key(s) in state_dict: " + ", ".join(map(repr, missing)))
        if strict and unexpected:
            problems.append("Unexpected key(s) in state_dict: " + ", ".join(map(repr, unexpected)))
        values = {}
        for key, target in own.items():
            if key not in state_dict:
                continue
            owner = f"{self._short_name()}.load_state_dict"
            if target.dtype.kind in "iu":  # a count (num_batches_tracked)
                value = _whole_numbers(state_dict[key], owner, key, target.dtype)
            else:
                value = as_float_array(state_dict[key], owner, key, target.dtype)
            if value.shape != target.shape:
                problems.append(
                    f"size mismatch for {key}: copying a param with shape "
                    f"{shape_str(value.shape)} from checkpoint, the shape in current model "
                    f"is {shape_str(target.shape)}"
                )
            values[key] = value
        if problems:
            raise ValueError(
                f"Error(s) in loading state_dict for {self._short_name()}:\n\t"
                + "\n\t".join(problems)
            )
        for key, value in values.items():
            own[key][...] = value
        return _IncompatibleKeys(missing, unexpected)

    # -- what the layer is: its constructor's arguments, described once -----------------------

    def config(self) -> dict[str, Any]:
        """The constructor's arguments that rebuild this layer: ``type(m)(**m.config())`` is a
        layer like ``m`` (with fresh weights), and the names are torch's, so
        ``getattr(torch.nn, type(m).__name__)(**m.config())`` is its torch twin.

        Read from the attributes of the same names, as torch keeps them
        (``Linear(2, 3).in_features == 2``), with two conversions: a ``bias`` attribute (a
        ``Parameter`` or None) gives ``bias=True/False``, and ``dtype`` gives its name
        (``"float32"``). ``rng`` is left out (it only draws the first weights). This is the one
        place a layer's arguments are known: ``save``/``load`` and ``interop`` read it, so a new
        layer reaches them by keeping its arguments under their own names; a layer whose
        attributes are named otherwise overrides this method.
        """
        args: dict[str, Any] = {}
        for name in _constructor_arguments(type(self)):
            if not hasattr(self, name):
                raise TypeError(
                    f"{type(self).__name__}.config(): its constructor takes {name!r} but the "
                    f"layer keeps no attribute {name!r}; keep it, or override config()"
                )
            value = getattr(self, name)
            if name == "bias" and (value is None or isinstance(value, Parameter)):
                value = value is not None  # the parameter, or its absence: bias=True/False
            elif name == "dtype":
                value = np.dtype(value or np.float32).name  # None: a layer without arrays
            args[name] = value
        return args

    @classmethod
    def state_shapes(cls, **config: Any) -> dict[str, tuple[tuple[int, ...], np.dtype, str]]:
        """The ``state_dict`` this layer will have when built from ``config``, without building
        it: ``{name: (shape, dtype, "parameter" | "buffer")}``. ``load`` compares a file's
        arrays with it before it allocates anything, so a small file cannot ask for a huge
        layer. This default builds the layer to see, which allocates nothing only for layers
        without arrays: a layer with parameters or buffers overrides it, beside its
        constructor (its size is a formula of its arguments: ``Linear``'s weight is
        ``(out_features, in_features)``).
        """
        module = cls(**config)
        kinds = {True: "parameter", False: "buffer"}
        return {
            key: (value.shape, value.dtype, kinds[isinstance(value, Parameter)])
            for key, value in module._state_entries()
        }

    # -- printing and messages --------------------------------------------------------------

    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's repr (its constructor arguments)."""
        return ""

    def __repr__(self) -> str:
        lines = [self.extra_repr()] if self.extra_repr() else []
        for name, child in self._modules.items():
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"({name}): {child_repr}")
        if not self._modules:
            return f"{type(self).__name__}({''.join(lines)})"
        return type(self).__name__ + "(\n  " + "\n  ".join(lines) + "\n)"

    def _repr_html_(self) -> str:
        """Notebook display: the usual repr, then each parameter with its shape and count."""
        from html import escape

        rows = "".join(
            f"<tr><td><code>{escape(name)}</code></td><td>{p.shape}</td><td>{p.dtype}</td>"
            f"<td style='text-align:right'>{p.data.size:,}</td></tr>"
            for name, p in self.named_parameters()
        )
        total = sum(p.data.size for p in self.parameters())
        return (
            f"<pre>{escape(repr(self))}</pre>"
            "<table><thead><tr><th>parameter</th><th>shape</th><th>dtype</th>"
            f"<th>count</th></tr></thead><tbody>{rows}</tbody><tfoot><tr><th>total</th><th></th>"
            f"<th></th><th style='text-align:right'>{total:,}</th></tr></tfoot></table>"
        )

    def _short_name(self) -> str:
        """The name in error messages: the one-line repr of a leaf, the class of a container."""
        return type(self).__name__ if self._modules else repr(self)

    def _saved(self, value: Any) -> Any:
        """A value cached by forward, or the error for calling backward first."""
        if value is None:
            raise _not_ready_error(self, None)
        return value

    def _grad_output(self, grad_output: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """``grad_output`` as an array of the last forward output's shape and dtype."""
        grad = as_float_array(grad_output, self, "grad_output", dtype)
        if grad.shape != shape:
            raise ValueError(
                f"{self._short_name()}: backward() expected grad_output of shape "
                f"{shape_str(shape)} (the shape of the last forward output), "
                f"got {shape_str(grad.shape)}"
            )
        return grad


class Sequential(Module):
    """Modules applied one after another; backward runs them in reverse.

    ``forward``:  x -> m0 -> m1 -> ... -> output
    ``backward``: dJ/d(output) -> ... -> m1.backward -> m0.backward -> dJ/dx

    Examples:
        >>> from handprop.layers import Linear, ReLU
        >>> model = Sequential(Linear(2, 3, rng=0), ReLU(), Linear(3, 1, rng=1))
        >>> model
        Sequential(
          (0): Linear(in_features=2, out_features=3, bias=True)
          (1): ReLU()
          (2): Linear(in_features=3, out_features=1, bias=True)
        )
        >>> [name for name, _ in model.named_parameters()]
        ['0.weight', '0.bias', '2.weight', '2.bias']
        >>> out = model(np.array([[1.0, 2.0]]))
        >>> model.backward(np.ones_like(out)).shape
        (1, 2)

    Named children, as torch's ``Sequential(OrderedDict(...))``: the names key ``state_dict``
    and ``repr``, and each child is also an attribute. Indexing is by position either way, and
    a slice keeps its children's names (``model[2:]`` holds ``2.weight``, as in torch).

        >>> from collections import OrderedDict
        >>> named = Sequential(OrderedDict(fc1=Linear(2, 3, rng=0), act=ReLU()))
        >>> named.fc1 is named[0], list(named.state_dict())
        (True, ['fc1.weight', 'fc1.bias'])
        >>> [name for name, _ in model[2:].named_parameters()]
        ['2.weight', '2.bias']
    """

    def __init__(self, *modules: Module | OrderedDict[str, Module]) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            named = list(modules[0].items())  # torch's Sequential(OrderedDict(fc1=..., ...))
        else:
            named = [(str(index), module) for index, module in enumerate(modules)]
        for index, (name, module) in enumerate(named):
            self._check_child(index, name, module)
            # (the same module may stand at two places, as in torch: each use's forward stays
            # pending, and the backwards consume them last first, summing its gradients)
            self._modules[name] = module

    def _check_child(self, index: int, name: Any, module: Any) -> None:
        """A child module and its name, checked as torch's ``add_module`` checks them."""
        if not isinstance(module, Module) or module.role == "loss":
            hint = (
                " (a loss is not a layer: call it on the model's output instead)"
                if hasattr(module, "reduction")
                else ""
            )
            raise TypeError(
                f"Sequential: argument {index} must be a handprop Module, "
                f"got {type(module).__name__}{hint}"
            )
        _check_module_name(self, name)

    def __getattr__(self, name: str) -> Module:
        """A named child as an attribute (``model.fc1``), as in torch. (Only called when the
        ordinary lookup fails, so it costs nothing on the hot path.)"""
        modules = self.__dict__.get("_modules")
        if modules is not None and name in modules:
            return modules[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def forward(self, x: np.ndarray) -> np.ndarray:
        for index, module in enumerate(self):
            try:
                x = module(x)
            except (ValueError, TypeError, RuntimeError) as error:
                located = _located(error, f"Sequential[{index}]")
                if located is error:
                    raise
                raise located from error
        return x

    def backward(self, grad_output: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """The chain rule: each module's backward, last to first, feeding the next.

        ``input_grad=False`` is passed to the first module only (it may then skip dJ/dX);
        the default returns dJ/dX.
        """
        modules = list(self._modules.values())
        for index in range(len(modules) - 1, -1, -1):
            if grad_output is None and index + 1 < len(modules):  # (None would mean zeros)
                raise _blame(modules, index, None, TypeError("it needs dJ/d(its output)"))
            try:
                grad_output = modules[index].backward(
                    grad_output, input_grad=input_grad or index > 0
                )
            except (ValueError, TypeError) as error:
                if index + 1 < len(modules) and "grad_output" in str(error):
                    raise _blame(modules, index, grad_output, error) from error
                raise
        return grad_output

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int | slice) -> Module:
        modules = list(self._modules.values())
        if isinstance(index, slice):  # the same modules under the same names, as in torch
            return Sequential(OrderedDict(list(self._modules.items())[index]))
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(
                f"Sequential indices must be integers or slices, got {type(index).__name__}"
            )
        if not -len(modules) <= index < len(modules):
            raise IndexError(f"Sequential index {index} is out of range for {len(modules)} modules")
        return modules[index]


# -- what Module and Sequential use -------------------------------------------------------------


def _blame(modules: list[Module], index: int, grad: Any, error: Exception) -> Exception:
    """The error for a gradient that module ``index + 1``'s backward returned and module
    ``index`` refused: it names the module that returned it (a layer of one's own returning
    None or the wrong shape), not only the one that received it."""
    what = "None" if grad is None else f"{type(grad).__name__}"
    if isinstance(grad, np.ndarray):
        what = f"an array of shape {shape_str(grad.shape)} and dtype {grad.dtype}"
    culprit = modules[index + 1]._short_name()
    message = (
        f"Sequential[{index + 1}]: {culprit}.backward returned {what}; a backward must return "
        f"dJ/d(its input), an array of its input's shape. (Sequential[{index}], which "
        f"receives it, said: {error})"
    )
    try:
        return type(error)(message)
    except Exception:  # an error class with other arguments: the original, unchanged
        return error


def _check_module_name(module: Module, name: Any) -> None:
    """torch's rules for a child's name: a non-empty string without ".", not an attribute."""
    if not isinstance(name, str):
        raise TypeError(f"module name should be a string. Got {type(name).__name__}")
    if "." in name:
        raise KeyError(f'module name can\'t contain ".", got: {name}')
    if name == "":
        raise KeyError('module name can\'t be empty string ""')
    if hasattr(module, name) and name not in module._modules:
        raise KeyError(f"attribute '{name}' already exists")


def _located(error: Exception, where: str) -> Exception:
    """``error`` again, its message prefixed with where it happened ("Sequential[2]: ...");
    the original itself when its class cannot be rebuilt from a message alone."""
    if len(error.args) == 1 and isinstance(error.args[0], str):
        try:
            return type(error)(f"{where}: {error.args[0]}")
        except Exception:  # a constructor with other arguments (JSONDecodeError, ...)
            pass
    return error


def _whole_numbers(value: Any, owner: str, key: str, dtype: np.dtype) -> np.ndarray:
    """A count such as ``num_batches_tracked``, checked: whole numbers from 0 to the integer
    type's largest. (torch's load_state_dict takes anything: NaN or 1e30 become
    -9223372036854775808, -5 stays; a count that is none is refused here instead.)"""
    largest = np.iinfo(dtype).max
    if isinstance(value, (int, np.integer)) or (
        isinstance(value, np.ndarray) and value.dtype.kind in "iu"
    ):
        array = np.asarray(value)
        ok = (array >= 0) & (array <= largest)
    else:
        array = as_float_array(value, owner, key, np.dtype(np.float64))
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(array) & (array >= 0) & (array % 1 == 0) & (array <= largest)
    if not np.all(ok):
        raise ValueError(
            f"{owner}: {key} must hold whole numbers from 0 to {largest}, got {value!r}"
        )
    return array.astype(dtype)


def _sharing(model: Module) -> dict[str, list[list[str]]]:
    """What the model shares, by name: modules that stand at several places (``"modules"``:
    their paths, first the one that is kept) and parameters that several modules hold
    (``"parameters"``: their state_dict keys), so that a copy (``load``,
    ``interop.to_torch``) can share them again."""
    places: dict[int, list[str]] = {}
    for path, module in model._walk():
        places.setdefault(id(module), []).append(path)
    holders: dict[int, list[str]] = {}
    for path, module in model.named_modules():  # (each module once)
        for name, param in module._parameters.items():
            if param is not None:
                holders.setdefault(id(param), []).append(f"{path}.{name}" if path else name)
    return {
        "modules": [paths for paths in places.values() if len(paths) > 1],
        "parameters": [keys for keys in holders.values() if len(keys) > 1],
    }


def _constructor_arguments(cls: type) -> list[str]:
    """The names a layer's constructor takes, but ``rng`` (which only draws the first weights)
    and ``*args``/``**kwargs`` (``Identity`` accepts and ignores anything, as torch's)."""
    skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return [
        name
        for name, p in inspect.signature(cls).parameters.items()
        if p.kind not in skip and name != "rng"
    ]


def _type_name(value: Any) -> str:
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"


def _register(module: Module, name: str, value: Any) -> None:
    """``module.name = value``'s bookkeeping, as torch's: a Parameter or Module is registered
    (a replaced one keeps its place), a registered name refuses a value of another kind, a
    buffer takes an array, and None removes a parameter or child."""
    d = module.__dict__
    parameters, modules, buffers = d["_parameters"], d["_modules"], d["_buffers"]
    if isinstance(value, Parameter):
        if name not in parameters:  # a new name; a replaced one keeps its place in order
            _unregister(module, name)
        parameters[name] = value
    elif isinstance(value, Module):
        if name not in modules:
            _unregister(module, name)
        modules[name] = value
    elif name in parameters and value is not None:
        raise TypeError(
            f"cannot assign '{_type_name(value)}' as parameter '{name}' "
            "(handprop.Parameter or None expected); to change the values, write into "
            f"{name}.data, or assign Parameter(array)"
        )
    elif name in modules and value is not None:
        raise TypeError(
            f"cannot assign '{_type_name(value)}' as child module '{name}' "
            "(handprop.Module or None expected)"
        )
    elif name in buffers:
        if value is not None and not isinstance(value, np.ndarray):
            raise TypeError(
                f"cannot assign '{_type_name(value)}' as buffer '{name}' "
                "(a NumPy array or None expected)"
            )
        buffers[name] = value
    elif value is None:
        _unregister(module, name)  # None for a parameter or child: it is gone


def _unregister(module: Module, name: str) -> None:
    d = module.__dict__
    d["_parameters"].pop(name, None)
    d["_modules"].pop(name, None)
    d["_buffers"].pop(name, None)
    d["_non_persistent_buffers"].discard(name)
