"""Embedding against torch's nn.Embedding: the lookup, the weight's gradient with repeated
indices summed (np.add.at), the padding row, in both dtypes, over random shapes; and everywhere
a layer reaches (a model, gradcheck, save/load, to_torch/from_torch, bad input), none of it
written for Embedding."""

from __future__ import annotations

import numpy as np
import pytest
from closeness import assert_close
from hypothesis import given
from hypothesis import strategies as st

import handprop
from handprop import Sequential
from handprop.interop import from_torch, to_torch
from handprop.layers import Embedding, Flatten, Linear
from handprop.losses import CrossEntropyLoss

torch = pytest.importorskip("torch")
DTYPES = [np.float32, np.float64]
TORCH = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


@st.composite
def cases(draw):
    n = draw(st.integers(1, 9))
    dim = draw(st.integers(1, 5))
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=3)))
    padding = draw(st.one_of(st.none(), st.integers(-n, n - 1)))
    seed = draw(st.integers(0, 2**31 - 1))
    dtype = draw(st.sampled_from(DTYPES))
    return n, dim, shape, padding, seed, dtype


@given(cases())
def test_embedding_equals_torch(case):
    """Forward bit for bit (a lookup); dJ/dW within the dtype's tolerance (a repeated index's
    gradients are summed, in another order than torch's); the padding row gets none."""
    n, dim, shape, padding, seed, dtype = case
    rng = np.random.default_rng(seed)
    ours = Embedding(n, dim, padding_idx=padding, dtype=dtype, rng=rng)
    theirs = to_torch(ours)
    x = rng.integers(0, n, size=shape)
    g = rng.standard_normal((*shape, dim)).astype(dtype)
    y = ours(x)
    ty = theirs(torch.from_numpy(x))
    ty.backward(torch.from_numpy(g))
    assert y.dtype == dtype and y.shape == (*shape, dim)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    assert ours.backward(g) is None  # indices: no gradient
    scale = max(1.0, float(np.abs(g).reshape(-1, dim).sum(axis=0).max(initial=0.0)))
    assert_close("dJ/dW", ours.weight.grad, theirs.weight.grad.numpy(), dtype, scale=scale)
    if padding is not None:
        assert not ours.weight.grad[padding].any() and not ours.weight.data[padding].any()


def test_a_repeated_index_adds_its_gradients_where_fancy_assignment_keeps_one():
    emb = Embedding(3, 1, dtype=np.float64, rng=0)
    emb(np.array([2, 2, 2, 0]))
    emb.backward(np.array([[1.0], [10.0], [100.0], [5.0]]))
    np.testing.assert_array_equal(emb.weight.grad.ravel(), [5.0, 0.0, 111.0])
    wrong = np.zeros((3, 1))
    wrong[np.array([2, 2, 2, 0])] += np.array([[1.0], [10.0], [100.0], [5.0]])  # the mistake
    assert wrong[2, 0] == 100.0  # only the last of the three


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_model_starting_with_an_embedding_trains_like_torch(dtype):
    model = Sequential(
        Embedding(7, 3, rng=0, dtype=dtype), Flatten(), Linear(6, 4, rng=1, dtype=dtype)
    )
    twin = to_torch(model)
    X, y = np.array([[1, 2], [2, 2], [6, 0]]), np.array([0, 3, 1])
    loss = CrossEntropyLoss()
    cost = loss(model(X), y)
    assert model.backward(loss.backward()) is None  # dJ/dX: none for indices
    t_cost = torch.nn.functional.cross_entropy(twin(torch.from_numpy(X)), torch.from_numpy(y))
    t_cost.backward()
    assert_close("J", cost, t_cost.item(), dtype)
    for (name, p), (_, q) in zip(model.named_parameters(), twin.named_parameters(), strict=True):
        assert_close(f"{name}.grad", p.grad, q.grad.numpy(), dtype)
    report = handprop.gradcheck(model, loss, X, y)  # the indices are not perturbed
    assert report.passed and [t.name for t in report.tensors] == ["0.weight", "2.weight", "2.bias"]


def test_save_load_and_torch_both_ways_need_nothing_written_for_embedding(tmp_path):
    emb = Embedding(6, 2, padding_idx=-2, rng=3, dtype=np.float64)
    handprop.save(Sequential(emb), tmp_path / "m.npz")
    back = handprop.load(tmp_path / "m.npz")[0]
    assert back.config() == {"num_embeddings": 6, "embedding_dim": 2, "padding_idx": 4,
                             "dtype": "float64"}  # fmt: skip
    np.testing.assert_array_equal(back.weight.data, emb.weight.data)
    again = from_torch(to_torch(emb))
    assert repr(again) == "Embedding(6, 2, padding_idx=4)" and again.dtype == np.float64
    np.testing.assert_array_equal(again.weight.data, emb.weight.data)
    with pytest.raises(TypeError, match=r"unsupported module .*max_norm"):
        from_torch(torch.nn.Embedding(3, 2, max_norm=1.0))  # a setting handprop does not take


def test_bad_indices_are_refused_clearly_and_change_nothing():
    emb = Embedding(4, 2, rng=0)
    with pytest.raises(
        TypeError, match=r"Embedding\(4, 2\): expected integer indices, got float64"
    ):
        emb(np.array([0.0, 1.0]))
    with pytest.raises(IndexError, match=r"index 4 is out of range for 4 embeddings"):
        emb(np.array([[0, 4]]))
    with pytest.raises(IndexError, match=r"index -1 is out of range"):
        emb(np.array([-1]))
    with pytest.raises(RuntimeError, match="backward"):  # nothing pending from those
        emb.backward(np.ones((1, 2)))
    with pytest.raises(ValueError, match="padding_idx must be within num_embeddings"):
        Embedding(4, 2, padding_idx=4)
    with pytest.raises(ValueError, match="num_embeddings must be a positive int"):
        Embedding(0, 2)


class _FancyAssignment(Embedding):
    """The classic mistake: dW[x] += g, a repeated index keeps one of its gradients."""

    def backward(self, grad_output, *, input_grad=True):
        x, g = self._indices, np.asarray(grad_output)
        dW = np.zeros_like(self.weight.data)
        dW[x.ravel()] += g.reshape(-1, self.embedding_dim)
        self.weight.accumulate_grad(dW)


def test_check_module_names_a_repeated_index_overwritten_and_passes_the_right_backward():
    x = np.array([[1, 3, 1], [4, 1, 0]])
    right = handprop.check_module(Embedding(5, 3, rng=0, dtype=np.float64), x, rng=0)
    assert right.passed and [row.name for row in right.rows] == ["weight"]  # no dJ/dx
    wrong = handprop.check_module(_FancyAssignment(5, 3, rng=0, dtype=np.float64), x, rng=0)
    assert not wrong.passed
    assert [(m.tensor, m.code) for m in wrong.mistakes] == [("weight", "repeated-index")]
    assert "index 1 occurs more than once" in wrong.mistakes[0].hint
    once = handprop.check_module(  # no index twice: the same code is right
        _FancyAssignment(5, 3, rng=0, dtype=np.float64), np.array([0, 2, 4]), rng=0
    )
    assert once.passed
