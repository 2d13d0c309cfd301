"""MultiheadAttention against torch's nn.MultiheadAttention: the output, the attention weights,
dJ/dquery, dJ/dkey, dJ/dvalue and every parameter gradient, in both dtypes, over random heads,
lengths, masks (bool and float, 2-D and 3-D, padding), layouts, kdim/vdim, bias, add_bias_kv,
add_zero_attn and need_weights; the attention with dropout against its formula in torch;
gradcheck; save/load and torch both ways; bad inputs refused with nothing changed."""

from __future__ import annotations

import numpy as np
import pytest
from closeness import assert_close
from hypothesis import given
from hypothesis import strategies as st
from parity import check_module_against_torch

import handprop
from handprop import check_module
from handprop.interop import from_torch, to_torch
from handprop.layers import MultiheadAttention
from handprop.layers.attention import (
    scaled_dot_product_attention,
    scaled_dot_product_attention_backward,
)

torch = pytest.importorskip("torch")
DTYPES = [np.float32, np.float64]


@st.composite
def attention_cases(draw):
    heads, head_dim = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return {
        "embed_dim": heads * head_dim,
        "num_heads": heads,
        "kdim": draw(st.one_of(st.none(), st.integers(1, 4))),
        "vdim": draw(st.one_of(st.none(), st.integers(1, 4))),
        "bias": draw(st.booleans()),
        "add_bias_kv": draw(st.booleans()),
        "add_zero_attn": draw(st.booleans()),
        "batch_first": draw(st.booleans()),
        "target": draw(st.integers(1, 4)),  # L
        "source": draw(st.integers(1, 4)),  # S
        "batch": draw(st.one_of(st.none(), st.integers(1, 3))),  # None: unbatched
        "attn_mask": draw(st.sampled_from([None, "2d", "3d"])),
        "padding": draw(st.booleans()),
        "mask_kind": draw(st.sampled_from(["bool", "float"])),  # one kind for both (torch's)
        "need_weights": draw(st.booleans()),
        "average": draw(st.booleans()),
        "grad_weights": draw(st.booleans()),
        "dtype": draw(st.sampled_from(DTYPES)),
        "seed": draw(st.integers(0, 2**31 - 1)),
    }


def _mask(rng, shape, kind, dtype):
    """A bool mask (True: not looked at; the first key always allowed, so no row is all
    masked) or a float one (added)."""
    if kind == "bool":
        mask = rng.random(shape) < 0.4
        mask[..., 0] = False
        return mask
    return rng.standard_normal(shape).astype(dtype)


def _inputs(case, rng):
    e, dtype = case["embed_dim"], case["dtype"]
    kdim, vdim = case["kdim"] or e, case["vdim"] or e  # (either one not E: separate projections)
    n, length, source = case["batch"], case["target"], case["source"]

    def shaped(steps, features):
        if n is None:
            return (steps, features)
        return (n, steps, features) if case["batch_first"] else (steps, n, features)

    q = rng.standard_normal(shaped(length, e)).astype(dtype)
    k = rng.standard_normal(shaped(source, kdim)).astype(dtype)
    v = rng.standard_normal(shaped(source, vdim)).astype(dtype)
    options = {"need_weights": case["need_weights"], "average_attn_weights": case["average"]}
    heads = (n or 1) * case["num_heads"]
    if case["attn_mask"] == "2d":
        options["attn_mask"] = _mask(rng, (length, source), case["mask_kind"], dtype)
    elif case["attn_mask"] == "3d":
        options["attn_mask"] = _mask(rng, (heads, length, source), case["mask_kind"], dtype)
    if case["padding"]:
        shape = (source,) if n is None else (n, source)
        options["key_padding_mask"] = _mask(rng, shape, case["mask_kind"], dtype)
    return (q, k, v), options


