"""Optimizers: ``SGD``, ``Adam``, ``AdamW``, ``RMSprop``, ``Adagrad``: torch.optim's update
equations in torch's order.

An optimizer holds a list of parameters and, in ``step()``, moves each one whose ``.grad`` is
not None using that gradient (parameters whose grad is None are skipped, as in torch). Updates
happen in place, so models and optimizers keep pointing at the same arrays.

Hyper-parameters live in ``param_groups[0]`` (a dict, as in torch), so that a schedule can
change ``optimizer.param_groups[0]["lr"]`` between steps. Per-parameter state (momentum
buffers, Adam's moments) lives in ``state[i]`` for the i-th parameter.

Each update is written once here as a plain function of one parameter that reads like its
equations (``sgd_update``, ``adam_update``, ``rmsprop_update``, ``adagrad_update``), as
torch's ``_single_tensor_adam``. The fast paths (``_foreach.py``: large arrays in
cache-sized blocks, Adam's small parameters all at once) do the same operations in the same
order; ``foreach=False`` makes ``step()`` use the plain functions, ``True`` the fast path,
and ``None`` (the default) the fast path where it helps: on parameters of 4 MiB or more
(16 MiB for SGD), and on Adam's small parameters; a test checks that they agree bit for bit.

Examples:
    >>> import numpy as np
    >>> from handprop import Parameter
    >>> p = Parameter(np.array([1.0, -2.0]))
    >>> opt = SGD([p], lr=0.1)
    >>> p.grad = np.array([0.5, -0.5])
    >>> opt.step()
    >>> p.data
    array([ 0.95, -1.95])
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..module import Parameter
from . import _foreach
from . import lr_scheduler as lr_scheduler  # handprop.optim.lr_scheduler, as torch.optim's
from .optimizer import Optimizer, _check, _non_negative, _number

__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "Optimizer",
    "RMSprop",
    "adagrad_update",
    "adam_update",
    "rmsprop_update",
    "sgd_update",
]


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum (torch.optim.SGD).

    For each parameter p with gradient g, in this order::

        g = -g                           if maximize
        g = g + weight_decay * p         if weight_decay != 0
        if momentum != 0:
            buf = g (a copy)             on the first step
            buf = momentum * buf + (1 - dampening) * g      afterwards
            g = g + momentum * buf       if nesterov, else  g = buf
        p = p - lr * g

    Args:
        params: the parameters to optimise, e.g. ``model.parameters()``.
        lr: learning rate (default 1e-3, as torch).
        momentum: momentum factor mu (default 0: plain SGD).
        dampening: dampening tau of the momentum (default 0).
        weight_decay: L2 penalty lambda added to the gradient (default 0).
        nesterov: use Nesterov momentum (needs momentum > 0 and dampening 0).
        maximize: climb the objective instead of descending it.
        foreach: None for the fast path on parameters of 16 MiB or more (where it helps), True
            for it everywhere, False for the plain ``sgd_update`` loop (the same numbers).

    Examples:
        >>> import numpy as np
        >>> from handprop import Parameter
        >>> p = Parameter(np.array([1.0]))
        >>> opt = SGD([p], lr=0.1, momentum=0.9)
        >>> for _ in range(2):
        ...     p.grad = np.array([1.0])
        ...     opt.step()
        >>> p.data  # 1 - 0.1 * 1 - 0.1 * (0.9 * 1 + 1)
        array([0.71])
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
    ) -> None:
        super().__init__(params, self._checked_hyper(locals()))  # the arguments as given

    _state_keys = (frozenset(), frozenset({"momentum_buffer"}))

    @classmethod
    def _checked_hyper(cls, group: Mapping[str, Any]) -> dict[str, Any]:
        h = super()._checked_hyper(group)
        _non_negative(h, "SGD", ("lr", "momentum", "weight_decay"))
        h["dampening"] = _number(h["dampening"], "SGD", "dampening")  # any number, as torch's
        h["nesterov"] = bool(h["nesterov"])
        _check(
            not h["nesterov"] or (h["momentum"] > 0 and h["dampening"] == 0),
            "Nesterov momentum requires a momentum and zero dampening",
        )
        return h

    def step(self) -> None:
        """One update of every parameter that has a gradient (see ``sgd_update``)."""
        h = self.param_groups[0]
        grads = self._grads()  # all checked before any parameter changes
        plain, fast = _foreach.split(grads, h["foreach"], _foreach._SGD_FAST_FROM)
        for i, p, g in plain:
            sgd_update(p.data, g, self.state, i, h)
        _foreach.sgd_step(fast, self.state, h, sgd_direction)


def sgd_direction(p: np.ndarray, g: np.ndarray, states: dict, i: int, h: dict) -> np.ndarray:
    """The step direction d of SGD for parameter ``i`` (``p = p - lr * d``), momentum kept in
    ``states[i]["momentum_buffer"]``; ``h`` holds the hyper-parameters."""
    mu = h["momentum"]
    if h["maximize"]:
        g = -g
    if h["weight_decay"] != 0:
        g = g + h["weight_decay"] * p
    if mu != 0:
        state = states.setdefault(i, {})
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = g.copy()  # a copy: never alias .grad
        else:
            buf *= mu  # buf = mu * buf + (1 - dampening) * g
            buf += (1 - h["dampening"]) * g
        g = g + mu * buf if h["nesterov"] else buf
    return g


def sgd_update(p: np.ndarray, g: np.ndarray, states: dict, i: int, h: dict) -> None:
    """SGD on one parameter array ``p`` (in place), as the SGD docstring's equations read."""
    d = sgd_direction(p, g, states, i, h)
    p -= h["lr"] * d


