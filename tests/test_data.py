"""Mini-batches: every sample exactly once per epoch, seeded order, last batch handled."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from handprop.data import batches


@given(
    n=st.integers(1, 60),
    size=st.integers(1, 70),
    seed=st.integers(0, 2**32 - 1),
    drop_last=st.booleans(),
)
def test_each_sample_once_with_partial_last_batch(n, size, seed, drop_last):
    X = np.arange(2 * n).reshape(n, 2)
    y = np.arange(n)
    got = list(batches(X, y, size, rng=seed, drop_last=drop_last))
    sizes = [len(yb) for _, yb in got]
    full, rest = divmod(n, size)
    assert sizes == [size] * full + ([rest] if rest and not drop_last else [])
    seen = np.concatenate([yb for _, yb in got]) if got else np.array([], dtype=int)
    assert len(set(seen.tolist())) == len(seen)  # no sample twice
    if not drop_last:
        assert sorted(seen.tolist()) == list(range(n))
    for Xb, yb in got:
        np.testing.assert_array_equal(Xb[:, 0] // 2, yb)  # rows stay paired with their labels


def test_seeded_order_is_reproducible_and_a_generator_advances():
    X, y = np.zeros((50, 1)), np.arange(50)
    first = [yb.tolist() for _, yb in batches(X, y, 8, rng=3)]
    assert first == [yb.tolist() for _, yb in batches(X, y, 8, rng=3)]
    gen = np.random.default_rng(3)
    epoch1 = [yb.tolist() for _, yb in batches(X, y, 8, rng=gen)]
    epoch2 = [yb.tolist() for _, yb in batches(X, y, 8, rng=gen)]
    assert epoch1 == first and epoch2 != epoch1
    assert [yb.tolist() for _, yb in batches(X, y, 50, shuffle=False)] == [list(range(50))]
