"""Per-dtype tolerances and ``assert_close``: torch-free, so golden-data tests run without torch.

The bound is ``|handprop - reference| <= rtol * |reference| + atol * scale``; ``scale`` is the
size of the terms a value was summed from (default: the largest reference value, at least 1).
"""

from __future__ import annotations

import numpy as np

# Measured with benchmarks/measure_tolerances.py (1000 generic + 1000 edge networks per dtype,
# torch 2.13.0 CPU, NumPy 2.4): the smallest tolerance every compared tensor passed was at most
# 7.0e-7 in float32 and 2.2e-15 in float64 (worst of two runs: 36029 tensors before
# CrossEntropyLoss/Softmax were added, 41465 after). The bounds leave margins of 14x and 45x.
TOLERANCES = {
    np.dtype(np.float32): {"rtol": 1e-5, "atol": 1e-5},
    np.dtype(np.float64): {"rtol": 1e-13, "atol": 1e-13},
}

#: When a list, assert_close appends (dtype, smallest tolerance that would pass) to it:
#: benchmarks/measure_tolerances.py uses this to measure the errors the bounds must cover.
RECORD: list | None = None


def assert_close(name: str, actual, expected, dtype, scale: float | None = None) -> None:
    """``actual`` (handprop) equals ``expected`` (torch) within the dtype's tolerance.

    Shapes must match exactly, and ``actual`` must have the model's dtype (no silent
    promotion). NaN must be NaN at the same places, infinities equal.
    """
    dtype = np.dtype(dtype)
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    if actual.ndim:  # Python float costs carry no dtype of their own
        assert actual.dtype == dtype, f"{name}: dtype {actual.dtype}, expected {dtype}"
    tol = TOLERANCES[dtype]
    exp = expected.astype(np.float64)
    act = actual.astype(np.float64)
    finite = np.isfinite(exp)
    assert np.array_equal(np.isnan(act), np.isnan(exp)), f"{name}: NaN pattern differs"
    assert np.array_equal(act[np.isinf(exp)], exp[np.isinf(exp)]), f"{name}: inf differs"
    if scale is None:
        scale = max(1.0, float(np.max(np.abs(exp[finite]), initial=0.0)))
    bound = tol["rtol"] * np.abs(exp[finite]) + tol["atol"] * scale
    err = np.abs(act[finite] - exp[finite])
    if RECORD is not None and err.size:
        # the smallest tol with rtol = atol = tol that admits every element
        RECORD.append((dtype.name, float((err / (np.abs(exp[finite]) + scale)).max())))
    worst = int(np.argmax(err - bound)) if err.size else 0
    assert np.all(err <= bound), (
        f"{name} ({dtype}): |handprop - torch| = {err[worst]:.3g} exceeds {bound[worst]:.3g} "
        f"at flat index {worst} (handprop {act[finite][worst]!r}, torch {exp[finite][worst]!r})"
    )
