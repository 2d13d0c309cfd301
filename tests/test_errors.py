"""Bad input: each error has the right type and a message naming the module or argument,
what was expected and what came; the model is left unchanged."""

import re

import numpy as np
import pytest

from handprop import Parameter, Sequential
from handprop import worked_example as we
from handprop.layers import LeakyReLU, Linear, ReLU, Sigmoid, Tanh
from handprop.losses import BCELoss, BCEWithLogitsLoss, MSELoss

LINEAR = re.escape("Linear(in_features=2, out_features=3, bias=True)")


def snapshot(model):
    return {
        n: (p.data.copy(), None if p.grad is None else p.grad.copy())
        for n, p in model.named_parameters()
    }


def assert_unchanged(model, before):
    for n, p in model.named_parameters():
        np.testing.assert_array_equal(p.data, before[n][0])
        assert (p.grad is None) == (before[n][1] is None)


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (
            np.ones((4, 3)),
            LINEAR
            + r": expected input of shape \(\*, 2\) \(a last axis of 2 features\), got \(4, 3\)$",
        ),
        (np.ones((1, 4, 3)), LINEAR + r": expected input of shape \(\*, 2\) .*, got \(1, 4, 3\)"),
        (np.ones((0,)), LINEAR + r": expected input of shape \(\*, 2\) .*, got \(0,\)"),
        (np.float64(1.0), LINEAR + r": expected input of shape \(\*, 2\) .*, got \(\)"),
    ],
)
def test_linear_input_shape(x, message):
    layer = Linear(2, 3, rng=0)
    before = snapshot(layer)
    with pytest.raises(ValueError, match=message):
        layer(x)
    assert_unchanged(layer, before)


@pytest.mark.parametrize("module", [Linear(2, 3, rng=0), ReLU(), Sigmoid(), Tanh(), LeakyReLU()])
@pytest.mark.parametrize(
    ("x", "kind"),
    [
        (np.array([["a", "b"]]), "<U1"),
        (np.array([[1 + 2j, 0]]), "complex128"),
        ([[None, 1]], "object"),
    ],
)
def test_non_numeric_input_is_a_type_error(module, x, kind):
    with pytest.raises(
        TypeError,
        match=re.escape(module._short_name())
        + r": input must be a real numeric array, got .* of dtype "
        + kind,
    ):
        module(x)


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((0, 3), ValueError, "Linear: in_features must be a positive int, got 0"),
        ((2, -1), ValueError, "Linear: out_features must be a positive int, got -1"),
        ((2.5, 3), TypeError, "Linear: in_features must be a positive int, got 2.5"),
        ((True, 3), TypeError, "Linear: in_features must be a positive int, got True"),
        (("2", 3), TypeError, "Linear: in_features must be a positive int, got '2'"),
    ],
)
def test_linear_sizes(args, error, message):
    with pytest.raises(error, match=re.escape(message)):
        Linear(*args)


def test_linear_dtype():
    with pytest.raises(
        TypeError,
        match=re.escape(
            "Linear: dtype must be np.float32 or np.float64, got <class 'numpy.int32'>"
        ),
    ):
        Linear(2, 3, dtype=np.int32)
    with pytest.raises(
        TypeError, match="Linear: dtype must be np.float32 or np.float64, got 'float16'"
    ):
        Linear(2, 3, dtype="float16")


def test_leaky_relu_slope():
    with pytest.raises(TypeError, match="LeakyReLU: negative_slope must be a number, got '0.1'"):
        LeakyReLU("0.1")
    with pytest.raises(ValueError, match="LeakyReLU: negative_slope must be finite, got nan"):
        LeakyReLU(float("nan"))


