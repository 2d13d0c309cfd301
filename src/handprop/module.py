"""``Parameter``, ``Module`` and ``Sequential``: the contract every layer follows.

A module does two things by hand:

* ``forward(x)`` computes its output and keeps (in private attributes such as ``_x``) exactly
  what its backward will need;
* ``backward(grad_output)`` receives dJ/d(output), adds dJ/d(parameter) into each parameter's
  ``.grad`` and returns dJ/d(input). It never writes into ``grad_output`` or its caches.

``Sequential`` chains modules: forward left to right, backward right to left. That loop *is*
backpropagation: the chain rule applied one module at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from ._arrays import FLOAT_DTYPES, as_float_array, shape_str


class Parameter:
    """A trainable array: ``.data`` holds the values, ``.grad`` the accumulated dJ/d(data).

    ``.grad`` is None until the first backward that reaches the parameter; later backwards add
    into it (``+=``) until ``zero_grad()`` sets it back to None, as in PyTorch.

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
        """Add ``grad`` into ``.grad``; the first is kept as is (callers pass a fresh array)."""
        assert grad.shape == self.data.shape and grad.dtype == self.data.dtype, (
            grad.shape,
            grad.dtype,
        )
        if self.grad is None:
            self.grad = grad
        else:
            self.grad += grad

    def __repr__(self) -> str:
        return f"Parameter containing:\n{self.data!r}"


class _IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of layers and containers.

    Subclasses call ``super().__init__()`` first, then assign ``Parameter`` and ``Module``
    attributes (``self.weight = Parameter(...)``); assignment registers them, as in PyTorch,
    so that ``named_parameters()`` and ``state_dict()`` find them.
    """

    #: Names of the private attributes in which forward caches what backward needs.
    _cache: tuple[str, ...] = ()
    #: Input values where this module's function has no derivative (ReLU: 0); gradcheck
    #: watches for perturbations that cross them.
    kinks_at: tuple[float, ...] = ()

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        self._clear_cache()

    def _clear_cache(self) -> None:
        """Forget what the last forward kept: backward now raises instead of using stale values."""
        for name in self._cache:
            object.__setattr__(self, name, None)
        for child in self._modules.values():
            child._clear_cache()

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._cache:  # forward caching its values (every step): a plain attribute
            object.__setattr__(self, name, value)
            return
        parameters = self.__dict__.get("_parameters")
        if parameters is None:
            raise RuntimeError(
                f"{type(self).__name__}: call super().__init__() before assigning attributes"
            )
        if isinstance(value, (Parameter, Module)) or name in parameters or name in self._modules:
            # (re)registration
            parameters.pop(name, None)
            self._modules.pop(name, None)
            if isinstance(value, Parameter):
                parameters[name] = value
            elif isinstance(value, Module):
                self._modules[name] = value
        object.__setattr__(self, name, value)

    # -- the two passes -------------------------------------------------------------------

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def backward(self, grad_output: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """Add dJ/d(parameters) into ``.grad`` and return dJ/d(input).

        With ``input_grad=False`` the caller does not need dJ/d(input) (the first layer of a
        network: X is data): a module may skip computing it and return None.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement backward()")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    # -- parameters -----------------------------------------------------------------------

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """``(name, parameter)`` pairs, named like PyTorch: ``weight``, ``0.weight``, ``2.bias``."""
        for name, param in self._parameters.items():
            yield prefix + name, param
        for child_name, child in self._modules.items():
            yield from child.named_parameters(prefix=f"{prefix}{child_name}.")

    def parameters(self) -> Iterator[Parameter]:
        for _, param in self.named_parameters():
            yield param

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` back to None (torch's default, ``set_to_none=True``)."""
        for param in self.parameters():
            param.grad = None

    # -- state ----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameter values by name, with the same keys as the equivalent torch model.

        Unlike torch, whose state_dict shares storage with the model, the arrays are copies:
        a state_dict taken before a training step still holds the old values after it.
        """
        return {name: param.data.copy() for name, param in self.named_parameters()}

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True
    ) -> _IncompatibleKeys:
        """Copy values into the parameters (in place, cast to each parameter's dtype).

        Everything is checked before anything is written: with ``strict`` a missing or
        unexpected key raises, and in any mode a wrong shape or a non-numeric value raises,
        leaving the model unchanged. Values may be NumPy arrays, nested lists or CPU tensors.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"{self._short_name()}.load_state_dict: expected a mapping of names to arrays, "
                f"got {type(state_dict).__name__}"
            )
        own = dict(self.named_parameters())
        missing = [key for key in own if key not in state_dict]
        unexpected = [key for key in state_dict if key not in own]
        problems = []
        if strict and missing:
            problems.append("Missing key(s) in state_dict: " + ", ".join(map(repr, missing)))
        if strict and unexpected:
            problems.append("Unexpected key(s) in state_dict: " + ", ".join(map(repr, unexpected)))
        values = {}
        for key, param in own.items():
            if key not in state_dict:
                continue
            value = as_float_array(state_dict[key], f"{self._short_name()}.load_state_dict", key)
            if value.shape != param.shape:
                problems.append(
                    f"size mismatch for {key}: copying a param with shape "
                    f"{shape_str(value.shape)} from checkpoint, the shape in current model "
                    f"is {shape_str(param.shape)}"
                )
            values[key] = value
        if problems:
            raise ValueError(
                f"Error(s) in loading state_dict for {self._short_name()}:\n\t"
                + "\n\t".join(problems)
            )
        for key, value in values.items():
            own[key].data[...] = value
        return _IncompatibleKeys(missing, unexpected)

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
            raise RuntimeError(
                f"{self._short_name()}: backward() was called before forward(); "
                "run forward(x) first so there is something to differentiate"
            )
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
    """

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        seen: dict[int, int] = {}
        for index, module in enumerate(modules):
            if not isinstance(module, Module):
                hint = (
                    " (a loss is not a layer: call it on the model's output instead)"
                    if hasattr(module, "reduction")
                    else ""
                )
                raise TypeError(
                    f"Sequential: argument {index} must be a handprop Module, "
                    f"got {type(module).__name__}{hint}"
                )
            if id(module) in seen:
                raise ValueError(
                    f"Sequential: argument {index} is the same {type(module).__name__} object as "
                    f"argument {seen[id(module)]}; a module caches its forward input for "
                    "backward, so each position needs its own instance"
                )
            seen[id(module)] = index
            self._modules[str(index)] = module

    def forward(self, x: np.ndarray) -> np.ndarray:
        for index, module in enumerate(self):
            try:
                x = module(x)
            except (ValueError, TypeError, RuntimeError) as error:
                # Modules before this one have cached the new input, those after it the old
                # one; a backward now would mix the two, so forget them all.
                self._clear_cache()
                raise type(error)(f"Sequential[{index}]: {error}") from error
        return x

    def backward(self, grad_output: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """The chain rule: each module's backward, last to first, feeding the next.

        ``input_grad=False`` is passed to the first module only (it may then skip dJ/dX);
        the default returns dJ/dX.
        """
        modules = list(self._modules.values())
        for index in range(len(modules) - 1, -1, -1):
            grad_output = modules[index].backward(grad_output, input_grad=input_grad or index > 0)
        return grad_output

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int | slice) -> Module:
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*modules[index])
        if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
            raise TypeError(
                f"Sequential indices must be integers or slices, got {type(index).__name__}"
            )
        if not -len(modules) <= index < len(modules):
            raise IndexError(f"Sequential index {index} is out of range for {len(modules)} modules")
        return modules[index]
