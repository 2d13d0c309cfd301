"""``assert_close``: handprop's value against a reference, under the per-dtype tolerances
(``handprop.interop.TOLERANCES``, measured: see there and benchmarks/measure_tolerances.py).

Torch-free, so the golden-data tests run without torch. The verdict is
``handprop.interop.compare``'s; tests/test_helpers.py checks that it can fail.
"""

from __future__ import annotations

import numpy as np

from handprop.interop import TOLERANCES, compare

#: When a list, assert_close appends (dtype, smallest tolerance that would pass) to it:
#: benchmarks/measure_tolerances.py uses this to measure the errors the bounds must cover.
RECORD: list | None = None


def assert_close(name: str, actual, expected, dtype, scale: float | None = None) -> None:
    """``actual`` (handprop) equals ``expected`` (the reference) within the dtype's tolerance.

    Shapes must match exactly and ``actual`` must have the model's dtype (no silent
    promotion); NaN and infinities must sit at the same places.
    """
    dtype = np.dtype(dtype)
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    if actual.ndim:  # Python float costs carry no dtype of their own
        assert actual.dtype == dtype, f"{name}: dtype {actual.dtype}, expected {dtype}"
    exp, act = expected.astype(np.float64), actual.astype(np.float64)
    finite = np.isfinite(exp)
    if scale is None:
        scale = max(1.0, float(np.max(np.abs(exp[finite]), initial=0.0)))
    err = np.abs(act[finite] - exp[finite])
    if RECORD is not None and err.size:
        # the smallest tol with rtol = atol = tol that admits every element
        RECORD.append((dtype.name, float((err / (np.abs(exp[finite]) + scale)).max())))
    max_abs, _, passed = compare(actual, expected, dtype, scale)
    if not passed:
        tol = TOLERANCES[dtype]
        bound = tol["rtol"] * np.abs(exp[finite]) + tol["atol"] * scale
        worst = int(np.argmax(err - bound)) if err.size else 0
        detail = (
            f"|handprop - torch| = {err[worst]:.3g} exceeds {bound[worst]:.3g} at flat index "
            f"{worst} (handprop {act[finite][worst]!r}, torch {exp[finite][worst]!r})"
            if err.size
            else "NaN or infinity at different places"
        )
        raise AssertionError(f"{name} ({dtype}): {detail}; max abs {max_abs:.3g}")
