"""The one parity helper: handprop against PyTorch autograd.

Every parity test goes through ``check_network`` (a whole model: each module's output, the
cost, dJ/dX and every parameter gradient, torch running its own forward), ``check_modules``
(each module and the loss fed *handprop's own* intermediate values, so that a difference
cannot come from an earlier module: the strict per-step check that random edge values need),
or ``check_module_against_torch`` (one module with several inputs and outputs, nested as a
recurrent layer's ``(x, (h, c))`` and ``(output, (h_n, c_n))``: every output, every input's
gradient and every parameter's).

Conversions to torch come from ``handprop.interop``; the tolerances
(``handprop.interop.TOLERANCES``) are per dtype and were taken from measurement with
``benchmarks/measure_tolerances.py``: the bound is
``|handprop - torch| <= rtol * |torch| + atol * scale``, where ``scale`` is the size of the
terms the value was summed from (``max(1, max |A| @ |B|)`` for a matrix product, the
largest reference value otherwise). Matrix products are summed in a different order by
torch's MKL and NumPy's OpenBLAS, so float32 results agree to a few units in the last place
of the terms, not bit for bit; elementwise steps mostly agree exactly.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from closeness import assert_close

from handprop import Sequential
from handprop.interop import TOLERANCES, same_mask_dropout, to_torch, to_torch_loss
from handprop.layers import (
    GELU,
    BatchNorm1d,
    Conv2d,
    Dropout,
    LayerNorm,
    Linear,
    LogSoftmax,
    Sigmoid,
    Softmax,
    Tanh,
)

TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


def to_torch_module(module):
    """The torch twin of one handprop module (handprop.interop.to_torch), a Dropout's drawing
    the same masks (handprop.interop.same_mask_dropout)."""
    if isinstance(module, Sequential):
        return torch.nn.Sequential(*(to_torch_module(m) for m in module))
    if isinstance(module, Dropout):
        return same_mask_dropout(module)
    return to_torch(module)


def to_torch_model(model: Sequential) -> torch.nn.Sequential:
    return to_torch_module(model)


def _generators(model: Sequential) -> list:
    """Copies of the Dropouts' generators, to replay the same masks (``_restore``)."""
    return [copy.deepcopy(m.rng) for m in model.modules() if isinstance(m, Dropout)]


def _restore(model: Sequential, generators: list) -> None:
    dropouts = [m for m in model.modules() if isinstance(m, Dropout)]
    for module, rng in zip(dropouts, generators, strict=True):
        module.rng = copy.deepcopy(rng)


@dataclass
class NetworkRun:
    """What ``check_network`` compared, for tests that look further."""

    outputs: list[np.ndarray] = field(default_factory=list)
    grad_outputs: list[np.ndarray] = field(default_factory=list)  # dJ/d(output of module i)
    cost: float | np.ndarray | None = None
    grad_input: np.ndarray | None = None
    grads: dict[str, np.ndarray] = field(default_factory=dict)


def _torch_target(y, tdt):
    """The target as torch wants it: class indices stay integers (int64), the rest ``tdt``."""
    y = np.asarray(y)
    if y.dtype.kind in "iu":
        return torch.tensor(y, dtype=torch.int64)
    return torch.tensor(y, dtype=tdt)


def _torch_inputs(X, y, dtype):
    tdt = TORCH_DTYPES[np.dtype(dtype)]
    tx = torch.tensor(np.asarray(X), dtype=tdt, requires_grad=True)
    return tx, _torch_target(y, tdt)


def _loss_grad_output(loss, cost):
    """``grad_output`` for loss.backward and the torch equivalent: 1 for a scalar cost, a
    fixed non-uniform array for reduction='none' (so that the per-element path is exercised)."""
    if np.ndim(cost) == 0:
        return 1.0, None
    g = np.linspace(0.5, 1.5, num=np.size(cost)).reshape(np.shape(cost)).astype(cost.dtype)
    return g, torch.from_numpy(g.copy())