@pytest.mark.parametrize(
    ("module", "name"),
    [
        (Linear(2, 3), LINEAR),
        (ReLU(), r"ReLU\(\)"),
        (Sigmoid(), r"Sigmoid\(\)"),
        (Tanh(), r"Tanh\(\)"),
        (LeakyReLU(), r"LeakyReLU\(negative_slope=0.01\)"),
        (we.model(), "Sequential"),
    ],
)
def test_backward_before_forward(module, name):
    with pytest.raises(RuntimeError, match=name + r".*backward\(\) was called before forward\(\)"):
        module.backward(np.ones((2, 3)))


@pytest.mark.parametrize("loss", [BCELoss(), BCEWithLogitsLoss(), MSELoss(reduction="sum")])
def test_loss_backward_before_forward(loss):
    with pytest.raises(
        RuntimeError, match=re.escape(repr(loss)) + r": backward\(\) was called before forward\(\)"
    ):
        loss.backward()


def test_grad_output_of_the_wrong_shape():
    model = we.model()
    X, _ = we.data()
    model(X)
    before = snapshot(model)
    with pytest.raises(
        ValueError,
        match=r"Sigmoid\(\): backward\(\) expected grad_output of shape \(2, 1\) \(the shape of the last forward output\), got \(2,\)",
    ):
        model.backward(np.ones(2))
    assert_unchanged(model, before)
    layer = Linear(2, 3)
    layer(np.ones((5, 2)))
    with pytest.raises(
        ValueError,
        match=LINEAR + r": backward\(\) expected grad_output of shape \(5, 3\).*got \(3, 5\)",
    ):
        layer.backward(np.ones((3, 5)))
    assert layer.weight.grad is None


@pytest.mark.parametrize(
    ("loss", "x", "t", "message"),
    [
        (
            BCELoss(),
            np.full((2, 1), 0.5),
            np.ones(2),
            r"BCELoss\(\): target shape \(2,\) is different from input shape \(2, 1\)",
        ),
        (
            MSELoss(),
            np.ones((3, 2)),
            np.ones((2, 3)),
            r"MSELoss\(\): target shape \(2, 3\) is different from input shape \(3, 2\)",
        ),
        (
            BCELoss(),
            np.array([0.5, 1.5]),
            np.array([0.0, 1.0]),
            r"BCELoss\(\): all elements of input should be between 0 and 1, got 1.5 at index \[1\]",
        ),
        (
            BCELoss(),
            np.array([0.5, -0.1]),
            np.array([0.0, 1.0]),
            r"all elements of input should be between 0 and 1, got -0.1",
        ),
        (
            BCELoss(),
            np.array([np.nan, 0.5]),
            np.array([0.0, 1.0]),
            r"all elements of input should be between 0 and 1, got nan at index \[0\]",
        ),
        (
            BCELoss(),
            np.array([0.5, 0.5]),
            np.array([0.0, 2.0]),
            r"all elements of target should be between 0 and 1, got 2.0",
        ),
        (
            BCELoss(),
            np.array([0.5, 0.5]),
            np.array([np.nan, 1.0]),
            r"all elements of target should be between 0 and 1, got nan",
        ),
        (
            BCELoss(),
            np.ones((0, 1)),
            np.ones((0, 1)),
            r"BCELoss\(\): input is empty \(shape \(0, 1\)\)",
        ),
        (
            BCELoss(weight=np.ones(3)),
            np.full((2, 2), 0.5),
            np.ones((2, 2)),
            r"BCELoss\(\): weight of shape \(3,\) does not broadcast to the input shape \(2, 2\)",
        ),
        (
            BCEWithLogitsLoss(pos_weight=np.ones(3)),
            np.ones((2, 2)),
            np.ones((2, 2)),
            r"pos_weight of shape \(3,\) does not broadcast to the input shape \(2, 2\)",
        ),
    ],
)
def test_loss_arguments(loss, x, t, message):
    with pytest.raises(ValueError, match=message):
        loss(x, t)
    with pytest.raises(RuntimeError, match=r"backward\(\) after a forward\(\) that failed"):
        loss.backward()  # the failed call left nothing behind


