"""``Embedding``: a lookup table of learned vectors, as torch's ``nn/modules/sparse.py``."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._arrays import float_dtype, shape_str
from ..module import Module, Parameter
from ._functional import _positive_int


class Embedding(Module):
    """A table of ``num_embeddings`` vectors of size ``embedding_dim``: ``y = W[x]``, each index
    of ``x`` replaced by its row of the weight.

    Args:
        num_embeddings: the number of rows (a vocabulary's size).
        embedding_dim: the size of each row.
        padding_idx: a row that gets no gradient (it stays as it starts, zeros: the vector of a
            padding token); negative counts from the end, as in torch. Default None: no such row.
        dtype: ``np.float32`` (default, like torch) or ``np.float64``.
        rng: seed (int) or ``np.random.Generator`` for the initial values; None draws fresh
            entropy. The global NumPy seed is never touched.

    The weight starts standard normal, N(0, 1), torch's default initialisation, with the
    ``padding_idx`` row set to zeros.

    Shape:
        - Input ``x``: integer indices of any shape ``(*)``, each in ``[0, num_embeddings)``
        - Output ``y``: ``(*, embedding_dim)``
        - ``weight``: ``(num_embeddings, embedding_dim)``

    Backward: the indices get no gradient (they are not numbers one can nudge: ``None``), and
    ``dJ/dW`` gets each output row's gradient added into the row it was read from. An index
    that occurs several times (the same token twice in a batch) was read several times, so its
    row gets the *sum* of their gradients: ``np.add.at(dW, x, g)``. Fancy assignment,
    ``dW[x] += g``, would be wrong here: NumPy evaluates it as ``dW[x] = dW[x] + g``, once per
    distinct index, and a repeated index keeps only the last of its gradients.

    Examples:
        >>> emb = Embedding(5, 2, rng=0)
        >>> y = emb(np.array([[1, 3], [1, 4]]))  # a batch of two sequences of two tokens
        >>> y.shape
        (2, 2, 2)
        >>> emb.backward(np.ones((2, 2, 2))) is None  # the indices: no gradient
        True
        >>> emb.weight.grad[:, 0]  # token 1 was read twice: its row got both gradients
        array([0., 2., 0., 1., 1.], dtype=float32)
    """

    _cache = ("_indices",)

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        *,
        dtype: Any = np.float32,
        rng: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        self.num_embeddings = _positive_int(num_embeddings, "Embedding", "num_embeddings")
        self.embedding_dim = _positive_int(embedding_dim, "Embedding", "embedding_dim")
        self.padding_idx = _padding_idx(padding_idx, self.num_embeddings)
        dtype = float_dtype(dtype, "Embedding")
        self.weight = Parameter(np.empty((self.num_embeddings, self.embedding_dim), dtype))
        self.reset_parameters(rng)

    @classmethod
    def state_shapes(cls, num_embeddings, embedding_dim, padding_idx=None, dtype=np.float32):
        """``weight`` (num_embeddings, embedding_dim), without allocating it."""
        n = _positive_int(num_embeddings, "Embedding", "num_embeddings")
        d = _positive_int(embedding_dim, "Embedding", "embedding_dim")
        _padding_idx(padding_idx, n)
        return {"weight": ((n, d), float_dtype(dtype, "Embedding"), "parameter")}

    def reset_parameters(self, rng: int | np.random.Generator | None = None) -> None:
        """Draw the weight from N(0, 1) again, the ``padding_idx`` row zeros."""
        self.weight.data[...] = np.random.default_rng(rng).standard_normal(self.weight.shape)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0.0

    @property
    def dtype(self) -> np.dtype:
        return self.weight.dtype

    def forward(self, input: Any) -> np.ndarray:
        """``y = W[x]``: (*) indices -> (*, embedding_dim), a copy of each row read."""
        x = np.asarray(input)
        if x.dtype.kind not in "iu":
            raise TypeError(
                f"{self!r}: expected integer indices, got {x.dtype} (class indices are whole "
                "numbers: x.astype(int))"
            )
        if x.size and (x.min() < 0 or x.max() >= self.num_embeddings):
            bad = x[(x < 0) | (x >= self.num_embeddings)].flat[0]
            raise IndexError(
                f"{self!r}: index {bad} is out of range for {self.num_embeddings} embeddings "
                f"(indices of shape {shape_str(x.shape)} must be in [0, {self.num_embeddings}))"
            )
        self._indices = x
        return self.weight.data[x]

    def backward(self, grad_output: Any, *, input_grad: bool = True) -> None:
        """``dJ/dW[i] += sum of g over the positions where x == i`` (``np.add.at``: a repeated
        index adds every one of its gradients); the padding row gets none. Returns None: the
        indices have no gradient."""
        x = self._indices
        g = self._grad_output(grad_output, (*x.shape, self.embedding_dim), self.weight.dtype)
        grad = np.zeros_like(self.weight.data)
        np.add.at(grad, x.ravel(), g.reshape(-1, self.embedding_dim))
        if self.padding_idx is not None:
            grad[self.padding_idx] = 0.0
        self.weight.accumulate_grad(grad)
        return None

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        return text


def _padding_idx(value: Any, n: int) -> int | None:
    """torch's ``padding_idx``: None, or an index in ``[-n, n)`` (negative from the end),
    kept as its non-negative form."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"Embedding: padding_idx must be an int or None, got {value!r}")
    if not -n <= value < n:
        raise ValueError(f"Embedding: padding_idx must be within num_embeddings, got {value}")
    return int(value) % n
