"""Optimizers against torch.optim: trajectories for every option combination, both dtypes,
and the worked example's Adam and SGD steps."""

import itertools

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from closeness import assert_close
from hypothesis import given
from hypothesis import strategies as st

from handprop import Parameter, Sequential
from handprop import worked_example as we
from handprop.layers import Linear, Tanh
from handprop.losses import MSELoss
from handprop.optim import SGD, Adagrad, Adam, AdamW, RMSprop

try:  # the tests marked torch need it (and skip without it); the others run anyway
    import torch
    from parity import check_training
except ImportError:
    torch = None

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
STEPS = 150


def sgd_options():
    for momentum, dampening, nesterov, wd, maximize in itertools.product(
        (0.0, 0.9), (0.0, 0.5), (False, True), (0.0, 0.1), (False, True)
    ):
        if momentum == 0 and (dampening or nesterov):
            continue  # dampening and nesterov act only through momentum
        if nesterov and dampening:
            continue  # torch refuses it (tested in test_optim_errors)
        yield dict(
            lr=0.05,
            momentum=momentum,
            dampening=dampening,
            nesterov=nesterov,
            weight_decay=wd,
            maximize=maximize,
        )


def adam_options():
    for amsgrad, wd, maximize in itertools.product((False, True), (0.0, 0.1), (False, True)):
        yield dict(lr=0.01, betas=(0.8, 0.99), amsgrad=amsgrad, weight_decay=wd, maximize=maximize)


def rmsprop_options():
    for wd, momentum, centered, maximize in itertools.product(
        (0.0, 0.1), (0.0, 0.9), (False, True), (False, True)
    ):
        yield dict(
            lr=0.005,
            alpha=0.9,
            weight_decay=wd,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
        )
    # alpha < 0.5: torch's lerp of the centered mean takes its other branch
    yield dict(lr=0.005, alpha=0.3, momentum=0.5, centered=True, eps=1e-6)


def adagrad_options():
    for lr_decay, wd, initial, maximize in itertools.product(
        (0.0, 0.01), (0.0, 0.1), (0.0, 0.1), (False, True)
    ):
        yield dict(
            lr=0.05,
            lr_decay=lr_decay,
            weight_decay=wd,
            initial_accumulator_value=initial,
            maximize=maximize,
        )


CASES = [("SGD", o) for o in sgd_options()]
CASES += [(name, o) for name in ("Adam", "AdamW") for o in adam_options()]
CASES += [("Adagrad", o) for o in adagrad_options()]
# RMSprop is compared step by step instead (test_update_matches_torch_step_by_step): its own
# trajectories are chaotic, see test_rmsprop_trajectories_are_chaotic_even_in_torch.
STEP_CASES = [("RMSprop", o) for o in rmsprop_options()]
STEP_CASES += [("Adagrad", o) for o in adagrad_options()]


@pytest.mark.torch
@DTYPES
@pytest.mark.parametrize(("optimizer", "hyper"), CASES, ids=[f"{n}-{o}" for n, o in CASES])
def test_trajectory_matches_torch(dtype, optimizer, hyper):
    model = Sequential(Linear(3, 8, dtype=dtype, rng=0), Tanh(), Linear(8, 2, dtype=dtype, rng=1))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 3)).astype(dtype)
    y = rng.normal(size=(16, 2)).astype(dtype)
    costs, _ = check_training(model, MSELoss(), X, y, optimizer, STEPS, **hyper)
    assert costs[-1] < 0.9 * costs[0]  # it did train (maximize climbs -cost: the same descent)


def _small_problem(dtype):
    model = Sequential(Linear(3, 8, dtype=dtype, rng=0), Tanh(), Linear(8, 2, dtype=dtype, rng=1))
    rng = np.random.default_rng(0)
    return model, rng.normal(size=(16, 3)).astype(dtype), rng.normal(size=(16, 2)).astype(dtype)