def check_network(model: Sequential, loss, X, y) -> NetworkRun:
    """Run model + loss forward and backward in handprop and in torch; compare everything.

    Compared: each module's output and its gradient dJ/d(output), the cost, dJ/dX and every
    parameter's ``.grad`` (after
    ``zero_grad``). Also checks that ``Sequential.forward``/``backward`` give bit for bit the
    same as stepping through the modules by hand, that ``grad_output`` is not written into,
    and that everything has the model's dtype.
    """
    dtype = _model_dtype(model, X)
    twin = to_torch_model(model)
    tx, ty = _torch_inputs(X, y, dtype)

    # torch, keeping every intermediate output and its gradient
    t_outs = []
    h = tx
    for t_module in twin:
        h = t_module(h)
        h.retain_grad()
        t_outs.append(h)
    t_cost = to_torch_loss(loss, dtype)(h, ty)

    # handprop, module by module, recording the same
    model.zero_grad()
    generators = _generators(model)  # to draw the same dropout masks in the second run
    run = NetworkRun()
    h = X
    for module in model:
        h = module(h)
        run.outputs.append(h)
    run.cost = loss(h, y)
    g, t_g = _loss_grad_output(loss, run.cost)
    t_cost.backward(t_g)
    g_before = np.copy(g)
    grad = loss.backward(g)
    np.testing.assert_array_equal(g, g_before, err_msg=f"{loss!r} wrote into grad_output")
    for module in reversed(list(model)):
        run.grad_outputs.insert(0, grad)
        before = grad.copy()
        new_grad = module.backward(grad)
        np.testing.assert_array_equal(grad, before, err_msg=f"{module!r} wrote into grad_output")
        grad = new_grad
    run.grad_input = grad
    run.grads = {name: p.grad.copy() for name, p in model.named_parameters()}

    for i, (out, t_out) in enumerate(zip(run.outputs, t_outs, strict=True)):
        module, x = model[i], (X if i == 0 else run.outputs[i - 1])
        scale = _norm_output_scale(module, x) if hasattr(module, "_x_hat") else None
        assert_close(
            f"output of module {i} ({module!r})", out, t_out.detach().numpy(), dtype, scale
        )
    assert_close("cost", run.cost, t_cost.detach().numpy(), dtype)
    scales = _upstream_scales(model, X, run)
    for i, (grad, t_out) in enumerate(zip(run.grad_outputs, t_outs, strict=True)):
        assert_close(f"dJ/d output of module {i}", grad, t_out.grad.numpy(), dtype, scales[i + 1])
    assert_close("dJ/dX", run.grad_input, tx.grad.numpy(), dtype, scales[0])
    t_params = dict(twin.named_parameters())
    assert list(run.grads) == list(t_params), "parameter names differ from torch's"
    param_scales = _parameter_scales(model, X, run, scales)
    for name, p in model.named_parameters():
        scale = param_scales.get(name)
        assert_close(f"{name}.grad", p.grad, t_params[name].grad.numpy(), dtype, scale)
    _compare_buffers(model, twin, dtype)

    # Sequential's own loops give exactly what stepping by hand gave
    model.zero_grad()
    _restore(model, generators)
    out = model(X)
    np.testing.assert_array_equal(out, run.outputs[-1])
    loss(out, y)
    np.testing.assert_array_equal(model.backward(loss.backward(g)), run.grad_input)
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(p.grad, run.grads[name], err_msg=name)
    return run


# The functions torch's autograd calls for these backwards (derivatives.yaml), which take the
# saved forward output as an argument.
_BACKWARD_FROM_OUTPUT = {
    Sigmoid: torch.ops.aten.sigmoid_backward,
    Tanh: torch.ops.aten.tanh_backward,
}


def _compare_buffers(model, twin, dtype) -> None:
    """Running statistics (and batch counts) after the same forwards, under torch's names."""
    t_buffers = dict(twin.named_buffers())
    assert list(dict(model.named_buffers())) == list(t_buffers), "buffer names differ"
    for name, buffer in model.named_buffers():
        expected = t_buffers[name].numpy()
        if buffer.dtype.kind in "iu":
            np.testing.assert_array_equal(buffer, expected, err_msg=name)
        else:
            assert_close(f"buffer {name}", buffer, expected, dtype)


def _upstream_scales(model: Sequential, X, run: NetworkRun) -> list:
    """For each module's input gradient (index 0: dJ/dX), the size of the terms it was summed
    from where that is more than its own size: a normalisation's dJ/dx cancels (see
    ``_norm_scale``), and the difference is what the next modules then pass up.
    None elsewhere (``assert_close``'s default)."""
    scales: list = [None] * (len(model) + 1)
    carried = None
    for i in reversed(range(len(model))):
        module = model[i]
        if isinstance(module, (BatchNorm1d, LayerNorm)):
            x = X if i == 0 else run.outputs[i - 1]
            # the noise that came down is amplified too, by up to 3 inv_std |w| (three terms)
            weight = 1.0 if module.weight is None else float(np.abs(module.weight.data).max())
            amplified = (carried or 0.0) * 3 * float(np.abs(module._inv_std).max()) * weight
            carried = max(amplified, _norm_scale(module, run.grad_outputs[i], x))
        elif isinstance(module, Linear) and carried is not None:  # g @ W sums |W| of a column
            carried *= max(1.0, float(np.abs(module.weight.data).sum(axis=0).max()))
        elif isinstance(module, Conv2d) and carried is not None:  # each input: |W| of a channel
            carried *= max(1.0, float(np.abs(module.weight.data).sum(axis=(0, 2, 3)).max()))
        scales[i] = carried
    return scales


