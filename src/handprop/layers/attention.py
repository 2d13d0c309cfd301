"""Attention, as torch's ``nn.MultiheadAttention``: the scaled dot-product attention and its
backward (two functions a learner reads once), and the multi-head layer around them.

    scores = (q / sqrt(d)) k^T + mask        P = softmax(scores)        out = P v

The backward reads as that math backwards: the two matrix products, and the softmax's
vector-Jacobian product ``dS = P * (dP - sum(dP * P))`` (not its diagonal: every weight of a
row depends on every score of the row). See docs/layers/attention.md.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from .. import init
from .._arrays import as_float_array, float_dtype, shape_str
from ..module import Module, Parameter
from ._functional import _positive_int
from .linear import Linear

# -- the attention itself: forward and backward ----------------------------------------------


def scaled_dot_product_attention(q, k, v, mask=None, keep=None, p=0.0):
    """``P = softmax(q k^T / sqrt(d) + mask)``, then ``out = P' v``, ``P'`` being ``P`` through
    dropout (``keep``, a boolean keep-mask of P's shape, scaled by ``1 / (1 - p)``).

    Shapes: q (..., L, d), k (..., S, d), v (..., S, d_v), mask broadcast to (..., L, S)
    (added: ``-inf`` where a query may not look); returns ``out`` (..., L, d_v), the weights
    ``P'`` (..., L, S) and what the backward needs.
    """
    q_scaled = q * q.dtype.type(math.sqrt(1.0 / q.shape[-1]))  # (torch's order: q scaled first)
    scores = q_scaled @ np.swapaxes(k, -1, -2)
    if mask is not None:
        scores = scores + mask
    with np.errstate(invalid="ignore", under="ignore"):  # a row all -inf: NaN, as torch gives
        e = np.exp(scores - scores.max(axis=-1, keepdims=True))
        weights = e / e.sum(axis=-1, keepdims=True)
    dropped = weights if keep is None else weights * keep * weights.dtype.type(1 / (1 - p))
    return dropped @ v, dropped, (q_scaled, k, v, weights, dropped, keep, p)


def scaled_dot_product_attention_backward(d_out, d_weights, cache):
    """With ``g = dJ/d(out)`` (..., L, d_v), and ``dJ/dP'`` given for the weights returned
    (None: they reach no cost):

    - ``dJ/dv = P'^T g``  (..., S, L) @ (..., L, d_v), and ``dJ/dP' = g v^T (+ the given)``;
    - through dropout: ``dJ/dP = dJ/dP' * keep / (1 - p)``;
    - through the softmax, a row at a time: ``dS = P * (dJ/dP - sum_j dJ/dP_j P_j)``;
    - ``dJ/dq = dS k / sqrt(d)``  (..., L, S) @ (..., S, d), and ``dJ/dk = dS^T q / sqrt(d)``.

    Returns ``(dJ/dq, dJ/dk, dJ/dv)``.
    """
    dq, dk, dv, _ = _attention_backward(d_out, d_weights, cache)
    return dq, dk, dv


def _attention_backward(d_out, d_weights, cache):
    """The backward above, with ``dS`` too (what the step-through page shows)."""
    q_scaled, k, v, weights, dropped, keep, p = cache
    d_dropped = d_out @ np.swapaxes(v, -1, -2)
    if d_weights is not None:
        d_dropped = d_dropped + d_weights
    dv = np.swapaxes(dropped, -1, -2) @ d_out
    d_p = d_dropped if keep is None else d_dropped * keep * weights.dtype.type(1 / (1 - p))
    with np.errstate(invalid="ignore"):  # (a row of NaN weights stays NaN)
        d_scores = weights * (d_p - (d_p * weights).sum(axis=-1, keepdims=True))
    scale = q_scaled.dtype.type(math.sqrt(1.0 / q_scaled.shape[-1]))
    dq = (d_scores @ k) * scale
    dk = np.swapaxes(d_scores, -1, -2) @ q_scaled
    return dq, dk, dv, d_scores


# -- the layer -------------------------------------------------------------------------------


class MultiheadAttention(Module):
    """Multi-head attention, torch's ``nn.MultiheadAttention``:
    ``MultiHead(Q, K, V) = concat(head_1, ..., head_h) W_o^T + b_o``, with
    ``head_i = Attention(Q W_qi^T + b_qi, K W_ki^T + b_ki, V W_vi^T + b_vi)`` and ``Attention``
    the scaled dot-product attention above, each head on ``head_dim = embed_dim / num_heads``
    of the features.

    Args:
        embed_dim: the size of the queries and of the output (``E``).
        num_heads: the heads; ``embed_dim`` must be divisible by it.
        dropout: dropout on the attention weights in training, from ``rng`` (after the
            forward, ``.mask`` is the keep-mask used).
        bias: learn ``in_proj_bias`` and ``out_proj.bias`` (default True).
        add_bias_kv: learn ``bias_k`` and ``bias_v`` (1, 1, E), one more key and value
            appended to every sequence.
        add_zero_attn: one more key and value of zeros appended (after the heads are split).
        kdim: the size of the keys (default ``embed_dim``); when it or ``vdim`` differs, the
            projections are ``q_proj_weight``, ``k_proj_weight`` and ``v_proj_weight``
            instead of one packed ``in_proj_weight`` (3E, E).
        vdim: the size of the values (default ``embed_dim``).
        batch_first: inputs and output as ``(N, L, E)`` instead of ``(L, N, E)``.
        dtype: ``np.float32`` (default, like torch) or ``np.float64``.
        rng: seed (int) or ``np.random.Generator`` for the initial values (torch's: Xavier
            uniform projections, zero biases, the out projection as a ``Linear``'s), then the
            dropout masks; None draws fresh entropy.

    Call: ``attn_output, attn_weights = mha(query, key, value, key_padding_mask=None,
    need_weights=True, attn_mask=None, average_attn_weights=True, is_causal=False)``, the masks
    and options by keyword.

    Shape:
        - query ``(L, N, E)`` (``(N, L, E)`` with ``batch_first``; ``(L, E)`` unbatched), key
          ``(S, N, kdim)``, value ``(S, N, vdim)``
        - key_padding_mask ``(N, S)``: True (or ``-inf`` added) where a key is padding
        - attn_mask ``(L, S)`` or ``(N * num_heads, L, S)``: True (or ``-inf`` added) where a
          query may not look; ``is_causal=True`` is torch's hint that it is causal, and needs it
        - attn_output like query; attn_weights ``(N, L, S)`` averaged over the heads, or
          ``(N, num_heads, L, S)``; None with ``need_weights=False``

    Backward: ``mha.backward(d_attn_output, d_attn_weights)`` (None for weights that reach no
    cost) returns ``(dJ/dquery, dJ/dkey, dJ/dvalue)``. For self-attention, ``mha(x, x, x)``, x
    reaches the cost three ways: its gradient is the sum of the three.

    Examples:
        >>> mha = MultiheadAttention(4, 2, batch_first=True, rng=0)
        >>> x = np.ones((3, 5, 4))                       # 3 sequences of 5 tokens
        >>> out, weights = mha(x, x, x)
        >>> out.shape, weights.shape
        ((3, 5, 4), (3, 5, 5))
        >>> dq, dk, dv = mha.backward(np.ones((3, 5, 4)), None)
        >>> dx = dq + dk + dv                            # self-attention: the three paths add
    """

    _cache = ("_run",)
    #: torch keeps these two arguments only as the parameters they create (``interop`` reads
    #: them as "that parameter is there")
    _torch_attributes: ClassVar[dict[str, str]] = {"bias": "in_proj_bias", "add_bias_kv": "bias_k"}

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        *,
        dtype: Any = np.float32,
        rng: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        shapes = self.state_shapes(embed_dim, num_heads, dropout, bias, add_bias_kv,
                                   add_zero_attn, kdim, vdim, batch_first, dtype)  # fmt: skip
        self.embed_dim, self.num_heads = int(embed_dim), int(num_heads)
        self.head_dim = self.embed_dim // self.num_heads
        self.kdim = self.embed_dim if kdim is None else int(kdim)
        self.vdim = self.embed_dim if vdim is None else int(vdim)
        self.dropout, self.bias = float(dropout), bool(bias)
        self.add_bias_kv, self.add_zero_attn = bool(add_bias_kv), bool(add_zero_attn)
        self.batch_first = bool(batch_first)
        for name, (shape, kind, _) in shapes.items():
            if not name.startswith("out_proj."):
                setattr(self, name, Parameter(np.empty(shape, kind)))
        self.out_proj = Linear(self.embed_dim, self.embed_dim, bias=bias, dtype=dtype)
        self.rng = np.random.default_rng(rng)
        self.reset_parameters(self.rng)
        self.mask: np.ndarray | None = None  # the attention weights' last keep-mask
        self.score_grads: np.ndarray | None = None  # after a backward: dJ/d(scores)
        self._fixed_mask: np.ndarray | None = None  # set by gradcheck

    @classmethod
    def state_shapes(cls, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False,
                     add_zero_attn=False, kdim=None, vdim=None, batch_first=False,
                     dtype=np.float32):  # fmt: skip
        """``in_proj_weight`` (3E, E), or ``q_proj_weight`` (E, E), ``k_proj_weight`` (E, kdim)
        and ``v_proj_weight`` (E, vdim); ``in_proj_bias`` (3E,); ``bias_k`` and ``bias_v``
        (1, 1, E); ``out_proj.weight`` (E, E) and ``out_proj.bias`` (E,): torch's names and
        order, without allocating them."""
        e = _positive_int(embed_dim, "MultiheadAttention", "embed_dim")
        heads = _positive_int(num_heads, "MultiheadAttention", "num_heads")
        if e % heads:
            raise ValueError(
                f"embed_dim must be divisible by num_heads, got embed_dim={e} and num_heads={heads}"
            )
        if (
            isinstance(dropout, bool)
            or not isinstance(dropout, (int, float))
            or not (0 <= dropout < 1)
        ):
            raise ValueError(f"MultiheadAttention: dropout must be in [0, 1), got {dropout!r}")
        k = e if kdim is None else _positive_int(kdim, "MultiheadAttention", "kdim")
        v = e if vdim is None else _positive_int(vdim, "MultiheadAttention", "vdim")
        dtype = float_dtype(dtype, "MultiheadAttention")
        if k == e and v == e:
            shapes = {"in_proj_weight": ((3 * e, e), dtype, "parameter")}
        else:
            shapes = {
                "q_proj_weight": ((e, e), dtype, "parameter"),
                "k_proj_weight": ((e, k), dtype, "parameter"),
                "v_proj_weight": ((e, v), dtype, "parameter"),
            }
        if bias:
            shapes["in_proj_bias"] = ((3 * e,), dtype, "parameter")
        if add_bias_kv:
            shapes["bias_k"] = shapes["bias_v"] = ((1, 1, e), dtype, "parameter")
        shapes["out_proj.weight"] = ((e, e), dtype, "parameter")
        if bias:
            shapes["out_proj.bias"] = ((e,), dtype, "parameter")
        return shapes

    def reset_parameters(self, rng: int | np.random.Generator | None = None) -> None:
        """torch's: Xavier-uniform projections (each of q, k, v when separate), zero biases,
        Xavier-normal ``bias_k`` and ``bias_v``, the out projection a ``Linear``'s."""
        rng = np.random.default_rng(rng)
        for name in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"):
            if name in self._parameters:
                init.xavier_uniform_(self._parameters[name], rng=rng)
        for name in ("bias_k", "bias_v"):
            if name in self._parameters:
                init.xavier_normal_(self._parameters[name], rng=rng)
        self.out_proj.reset_parameters(rng)
        if self.bias:
            self.in_proj_bias.data[...] = 0.0
            self.out_proj.bias.data[...] = 0.0

    @property
    def dtype(self) -> np.dtype:
        return self.out_proj.weight.dtype

    def _projections(self) -> tuple:
        """``(W_q, W_k, W_v)`` and ``(b_q, b_k, b_v)``: the packed weight's thirds, or the three."""
        e, p = self.embed_dim, self._parameters
        if "in_proj_weight" in p:
            w = p["in_proj_weight"].data
            weights = (w[:e], w[e : 2 * e], w[2 * e :])
        else:
            weights = tuple(p[f"{n}_proj_weight"].data for n in "qkv")
        b = p["in_proj_bias"].data if self.bias else None
        biases = (None,) * 3 if b is None else (b[:e], b[e : 2 * e], b[2 * e :])
        return weights, biases

    # -- forward -------------------------------------------------------------------------------

    def forward(self, query: Any, key: Any, value: Any, *, key_padding_mask: Any = None,
                need_weights: bool = True, attn_mask: Any = None,
                average_attn_weights: bool = True, is_causal: bool = False) -> tuple:  # fmt: skip
        """Project, split the heads, attend, merge the heads, project (see the class). The
        masks and options are keyword arguments (query, key and value are the inputs, each
        with its gradient)."""
        q_in, k_in, v_in, unbatched = self._batch_first(query, key, value)
        n, length = q_in.shape[:2]
        (w_q, w_k, w_v), (b_q, b_k, b_v) = self._projections()
        q, k, v = (_linear(x, w, b) for x, w, b in ((q_in, w_q, b_q), (k_in, w_k, b_k),
                                                     (v_in, w_v, b_v)))  # fmt: skip
        if self.add_bias_kv:  # one more key and value, learned, for every sequence
            k = np.concatenate([k, np.broadcast_to(self.bias_k.data[0], (n, 1, k.shape[2]))], 1)
            v = np.concatenate([v, np.broadcast_to(self.bias_v.data[0], (n, 1, v.shape[2]))], 1)
        qh, kh, vh = (self._split(x) for x in (q, k, v))  # (N, heads, L or S, head_dim)
        if self.add_zero_attn:  # one more key and value of zeros
            zeros = np.zeros((n, self.num_heads, 1, self.head_dim), self.dtype)
            kh, vh = np.concatenate([kh, zeros], 2), np.concatenate([vh, zeros], 2)
        mask = self._mask(attn_mask, key_padding_mask, is_causal, n, length, k_in.shape[1],
                          unbatched)  # fmt: skip
        keep, p = self._keep((n, self.num_heads, length, kh.shape[2]))
        heads, weights, attention = scaled_dot_product_attention(qh, kh, vh, mask, keep, p)
        merged = heads.transpose(0, 2, 1, 3).reshape(n, length, self.embed_dim)
        out = _linear(merged, self.out_proj.weight.data,
                      self.out_proj.bias.data if self.bias else None)  # fmt: skip
        self._run = {"inputs": (q_in, k_in, v_in), "merged": merged, "attention": attention,
                     "unbatched": unbatched, "need_weights": need_weights,
                     "average": average_attn_weights}  # fmt: skip
        if need_weights:
            weights = weights.mean(axis=1) if average_attn_weights else weights
            weights = weights[0] if unbatched else weights
        return self._layout(out, unbatched), weights if need_weights else None

    def _batch_first(self, query: Any, key: Any, value: Any) -> tuple:
        """The three inputs as (N, L, features), checked; and whether they came unbatched."""
        q, k, v = (as_float_array(x, self, name, self.dtype)
                   for x, name in ((query, "query"), (key, "key"), (value, "value")))  # fmt: skip
        unbatched = q.ndim == 2
        for x, name, size in ((q, "query", self.embed_dim), (k, "key", self.kdim),
                              (v, "value", self.vdim)):  # fmt: skip
            if x.ndim != q.ndim or x.ndim not in (2, 3) or x.shape[-1] != size:
                layout = "(L, E)" if unbatched else ("(N, L, E)" if self.batch_first else
                                                     "(L, N, E)")  # fmt: skip
                raise ValueError(
                    f"{self._short_name()}: expected {name} of shape {layout} with a last axis "
                    f"of {size}, as the query's {q.ndim}-D, got {shape_str(x.shape)}"
                )
        if unbatched:
            q, k, v = q[None], k[None], v[None]
        elif not self.batch_first:
            q, k, v = (x.transpose(1, 0, 2) for x in (q, k, v))
        if k.shape[:2] != v.shape[:2] or k.shape[0] != q.shape[0]:
            raise ValueError(
                f"{self._short_name()}: key and value must have the same batch and sequence "
                f"length, and the query's batch: query {shape_str(query.shape)}, key "
                f"{shape_str(np.shape(key))}, value {shape_str(np.shape(value))}"
            )
        return q, k, v, unbatched

    def _split(self, x: np.ndarray) -> np.ndarray:
        """(N, L, E) -> (N, heads, L, head_dim): each head its slice of the features."""
        n, length, _ = x.shape
        return x.reshape(n, length, self.num_heads, self.head_dim).transpose(0, 2, 1, 3)

    def _mask(self, attn_mask, key_padding_mask, is_causal, n, length, source, unbatched):
        """One additive mask broadcast to (N, heads, L, S'): each mask as a float one (``-inf``
        where a bool one is True), the padding mask added, both padded with zeros for the
        keys appended (``bias_k``, the zero key)."""
        if is_causal and attn_mask is None:
            raise RuntimeError(
                "Need attn_mask if specifying the is_causal hint. You may use the Transformer "
                "module method `generate_square_subsequent_mask` to create this mask."
            )
        extra = int(self.add_bias_kv) + int(self.add_zero_attn)
        mask = None
        if attn_mask is not None:
            a = self._float_mask(attn_mask, "attn_mask")
            if a.ndim == 2 and a.shape == (length, source):
                a = a[None, None]
            elif a.ndim == 3 and a.shape == (n * self.num_heads, length, source):
                a = a.reshape(n, self.num_heads, length, source)
            else:
                expected = f"({length}, {source}) or ({n * self.num_heads}, {length}, {source})"
                raise ValueError(
                    f"{self._short_name()}: attn_mask must have shape {expected} (L, S, or "
                    f"N * num_heads, L, S), got {shape_str(a.shape)}"
                )
            mask = a
        if key_padding_mask is not None:
            kpm = self._float_mask(key_padding_mask, "key_padding_mask")
            expected = (source,) if unbatched else (n, source)
            if kpm.shape != expected:
                raise ValueError(
                    f"{self._short_name()}: key_padding_mask must have shape "
                    f"{shape_str(expected)} (N, S), got {shape_str(kpm.shape)}"
                )
            kpm = kpm.reshape(n, 1, 1, source)
            mask = kpm if mask is None else mask + kpm
        if mask is not None and extra:
            mask = np.concatenate([mask, np.zeros((*mask.shape[:3], extra), mask.dtype)], -1)
        return mask

    def _float_mask(self, value: Any, name: str) -> np.ndarray:
        """A bool mask as ``-inf`` where True and 0 elsewhere; a float mask as it is."""
        a = np.asarray(value)
        if a.dtype == bool:
            return np.where(a, -np.inf, 0.0).astype(self.dtype)
        if a.dtype.kind != "f":
            raise TypeError(
                f"{self._short_name()}: only bool and floating types of {name} are supported, "
                f"got {a.dtype}"
            )
        return a.astype(self.dtype, copy=False)

    def _keep(self, shape: tuple) -> tuple:
        """The attention weights' keep-mask in training with dropout (or the one gradcheck
        fixed), and p; ``(None, 0.0)`` otherwise."""
        if not self.training or self.dropout == 0.0:
            self.mask = None
            return None, 0.0
        fixed = self._fixed_mask
        keep = fixed if fixed is not None and fixed.shape == shape else (
            self.rng.random(shape) >= self.dropout
        )  # fmt: skip
        self.mask = keep
        return keep, self.dropout

    def _layout(self, out: np.ndarray, unbatched: bool) -> np.ndarray:
        if unbatched:
            return out[0]
        return out if self.batch_first else out.transpose(1, 0, 2)

    # -- backward ------------------------------------------------------------------------------

    def backward(self, grad_output: Any, grad_weights: Any = None) -> tuple:
        """The forward's steps backwards: the out projection (``dJ/dW_o += g^T merged``), the
        heads split again, the attention's backward (``scaled_dot_product_attention_backward``),
        the heads merged, the appended keys' gradients to ``bias_k``/``bias_v`` (or dropped,
        the zero key's), and each projection (``dJ/dW_q += dq^T query``, ``dJ/dquery = dq W_q``).

        Returns ``(dJ/dquery, dJ/dkey, dJ/dvalue)``, in the inputs' layout.
        """
        run = self._run
        q_in, k_in, v_in = run["inputs"]
        n, length = q_in.shape[:2]
        e = self.embed_dim
        shape = (length, e) if run["unbatched"] else ((n, length, e) if self.batch_first else
                                                        (length, n, e))  # fmt: skip
        g = self._grad_output(grad_output, shape, self.dtype)
        g = g[None] if run["unbatched"] else (g if self.batch_first else g.transpose(1, 0, 2))
        d_merged = self._out_projection_backward(g, run["merged"])
        d_heads = self._split_gradient(d_merged)
        d_w = self._weights_gradient(grad_weights, run, n, length)
        dq, dk, dv = self._attention_backward(d_heads, d_w, run["attention"])
        if self.add_zero_attn:  # the zero key and value: constants, their gradient goes nowhere
            dk, dv = dk[:, :, :-1], dv[:, :, :-1]
        dq, dk, dv = (self._merge(d) for d in (dq, dk, dv))
        if self.add_bias_kv:  # the appended key and value: bias_k's and bias_v's gradient
            self.bias_k.accumulate_grad(dk[:, -1:].sum(axis=0, keepdims=True))
            self.bias_v.accumulate_grad(dv[:, -1:].sum(axis=0, keepdims=True))
            dk, dv = dk[:, :-1], dv[:, :-1]
        grads = self._in_projection_backward((dq, dk, dv), (q_in, k_in, v_in))
        return tuple(self._layout(d, run["unbatched"]) for d in grads)

    def _out_projection_backward(self, g: np.ndarray, merged: np.ndarray) -> np.ndarray:
        e = self.embed_dim
        self.out_proj.weight.accumulate_grad(g.reshape(-1, e).T @ merged.reshape(-1, e))
        if self.bias:
            self.out_proj.bias.accumulate_grad(g.reshape(-1, e).sum(axis=0))
        return g @ self.out_proj.weight.data

    def _weights_gradient(self, grad_weights: Any, run: dict, n: int, length: int):
        """``dJ/dP'`` per head from the gradient given for the weights returned (each head's
        share of an average is 1 / heads of it), or None."""
        if grad_weights is None or not run["need_weights"]:
            return None
        source = run["attention"][4].shape[-1]
        heads = () if run["average"] else (self.num_heads,)
        shape = (*heads, length, source) if run["unbatched"] else (n, *heads, length, source)
        d = self._grad_output(grad_weights, shape, self.dtype).reshape(n, *heads, length, source)
        if run["average"]:
            return np.broadcast_to(d[:, None] / self.num_heads, (n, self.num_heads,
                                                                  length, source))  # fmt: skip
        return d

    def _split_gradient(self, d_merged: np.ndarray) -> np.ndarray:
        """dJ/d(merged heads) (N, L, E) split as the forward split: (N, heads, L, head_dim)."""
        return self._split(d_merged)

    def _attention_backward(self, d_heads, d_weights, cache) -> tuple:
        """The attention's backward; keeps ``score_grads``, dJ/d(scores) (N, heads, L, S),
        the gradient through the softmax, for the step-through page."""
        dq, dk, dv, self.score_grads = _attention_backward(d_heads, d_weights, cache)
        return dq, dk, dv

    def _merge(self, d: np.ndarray) -> np.ndarray:
        """(N, heads, L, head_dim) -> (N, L, E), the heads side by side again."""
        n, _, length, _ = d.shape
        return d.transpose(0, 2, 1, 3).reshape(n, length, self.embed_dim)

    def _in_projection_backward(self, grads: tuple, inputs: tuple) -> tuple:
        """``dJ/dW += d^T x`` and ``dJ/db += sum d`` for each of q, k, v; returns each
        ``dJ/dx = d W``."""
        (w_q, w_k, w_v), _ = self._projections()
        rows = [d.reshape(-1, d.shape[-1]) for d in grads]
        weight_grads = [r.T @ x.reshape(-1, x.shape[-1]) for r, x in zip(rows, inputs,
                                                                          strict=True)]  # fmt: skip
        if "in_proj_weight" in self._parameters:
            self.in_proj_weight.accumulate_grad(np.concatenate(weight_grads))
        else:
            for name, grad in zip("qkv", weight_grads, strict=True):
                self._parameters[f"{name}_proj_weight"].accumulate_grad(grad)
        if self.bias:
            self.in_proj_bias.accumulate_grad(np.concatenate([r.sum(axis=0) for r in rows]))
        return tuple(d @ w for d, w in zip(grads, (w_q, w_k, w_v), strict=True))

    def extra_repr(self) -> str:
        text = f"{self.embed_dim}, {self.num_heads}"
        for name, default in (("dropout", 0.0), ("bias", True), ("add_bias_kv", False),
                              ("add_zero_attn", False), ("batch_first", False)):  # fmt: skip
            if getattr(self, name) != default:
                text += f", {name}={getattr(self, name)}"
        if self.kdim != self.embed_dim or self.vdim != self.embed_dim:
            text += f", kdim={self.kdim}, vdim={self.vdim}"
        return text


def _linear(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """``x W^T + b`` on (N, L, in)."""
    y = x @ w.T
    if b is not None:
        y += b
    return y
