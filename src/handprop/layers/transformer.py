"""The transformer's encoder and decoder layers, as torch's ``nn/modules/transformer.py``:
blocks written from the public modules (``MultiheadAttention``, ``Linear``, ``Dropout``,
``LayerNorm``, an activation), each backward the forward's steps read backwards, where the
residual connections add their gradients: the worked example of docs/blocks.md's "write the
backward of a block". See docs/layers/transformer.md.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..module import Module
from .activation import GELU, ReLU
from .attention import MultiheadAttention
from .dropout import Dropout
from .linear import Linear
from .normalization import LayerNorm

_ACTIVATIONS = {"relu": 1, "gelu": 2}  # torch's activation_relu_or_gelu
_NAMES = {1: "relu", 2: "gelu"}  # (0: another activation, the module itself)


def _activation_argument(m: Any) -> Any:
    """The ``activation`` argument of a layer, handprop's or torch's: "relu", "gelu", or the
    activation itself (torch's decoder keeps only the function, ``F.relu`` or ``F.gelu``)."""
    code = getattr(m, "activation_relu_or_gelu", None)
    if code is not None:
        return _NAMES.get(code, m.activation)
    function = m.activation
    name = getattr(function, "__name__", "")
    if name in _ACTIVATIONS and getattr(function, "__module__", "").startswith("torch"):
        return name
    return function


def _activation(activation: Any, owner: str) -> tuple[Module, int]:
    """The activation module for "relu", "gelu" or a handprop module, and torch's code of it."""
    if isinstance(activation, str):
        if activation not in _ACTIVATIONS:
            raise RuntimeError(f"activation should be relu/gelu, not {activation}")
        return (ReLU() if activation == "relu" else GELU()), _ACTIVATIONS[activation]
    if isinstance(activation, Module):
        return activation, 0
    raise TypeError(
        f"{owner}: activation must be 'relu', 'gelu' or a handprop activation module, got "
        f"{activation!r}"
    )


class _TransformerLayer(Module):
    """What both layers share: their arguments read back from their children (as torch keeps
    them, so ``interop`` reads a torch layer's the same way), and their dtype."""

    #: torch keeps most arguments only in its children: how to read each back, from a torch
    #: layer as from this one (their children have the same names and attributes)
    _torch_attributes: ClassVar[dict[str, Any]] = {
        "d_model": lambda m: m.linear1.in_features,
        "nhead": lambda m: m.self_attn.num_heads,
        "dim_feedforward": lambda m: m.linear1.out_features,
        "dropout": lambda m: m.dropout.p,
        "activation": _activation_argument,
        "layer_norm_eps": lambda m: m.norm1.eps,
        "batch_first": lambda m: m.self_attn.batch_first,
        "norm_first": lambda m: m.norm_first,
        "bias": lambda m: m.linear1.bias is not None,
    }

    @property
    def dtype(self) -> np.dtype:
        return self.linear1.weight.dtype

    def config(self) -> dict[str, Any]:
        """The constructor's arguments, read back from the children as torch keeps them."""
        config = {name: read(self) for name, read in self._torch_attributes.items()}
        config["dtype"] = self.dtype.name
        return config


class TransformerEncoderLayer(_TransformerLayer):
    """One encoder layer: self-attention, then a feed-forward network, each with a residual
    connection, a LayerNorm and dropout, torch's ``nn.TransformerEncoderLayer``.

    Post-norm (default, as the original transformer)::

        x = norm1(x + dropout1(self_attn(x, x, x)))
        x = norm2(x + dropout2(linear2(dropout(activation(linear1(x))))))

    Pre-norm (``norm_first=True``, as GPT-2)::

        x = x + dropout1(self_attn(norm1(x), ...))
        x = x + dropout2(linear2(dropout(activation(linear1(norm2(x))))))

    Args:
        d_model: the features of each token (``E``).
        nhead: the attention's heads.
        dim_feedforward: the feed-forward network's hidden size (default 2048).
        dropout: the probability of every dropout (default 0.1).
        activation: ``"relu"`` (default), ``"gelu"``, or a handprop activation module.
        layer_norm_eps: the LayerNorms' epsilon (default 1e-5).
        batch_first: tokens as ``(N, L, E)`` instead of ``(L, N, E)``.
        norm_first: pre-norm instead of post-norm.
        bias: learn the Linear, attention and LayerNorm biases (default True).
        dtype: ``np.float32`` (default, like torch) or ``np.float64``.
        rng: seed (int) or ``np.random.Generator`` for every child's initial values and the
            dropout masks; None draws fresh entropy.

    Call: ``layer(src, src_mask=None, src_key_padding_mask=None, is_causal=False)``, the masks
    by keyword, with ``MultiheadAttention``'s meaning. Backward: ``layer.backward(g)`` returns
    ``dJ/dsrc``.

    Examples:
        >>> layer = TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, rng=0)
        >>> x = np.ones((5, 3, 8))                        # 5 tokens of a batch of 3
        >>> layer(x).shape
        (5, 3, 8)
        >>> layer.backward(np.ones((5, 3, 8))).shape
        (5, 3, 8)
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Module = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        *,
        dtype: Any = np.float32,
        rng: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        rng = np.random.default_rng(rng)
        self.self_attn = MultiheadAttention(
            d_model,
            nhead,
            dropout=dropout,
            bias=bias,
            batch_first=batch_first,
            dtype=dtype,
            rng=rng,
        )
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype, rng=rng)
        self.dropout = Dropout(dropout, rng=rng)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype, rng=rng)
        self.norm_first = bool(norm_first)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout, rng=rng)
        self.dropout2 = Dropout(dropout, rng=rng)
        self.activation, self.activation_relu_or_gelu = _activation(
            activation, "TransformerEncoderLayer"
        )

    @classmethod
    def state_shapes(
        cls,
        d_model,
        nhead,
        dim_feedforward=2048,
        dropout=0.1,
        activation="relu",
        layer_norm_eps=1e-5,
        batch_first=False,
        norm_first=False,
        bias=True,
        dtype=np.float32,
    ):
        """Every child's arrays under its name, without allocating them."""
        parts = {
            "self_attn": MultiheadAttention.state_shapes(
                d_model, nhead, dropout, bias, dtype=dtype
            ),
            "linear1": Linear.state_shapes(d_model, dim_feedforward, bias, dtype=dtype),
            "linear2": Linear.state_shapes(dim_feedforward, d_model, bias, dtype=dtype),
            "norm1": LayerNorm.state_shapes(d_model, layer_norm_eps, bias=bias, dtype=dtype),
            "norm2": LayerNorm.state_shapes(d_model, layer_norm_eps, bias=bias, dtype=dtype),
        }
        return {f"{child}.{k}": v for child, shapes in parts.items() for k, v in shapes.items()}

    def forward(
        self,
        src: Any,
        *,
        src_mask: Any = None,
        src_key_padding_mask: Any = None,
        is_causal: bool = False,
    ) -> np.ndarray:
        """The two sub-blocks, each added to its input (see the class docstring)."""
        masks = {
            "attn_mask": src_mask,
            "key_padding_mask": src_key_padding_mask,
            "is_causal": is_causal,
        }
        x = src
        self._shape = np.shape(src)
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), masks)
            return x + self._ff_block(self.norm2(x))
        x = self.norm1(x + self._sa_block(x, masks))
        return self.norm2(x + self._ff_block(x))

    def _sa_block(self, x: np.ndarray, masks: dict) -> np.ndarray:
        return self.dropout1(self.self_attn(x, x, x, need_weights=False, **masks)[0])

    def _ff_block(self, x: np.ndarray) -> np.ndarray:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def backward(self, grad_output: Any) -> np.ndarray:
        """The forward backwards. Where a residual connection adds a sub-block's output to its
        input, the input's gradient is the sum of the two paths: the one straight through the
        addition and the one back through the sub-block (post-norm: after each LayerNorm's
        backward; pre-norm: the sub-block's path goes through its LayerNorm too)."""
        g = self._grad_output(grad_output, self._shape, self.dtype)
        if self.norm_first:
            d_x1 = g + self.norm2.backward(self._ff_backward(g))
            return d_x1 + self.norm1.backward(self._sa_backward(d_x1))
        d_sum = self.norm2.backward(g)  # dJ/d(x1 + ff(x1))
        d_x1 = d_sum + self._ff_backward(d_sum)
        d_sum = self.norm1.backward(d_x1)  # dJ/d(x + sa(x))
        return d_sum + self._sa_backward(d_sum)

    def _sa_backward(self, g: np.ndarray) -> np.ndarray:
        """Self-attention's x is its query, key and value: the three gradients add."""
        dq, dk, dv = self.self_attn.backward(self.dropout1.backward(g), None)
        return dq + dk + dv

    def _ff_backward(self, g: np.ndarray) -> np.ndarray:
        d = self.linear2.backward(self.dropout2.backward(g))
        return self.linear1.backward(self.activation.backward(self.dropout.backward(d)))