@pytest.mark.parametrize("cls", [BCELoss, BCEWithLogitsLoss, MSELoss])
@pytest.mark.parametrize("reduction", ["avg", "Mean", None, 1])
def test_unknown_reduction(cls, reduction):
    with pytest.raises(
        ValueError,
        match=rf"{cls.__name__}: reduction must be 'mean', 'sum' or 'none', got {re.escape(repr(reduction))}",
    ):
        cls(reduction=reduction)


def test_loss_grad_output_shapes():
    loss = BCELoss(reduction="none")
    loss(np.full((2, 1), 0.5), np.zeros((2, 1)))
    with pytest.raises(
        RuntimeError,
        match=r"BCELoss\(reduction='none'\): backward\(\) needs grad_output, dJ/d\(output\): only a scalar",
    ):
        loss.backward()  # torch: 'grad can be implicitly created only for scalar outputs'
    with pytest.raises(
        ValueError,
        match=r"BCELoss\(reduction='none'\): backward\(\) expected grad_output to be an array of the losses' shape \(2, 1\), got shape \(\)",
    ):
        loss.backward(1.0)
    mean = MSELoss()
    mean(np.ones(2), np.zeros(2))
    with pytest.raises(
        ValueError,
        match=r"MSELoss\(\): backward\(\) expected grad_output to be a scalar \(\), got shape \(2,\)",
    ):
        mean.backward(np.ones(2))


@pytest.mark.parametrize(
    ("state", "message"),
    [
        (
            {k: v for k, v in we.PARAMETERS.items() if k != "2.bias"},
            r"Missing key\(s\) in state_dict: '2.bias'",
        ),
        ({**we.PARAMETERS, "6.weight": [1.0]}, r"Unexpected key\(s\) in state_dict: '6.weight'"),
        (
            {**we.PARAMETERS, "0.weight": np.ones((2, 3))},
            r"size mismatch for 0.weight: copying a param with shape \(2, 3\) from checkpoint, the shape in current model is \(3, 2\)",
        ),
    ],
)
def test_bad_state_dict_raises_and_changes_nothing(state, message):
    model = we.model()
    model[0].weight.data[...] = 7.0
    before = snapshot(model)
    with pytest.raises(
        ValueError, match=r"Error\(s\) in loading state_dict for Sequential:\n\t" + message
    ):
        model.load_state_dict(state)
    assert_unchanged(model, before)


def test_state_dict_type_errors():
    model = we.model()
    with pytest.raises(
        TypeError,
        match="Sequential.load_state_dict: expected a mapping of names to arrays, got list",
    ):
        model.load_state_dict([1, 2])
    with pytest.raises(
        TypeError,
        match="Sequential.load_state_dict: 0.bias must be a real numeric array, got list of dtype <U1",
    ):
        model.load_state_dict({**we.PARAMETERS, "0.bias": ["a", "b", "c"]})


def test_sequential_arguments():
    with pytest.raises(
        TypeError, match="Sequential: argument 1 must be a handprop Module, got ufunc"
    ):
        Sequential(Linear(2, 2), np.tanh)
    with pytest.raises(
        TypeError,
        match=r"argument 2 must be a handprop Module, got BCELoss \(a loss is not a layer",
    ):
        Sequential(Linear(2, 1), Sigmoid(), BCELoss())
    relu = ReLU()
    assert Sequential(relu, Linear(2, 2), relu)[2] is relu  # a module may be used twice
    with pytest.raises(IndexError, match="Sequential index 3 is out of range for 3 modules"):
        Sequential(ReLU(), ReLU(), ReLU())[3]
    with pytest.raises(TypeError, match="Sequential indices must be integers or slices, got str"):
        Sequential(ReLU())["0"]


def test_a_failed_forward_in_sequential_names_the_position_and_refuses_a_backward():
    model = we.model()
    X, _ = we.data()
    model(X)
    with pytest.raises(
        ValueError,
        match=r"Sequential\[0\]: "
        + LINEAR
        + r": expected input of shape \(\*, 2\) .*, got \(2, 5\)",
    ):
        model(np.ones((2, 5)))
    with pytest.raises(
        RuntimeError,
        match=r"Sequential: backward\(\) after a forward\(\) that failed with an error; its "
        "cached values are incomplete: run forward again first",
    ):
        model.backward(np.ones((2, 1)))