class Adam(Optimizer):
    """Adam (torch.optim.Adam): per-parameter steps scaled by running gradient moments.

    For each parameter p with gradient g, at step t = 1, 2, ...::

        g = -g                                   if maximize
        g = g + weight_decay * p                 if weight_decay != 0 (L2 penalty; see AdamW)
        m = m + (1 - beta1) * (g - m)            first moment (mean of g)
        v = beta2 * v + (1 - beta2) * g * g      second moment (mean of g^2)
        v_max = max(v_max, v); use v_max for v   if amsgrad
        denom = sqrt(v) / sqrt(1 - beta2**t) + eps       eps *after* the bias-corrected sqrt
        p = p - lr / (1 - beta1**t) * m / denom

    Args:
        params: the parameters to optimise.
        lr: learning rate (default 1e-3).
        betas: (beta1, beta2), each in [0, 1) (default (0.9, 0.999)).
        eps: added to the denominator (default 1e-8).
        weight_decay: L2 penalty added to the gradient (default 0; see AdamW).
        amsgrad: use the largest second moment so far (default False).
        maximize: climb the objective instead of descending it.
        foreach: None for the fast path where it helps (on parameters of 4 MiB or more, and on
            the small ones, updated together), True for it everywhere, False for the plain
            ``adam_update`` loop (the same numbers).

    Examples:
        >>> import numpy as np
        >>> from handprop import Parameter
        >>> p = Parameter(np.array([1.0, 1.0]))
        >>> p.grad = np.array([0.5, -2.0])
        >>> Adam([p], lr=0.01).step()  # the first step moves each weight by about lr
        >>> p.data
        array([0.99, 1.01])
    """

    _decoupled = False

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
    ) -> None:
        super().__init__(params, self._checked_hyper(locals()))  # the arguments as given
        self._small_batch: _foreach._SmallBatch | None = None  # the fast path's batch

    _state_keys = (frozenset({"step", "exp_avg", "exp_avg_sq"}), frozenset({"max_exp_avg_sq"}))

    @classmethod
    def _checked_hyper(cls, group: Mapping[str, Any]) -> dict[str, Any]:
        h, name = super()._checked_hyper(group), cls.__name__
        _non_negative(h, name, ("lr", "eps", "weight_decay"))
        betas = h["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        h["betas"] = betas = (
            _number(betas[0], name, "betas[0]"),
            _number(betas[1], name, "betas[1]"),
        )
        _check(0.0 <= betas[0] < 1.0, f"Invalid beta parameter at index 0: {betas[0]}")
        _check(0.0 <= betas[1] < 1.0, f"Invalid beta parameter at index 1: {betas[1]}")
        h["amsgrad"] = bool(h["amsgrad"])
        return h

    def step(self) -> None:
        """One update of every parameter that has a gradient (see ``adam_update``)."""
        h = self.param_groups[0]
        beta1, beta2 = h["betas"]
        if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):  # e.g. edited by a schedule
            raise ValueError(
                f"{type(self).__name__}: invalid betas {h['betas']!r}, each must be in [0, 1)"
            )
        grads = self._grads()  # all checked before any parameter changes
        plain, fast = _foreach.split(grads, h["foreach"], batch_small=True)
        for i, p, g in plain:
            adam_update(p.data, g, self.state, i, h, self._decoupled)
        _foreach.adam_step(self, fast, adam_prepare)


