"""The transformer's encoder layer, as torch's ``nn/modules/transformer.py``: a block written
from the public modules (``MultiheadAttention``, ``Linear``, ``Dropout``, ``LayerNorm``, an
activation), its backward the forward's steps read backwards, where the residual connections
add their gradients. It is the worked example of docs/blocks.md's "write the backward of a
block"; see docs/layers/transformer.md.
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


class TransformerEncoderLayer(Module):
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

    #: torch keeps most arguments only in its children: how to read each back, from a torch
    #: layer as from this one (their children have the same names and attributes)
    _torch_attributes: ClassVar[dict[str, Any]] = {
        "d_model": lambda m: m.linear1.in_features,
        "nhead": lambda m: m.self_attn.num_heads,
        "dim_feedforward": lambda m: m.linear1.out_features,
        "dropout": lambda m: m.dropout.p,
        "activation": lambda m: _NAMES.get(m.activation_relu_or_gelu, m.activation),
        "layer_norm_eps": lambda m: m.norm1.eps,
        "batch_first": lambda m: m.self_attn.batch_first,
        "norm_first": lambda m: m.norm_first,
        "bias": lambda m: m.linear1.bias is not None,
    }

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
        if isinstance(activation, str):
            if activation not in _ACTIVATIONS:
                raise RuntimeError(f"activation should be relu/gelu, not {activation}")
            self.activation_relu_or_gelu = _ACTIVATIONS[activation]
            activation = ReLU() if activation == "relu" else GELU()
        elif isinstance(activation, Module):
            self.activation_relu_or_gelu = 0
        else:
            raise TypeError(
                "TransformerEncoderLayer: activation must be 'relu', 'gelu' or a handprop "
                f"activation module, got {activation!r}"
            )
        self.activation = activation

    @property
    def dtype(self) -> np.dtype:
        return self.linear1.weight.dtype

    def config(self) -> dict[str, Any]:
        """The constructor's arguments, read back from the children as torch keeps them."""
        config = {name: read(self) for name, read in self._torch_attributes.items()}
        config["dtype"] = self.dtype.name
        return config

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