def test_parameter_needs_float_data():
    with pytest.raises(
        TypeError, match="Parameter: data must be a float32 or float64 array, got dtype int64"
    ):
        Parameter(np.array([1, 2], dtype=np.int64))


# --- optimizers: torch's wording -------------------------------------------------------------
from handprop.optim import SGD, Adagrad, Adam, AdamW, RMSprop  # noqa: E402


def params():
    return [Parameter(np.ones(2))]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SGD(params(), lr=-1), "Invalid learning rate: -1"),
        (lambda: SGD(params(), lr=0.1, momentum=-0.5), "Invalid momentum value: -0.5"),
        (lambda: SGD(params(), lr=0.1, weight_decay=-1), "Invalid weight_decay value: -1"),
        (
            lambda: SGD(params(), lr=0.1, nesterov=True),
            "Nesterov momentum requires a momentum and zero dampening",
        ),
        (
            lambda: SGD(params(), lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
            "Nesterov momentum requires a momentum and zero dampening",
        ),
        (lambda: Adam(params(), lr=-0.01), "Invalid learning rate: -0.01"),
        (lambda: Adam(params(), betas=(1.0, 0.9)), "Invalid beta parameter at index 0: 1.0"),
        (lambda: Adam(params(), betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
        (lambda: Adam(params(), eps=-1), "Invalid epsilon value: -1"),
        (lambda: AdamW(params(), weight_decay=-1), "Invalid weight_decay value: -1"),
        (lambda: RMSprop(params(), lr=-1), "Invalid learning rate: -1"),
        (lambda: RMSprop(params(), eps=-1e-8), "Invalid epsilon value: -1e-08"),
        (lambda: RMSprop(params(), momentum=-0.9), "Invalid momentum value: -0.9"),
        (lambda: RMSprop(params(), weight_decay=-1), "Invalid weight_decay value: -1"),
        (lambda: RMSprop(params(), alpha=-0.5), "Invalid alpha value: -0.5"),
        (lambda: Adagrad(params(), lr=-1), "Invalid learning rate: -1"),
        (lambda: Adagrad(params(), lr_decay=-0.1), "Invalid lr_decay value: -0.1"),
        (lambda: Adagrad(params(), weight_decay=-1), "Invalid weight_decay value: -1"),
        (
            lambda: Adagrad(params(), initial_accumulator_value=-1),
            "Invalid initial_accumulator_value value: -1",
        ),
        (lambda: Adagrad(params(), eps=-1), "Invalid epsilon value: -1"),
        (lambda: RMSprop([]), "optimizer got an empty parameter list"),
        (lambda: Adam([]), "optimizer got an empty parameter list"),
        (lambda: SGD(iter([]), lr=0.1), "optimizer got an empty parameter list"),
    ],
)
def test_optimizer_hyperparameters_use_torchs_wording(make, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        make()


@pytest.mark.torch
@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("RMSprop", {"lr": -1}),
        ("RMSprop", {"eps": -1e-8}),
        ("RMSprop", {"momentum": -0.9}),
        ("RMSprop", {"weight_decay": -1}),
        ("RMSprop", {"alpha": -0.5}),
        ("RMSprop", {"alpha": float("nan")}),
        ("Adagrad", {"lr": -1}),
        ("Adagrad", {"lr_decay": -0.1}),
        ("Adagrad", {"weight_decay": -1}),
        ("Adagrad", {"initial_accumulator_value": -1}),
        ("Adagrad", {"eps": -1}),
        ("Adagrad", {"lr": float("nan")}),
    ],
)
def test_new_optimizers_refuse_what_torch_refuses_in_its_words(name, bad):
    import torch

    import handprop.optim

    with pytest.raises(ValueError) as theirs:
        getattr(torch.optim, name)([torch.nn.Parameter(torch.ones(2))], **bad)
    with pytest.raises(ValueError) as ours:
        getattr(handprop.optim, name)(params(), **bad)
    assert str(ours.value) == str(theirs.value)


