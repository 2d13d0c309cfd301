"""``trace(model, loss_fn, X, y)``: one forward and backward pass with every quantity kept.

Names follow the worked example, layers numbered by their Linear (or Conv2d):

- ``X``, ``Y``: the input and the target;
- ``Z{l}``: output of the l-th Linear or Conv2d; ``A{l}``: output of the activation after it
  (``A{l}`` is ``Z{l}`` when none follows); ``W{l}``, ``b{l}``: its weight and bias;
- ``P{l}``, ``F{l}``: outputs of a pooling layer (``MaxPool2d``, ``AvgPool2d``) and of a
  ``Flatten`` after the activation, in that order;
- ``N{l}``: output of a normalisation (``BatchNorm1d``, ``LayerNorm``) between the l-th Linear
  and its activation, ``gamma{l}`` and ``beta{l}`` its weight and bias;
- ``L``: the per-element losses; ``J``: the cost (the loss as configured, e.g. their mean);
- ``dJ/dZ{l}``, ``dJ/dN{l}``, ``dJ/dA{l}``, ``dJ/dP{l}``, ``dJ/dF{l}``, ``dJ/dW{l}``,
  ``dJ/db{l}``, ``dJ/dgamma{l}``, ``dJ/dbeta{l}``, ``dJ/dX``: gradients of the cost, what
  torch's ``.grad`` and ``retain_grad()`` give;
- ``dL/dZ{l}``, ``dL/dA{l}``: gradients of the *summed* per-element losses, the convention of
  texts that differentiate each sample's loss and average only at the parameters (the worked
  example's source among them); for ``reduction="mean"`` they are ``numel`` times the ``dJ``
  ones.

Examples:
    >>> from handprop import worked_example
    >>> X, Y = worked_example.data()
    >>> t = trace(worked_example.model(), worked_example.loss_fn(), X, Y)
    >>> t["dJ/dW3"].round(6)  # float32's last bits depend on the machine's BLAS
    array([[-1.021613, -0.925294]], dtype=float32)
    >>> t["dL/dA3"].ravel().round(4)  # the document's step 1: [1.1003, -1.3430]
    array([ 1.1003, -1.343 ], dtype=float32)
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..module import Module, Sequential

__all__ = ["Trace", "trace"]


@dataclass
class Layer:
    """One Linear (or Conv2d), the normalisation after it (if any) and the activation after
    those (if any), as the worked example groups them; then, in a convolutional network, a
    pooling layer and a Flatten (if any)."""

    number: int
    linear: Module  # a Linear or a Conv2d
    linear_index: int  # position in the Sequential
    activation: Module | None
    activation_index: int | None
    norm: Module | None = None
    norm_index: int | None = None
    pool: Module | None = None
    pool_index: int | None = None
    flatten: Module | None = None
    flatten_index: int | None = None

    @property
    def output(self) -> str:
        """The name of what the layer passes on: F, P or A (A is Z without an activation)."""
        n = self.number
        return f"F{n}" if self.flatten else f"P{n}" if self.pool else f"A{n}"

    @property
    def output_node(self) -> str:
        """The node of the graph the layer ends with: ``output``, except that with nothing
        after the Linear (or its normalisation) that is Z (or N), of which A is another name."""
        if self.flatten is not None or self.pool is not None or self.activation is not None:
            return self.output
        return f"N{self.number}" if self.norm is not None else f"Z{self.number}"

    @property
    def is_conv(self) -> bool:
        return len(self.linear.weight.shape) == 4  # (C_out, C_in, kH, kW)

    @property
    def activation_input(self) -> str:
        """The name of what the activation (or the layer's output) is computed from."""
        return f"N{self.number}" if self.norm is not None else f"Z{self.number}"

    def last_index(self) -> int:
        indices = (
            self.linear_index,
            self.norm_index,
            self.activation_index,
            self.pool_index,
            self.flatten_index,
        )
        return max(i for i in indices if i is not None)


class _Named:
    """What every trace does with its values: ``t[name]``, ``name in t``, ``names()`` (in the
    order of the computation), ``items()``, and its step-through page (``to_html``, and in a
    notebook, shown)."""

    _values: dict[str, Any]

    def __getitem__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise KeyError(f"Trace has no {name!r}; it has: {', '.join(self._values)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def names(self) -> list[str]:
        return list(self._values)

    def items(self) -> Iterator[tuple[str, Any]]:
        return iter(self._values.items())

    def to_html(self, path: Any = None) -> str:
        """A self-contained page stepping through the computation, frame by frame (see
        ``handprop.explain.stepper``); also written to ``path`` if given."""
        from .stepper import to_html

        page = to_html(self)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(page)
        return page

    def _repr_html_(self) -> str:
        """Notebook display: the step-through page, in an iframe of its own (its ids and
        script stay apart from the notebook's and from other traces')."""
        from html import escape

        return (
            f'<iframe srcdoc="{escape(self.to_html())}" style="width: 100%; height: 720px; '
            'border: 1px solid #ccc"></iframe>'
        )


class Trace(_Named):
    """The named values of one forward and backward pass (see the module docstring).

    ``trace["dJ/dW2"]`` returns the array; ``names()`` lists what is there, in the order of
    the computation; ``to_markdown()`` writes the derivation, ``to_svg()`` draws the graph.
    """

    def __init__(self, model: Sequential, loss_fn: Any, layers: list[Layer], values: dict) -> None:
        self.model = model
        self.loss_fn = loss_fn
        self.layers = layers
        self._values = values

    def input_of(self, layer: Layer, node: bool = False) -> str:
        """The name of a layer's input: X, or what the layer before passes on (its
        ``output``; with ``node``, its ``output_node``)."""
        if layer.number == 1:
            return "X"
        before = self.layers[layer.number - 2]
        return before.output_node if node else before.output

    def __repr__(self) -> str:
        return f"Trace({len(self.layers)} layers, {self.loss_fn!r}: {', '.join(self._values)})"

    def _repr_markdown_(self) -> str:
        """Notebook display: every named value with its shape, as LaTeX where it is small."""
        from .derivation import latex

        lines = [
            f"**Trace** of `{' → '.join(repr(m) for m in self.model)}` with `{self.loss_fn!r}`",
            "",
            "| name | shape | value |",
            "|---|---|---|",
        ]
        for name, value in self._values.items():
            shape = np.shape(value)
            shown = f"${latex(value)}$" if np.size(value) <= 24 else "(large: index the trace)"
            lines.append(f"| `{name}` | {shape} | {shown} |")
        return "\n".join(lines)

    def to_markdown(self, jacobian_limit: int = 16) -> str:
        """The derivation as Markdown with LaTeX (see ``handprop.explain.derivation``)."""
        from .derivation import to_markdown

        return to_markdown(self, jacobian_limit=jacobian_limit)

    def stats(self, lr: float | None = None):
        """Per layer: activation mean and std, saturated and dead shares, gradient mean and
        std, and with ``lr`` the update-to-data ratio (see ``handprop.explain.stats``)."""
        from .stats import layer_stats

        return layer_stats(self, lr)

    def to_svg(self, path: Any = None) -> str:
        """The computational graph as SVG text (also written to ``path`` if given)."""
        from .graph import to_svg

        svg = to_svg(self)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(svg)
        return svg


def layers_of(model: Sequential) -> list[Layer]:
    """Group a flat Sequential into layers: each Linear with the activation right after it."""
    if not isinstance(model, Sequential):
        raise TypeError(f"trace: expected a Sequential model, got {type(model).__name__}")
    modules = list(model)
    if not modules or modules[0].role != "affine":
        raise ValueError(
            "trace: the model must start with a Linear or Conv2d layer (X -> Z1 -> ...)"
        )
    layers: list[Layer] = []
    for i, module in enumerate(modules):
        if isinstance(module, Sequential):
            raise ValueError(f"trace: module {i} is a nested Sequential; flatten the model")
        if module.role == "affine":  # a Linear or a Conv2d starts a layer
            layers.append(Layer(len(layers) + 1, module, i, None, None))
        elif not _place(layers[-1], module, i):
            raise ValueError(
                f"trace: module {i} ({module!r}) does not fit: each Linear or Conv2d may be "
                "followed by at most one normalisation, one activation, one pooling layer "
                "and one Flatten, in that order"
            )
    return layers


def _place(layer: Layer, module: Module, i: int) -> bool:
    """Put ``module`` in its slot of ``layer`` if the slot is free and nothing after it is
    taken; whether it fitted."""
    later_free = layer.pool is None and layer.flatten is None
    if module.role == "flatten" and layer.flatten is None:
        layer.flatten, layer.flatten_index = module, i
    elif module.role == "pool" and later_free:
        layer.pool, layer.pool_index = module, i
    elif module.role == "norm" and layer.activation is None and later_free:
        if layer.norm is not None:
            return False
        layer.norm, layer.norm_index = module, i
    elif layer.activation is None and later_free and layer.last_index() == i - 1:
        if module.role is not None:  # a norm, pool or Flatten out of its place
            return False
        layer.activation, layer.activation_index = module, i
    else:
        return False
    return True


def trace(model: Sequential, loss_fn: Any, X: Any, y: Any) -> Any:
    """Run forward, cost and backward on a copy of ``model`` and keep every named value.

    The model itself is not changed (its ``.grad`` stay as they were). A model with a block
    of a learner's own in it (a module with children that is not a Sequential) has no layers
    in the worked example's sense: its trace is the trace of its calls, each forward and
    backward a step (``handprop.explain.calls``).
    """
    from .calls import has_blocks, trace_calls

    if isinstance(model, Module) and has_blocks(model):
        return trace_calls(model, loss_fn, X, y)
    return _trace_layers(model, loss_fn, X, y)


def _trace_layers(model: Sequential, loss_fn: Any, X: Any, y: Any) -> Trace:
    """The trace of a plain network, its values named after the worked example."""
    net = copy.deepcopy(model)
    net.zero_grad()
    layers = layers_of(net)
    dtype = layers[0].linear.dtype
    x = np.asarray(X).astype(dtype, copy=False)  # as Linear would cast it
    values: dict[str, Any] = {"X": x, "Y": np.asarray(y)}
    for layer in layers:
        for name, param in _parameters(layer):
            values[name] = param.data

    # forward
    h = x
    for layer in layers:
        h = layer.linear(h)
        values[f"Z{layer.number}"] = h
        if layer.norm is not None:
            h = layer.norm(h)
            values[f"N{layer.number}"] = h
        if layer.activation is not None:
            h = layer.activation(h)
        values[f"A{layer.number}"] = h
        if layer.pool is not None:
            h = layer.pool(h)
            values[f"P{layer.number}"] = h
        if layer.flatten is not None:
            h = layer.flatten(h)
            values[f"F{layer.number}"] = h
    loss = copy.deepcopy(loss_fn)
    per_element = copy.deepcopy(loss_fn)
    per_element.reduction = "none"
    values["L"] = per_element(h, y)
    values["J"] = loss(h, y)

    # backward of the cost J, then of sum(L)
    out_grad = 1.0 if loss.reduction != "none" else np.ones_like(values["J"])
    # (retain_graph: the forward's caches serve the second backward too)
    _backward(layers, loss.backward(out_grad), "J", values, retain_graph=True)
    for layer in layers:  # copies: the second backward below adds into .grad again
        for name, param in _parameters(layer):
            values[f"dJ/d{name}"] = param.grad.copy()
    per_sample: dict[str, Any] = {}
    _backward(layers, per_element.backward(np.ones_like(values["L"])), "L", per_sample)
    values.update({k: v for k, v in per_sample.items() if k != "dL/dX"})
    return Trace(model, loss_fn, layers, values)


def _backward(
    layers: list[Layer], grad: np.ndarray, of: str, values: dict, retain_graph: bool = False
) -> None:
    """Backward through the layers, storing d{of}/dF{l}, d{of}/dP{l}, d{of}/dA{l},
    d{of}/dN{l} and d{of}/dZ{l}, and d{of}/dX."""
    for layer in reversed(layers):
        n = layer.number
        if layer.flatten is not None:
            values[f"d{of}/dF{n}"] = grad
            grad = layer.flatten.backward(grad, retain_graph=retain_graph)
        if layer.pool is not None:
            values[f"d{of}/dP{n}"] = grad
            grad = layer.pool.backward(grad, retain_graph=retain_graph)
        values[f"d{of}/dA{n}"] = grad
        if layer.activation is not None:
            grad = layer.activation.backward(grad, retain_graph=retain_graph)
        if layer.norm is not None:
            values[f"d{of}/dN{layer.number}"] = grad
            grad = layer.norm.backward(grad, retain_graph=retain_graph)
        values[f"d{of}/dZ{layer.number}"] = grad
        grad = layer.linear.backward(grad, retain_graph=retain_graph)
    values[f"d{of}/dX"] = grad


def _parameters(layer: Layer) -> list[tuple[str, Any]]:
    """The layer's parameters under their trace names: W, b of the Linear (or Conv2d); gamma,
    beta of the normalisation."""
    n = layer.number
    found = [(f"W{n}", layer.linear.weight)]
    if layer.linear.bias is not None:
        found.append((f"b{n}", layer.linear.bias))
    if layer.norm is not None:
        for name, param in (("gamma", layer.norm.weight), ("beta", layer.norm.bias)):
            if param is not None:
                found.append((f"{name}{n}", param))
    return found
