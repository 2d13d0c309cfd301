"""Exercises: list, start and check from the command line; every starting file, once its
backward is written, passes; handprop's own classes pass; a broken backward fails with the
mistake named."""

import subprocess
import sys

import pytest

from handprop import layers, losses
from handprop.cli import main
from handprop.exercises import EXERCISES, grade

# The loop of the three backpropagation-through-time exercises (rnn, lstm, gru).
BPTT = """
        d_state, dxs = START, []
        for t in range(len(self.x) - 1, -1, -1):
            d_state = (d_state[0] + grad_output[t], *d_state[1:])
            dgx, dgh, d_state = STEP(d_state, self.caches[t], self.weight_hh_l0.data)
            self.weight_ih_l0.accumulate_grad(dgx.T @ self.x[t])
            self.weight_hh_l0.accumulate_grad(dgh.T @ self.h_before[t])
            self.bias_ih_l0.accumulate_grad(dgx.sum(axis=0))
            self.bias_hh_l0.accumulate_grad(dgh.sum(axis=0))
            dxs.append(dgx @ self.weight_ih_l0.data)
        return np.stack(dxs[::-1])"""

# What a learner writes in place of each starting file's `raise NotImplementedError(...)`
# (with the starting file's own imports: np, math).
SOLUTIONS = {
    "linear": """
        self.weight.accumulate_grad(g.T @ self.x)
        self.bias.accumulate_grad(g.sum(axis=0))
        return g @ self.weight.data""",
    "relu": """
        return grad_output * (self.x > 0)""",
    "sigmoid": """
        return grad_output * self.y * (1 - self.y)""",
    "tanh": """
        return grad_output * (1 - self.y * self.y)""",
    "softmax": """
        return y * (g - (g * y).sum(axis=self.dim, keepdims=True))""",
    "bce": """
        p, t = self.p, self.t
        return grad * (-t / p + (1 - t) / (1 - p)) / p.size""",
    "cross_entropy": """
        d = self.p.copy()
        d[np.arange(len(self.t)), self.t] -= 1
        return grad * d / len(self.t)""",
    "dropout": """
        return grad_output * self.mask / (1 - self.p)""",
    "batchnorm1d": """
        self.weight.accumulate_grad((g * self.x_hat).sum(axis=0))
        self.bias.accumulate_grad(g.sum(axis=0))
        g_hat, m = g * self.weight.data, len(g)
        terms = m * g_hat - g_hat.sum(axis=0) - self.x_hat * (g_hat * self.x_hat).sum(axis=0)
        return self.inv_std / m * terms""",
    "conv2d": """
        kh, kw = self.weight.shape[2:]
        dx, dw = np.zeros_like(self.x), np.zeros_like(self.weight.data)
        for i in range(g.shape[2]):
            for j in range(g.shape[3]):
                window = self.x[:, :, i : i + kh, j : j + kw]
                dw += np.tensordot(g[:, :, i, j], window, axes=([0], [0]))
                dx[:, :, i : i + kh, j : j + kw] += np.tensordot(
                    g[:, :, i, j], self.weight.data, axes=([1], [0])
                )
        self.weight.accumulate_grad(dw)
        self.bias.accumulate_grad(g.sum(axis=(0, 2, 3)))
        return dx""",
    "maxpool2d": """
        n, c, h, w = self.x.shape
        windows = self.x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5)
        first = windows.reshape(n, c, h // 2, w // 2, 4).argmax(axis=-1)
        chosen = np.zeros((n, c, h // 2, w // 2, 4))
        np.put_along_axis(chosen, first[..., None], grad_output[..., None], axis=-1)
        chosen = chosen.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5)
        return chosen.reshape(n, c, h, w)""",
    "leaky_relu": """
        return grad_output * np.where(self.x > 0, 1.0, self.negative_slope)""",
    "gelu": """
        phi = np.exp(-self.x * self.x / 2) / math.sqrt(2 * math.pi)
        return grad_output * (self.Phi + self.x * phi)""",
    "log_softmax": """
        return g - np.exp(self.y) * g.sum(axis=self.dim, keepdims=True)""",
    "layernorm": """
        self.weight.accumulate_grad((g * self.x_hat).sum(axis=0))
        self.bias.accumulate_grad(g.sum(axis=0))
        g_hat, n = g * self.weight.data, g.shape[-1]
        sum_g = g_hat.sum(axis=-1, keepdims=True)
        sum_gx = (g_hat * self.x_hat).sum(axis=-1, keepdims=True)
        return self.inv_std / n * (n * g_hat - sum_g - self.x_hat * sum_gx)""",
    "batchnorm2d": """
        self.weight.accumulate_grad((g * self.x_hat).sum(axis=AXES))
        self.bias.accumulate_grad(g.sum(axis=AXES))
        g_hat = g * self.weight.data.reshape(1, -1, 1, 1)
        m = g.size // g.shape[1]
        sum_g = g_hat.sum(axis=AXES, keepdims=True)
        sum_gx = (g_hat * self.x_hat).sum(axis=AXES, keepdims=True)
        return self.inv_std / m * (m * g_hat - sum_g - self.x_hat * sum_gx)""",
    "avgpool2d": """
        return grad_output.repeat(2, axis=2).repeat(2, axis=3) / 4""",
    "twice": """
        return self.f.backward(self.f.backward(grad_output))""",
    "flatten": """
        return grad_output.reshape(self.shape)""",
    "rnn_cell": """
        dz = g * (1 - self.h_new**2)
        self.weight_ih.accumulate_grad(dz.T @ self.x)
        self.weight_hh.accumulate_grad(dz.T @ self.h)
        self.bias_ih.accumulate_grad(dz.sum(axis=0))
        self.bias_hh.accumulate_grad(dz.sum(axis=0))
        return dz @ self.weight_ih.data, dz @ self.weight_hh.data""",
    "lstm_cell": """
        dc = grad_c + grad_h * self.o * (1 - self.tanh_c**2)
        i, f, g, o = self.i, self.f, self.g, self.o
        dz = np.concatenate(
            [dc * g * i * (1 - i), dc * self.c * f * (1 - f), dc * i * (1 - g * g),
             grad_h * self.tanh_c * o * (1 - o)],
            axis=1,
        )
        self.weight_ih.accumulate_grad(dz.T @ self.x)
        self.weight_hh.accumulate_grad(dz.T @ self.h)
        self.bias_ih.accumulate_grad(dz.sum(axis=0))
        self.bias_hh.accumulate_grad(dz.sum(axis=0))
        return dz @ self.weight_ih.data, (dz @ self.weight_hh.data, dc * f)""",
    "gru_cell": """
        r, z, n = self.r, self.z, self.n
        dn = g * (1 - z) * (1 - n * n)
        dz_r, dz_z = dn * self.gh_n * r * (1 - r), g * (self.h - n) * z * (1 - z)
        dgx = np.concatenate([dz_r, dz_z, dn], axis=1)
        dgh = np.concatenate([dz_r, dz_z, dn * r], axis=1)
        self.weight_ih.accumulate_grad(dgx.T @ self.x)
        self.weight_hh.accumulate_grad(dgh.T @ self.h)
        self.bias_ih.accumulate_grad(dgx.sum(axis=0))
        self.bias_hh.accumulate_grad(dgh.sum(axis=0))
        return dgx @ self.weight_ih.data, g * z + dgh @ self.weight_hh.data""",
    **{
        kind: BPTT.replace("STEP", f"{kind}_step_backward").replace("START", start)
        for kind, start in (
            ("rnn", "(grad_state[0],)"),
            ("gru", "(grad_state[0],)"),
            ("lstm", "(grad_state[0][0], grad_state[1][0])"),
        )
    },
    "attention": """
        dv = self.p.swapaxes(-1, -2) @ g
        dp = g @ self.v.swapaxes(-1, -2)
        ds = self.p * (dp - (dp * self.p).sum(axis=-1, keepdims=True))
        root = np.sqrt(self.q.shape[-1])
        return ds @ self.k / root, ds.swapaxes(-1, -2) @ self.q / root, dv""",
    "multihead_attention": """
        e, rows = self.embed_dim, g.reshape(-1, self.embed_dim)
        self.out_proj.weight.accumulate_grad(rows.T @ self.merged.reshape(-1, e))
        self.out_proj.bias.accumulate_grad(rows.sum(axis=0))
        d_heads = self.split(g @ self.out_proj.weight.data)
        d_weights = np.broadcast_to(grad_weights[:, None] / self.num_heads, self.cache[3].shape)
        grads = scaled_dot_product_attention_backward(d_heads, d_weights, self.cache)
        grads = [self.merge(d) for d in grads]
        flat = [d.reshape(-1, e) for d in grads]
        self.in_proj_weight.accumulate_grad(np.concatenate(
            [d.T @ x.reshape(-1, e) for d, x in zip(flat, self.inputs)]))
        self.in_proj_bias.accumulate_grad(np.concatenate([d.sum(axis=0) for d in flat]))
        w = self.in_proj_weight.data
        return tuple(d @ w[i * e : (i + 1) * e] for i, d in enumerate(grads))""",
    "encoder_layer": """
        def sa_backward(d):
            return sum(self.self_attn.backward(self.dropout1.backward(d), None))

        def ff_backward(d):
            d = self.linear2.backward(self.dropout2.backward(d))
            return self.linear1.backward(self.activation.backward(self.dropout.backward(d)))

        if self.norm_first:
            d_x1 = g + self.norm2.backward(ff_backward(g))
            return d_x1 + self.norm1.backward(sa_backward(d_x1))
        d = self.norm2.backward(g)
        d_x1 = d + ff_backward(d)
        d = self.norm1.backward(d_x1)
        return d + sa_backward(d)""",
    "decoder_layer": """
        d = self.norm3.backward(g)
        ff = self.linear2.backward(self.dropout3.backward(d))
        d_x2 = d + self.linear1.backward(self.activation.backward(self.dropout.backward(ff)))
        d = self.norm2.backward(d_x2)
        dq, dk, dv = self.multihead_attn.backward(self.dropout2.backward(d), None)
        d = self.norm1.backward(d + dq)
        return d + sum(self.self_attn.backward(self.dropout1.backward(d), None)), dk + dv""",
    "embedding": """
        dW = np.zeros_like(self.weight.data)
        np.add.at(dW, self.x.ravel(), g.reshape(-1, dW.shape[1]))
        if self.padding_idx is not None:
            dW[self.padding_idx] = 0.0
        self.weight.accumulate_grad(dW)
        return None""",
    "mse": """
        return grad * 2 * (self.p - self.t) / self.p.size""",
    "l1": """
        return grad * np.sign(self.p - self.t) / self.p.size""",
    "huber": """
        d = self.d
        return grad * np.where(np.abs(d) < self.delta, d, self.delta * np.sign(d)) / d.size""",
    "bce_with_logits": """
        p = 1 / (1 + np.exp(-self.z))
        return grad * (p - self.t) / self.z.size""",
    "nll": """
        d = np.zeros(self.shape)
        d[np.arange(len(self.t)), self.t] = -1 / len(self.t)
        return grad * d""",
}
RAISE = '        raise NotImplementedError("write the backward: follow the steps above")'