def _parameter_scales(model: Sequential, X, run: NetworkRun, scales: list) -> dict:
    """For a Linear, Conv2d or normalisation whose output gradient carries a normalisation's
    cancellation from further down (``scales``), the size of the terms of its weight and bias
    gradients: that scale times what each sums over the batch (``|x|`` for a Linear's weight,
    ``|x_hat|`` for a normalisation's, 1 for a bias)."""
    found = {}
    for i, module in enumerate(model):
        if scales[i + 1] is None:
            continue
        if isinstance(module, (Linear, Conv2d)):
            x = np.abs(np.asarray(X if i == 0 else run.outputs[i - 1], dtype=np.float64))
            # what each sum runs over: a Linear's every leading axis, a Conv2d's N, H and W
            axes = tuple(range(x.ndim - 1)) if isinstance(module, Linear) else (0, 2, 3)
        elif isinstance(module, (BatchNorm1d, LayerNorm)) and module.weight is not None:
            x = np.abs(module._x_hat).astype(np.float64)  # weight.grad = sum(g * x_hat)
            if isinstance(module, BatchNorm1d):  # (and BatchNorm2d): all but the channels'
                axes = tuple(a for a in range(x.ndim) if a != 1)
            else:
                axes = tuple(range(x.ndim - len(module.normalized_shape)))
        else:
            continue
        per_bias = module.weight.shape[0] if isinstance(module, (Linear, Conv2d)) else None
        found[f"{i}.weight"] = scales[i + 1] * max(1.0, float(x.sum(axis=axes).max()))
        found[f"{i}.bias"] = (
            scales[i + 1] * run.grad_outputs[i].size / (per_bias or module.weight.data.size)
        )
    return found


def _norm_output_scale(module, x) -> float:
    """The size of the terms of a normalisation's output: ``(x - mean) * inv_std * w + b``
    subtracts two numbers of the size of x and multiplies the difference by up to
    ``1/sqrt(eps)``: for a (nearly) constant feature the result is rounding noise of that size,
    different in each implementation (handprop's is exactly 0 for a constant feature)."""
    x = np.abs(np.asarray(x, dtype=np.float64))
    w = 1.0 if module.weight is None else float(np.abs(module.weight.data).max())
    b = 0.0 if module.bias is None else float(np.abs(module.bias.data).max())
    terms = 2 * x.max(initial=0.0) * float(np.abs(module._inv_std).max()) * w + b
    return max(1.0, terms)


def _norm_parameter_scale(module, name: str, x, grad) -> float:
    """The terms of ``sum(g * x_hat)`` (weight) or ``sum(g)`` (bias) over the batch axes, with
    ``|x_hat|`` bounded as in ``_norm_output_scale`` (noise of that size for a constant
    feature)."""
    g = np.abs(np.asarray(grad, dtype=np.float64))
    x = np.abs(np.asarray(x, dtype=np.float64))
    if isinstance(module, BatchNorm1d):  # (and BatchNorm2d): every axis but the channels'
        axes = tuple(a for a in range(g.ndim) if a != 1)
    else:
        axes = tuple(range(g.ndim - len(module.normalized_shape)))
    if name == "weight":
        g = g * 2 * x.max(initial=0.0) * float(np.abs(module._inv_std).max())
    return max(1.0, float(g.sum(axis=axes).max(initial=0.0)))


