"""Each fast path equals the plain formula it replaces, bit for bit (handprop._fast)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from handprop._fast import keep_where_active

SPECIAL = [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 3.0e38]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@given(data=st.data())
def test_keep_where_active_is_np_where_bit_for_bit(dtype, data):
    shape = data.draw(st.tuples(st.integers(0, 5), st.integers(0, 5)))
    values = st.one_of(st.sampled_from(SPECIAL), st.floats(width=32))
    y = data.draw(arrays(dtype, shape, elements=values))
    g = data.draw(arrays(dtype, shape, elements=values))
    fast = keep_where_active(g, y)
    plain = np.where(~(y <= 0), g, dtype(0))
    assert fast.dtype == plain.dtype and fast.shape == plain.shape
    assert fast.tobytes() == plain.tobytes()  # bits, so -0.0 and NaN payloads count too


def test_keep_where_active_can_tell_a_wrong_mask():
    """The comparison above is strict enough to fail: the >= mask differs at y = 0."""
    y, g = np.array([0.0, 1.0]), np.array([5.0, 5.0])
    assert keep_where_active(g, y).tobytes() != np.where(y >= 0, g, 0.0).tobytes()
