"""Layers, laid out as torch's ``nn/modules``: one file per family, each class with its forward
and its backward side by side.

============================  ================================================================
file                          layers
============================  ================================================================
``linear.py``                 ``Linear``, ``Identity``
``activation.py``             ``ReLU``, ``Sigmoid``, ``Tanh``, ``LeakyReLU``, ``Softmax``,
                              ``LogSoftmax``, ``GELU``
``dropout.py``                ``Dropout``
``normalization.py``          ``BatchNorm1d``, ``BatchNorm2d``, ``LayerNorm``
``conv.py``                   ``Conv2d`` (and ``conv2d_loops``, its definition as loops)
``pooling.py``                ``MaxPool2d``, ``AvgPool2d``
``flatten.py``                ``Flatten``
``sparse.py``                 ``Embedding``
``attention.py``              ``MultiheadAttention`` (and ``scaled_dot_product_attention``)
``transformer.py``            ``TransformerEncoderLayer``, ``TransformerDecoderLayer``
``rnn.py``                    ``RNNCell``, ``LSTMCell``, ``GRUCell``, ``RNN``, ``LSTM``,
                              ``GRU`` (and their steps: ``lstm_step``, ...)
``_functional.py``            what several layers share: ``sigmoid``, ``log_softmax``, ``erf``
============================  ================================================================

``from handprop.layers import Linear`` (or any other) works for every layer.

Notation: ``N`` is the batch size, ``x`` the forward input, ``y`` the forward output,
``g = dJ/dy`` the ``grad_output`` that backward receives; backward returns ``dJ/dx``.
Derivations with LaTeX live in ``docs/``.

A layer's forward is its math and nothing else: ``Module`` guards every layer the same way,
built-in or a learner's. It hands the forward inputs nobody else can change (the caller's
array is copied, another module's read-only output is not), and makes the outputs and the
declared ``_cache`` arrays read-only after it, so nothing the caller does between forward and
backward can change a gradient.
"""

# the shared functions, importable from here too (not in __all__: they are not layers)
from ._functional import erf as erf
from ._functional import log_softmax as log_softmax
from ._functional import sigmoid as sigmoid
from .activation import GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .attention import MultiheadAttention
from .conv import Conv2d
from .conv import conv2d_loops as conv2d_loops
from .dropout import Dropout
from .flatten import Flatten
from .linear import Identity, Linear
from .normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from .pooling import AvgPool2d, MaxPool2d
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from .sparse import Embedding
from .transformer import TransformerDecoderLayer, TransformerEncoderLayer

__all__ = [
    "GELU",
    "GRU",
    "LSTM",
    "RNN",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "Dropout",
    "Embedding",
    "Flatten",
    "GRUCell",
    "Identity",
    "LSTMCell",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MaxPool2d",
    "MultiheadAttention",
    "RNNCell",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "TransformerDecoderLayer",
    "TransformerEncoderLayer",
]


def _exported(name: object) -> type | None:
    """The layer class of that name among the exports above, or None: what ``load`` may build
    from a file's name for it and ``interop`` may pair with torch's layer of the same name
    (a file or a torch model can only ever name the library's own layers)."""
    return globals()[name] if isinstance(name, str) and name in __all__ else None