def adam_prepare(p, g, states: dict, i: int, h: dict, decoupled: bool):
    """The first lines of Adam for parameter ``i``: maximize, weight decay (AdamW's shrinking
    of ``p`` itself when ``decoupled``), the state created at step 0, and the step counted.
    Returns the gradient to use and the state."""
    if h["maximize"]:
        g = -g
    wd = h["weight_decay"]
    if wd != 0:
        if decoupled:
            p *= 1 - h["lr"] * wd  # AdamW: shrink the weights, apart from the gradient
        else:
            g = g + wd * p
    state = states.get(i)
    if state is None:
        state = states[i] = {"step": 0, "exp_avg": np.zeros_like(p), "exp_avg_sq": np.zeros_like(p)}
    # amsgrad's running maximum, created when first needed (also after loading the state of
    # an optimizer that ran without amsgrad)
    if h["amsgrad"]:
        state.setdefault("max_exp_avg_sq", np.zeros_like(p))
    state["step"] += 1
    return g, state


def adam_update(p, g, states: dict, i: int, h: dict, decoupled: bool = False) -> None:
    """Adam on one parameter array ``p`` (in place), as the Adam docstring's equations read,
    in torch's order of operations (so that float32 results match torch's)."""
    g, state = adam_prepare(p, g, states, i, h, decoupled)
    beta1, beta2 = h["betas"]
    t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
    m += (1 - beta1) * (g - m)  # first moment: the mean of g
    v *= beta2  # second moment: the mean of g^2
    v += ((1 - beta2) * g) * g
    if h["amsgrad"]:  # the largest second moment so far
        np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        v = state["max_exp_avg_sq"]
    denom = np.sqrt(v) / math.sqrt(1 - beta2**t) + h["eps"]  # eps after the corrected sqrt
    p -= (h["lr"] / (1 - beta1**t) * m) / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (torch.optim.AdamW), default ``weight_decay=1e-2``.

    Instead of adding ``weight_decay * p`` to the gradient (which Adam then rescales), AdamW
    first shrinks the weights directly, ``p = p * (1 - lr * weight_decay)``, then takes the
    plain Adam step.

    Examples:
        >>> import numpy as np
        >>> from handprop import Parameter
        >>> p = Parameter(np.array([2.0]))
        >>> p.grad = np.array([0.0])
        >>> AdamW([p], lr=0.1, weight_decay=0.5).step()  # zero gradient: only the decay acts
        >>> p.data
        array([1.9])
    """

    _decoupled = True

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
    ) -> None:
        super().__init__(
            params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize, foreach=foreach
        )


class RMSprop(Optimizer):
    """RMSprop (torch.optim.RMSprop): each weight's step divided by the root of a running mean
    of its squared gradients, so steep and flat directions move at similar speeds.

    For each parameter p with gradient g, in this order::

        g = -g                                    if maximize
        g = g + weight_decay * p                  if weight_decay != 0
        v = alpha * v + (1 - alpha) * g * g       running mean of g^2 (square_avg)
        if centered:
            a = a + (1 - alpha) * (g - a)         running mean of g (grad_avg)
            avg = sqrt(v - a * a) + eps           the running *variance* instead
        else:
            avg = sqrt(v) + eps                   eps *after* the sqrt (Hinton's slides: inside)
        if momentum > 0:
            buf = momentum * buf + g / avg
            p = p - lr * buf
        else:
            p = p - lr * g / avg

    There is no bias correction (unlike Adam): v starts at 0, so the first steps are large,
    about ``lr / sqrt(1 - alpha)``, 10 lr with the default alpha.

    Args:
        params: the parameters to optimise.
        lr: learning rate (default 1e-2, as torch).
        alpha: smoothing constant of the running means (default 0.99).
        eps: added to the denominator (default 1e-8; Keras and nnfs use 1e-7).
        weight_decay: L2 penalty added to the gradient (default 0).
        momentum: momentum factor (default 0).
        centered: divide by the running variance of g, not its running mean square.
        maximize: climb the objective instead of descending it.
        foreach: None for the fast path on parameters of 4 MiB or more (where it helps), True for
            it everywhere, False for the plain ``rmsprop_update`` loop (the same numbers).

    Examples:
        >>> import numpy as np
        >>> from handprop import Parameter
        >>> p = Parameter(np.array([1.0, 1.0]))
        >>> p.grad = np.array([0.5, -2.0])
        >>> RMSprop([p], lr=0.01).step()  # first step: lr / sqrt(1 - alpha) = 0.1 each way
        >>> p.data.round(6)
        array([0.9, 1.1])
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, self._checked_hyper(locals()))  # the arguments as given

    _state_keys = (frozenset({"step", "square_avg"}), frozenset({"momentum_buffer", "grad_avg"}))

    @classmethod
    def _checked_hyper(cls, group: Mapping[str, Any]) -> dict[str, Any]:
        h = super()._checked_hyper(group)
        _non_negative(h, "RMSprop", ("lr", "eps", "momentum", "weight_decay", "alpha"))
        h["centered"] = bool(h["centered"])
        return h

    def step(self) -> None:
        """One update of every parameter that has a gradient (see ``rmsprop_update``)."""
        h = self.param_groups[0]
        grads = self._grads()  # all checked before any parameter changes
        plain, fast = _foreach.split(grads, h["foreach"])
        for i, p, g in plain:
            rmsprop_update(p.data, g, self.state, i, h)
        _foreach.rmsprop_step(fast, self.state, h, rmsprop_prepare)