def _norm_scale(module, grad, x) -> float:
    """The size of the terms a normalisation's dJ/dx sums (it cancels: the gradient of a
    normalised value sums to 0 over what was normalised). ``x_hat`` is taken with its rounding
    noise, ``8 * eps * max|x| * inv_std``: for a (nearly) constant feature it is all noise,
    different in each implementation.

    That noise also enters dJ/dx directly, not only as a rounding of its terms: through the
    two sums that hold x_hat, ``noise * (sum |g_hat x_hat| + |x_hat| sum |g_hat|) * inv_std / m``.
    Where x sits far from 0 compared with its spread (|x| up to 100 with a spread of 1, as
    hypothesis's edge networks make), that error is larger than the terms' rounding, so the
    returned scale covers it too (in units of the dtype's ``atol``)."""
    x_abs = float(np.abs(np.asarray(x, dtype=np.float64)).max(initial=0.0))
    inv_std = np.abs(module._inv_std).astype(np.float64)
    noise = 8 * np.finfo(module._x_hat.dtype).eps * x_abs * inv_std
    x_hat = np.abs(module._x_hat).astype(np.float64) + noise
    g_hat = np.abs(np.asarray(grad, dtype=np.float64))
    if module.weight is not None:
        shape = inv_std.shape if isinstance(module, BatchNorm1d) else module.weight.shape
        g_hat = g_hat * np.abs(module.weight.data).reshape(shape)
    if isinstance(module, BatchNorm1d):  # (and BatchNorm2d): every axis but the channels'
        axes = tuple(a for a in range(x_hat.ndim) if a != 1)
    else:
        axes = tuple(range(x_hat.ndim - len(module.normalized_shape), x_hat.ndim))
    m = np.prod([x_hat.shape[a] for a in axes])
    terms = (
        inv_std
        / m
        * (
            m * g_hat
            + g_hat.sum(axis=axes, keepdims=True)
            + x_hat * (g_hat * x_hat).sum(axis=axes, keepdims=True)
        )
    )
    through_noise = (
        inv_std
        / m
        * noise
        * (
            (g_hat * x_hat).sum(axis=axes, keepdims=True)
            + x_hat * g_hat.sum(axis=axes, keepdims=True)
        )
    )
    atol = TOLERANCES[module._x_hat.dtype]["atol"]
    return max(1.0, float(terms.max(initial=0.0)), float(through_noise.max(initial=0.0)) / atol)


def _model_dtype(model: Sequential, X) -> np.dtype:
    """The model's dtype: its first parameter's, or the input's for a model without any (a
    stack of pooling layers)."""
    first = next(model.parameters(), None)
    return first.dtype if first is not None else np.asarray(X).dtype


def _conv_scales(module: Conv2d, x, grad) -> dict:
    """The size of the terms each of a convolution's results sums: the same convolution run
    on absolute values in float64 (``|x|`` through ``|W|``, ``|g|`` back), as
    ``_matmul_scale`` is the matrix product of absolute values."""
    twin = copy.deepcopy(module)
    twin.zero_grad()
    twin.weight.data = np.abs(twin.weight.data).astype(np.float64)
    if twin.bias is not None:
        twin.bias.data = np.abs(twin.bias.data).astype(np.float64)
    out = twin(np.abs(np.asarray(x, dtype=np.float64)))
    dx = twin.backward(np.abs(np.asarray(grad, dtype=np.float64)))
    scales = {"output": out, "dJ/d input": dx, "weight": twin.weight.grad}
    if twin.bias is not None:
        scales["bias"] = twin.bias.grad
    return {name: max(1.0, float(value.max(initial=0.0))) for name, value in scales.items()}


def _matmul_scale(a, b) -> float:
    """max(1, max |a| @ |b|): the size of the terms a matrix product sums."""
    return max(1.0, float(np.max(np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64))))


