"""The test helpers can fail: handprop.interop.compare, tests/closeness.assert_close and the
parity helper tests/parity.py each reject a wrong value (a helper that always passes would
make every test built on it worthless)."""

from __future__ import annotations

import numpy as np
import pytest
from closeness import assert_close

from handprop import Sequential
from handprop.interop import compare
from handprop.layers import Linear, Tanh
from handprop.losses import MSELoss


@pytest.mark.parametrize(
    ("actual", "expected", "passes"),
    [
        ([1.0, 2.0], [1.0, 2.0], True),
        ([1.0, 2.0 + 1e-6], [1.0, 2.0], True),  # within 1e-5 * 2 (float32 bound)
        ([1.0, 2.001], [1.0, 2.0], False),
        ([1.0, 2.0], [1.0, 2.0, 3.0], False),
        ([np.nan, 2.0], [1.0, 2.0], False),
        ([1.0, np.inf], [1.0, 2.0], False),
        ([np.inf, 2.0], [-np.inf, 2.0], False),
        ([np.nan, np.inf], [np.nan, np.inf], True),
    ],
)
def test_compare_can_fail(actual, expected, passes):
    assert compare(np.array(actual), np.array(expected), np.float32)[2] is passes


@pytest.mark.parametrize(
    ("actual", "expected", "dtype", "message"),
    [
        (np.float32([1.0, 2.001]), [1.0, 2.0], np.float32, "exceeds"),
        (np.float64([1.0, 2.0]), [1.0, 2.0], np.float32, "dtype float64, expected float32"),
        (np.float32([1.0]), [1.0, 2.0], np.float32, "shape"),
        (np.float32([np.nan, 2.0]), [1.0, 2.0], np.float32, "exceeds"),
        (
            np.float32([1.0, 2.0]),
            [np.inf, 2.0],
            np.float32,
            "NaN or infinity at different places|exceeds",
        ),
        (np.float64([1.0, 2.0 + 1e-9]), [1.0, 2.0], np.float64, "exceeds"),
    ],
)
def test_assert_close_can_fail(actual, expected, dtype, message):
    with pytest.raises(AssertionError, match=message):
        assert_close("value", actual, np.array(expected), dtype)
    assert_close("value", np.asarray(expected, dtype), np.array(expected), dtype)  # and pass


class _WrongTanh(Tanh):
    """tanh with the derivative 1 - y instead of 1 - y^2: a classic slip."""

    def backward(self, grad_output, *, input_grad=True):
        return grad_output * (1 - self._y)


@pytest.mark.torch
@pytest.mark.parametrize("check", ["check_network", "check_modules"])
def test_the_parity_helper_can_fail(check):
    import parity

    X = np.array([[0.5, -1.0], [2.0, 0.25]], np.float64)
    y = np.array([[1.0], [0.0]], np.float64)

    def model(tanh):
        return Sequential(
            Linear(2, 3, dtype=np.float64, rng=0), tanh, Linear(3, 1, dtype=np.float64, rng=1)
        )

    getattr(parity, check)(model(Tanh()), MSELoss(), X, y)  # the right one passes
    with pytest.raises(AssertionError):
        getattr(parity, check)(model(_WrongTanh()), MSELoss(), X, y)


@pytest.mark.torch
def test_the_edge_value_strategy_finds_a_relu_with_the_wrong_kink():
    """The random-network strategies reach the cases they exist for: with ReLU's mask written
    x >= 0 instead of torch's x > 0 (a classic slip), hypothesis finds an edge-value network
    on which the per-module parity check fails."""
    from hypothesis import HealthCheck, find, settings
    from parity import check_modules
    from strategies import edge_problems

    from handprop.layers import ReLU

    class ReLUWithTheWrongKink(ReLU):
        def backward(self, grad_output, *, input_grad=True):
            return grad_output * (self._y >= 0)

    def breaks(problem) -> bool:
        model, loss, X, y = problem
        wrong = [m for m in model if type(m) is ReLU]
        for module in wrong:
            module.__class__ = ReLUWithTheWrongKink
        try:
            check_modules(model, loss, X, y)
        except AssertionError:
            return bool(wrong)
        return False

    quick = settings(
        max_examples=400, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
    )
    model, *_ = find(edge_problems(np.float64), breaks, settings=quick)
    assert any(isinstance(m, ReLUWithTheWrongKink) for m in model)


@pytest.mark.torch
@pytest.mark.parametrize("offset", [0.0, 100.0], ids=["centred", "far-from-0"])
@pytest.mark.parametrize("dropped", ["mean", "variance"])
def test_the_normalisation_tolerance_still_catches_a_missing_term(monkeypatch, offset, dropped):
    """BatchNorm1d's dJ/dx tolerance covers the rounding of x_hat where x sits far from 0
    compared with its spread; a backward that drops its mean or its variance term still fails,
    there and on centred data, in float32."""
    import parity

    from handprop.layers import BatchNorm1d, normalization

    rng = np.random.default_rng(0)
    X = (offset + rng.standard_normal((16, 3))).astype(np.float32)
    y = rng.standard_normal((16, 1)).astype(np.float32)

    def model():
        return Sequential(Linear(3, 4, rng=0), BatchNorm1d(4), Tanh(), Linear(4, 1, rng=1))

    parity.check_modules(model(), MSELoss(), X, y)  # the right backward passes
    right = normalization._normalise_backward

    def missing_a_term(g_hat, x_hat, inv_std, axes):
        m = x_hat.size // x_hat.shape[1]
        term = g_hat.sum(axis=axes, keepdims=True)  # the mean path
        if dropped == "variance":
            term = x_hat * (g_hat * x_hat).sum(axis=axes, keepdims=True)
        return right(g_hat, x_hat, inv_std, axes) + inv_std / m * term  # that term undone

    monkeypatch.setattr(normalization, "_normalise_backward", missing_a_term)
    with pytest.raises(AssertionError, match=r"BatchNorm1d.*dJ/d input"):
        parity.check_modules(model(), MSELoss(), X, y)


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_a_wrong_normalisation_weight_gradient_fails_end_to_end(monkeypatch, dtype):
    """In BatchNorm -> Linear -> BatchNorm the first normalisation's weight gradient is judged
    with the cancellation the second one passes up (``_parameter_scales``); a weight gradient
    of sum(g) instead of sum(g * x_hat) still fails."""
    import parity

    from handprop.layers import BatchNorm1d, ReLU

    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((8, 3)).astype(dtype), rng.standard_normal((8, 1)).astype(dtype)

    def model():
        return Sequential(
            Linear(3, 4, dtype=dtype, rng=0),
            BatchNorm1d(4, dtype=dtype),
            ReLU(),
            Linear(4, 2, dtype=dtype, rng=1),
            BatchNorm1d(2, dtype=dtype),
            Linear(2, 1, dtype=dtype, rng=2),
        )

    parity.check_network(model(), MSELoss(), X, y)  # the right one passes
    original = BatchNorm1d.backward

    def forgot_x_hat(self, grad_output, *, input_grad=True):
        before = self.weight.grad
        dx = original(self, grad_output, input_grad=input_grad)
        g = np.asarray(grad_output)
        wrong = g.sum(axis=0)  # sum(g), not sum(g * x_hat)
        self.weight.grad = wrong if before is None else before + wrong
        return dx

    monkeypatch.setattr(BatchNorm1d, "backward", forgot_x_hat)
    with pytest.raises(AssertionError, match=r"1\.weight\.grad"):
        parity.check_network(model(), MSELoss(), X, y)
