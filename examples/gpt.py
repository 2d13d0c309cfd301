"""A small GPT, trained by hand: every gradient written out in NumPy, equal to torch's.

    python examples/gpt.py                        # 300 steps, a sample every 100
    python examples/gpt.py --steps 2000 --plot gpt_loss.png

A character-level GPT of ``pydoc_data.topics``, the help text of every Python (no download):

    token and position embeddings  ->  4 pre-norm blocks (causal self-attention, an MLP with
    GPT-2's GELU, its tanh approximation)
    ->  a final LayerNorm  ->  logits from the token embedding itself (tied weights)

``GPT`` below is a block written from handprop's public modules (``Embedding``,
``TransformerEncoderLayer`` with ``norm_first=True``, ``LayerNorm``), its backward the forward
read backwards; the one place it writes a gradient itself is the tied output layer, whose
gradient adds into the token embedding's. Training: AdamW, a linear warm-up then a cosine
decay of the learning rate, the gradient norm clipped to 1, a progress bar on stderr, samples
as it learns, and with ``--plot`` the loss curve as a picture. ``tests/test_gpt.py`` builds
it beside a torch twin with the same weights and checks every gradient of a step, in float32
and float64, and a few steps of training.
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np
from char_lm import Vocabulary, text  # the text and its characters, as the LSTM example's

from handprop import Module, Sequential, init, no_grad
from handprop.bench import progress_bar
from handprop.layers import GELU, Embedding, LayerNorm, TransformerEncoderLayer
from handprop.losses import CrossEntropyLoss
from handprop.optim import AdamW, lr_scheduler
from handprop.utils import clip_grad_norm_


class GPT(Module):
    """A decoder-only transformer: the next token's logits at every position."""

    def __init__(self, vocab: int, context: int = 64, width: int = 128, heads: int = 4,
                 blocks: int = 4, dropout: float = 0.0, seed: int = 0,
                 dtype=np.float32) -> None:  # fmt: skip
        super().__init__()
        rng = np.random.default_rng(seed)
        self.context = context
        self.tok = Embedding(vocab, width, dtype=dtype, rng=rng)  # its weight is the head's too
        self.pos = Embedding(context, width, dtype=dtype, rng=rng)
        self.h = Sequential(*[
            TransformerEncoderLayer(width, heads, 4 * width, dropout, activation=GELU("tanh"),
                                    batch_first=True, norm_first=True, dtype=dtype, rng=rng)
            for _ in range(blocks)
        ])  # fmt: skip
        self.ln_f = LayerNorm(width, dtype=dtype)
        for table in (self.tok, self.pos):  # GPT-2's: small, or the tied logits start huge
            init.normal_(table.weight, std=0.02, rng=rng)

    def forward(self, idx: np.ndarray) -> np.ndarray:
        """idx (N, T) token indices, T <= context -> logits (N, T, vocab)."""
        length = idx.shape[1]
        if length > self.context:
            raise ValueError(f"GPT: a sequence of {length} tokens, longer than the context "
                             f"of {self.context}")  # fmt: skip
        causal = np.triu(np.ones((length, length), bool), k=1)  # no token sees a later one
        x = self.tok(idx) + self.pos(np.arange(length))  # (N, T, width) + (T, width)
        for block in self.h:
            x = block(x, src_mask=causal, is_causal=True)
        self._x = self.ln_f(x)
        return self._x @ self.tok.weight.data.T  # the output layer: the embedding, tied

    def backward(self, grad_output: np.ndarray) -> None:
        """The forward backwards. The tied output layer adds its share into the token
        embedding's gradient (``dJ/dW += g^T x``, every position a row), and the embedding's
        own backward adds the rest; the position embedding served every sequence of the batch,
        so its gradient sums over the batch."""
        g = grad_output  # (N, T, vocab)
        x = self._x
        self.tok.weight.accumulate_grad(g.reshape(-1, g.shape[-1]).T @ x.reshape(-1, x.shape[-1]))
        d = self.ln_f.backward(g @ self.tok.weight.data)
        for block in reversed(self.h):
            d = block.backward(d)
        self.pos.backward(d.sum(axis=0))
        self.tok.backward(d)