def check_modules(model: Sequential, loss, X, y) -> None:
    """Per-step parity: each module, and the loss, against torch on handprop's own values.

    For module i, torch's twin gets handprop's input to module i and handprop's grad_output of
    module i; its output, input gradient and parameter gradients are compared with handprop's.
    """
    dtype = _model_dtype(model, X)
    tdt = TORCH_DTYPES[dtype]
    model.zero_grad()
    inputs, h = [], np.asarray(X)
    for module in model:
        inputs.append(h)
        h = module(h)
    cost = loss(h, y)
    g, t_g = _loss_grad_output(loss, cost)

    # the loss, on handprop's output
    t_out = torch.tensor(h, dtype=tdt, requires_grad=True)
    t_cost = to_torch_loss(loss, dtype)(t_out, _torch_target(y, tdt))
    t_cost.backward(t_g)
    assert_close(f"cost ({loss!r})", cost, t_cost.detach().numpy(), dtype)
    grad = loss.backward(g)
    assert_close(f"d cost/d input ({loss!r})", grad, t_out.grad.numpy(), dtype)

    for i in reversed(range(len(model))):
        module, x = model[i], inputs[i]
        twin = to_torch_module(module)
        tx = torch.tensor(np.asarray(x), dtype=tdt, requires_grad=True)
        t_y = twin(tx)
        t_y.backward(torch.from_numpy(grad.copy()))
        y_hp = module(x)  # the same forward again: caches are refreshed with the same input
        new_grad = module.backward(grad)
        what = f"module {i} ({module!r})"
        if isinstance(module, (Linear, Conv2d)):
            xf = np.asarray(x, dtype=module.dtype)
            if isinstance(module, Conv2d):
                scales = _conv_scales(module, xf, grad)
            else:
                scales = {
                    "output": _matmul_scale(xf, module.weight.data.T),
                    "dJ/d input": _matmul_scale(grad, module.weight.data),
                    "weight": _matmul_scale(grad.T, xf),
                    "bias": max(1.0, float(np.abs(grad).sum(axis=0).max())),
                }
            assert_close(f"{what} output", y_hp, t_y.detach().numpy(), dtype, scales["output"])
            assert_close(
                f"{what} dJ/d input", new_grad, tx.grad.numpy(), dtype, scales["dJ/d input"]
            )
            t_params = dict(twin.named_parameters())
            for name, p in module.named_parameters():
                assert_close(
                    f"{what} {name}.grad", p.grad, t_params[name].grad.numpy(), dtype, scales[name]
                )
        else:
            out_scale = _norm_output_scale(module, x) if hasattr(module, "_x_hat") else None
            assert_close(f"{what} output", y_hp, t_y.detach().numpy(), dtype, out_scale)
            expected = tx.grad
            if type(module) in _BACKWARD_FROM_OUTPUT:
                # sigmoid' = y (1 - y) and tanh' = 1 - y^2 are computed from the saved output y;
                # near saturation they cancel, so one unit in the last place of y (torch's exp
                # and tanh are not NumPy's) changes them by a large fraction. Torch's autograd
                # formula is therefore evaluated at handprop's own y.
                expected = _BACKWARD_FROM_OUTPUT[type(module)](
                    torch.from_numpy(grad.copy()), torch.from_numpy(y_hp.copy())
                )
            scale = None
            if isinstance(module, Softmax):
                # y * (g - sum(g * y)): the difference cancels; its terms are this large
                y_abs, g_abs = np.abs(y_hp), np.abs(grad)
                terms = y_abs * (g_abs + (g_abs * y_abs).sum(axis=module.dim, keepdims=True))
                scale = max(1.0, float(terms.max()))
            if isinstance(module, LogSoftmax):
                # g - exp(y) * sum(g): the same cancellation
                g_abs = np.abs(grad)
                terms = g_abs + np.exp(y_hp) * g_abs.sum(axis=module.dim, keepdims=True)
                scale = max(1.0, float(terms.max()))
            if isinstance(module, (BatchNorm1d, LayerNorm)):
                scale = _norm_scale(module, grad, x)
            if isinstance(module, GELU) and module.approximate == "tanh":
                # g (0.5 (1 + t) + 0.5 x (1 - t^2) du/dx): far below 0, t is -1 to within
                # 1e-8, and a last-bit difference between NumPy's tanh and torch's survives
                # the sums at the size of their terms, at most |g| (1 + |x| du/dx)
                xf = np.abs(np.asarray(x, dtype=np.float64))
                du = np.sqrt(2 / np.pi) * (1 + 3 * 0.044715 * xf * xf)
                terms = np.abs(grad) * (1 + xf * du)
                scale = max(1.0, float(terms.max(initial=0.0)))
            assert_close(f"{what} dJ/d input", new_grad, expected.numpy(), dtype, scale)
            t_params = dict(twin.named_parameters())
            for name, p in module.named_parameters():  # a normalisation's weight and bias
                p_scale = _norm_parameter_scale(module, name, x, grad)
                t_grad = t_params[name].grad.numpy()
                assert_close(f"{what} {name}.grad", p.grad, t_grad, dtype, p_scale)
            _compare_buffers(module, twin, dtype)
        grad = new_grad


TORCH_OPTIMIZERS = {
    name: getattr(torch.optim, name) for name in ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad")
}


