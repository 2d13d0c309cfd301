"""gradcheck: passes correct backwards, catches wrong ones, and names kinks instead of
reporting a false error at them."""

import numpy as np
import pytest

import handprop
from handprop import Sequential, gradcheck
from handprop import worked_example as we
from handprop.layers import LeakyReLU, Linear, ReLU, Sigmoid, Softmax, Tanh
from handprop.losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])


@DTYPES
def test_worked_example_passes_and_names_the_kink_without_touching_the_model(dtype):
    model = we.model(dtype)
    before = model.state_dict()
    X, y = we.data(dtype)
    report = gradcheck(model, we.loss_fn(), X, y)
    assert report.passed
    assert [k.value for k in report.kinks] == ["Z2[0, 0]"]
    kink = report.kinks[0]
    assert (kink.sample, kink.unit, kink.at) == (0, (0,), 0.0)
    assert kink.module == "3 (ReLU())" and all(ok for _, _, ok in kink.elements)
    assert ("2.bias", (0,), True) in kink.elements
    # the model is untouched: values, dtype, no grads, no caches
    for name, p in model.named_parameters():
        assert p.dtype == dtype and p.grad is None
        np.testing.assert_array_equal(p.data, before[name])
    with pytest.raises(RuntimeError, match="before forward"):
        model.backward(np.ones((2, 1)))
    text = str(report)
    assert (
        text.startswith("gradcheck: PASSED") and "Z2[0, 0] = 0 (input of module 3 (ReLU())" in text
    )


def test_plain_central_differences_would_report_a_false_error_at_the_kink():
    """What the usual checkers do: (J(b + eps) - J(b - eps)) / 2 eps for db2[0]."""
    model = we.model(np.float64)
    X, y = we.data(np.float64)
    loss = we.loss_fn()
    loss(model(X), y)
    model.backward(loss.backward())
    analytic = model[2].bias.grad[0]
    eps = 1e-6

    def cost(shift):
        m = we.model(np.float64)
        m[2].bias.data[0] += shift
        return loss(m(X), y)

    central = (cost(eps) - cost(-eps)) / (2 * eps)
    np.testing.assert_allclose(analytic, -0.0639, atol=5e-5)  # torch's value, ReLU'(0) = 0
    np.testing.assert_allclose(central, -0.05246, atol=5e-5)  # the average of the two slopes
    assert abs(analytic - central) > 1e-5 + 1e-3 * abs(central)  # a "failure" for them


class WrongTanh(Tanh):
    """tanh' written as 1 - y instead of 1 - y^2."""

    def backward(self, grad_output, *, input_grad=True):
        return grad_output * (1 - self._saved(self._y))


class WrongLinear(Linear):
    """dW forgot to sum over the batch: only the first sample's outer product."""

    def backward(self, grad_output, *, input_grad=True):
        x = self._saved(self._x)
        self.weight.accumulate_grad(np.outer(grad_output[0], x[0]).astype(self.dtype))
        self.bias.accumulate_grad(grad_output.sum(axis=0))
        return grad_output @ self.weight.data


def test_a_wrong_backward_fails():
    X = np.random.default_rng(0).normal(size=(4, 3))
    y = np.random.default_rng(1).normal(size=(4, 2))
    good = Sequential(Linear(3, 4, rng=0), Tanh(), Linear(4, 2, rng=1))
    assert gradcheck(good, MSELoss(), X, y).passed
    bad_tanh = Sequential(Linear(3, 4, rng=0), WrongTanh(), Linear(4, 2, rng=1))
    report = gradcheck(bad_tanh, MSELoss(), X, y)
    assert not report.passed
    failed = {t.name for t in report.tensors if not t.passed}
    assert failed == {"0.weight", "0.bias", "X"}  # everything upstream of the tanh
    assert "FAIL" in str(report)
    bad_linear = Sequential(WrongLinear(3, 4, rng=0), Tanh(), Linear(4, 2, rng=1))
    failed = {t.name for t in gradcheck(bad_linear, MSELoss(), X, y).tensors if not t.passed}
    assert failed == {"0.weight"}


@pytest.mark.parametrize("seed", range(5))
def test_random_networks_with_every_layer_and_loss_pass(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(5, 3))
    model = Sequential(
        Linear(3, 4, rng=rng),
        LeakyReLU(0.1),
        Linear(4, 4, rng=rng),
        Sigmoid(),
        Linear(4, 3, rng=rng),
        ReLU(),
        Linear(3, 3, rng=rng),
        Softmax(),
        Linear(3, 3, rng=rng),
    )
    for loss, y in [
        (CrossEntropyLoss(label_smoothing=0.1), rng.integers(0, 3, size=5)),
        (BCEWithLogitsLoss(reduction="none"), rng.integers(0, 2, size=(5, 3)).astype(float)),
        (MSELoss(reduction="sum"), rng.normal(size=(5, 3))),
    ]:
        report = gradcheck(model, loss, X, y)
        assert report.passed, str(report)


def test_a_leaky_relu_kink_is_found_too():
    model = Sequential(
        Linear(2, 2, dtype=np.float64, rng=0), LeakyReLU(0.3), Linear(2, 1, dtype=np.float64, rng=1)
    )
    model.load_state_dict(
        {
            "0.weight": [[1.0, -1.0], [0.5, 0.5]],
            "0.bias": [0.0, 1.0],
            "2.weight": [[1.0, 2.0]],
            "2.bias": [0.0],
        }
    )
    X = np.array([[2.0, 2.0]])  # unit 0's pre-activation is exactly 0
    report = gradcheck(model, MSELoss(), X, np.array([[1.0]]))
    assert report.passed
    assert [k.value for k in report.kinks] == ["Z1[0, 0]"]


