"""TransformerEncoderLayer against torch's nn.TransformerEncoderLayer: the output, dJ/dsrc and
every parameter gradient, in both dtypes, post-norm and pre-norm, relu and gelu, both layouts,
with and without bias, causal and padding masks; check_module with dropout; save/load and torch
both ways; bad arguments refused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from parity import check_module_against_torch

import handprop
from handprop import check_module
from handprop.interop import from_torch, to_torch
from handprop.layers import GELU, TransformerEncoderLayer

torch = pytest.importorskip("torch")
DTYPES = [np.float32, np.float64]


@st.composite
def encoder_cases(draw):
    heads = draw(st.integers(1, 3))
    # (at least 2 features: a LayerNorm over one feature makes every value exactly 0 in
    # handprop, while torch's float32 leaves its rounding, about 3e-5, for the weight's gradient)
    return {
        "d_model": heads * draw(st.integers(2 if heads == 1 else 1, 3)),
        "nhead": heads,
        "dim_feedforward": draw(st.integers(1, 6)),
        "activation": draw(st.sampled_from(["relu", "gelu"])),
        "batch_first": draw(st.booleans()),
        "norm_first": draw(st.booleans()),
        "bias": draw(st.booleans()),
        "length": draw(st.integers(1, 5)),
        "batch": draw(st.integers(1, 3)),
        "causal": draw(st.booleans()),
        "padding": draw(st.booleans()),
        "dtype": draw(st.sampled_from(DTYPES)),
        "seed": draw(st.integers(0, 2**31 - 1)),
    }


@given(encoder_cases())
def test_encoder_layer_equals_torch(case):
    dtype, length, batch = case["dtype"], case["length"], case["batch"]
    layer = TransformerEncoderLayer(
        case["d_model"], case["nhead"], case["dim_feedforward"], 0.0, case["activation"],
        batch_first=case["batch_first"], norm_first=case["norm_first"], bias=case["bias"],
        dtype=dtype, rng=case["seed"],
    )  # fmt: skip
    rng = np.random.default_rng(case["seed"])
    shape = (
        (batch, length, case["d_model"])
        if case["batch_first"]
        else (length, batch, case["d_model"])
    )
    x = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    options = {}
    if case["causal"]:
        options["src_mask"] = np.triu(np.ones((length, length), bool), k=1)
    if case["padding"]:
        padding = rng.random((batch, length)) < 0.3
        padding[:, 0] = False  # (a row with every key padded would be NaN in both)
        options["src_key_padding_mask"] = padding
    scale = max(1.0, float(length * case["dim_feedforward"])) * _amplification(layer, x, options)
    check_module_against_torch(
        layer, (x,), (g,), options=options, scale=scale, parameter_scale=scale * batch
    )


@handprop.no_grad()
def _amplification(layer, x, options) -> float:
    """How much the LayerNorms' backwards multiply rounding errors: their largest 1 / std
    over the tokens they normalise (their inputs recomputed from the layer's own children),
    at least 1. Two nearly equal features make a tiny std, and its inverse multiplies the
    float32 rounding of everything before it."""
    masks = {"attn_mask": options.get("src_mask"),
             "key_padding_mask": options.get("src_key_padding_mask")}  # fmt: skip
    x = x.astype(np.float64)

    def sa(h):
        return layer.self_attn(h, h, h, need_weights=False, **masks)[0]

    def ff(h):
        return layer.linear2(layer.activation(layer.linear1(h)))

    if layer.norm_first:
        inputs = [x, x + sa(layer.norm1(x))]
    else:
        first = x + sa(x)
        normed = layer.norm1(first)
        inputs = [first, normed + ff(normed)]
    stds = [np.sqrt(h.var(axis=-1) + layer.norm1.eps).min() for h in inputs]
    return max(1.0, 1.0 / float(min(stds)))


def test_encoder_layer_passes_check_module_with_dropout():
    """Every Dropout inside and the attention's keep the masks of the forward checked."""
    layer = TransformerEncoderLayer(6, 2, 8, dropout=0.2, norm_first=True, dtype=np.float64,
                                    rng=1)  # fmt: skip
    x = np.random.default_rng(2).standard_normal((4, 2, 6))
    assert check_module(layer, x, rng=0).passed
    post = TransformerEncoderLayer(6, 3, 5, dropout=0.0, activation="gelu", dtype=np.float64)
    assert check_module(post, x, rng=1).passed


def test_an_activation_module_reaches_torch_and_a_file(tmp_path):
    layer = TransformerEncoderLayer(4, 2, 8, 0.0, activation=GELU("tanh"), dtype=np.float64,
                                    rng=3)  # fmt: skip
    x = np.random.default_rng(4).standard_normal((3, 2, 4))
    check_module_against_torch(layer, (x,), (np.ones_like(x),))
    assert layer.config()["activation"] is layer.activation
    handprop.save(handprop.Sequential(layer), tmp_path / "m.npz")  # the module described
    back = handprop.load(tmp_path / "m.npz")[0]
    assert repr(back.activation) == "GELU(approximate='tanh')"
    with handprop.no_grad():
        np.testing.assert_array_equal(back(x), layer(x))


@pytest.mark.parametrize("options", [{}, {"activation": "gelu", "norm_first": True,
                                          "batch_first": True, "bias": False}])  # fmt: skip
def test_save_load_and_torch_both_ways(options, tmp_path):
    layer = TransformerEncoderLayer(8, 2, 16, 0.1, layer_norm_eps=1e-6, **options, rng=5)
    handprop.save(handprop.Sequential(layer), tmp_path / "m.npz")
    back = handprop.load(tmp_path / "m.npz")[0]
    assert back.config() == layer.config()
    for (name, p), (_, q) in zip(layer.named_parameters(), back.named_parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    twin = to_torch(layer)
    assert sorted(twin.state_dict()) == sorted(layer.state_dict())
    again = from_torch(twin)
    assert again.config() == layer.config()


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="embed_dim must be divisible by num_heads"):
        TransformerEncoderLayer(6, 4)
    with pytest.raises(RuntimeError, match="activation should be relu/gelu, not tanh"):
        TransformerEncoderLayer(4, 2, activation="tanh")
    with pytest.raises(TypeError, match="activation must be 'relu', 'gelu' or a handprop"):
        TransformerEncoderLayer(4, 2, activation=np.tanh)
    layer = TransformerEncoderLayer(4, 2, 8, rng=0)
    with pytest.raises(ValueError, match="expected query of shape"):
        layer(np.ones((3, 2, 5)))


@given(encoder_cases(), st.integers(1, 4), st.booleans())
def test_decoder_layer_equals_torch(case, memory_length, memory_padding):
    """The output, dJ/dtgt, dJ/dmemory and every parameter gradient, the same options as the
    encoder's, with a memory of another length, padded or not."""
    from handprop.layers import TransformerDecoderLayer

    dtype, length, batch, d = case["dtype"], case["length"], case["batch"], case["d_model"]
    layer = TransformerDecoderLayer(
        d, case["nhead"], case["dim_feedforward"], 0.0, case["activation"],
        batch_first=case["batch_first"], norm_first=case["norm_first"], bias=case["bias"],
        dtype=dtype, rng=case["seed"],
    )  # fmt: skip
    rng = np.random.default_rng(case["seed"])

    def shaped(steps):
        return (batch, steps, d) if case["batch_first"] else (steps, batch, d)

    tgt = rng.standard_normal(shaped(length)).astype(dtype)
    memory = rng.standard_normal(shaped(memory_length)).astype(dtype)
    g = rng.standard_normal(tgt.shape).astype(dtype)
    options = {}
    if case["causal"]:
        options["tgt_mask"] = np.triu(np.ones((length, length), bool), k=1)
    if memory_padding:
        padding = rng.random((batch, memory_length)) < 0.3
        padding[:, 0] = False
        options["memory_key_padding_mask"] = padding
    scale = max(1.0, float(max(length, memory_length) * case["dim_feedforward"]))
    scale *= _decoder_amplification(layer, tgt, memory, options)
    check_module_against_torch(
        layer, (tgt, memory), (g,), options=options, scale=scale, parameter_scale=scale * batch
    )


@handprop.no_grad()
def _decoder_amplification(layer, tgt, memory, options) -> float:
    """The decoder's LayerNorms' largest 1 / std over the tokens they normalise (see
    ``_amplification``)."""
    x, m = tgt.astype(np.float64), memory.astype(np.float64)
    own = {"attn_mask": options.get("tgt_mask")}
    cross = {"key_padding_mask": options.get("memory_key_padding_mask")}

    def sa(h):
        return layer.self_attn(h, h, h, need_weights=False, **own)[0]

    def ca(h):
        return layer.multihead_attn(h, m, m, need_weights=False, **cross)[0]

    def ff(h):
        return layer.linear2(layer.activation(layer.linear1(h)))

    if layer.norm_first:
        x1 = x + sa(layer.norm1(x))
        x2 = x1 + ca(layer.norm2(x1))
        inputs = [x, x1, x2]
    else:
        u1 = x + sa(x)
        x1 = layer.norm1(u1)
        u2 = x1 + ca(x1)
        x2 = layer.norm2(u2)
        inputs = [u1, u2, x2 + ff(x2)]
    stds = [np.sqrt(h.var(axis=-1) + layer.norm1.eps).min() for h in inputs]
    return max(1.0, 1.0 / float(min(stds)))


def test_decoder_layer_save_load_torch_both_ways_and_check_module(tmp_path):
    from handprop.layers import TransformerDecoderLayer

    layer = TransformerDecoderLayer(6, 2, 8, dropout=0.2, activation="gelu", norm_first=True,
                                    dtype=np.float64, rng=6)  # fmt: skip
    rng = np.random.default_rng(7)
    tgt, memory = rng.standard_normal((4, 2, 6)), rng.standard_normal((5, 2, 6))
    assert check_module(layer, (tgt, memory), rng=0).passed
    handprop.save(handprop.Sequential(layer), tmp_path / "m.npz")
    back = handprop.load(tmp_path / "m.npz")[0]
    assert back.config() == layer.config()
    twin = to_torch(layer)
    assert sorted(twin.state_dict()) == sorted(layer.state_dict())
    assert from_torch(twin).config() == layer.config()
