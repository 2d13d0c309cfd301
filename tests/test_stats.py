"""Trace.stats(): each number recomputed from the trace's own arrays, the dead and saturated
shares on networks built for them, and the picture."""

import numpy as np
import pytest

from handprop import Sequential, init, trace
from handprop.layers import Conv2d, Linear, ReLU, Sigmoid, Tanh
from handprop.losses import CrossEntropyLoss, MSELoss

RNG = np.random.default_rng(0)


def deep_tanh(std):
    """Four 50-unit tanh layers, weights N(0, std^2) or (std None) Kaiming's tanh gain."""
    modules = []
    for i in range(4):
        layer = Linear(50, 50, dtype=np.float64, rng=i)
        if std is None:
            init.kaiming_normal_(layer.weight, nonlinearity="tanh", rng=i)
        else:
            init.normal_(layer.weight, 0.0, std, rng=i)
        modules += [layer, Tanh()]
    return Sequential(*modules, Linear(50, 10, dtype=np.float64, rng=9))


def test_every_number_is_the_traces_own():
    model = Sequential(Linear(4, 6, rng=0), Tanh(), Linear(6, 3, rng=1), Sigmoid())
    t = trace(model, MSELoss(), RNG.standard_normal((8, 4)), RNG.random((8, 3)))
    rows = t.stats(lr=0.05)
    for row, n in zip(rows, (1, 2), strict=True):
        a, g = t[f"A{n}"].astype(np.float64), t[f"dJ/dA{n}"].astype(np.float64)
        assert row.layer == n
        assert row.mean == pytest.approx(a.mean()) and row.std == pytest.approx(a.std())
        assert row.grad_mean == pytest.approx(g.mean()) and row.grad_std == pytest.approx(g.std())
        w, dw = t[f"W{n}"].astype(np.float64), t[f"dJ/dW{n}"].astype(np.float64)
        assert row.update_ratio == pytest.approx(0.05 * dw.std() / w.std())
        assert row.dead is None
    assert rows[0].saturated == pytest.approx(np.mean(np.abs(t["A1"]) > 0.97))
    assert rows[1].saturated == pytest.approx(np.mean(np.abs(t["A2"] - 0.5) > 0.47))
    assert "update/data" in str(rows) and "Tanh" in str(rows)
    assert t.stats()[0].update_ratio is None  # no learning rate, no ratio


def test_large_weights_saturate_tanh_and_unbalance_the_gradients_kaiming_does_not():
    """makemore part 3's lesson in numbers: with N(0, 1) weights most tanh outputs sit at
    +-1, and the gradient's size changes by a large factor from layer to layer (here it
    doubles at each layer on its way down); Kaiming's gain of 5/3 keeps both in check."""
    X, y = RNG.standard_normal((32, 50)), RNG.integers(0, 10, 32)
    large = trace(deep_tanh(1.0), CrossEntropyLoss(), X, y).stats()
    kaiming = trace(deep_tanh(None), CrossEntropyLoss(), X, y).stats()
    assert all(row.saturated > 0.5 for row in large[:4])
    assert all(row.saturated < 0.25 for row in kaiming[:4])
    assert large[0].grad_std / large[3].grad_std > 4
    assert 0.5 < kaiming[0].grad_std / kaiming[3].grad_std < 2


def test_dead_units_are_counted_per_unit_and_per_channel():
    layer = Linear(3, 4, dtype=np.float64, rng=0)
    layer.bias.data[1] = -100.0  # unit 1 never fires
    t = trace(Sequential(layer, ReLU()), MSELoss(), RNG.standard_normal((6, 3)), np.zeros((6, 4)))
    assert t.stats()[0].dead == pytest.approx(0.25)
    conv = Conv2d(1, 2, 2, dtype=np.float64, rng=0)
    conv.bias.data[0] = -100.0  # channel 0 never fires
    t = trace(
        Sequential(conv, ReLU()),
        MSELoss(),
        RNG.standard_normal((2, 1, 3, 3)),
        np.zeros((2, 2, 2, 2)),
    )
    assert t.stats()[0].dead == pytest.approx(0.5)


def test_plot_stats_draws_the_histograms(tmp_path):
    pytest.importorskip("matplotlib")
    from handprop.explain.stats import plot_stats

    t = trace(
        deep_tanh(None), CrossEntropyLoss(), RNG.standard_normal((16, 50)), RNG.integers(0, 10, 16)
    )
    plot_stats(t, tmp_path / "stats.png")
    assert (tmp_path / "stats.png").read_bytes().startswith(b"\x89PNG")
