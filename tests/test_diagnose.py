"""check_module: every mistake code named on a module broken on purpose, never on a correct
one; the worked example's step-4 error diagnosed by name."""

import numpy as np
import pytest

import handprop
from handprop import check_module
from handprop import worked_example as we
from handprop.layers import (
    BatchNorm1d,
    Conv2d,
    Linear,
    MaxPool2d,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)

try:
    import torch
except ImportError:
    torch = None

RNG = np.random.default_rng(0)
X = RNG.standard_normal((4, 3))


# --- modules broken on purpose, one per mistake ------------------------------------------------


class TransposedLinear(Linear):
    """dW = x.T @ g: the right numbers, transposed."""

    def backward(self, grad_output, *, input_grad=True):
        dx = super().backward(grad_output, input_grad=input_grad)
        self.weight.grad = self._x.T @ np.asarray(grad_output)  # (in, out) for (out, in)
        return dx


class PerSampleBias(Linear):
    """db = g: one bias gradient per sample."""

    def backward(self, grad_output, *, input_grad=True):
        dx = super().backward(grad_output, input_grad=input_grad)
        self.bias.grad = np.array(grad_output)
        return dx


class NegatedInputGrad(Linear):
    def backward(self, grad_output, *, input_grad=True):
        return -super().backward(grad_output, input_grad=input_grad)


class MeanWeight(Linear):
    """dW averaged over the batch instead of summed."""

    def backward(self, grad_output, *, input_grad=True):
        dx = super().backward(grad_output, input_grad=input_grad)
        self.weight.grad = self.weight.grad / len(grad_output)
        return dx


class ElementwiseLinear(Linear):
    """The worked example's step 4: dJ/dx = g * W.T, elementwise."""

    def backward(self, grad_output, *, input_grad=True):
        super().backward(grad_output, input_grad=input_grad)
        return np.asarray(grad_output) * self.weight.data.T


class DiagonalSoftmax(Softmax):
    """softmax' taken as y (1 - y), the diagonal of its Jacobian only."""

    def backward(self, grad_output, *, input_grad=True):
        y = np.exp(self._log_y) if hasattr(self, "_log_y") else None
        super().backward(grad_output, input_grad=input_grad)
        y = self._y if y is None else y
        return np.asarray(grad_output) * y * (1 - y)


class GreaterOrEqualReLU(ReLU):
    """ReLU'(0) = 1: the mask x >= 0 instead of x > 0."""

    def forward(self, x):
        self.x_kept = np.array(x, copy=True)
        return super().forward(x)

    def backward(self, grad_output, *, input_grad=True):
        super().backward(grad_output, input_grad=input_grad)
        return np.asarray(grad_output) * (self.x_kept >= 0)


class ShapelessSigmoid(Sigmoid):
    def backward(self, grad_output, *, input_grad=True):
        return super().backward(grad_output, input_grad=input_grad).sum(axis=0)


def codes(report):
    return [(m.tensor, m.code) for m in report.mistakes]


def test_softmax_keeps_its_output_where_the_broken_one_looks():
    module = Softmax(dim=1)
    module(X)
    assert hasattr(module, "_y")  # DiagonalSoftmax reads it


@pytest.mark.parametrize(
    ("module", "x", "expected", "words"),
    [
        (TransposedLinear(3, 2, rng=0), X, [("weight", "transposed")], "g.T @ x"),
        (PerSampleBias(3, 2, rng=0), X, [("bias", "not-summed-over-batch")], "sum over the"),
        (NegatedInputGrad(3, 2, rng=0), X, [("X", "sign")], "opposite sign"),
        (MeanWeight(3, 2, rng=0), X, [("weight", "scaled")], "4 is the batch size"),
        (ElementwiseLinear(2, 1, rng=0), X[:2, :2], [("X", "elementwise-product")], "g @ W"),
        (DiagonalSoftmax(dim=1), X, [("X", "diagonal-only")], "diagonal of the Jacobian"),
        (
            GreaterOrEqualReLU(),
            np.array([[0.0, 1.0, -1.0], [2.0, 0.0, -3.0]]),
            [("X", "kink-choice")],
            "the reference takes 0 where yours takes 1",
        ),
        (ShapelessSigmoid(), X, [("X", "wrong-shape")], "shape (3,)"),
    ],
    ids=lambda v: type(v).__name__ if hasattr(v, "forward") else None,
)
def test_each_mistake_is_named_on_its_broken_module(module, x, expected, words):
    report = check_module(module, x, reference=_reference_for(module), rng=1)
    assert not report.passed
    assert codes(report) == expected, str(report)
    assert words in report.mistakes[0].hint, report.mistakes[0].hint
    assert expected[0][1] in str(report)


