"""Hypothesis strategies for random networks, losses and edge values (minitorch's idea)."""

from __future__ import annotations

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from handprop import Sequential
from handprop.layers import (
    GELU,
    BatchNorm1d,
    Dropout,
    Identity,
    LayerNorm,
    LeakyReLU,
    Linear,
    LogSoftmax,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from handprop.losses import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
)

ACTIVATIONS = (
    ReLU,
    Sigmoid,
    Tanh,
    lambda: LeakyReLU(0.1),
    Softmax,
    GELU,
    lambda: GELU("tanh"),
    lambda: LogSoftmax(dim=1),
    Identity,
    lambda: Dropout(0.3, rng=0),  # in training mode: the parity helper gives torch its masks
    lambda: Dropout(0.3, rng=0).eval(),  # in evaluation: the identity, in both
    None,
)


def _evaluating_batch_norm(width, dtype):
    """A BatchNorm1d in evaluation mode, with running statistics it might have learnt."""
    bn = BatchNorm1d(width, dtype=dtype).eval()
    rng = np.random.default_rng(width)
    bn.running_mean[...] = rng.normal(size=width)
    bn.running_var[...] = rng.uniform(0.5, 2.0, size=width)
    return bn


# Normalisation layers, put between a Linear and its activation (Linear -> norm -> activation)
NORMS = (
    lambda width, dtype: BatchNorm1d(width, dtype=dtype),
    lambda width, dtype: BatchNorm1d(width, momentum=None, affine=False, dtype=dtype),
    lambda width, dtype: BatchNorm1d(width, track_running_stats=False, dtype=dtype),
    _evaluating_batch_norm,
    lambda width, dtype: LayerNorm(width, dtype=dtype),
    lambda width, dtype: LayerNorm(width, elementwise_affine=False, dtype=dtype),
    None,
    None,
    None,
    None,
)
LOSS_KINDS = ("bce", "bce_logits", "mse", "l1", "huber", "ce", "ce_probs", "nll")
REDUCTIONS = ("mean", "sum", "none")

# Values where hand-written backprop goes wrong: exact zeros (the ReLU kink, -0.0 included),
# exact ones, large magnitudes (saturated sigmoid/tanh, probabilities exactly 0 and 1).
EDGE_VALUES = (0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, 30.0, -30.0, 100.0, -100.0)
EDGE_PROBABILITIES = (0.0, 1.0, 0.5, 1e-7, 1 - 1e-7, 1e-30)


def edge_floats():
    return st.one_of(
        st.sampled_from(EDGE_VALUES),
        st.floats(-3, 3, width=32),
    )


def _normalise_rows(t):
    """Rows summing to 1 (class probabilities); an all-zero row becomes uniform."""
    t = t + (t.sum(axis=1, keepdims=True) == 0)
    return (t / t.sum(axis=1, keepdims=True)).astype(t.dtype)


@st.composite
def architectures(draw, norms: bool = True):
    """(widths, activations, bias flags, loss kind): depth 1-4 Linear layers, widths 1-16."""
    depth = draw(st.integers(1, 4))
    widths = [draw(st.integers(1, 16)) for _ in range(depth + 1)]
    loss_kind = draw(st.sampled_from(LOSS_KINDS))
    activations = [draw(st.sampled_from(ACTIVATIONS)) for _ in range(depth - 1)]
    if loss_kind == "bce":
        activations.append(Sigmoid)  # BCELoss needs probabilities
    elif loss_kind in ("mse", "l1", "huber"):
        activations.append(draw(st.sampled_from(ACTIVATIONS)))
    elif loss_kind == "nll":
        activations.append(lambda: LogSoftmax(dim=1))  # NLLLoss takes log-probabilities
    else:
        activations.append(None)  # BCEWithLogitsLoss and CrossEntropyLoss take raw logits
    biases = [draw(st.booleans()) for _ in range(depth)]
    choices = NORMS if norms else (None,)
    norms = [draw(st.sampled_from(choices)) for _ in range(depth - 1)] + [None]
    return widths, (activations, norms), biases, loss_kind


def build(widths, layers, biases, dtype, seed) -> Sequential:
    rng = np.random.default_rng(seed)
    modules = []
    for i, (activation, norm) in enumerate(zip(*layers, strict=True)):
        modules.append(Linear(widths[i], widths[i + 1], bias=biases[i], dtype=dtype, rng=rng))
        if norm is not None:
            modules.append(norm(widths[i + 1], dtype))
        if activation is not None:
            modules.append(activation())
    return Sequential(*modules)


def _smallest_batch(model: Sequential, smallest: int) -> int:
    """``smallest`` where a BatchNorm1d normalises with batch statistics in training, else 1.

    torch refuses one value per channel in training, so at least 2. With 2 values every
    normalised output is +-1 whatever the input and its gradient is exactly 0 in exact
    arithmetic: what float32 computes is rounding noise of the size of the terms that cancel,
    fit for the module-by-module check (which scales its tolerance to those terms) but not for
    the end-to-end one, which then draws at least 8 samples."""
    training_bn = any(isinstance(m, BatchNorm1d) and m.training for m in model)
    return smallest if training_bn else 1


