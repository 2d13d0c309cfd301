"""Measure how far handprop and torch differ, to set the parity suite's tolerances.

Runs the parity helper (tests/parity.py) over many random networks, generic and edge, in
both dtypes, and prints per dtype the smallest tolerance ``tol`` (as ``rtol = atol = tol`` in
the bound ``|handprop - torch| <= rtol * |torch| + atol * scale``) that every compared tensor
would have passed, next to the tolerance in use.

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

from handprop.interop import TOLERANCES


def run(dtype, n: int) -> None:
    config = settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )

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


def main(n: int) -> None:
    closeness.RECORD = []
    for dtype in (np.float32, np.float64):
        run(dtype, n)
    for dtype in ("float32", "float64"):
        needed = [tol for d, tol in closeness.RECORD if d == dtype]
        print(
            f"{dtype}: {len(needed)} tensors compared, smallest passing tolerance "
            f"{max(needed):.3g}; in use {TOLERANCES[np.dtype(dtype)]}"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
