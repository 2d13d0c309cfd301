"""The optimizers' fast paths: the same updates as ``optim``'s plain functions, faster.

``optim/__init__.py`` writes each update once, per parameter, as its equations read
(``sgd_update``, ``adam_update``, ``rmsprop_update``, ``adagrad_update``); that is the version
to read. With ``foreach=True`` ``step()`` comes here instead (with the default,
``foreach=None``, only for the parameters where this is faster: large ones, and Adam's small
ones; see ``split``), where the same operations, in the same order, run

* in cache-sized blocks with small scratch arrays (``_blocks``) on large parameters, so each
  of an update's passes over memory stays in the CPU cache, with the intermediate results
  written into those scratch arrays (``out=``) rather than into new arrays, and
* for Adam, over all small parameters at once (``_SmallBatch``): 13 NumPy operations in all,
  not 13 per parameter, as torch's ``foreach`` optimizers batch their tensors.

Element by element the arithmetic is the plain functions', so results are equal bit for bit;
``tests/test_optim.py`` checks that for every option combination.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np


class _SmallBatch:
    """Small parameters' Adam state kept in one flat array per moment, so that one update runs
    over all of them: 13 NumPy operations in all instead of 13 per parameter.

    Why: on a small network each operation costs far more in per-call overhead (about half a
    microsecond) than in arithmetic, so the worked example's 6 parameters spent most of their
    update in overhead. torch's ``foreach`` optimizers batch their tensors for the same reason.
    Each parameter's ``state["exp_avg"]`` (and ``exp_avg_sq``, ``max_exp_avg_sq``) becomes a
    view into the flat array, so the state looks as before; the parameters and gradients are
    copied into flat arrays for the update (``gather``) and the parameters copied back
    (``scatter``). Element by element, the arithmetic is that of the per-parameter update.
    """

    def __init__(self, params: list[np.ndarray], states: list[dict[str, Any]]) -> None:
        self.offsets = np.cumsum([0] + [p.size for p in params]).tolist()
        self.shapes = [p.shape for p in params]
        self.param = np.empty(self.offsets[-1], params[0].dtype)
        self.grad = np.empty_like(self.param)
        self.param_pieces = self.split(self.param)
        self.state: dict[str, np.ndarray] = {}
        for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            if all(key in s for s in states):
                # the current values, gathered; each parameter's state becomes a view of them
                self.state[key] = np.concatenate([s[key].reshape(-1) for s in states])
                for s, view in zip(states, self.split(self.state[key]), strict=True):
                    s[key] = view
        self.views = [s[key] for s in states for key in self.state]
        self.flats = [self.state[key] for s in states for key in self.state]  # their bases

    def holds(self, params: list[np.ndarray], states: list[dict[str, Any]]) -> bool:
        """Whether ``states`` hold exactly this batch's views, and nothing else but "step",
        for parameters of its dtype and shapes. Not after load_state_dict, which puts fresh
        arrays in; not for other parameters; not after amsgrad was switched on, which adds a
        state array; not in a copy of the optimizer (copy.deepcopy, pickle), where the views
        have become separate arrays."""
        views = [s.get(key) for s in states for key in self.state]
        return (
            len(views) == len(self.views)
            and all(map(operator.is_, views, self.views))
            and all(view.base is flat for view, flat in zip(views, self.flats, strict=True))
            and all(len(s) == len(self.state) + 1 for s in states)
            and params[0].dtype == self.param.dtype
            and [p.shape for p in params] == self.shapes
        )

    def split(self, flat: np.ndarray) -> list[np.ndarray]:
        """Views of ``flat``, one per parameter, in the parameters' shapes."""
        bounds = zip(self.offsets[:-1], self.offsets[1:], self.shapes, strict=True)
        return [flat[start:stop].reshape(shape) for start, stop, shape in bounds]

    def gather(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """Copy the parameters and gradients into ``self.param`` and ``self.grad``."""
        np.concatenate([p.reshape(-1) for p in params], out=self.param)
        np.concatenate([g.reshape(-1) for g in grads], out=self.grad)

    def scatter(self, params: list[np.ndarray]) -> None:
        """Copy the updated ``self.param`` back into the parameters."""
        for p, piece in zip(params, self.param_pieces, strict=True):
            p[...] = piece


#: Elements per block in the fast paths below: a block's arrays (about 1 MiB) stay in the
#: CPU cache while every operation of the update runs over them.
_BLOCK = 1 << 15


def _blocks(written: list[np.ndarray], read: list[np.ndarray]):
    """Matching blocks (views) of same-shaped arrays: ``(written blocks, read blocks)``.

    Why: each operation of an update is a pass over memory, and on a large layer memory is the
    bottleneck. Walking the arrays in cache-sized blocks, and writing intermediate results into
    small scratch arrays (``out=``) instead of new full-size ones, does the same arithmetic
    with a fraction of the memory traffic. Arrays that are not C-contiguous (an unusual
    layout) come back whole, as a single block.
    """
    if not all(a.flags.c_contiguous for a in written):
        yield written, read
        return
    written = [a.reshape(-1) for a in written]  # views: writes reach the real arrays
    read = [a.reshape(-1) for a in read]
    for start in range(0, written[0].size, _BLOCK):
        block = slice(start, start + _BLOCK)
        yield [a[block] for a in written], [a[block] for a in read]


def _scratch(buffer: np.ndarray, like: np.ndarray) -> np.ndarray:
    """A scratch array shaped like ``like``: ``buffer`` itself, or a slice of it when it fits."""
    if buffer.shape == like.shape:
        return buffer
    if like.ndim == 1 and like.size <= buffer.size:
        return buffer[: like.size]
    return np.empty_like(like)


def _subtract_scaled(p: np.ndarray, g: np.ndarray, scale: float) -> None:
    """``p -= scale * g`` in place, block by block for large arrays (see _blocks)."""
    if p.size <= _BLOCK:  # small: the plain expression is cheapest
        p -= scale * g
        return
    buffer = np.empty(_BLOCK, p.dtype)
    for (pb,), (gb,) in _blocks([p], [g]):
        t = _scratch(buffer, pb)
        np.multiply(gb, scale, out=t)
        pb -= t


def _adam_update(p, g, m, v, v_max, *, beta1, beta2, eps, step_size, bias_correction2_sqrt):
    """One Adam update, in place, in torch's order of operations::

        m = m + (1 - beta1) * (g - m)
        v = beta2 * v + ((1 - beta2) * g) * g
        v_max = max(v_max, v); v = v_max          (amsgrad only)
        denom = sqrt(v) / bias_correction2_sqrt + eps
        p = p - (step_size * m) / denom

    computed block by block (see _blocks) with the same operations in the same order. Measured
    on a 5.8M-parameter network: 44 ms per update as whole-array operations, 23 ms in blocks.
    """
    written = [p, m, v] + ([v_max] if v_max is not None else [])
    if p.size <= _BLOCK:  # small: one block, without the blocking machinery
        blocks = [(written, [g])]
        buffers = np.empty_like(p), np.empty_like(p)
    else:
        blocks = _blocks(written, [g])
        buffers = np.empty(_BLOCK, p.dtype), np.empty(_BLOCK, p.dtype)
    for (pb, mb, vb, *vmb), (gb,) in blocks:
        t, d = _scratch(buffers[0], pb), _scratch(buffers[1], pb)
        np.subtract(gb, mb, out=t)  # m = m + (1 - beta1) * (g - m)
        t *= 1 - beta1
        mb += t
        vb *= beta2  # v = beta2 * v + ((1 - beta2) * g) * g
        np.multiply(gb, 1 - beta2, out=t)
        t *= gb
        vb += t
        if vmb:  # amsgrad: the largest v so far
            np.maximum(vmb[0], vb, out=vmb[0])
            vb = vmb[0]
        np.sqrt(vb, out=d)  # denom = sqrt(v) / sqrt(1 - beta2**t) + eps
        d /= bias_correction2_sqrt
        d += eps
        np.multiply(mb, step_size, out=t)  # p = p - (step_size * m) / denom
        t /= d
        pb -= t


def _block_pairs(written: list[np.ndarray], read: list[np.ndarray], scratch: int):
    """``(written blocks, read blocks, scratch arrays)`` over same-shaped arrays: one block for
    a small parameter, cache-sized blocks (see _blocks) for a large one; ``scratch`` arrays
    shaped like each block, reused from block to block."""
    p = written[0]
    if p.size <= _BLOCK:  # small: one block, without the blocking machinery
        buffers = [np.empty_like(p) for _ in range(scratch)]
        yield written, read, buffers
        return
    buffers = [np.empty(_BLOCK, p.dtype) for _ in range(scratch)]
    for blocks_written, blocks_read in _blocks(written, read):
        yield blocks_written, blocks_read, [_scratch(b, blocks_written[0]) for b in buffers]


def _rmsprop_update(p, g, v, a, buf, *, lr, alpha, eps, momentum):
    """One RMSprop update, in place, in torch's order of operations (``a`` the running mean of
    g when centered, ``buf`` the momentum buffer when momentum > 0, else None)::

        v = alpha * v + ((1 - alpha) * g) * g
        a = a + (1 - alpha) * (g - a);  avg = sqrt(v - a * a) + eps      (centered)
        avg = sqrt(v) + eps                                               (otherwise)
        buf = momentum * buf + g / avg;  p = p - lr * buf                 (momentum)
        p = p - (lr * g) / avg                                            (otherwise)
    """
    extra = [x for x in (a, buf) if x is not None]
    for (pb, vb, *rest), (gb,), (t, avg) in _block_pairs([p, v, *extra], [g], 2):
        ab = rest[0] if a is not None else None  # the optional arrays, in the order given
        bb = rest[-1] if buf is not None else None
        vb *= alpha  # v = alpha * v + ((1 - alpha) * g) * g
        np.multiply(gb, 1 - alpha, out=t)
        t *= gb
        vb += t
        if ab is not None:  # centered
            np.subtract(gb, ab, out=t)  # a = a + (1 - alpha) * (g - a)
            t *= 1 - alpha
            ab += t
            np.multiply(ab, ab, out=t)  # avg = sqrt(v - a * a)
            np.subtract(vb, t, out=avg)
            np.sqrt(avg, out=avg)
        else:
            np.sqrt(vb, out=avg)
        avg += eps
        if bb is not None:  # momentum
            bb *= momentum  # buf = momentum * buf + g / avg
            np.divide(gb, avg, out=t)
            bb += t
            np.multiply(bb, lr, out=t)  # p = p - lr * buf
        else:
            np.multiply(gb, lr, out=t)  # p = p - (lr * g) / avg
            t /= avg
        pb -= t


def _adagrad_update(p, g, s, *, clr, eps):
    """One Adagrad update, in place, in torch's order of operations::

    s = s + g * g
    p = p - (clr * g) / (sqrt(s) + eps)
    """
    for (pb, sb), (gb,), (t, std) in _block_pairs([p, s], [g], 2):
        np.multiply(gb, gb, out=t)  # s = s + g * g
        sb += t
        np.sqrt(sb, out=std)  # std = sqrt(s) + eps
        std += eps
        np.multiply(gb, clr, out=t)  # p = p - (clr * g) / std
        t /= std
        pb -= t


# -- the steps ---------------------------------------------------------------------------------


#: The default (foreach=None) takes the blocked fast path on parameters of at least this many
#: bytes (see ``split``): 4 MiB, a million float32 numbers, for Adam, RMSprop and Adagrad;
_FAST_FROM = 1 << 22
#: 16 MiB for SGD, whose update is only two passes over memory.
_SGD_FAST_FROM = 1 << 24


def split(grads, foreach: bool | None, fast_from: int | None = None, batch_small: bool = False):
    """``(plain, fast)``: which of ``grads`` the plain per-parameter function updates and which
    the fast path. ``foreach=False``: all plain; ``True``: all fast; ``None``: the fast path
    only where it helps, on parameters of at least ``fast_from`` bytes (``_FAST_FROM`` if not
    given) and, with ``batch_small`` (Adam), on those of one block or less, which it updates
    all together. Parameters that share memory with another (see ``_sharing_memory``) are
    always updated by the plain path, in order.

    Measured (benchmarks/bench_optimizers.py, one optimizer step alone; float32, 2-core AMD
    EPYC, 32 MiB L3), fast/plain time: the blocks pay once a parameter's arrays no longer fit
    the cache together, and later for SGD, whose update is only two passes over memory.

    ============  ==============  ==============  ===========  ============  ============
    optimizer     worked example  784-512-256-10  6 MiB layer  16 MiB layer  32 MiB layer
    ============  ==============  ==============  ===========  ============  ============
    SGD           1.02            1.32            1.09         0.92          0.69
    Adam          0.59 (batched)  1.09            0.80         0.60          0.38
    RMSprop       1.35            1.20            0.79         0.75          0.47
    Adagrad       1.38            1.18            0.90         0.74          0.46
    ============  ==============  ==============  ===========  ============  ============
    """
    if foreach is False:
        return grads, []
    shared = _sharing_memory(grads)
    if foreach:
        plain, fast = [], grads
    else:
        limit = _FAST_FROM if fast_from is None else fast_from
        plain, fast = [], []
        for x in grads:  # (one loop, no helper calls: this runs on every step)
            g = x[2]
            (fast if g.nbytes >= limit or (batch_small and g.size <= _BLOCK) else plain).append(x)
    if shared:  # one after another, in order, as the plain path updates them
        shared.update(x[0] for x in plain)
        plain = [x for x in grads if x[0] in shared]
        fast = [x for x in fast if x[0] not in shared]
    return plain, fast


def _sharing_memory(grads) -> set[int]:
    """The indices of parameters whose memory another parameter shares (a tied weight given
    as a view, ``dec.weight = Parameter(enc.weight.data.T)``). Each update of such a parameter
    reads what the one before it wrote, so they must run one after another in the parameters'
    order, as the plain path runs them: gathered into Adam's batch, the second copy back would
    overwrite the first's update. (NumPy points a view's ``base`` at the array that owns the
    memory, so one dictionary finds them; views of a foreign buffer share its ``base`` too.)
    """
    owners: dict[int, int] = {}
    shared: set[int] = set()
    for i, p, _ in grads:
        data = p.data
        owner = id(data if data.base is None else data.base)
        first = owners.setdefault(owner, i)
        if first != i:
            shared.update((first, i))
    return shared


def sgd_step(grads, states: dict[int, dict[str, Any]], h: dict[str, Any], direction) -> None:
    """SGD over ``grads`` (``(index, parameter, gradient)``): ``direction`` is optim's own
    ``sgd_direction`` (shared: it is the update's short part); the subtraction, the long
    part on a large parameter, runs in blocks."""
    for i, p, g in grads:
        d = direction(p.data, g, states, i, h)
        _subtract_scaled(p.data, d, h["lr"])  # p = p - lr * d


def adam_step(optimizer, grads, prepare) -> None:
    """Adam over ``grads``: ``prepare`` is optim's own ``adam_prepare`` (maximize, weight
    decay, the state and its step count); the moments and the update run in blocks, and the
    small parameters all at once."""
    h = optimizer.param_groups[0]
    small = []  # (parameter, gradient, state) of small parameters: updated together below
    for i, p, g in grads:
        g, state = prepare(p.data, g, optimizer.state, i, h, optimizer._decoupled)
        if p.data.size <= _BLOCK:
            small.append((p, g, state))
        else:
            _adam_arrays(h, [p.data], [g], [state])
    if not small:
        return
    params, grads_, states = zip(*small, strict=True)
    same_step = len({s["step"] for s in states}) == 1
    if len(small) > 1 and same_step and len({p.dtype for p in params}) == 1:
        arrays = [p.data for p in params]
        batch = optimizer._small_batch
        if batch is None or not batch.holds(arrays, states):
            batch = optimizer._small_batch = _SmallBatch(arrays, states)
        batch.gather(arrays, grads_)
        flat_state = {**batch.state, "step": states[0]["step"]}
        _adam_arrays(h, [batch.param], [batch.grad], [flat_state])
        batch.scatter(arrays)
    else:
        _adam_arrays(h, [p.data for p in params], grads_, states)


def _adam_arrays(h: dict[str, Any], params, grads, states) -> None:
    """The Adam update of each ``(parameter array, gradient, state)``, in place."""
    beta1, beta2 = h["betas"]
    for p, g, state in zip(params, grads, states, strict=True):
        t = state["step"]
        _adam_update(
            p,
            g,
            state["exp_avg"],
            state["exp_avg_sq"],
            state["max_exp_avg_sq"] if h["amsgrad"] else None,
            beta1=beta1,
            beta2=beta2,
            eps=h["eps"],
            step_size=h["lr"] / (1 - beta1**t),
            bias_correction2_sqrt=math.sqrt(1 - beta2**t),
        )


def rmsprop_step(grads, states: dict[int, dict[str, Any]], h: dict[str, Any], prepare) -> None:
    """RMSprop over ``grads``: ``prepare`` is optim's own ``rmsprop_prepare`` (maximize, weight
    decay, the state and its step count); the update runs in blocks with scratch arrays."""
    for i, p, g in grads:
        g, state = prepare(p.data, g, states, i, h)
        _rmsprop_update(
            p.data,
            g,
            state["square_avg"],
            state["grad_avg"] if h["centered"] else None,
            state["momentum_buffer"] if h["momentum"] > 0 else None,
            lr=h["lr"],
            alpha=h["alpha"],
            eps=h["eps"],
            momentum=h["momentum"],
        )


def adagrad_step(grads, states: dict[int, dict[str, Any]], h: dict[str, Any], prepare) -> None:
    """Adagrad over ``grads``: ``prepare`` is optim's own ``adagrad_prepare`` (the step count,
    maximize, weight decay, the decayed rate); the update runs in blocks with scratch arrays."""
    for i, p, g in grads:
        g, state, clr = prepare(p.data, g, states, i, h)
        _adagrad_update(p.data, g, state["sum"], clr=clr, eps=h["eps"])
