"""Learning-rate schedules against torch.optim.lr_scheduler: 200-step sequences equal to the
last bit, resuming from state_dict, errors."""

import math

import numpy as np
import pytest

from handprop import Parameter
from handprop.optim import SGD, Adam
from handprop.optim import lr_scheduler as ours

torch = pytest.importorskip("torch", reason="the sequences are compared with torch's")

CASES = [
    ("StepLR", {"step_size": 7, "gamma": 0.5}),
    ("StepLR", {"step_size": 1}),
    ("MultiStepLR", {"milestones": [10, 30, 30, 120], "gamma": 0.3}),
    ("ExponentialLR", {"gamma": 0.97}),
    ("CosineAnnealingLR", {"T_max": 50}),
    ("CosineAnnealingLR", {"T_max": 37, "eta_min": 0.01}),
    ("LinearLR", {}),
    ("LinearLR", {"start_factor": 0.1, "end_factor": 0.5, "total_iters": 60}),
    ("LambdaLR", {"lr_lambda": lambda epoch: 0.95**epoch / (1 + epoch % 3)}),
]


def _pair(name, kwargs, optimizer="SGD"):
    p, t = Parameter(np.zeros(2)), torch.zeros(2, requires_grad=True)
    if optimizer == "SGD":
        opt, t_opt = SGD([p], lr=0.3, momentum=0.9), torch.optim.SGD([t], lr=0.3, momentum=0.9)
    else:
        opt, t_opt = Adam([p], lr=0.3), torch.optim.Adam([t], lr=0.3)
    p.grad, t.grad = np.ones(2), torch.ones(2)
    return (
        opt,
        getattr(ours, name)(opt, **kwargs),
        t_opt,
        getattr(torch.optim.lr_scheduler, name)(t_opt, **kwargs),
    )


@pytest.mark.torch
@pytest.mark.parametrize(("name", "kwargs"), CASES)
@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_200_steps_equal_torchs_to_the_last_bit(name, kwargs, optimizer):
    opt, sched, t_opt, t_sched = _pair(name, kwargs, optimizer)
    for step in range(200):
        assert sched.get_last_lr() == t_sched.get_last_lr(), f"step {step}"
        assert opt.param_groups[0]["lr"] == t_opt.param_groups[0]["lr"]
        assert sched.last_epoch == t_sched.last_epoch == step
        opt.step()
        t_opt.step()
        sched.step()
        t_sched.step()


@pytest.mark.torch
@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_a_schedule_resumed_from_its_state_dict_goes_on_as_torchs(name, kwargs):
    opt, sched, t_opt, t_sched = _pair(name, kwargs)
    for _ in range(23):
        opt.step(), sched.step(), t_opt.step(), t_sched.step()
    saved, t_saved = sched.state_dict(), t_sched.state_dict()
    assert set(saved) <= set(t_saved) | {"_is_initial"}  # torch's keys (and ours)
    opt2 = SGD([Parameter(np.zeros(2))], lr=0.3, momentum=0.9)
    resumed = getattr(ours, name)(opt2, **kwargs)
    # as torch resumes: the optimizer's state (its current rate) and the scheduler's
    opt2.load_state_dict(opt.state_dict())
    resumed.load_state_dict(saved)
    for step in range(60):
        assert resumed.get_last_lr() == t_sched.get_last_lr(), f"step {23 + step}"
        opt2.step(), resumed.step(), t_opt.step(), t_sched.step()


@pytest.mark.torch
def test_the_recursive_cosine_is_torchs_and_not_the_closed_form_to_the_bit():
    opt, sched, _, _ = _pair("CosineAnnealingLR", {"T_max": 50})
    recursive, closed = [], []
    for t in range(1, 120):
        opt.step(), sched.step()
        recursive.append(sched.get_last_lr()[0])
        closed.append(0.3 * (1 + math.cos(math.pi * t / 50)) / 2)
    np.testing.assert_allclose(recursive, closed, rtol=1e-9, atol=1e-15)  # the same curve
    assert recursive != closed  # but not the same bits: torch's form is the recursive one