def test_optimizer_argument_types():
    p = Parameter(np.ones(2))
    with pytest.raises(
        TypeError,
        match="SGD: params must be an iterable of Parameters .* got a single Parameter; wrap it in a list",
    ):
        SGD(p, lr=0.1)
    with pytest.raises(
        TypeError, match=r"Adam: params\[1\] must be a handprop Parameter, got ndarray"
    ):
        Adam([p, np.ones(2)])
    with pytest.raises(TypeError, match="SGD: lr must be a number, got '0.1'"):
        SGD([p], lr="0.1")
    with pytest.raises(TypeError, match=r"Adam: betas must be a pair \(beta1, beta2\), got 0.9"):
        Adam([p], betas=0.9)
    with pytest.raises(ValueError, match="AdamW: some parameters appear more than once in params"):
        AdamW([p, p])


def test_optimizer_load_state_dict_checks_before_changing():
    p = Parameter(np.ones(2))
    opt = Adam([p], lr=0.5)
    with pytest.raises(
        ValueError,
        match=r"Adam.load_state_dict: the saved optimizer has \[2\] parameters per group, this one \[1\]",
    ):
        opt.load_state_dict({"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]})
    group = {**opt.state_dict()["param_groups"][0], "lr": 0.1}
    bad = {
        "state": {0: {"step": 1, "exp_avg": np.ones(3), "exp_avg_sq": np.ones(2)}},
        "param_groups": [group],
    }
    with pytest.raises(
        ValueError,
        match=r"Adam.load_state_dict: state 'exp_avg' of parameter 0 has shape \(3,\), the parameter \(2,\)",
    ):
        opt.load_state_dict(bad)
    with pytest.raises(
        ValueError, match="Adam.load_state_dict: expected a dict with 'state' and 'param_groups'"
    ):
        opt.load_state_dict({"lr": 0.1})
    with pytest.raises(
        ValueError,
        match=r"Adam.load_state_dict: expected a dict .* \(each group with its 'params'\)",
    ):
        opt.load_state_dict({"state": {}, "param_groups": [{"lr": 0.1}]})
    assert opt.param_groups[0]["lr"] == 0.5 and opt.state == {}


def test_optimizer_load_state_dict_refuses_another_optimizers_state_and_bad_values():
    """reliability O6, O7: an SGD state loaded into Adam, malformed hyper-parameters and
    steps were accepted and failed later with bare errors; now refused, nothing changed."""
    p = Parameter(np.ones(2))
    sgd = SGD([p], lr=0.1, momentum=0.9)
    p.grad = np.ones(2)
    sgd.step()
    adam = Adam([p], lr=1e-3)
    with pytest.raises(
        ValueError,
        match="Adam.load_state_dict: the saved group has no 'betas', 'eps', 'amsgrad': it is not the state of a Adam",
    ):
        adam.load_state_dict(sgd.state_dict())
    adam.step()
    good = adam.state_dict()
    cases = [
        ({"lr": "fast"}, "Adam.load_state_dict: Adam: lr must be a number, got 'fast'"),
        ({"betas": (0.9, 0.99, 0.9)}, r"Adam: betas must be a pair \(beta1, beta2\)"),
        ({"betas": (1.0, 0.99)}, "Invalid beta parameter at index 0: 1.0"),
        ({"lr": -1}, "Adam.load_state_dict: Invalid learning rate: -1"),
    ]
    for change, message in cases:
        saved = adam.state_dict()
        saved["param_groups"][0].update(change)
        with pytest.raises(ValueError, match=message):
            adam.load_state_dict(saved)
    for entry, message in [
        (
            {**good["state"][0], "step": -5},
            "'step' of parameter 0 must be a whole number >= 0, got -5",
        ),
        ({**good["state"][0], "step": 1.5}, "'step' of parameter 0 must be a whole number >= 0"),
        (
            {**good["state"][0], "momentum_buffer": np.ones(2)},
            r"has keys \['exp_avg', 'exp_avg_sq', 'momentum_buffer', 'step'\], a Adam keeps",
        ),
        (
            {"step": 1, "exp_avg": np.ones(2)},
            r"a Adam keeps \['exp_avg', 'exp_avg_sq', 'step'\] \(and optionally \['max_exp_avg_sq'\]\)",
        ),
    ]:
        with pytest.raises(ValueError, match=message):
            adam.load_state_dict({**good, "state": {0: entry}})
    assert adam.state_dict()["param_groups"] == good["param_groups"]
    np.testing.assert_array_equal(adam.state[0]["exp_avg"], good["state"][0]["exp_avg"])
    sgd_state = sgd.state_dict()
    with pytest.raises(
        ValueError, match=r"has keys \['exp_avg', 'exp_avg_sq', 'step'\], a SGD keeps"
    ):
        sgd.load_state_dict({**sgd_state, "state": good["state"]})


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW, RMSprop, Adagrad])
@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        (np.ones(5), ValueError, r"the grad of params\[1\] has shape \(5,\), the parameter \(2,\)"),
        (
            np.ones(2, np.complex128),
            TypeError,
            r"the grad of params\[1\] has dtype complex128, the parameter float64",
        ),
        (
            np.ones(2, np.float32),
            TypeError,
            r"the grad of params\[1\] has dtype float32, the parameter float64",
        ),
        (np.ones(2, np.int64), TypeError, r"the grad of params\[1\] has dtype int64"),
        ([1.0, 1.0], TypeError, r"the grad of params\[1\] must be a NumPy array, got list"),
        ("11", TypeError, r"the grad of params\[1\] must be a NumPy array, got str"),
    ],
)
def test_a_bad_grad_stops_step_before_anything_changes(cls, bad, error, message):
    """reliability S8-S11: the first parameters used to be updated (and Adam's step counted)
    before the bad grad of a later one was noticed."""
    p0, p1 = Parameter(np.ones(3)), Parameter(np.ones(2))
    kwargs = {"lr": 0.1, "momentum": 0.9} if cls is SGD else {"lr": 0.1}
    opt = cls([p0, p1], **kwargs)
    p0.grad, p1.grad = np.ones(3), np.ones(2)
    opt.step()
    before = (p0.data.copy(), opt.state_dict())
    p1.grad = bad
    with pytest.raises(error, match=f"{cls.__name__}: " + message):
        opt.step()
    np.testing.assert_array_equal(p0.data, before[0])
    after = opt.state_dict()
    for i, entry in before[1]["state"].items():
        for key, value in entry.items():
            np.testing.assert_array_equal(after["state"][i][key], value)
    p1.grad = np.ones(2)
    reference = cls([Parameter(np.ones(3)), Parameter(np.ones(2))], **kwargs)
    for q in reference.params:
        q.grad = np.ones(q.shape)
    reference.step()
    reference.step()
    opt.step()  # the next good step is the second step, as if the bad one never happened
    np.testing.assert_array_equal(p0.data, reference.params[0].data)