def check_training(model: Sequential, loss, X, y, optimizer: str, steps: int, **hyper):
    """Train handprop and its torch twin side by side with the same optimizer settings.

    Each framework computes its own gradients on its own parameters, so differences may
    compound: after every step, every parameter is compared. Returns both cost curves.
    With ``maximize=True`` the gradients are those of ``-cost``: climbing it still fits the
    data, so the trajectory stays bounded while exercising the maximize path.
    """
    sign = -1.0 if hyper.get("maximize") else 1.0
    import handprop.optim

    dtype = next(model.parameters()).dtype
    twin = to_torch_model(model)
    opt = getattr(handprop.optim, optimizer)(model.parameters(), **hyper)
    t_opt = TORCH_OPTIMIZERS[optimizer](twin.parameters(), **hyper)
    tx, ty = _torch_inputs(X, y, dtype)
    t_loss = to_torch_loss(loss, dtype)
    costs, t_costs = [], []
    for step in range(steps):
        opt.zero_grad()
        costs.append(loss(model(X), y))
        model.backward(loss.backward(sign))
        opt.step()
        t_opt.zero_grad()
        t_cost = t_loss(twin(tx), ty)
        t_costs.append(t_cost.item())
        (sign * t_cost).backward()
        t_opt.step()
        for (name, p), t_p in zip(model.named_parameters(), twin.parameters(), strict=True):
            assert_close(f"{name} after step {step + 1}", p.data, t_p.detach().numpy(), dtype)
    assert_close("costs", np.array(costs, dtype=dtype), np.array(t_costs), dtype)
    return costs, t_costs


# -- one module, nested inputs and outputs ----------------------------------------------------


def _leaves(value) -> list:
    """The arrays of a nested tuple, in order (None kept: an output without a gradient)."""
    if isinstance(value, (tuple, list)):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def _tensors(value):
    """Nested arrays as torch tensors, the float ones requiring their gradient."""
    if isinstance(value, tuple):
        return tuple(_tensors(v) for v in value)
    return torch.tensor(value, requires_grad=np.asarray(value).dtype.kind == "f")


def check_module_against_torch(
    module, inputs: tuple, grads: tuple, *, scale=None, parameter_scale=None, options=None
) -> None:
    """``module(*inputs)`` and ``module.backward(*grads)`` against its torch twin
    (``interop.to_torch``, the same weights) run on the same inputs and backpropagated from the
    same gradients: every output, every input's gradient and every parameter's, leaf by leaf,
    within the dtype's tolerance (``scale``: the size of the terms, as ``assert_close``;
    ``parameter_scale`` for the parameters' gradients, sums over the batch too).

    ``inputs``: the positional inputs, nested (an LSTM's ``(x, (h0, c0))``); ``grads``: one
    gradient per output, nested as the outputs, None for one that does not reach the cost (or
    an output that is None, as attention's weights with ``need_weights=False``); ``options``:
    keyword arguments for both calls (an array becomes a tensor for torch's: a mask).
    """
    dtype = module.dtype
    twin = to_torch(module)
    options = options or {}
    t_options = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in options.items()}
    outputs = module(*inputs, **options)
    returned = module.backward(*grads)
    t_inputs = tuple(_tensors(x) for x in inputs)
    t_outputs = twin(*t_inputs, **t_options)
    pairs = list(zip(_leaves(outputs), _leaves(t_outputs), strict=True))
    for i, (mine, theirs) in enumerate(pairs):
        if mine is None or theirs is None:  # (attention's weights, not asked for)
            assert mine is None and theirs is None, f"output {i}: {mine!r} against {theirs!r}"
            continue
        assert_close(f"output {i}", mine, theirs.detach().numpy(), dtype, scale=scale)
    given = [(t, g) for (_, t), g in zip(pairs, _leaves(grads), strict=True) if g is not None]
    assert all(t is not None for t, _ in given), "a gradient for an output that is None"
    torch.autograd.backward([t for t, _ in given], [torch.tensor(g) for _, g in given])
    mine_grads = _leaves(returned if len(inputs) > 1 else (returned,))
    their_leaves = [t for t in _leaves(t_inputs) if t.requires_grad]
    assert len(mine_grads) == len(their_leaves), "one gradient per input"
    for i, (mine, theirs) in enumerate(zip(mine_grads, their_leaves, strict=True)):
        assert_close(f"dJ/d(input {i})", mine, theirs.grad.numpy(), dtype, scale=scale)
    their_params = dict(twin.named_parameters())
    assert set(their_params) == {name for name, _ in module.named_parameters()}
    for name, p in module.named_parameters():
        theirs = their_params[name].grad.numpy()
        assert_close(f"{name}.grad", p.grad, theirs, dtype, scale=parameter_scale or scale)