@given(attention_cases())
def test_multihead_attention_equals_torch(case):
    rng = np.random.default_rng(case["seed"])
    mha = MultiheadAttention(
        case["embed_dim"], case["num_heads"], bias=case["bias"], add_bias_kv=case["add_bias_kv"],
        add_zero_attn=case["add_zero_attn"], kdim=case["kdim"], vdim=case["vdim"],
        batch_first=case["batch_first"], dtype=case["dtype"], rng=rng,
    )  # fmt: skip
    inputs, options = _inputs(case, rng)
    with handprop.no_grad():
        out, weights = mha(*inputs, **options)
    g = rng.standard_normal(out.shape).astype(case["dtype"])
    g_weights = None
    if weights is not None and case["grad_weights"]:
        g_weights = rng.standard_normal(weights.shape).astype(case["dtype"])
    check_module_against_torch(
        mha, inputs, (g, g_weights), options=options,
        scale=max(1.0, case["source"]), parameter_scale=max(1.0, case["source"]) * 3,
    )  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_causal_mask_with_is_causal_equals_torch(dtype):
    rng = np.random.default_rng(3)
    mha = MultiheadAttention(6, 3, batch_first=True, dtype=dtype, rng=0)
    x = rng.standard_normal((2, 5, 6)).astype(dtype)
    causal = np.triu(np.ones((5, 5), bool), k=1)  # True above the diagonal: the future
    g = rng.standard_normal((2, 5, 6)).astype(dtype)
    for need_weights in (True, False):  # (without weights, torch's fused path takes the hint)
        layer = MultiheadAttention(6, 3, batch_first=True, dtype=dtype, rng=0)
        options = {"attn_mask": causal, "is_causal": True, "need_weights": need_weights}
        check_module_against_torch(layer, (x, x, x), (g, None), options=options)
    _, weights = mha(x, x, x, attn_mask=causal, is_causal=True)
    assert np.all(weights[:, np.triu_indices(5, 1)[0], np.triu_indices(5, 1)[1]] == 0)
    with pytest.raises(RuntimeError, match="Need attn_mask if specifying the is_causal hint"):
        mha(x, x, x, is_causal=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_attention_with_dropout_equals_its_formula_in_torch(dtype):
    """torch draws its dropout inside; here the same keep-mask is given to the formula
    ``softmax(q k^T / sqrt(d) + mask) * keep / (1 - p) @ v`` written in torch, and autograd's
    gradients are compared with the backward's."""
    rng = np.random.default_rng(4)
    q, k, v = (rng.standard_normal((2, 3, n, 4)).astype(dtype) for n in (5, 6, 6))
    mask = np.where(rng.random((5, 6)) < 0.3, -np.inf, 0.0).astype(dtype)
    mask[:, 0] = 0.0
    keep = rng.random((2, 3, 5, 6)) >= 0.25
    out, weights, cache = scaled_dot_product_attention(q, k, v, mask, keep, 0.25)
    g, g_w = (rng.standard_normal(a.shape).astype(dtype) for a in (out, weights))
    dq, dk, dv = scaled_dot_product_attention_backward(g, g_w, cache)
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    scores = (tq * (1 / 2.0)) @ tk.transpose(-1, -2) + torch.tensor(mask)
    t_weights = torch.softmax(scores, -1) * torch.tensor(keep) / 0.75
    t_out = t_weights @ tv
    torch.autograd.backward([t_out, t_weights], [torch.tensor(g), torch.tensor(g_w)])
    assert_close("out", out, t_out.detach().numpy(), dtype)
    assert_close("weights", weights, t_weights.detach().numpy(), dtype)
    for name, mine, theirs in (("dq", dq, tq), ("dk", dk, tk), ("dv", dv, tv)):
        assert_close(name, mine, theirs.grad.numpy(), dtype, scale=6.0)


class Attend(handprop.Module):
    """Causal self-attention, then a Linear: a model whose trace shows the attention."""

    def __init__(self):
        super().__init__()
        self.attn = MultiheadAttention(4, 2, batch_first=True, dtype=np.float64, rng=0)
        self.head = handprop.layers.Linear(4, 1, dtype=np.float64, rng=1)

    def forward(self, x):
        causal = np.triu(np.ones((x.shape[1],) * 2, bool), k=1)
        out, _ = self.attn(x, x, x, attn_mask=causal)
        return self.head(out)

    def backward(self, grad_output):
        return sum(self.attn.backward(self.head.backward(grad_output), None))


def test_the_trace_draws_the_weights_and_the_gradient_through_the_softmax():
    """The forward's frame draws the attention weights; a frame before the backward's shows
    dJ/d(scores), which equals torch's gradient of the scores (retained) for the same input."""
    x = np.random.default_rng(8).standard_normal((2, 5, 4))
    model = Attend()
    t = handprop.trace(model, handprop.losses.MSELoss(), x, np.zeros((2, 5, 1)))
    frames = t.frames()
    forward = next(f for f in frames if f["title"].startswith("Forward: attn"))
    assert "attention weights" in forward["picture"]
    softmax = next(f for f in frames if f["title"].startswith("Backward through the softmax"))
    assert "dJ/d(scores)" in softmax["picture"] and softmax["picture"].count("<rect") == 25
    assert "dS = P * (dP - rowsum(dP * P))" in softmax["formula"]
    # the same dS by torch: its scores, retained, backpropagated from the same cost
    mha = model.attn
    tq = torch.tensor(x, requires_grad=True)
    w = torch.tensor(mha.in_proj_weight.data)
    b = torch.tensor(mha.in_proj_bias.data)
    q, k, v = (tq @ w[i * 4 : (i + 1) * 4].T + b[i * 4 : (i + 1) * 4] for i in range(3))
    heads = [z.reshape(2, 5, 2, 2).transpose(1, 2) for z in (q, k, v)]
    scores = heads[0] / np.sqrt(2) @ heads[1].transpose(-1, -2)
    scores = scores + torch.triu(torch.full((5, 5), float("-inf")), diagonal=1)
    scores.retain_grad()
    out = (torch.softmax(scores, -1) @ heads[2]).transpose(1, 2).reshape(2, 5, 4)
    out = out @ torch.tensor(mha.out_proj.weight.data).T + torch.tensor(mha.out_proj.bias.data)
    pred = out @ torch.tensor(model.head.weight.data).T + torch.tensor(model.head.bias.data)
    (pred**2).mean().backward()
    copy_grads = next(c.module for c in t.calls if c.path == "attn").score_grads
    np.testing.assert_allclose(copy_grads, scores.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_multihead_attention_passes_check_module_with_dropout_and_masks():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 2, 6))
    mha = MultiheadAttention(6, 2, dropout=0.3, add_bias_kv=True, dtype=np.float64, rng=1)
    report = check_module(mha, (x, x[:3], x[:3]), rng=0)
    assert report.passed, report
    separate = MultiheadAttention(6, 3, kdim=2, vdim=5, add_zero_attn=True, dtype=np.float64)
    k, v = rng.standard_normal((3, 2, 2)), rng.standard_normal((3, 2, 5))
    assert check_module(separate, (x, k, v), rng=1).passed