@pytest.mark.torch
@DTYPES
@pytest.mark.parametrize(
    ("optimizer", "hyper"), STEP_CASES, ids=[f"{n}-{o}" for n, o in STEP_CASES]
)
def test_update_matches_torch_step_by_step(dtype, optimizer, hyper):
    """torch trains for 150 steps; before each of its steps, handprop's optimizer is handed
    torch's parameters, gradients and optimizer state (``load_state_dict`` of torch's own
    ``state_dict()``), and its update must give torch's new parameters and state.

    Each step takes a random half of the data (mini-batches, as RMSprop is used): with the
    same full-batch gradient at every step, centered RMSprop's variance v - a^2 shrinks
    towards 0 and the rounding of that subtraction, not the update, would be compared."""
    from parity import TORCH_OPTIMIZERS, to_torch_model

    import handprop.optim

    model, X, y = _small_problem(dtype)
    twin, params = to_torch_model(model), list(model.parameters())
    t_opt = TORCH_OPTIMIZERS[optimizer](twin.parameters(), **hyper)
    opt = getattr(handprop.optim, optimizer)(params, **hyper)
    tx, ty = torch.from_numpy(X), torch.from_numpy(y)
    sign = -1.0 if hyper.get("maximize") else 1.0  # as check_training: climb -cost
    batches, first = np.random.default_rng(1), None
    for step in range(STEPS):
        t_opt.zero_grad()
        if first is None:
            first = torch.nn.functional.mse_loss(twin(tx), ty).item()
        rows = torch.from_numpy(batches.permutation(len(X))[: len(X) // 2])
        cost = torch.nn.functional.mse_loss(twin(tx[rows]), ty[rows])
        (sign * cost).backward()
        for p, t_p in zip(params, twin.parameters(), strict=True):
            p.data[...] = t_p.detach().numpy()
            p.grad = t_p.grad.numpy().copy()
        opt.load_state_dict(t_opt.state_dict())
        opt.step()
        t_opt.step()
        for k, (p, t_p) in enumerate(zip(params, twin.parameters(), strict=True)):
            where = f"parameter {k} after step {step + 1}"
            assert_close(where, p.data, t_p.detach().numpy(), dtype)
            t_state = t_opt.state[t_p]
            assert opt.state[k].keys() == t_state.keys(), where
            assert opt.state[k]["step"] == t_state["step"].item(), where
            for key in t_state.keys() - {"step"}:
                assert_close(f"{key} of {where}", opt.state[k][key], t_state[key].numpy(), dtype)
    full = torch.nn.functional.mse_loss(twin(tx), ty).item()
    assert full < 0.9 * first  # it did train


@pytest.mark.torch
def test_rmsprop_trajectories_are_chaotic_even_in_torch():
    """Why RMSprop is compared step by step, not over a whole trajectory: dividing by the root
    of the running mean square makes a weight whose gradient hovers around 0 take steps of
    about lr whatever the gradient's size, so a difference in the last bit can grow into a
    different step. torch against itself, the first layer's weights nudged by one ulp, on the
    trajectory problem in float64: with RMSprop (weight decay 0.1) the two runs drift more
    than 1e-9 apart (1.7e-6 measured), with Adam they stay within 1e-14 (9e-16 measured)."""
    from parity import TORCH_OPTIMIZERS, to_torch_model

    def drift(optimizer, **hyper):
        runs = []
        for nudge in (False, True):
            model, X, y = _small_problem(np.float64)
            if nudge:  # every weight of the first layer up by one ulp
                w = model[0].weight.data
                w[...] = np.nextafter(w, np.inf)
            twin = to_torch_model(model)
            t_opt = TORCH_OPTIMIZERS[optimizer](twin.parameters(), **hyper)
            path = []
            for _ in range(STEPS):
                t_opt.zero_grad()
                cost = torch.nn.functional.mse_loss(twin(torch.from_numpy(X)), torch.from_numpy(y))
                cost.backward()
                t_opt.step()
                path.append(np.concatenate([t.detach().numpy().ravel() for t in twin.parameters()]))
            runs.append(np.array(path))
        return np.abs(runs[0] - runs[1]).max()

    assert drift("RMSprop", lr=0.005, alpha=0.9, weight_decay=0.1) > 1e-9
    assert drift("Adam", lr=0.01, betas=(0.8, 0.99)) < 1e-14


# torch's float32 costs for the worked example under Adam(lr=0.01), before step 1..5 and after
# step 5 (../shared/reference/pytorch_semantics.md, measured with torch 2.13.0).
ADAM_COSTS_FLOAT32 = [0.19522886, 0.16303208, 0.14266783, 0.13154796, 0.12667690, 0.12504479]


@pytest.mark.torch
@DTYPES
def test_worked_example_five_adam_steps(dtype):
    model = we.model(dtype)
    X, y = we.data(dtype)
    costs, _ = check_training(model, we.loss_fn(), X, y, "Adam", 5, lr=0.01)
    costs.append(we.loss_fn()(model(X), y))
    np.testing.assert_allclose(
        costs, ADAM_COSTS_FLOAT32, rtol=1e-6 if dtype is np.float32 else 1e-5
    )


def test_first_adam_step_moves_each_weight_by_lr_against_its_gradient():
    model = we.model(np.float64)
    X, y = we.data(np.float64)
    before = model.state_dict()
    loss = we.loss_fn()
    loss(model(X), y)
    model.backward(loss.backward())
    grads = {n: p.grad.copy() for n, p in model.named_parameters()}
    Adam(model.parameters(), lr=0.01).step()
    for name, p in model.named_parameters():
        moved = p.data - before[name]
        # m / sqrt(v) = g / |g| on the first step: exactly lr against the sign, up to eps
        np.testing.assert_allclose(moved, -0.01 * np.sign(grads[name]), atol=1e-7, err_msg=name)
    assert np.all(model[0].weight.data[2] == before["0.weight"][2])  # dead unit: zero gradient


@pytest.mark.torch
@DTYPES
def test_worked_example_one_sgd_step(dtype):
    X, y = we.data(dtype)
    check_training(we.model(dtype), we.loss_fn(), X, y, "SGD", 1, lr=0.01)


def test_parameters_without_grad_are_skipped():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(2))
    for opt in (SGD([a, b], lr=0.1, momentum=0.9), Adam([a, b]), AdamW([a, b]), RMSprop([a, b])):
        a.grad, b.grad = np.ones(2), None
        opt.step()
        np.testing.assert_array_equal(b.data, 1.0)
        assert 1 not in opt.state
        a.data[...] = 1.0
    opt = Adagrad([a, b], initial_accumulator_value=0.5)  # as torch: state from the start
    a.grad, b.grad = np.ones(2), None
    opt.step()
    np.testing.assert_array_equal(b.data, 1.0)
    assert opt.state[1]["step"] == 0 and opt.state[0]["step"] == 1
    np.testing.assert_array_equal(opt.state[1]["sum"], 0.5)
    np.testing.assert_array_equal(opt.state[0]["sum"], 1.5)


@pytest.mark.torch
@pytest.mark.parametrize("cls", [RMSprop, Adagrad])
def test_state_dict_keys_and_defaults_are_torchs(cls):
    """The same hyper-parameter defaults and state keys as torch's optimizer, so that state
    dicts pass between them both ways."""
    import inspect

    ours = inspect.signature(cls).parameters
    theirs = inspect.signature(getattr(torch.optim, cls.__name__)).parameters
    for name, parameter in ours.items():
        assert theirs[name].default == parameter.default, name
    p = Parameter(np.ones(3))
    t_p = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    options = {"momentum": 0.5, "centered": True} if cls is RMSprop else {}
    opt, t_opt = cls([p], **options), getattr(torch.optim, cls.__name__)([t_p], **options)
    p.grad, t_p.grad = np.ones(3), torch.ones(3, dtype=torch.float64)
    opt.step()
    t_opt.step()
    assert opt.state_dict()["state"][0].keys() == t_opt.state_dict()["state"][0].keys()
    ours_group = opt.state_dict()["param_groups"][0]
    assert ours_group.keys() <= t_opt.state_dict()["param_groups"][0].keys()
    saved = opt.state_dict()  # torch takes handprop's state too, arrays made tensors
    saved["state"] = {
        i: {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in e.items()}
        for i, e in saved["state"].items()
    }
    t_opt.load_state_dict(saved)
    p.grad, t_p.grad = np.full(3, 2.0), torch.full((3,), 2.0, dtype=torch.float64)
    opt.step()
    t_opt.step()
    np.testing.assert_allclose(p.data, t_p.detach().numpy(), rtol=1e-14)


def test_momentum_buffer_does_not_alias_the_gradient():
    p = Parameter(np.zeros(2))
    opt = SGD([p], lr=0.1, momentum=0.9)
    p.grad = np.ones(2)
    opt.step()
    assert opt.state[0]["momentum_buffer"] is not p.grad
    p.grad[...] = 100.0  # a later in-place change to the grad must not leak into the buffer
    np.testing.assert_array_equal(opt.state[0]["momentum_buffer"], 1.0)


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW, RMSprop, Adagrad])
def test_state_dict_round_trip_continues_bit_for_bit(cls):
    def setup():
        model = Sequential(Linear(3, 4, rng=0), Tanh(), Linear(4, 1, rng=1))
        kwargs = {
            SGD: {"momentum": 0.9},
            RMSprop: {"momentum": 0.9, "centered": True},
            Adagrad: {"lr_decay": 0.01, "initial_accumulator_value": 0.1},
        }.get(cls, {"amsgrad": True})
        return model, cls(model.parameters(), lr=0.01, **kwargs)

    X = np.random.default_rng(1).normal(size=(8, 3))
    y = np.random.default_rng(2).normal(size=(8, 1))
    loss = MSELoss()

    def train(model, opt, steps):
        for _ in range(steps):
            opt.zero_grad()
            loss(model(X), y)
            model.backward(loss.backward())
            opt.step()

    straight, opt = setup()
    train(straight, opt, 20)
    first, opt1 = setup()
    train(first, opt1, 10)
    resumed, opt2 = setup()
    resumed.load_state_dict(first.state_dict())
    opt2.load_state_dict(opt1.state_dict())
    train(resumed, opt2, 10)
    for (n, p), (_, q) in zip(straight.named_parameters(), resumed.named_parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data, err_msg=n)