def test_betas_edited_by_a_schedule_stop_the_step_before_anything_changes():
    """reliability O9: betas=(1, .999) raised ZeroDivisionError after counting the step."""
    p = Parameter(np.ones(2))
    opt = Adam([p], lr=0.1)
    p.grad = np.ones(2)
    opt.param_groups[0]["betas"] = (1.0, 0.999)
    with pytest.raises(
        ValueError, match=r"Adam: invalid betas \(1.0, 0.999\), each must be in \[0, 1\)"
    ):
        opt.step()
    assert opt.state == {} and (p.data == 1).all()


# --- cross entropy and softmax -----------------------------------------------------------------
from handprop.layers import Softmax  # noqa: E402
from handprop.losses import CrossEntropyLoss  # noqa: E402

CE = r"CrossEntropyLoss\(\)"


@pytest.mark.parametrize(
    ("x", "t", "error", "message"),
    [
        (
            np.ones(3),
            np.array([0]),
            ValueError,
            CE
            + r": expected input of shape \(N, C\) with N >= 1 and C >= 1 \(one row of logits per sample\), got \(3,\)",
        ),
        (
            np.ones((0, 3)),
            np.zeros(0, dtype=int),
            ValueError,
            CE + r": expected input of shape \(N, C\) with N >= 1 .* got \(0, 3\)",
        ),
        (
            np.ones((2, 3)),
            np.array([0, 3]),
            ValueError,
            CE
            + r": class-index target must be in \[0, 2\] for 3 classes \(or ignore_index=-100\), got 3 at index 1",
        ),
        (
            np.ones((2, 3)),
            np.array([-1, 0]),
            ValueError,
            CE
            + r": class-index target must be in \[0, 2\] for 3 classes \(or ignore_index=-100\), got -1 at index 0",
        ),
        (
            np.ones((2, 3)),
            np.array([[0], [1]]),
            ValueError,
            CE + r": class-index target must have shape \(2,\) for input \(2, 3\), got \(2, 1\)",
        ),
        (
            np.ones((2, 3)),
            np.array([0.0, 1.0]),
            ValueError,
            CE
            + r": class-probability target must have the input's shape \(2, 3\), got \(2,\); class indices must be integers \(y.astype\(int\)\)",
        ),
        (
            np.ones((2, 3)),
            np.array(["a", "b"]),
            TypeError,
            CE
            + r": target must be integer class indices or float class probabilities, got dtype <U1",
        ),
    ],
)
def test_cross_entropy_arguments(x, t, error, message):
    with pytest.raises(error, match=message):
        CrossEntropyLoss()(x, t)