def test_self_attention_gradient_is_the_sum_of_the_three():
    """mha(x, x, x): x is the query, the key and the value; the gradient of x is the sum of
    the three the backward returns (central differences on x alone agree)."""
    rng = np.random.default_rng(6)
    mha = MultiheadAttention(4, 2, dtype=np.float64, rng=0)
    x = rng.standard_normal((3, 2, 4))
    g = rng.standard_normal((3, 2, 4))
    mha(x, x, x)
    dx = sum(mha.backward(g, None))
    numeric = np.zeros_like(x)
    with handprop.no_grad():
        for index in np.ndindex(x.shape):
            plus, minus = x.copy(), x.copy()
            plus[index] += 1e-6
            minus[index] -= 1e-6
            numeric[index] = (
                np.sum(g * mha(plus, plus, plus)[0]) - np.sum(g * mha(minus, minus, minus)[0])
            ) / 2e-6
    np.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(
    "options",
    [{}, {"kdim": 3, "vdim": 5}, {"bias": False, "add_bias_kv": True, "batch_first": True}],
)
def test_save_load_and_torch_both_ways(options, tmp_path):
    mha = MultiheadAttention(8, 2, dropout=0.1, add_zero_attn=True, **options, rng=2)
    handprop.save(handprop.Sequential(mha), tmp_path / "m.npz")
    back = handprop.load(tmp_path / "m.npz")[0]
    assert repr(back) == repr(mha) and back.config() == mha.config()
    for (name, p), (_, q) in zip(mha.named_parameters(), back.named_parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    twin = to_torch(mha)
    assert sorted(twin.state_dict()) == sorted(mha.state_dict())
    again = from_torch(twin)
    assert again.config() == mha.config()
    np.testing.assert_array_equal(again.out_proj.weight.data, mha.out_proj.weight.data)


def test_bad_inputs_are_refused_and_change_nothing():
    with pytest.raises(ValueError, match="embed_dim must be divisible by num_heads"):
        MultiheadAttention(6, 4)
    mha = MultiheadAttention(4, 2, rng=0)
    x = np.ones((3, 2, 4), np.float32)
    with pytest.raises(ValueError, match=r"expected query of shape \(L, N, E\) with a last axis"):
        mha(np.ones((3, 2, 5)), x, x)
    with pytest.raises(ValueError, match="key and value must have the same batch and sequence"):
        mha(x, x, np.ones((4, 2, 4)))
    with pytest.raises(ValueError, match=r"attn_mask must have shape \(3, 3\) or \(4, 3, 3\)"):
        mha(x, x, x, attn_mask=np.zeros((3, 4), bool))
    with pytest.raises(TypeError, match="only bool and floating types of attn_mask"):
        mha(x, x, x, attn_mask=np.zeros((3, 3), int))
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \(2, 3\)"):
        mha(x, x, x, key_padding_mask=np.zeros((3, 2), bool))
    with pytest.raises(TypeError):  # the masks are keyword arguments
        mha(x, x, x, np.zeros((2, 3), bool))
    out, _ = mha(x, x, x)
    with pytest.raises(ValueError, match=r"expected grad_output of shape \(3, 2, 4\)"):
        mha.backward(np.ones((2, 3, 4)), None)
    assert all(p.grad is None for p in mha.parameters())
    grads = mha.backward(np.ones_like(out), None)  # the forward still pending, untouched
    assert [d.shape for d in grads] == [(3, 2, 4)] * 3


def test_torchs_initialisation():
    """Xavier-uniform projections (bound sqrt(6 / (E + 3E)) for the packed one, each
    separate one its own), zero biases, Xavier-normal bias_k/bias_v, the out projection a
    Linear's (bound 1 / sqrt(E)): torch's MultiheadAttention._reset_parameters."""
    mha = MultiheadAttention(64, 4, add_bias_kv=True, rng=0)
    w = mha.in_proj_weight.data
    bound = np.sqrt(6 / (64 + 192))
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert not mha.in_proj_bias.data.any() and not mha.out_proj.bias.data.any()
    out = mha.out_proj.weight.data
    assert np.abs(out).max() <= 1 / 8 and np.abs(out).max() > 0.95 / 8
    assert 0.8 / 8 < mha.bias_k.data.std() < 1.2 / 8  # std sqrt(2 / (64 + 64)) = 1/8
    separate = MultiheadAttention(64, 4, kdim=16, vdim=32, rng=1)
    k_bound = np.sqrt(6 / (64 + 16))
    assert np.abs(separate.k_proj_weight.data).max() <= k_bound