@pytest.mark.torch
def test_torch_adam_state_dict_loads_and_continues_like_torch():
    from parity import to_torch_model

    model = Sequential(Linear(3, 4, rng=0), Tanh(), Linear(4, 1, rng=1))
    twin = to_torch_model(model)
    t_opt = torch.optim.Adam(twin.parameters(), lr=0.01)
    X = np.random.default_rng(1).normal(size=(8, 3)).astype(np.float32)
    y = np.random.default_rng(2).normal(size=(8, 1)).astype(np.float32)
    for _ in range(3):
        t_opt.zero_grad()
        torch.nn.functional.mse_loss(twin(torch.from_numpy(X)), torch.from_numpy(y)).backward()
        t_opt.step()
    model.load_state_dict(twin.state_dict())
    opt = Adam(model.parameters())
    opt.load_state_dict(t_opt.state_dict())
    assert opt.param_groups[0]["lr"] == 0.01 and opt.state[0]["step"] == 3
    loss = MSELoss()
    loss(model(X), y)
    model.backward(loss.backward())
    opt.step()
    t_opt.zero_grad()
    torch.nn.functional.mse_loss(twin(torch.from_numpy(X)), torch.from_numpy(y)).backward()
    t_opt.step()
    for p, t_p in zip(model.parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(p.data, t_p.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.torch
@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_blocked_update_equals_whole_array_update_and_torch(monkeypatch, amsgrad):
    """Large layers are updated block by block (a cache-friendly fast path): the result must be
    bit for bit that of whole-array operations, and match torch."""
    from handprop.optim import _foreach

    rng = np.random.default_rng(0)
    data = rng.standard_normal((300, 400)).astype(np.float32)  # 120000 > one block
    grads = [rng.standard_normal((300, 400)).astype(np.float32) for _ in range(3)]

    def run(block):
        monkeypatch.setattr(_foreach, "_BLOCK", block)
        p = Parameter(data.copy())
        opt = Adam([p], lr=0.01, amsgrad=amsgrad)
        for g in grads:
            p.grad = g
            opt.step()
        return p.data

    blocked, whole = run(1 << 15), run(10**9)
    np.testing.assert_array_equal(blocked, whole)
    t_p = torch.nn.Parameter(torch.from_numpy(data.copy()))
    t_opt = torch.optim.Adam([t_p], lr=0.01, amsgrad=amsgrad)
    for g in grads:
        t_p.grad = torch.from_numpy(g)
        t_opt.step()
    np.testing.assert_allclose(blocked, t_p.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_adam_handles_parameters_of_any_memory_layout():
    rng = np.random.default_rng(1)
    data = rng.standard_normal((5, 7))
    g = rng.standard_normal((5, 7))
    plain, fortran = Parameter(data.copy()), Parameter(np.asfortranarray(data))
    for p in (plain, fortran):
        p.grad = np.asfortranarray(g) if p is plain else g.copy()
        Adam([p], lr=0.1).step()
    np.testing.assert_array_equal(plain.data, fortran.data)


@pytest.mark.torch
def test_amsgrad_switched_on_after_loading_plain_adam_state_keeps_its_maximum():
    """amsgrad follows the hyper-parameter, not what the loaded state happens to contain."""
    rng = np.random.default_rng(3)
    data, grads = rng.standard_normal(6), [rng.standard_normal(6) for _ in range(4)]
    plain = Parameter(data.copy())
    opt = Adam([plain], lr=0.1)
    plain.grad = grads[0]
    opt.step()
    resumed = Parameter(plain.data.copy())
    ams = Adam([resumed], lr=0.1, amsgrad=True)
    saved = opt.state_dict()
    saved["param_groups"][0]["amsgrad"] = True
    ams.load_state_dict(saved)
    t_p = torch.nn.Parameter(torch.from_numpy(plain.data.copy()))
    t_opt = torch.optim.Adam([t_p], lr=0.1, amsgrad=True)
    t_state = {
        k: torch.tensor(v) if isinstance(v, np.ndarray) else torch.tensor(float(v))
        for k, v in opt.state[0].items()
    }
    t_state["max_exp_avg_sq"] = torch.zeros(6, dtype=torch.float64)  # torch needs it given
    t_opt.state[t_p] = t_state
    for g in grads[1:]:
        resumed.grad = g
        ams.step()
        t_p.grad = torch.from_numpy(g)
        t_opt.step()
    assert "max_exp_avg_sq" in ams.state[0]
    np.testing.assert_allclose(resumed.data, t_p.detach().numpy(), rtol=1e-13, atol=1e-13)


def _adam_runs(shapes, grad_schedule, *, amsgrad_from=None, seed=4, dtype=np.float32):
    """Run Adam on parameters of ``shapes`` two ways: one optimizer for all of them (small ones
    batched, see _foreach._SmallBatch) and one optimizer per parameter (nothing to batch).
    ``grad_schedule[k]`` lists which parameters get a gradient at step k; from step
    ``amsgrad_from`` on, amsgrad is switched on. Returns both runs' parameters and states."""
    rng = np.random.default_rng(seed)
    data = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in grad_schedule]
    together = [Parameter(d.copy()) for d in data]
    apart = [Parameter(d.copy()) for d in data]
    opt = Adam(together, lr=0.01)
    opts = [Adam([p], lr=0.01) for p in apart]
    for k, (who, step_grads) in enumerate(zip(grad_schedule, grads, strict=True)):
        if k == amsgrad_from:
            for o in [opt, *opts]:
                o.param_groups[0]["amsgrad"] = True
        for i, (p, q) in enumerate(zip(together, apart, strict=True)):
            p.grad = q.grad = step_grads[i].copy() if i in who else None
        opt.step()
        for o in opts:
            o.step()
    states = [o.state.get(0) for o in opts]
    return together, apart, opt.state, states


@pytest.mark.parametrize(
    ("schedule", "amsgrad_from"),
    [
        ([range(4)] * 4, None),  # every parameter every step: batched throughout
        ([range(4), [0, 2], range(4), [1, 2, 3]], None),  # some skipped: steps differ
        ([range(4)] * 5, 2),  # amsgrad switched on mid-way: the batch is rebuilt
    ],
    ids=["all", "some-skipped", "amsgrad-later"],
)
def test_adam_small_parameters_updated_together_equal_one_by_one(schedule, amsgrad_from):
    """The batched update of small parameters is, bit for bit, the per-parameter update, and
    each parameter's state keeps its own shape and values."""
    shapes = [(3, 2), (3,), (1, 3), ()]
    _assert_same_runs(*_adam_runs(shapes, schedule, amsgrad_from=amsgrad_from))


def _assert_same_runs(together, apart, state, states):
    for i, (p, q) in enumerate(zip(together, apart, strict=True)):
        np.testing.assert_array_equal(p.data, q.data, err_msg=f"parameter {i}")
        assert (i in state) == (states[i] is not None)
        if states[i] is None:
            continue
        assert state[i].keys() == states[i].keys()
        for key, value in states[i].items():
            np.testing.assert_array_equal(state[i][key], value, err_msg=f"{i} {key}")
            assert np.shape(state[i][key]) == np.shape(value)


@given(
    shapes=st.lists(hnp.array_shapes(min_dims=0, max_dims=2, max_side=4), min_size=2, max_size=5),
    # mostly every parameter (the batched path), at some steps only some of them
    schedule=st.lists(
        st.one_of(*[st.just(set(range(5)))] * 3, st.sets(st.integers(0, 4))),
        min_size=1,
        max_size=5,
    ),
    amsgrad_from=st.none() | st.integers(1, 4),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_adam_batching_is_invisible_for_any_shapes_and_schedule(
    shapes, schedule, amsgrad_from, dtype
):
    """Whatever the parameters' shapes, whichever get gradients at each step, with amsgrad
    switched on at any point: batched and one-by-one updates agree bit for bit."""
    _assert_same_runs(*_adam_runs(shapes, schedule, amsgrad_from=amsgrad_from, dtype=dtype))


@pytest.mark.torch
def test_adam_small_parameters_with_skipped_grads_match_torch():
    """Parameters without a gradient at some steps keep their own step counts, as in torch."""
    shapes = [(3, 2), (3,), (2,)]
    schedule = [range(3), [0], [0, 2], range(3), [1]]
    together, _, _, _ = _adam_runs(shapes, schedule)
    rng = np.random.default_rng(4)  # the same draws as _adam_runs
    data = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in schedule]
    t_params = [torch.nn.Parameter(torch.from_numpy(d)) for d in data]
    t_opt = torch.optim.Adam(t_params, lr=0.01)
    for who, step_grads in zip(schedule, grads, strict=True):
        for i, t_p in enumerate(t_params):
            t_p.grad = torch.from_numpy(step_grads[i]) if i in who else None
        t_opt.step()
    for p, t_p in zip(together, t_params, strict=True):
        np.testing.assert_allclose(p.data, t_p.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_adam_state_is_batched_views_yet_reads_like_per_parameter_state():
    """After a step the state arrays are views into the batch, but state_dict gives copies and
    a loaded state replaces them cleanly (the batch is rebuilt from the loaded values)."""
    p, q = Parameter(np.ones((2, 2), np.float32)), Parameter(np.ones(3, np.float32))
    opt = Adam([p, q], lr=0.1)
    p.grad, q.grad = np.ones((2, 2), np.float32), -np.ones(3, np.float32)
    opt.step()
    saved = opt.state_dict()
    assert opt.state[0]["exp_avg"].base is not None  # a view into the batch
    assert saved["state"][0]["exp_avg"].base is None  # state_dict: an independent copy
    opt.step()
    assert saved["state"][0]["step"] == 1 and saved["state"][0]["exp_avg"][0, 0] == 0.1
    opt.load_state_dict(saved)
    np.testing.assert_array_equal(opt.state[1]["exp_avg"], np.float32(-0.1))
    opt.step()  # continues from the loaded state
    assert opt.state[0]["step"] == 2
    np.testing.assert_allclose(opt.state[1]["exp_avg"], -0.19, rtol=1e-6)


@pytest.mark.parametrize("clone", ["deepcopy", "pickle"])
def test_adam_copied_mid_training_continues_like_the_original(clone):
    """A copy of an optimizer (to keep a checkpoint in memory, say) must not lose its moments:
    its batched state views become separate arrays in the copy, and the copy notices."""
    import copy
    import pickle

    def steps(opt, n):
        for _ in range(n):
            for k, p in enumerate(opt.params):
                p.grad = np.full(p.shape, k + 1.0, np.float32)
            opt.step()

    params = [Parameter(np.ones(s, np.float32)) for s in [(2, 2), (3,), ()]]
    opt = Adam(params, lr=0.1, amsgrad=True)
    steps(opt, 2)
    twin = copy.deepcopy(opt) if clone == "deepcopy" else pickle.loads(pickle.dumps(opt))
    steps(opt, 3)
    steps(twin, 3)
    for i, (p, q) in enumerate(zip(opt.params, twin.params, strict=True)):
        np.testing.assert_array_equal(q.data, p.data, err_msg=f"parameter {i}")
        for key, value in opt.state[i].items():
            np.testing.assert_array_equal(twin.state[i][key], value, err_msg=f"{i} {key}")


OPTION_GRID = {
    SGD: [
        dict(
            zip(
                ("momentum", "dampening", "nesterov", "weight_decay", "maximize"),
                combo,
                strict=True,
            )
        )
        for combo in itertools.product(
            (0.0, 0.9), (0.0, 0.3), (False, True), (0.0, 0.1), (False, True)
        )
        if not combo[2] or (combo[0] > 0 and combo[1] == 0)
    ],
    Adam: [
        dict(zip(("weight_decay", "amsgrad", "maximize"), combo, strict=True))
        for combo in itertools.product((0.0, 0.1), (False, True), (False, True))
    ],
}
OPTION_GRID[AdamW] = OPTION_GRID[Adam]
OPTION_GRID[RMSprop] = [
    dict(zip(("alpha", "weight_decay", "momentum", "centered", "maximize"), combo, strict=True))
    for combo in itertools.product((0.9, 0.3), (0.0, 0.1), (0.0, 0.9), (False, True), (False, True))
]
OPTION_GRID[Adagrad] = [
    dict(
        zip(
            ("lr_decay", "weight_decay", "initial_accumulator_value", "maximize"),
            combo,
            strict=True,
        )
    )
    for combo in itertools.product((0.0, 0.01), (0.0, 0.1), (0.0, 0.1), (False, True))
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("cls", [SGD, Adam, AdamW, RMSprop, Adagrad])
def test_plain_and_fast_updates_agree_bit_for_bit_for_every_option(monkeypatch, cls, dtype):
    """optim's plain per-parameter functions (foreach=False) against the fast paths of
    _foreach (blocks, Adam's batch of small parameters; foreach=True) and the default's mix
    (None), for every option combination: equal parameters and state, bit for bit, over 6
    steps with a grad skipped now and then."""
    from handprop.optim import _foreach

    monkeypatch.setattr(_foreach, "_BLOCK", 64)  # so the 20 x 10 parameter is blocked
    rng = np.random.default_rng(5)
    shapes = [(20, 10), (3, 4), (5,), ()]
    start = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(6)]
    for options in OPTION_GRID[cls]:
        runs = []
        for foreach in (False, True, None):
            params = [Parameter(a.copy()) for a in start]
            opt = cls(params, lr=0.05, foreach=foreach, **options)
            for step, step_grads in enumerate(grads):
                for k, (p, g) in enumerate(zip(params, step_grads, strict=True)):
                    p.grad = None if (step + k) % 5 == 4 else g.copy()
                opt.step()
            runs.append((params, opt.state_dict()["state"]))
        (plain, plain_state), *others = runs
        for fast, fast_state in others:
            for k, (p, q) in enumerate(zip(plain, fast, strict=True)):
                assert p.data.tobytes() == q.data.tobytes(), (options, k)
            assert plain_state.keys() == fast_state.keys()
            for k, entry in plain_state.items():
                assert entry.keys() == fast_state[k].keys(), (options, k)
                for key, value in entry.items():
                    fast_value = np.asarray(fast_state[k][key])
                    assert np.asarray(value).tobytes() == fast_value.tobytes(), (options, k, key)


def test_the_bit_for_bit_comparison_can_fail(monkeypatch):
    """One ulp of difference in the plain update is caught by the comparison above."""
    from handprop import optim

    original = optim.adam_update

    def off_by_rounding(p, g, states, i, h, decoupled=False):
        original(p, g, states, i, h, decoupled)
        p[...] = np.nextafter(p, np.inf)

    monkeypatch.setattr(optim, "adam_update", off_by_rounding)
    with pytest.raises(AssertionError):
        test_plain_and_fast_updates_agree_bit_for_bit_for_every_option(
            monkeypatch, Adam, np.float32
        )


@pytest.mark.parametrize("cls", [RMSprop, Adagrad])
def test_the_bit_for_bit_comparison_catches_a_reordered_fast_path(monkeypatch, cls):
    """The same for RMSprop and Adagrad: a fast path that computes p - lr * (g / avg) instead
    of torch's p - (lr * g) / avg (a different rounding) is caught."""
    from handprop.optim import _foreach

    def reordered(p, g, *state, **h):
        lr = h.get("lr", h.get("clr"))
        before = p.copy()
        original(p, g, *state, **h)
        moved = before - p  # (lr * g) / avg, as rounded
        p[...] = before - lr * (moved / lr)

    name = "_rmsprop_update" if cls is RMSprop else "_adagrad_update"
    original = getattr(_foreach, name)
    monkeypatch.setattr(_foreach, name, reordered)
    with pytest.raises(AssertionError):
        test_plain_and_fast_updates_agree_bit_for_bit_for_every_option(monkeypatch, cls, np.float32)


#: The fast-path function each optimizer's step calls on the arrays it updates there, and the
#: _foreach threshold its default uses.
FAST_PATHS = {
    SGD: ("_subtract_scaled", "_SGD_FAST_FROM"),
    Adam: ("_adam_update", "_FAST_FROM"),
    RMSprop: ("_rmsprop_update", "_FAST_FROM"),
    Adagrad: ("_adagrad_update", "_FAST_FROM"),
}


@pytest.mark.parametrize("cls", [SGD, Adam, RMSprop, Adagrad])
def test_default_foreach_takes_the_fast_path_only_where_it_helps(monkeypatch, cls):
    """foreach=None: blocks where they pay (parameters of the optimizer's threshold in bytes or
    more), the plain function elsewhere, except that Adam batches its small parameters (one
    block or less each) on the fast path; True: the fast path everywhere; False: nowhere."""
    from handprop.optim import _foreach

    name, threshold = FAST_PATHS[cls]
    original, sizes = getattr(_foreach, name), []

    def recording(p, *args, **kwargs):
        sizes.append(p.size)
        original(p, *args, **kwargs)

    monkeypatch.setattr(_foreach, name, recording)
    monkeypatch.setattr(_foreach, "_BLOCK", 64)
    monkeypatch.setattr(_foreach, threshold, 800)  # bytes: 200 float32 numbers
    # large (blocked), middle (more than a block, under the threshold), two small
    params = [Parameter(np.ones(s, np.float32)) for s in [(20, 10), (10, 10), (3, 4), (64,)]]
    if cls is Adam:  # the two small ones are updated together, as one array of 12 + 64
        expected = {None: [200, 76], True: [200, 100, 76], False: []}
    else:
        expected = {None: [200], True: [200, 100, 12, 64], False: []}
    for foreach in (None, True, False):
        sizes.clear()
        for p in params:
            p.grad = np.ones(p.shape, np.float32)
        cls(params, lr=0.01, foreach=foreach).step()
        assert sizes == expected[foreach], foreach


def test_foreach_is_a_flag_and_survives_state_dict():
    p = Parameter(np.ones(2))
    with pytest.raises(TypeError, match="SGD: foreach must be None, True or False, got 'yes'"):
        SGD([p], foreach="yes")
    opt = Adam([p], foreach=False)
    saved = opt.state_dict()
    assert saved["param_groups"][0]["foreach"] is False
    del saved["param_groups"][0]["foreach"]  # a state saved before foreach existed loads too
    fresh = Adam([p], foreach=True)
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["foreach"] is True