def test_step_sets_the_optimizers_rate_and_the_schedule_starts_from_initial_lr():
    opt = SGD([Parameter(np.zeros(1))], lr=1.0)
    sched = ours.LinearLR(opt, start_factor=0.25, total_iters=3)
    assert opt.param_groups[0]["initial_lr"] == 1.0 and sched.base_lrs == [1.0]
    rates = []
    for _ in range(5):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    np.testing.assert_allclose(rates, [0.25, 0.5, 0.75, 1.0, 1.0])


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: ours.StepLR("sgd", 3), TypeError, r"str is not an Optimizer"),
        (
            lambda: ours.StepLR(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1), 3),
            TypeError,
            r"SGD is not an Optimizer",
        ),
        (
            lambda: ours.LinearLR(SGD([Parameter(np.zeros(1))], lr=1.0), start_factor=0.0),
            ValueError,
            r"Starting multiplicative factor expected to be greater than 0",
        ),
        (
            lambda: ours.LinearLR(SGD([Parameter(np.zeros(1))], lr=1.0), end_factor=2.0),
            ValueError,
            r"Ending multiplicative factor expected to be between 0 and 1",
        ),
        (
            lambda: ours.LambdaLR(SGD([Parameter(np.zeros(1))], lr=1.0), 0.5),
            TypeError,
            r"lr_lambda must be a function, got float",
        ),
        (
            lambda: ours.StepLR(SGD([Parameter(np.zeros(1))], lr=1.0), 3, last_epoch=5),
            KeyError,
            r"initial_lr",
        ),
    ],
)
def test_bad_input_raises_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.torch
@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_lr": 1.0, "total_steps": 200},
        {"max_lr": 0.5, "epochs": 10, "steps_per_epoch": 20, "anneal_strategy": "linear"},
        {"max_lr": 2.0, "total_steps": 200, "three_phase": True, "pct_start": 0.25},
        {"max_lr": 1.0, "total_steps": 200, "cycle_momentum": False, "div_factor": 10.0},
    ],
)
def test_one_cycle_rates_and_momentum_equal_torchs(optimizer, kwargs):
    opt, sched, t_opt, t_sched = _pair("OneCycleLR", kwargs, optimizer)
    key = "momentum" if optimizer == "SGD" else "betas"
    for step in range(200):
        assert sched.get_last_lr() == t_sched.get_last_lr(), f"step {step}"
        assert opt.param_groups[0][key] == t_opt.param_groups[0][key], f"step {step}"
        opt.step(), t_opt.step()
        if step < 199:
            sched.step(), t_sched.step()
    with pytest.raises(ValueError, match="Tried to step 201 times"):
        sched.step(), sched.step()


@pytest.mark.torch
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"mode": "max", "factor": 0.5, "patience": 2},
        {"threshold_mode": "abs", "threshold": 0.05, "patience": 1, "cooldown": 3},
        {"factor": 0.2, "patience": 0, "min_lr": 0.01},
    ],
)
def test_reduce_on_plateau_follows_torch_on_a_noisy_metric(kwargs):
    p, t = Parameter(np.zeros(1)), torch.zeros(1, requires_grad=True)
    opt, t_opt = SGD([p], lr=1.0), torch.optim.SGD([t], lr=1.0)
    sched = ours.ReduceLROnPlateau(opt, **kwargs)
    t_sched = torch.optim.lr_scheduler.ReduceLROnPlateau(t_opt, **kwargs)
    rng = np.random.default_rng(0)
    metric = 1.0
    for epoch in range(200):
        metric = metric * 0.99 + rng.normal(0, 0.02) + (0.05 if epoch % 40 > 25 else 0.0)
        sched.step(metric)
        t_sched.step(metric)
        assert sched.get_last_lr() == t_sched.get_last_lr(), f"epoch {epoch}"
        assert (sched.best, sched.num_bad_epochs) == (t_sched.best, t_sched.num_bad_epochs)
    assert sched.get_last_lr()[0] < 1.0  # it did reduce


def test_one_cycle_and_plateau_refuse_bad_input():
    opt = SGD([Parameter(np.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match="You must define either total_steps OR"):
        ours.OneCycleLR(opt, max_lr=1.0)
    with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
        ours.OneCycleLR(
            SGD([Parameter(np.zeros(1))], lr=1.0, momentum=0.0) if False else _NoMomentum(),
            max_lr=1.0,
            total_steps=5,
        )
    with pytest.raises(
        ValueError, match="anneal_strategy must be one of 'cos' or 'linear', instead got cosine"
    ):
        ours.OneCycleLR(opt, max_lr=1.0, total_steps=5, anneal_strategy="cosine")
    with pytest.raises(ValueError, match="mode maximum is unknown!"):
        ours.ReduceLROnPlateau(opt, mode="maximum")
    with pytest.raises(ValueError, match="Factor should be < 1.0."):
        ours.ReduceLROnPlateau(opt, factor=2.0)


class _NoMomentum(SGD):
    """An optimizer whose group has neither momentum nor betas."""

    def __init__(self):
        super().__init__([Parameter(np.zeros(1))], lr=1.0)
        del self.param_groups[0]["momentum"]
