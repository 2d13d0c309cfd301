"""A character-level language model of Python's own documentation, trained by hand beside torch.

    python examples/char_lm.py                 # 600 steps; torch's twin too, if installed
    python examples/char_lm.py --steps 3000 --no-torch

The text is ``pydoc_data.topics``, the help topics that ship with every Python (about 465,000
characters: no download). The model reads characters and predicts the next one at every step:

    Embedding(V, 32) -> LSTM(32, 128) -> Linear(128, V)       V: the text's distinct characters

Training is truncated backpropagation through time, as torch users write it: the text is cut
into 32 streams read side by side, 64 characters at a time; the LSTM's last state is carried
into the next chunk as plain numbers, without its history (torch: ``state.detach()``), and
the gradient the backward returns for the state carried in is dropped: that is the
truncation. Adam, gradients clipped to a norm of 1, the learning rate annealed along a cosine;
a progress bar on stderr; every ``--sample-every`` steps, a sample of what the model writes.

With torch installed, its twin (the same weights, the same chunks, torch's optimizer, clipping
and schedule) trains beside it; the script prints both losses.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import sys
from collections.abc import Iterator

import numpy as np

from handprop import Module, no_grad
from handprop.bench import progress_bar
from handprop.interop import sharing_cores
from handprop.layers import LSTM, Embedding, Linear
from handprop.losses import CrossEntropyLoss
from handprop.optim import Adam, lr_scheduler
from handprop.utils import clip_grad_norm_


def text() -> str:
    """Python's help topics, in a fixed order."""
    from pydoc_data.topics import topics

    return "\n".join(topics[name] for name in sorted(topics))


class Vocabulary:
    """The text's distinct characters, each an index."""

    def __init__(self, corpus: str) -> None:
        self.chars = sorted(set(corpus))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def encode(self, s: str) -> np.ndarray:
        return np.array([self.index[c] for c in s], dtype=np.int64)

    def decode(self, indices) -> str:
        return "".join(self.chars[int(i)] for i in indices)


class CharLSTM(Module):
    """Embedding, LSTM, Linear: the logits of the next character at every step."""

    def __init__(self, vocab: int, embed: int = 32, hidden: int = 128, seed: int = 0,
                 dtype=np.float32) -> None:  # fmt: skip
        super().__init__()
        rng = np.random.default_rng(seed)
        self.embed = Embedding(vocab, embed, dtype=dtype, rng=rng)
        self.lstm = LSTM(embed, hidden, batch_first=True, dtype=dtype, rng=rng)
        self.head = Linear(hidden, vocab, dtype=dtype, rng=rng)

    def forward(self, x: np.ndarray, state: tuple | None = None) -> tuple:
        """x (N, T) character indices, state ``(h, c)`` carried from the chunk before (or
        None: zeros) -> logits (N, T, V) and the last state."""
        self.carried = state is not None
        e = self.embed(x)
        output, state = self.lstm(e, state) if self.carried else self.lstm(e)
        return self.head(output), state

    def backward(self, grad_logits: np.ndarray, grad_state: tuple | None) -> tuple | None:
        """Back through the head, the LSTM (through time, inside it) and the embedding. With
        a state carried in, its gradient too: ``(None, (dJ/dh_0, dJ/dc_0))`` (None for the
        indices)."""
        d_output = self.head.backward(grad_logits)
        grads = self.lstm.backward(d_output, grad_state)
        d_embed, d_state = grads if self.carried else (grads, None)
        self.embed.backward(d_embed)
        return (None, d_state) if self.carried else None


def chunks(data: np.ndarray, streams: int, length: int) -> Iterator[tuple]:
    """``(x, y, start)`` without end: ``streams`` rows of the text side by side, the next
    ``length`` characters of each and the characters after them; ``start`` is True when the
    streams begin again (an epoch), where the carried state must be dropped."""
    per_stream = (len(data) - 1) // streams
    rows = data[: streams * per_stream + 1]
    starts = np.arange(streams) * per_stream
    while True:
        for offset in range(0, per_stream - length + 1, length):
            index = starts[:, None] + offset + np.arange(length)
            yield rows[index], rows[index + 1], offset == 0


@no_grad()
def sample(model: CharLSTM, vocab: Vocabulary, prompt: str, length: int, *,
           temperature: float = 0.8, rng=None) -> str:  # fmt: skip
    """``prompt`` and ``length`` characters the model writes after it, one at a time, each
    drawn from the softmax of its logits divided by ``temperature``."""
    rng = np.random.default_rng(rng)
    logits, state = model(vocab.encode(prompt)[None])
    written = []
    for _ in range(length):
        z = logits[0, -1].astype(np.float64) / temperature
        p = np.exp(z - z.max())
        index = rng.choice(len(p), p=p / p.sum())
        written.append(index)
        logits, state = model(np.array([[index]]), state)
    return prompt + vocab.decode(written)