class TransformerDecoderLayer(_TransformerLayer):
    """One decoder layer, torch's ``nn.TransformerDecoderLayer``: self-attention on the target,
    attention from the target to the encoder's output (``memory``), a feed-forward network;
    each with a residual connection, a LayerNorm and dropout.

    Post-norm (default)::

        x = norm1(x + dropout1(self_attn(x, x, x)))
        x = norm2(x + dropout2(multihead_attn(x, memory, memory)))
        x = norm3(x + dropout3(linear2(dropout(activation(linear1(x))))))

    Pre-norm (``norm_first=True``): each sub-block reads its LayerNorm's output, and adds to
    its input.

    Args:
        d_model: the features of each token.
        nhead: both attentions' heads.
        dim_feedforward: the feed-forward network's hidden size (default 2048).
        dropout: the probability of every dropout (default 0.1).
        activation: ``"relu"`` (default), ``"gelu"``, or a handprop activation module.
        layer_norm_eps: the LayerNorms' epsilon (default 1e-5).
        batch_first: tokens as ``(N, L, E)`` instead of ``(L, N, E)``.
        norm_first: pre-norm instead of post-norm.
        bias: learn the Linear, attention and LayerNorm biases (default True).
        dtype: ``np.float32`` (default, like torch) or ``np.float64``.
        rng: seed (int) or ``np.random.Generator`` for every child's initial values and the
            dropout masks; None draws fresh entropy.

    Call: ``layer(tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
    memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False)``, the masks by
    keyword. Backward: ``layer.backward(g)`` returns ``(dJ/dtgt, dJ/dmemory)``: the memory is
    the key and the value of the cross-attention, its gradient the sum of the two.

    Examples:
        >>> layer = TransformerDecoderLayer(8, 2, dim_feedforward=16, dropout=0.0, rng=0)
        >>> tgt, memory = np.ones((4, 3, 8)), np.ones((6, 3, 8))
        >>> layer(tgt, memory).shape
        (4, 3, 8)
        >>> d_tgt, d_memory = layer.backward(np.ones((4, 3, 8)))
        >>> d_memory.shape
        (6, 3, 8)
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Module = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        *,
        dtype: Any = np.float32,
        rng: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        rng = np.random.default_rng(rng)
        attention = {"dropout": dropout, "bias": bias, "batch_first": batch_first}
        self.self_attn = MultiheadAttention(d_model, nhead, **attention, dtype=dtype, rng=rng)
        self.multihead_attn = MultiheadAttention(d_model, nhead, **attention, dtype=dtype, rng=rng)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype, rng=rng)
        self.dropout = Dropout(dropout, rng=rng)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype, rng=rng)
        self.norm_first = bool(norm_first)
        for name in ("norm1", "norm2", "norm3"):
            setattr(self, name, LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype))
        for name in ("dropout1", "dropout2", "dropout3"):
            setattr(self, name, Dropout(dropout, rng=rng))
        # (torch's decoder keeps no activation_relu_or_gelu; kept here, as the encoder's, to
        # read "relu" or "gelu" back for config())
        self.activation, self.activation_relu_or_gelu = _activation(
            activation, "TransformerDecoderLayer"
        )

    @classmethod
    def state_shapes(
        cls,
        d_model,
        nhead,
        dim_feedforward=2048,
        dropout=0.1,
        activation="relu",
        layer_norm_eps=1e-5,
        batch_first=False,
        norm_first=False,
        bias=True,
        dtype=np.float32,
    ):
        """The encoder layer's arrays, with ``multihead_attn``'s and ``norm3``'s."""
        shapes = TransformerEncoderLayer.state_shapes(
            d_model, nhead, dim_feedforward, dropout, bias=bias, dtype=dtype
        )
        shapes.update(
            {
                k.replace("self_attn.", "multihead_attn."): v
                for k, v in shapes.items()
                if k.startswith("self_attn.")
            }
        )
        shapes.update(
            {k.replace("norm1.", "norm3."): v for k, v in shapes.items() if k.startswith("norm1.")}
        )
        order = (
            "self_attn.",
            "multihead_attn.",
            "linear1.",
            "linear2.",
            "norm1.",
            "norm2.",
            "norm3.",
        )
        return {k: shapes[k] for prefix in order for k in shapes if k.startswith(prefix)}

    def forward(
        self,
        tgt: Any,
        memory: Any,
        *,
        tgt_mask: Any = None,
        memory_mask: Any = None,
        tgt_key_padding_mask: Any = None,
        memory_key_padding_mask: Any = None,
        tgt_is_causal: bool = False,
        memory_is_causal: bool = False,
    ) -> np.ndarray:
        """The three sub-blocks, each added to its input (see the class docstring)."""
        own = {
            "attn_mask": tgt_mask,
            "key_padding_mask": tgt_key_padding_mask,
            "is_causal": tgt_is_causal,
        }
        cross = {
            "attn_mask": memory_mask,
            "key_padding_mask": memory_key_padding_mask,
            "is_causal": memory_is_causal,
        }
        x = tgt
        self._shape = np.shape(tgt)
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), own)
            x = x + self._mha_block(self.norm2(x), memory, cross)
            return x + self._ff_block(self.norm3(x))
        x = self.norm1(x + self._sa_block(x, own))
        x = self.norm2(x + self._mha_block(x, memory, cross))
        return self.norm3(x + self._ff_block(x))

    def _sa_block(self, x: np.ndarray, masks: dict) -> np.ndarray:
        return self.dropout1(self.self_attn(x, x, x, need_weights=False, **masks)[0])

    def _mha_block(self, x: np.ndarray, memory: Any, masks: dict) -> np.ndarray:
        out = self.multihead_attn(x, memory, memory, need_weights=False, **masks)[0]
        return self.dropout2(out)

    def _ff_block(self, x: np.ndarray) -> np.ndarray:
        return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def backward(self, grad_output: Any) -> tuple[np.ndarray, np.ndarray]:
        """The forward backwards, each residual connection's two paths added; the memory's
        gradient comes from the cross-attention alone (its key's and value's, added)."""
        g = self._grad_output(grad_output, self._shape, self.dtype)
        if self.norm_first:
            d_x2 = g + self.norm3.backward(self._ff_backward(g))
            d_x, d_memory = self._mha_backward(d_x2)
            d_x1 = d_x2 + self.norm2.backward(d_x)
            return d_x1 + self.norm1.backward(self._sa_backward(d_x1)), d_memory
        d_sum = self.norm3.backward(g)
        d_x2 = d_sum + self._ff_backward(d_sum)
        d_sum = self.norm2.backward(d_x2)
        d_x, d_memory = self._mha_backward(d_sum)
        d_x1 = d_sum + d_x
        d_sum = self.norm1.backward(d_x1)
        return d_sum + self._sa_backward(d_sum), d_memory

    def _sa_backward(self, g: np.ndarray) -> np.ndarray:
        dq, dk, dv = self.self_attn.backward(self.dropout1.backward(g), None)
        return dq + dk + dv

    def _mha_backward(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dq, dk, dv = self.multihead_attn.backward(self.dropout2.backward(g), None)
        return dq, dk + dv

    def _ff_backward(self, g: np.ndarray) -> np.ndarray:
        d = self.linear2.backward(self.dropout3.backward(g))
        return self.linear1.backward(self.activation.backward(self.dropout.backward(d)))