def rmsprop_prepare(p, g, states: dict, i: int, h: dict):
    """The first lines of RMSprop for parameter ``i``: maximize, weight decay, the state
    created at step 0 (the momentum buffer and the mean of g only when used), and the step
    counted. Returns the gradient to use and the state."""
    if h["maximize"]:
        g = -g
    if h["weight_decay"] != 0:
        g = g + h["weight_decay"] * p
    state = states.get(i)
    if state is None:
        state = states[i] = {"step": 0, "square_avg": np.zeros_like(p)}
    # created when first needed (also when momentum or centered is switched on later)
    if h["momentum"] > 0:
        state.setdefault("momentum_buffer", np.zeros_like(p))
    if h["centered"]:
        state.setdefault("grad_avg", np.zeros_like(p))
    state["step"] += 1
    return g, state


def rmsprop_update(p, g, states: dict, i: int, h: dict) -> None:
    """RMSprop on one parameter array ``p`` (in place), as the RMSprop docstring's equations
    read, in torch's order of operations."""
    g, state = rmsprop_prepare(p, g, states, i, h)
    alpha, v = h["alpha"], state["square_avg"]
    v *= alpha  # v = alpha * v + (1 - alpha) * g * g
    v += ((1 - alpha) * g) * g
    if h["centered"]:
        a = state["grad_avg"]
        a += (1 - alpha) * (g - a)  # the running mean of g
        avg = np.sqrt(v - a * a)  # the running variance's root
    else:
        avg = np.sqrt(v)
    avg += h["eps"]  # eps after the sqrt
    if h["momentum"] > 0:
        buf = state["momentum_buffer"]
        buf *= h["momentum"]  # buf = momentum * buf + g / avg
        buf += g / avg
        p -= h["lr"] * buf
    else:
        p -= (h["lr"] * g) / avg