@st.composite
def losses(draw, loss_kind, out_shape, dtype):
    reduction = draw(st.sampled_from(REDUCTIONS))
    weight = None
    if draw(st.booleans()):
        shape = draw(st.sampled_from((out_shape, out_shape[-1:])))
        weight = draw(arrays(dtype, shape, elements=st.floats(0, 2, width=32)))
    if loss_kind == "bce":
        return BCELoss(weight=weight, reduction=reduction)
    if loss_kind.startswith("ce"):
        class_weight = None
        if draw(st.booleans()):
            class_weight = draw(
                arrays(dtype, out_shape[-1:], elements=st.floats(0.125, 2, width=32))
            )
        smoothing = draw(st.sampled_from((0.0, 0.0, 0.1, 1.0)))
        return CrossEntropyLoss(weight=class_weight, reduction=reduction, label_smoothing=smoothing)
    if loss_kind == "nll":
        class_weight = None
        if draw(st.booleans()):
            class_weight = draw(
                arrays(dtype, out_shape[-1:], elements=st.floats(0.125, 2, width=32))
            )
        return NLLLoss(weight=class_weight, reduction=reduction)
    if loss_kind == "l1":
        return L1Loss(reduction=reduction)
    if loss_kind == "huber":
        return HuberLoss(reduction=reduction, delta=draw(st.sampled_from((1.0, 0.5, 2.0))))
    if loss_kind == "bce_logits":
        pos_weight = None
        if draw(st.booleans()):
            pos_weight = draw(arrays(dtype, out_shape[-1:], elements=st.floats(0.125, 5, width=32)))
        return BCEWithLogitsLoss(weight=weight, reduction=reduction, pos_weight=pos_weight)
    return MSELoss(reduction=reduction)


def targets(loss_kind, shape, dtype):
    if loss_kind in ("ce", "nll"):  # class indices, and now and then torch's ignore_index -100
        classes = st.integers(0, shape[1] - 1)
        return arrays(np.int64, shape[:1], elements=st.one_of(classes, classes, st.just(-100)))
    if loss_kind == "ce_probs":
        return arrays(dtype, shape, elements=st.floats(0, 1, width=32)).map(_normalise_rows)
    if loss_kind in ("mse", "l1", "huber"):
        return arrays(dtype, shape, elements=edge_floats())
    soft = st.floats(0, 1, width=32)
    return arrays(dtype, shape, elements=st.one_of(st.sampled_from((0.0, 1.0)), soft))


@st.composite
def generic_problems(draw, dtype, norms: bool = True):
    """A random network with torch's initialisation and Gaussian inputs, from a drawn seed.

    Values are continuous draws, so ties such as a pre-activation of exactly 0 reached by
    different summation orders have probability ~0: the end-to-end comparison is meaningful.
    """
    widths, activations, biases, loss_kind = draw(architectures(norms))
    seed = draw(st.integers(0, 2**32 - 1))
    model = build(widths, activations, biases, dtype, seed)
    batch = draw(st.integers(_smallest_batch(model, 8), 32))
    rng = np.random.default_rng(seed + 1)
    X = rng.normal(size=(batch, widths[0])).astype(dtype)
    out_shape = (batch, widths[-1])
    if loss_kind in ("mse", "l1", "huber"):
        y = rng.normal(size=out_shape).astype(dtype)
    elif loss_kind in ("ce", "nll"):
        y = rng.integers(0, out_shape[1], size=batch)
    elif loss_kind == "ce_probs":
        y = _normalise_rows(rng.uniform(size=out_shape).astype(dtype))
    else:
        y = rng.integers(0, 2, size=out_shape).astype(dtype)
    loss = draw(losses(loss_kind, out_shape, dtype))
    assume(_normalisations_see_spread(model, X))
    return model, loss, X, y


def _normalisations_see_spread(model: Sequential, X) -> bool:
    """False when a normalisation would divide a feature of (almost) no spread by its standard
    deviation: a constant feature (a ReLU that zeroed a whole column, say) normalises to
    rounding noise times 1/sqrt(eps), whose sign differs between any two implementations, and
    a ReLU after it then passes or blocks the gradient at random. Such networks are left to
    the module-by-module check, which feeds both implementations the same values."""
    import copy

    h, previous = np.asarray(X), None
    for module in copy.deepcopy(model):
        if isinstance(module, (BatchNorm1d, LayerNorm)) and (
            module.training or not isinstance(module, BatchNorm1d)
        ):
            # after a Linear of one input every feature is a multiple of that input: the
            # normalised value does not depend on the weights' scale, whose gradient is then
            # exactly 0 and computed as rounding noise
            if isinstance(previous, Linear) and previous.in_features == 1:
                return False
            axis = 0 if isinstance(module, BatchNorm1d) else -1
            if h.shape[axis] < 4:  # 2 values normalise to +-1 whatever they are (see above)
                return False
            spread = h.std(axis=axis)
            if np.any(spread <= 1e-2 * np.maximum(1.0, np.abs(h).max(axis=axis))):
                return False
        h, previous = module(h), module
    return True


@st.composite
def edge_problems(draw, dtype):
    """A random network whose weights, inputs and targets are drawn from edge values."""
    widths, activations, biases, loss_kind = draw(architectures())
    model = build(widths, activations, biases, dtype, seed=0)
    for _, p in model.named_parameters():
        p.data[...] = draw(arrays(dtype, p.shape, elements=edge_floats()))
    batch = draw(st.integers(_smallest_batch(model, 2), 32))
    X = draw(arrays(dtype, (batch, widths[0]), elements=edge_floats()))
    out_shape = (batch, widths[-1])
    y = draw(targets(loss_kind, out_shape, dtype))
    loss = draw(losses(loss_kind, out_shape, dtype))
    # a constant feature (all its inputs equal, as edge values often make them) normalises to
    # rounding noise in torch and to exactly 0 in handprop: tests/test_normalisation.py checks
    # that case on its own
    assume(_normalisations_see_spread(model, X))
    return model, loss, X, y
