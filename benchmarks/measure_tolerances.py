"""Measure how far handprop and torch differ, to set the parity suite's tolerances.

Runs the parity helper (tests/parity.py) over many random networks, generic and edge, and
over random convolutions and pooling layers (tests/test_conv.py's strategies), in both dtypes,
and prints per dtype the smallest tolerance ``tol`` (as ``rtol = atol = tol`` in the bound
``|handprop - torch| <= rtol * |torch| + atol * scale``) that every compared tensor would have
passed, next to the tolerance in use: for the networks, and for the convolutional layers
apart.

Usage:  python benchmarks/measure_tolerances.py [examples per property and dtype, default 1000]
"""

import sys
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import closeness
import parity
from strategies import edge_problems, generic_problems
from test_conv import conv_configs, pool_configs

from handprop import Sequential
from handprop.interop import TOLERANCES
from handprop.layers import AvgPool2d, Conv2d, Flatten
from handprop.losses import MSELoss


def _config(n: int):
    """Deterministic hypothesis settings for n examples."""
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


def run(dtype, n: int) -> None:
    config = _config(n)

    @config
    @given(data=st.data())
    def generic(data):
        model, loss, X, y = data.draw(generic_problems(dtype))
        parity.check_network(model, loss, X, y)
        parity.check_modules(model, loss, X, y)

    @config
    @given(data=st.data())
    def edge(data):
        parity.check_modules(*data.draw(edge_problems(dtype)))

    generic()
    edge()


def run_conv(dtype, n: int) -> None:
    """Random Conv2d and AvgPool2d configurations (max pooling is exact: no rounding)."""

    @_config(n)
    @given(conv=conv_configs(), pool=pool_configs(AvgPool2d), seed=st.integers(0, 2**16))
    def conv_layers(conv, pool, seed):
        rng = np.random.default_rng(seed)
        for model, shape in (
            (Sequential(Conv2d(**conv[0], dtype=dtype, rng=seed), Flatten()), conv[1]),
            (Sequential(AvgPool2d(**pool[0]), Flatten()), pool[1]),
        ):
            X = rng.standard_normal(shape).astype(dtype)
            y = rng.standard_normal(model(X).shape).astype(dtype)
            parity.check_network(model, MSELoss(), X, y)
            parity.check_modules(model, MSELoss(), X, y)

    conv_layers()


def _report(what: str, records) -> None:
    for dtype in ("float32", "float64"):
        needed = [tol for d, tol in records if d == dtype]
        print(
            f"{what}, {dtype}: {len(needed)} tensors compared, smallest passing tolerance "
            f"{max(needed):.3g}; in use {TOLERANCES[np.dtype(dtype)]}"
        )


def main(n: int) -> None:
    closeness.RECORD = []
    for dtype in (np.float32, np.float64):
        run(dtype, n)
    _report("networks", closeness.RECORD)
    closeness.RECORD = []
    for dtype in (np.float32, np.float64):
        run_conv(dtype, n)
    _report("convolution and average pooling", closeness.RECORD)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