class Adagrad(Optimizer):
    """Adagrad (torch.optim.Adagrad): each weight's step divided by the root of the *sum* of
    all its squared gradients so far, so often-updated weights slow down for good.

    For each parameter p with gradient g, at step t = 1, 2, ...::

        g = -g                                     if maximize
        g = g + weight_decay * p                   if weight_decay != 0
        clr = lr / (1 + (t - 1) * lr_decay)        the decayed learning rate
        s = s + g * g                              s starts at initial_accumulator_value
        p = p - clr * g / (sqrt(s) + eps)          eps *after* the sqrt

    The sum only grows, so the effective learning rate only shrinks: Adagrad suits convex
    problems and sparse features; RMSprop and Adam replace the sum by a running mean.

    Args:
        params: the parameters to optimise.
        lr: learning rate (default 1e-2).
        lr_decay: learning-rate decay per step (default 0).
        weight_decay: L2 penalty added to the gradient (default 0).
        initial_accumulator_value: the starting value of every s (default 0).
        eps: added to the denominator (default 1e-10, not the 1e-7 or 1e-8 of other texts).
        foreach: None for the fast path on parameters of 4 MiB or more (where it helps), True for
            it everywhere, False for the plain ``adagrad_update`` loop (the same numbers).
        maximize: climb the objective instead of descending it.

    As in torch, each parameter's state (``step`` 0, ``sum``) exists from construction.

    Examples:
        >>> import numpy as np
        >>> from handprop import Parameter
        >>> p = Parameter(np.array([1.0, 1.0]))
        >>> opt = Adagrad([p], lr=0.1)
        >>> p.grad = np.array([0.5, -2.0])
        >>> opt.step()  # first step: g / sqrt(g * g) = sign(g), so lr each way
        >>> p.data
        array([0.9, 1.1])
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, self._checked_hyper(locals()))  # the arguments as given
        for i, p in enumerate(self.params):
            adagrad_state(p.data, self.state, i, self.param_groups[0])

    _state_keys = (frozenset({"step", "sum"}), frozenset())

    @classmethod
    def _checked_hyper(cls, group: Mapping[str, Any]) -> dict[str, Any]:
        h = super()._checked_hyper(group)
        names = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")
        _non_negative(h, "Adagrad", names)
        return h

    def step(self) -> None:
        """One update of every parameter that has a gradient (see ``adagrad_update``)."""
        h = self.param_groups[0]
        grads = self._grads()  # all checked before any parameter changes
        plain, fast = _foreach.split(grads, h["foreach"])
        for i, p, g in plain:
            adagrad_update(p.data, g, self.state, i, h)
        _foreach.adagrad_step(fast, self.state, h, adagrad_prepare)


def adagrad_state(p, states: dict, i: int, h: dict) -> dict:
    """Parameter ``i``'s state, created if missing: step 0, the sum at its initial value."""
    if i not in states:
        states[i] = {"step": 0, "sum": np.full_like(p, h["initial_accumulator_value"])}
    return states[i]


def adagrad_prepare(p, g, states: dict, i: int, h: dict):
    """The first lines of Adagrad for parameter ``i``: the step counted, maximize, weight decay,
    and the decayed learning rate. Returns the gradient to use, the state and the rate."""
    state = adagrad_state(p, states, i, h)
    state["step"] += 1
    if h["maximize"]:
        g = -g
    if h["weight_decay"] != 0:
        g = g + h["weight_decay"] * p
    clr = h["lr"] / (1 + (state["step"] - 1) * h["lr_decay"])
    return g, state, clr


def adagrad_update(p, g, states: dict, i: int, h: dict) -> None:
    """Adagrad on one parameter array ``p`` (in place), as the Adagrad docstring's equations
    read, in torch's order of operations."""
    g, state, clr = adagrad_prepare(p, g, states, i, h)
    s = state["sum"]
    s += g * g  # the sum of all squared gradients
    std = np.sqrt(s)
    std += h["eps"]  # eps after the sqrt
    p -= (clr * g) / std