def test_gradcheck_arguments():
    X, y = we.data()
    with pytest.raises(ValueError, match="gradcheck: eps must be positive, got 0"):
        gradcheck(we.model(), we.loss_fn(), X, y, eps=0)
    with pytest.raises(
        ValueError, match="gradcheck: atol must be a finite non-negative number, got -1"
    ):
        gradcheck(we.model(), we.loss_fn(), X, y, atol=-1)
    for bad in (float("nan"), float("inf")):  # reliability G9: these used to run and fail
        with pytest.raises(ValueError, match="gradcheck: eps must be a finite non-negative number"):
            gradcheck(we.model(), we.loss_fn(), X, y, eps=bad)
    report = gradcheck(we.model(), we.loss_fn(), X, y, eps=np.float32(1e-6))  # NumPy scalars
    assert report.passed


@pytest.mark.parametrize("first", [ReLU(), LeakyReLU(0.1)], ids=["ReLU", "LeakyReLU"])
def test_a_kink_of_x_itself_is_found_when_the_kinked_layer_comes_first(first):
    """reliability G7: X is perturbed in place, so the kinked module's recorded input (X
    itself) changed along with it and the crossing was never seen: a false failure."""
    report = gradcheck(
        Sequential(first, Linear(2, 1, rng=0)), MSELoss(), np.array([[0.0, 1.0]]), np.zeros((1, 1))
    )
    assert report.passed, report
    assert [k.value for k in report.kinks] == ["X[0, 0]"]


def test_the_report_lists_every_parameter_and_x_with_its_verdict():
    """Exported at the top level; the report names each tensor in order, and its text says
    which failed (a Sigmoid whose backward drops the factor (1 - y))."""
    assert handprop.gradcheck is gradcheck

    class WrongSigmoid(Sigmoid):
        def backward(self, grad_output, *, input_grad=True):
            return grad_output * self._y

    X, y = np.array([[0.5, -1.0]]), np.array([[1.0]])
    model = Sequential(Linear(2, 2, rng=0), WrongSigmoid(), Linear(2, 1, rng=1))
    report = gradcheck(model, MSELoss(), X, y)
    assert [t.name for t in report.tensors] == ["0.weight", "0.bias", "2.weight", "2.bias", "X"]
    assert [t.passed for t in report.tensors] == [False, False, True, True, False]
    text = str(report)
    assert text.startswith("gradcheck: FAILED") and text.count("FAIL") == 4  # 3 rows + title


def test_the_report_table_stays_aligned_with_long_shapes_and_names():
    """A convolution's 4-D shapes (and long names) widen their columns: every row's result
    starts where the header's does, and no shape runs into the numbers."""
    from handprop.layers import Conv2d, Flatten

    model = Sequential(
        Conv2d(1, 2, 3, dtype=np.float64, rng=0), Flatten(), Linear(8, 1, dtype=np.float64, rng=1)
    )
    x = np.random.default_rng(0).standard_normal((2, 1, 4, 4))
    report = gradcheck(model, MSELoss(), x, np.zeros((2, 1)))
    report.tensors[0].name = "a_rather_long_parameter_name"
    table = str(report).splitlines()[1:]
    column = table[0].index("result")
    assert all(line.find("ok", column - 1) == column for line in table[1:])
    for line in table[1:]:
        rest = line.split(" ", 1)[1]
        assert rest.lstrip().startswith("(")  # the name never runs into the shape
        assert rest.split(")", 1)[1].startswith(" ")  # nor the shape into a number


class _Residual(handprop.Module):
    """y = x + f(x), a ReLU inside the branch: a block whose kinks gradcheck cannot see from
    the model's chain, only by watching the calls inside it."""

    def __init__(self, width, wrong=False):
        super().__init__()
        self.f = Sequential(Linear(width, width, rng=0), ReLU(), Linear(width, width, rng=1))
        self.wrong = wrong

    def forward(self, x):
        return x + self.f(x)

    def backward(self, grad_output):
        through = self.f.backward(grad_output)
        return through if self.wrong else grad_output + through  # wrong: the skip path lost


def _kinked_block_model(wrong=False):
    model = Sequential(Linear(2, 3, rng=2), _Residual(3, wrong), Linear(3, 1, rng=3))
    X = np.array([[0.3, -0.2], [1.0, 0.5]])
    with handprop.no_grad():  # put the first ReLU input of sample 0 exactly on its kink
        z = model[1].f[0](model[0](X))
    model[1].f[0].bias.data[0] -= z[0, 0]
    return model, X


def test_a_kink_inside_a_block_is_watched_and_named_by_its_path():
    model, X = _kinked_block_model()
    report = gradcheck(model, MSELoss(), X, np.zeros((2, 1)))
    assert report.passed, str(report)
    assert [k.value for k in report.kinks] == ["1.f.1 input[0, 0]"]
    assert report.kinks[0].module == "1.f.1 (ReLU())" and report.kinks[0].elements
    assert all(ok for _, _, ok in report.kinks[0].elements)


def test_a_wrong_backward_inside_a_block_still_fails_beside_its_kink():
    model, X = _kinked_block_model(wrong=True)
    report = gradcheck(model, MSELoss(), X, np.zeros((2, 1)))
    assert not report.passed
    assert {t.name for t in report.tensors if not t.passed} >= {"0.weight", "X"}


def test_check_module_watches_the_kinks_inside_a_block_too():
    """check_module(block, x): a ReLU inside the block sits on its kink; the block's right
    backward passes, the one that drops the skip path does not."""
    model, X = _kinked_block_model()
    with handprop.no_grad():
        h = model[0](X)
    assert handprop.check_module(model[1], h, rng=0).passed
    wrong, _ = _kinked_block_model(wrong=True)
    assert not handprop.check_module(wrong[1], h, rng=0).passed