def solved(tmp_path, name, body):
    """Exercise ``name``'s starting file with ``body`` as its backward's end."""
    assert main(["exercise", "start", name, str(tmp_path)]) == 0
    path = tmp_path / f"{name}.py"
    text = path.read_text()
    assert RAISE in text, name
    path.write_text(text.replace(RAISE, body.strip("\n")))
    return path


def test_every_exercise_has_a_written_solution_here():
    assert set(SOLUTIONS) == set(EXERCISES)


def test_every_layer_and_loss_has_an_exercise():
    """A new layer or loss gets its exercise the day it lands (Identity aside: its backward
    returns its input)."""
    classes = {name for name in layers.__all__ if name[0].isupper()} | set(losses.__all__)
    taught = {exercise.class_name for exercise in EXERCISES.values()}
    assert classes - taught == {"Identity"}


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_a_solved_starting_file_passes(tmp_path, capsys, name):
    path = solved(tmp_path, name, SOLUTIONS[name])
    assert main(["exercise", "check", name, str(path)]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "cases pass: all cases pass" in out and "FAILED" not in out


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_the_starting_file_as_given_fails_and_says_why(tmp_path, capsys, name):
    capsys.readouterr()
    path = tmp_path / f"{name}.py"
    assert main(["exercise", "start", name, str(tmp_path)]) == 0
    assert main(["exercise", "check", name, str(path)]) == 1
    assert "your code raised NotImplementedError: write the backward" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_handprops_own_classes_pass_every_exercise(name):
    exercise = EXERCISES[name]
    cls = getattr(layers, exercise.class_name, None) or getattr(losses, exercise.class_name, None)
    cls = cls or exercise.reference  # a block's exercise: its reference is handprop's own
    results = grade(name, cls)
    assert results and all(r.passed for r in results), [str(r.report) for r in results]


@pytest.mark.parametrize(
    ("name", "body", "code"),
    [  # noqa: RUF005 (the classic mistakes, then the recurrent ones)
        (
            "linear",
            """
        self.weight.accumulate_grad(g.T @ self.x)
        self.bias.accumulate_grad(g)
        return g @ self.weight.data""",
            "not-summed-over-batch",
        ),
        (
            "linear",
            """
        self.weight.accumulate_grad(self.x.T @ g)
        self.bias.accumulate_grad(g.sum(axis=0))
        return g @ self.weight.data""",
            "transposed",
        ),
        ("relu", "\n        return grad_output * (self.x >= 0)", "kink-choice"),
        ("sigmoid", "\n        return -grad_output * self.y * (1 - self.y)", "sign"),
        ("softmax", "\n        return g * y * (1 - y)", "diagonal-only"),
        (
            "bce",
            "\n        p, t = self.p, self.t\n        return grad * (-t / p + (1 - t) / (1 - p))",
            "scaled",
        ),
        ("mse", "\n        return grad * (self.p - self.t) / self.p.size", "scaled"),
        ("avgpool2d", "\n        return grad_output.repeat(2, axis=2).repeat(2, axis=3)", "scaled"),
        (
            "l1",
            "\n        return grad * np.where(self.p > self.t, 1.0, -1.0) / self.p.size",
            "kink-choice",
        ),
        (
            "leaky_relu",
            "\n        return grad_output * np.where(self.x >= 0, 1.0, self.negative_slope)",
            "kink-choice",
        ),
        (
            "nll",
            """
        d = np.zeros(self.shape)
        d[np.arange(len(self.t)), self.t] = 1 / len(self.t)
        return grad * d""",
            "sign",
        ),
    ]
    + [
        (  # the forget gate's block where the input gate's goes, and the other way round
            "lstm_cell",
            SOLUTIONS["lstm_cell"].replace(
                "[dc * g * i * (1 - i), dc * self.c * f * (1 - f),",
                "[dc * self.c * f * (1 - f), dc * g * i * (1 - i),",
            ),
            "gates-order",
        ),
        (
            "rnn_cell",
            SOLUTIONS["rnn_cell"].replace("dz @ self.weight_hh.data", "np.zeros_like(self.h)"),
            "h-path-dropped",
        ),
        (  # the state's gradient not carried from one step to the one before
            "lstm",
            SOLUTIONS["lstm"].replace(
                "d_state = (d_state[0] + grad_output[t], *d_state[1:])",
                "d_state = (grad_output[t], np.zeros_like(grad_output[t]))",
            ),
            "h-path-dropped",
        ),
        (  # .grad set at every step: the last step's share replaces the others
            "gru",
            SOLUTIONS["gru"].replace(
                "self.weight_hh_l0.accumulate_grad(dgh.T @ self.h_before[t])",
                "self.weight_hh_l0.grad = dgh.T @ self.h_before[t]",
            ),
            "not-summed-over-time",
        ),
        (  # the shares of every step computed, and only the first step's stored
            "rnn",
            SOLUTIONS["rnn"]
            .replace(
                "self.weight_hh_l0.accumulate_grad(dgh.T @ self.h_before[t])",
                "dW_hh = dgh.T @ self.h_before[t]",
            )
            .replace(
                "return np.stack(dxs[::-1])",
                "self.weight_hh_l0.accumulate_grad(dW_hh)\n        return np.stack(dxs[::-1])",
            ),
            "not-summed-over-time",
        ),
        (
            "attention",
            SOLUTIONS["attention"].replace(
                "ds = self.p * (dp - (dp * self.p).sum(axis=-1, keepdims=True))",
                "ds = self.p * (1 - self.p) * dp",
            ),
            "softmax-diagonal",
        ),
        (
            "attention",
            SOLUTIONS["attention"].replace("root = np.sqrt(self.q.shape[-1])", "root = 1.0"),
            "scale-forgotten",
        ),
        (  # the backward through the softmax of the scores without the causal mask
            "attention",
            SOLUTIONS["attention"].replace(
                "ds = self.p * (dp - (dp * self.p).sum(axis=-1, keepdims=True))",
                "s = self.q @ self.k.swapaxes(-1, -2) / np.sqrt(self.q.shape[-1])\n        "
                "p = np.exp(s - s.max(axis=-1, keepdims=True))\n        "
                "p = p / p.sum(axis=-1, keepdims=True)\n        "
                "ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))",
            ),
            "mask-gradient",
        ),
        (  # the merged gradient split as (N, L, head_dim, heads): not as the forward merged
            "multihead_attention",
            SOLUTIONS["multihead_attention"].replace(
                "d_heads = self.split(g @ self.out_proj.weight.data)",
                "d = g @ self.out_proj.weight.data\n        "
                "d_heads = d.reshape(*d.shape[:2], self.head_dim, self.num_heads)"
                ".transpose(0, 3, 1, 2)",
            ),
            "heads-order",
        ),
    ],
    ids=[
        "bias-per-sample",
        "transposed-weight",
        "relu-ge",
        "sign",
        "softmax-diag",
        "bce-sum",
        "mse-no-2",
        "avgpool-sum",
        "l1-sign-at-0",
        "leaky-ge",
        "nll-sign",
        "lstm-gates-f-i-g-o",
        "rnn-cell-dh-zero",
        "lstm-state-not-carried",
        "gru-grad-set-each-step",
        "rnn-one-step-share",
        "attention-softmax-diagonal",
        "attention-scale-forgotten",
        "attention-mask-ignored",
        "mha-heads-order",
    ],
)
def test_a_broken_backward_fails_with_the_mistake_named(tmp_path, capsys, name, body, code):
    path = solved(tmp_path, name, body)
    assert main(["exercise", "check", name, str(path)]) == 1
    out = capsys.readouterr().out
    assert f"  {code}: " in out, out


def test_list_start_and_bad_input(tmp_path, capsys):
    assert main(["exercise", "list"]) == 0
    out = capsys.readouterr().out
    for name, exercise in EXERCISES.items():
        assert f"{name}" in out and exercise.class_name in out
    assert main(["exercise", "start", "linear", str(tmp_path)]) == 0
    assert main(["exercise", "start", "linear", str(tmp_path)]) == 2  # never overwrites
    assert "exists already" in capsys.readouterr().err
    assert main(["exercise", "start", "transformer", str(tmp_path)]) == 2
    assert (
        "no exercise 'transformer'; there are: attention, avgpool2d, batchnorm1d"
        in capsys.readouterr().err
    )
    assert main(["exercise", "check", "linear", str(tmp_path / "missing.py")]) == 2
    (tmp_path / "empty.py").write_text("x = 1\n")
    assert main(["exercise", "check", "linear", str(tmp_path / "empty.py")]) == 2
    assert "has no class Linear" in capsys.readouterr().err


def test_the_command_runs_as_a_program(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "handprop", "exercise", "start", "relu", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "handprop exercise check relu" in done.stdout


def test_the_twice_exercise_fails_a_backward_that_consumes_one_use_only(tmp_path, capsys):
    """One backward for two uses: dJ/dx and the weight's gradient miss the first use."""
    path = solved(tmp_path, "twice", "\n        return self.f.backward(grad_output)")
    assert main(["exercise", "check", "twice", str(path)]) == 1
    out = capsys.readouterr().out
    assert "0 of 2 cases pass: not yet" in out and "f.weight" in out