def torch_twin(model: GPT):
    """The same GPT in torch (needs torch), its parts converted from ``model``'s: the same
    weights, the output layer tied to its token embedding too."""
    import torch

    from handprop.interop import to_torch

    class TorchGPT(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tok, self.pos = to_torch(model.tok), to_torch(model.pos)
            self.h = torch.nn.ModuleList(to_torch(block) for block in model.h)
            self.ln_f = to_torch(model.ln_f)

        def forward(self, idx):
            length = idx.shape[1]
            causal = torch.triu(torch.ones(length, length, dtype=torch.bool), diagonal=1)
            x = self.tok(idx) + self.pos(torch.arange(length))
            for block in self.h:
                x = block(x, src_mask=causal, is_causal=True)
            return self.ln_f(x) @ self.tok.weight.T

    return TorchGPT()


def warmup_cosine(warmup: int, steps: int):
    """The learning rate's factor at each step: a linear warm-up over ``warmup`` steps, then a
    cosine decay to 0 at ``steps``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def batches(data: np.ndarray, context: int, batch: int, rng) -> tuple:
    """``batch`` random windows of the text: the input and the next characters."""
    starts = rng.integers(0, len(data) - context - 1, size=batch)
    index = starts[:, None] + np.arange(context)
    return data[index], data[index + 1]


@no_grad()
def sample(model: GPT, vocab: Vocabulary, prompt: str, length: int, *,
           temperature: float = 0.8, rng=None) -> str:  # fmt: skip
    """``prompt`` and ``length`` characters the model writes after it, one at a time."""
    rng = np.random.default_rng(rng)
    tokens = list(vocab.encode(prompt))
    for _ in range(length):
        logits = model(np.array([tokens[-model.context :]]))[0, -1].astype(np.float64)
        p = np.exp((logits - logits.max()) / temperature)
        tokens.append(int(rng.choice(len(p), p=p / p.sum())))
    return vocab.decode(tokens)


def train(steps: int = 300, lr: float = 3e-3, batch: int = 16, context: int = 64,
          width: int = 128, heads: int = 4, blocks: int = 4, seed: int = 0,
          dtype=np.float32, sample_every: int = 0, progress: bool = False,
          twin=None) -> dict:  # fmt: skip
    """Train the GPT; the loss at every step, and the samples along the way. ``twin``: a
    function called at every step with ``(x, y)`` whose return is recorded as
    ``torch_loss`` (tests/test_gpt.py trains torch's twin with it)."""
    corpus = text()
    vocab = Vocabulary(corpus)
    data = vocab.encode(corpus)
    model = GPT(len(vocab.chars), context, width, heads, blocks, seed=seed, dtype=dtype)
    loss_fn = CrossEntropyLoss()
    optimizer = AdamW(model.parameters(), lr=lr, weight_decay=0.1)
    schedule = lr_scheduler.LambdaLR(optimizer, warmup_cosine(max(1, steps // 10), steps))
    rng = np.random.default_rng(seed)
    history = {"loss": [], "torch_loss": [], "samples": [], "vocab": vocab, "model": model}
    for step in range(1, steps + 1):
        x, y = batches(data, context, batch, rng)
        if twin is not None:
            history["torch_loss"].append(twin(x, y))
        optimizer.zero_grad()
        logits = model(x)
        cost = loss_fn(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        model.backward(loss_fn.backward().reshape(logits.shape))
        clip_grad_norm_(model.parameters(), max_norm=1.0)
        optimizer.step()
        schedule.step()
        history["loss"].append(float(cost))
        if progress:
            progress_bar(step, steps, f"loss {cost:.3f}")
        if sample_every and (step % sample_every == 0 or step == steps):
            written = sample(model, vocab, "The ", 100, rng=seed)
            history["samples"].append((step, written))
            if progress:
                print(f"\n--- step {step}, loss {cost:.3f} ---\n{written}\n", file=sys.stderr)
    return history


def plot(history: dict, path: str) -> None:
    """The loss at every step, and its mean over 20 steps (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loss = np.asarray(history["loss"])
    smooth = np.convolve(loss, np.ones(20) / 20, mode="valid") if len(loss) >= 20 else loss
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(np.arange(1, len(loss) + 1), loss, alpha=0.3, label="each step")
    ax.plot(np.arange(len(loss) - len(smooth) + 1, len(loss) + 1), smooth, label="mean of 20")
    ax.set(xlabel="step", ylabel="cross-entropy", title="a GPT of Python's help, by hand")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=3e-3, help="AdamW's peak learning rate")
    parser.add_argument("--sample-every", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", metavar="FILE.png", help="save the loss curve")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    history = train(args.steps, args.lr, seed=args.seed, sample_every=args.sample_every,
                    progress=True)  # fmt: skip
    losses = history["loss"]
    print(f"loss {losses[0]:.3f} at the first step, {np.mean(losses[-20:]):.3f} over the "
          f"last 20")  # fmt: skip
    if history["samples"]:
        step, written = history["samples"][-1]
        print(f"what it writes after {step} steps:\n{written}")
    if args.plot:
        plot(history, args.plot)


if __name__ == "__main__":
    main()
