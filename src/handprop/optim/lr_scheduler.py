"""Learning-rate schedules, as ``torch.optim.lr_scheduler`` (also ``handprop.optim.lr_scheduler``).

A scheduler changes ``optimizer.param_groups[0]["lr"]``; call ``scheduler.step()`` once per
epoch (or per batch), **after** ``optimizer.step()``, as in torch:

    for epoch in range(epochs):
        for X_batch, y_batch in batches(...):
            ...
            optimizer.step()
        scheduler.step()

Creating a scheduler records the optimizer's learning rate as ``initial_lr`` (the base of the
schedule) and sets the rate of step 0. ``last_epoch`` counts the steps taken, ``get_last_lr()``
is the rate now in the optimizer, and ``state_dict()``/``load_state_dict()`` resume a schedule.
Each ``get_lr`` below is torch's formula, written the way torch evaluates it (several are
recursive: each rate from the previous one), so the sequences are torch's to the last bit.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from .optimizer import Optimizer

__all__ = [
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "OneCycleLR",
    "ReduceLROnPlateau",
    "StepLR",
]


class LRScheduler:
    """The shared machinery: ``initial_lr``, ``last_epoch``, ``step()``, ``get_last_lr()``."""

    def __init__(self, optimizer: Any, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        group = optimizer.param_groups[0]
        if last_epoch == -1:
            group.setdefault("initial_lr", group["lr"])
        elif "initial_lr" not in group:
            raise KeyError(
                "param 'initial_lr' is not specified in param_groups[0] when resuming a "
                "scheduler with last_epoch >= 0 (load the optimizer's state first)"
            )
        self.base_lrs = [group["initial_lr"]]
        self.last_epoch = last_epoch
        self._step_count = 0
        self._is_initial = True  # the step below sets the rate of step 0
        self.step()
        self._is_initial = False

    def get_lr(self) -> list[float]:
        """The learning rate for ``last_epoch`` (each subclass's formula)."""
        raise NotImplementedError

    def step(self) -> None:
        """Advance the schedule by one step and set the optimizer's learning rate."""
        self._step_count += 1
        self.last_epoch += 1
        values = self.get_lr()
        self.optimizer.param_groups[0]["lr"] = values[0]
        self._last_lr = list(values)

    def get_last_lr(self) -> list[float]:
        """The learning rate the last ``step()`` set (a list: one per parameter group)."""
        return list(self._last_lr)

    def _lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer (torch's keys: ``last_epoch``, ``base_lrs``, ...)."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        unknown = set(state_dict) - set(self.state_dict())
        if unknown:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: unexpected keys {sorted(unknown)}: "
                "not this scheduler's state"
            )
        self.__dict__.update(state_dict)


class StepLR(LRScheduler):
    """Multiply the rate by ``gamma`` every ``step_size`` steps:
    ``lr = initial_lr * gamma ** (last_epoch // step_size)``.

    Examples:
        >>> from handprop import Parameter
        >>> from handprop.optim import SGD
        >>> import numpy as np
        >>> optimizer = SGD([Parameter(np.zeros(1))], lr=1.0)
        >>> scheduler = StepLR(optimizer, step_size=2, gamma=0.5)
        >>> rates = []
        >>> for epoch in range(5):
        ...     optimizer.step()
        ...     rates.append(scheduler.get_last_lr()[0])
        ...     scheduler.step()
        >>> rates
        [1.0, 1.0, 0.5, 0.5, 0.25]
    """

    def __init__(self, optimizer: Any, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return [self._lr()]
        return [self._lr() * self.gamma]


class MultiStepLR(LRScheduler):
    """Multiply the rate by ``gamma`` at each step listed in ``milestones`` (a milestone listed
    twice multiplies twice)."""

    def __init__(
        self, optimizer: Any, milestones: Iterable[int], gamma: float = 0.1, last_epoch: int = -1
    ):
        self.milestones, self.gamma = Counter(milestones), gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch not in self.milestones:
            return [self._lr()]
        return [self._lr() * self.gamma ** self.milestones[self.last_epoch]]


class ExponentialLR(LRScheduler):
    """Multiply the rate by ``gamma`` every step: ``lr = initial_lr * gamma ** last_epoch``."""

    def __init__(self, optimizer: Any, gamma: float, last_epoch: int = -1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return [self._lr()]
        return [self._lr() * self.gamma]


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from ``initial_lr`` down to ``eta_min`` over ``T_max`` steps (then back
    up, a cosine of period ``2 T_max``):

    ``lr_t = eta_min + (initial_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2``

    computed, as torch does, recursively from the previous rate: ``lr_t = eta_min + (lr_{t-1}
    - eta_min) * (1 + cos(pi t / T_max)) / (1 + cos(pi (t-1) / T_max))``, which also follows a
    rate changed by hand in between. The two forms differ in the last bits.
    """

    def __init__(self, optimizer: Any, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t, base = self.last_epoch, self.base_lrs[0]
        if self._is_initial:
            return [self._lr()]
        if self._step_count == 1 and t > 0:  # resumed at last_epoch = t: the closed form
            return [
                self.eta_min + (base - self.eta_min) * (1 + math.cos(t * math.pi / self.T_max)) / 2
            ]
        if (t - 1 - self.T_max) % (2 * self.T_max) == 0:  # at the bottom: the next cosine
            return [self._lr() + (base - self.eta_min) * (1 - math.cos(math.pi / self.T_max)) / 2]
        ratio = (1 + math.cos(math.pi * t / self.T_max)) / (
            1 + math.cos(math.pi * (t - 1) / self.T_max)
        )
        return [ratio * (self._lr() - self.eta_min) + self.eta_min]


class LambdaLR(LRScheduler):
    """``lr = initial_lr * lr_lambda(last_epoch)``, for any function of the step.

    ``state_dict()`` leaves the function out (it is code, not state), as torch does."""

    def __init__(self, optimizer: Any, lr_lambda: Callable[[int], float], last_epoch: int = -1):
        if not callable(lr_lambda):
            raise TypeError(
                f"LambdaLR: lr_lambda must be a function, got {type(lr_lambda).__name__}"
            )
        self.lr_lambdas = [lr_lambda]
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [self.base_lrs[0] * self.lr_lambdas[0](self.last_epoch)]

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["lr_lambdas"] = [None]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        lambdas = self.lr_lambdas
        super().load_state_dict(state_dict)
        self.lr_lambdas = lambdas


class LinearLR(LRScheduler):
    """Change the rate linearly from ``start_factor * initial_lr`` to ``end_factor *
    initial_lr`` over ``total_iters`` steps, then keep it (a warm-up, with the defaults).

    torch computes each rate from the previous one by the ratio of consecutive factors;
    so does this."""

    def __init__(
        self,
        optimizer: Any,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ):
        if start_factor > 1.0 or start_factor <= 0:
            raise ValueError(
                "Starting multiplicative factor expected to be greater than 0 and less or "
                "equal to 1."
            )
        if end_factor > 1.0 or end_factor < 0:
            raise ValueError("Ending multiplicative factor expected to be between 0 and 1.")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return [self._lr() * self.start_factor]
        if self._is_initial or self.last_epoch > self.total_iters:
            return [self._lr()]
        change = self.end_factor - self.start_factor
        previous = self.total_iters * self.start_factor + (self.last_epoch - 1) * change
        return [self._lr() * (1.0 + change / previous)]


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith, 2018): the rate rises from ``max_lr / div_factor`` to
    ``max_lr`` over the first ``pct_start`` of ``total_steps``, then falls to
    ``initial_lr / final_div_factor``; the momentum (or Adam's beta1) moves the other way,
    between ``max_momentum`` and ``base_momentum``. Each phase anneals by a half cosine
    (``"cos"``) or linearly; ``three_phase=True`` comes back down to the start before the final
    fall. Call ``step()`` after every batch: ``total_steps`` counts batches, not epochs.
    """

    def __init__(
        self,
        optimizer: Any,
        max_lr: float,
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float = 0.85,
        max_momentum: float = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        self.total_steps = _total_steps(total_steps, epochs, steps_per_epoch)
        if not isinstance(pct_start, float) or not 0 <= pct_start <= 1:
            raise ValueError(f"Expected float between 0 and 1 pct_start, but got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(
                f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}"
            )
        self.anneal_strategy = anneal_strategy
        self._phases = _one_cycle_phases(pct_start, self.total_steps, three_phase)
        group = optimizer.param_groups[0]
        if last_epoch == -1:
            group["initial_lr"] = max_lr / div_factor
            group["max_lr"] = max_lr
            group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in group and "betas" not in group:
                raise ValueError(
                    "optimizer must support momentum or beta1 with `cycle_momentum` option enabled"
                )
            self.use_beta1 = "betas" in group
            if last_epoch == -1:
                self._set_momentum(max_momentum)
                group["max_momentum"], group["base_momentum"] = max_momentum, base_momentum
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, value: float) -> None:
        group = self.optimizer.param_groups[0]
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> list[float]:
        t = self.last_epoch
        if t > self.total_steps:
            raise ValueError(
                f"Tried to step {t} times. The specified number of total steps is "
                f"{self.total_steps}"
            )
        group, start_step = self.optimizer.param_groups[0], 0.0
        for i, (end_step, lr_from, lr_to, m_from, m_to) in enumerate(self._phases):
            if t <= end_step or i == len(self._phases) - 1:
                pct = (t - start_step) / (end_step - start_step)
                if self.cycle_momentum:
                    self._set_momentum(self._anneal(group[m_from], group[m_to], pct))
                return [self._anneal(group[lr_from], group[lr_to], pct)]
            start_step = end_step
        raise AssertionError("unreachable: the last phase always matches")


def _total_steps(total_steps, epochs, steps_per_epoch) -> int:
    if total_steps is not None:
        if not isinstance(total_steps, int) or total_steps <= 0:
            raise ValueError(f"Expected positive integer total_steps, but got {total_steps}")
        return total_steps
    if epochs is not None and steps_per_epoch is not None:
        for name, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"Expected positive integer {name}, but got {value}")
        return epochs * steps_per_epoch
    raise ValueError("You must define either total_steps OR (epochs AND steps_per_epoch)")


def _one_cycle_phases(pct_start: float, total: int, three_phase: bool) -> list[tuple]:
    """``(end_step, lr from, lr to, momentum from, momentum to)`` for each phase (group keys)."""
    up = float(pct_start * total) - 1
    if three_phase:
        return [
            (up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
            (
                float(2 * pct_start * total) - 2,
                "max_lr",
                "initial_lr",
                "base_momentum",
                "max_momentum",
            ),
            (total - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
        ]
    return [
        (up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
        (total - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
    ]


class ReduceLROnPlateau:
    """Divide the rate by ``1 / factor`` when a metric stops improving: after more than
    ``patience`` steps without a better value (better: below ``best * (1 - threshold)`` for
    ``mode="min"`` and ``threshold_mode="rel"``; above for ``"max"``; by ``threshold`` itself
    for ``"abs"``), then wait ``cooldown`` steps; never below ``min_lr``, and not at all if
    the change would be smaller than ``eps``. ``step(metric)`` takes the metric, usually the
    validation loss, once per epoch.
    """

    def __init__(
        self,
        optimizer: Any,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0,
        eps: float = 1e-8,
    ):
        if factor >= 1.0:
            raise ValueError("Factor should be < 1.0.")
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        if mode not in ("min", "max"):
            raise ValueError(f"mode {mode} is unknown!")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold mode {threshold_mode} is unknown!")
        self.optimizer, self.factor, self.patience, self.cooldown = (
            optimizer,
            factor,
            patience,
            cooldown,
        )
        self.mode, self.threshold, self.threshold_mode = mode, threshold, threshold_mode
        self.min_lrs, self.eps, self.last_epoch = [min_lr], eps, 0
        self._last_lr = [optimizer.param_groups[0]["lr"]]
        self.best = math.inf if mode == "min" else -math.inf
        self.cooldown_counter = self.num_bad_epochs = 0

    def _is_better(self, a: float, best: float) -> bool:
        if self.threshold_mode == "rel":
            scale = 1.0 - self.threshold if self.mode == "min" else self.threshold + 1.0
            return a < best * scale if self.mode == "min" else a > best * scale
        return a < best - self.threshold if self.mode == "min" else a > best + self.threshold

    def step(self, metrics: float) -> None:
        """Record this epoch's metric; reduce the rate if it has not improved for too long."""
        current = float(metrics)
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in the cooldown do not count
        if self.num_bad_epochs > self.patience:
            group = self.optimizer.param_groups[0]
            old = float(group["lr"])
            new = max(old * self.factor, self.min_lrs[0])
            if old - new > self.eps:
                group["lr"] = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [self.optimizer.param_groups[0]["lr"]]

    def get_last_lr(self) -> list[float]:
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update(state_dict)