def train(steps: int = 600, lr: float = 3e-3, streams: int = 32, length: int = 64,
          seed: int = 0, with_torch: bool = True, dtype=np.float32, sample_every: int = 0,
          progress: bool = False) -> dict:  # fmt: skip
    """Train the model (and its torch twin) for ``steps`` chunks; the history of both, and the
    samples written along the way."""
    corpus = text()
    vocab = Vocabulary(corpus)
    data = vocab.encode(corpus)
    model = CharLSTM(len(vocab.chars), seed=seed, dtype=dtype)
    twin = _TorchTwin(model, lr, steps) if with_torch else None
    loss_fn, optimizer = CrossEntropyLoss(), Adam(model.parameters(), lr=lr)
    schedule = lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    history = {"loss": [], "torch_loss": [], "samples": [], "vocab": vocab, "model": model}
    state, feed = None, chunks(data, streams, length)
    with sharing_cores() if twin is not None else contextlib.nullcontext():
        for step in range(1, steps + 1):
            x, y, start = next(feed)
            if start:
                state = None  # the streams begin again: nothing to carry
            optimizer.zero_grad()
            logits, new_state = model(x) if state is None else model(x, state)
            cost = loss_fn(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            model.backward(loss_fn.backward().reshape(logits.shape), None)
            # (its return, dJ/d(state carried in), is dropped: the truncation)
            clip_grad_norm_(model.parameters(), max_norm=1.0)
            optimizer.step()
            schedule.step()
            state = new_state  # plain arrays: carried as numbers, without their history
            history["loss"].append(float(cost))
            if twin is not None:
                history["torch_loss"].append(twin.step(x, y, start))
            if progress:
                progress_bar(step, steps, f"loss {cost:.3f}")
            if sample_every and (step % sample_every == 0 or step == steps):
                written = sample(model, vocab, "def ", 120, rng=seed)
                history["samples"].append((step, written))
                if progress:
                    print(f"\n--- step {step}, loss {cost:.3f} ---\n{written}\n", file=sys.stderr)
    return history


class _TorchTwin:
    """torch's copy of the model (the same initial weights), trained beside it on the same
    chunks with torch's Adam, clipping and schedule, its state detached between chunks."""

    def __init__(self, model: CharLSTM, lr: float, steps: int) -> None:
        import torch

        from handprop.interop import to_torch

        self.torch = torch
        self.parts = [to_torch(m) for m in (model.embed, model.lstm, model.head)]
        self.parameters = [p for part in self.parts for p in part.parameters()]
        self.optimizer = torch.optim.Adam(self.parameters, lr=lr)
        self.schedule = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=steps)
        self.state = None

    def step(self, x, y, start: bool) -> float:
        torch = self.torch
        embed, lstm, head = self.parts
        if start:
            self.state = None
        self.optimizer.zero_grad()
        output, state = lstm(embed(torch.from_numpy(x)), self.state)
        logits = head(output)
        cost = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), torch.from_numpy(y).reshape(-1)
        )
        cost.backward()
        torch.nn.utils.clip_grad_norm_(self.parameters, max_norm=1.0)
        self.optimizer.step()
        self.schedule.step()
        self.state = tuple(s.detach() for s in state)  # the truncation, torch's way
        return cost.item()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--lr", type=float, default=3e-3, help="Adam's starting rate")
    parser.add_argument("--sample-every", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-torch", action="store_true", help="do not train the torch twin")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    with_torch = not args.no_torch
    if with_torch and importlib.util.find_spec("torch") is None:
        print("torch is not installed: training handprop alone", file=sys.stderr)
        with_torch = False
    history = train(args.steps, args.lr, seed=args.seed, with_torch=with_torch,
                    sample_every=args.sample_every, progress=True)  # fmt: skip
    losses = history["loss"]
    print(f"{len(history['vocab'].chars)} characters; loss {losses[0]:.3f} at the first step, "
          f"{np.mean(losses[-20:]):.3f} over the last 20")  # fmt: skip
    if with_torch:
        gap = np.max(np.abs(np.subtract(losses, history["torch_loss"])))
        print(f"torch's twin: {np.mean(history['torch_loss'][-20:]):.3f} over the last 20; "
              f"the two losses at most {gap:.1e} apart at any step")  # fmt: skip
    if history["samples"]:
        step, written = history["samples"][-1]
        print(f"what it writes after {step} steps:\n{written}")


if __name__ == "__main__":
    main()