def _reference_for(module):
    """handprop's own module as the reference where the finite differences cannot tell (the
    kink), else None: central differences."""
    if isinstance(module, ReLU):
        return ReLU()
    return None


@pytest.mark.parametrize(
    ("module", "x"),
    [
        (Linear(3, 2, rng=0), X),
        (ReLU(), np.array([[0.5, -1.0, 0.0]])),  # 0: the kink, either slope is valid
        (MaxPool2d(2), np.array([[[[1.0, 1.0], [0.0, 1.0]]]])),  # a tie
        (Sigmoid(), X),
        (Tanh(), X),
        (Softmax(dim=1), X),
        (BatchNorm1d(3, dtype=np.float64), X),
        (Conv2d(2, 3, 2, dtype=np.float64, rng=0), RNG.standard_normal((2, 2, 3, 3))),
        (MaxPool2d(2), RNG.standard_normal((1, 2, 4, 4))),
    ],
    ids=lambda v: type(v).__name__ if hasattr(v, "forward") else None,
)
def test_correct_modules_pass_with_no_mistake(module, x):
    report = check_module(module, x, rng=2)
    assert report.passed, str(report)
    assert report.mistakes == []


def test_a_correct_relu_at_its_kink_passes_against_handprops_reference():
    x = np.array([[0.0, 1.0, -1.0]])
    assert check_module(ReLU(), x, reference=ReLU(), rng=0).passed


def test_without_a_reference_any_one_sided_slope_at_a_kink_is_valid():
    """Finite differences cannot say which derivative torch takes at a kink: the >= ReLU
    passes against them (both one-sided slopes are valid); only a reference names it."""
    x = np.array([[0.0, 1.0, -1.0]])
    assert check_module(GreaterOrEqualReLU(), x, rng=0).passed
    assert not check_module(GreaterOrEqualReLU(), x, reference=ReLU(), rng=0).passed


def test_the_worked_example_step_4_error_is_named():
    """The source computes dL/dA2 as dL_dZ3 * W3.T (elementwise, shape (2, 1)); the chain
    rule needs dL_dZ3 @ W3, shape (2, 2). Layer 3 of the worked example, fed A2."""
    model, (X2, _) = we.model(np.float64), we.data(np.float64)
    a2 = model[:4](X2)  # the input of layer 3
    source_layer3 = ElementwiseLinear(2, 1, dtype=np.float64)
    source_layer3.load_state_dict(model[4].state_dict())
    report = check_module(source_layer3, a2, rng=0)
    assert codes(report) == [("X", "elementwise-product")]
    assert "g * W.T" in report.mistakes[0].hint and "(2, 2)" in report.mistakes[0].hint


@pytest.mark.torch
def test_a_torch_module_serves_as_the_reference():
    linear = Linear(3, 2, dtype=np.float64, rng=0)
    twin = torch.nn.Linear(3, 2, dtype=torch.float64)
    with torch.no_grad():
        twin.weight.copy_(torch.from_numpy(linear.weight.data))
        twin.bias.copy_(torch.from_numpy(linear.bias.data))
    assert check_module(linear, X, reference=twin, rng=0).passed
    broken = MeanWeight(3, 2, dtype=np.float64)
    broken.load_state_dict(linear.state_dict())
    report = check_module(broken, X, reference=twin, rng=0)
    assert codes(report) == [("weight", "scaled")]


def test_check_module_leaves_the_module_alone():
    layer = Linear(3, 2, rng=0)
    before = layer.weight.data.copy()
    check_module(layer, X, rng=0)
    assert layer.weight.grad is None
    np.testing.assert_array_equal(layer.weight.data, before)


def test_an_unexplained_difference_fails_without_a_made_up_name():
    class Noisy(Linear):
        def backward(self, grad_output, *, input_grad=True):
            dx = super().backward(grad_output, input_grad=input_grad)
            self.weight.grad = self.weight.grad + np.arange(6.0).reshape(2, 3)
            return dx

    report = check_module(Noisy(3, 2, rng=0), X, rng=0)
    assert not report.passed and report.mistakes == []
    assert "no classic mistake explains the difference" in str(report)