def test_cross_entropy_options():
    with pytest.raises(
        ValueError, match=r"CrossEntropyLoss: label_smoothing must be between 0.0 and 1.0, got 1.5"
    ):
        CrossEntropyLoss(label_smoothing=1.5)
    with pytest.raises(
        TypeError, match=r"CrossEntropyLoss: label_smoothing must be a number, got '0.1'"
    ):
        CrossEntropyLoss(label_smoothing="0.1")
    with pytest.raises(
        ValueError,
        match=r"CrossEntropyLoss\(\): weight must have one entry per class, shape \(3,\), got \(2,\)",
    ):
        CrossEntropyLoss(weight=np.ones(2))(np.ones((2, 3)), np.array([0, 1]))
    loss = CrossEntropyLoss(reduction="none")
    loss(np.ones((2, 3)), np.array([0, 1]))
    with pytest.raises(
        ValueError,
        match=r"backward\(\) expected grad_output to be an array of the losses' shape \(2,\), got shape \(\)",
    ):
        loss.backward(1.0)


def test_softmax_arguments():
    with pytest.raises(TypeError, match="Softmax: dim must be an int, got 1.0"):
        Softmax(1.0)
    with pytest.raises(
        ValueError, match=r"Softmax\(dim=2\): dim 2 is out of range for input of shape \(3, 2\)"
    ):
        Softmax(2)(np.ones((3, 2)))


def test_batches_arguments():
    from handprop.data import batches

    with pytest.raises(
        ValueError,
        match=r"batches: X and y must have the same number of rows \(samples\), got X of shape \(4, 2\) and y of shape \(3,\)",
    ):
        list(batches(np.ones((4, 2)), np.ones(3), 2))
    with pytest.raises(ValueError, match="batches: batch_size must be a positive int, got 0"):
        list(batches(np.ones((4, 2)), np.ones(4), 0))
    with pytest.raises(TypeError, match="batches: batch_size must be a positive int, got 2.0"):
        list(batches(np.ones((4, 2)), np.ones(4), 2.0))
