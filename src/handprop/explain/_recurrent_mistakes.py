"""The classic mistakes of a recurrent backward, for ``check_module``'s diagnosis.

Each mistake is named by making handprop's reference commit it and comparing: the reference
(an ``RNNCell``, ``LSTM``, ...) is copied into a subclass whose step backward or accumulation
has the mistake, run on the same inputs and upstream gradient, and the learner's gradient is
compared with the mistaken one. The layer's own description (its gate blocks, its step backward,
its accumulation over time) is all this reads:

* ``h-path-dropped``: the state's gradient not carried back (``dJ/dh_{t-1}`` left at zero):
  every step then sees only its own output's gradient;
* ``not-summed-over-time``: the weights' gradient of one time step only, where the same weights
  serve every step and their gradient is the sum of every step's share (also: ``.grad`` set at
  each step instead of added to, which ``check_module`` sees happen);
* ``gates-order``: the gate blocks of a weight's gradient in another order than torch's
  (``i, f, g, o`` for an LSTM, ``r, z, n`` for a GRU).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

from ..layers.rnn import _Layered, _Recurrent


def recurrent(reference: Any) -> _Recurrent | None:
    """The reference, when it is one of handprop's recurrent modules (else None)."""
    return reference if isinstance(reference, _Recurrent) else None


def gates_order(what: str, got: np.ndarray, right: np.ndarray, close, reference) -> Any:
    """A weight's or bias's gradient whose gate blocks (rows of ``G * H``) are the right
    ones in another order."""
    gates, names = reference._gates, reference._gate_names
    if gates == 1 or got.shape != right.shape or got.shape[0] != gates * reference.hidden_size:
        return None
    blocks = np.split(right, gates, axis=0)
    for order in itertools.permutations(range(gates)):
        if order != tuple(range(gates)) and close(got, np.concatenate([blocks[k] for k in order])):
            used = ", ".join(names[k] for k in order)
            return "gates-order", (
                f"{what}: your gradient has the right gate blocks in the order {used}; torch's "
                f"order is {', '.join(names)} (rows 0 to H-1 are {names[0]}'s, H to 2H-1 "
                f"{names[1]}'s, ...): put each gate's dz in its own block"
            )
    return None


def _drop_state_path(base: type, dropped: int, finals_too: bool) -> type:
    """The reference, its step backward returning zeros for the first ``dropped`` states'
    gradients (``h``; or ``h`` and ``c``); ``finals_too``: the gradients of the last states
    (``h_n``, ``c_n``) dropped as well, as a loop that writes ``dh = grad_output[t]`` does."""

    def zeroed(d_state: tuple) -> tuple:
        return (*(np.zeros_like(d) for d in d_state[:dropped]), *d_state[dropped:])

    class DropsThePathThroughTheState(base):
        def _step_backward(self, d_state, cache, weight_hh):
            dgx, dgh, before = base._step_backward(self, d_state, cache, weight_hh)
            return dgx, dgh, zeroed(before)

        def _backward_run(self, run, d_hs, d_state, through, input_grad):
            d_state = zeroed(d_state) if finals_too else d_state
            return base._backward_run(self, run, d_hs, d_state, through, input_grad)

    return DropsThePathThroughTheState


def _one_step(base: type, keep_last: bool) -> type:
    class OneTimeStep(base):
        def _accumulate(self, run, dgx, dgh):
            keep = np.zeros((len(dgx), 1, 1), dgx.dtype)
            keep[-1 if keep_last else 0] = 1
            base._accumulate(self, run, dgx * keep, dgh * keep)

    return OneTimeStep


H_PATH_HINT = (
    "{what}: your backward does not carry the gradient of the state back: dJ/dh_(t-1) = dz "
    "W_hh (plus, for a GRU, g * z) is the path to the step before, and each step's dJ/dh is "
    "what its output gives plus what the step after it sends back"
)
_ONE_STEP_HINT = (
    "{what}: your gradient is one time step's share ({which}); the same weights serve every "
    "step, so their gradient is the sum of every step's share (add each step's into .grad)"
)


def variants(reference: _Recurrent) -> list[tuple[str, str, Callable[[], Any]]]:
    """``(code, hint, make)`` for each mistaken copy of the reference to compare with."""
    base = type(reference)

    def mistaken(cls: type) -> Callable[[], Any]:
        def make() -> Any:
            clone = copy.deepcopy(reference)
            clone.__class__ = cls
            return clone

        return make

    found = [
        ("h-path-dropped", H_PATH_HINT, mistaken(_drop_state_path(base, dropped, finals)))
        for dropped in range(1, reference._states + 1)  # h alone; an LSTM's h and c
        for finals in ((False, True) if isinstance(reference, _Layered) else (False,))
    ]
    if isinstance(reference, _Layered):
        for keep_last, which in ((True, "the last step's"), (False, "the first step's")):
            hint = _ONE_STEP_HINT.replace("{which}", which)
            found.append(("not-summed-over-time", hint, mistaken(_one_step(base, keep_last))))
    return found


OVERWRITTEN_HINT = (
    "{what}: your backward set {what}.grad at each time step where it must add to it: the same "
    "weights serve all {uses} steps, and the gradient is the sum of every step's share "
    "(accumulate_grad, or grad = grad + ...); the last step's share replaced the others"
)