class OneWrongBiasElement(Linear):
    """db right but for one element, off by 0.5."""

    def backward(self, grad_output, *, input_grad=True):
        dx = super().backward(grad_output, input_grad=input_grad)
        self.bias.grad = self.bias.grad.copy()
        self.bias.grad[1] += 0.5
        return dx


def test_a_failed_tensor_shows_where_it_is_most_wrong_with_both_values():
    """The report points at the element with the largest difference and prints the learner's
    value beside the expected one; tensors that pass, or of the wrong shape, show none."""
    layer = OneWrongBiasElement(3, 2, dtype=np.float64, rng=0)
    report = check_module(layer, X, reference=Linear(3, 2, dtype=np.float64, rng=0), rng=0)
    rows = {r.name: r for r in report.rows}
    bias = rows["bias"]
    assert not bias.passed and bias.worst == (1,)  # where the 0.5 was added
    assert bias.worst_got - bias.worst_expected == pytest.approx(0.5)
    assert rows["X"].worst is None and rows["weight"].worst is None  # those pass
    shown = (
        f"dJ/dbias[1]: yours {bias.worst_got:.4g}, expected {bias.worst_expected:.4g} "
        "(the largest difference)"
    )
    assert shown in str(report) and str(report).count("largest difference") == 1
    assert shown in report._repr_markdown_()
    wrong_shape = check_module(PerSampleBias(3, 2, dtype=np.float64, rng=0), X, rng=0)
    assert "largest difference" not in str(wrong_shape)


def test_a_nan_gradient_is_the_largest_difference():
    class NanInputGrad(Linear):
        def backward(self, grad_output, *, input_grad=True):
            dx = super().backward(grad_output, input_grad=input_grad).copy()
            dx[2, 0] = np.nan
            return dx

    report = check_module(NanInputGrad(3, 2, dtype=np.float64, rng=0), X, rng=0)
    row = report.rows[0]
    assert row.name == "X" and row.worst == (2, 0) and np.isnan(row.worst_got)
    assert "dJ/dx[2, 0]: yours nan, expected" in str(report)


def test_the_report_table_stays_aligned_with_long_shapes():
    class ExtraAxis(Conv2d):
        """dW with a stray leading axis: (1, 3, 2, 3, 3) for (3, 2, 3, 3)."""

        def backward(self, grad_output, *, input_grad=True):
            dx = super().backward(grad_output, input_grad=input_grad)
            self.weight.grad = self.weight.grad[None]
            return dx

    x = np.random.default_rng(1).standard_normal((2, 2, 4, 4))
    report = check_module(ExtraAxis(2, 3, 3, dtype=np.float64, rng=0), x, rng=0)
    table = str(report).splitlines()[1:5]  # the header, X, weight, bias
    assert "(1, 3, 2, 3, 3) != (3, 2, 3, 3)" in table[2]
    column = table[0].index("result")
    assert [line[column:].split()[0] for line in table[1:]] == ["ok", "FAIL", "ok"]


def test_a_losss_kinks_are_measured_from_its_target():
    """L1Loss has its kink where the input equals the target: a backward that takes -1 there
    (not torch's sign(0) = 0) is a valid one-sided slope for finite differences, and a
    kink-choice against handprop's L1Loss."""
    from handprop.exercises import _AsModule
    from handprop.losses import L1Loss

    class LeftSlopeL1(L1Loss):
        def backward(self, grad_output=1.0):
            p, t = self._input, self._target
            return grad_output * np.where(p > t, 1.0, -1.0) / p.size

    t = np.array([[0.5, -1.0, 2.0], [0.0, 1.5, -0.5]])
    x = t + np.array([[0.0, 0.3, -0.2], [0.0, -0.1, 0.4]])  # two elements on the kink
    mine = _AsModule(LeftSlopeL1(), t)
    assert check_module(mine, x, rng=0).passed
    report = check_module(mine, x, reference=_AsModule(L1Loss(), t), rng=0)
    assert [(m.tensor, m.code) for m in report.mistakes] == [("X", "kink-choice")]
    assert "at the kink x = target (e.g. element (0, 0))" in str(report)


# -- several inputs and outputs (attention's query, key and value; an LSTM's (h, c)) ----------


