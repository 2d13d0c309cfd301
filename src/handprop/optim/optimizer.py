"""``Optimizer``: what every optimizer shares (its parameters, ``param_groups``, ``state``,
``zero_grad``, the checked gradients, ``state_dict`` and ``load_state_dict``), as torch's
``torch/optim/optimizer.py``. The schedules (``lr_scheduler``) need only this class, so they
import it from here, and ``optim`` imports them: no circle."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .._arrays import as_float_array, shape_str
from ..module import Parameter


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _foreach_flag(value: Any, owner: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"{owner}: foreach must be None, True or False, got {value!r}")
    return value


def _number(value: Any, owner: str, name: str) -> float:
    """``value`` if it is a real number (kept as given, so messages echo it as torch's do)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}")
    return value.item() if isinstance(value, np.generic) else value


_NOT_HYPER = ("self", "params")
#: torch's words for a hyper-parameter below 0 (``ValueError: Invalid learning rate: -1``);
#: any other name ``x`` reads ``Invalid x value``
_WORDS = {"lr": "learning rate", "eps": "epsilon value"}


def _non_negative(h: dict[str, Any], owner: str, names: Iterable[str]) -> None:
    """Each of ``names`` in ``h`` a real number (made a float) that is at least 0, or torch's
    error."""
    for name in names:
        h[name] = value = _number(h[name], owner, name)
        _check(value >= 0.0, f"Invalid {_WORDS.get(name, name + ' value')}: {value}")


class Optimizer:
    """Base class: the parameter list, ``zero_grad``, ``state_dict`` and ``load_state_dict``."""

    def __init__(self, params: Iterable[Parameter], defaults: dict[str, Any]) -> None:
        name = type(self).__name__
        if isinstance(params, Parameter):
            raise TypeError(
                f"{name}: params must be an iterable of Parameters (e.g. model.parameters()), "
                "got a single Parameter; wrap it in a list"
            )
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        for index, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise TypeError(
                    f"{name}: params[{index}] must be a handprop Parameter, got {type(p).__name__}"
                )
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"{name}: some parameters appear more than once in params")
        self.param_groups: list[dict[str, Any]] = [{"params": params, **defaults}]
        self.state: dict[int, dict[str, Any]] = {}

    @property
    def params(self) -> list[Parameter]:
        return self.param_groups[0]["params"]

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to None (torch's default, ``set_to_none=True``)."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        raise NotImplementedError

    def _grads(self) -> list[tuple[int, Parameter, np.ndarray]]:
        """``(index, parameter, gradient)`` for every parameter that has a gradient.

        Every gradient is checked (an ndarray of the parameter's shape and dtype) before any is
        returned, so that a bad one stops ``step()`` before it has changed anything.
        """
        name, found = type(self).__name__, []
        for i, p in enumerate(self.params):
            g = p.grad
            if g is None:
                continue
            if not isinstance(g, np.ndarray):
                raise TypeError(
                    f"{name}: the grad of params[{i}] must be a NumPy array, got {type(g).__name__}"
                )
            if g.dtype != p.dtype:
                raise TypeError(
                    f"{name}: the grad of params[{i}] has dtype {g.dtype}, the parameter "
                    f"{p.dtype} (torch refuses such a grad too); cast it with .astype"
                )
            if g.shape != p.shape:
                raise ValueError(
                    f"{name}: the grad of params[{i}] has shape "
                    f"{shape_str(g.shape)}, the parameter {shape_str(p.shape)}"
                )
            found.append((i, p, g))
        return found

    # -- saving and restoring --------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """``{"state": {i: {...}}, "param_groups": [{hyper-parameters, "params": [0, 1, ...]}]}``,
        torch's layout; arrays are copies."""
        group = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        group["params"] = list(range(len(self.params)))
        state = {
            i: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
            for i, s in self.state.items()
        }
        return {"state": state, "param_groups": [group]}

    #: The keys of a parameter's state: required, and allowed besides them.
    _state_keys: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())

    @classmethod
    def _checked_hyper(cls, group: Mapping[str, Any]) -> dict[str, Any]:
        """The hyper-parameters of ``group``: the constructor's arguments after ``params``, in
        its order (torch's), so each is written once, in the signature. A subclass converts and
        checks them with torch's wording (``ValueError: Invalid learning rate: -1``) after
        calling this; a missing one raises KeyError. The constructor passes its ``locals()``:
        the arguments as given."""
        # the library's own class (a learner's subclass may have a constructor of its own)
        own = next((c for c in cls.__mro__ if c.__module__ == "handprop.optim"), cls)
        names = [n for n in inspect.signature(own.__init__).parameters if n not in _NOT_HYPER]
        h = {name: group[name] for name in names}
        if "maximize" in h:
            h["maximize"] = bool(h["maximize"])
        if "foreach" in h:
            h["foreach"] = _foreach_flag(h["foreach"], cls.__name__)
        return h

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyper-parameters and state saved by ``state_dict()`` (or by torch's optimizer
        of the same class: tensors are accepted). Checked before anything is changed: another
        optimizer's state, a malformed hyper-parameter or state entry raises ``ValueError``."""
        name = type(self).__name__
        where = f"{name}.load_state_dict"
        try:
            groups, state = state_dict["param_groups"], state_dict["state"]
            sizes = [len(g["params"]) for g in groups]
        except (TypeError, KeyError):
            raise ValueError(
                f"{where}: expected a dict with 'state' and 'param_groups' "
                "(each group with its 'params'), as state_dict() returns"
            ) from None
        if sizes != [len(self.params)]:
            raise ValueError(
                f"{where}: the saved optimizer has {sizes} parameters per group, this one "
                f"[{len(self.params)}]"
            )
        group = groups[0]
        current = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        missing = [k for k in current if k not in group and k != "foreach"]
        if missing:
            raise ValueError(
                f"{where}: the saved group has no {', '.join(map(repr, missing))}: it is not "
                f"the state of a {name}"
            )
        hyper = {k: (tuple(v) if isinstance(v, list) else v) for k, v in group.items()}
        hyper.setdefault("foreach", current["foreach"])  # a state saved without it keeps ours
        try:
            hyper = self._checked_hyper(hyper)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{where}: {error}") from None
        hyper.update(_schedule_entries(group, current, where))
        new_state = {}
        for position, saved_id in enumerate(group["params"]):
            if saved_id in state:
                new_state[position] = self._checked_state(position, state[saved_id], where)
        self.param_groups[0].update(hyper)
        self.state = new_state

    def _checked_state(self, position: int, saved: Any, where: str) -> dict[str, Any]:
        """One parameter's saved state as fresh arrays, or ValueError saying what is wrong."""
        required, optional = self._state_keys
        keys = set(saved) if isinstance(saved, dict) else set()
        if not isinstance(saved, dict) or not required <= keys <= required | optional:
            raise ValueError(
                f"{where}: the state of parameter {position} has keys {sorted(keys)}, a "
                f"{type(self).__name__} keeps {sorted(required)}"
                + (f" (and optionally {sorted(optional)})" if optional else "")
            )
        p, entry = self.params[position], {}
        for key, value in saved.items():
            if key == "step":
                step = np.asarray(value)
                if step.shape != () or step.dtype.kind not in "iuf" or step < 0 or step % 1:
                    raise ValueError(
                        f"{where}: 'step' of parameter {position} must be a whole number >= 0, "
                        f"got {value!r}"
                    )
                entry[key] = int(step)
                continue
            array = as_float_array(value, where, key, p.dtype)
            if array.shape != p.shape:
                raise ValueError(
                    f"{where}: state {key!r} of parameter {position} has "
                    f"shape {shape_str(array.shape)}, the parameter {shape_str(p.shape)}"
                )
            entry[key] = array.copy()
        return entry

    def __repr__(self) -> str:
        group = self.param_groups[0]
        lines = [f"    {k}: {v}" for k, v in group.items() if k != "params"]
        return f"{type(self).__name__} (\nParameter Group 0\n" + "\n".join(lines) + "\n)"


def _schedule_entries(group: dict[str, Any], current: dict[str, Any], where: str) -> dict:
    """The entries of a saved group that are not this optimizer's own hyper-parameters: what
    a schedule wrote there (``initial_lr``; OneCycleLR's ``max_lr``, ``min_lr``,
    ``max_momentum``, ``base_momentum``), kept as torch keeps them so that the schedule
    resumes. Each must be a real number (or a pair of them). torch's switches of its own
    implementation (``capturable``, ``differentiable``, ``fused``: True, False or None) mean
    nothing here and are left out."""
    entries = {}
    for key, value in group.items():
        if key in current or key == "params" or value is None or isinstance(value, bool):
            continue
        numbers = value if isinstance(value, (tuple, list)) else (value,)
        if not all(_is_real(x) for x in numbers):
            raise ValueError(
                f"{where}: the saved group's {key!r} must be a number (what a learning-rate "
                f"schedule keeps there), got {value!r}"
            )
        entries[key] = tuple(map(float, value)) if numbers is value else float(value)
    return entries


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