class _Gate(handprop.Module):
    """y = x * sigmoid(h @ W.T): two inputs, one weight."""

    def __init__(self, n, wrong=False):
        super().__init__()
        self.weight = handprop.Parameter(np.random.default_rng(0).standard_normal((n, n)))
        self.wrong = wrong

    def forward(self, x, h):
        self.x, self.h = x, h
        self.s = 1 / (1 + np.exp(-(h @ self.weight.data.T)))
        return x * self.s

    def backward(self, grad_output):
        dz = grad_output * self.x * self.s * (1 - self.s)
        self.weight.accumulate_grad(dz.T @ self.h)
        dh = dz @ self.weight.data
        return grad_output * self.s, np.zeros_like(dh) if self.wrong else dh


class _Split(handprop.Module):
    """Two outputs: (2 x[:, :1], x[:, 1:] ** 2)."""

    def forward(self, x):
        self.x = x
        return 2 * x[:, :1], x[:, 1:] ** 2

    def backward(self, g_first, g_rest):
        return np.concatenate([2 * g_first, 2 * self.x[:, 1:] * g_rest], axis=1)


class _Masked(handprop.Module):
    """y = where(mask, x, 0): a boolean input, which gets no gradient."""

    def forward(self, x, mask):
        self.mask = mask
        return np.where(mask, x, 0.0)

    def backward(self, grad_output):
        return np.where(self.mask, grad_output, 0.0), None


def test_check_module_takes_several_inputs_and_names_each_gradient():
    rng = np.random.default_rng(1)
    x, h = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    report = check_module(_Gate(3), (x, h), rng=0)
    assert report.passed and [r.name for r in report.rows] == ["X0", "X1", "weight"]
    wrong = check_module(_Gate(3, wrong=True), (x, h), rng=0)
    assert not wrong.passed and [r.name for r in wrong.rows if not r.passed] == ["X1"]


def test_check_module_against_a_torch_module_with_two_inputs():
    torch = pytest.importorskip("torch")

    class TorchGate(torch.nn.Module):
        def __init__(self, weight):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.tensor(weight))

        def forward(self, x, h):
            return x * torch.sigmoid(h @ self.weight.T)

    rng = np.random.default_rng(2)
    x, h = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    ours = _Gate(3)
    report = check_module(ours, (x, h), reference=TorchGate(ours.weight.data.copy()), rng=0)
    assert report.passed and report.reference.startswith("torch's")


def test_check_module_takes_several_outputs_and_a_mask_without_gradient():
    x = np.random.default_rng(3).standard_normal((3, 4))
    assert check_module(_Split(), x, rng=0).passed
    mask = np.array([[True, False, True, True]] * 3)
    report = check_module(_Masked(), (x, mask), rng=0)
    assert report.passed and [r.name for r in report.rows] == ["X0"]  # the mask: none


class _TinyLSTM(handprop.Module):
    """An LSTM-shaped step without weights: (x, (h, c)) in, (h', c') out, with
    c' = sigmoid(h) * c + tanh(x) and h' = tanh(c')."""

    def __init__(self, drop_c=False):
        super().__init__()
        self.drop_c = drop_c

    def forward(self, x, state):
        h, c = state
        self.s, self.c, self.t = 1 / (1 + np.exp(-h)), c, np.tanh(x)
        self.c_new = self.s * c + self.t
        self.h_new = np.tanh(self.c_new)
        return self.h_new, self.c_new

    def backward(self, dh_new, dc_new):
        dc = dc_new + dh_new * (1 - self.h_new**2)
        dx = dc * (1 - self.t**2)
        dh = dc * self.c * self.s * (1 - self.s)
        dc_old = np.zeros_like(dc) if self.drop_c else dc * self.s  # wrong: the path lost
        return dx, (dh, dc_old)


def test_check_module_takes_nested_inputs_such_as_an_lstm_state():
    rng = np.random.default_rng(4)
    x, h, c = (rng.standard_normal((2, 3)) for _ in range(3))
    report = check_module(_TinyLSTM(), (x, (h, c)), rng=0)
    assert report.passed and [r.name for r in report.rows] == ["X0", "X1.0", "X1.1"]
    wrong = check_module(_TinyLSTM(drop_c=True), (x, (h, c)), rng=0)
    assert [r.name for r in wrong.rows if not r.passed] == ["X1.1"]
    torch = pytest.importorskip("torch")

    class TorchTiny(torch.nn.Module):
        def forward(self, x, state):
            h, c = state
            c_new = torch.sigmoid(h) * c + torch.tanh(x)
            return torch.tanh(c_new), c_new

    against_torch = check_module(_TinyLSTM(), (x, (h, c)), reference=TorchTiny(), rng=0)
    assert against_torch.passed and against_torch.reference.startswith("torch's")
