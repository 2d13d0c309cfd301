"""examples/gpt.py beside a torch twin with the same weights: every gradient of a training
step in float32 and float64, and a few steps of training (AdamW, the warm-up and cosine
schedule, clipping) following the same losses."""

import sys
from pathlib import Path

import numpy as np
import pytest
from closeness import assert_close

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import gpt

from handprop.losses import CrossEntropyLoss

torch = pytest.importorskip("torch")
SMALL = {"context": 16, "width": 16, "heads": 4, "blocks": 2}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_gradient_of_a_step_equals_torch(dtype):
    vocab = gpt.Vocabulary(gpt.text())
    model = gpt.GPT(len(vocab.chars), **SMALL, seed=1, dtype=dtype)
    twin = gpt.torch_twin(model)
    x, y = gpt.batches(vocab.encode(gpt.text()), 16, 4, np.random.default_rng(2))
    loss = CrossEntropyLoss()
    logits = model(x)
    cost = loss(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    model.backward(loss.backward().reshape(logits.shape))
    t_logits = twin(torch.from_numpy(x))
    t_cost = torch.nn.functional.cross_entropy(
        t_logits.reshape(-1, t_logits.shape[-1]), torch.from_numpy(y).reshape(-1)
    )
    t_cost.backward()
    assert_close("logits", logits, t_logits.detach().numpy(), dtype)
    assert_close("cost", cost, t_cost.item(), dtype)
    theirs = dict(twin.named_parameters())
    assert set(theirs) == {name for name, _ in model.named_parameters()}
    for name, p in model.named_parameters():  # (the tied embedding: both of its uses added)
        assert_close(f"{name}.grad", p.grad, theirs[name].grad.numpy(), dtype)


def test_a_few_steps_of_training_follow_torchs():
    """Five steps in float64 of the whole recipe, AdamW (weight decay 0.1), the warm-up and
    cosine schedule, the gradient norm clipped to 1, beside the torch twin doing the same
    with torch's optimizer, schedule and clipping: the same loss at every step."""
    vocab = gpt.Vocabulary(gpt.text())
    steps, lr = 5, 3e-3
    model_for_twin = gpt.GPT(len(vocab.chars), **SMALL, seed=0, dtype=np.float64)
    twin = gpt.torch_twin(model_for_twin)
    optimizer = torch.optim.AdamW(twin.parameters(), lr=lr, weight_decay=0.1)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, gpt.warmup_cosine(1, steps))

    def twin_step(x, y):
        optimizer.zero_grad()
        logits = twin(torch.from_numpy(x))
        cost = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), torch.from_numpy(y).reshape(-1)
        )
        cost.backward()
        torch.nn.utils.clip_grad_norm_(twin.parameters(), max_norm=1.0)
        optimizer.step()
        schedule.step()
        return cost.item()

    history = gpt.train(steps, lr, batch=4, **SMALL, dtype=np.float64, twin=twin_step)
    np.testing.assert_allclose(history["loss"], history["torch_loss"], rtol=1e-11)
    assert history["loss"][-1] < history["loss"][0]


def test_the_script_trains_samples_and_draws_its_loss(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(gpt, "train", _small(gpt.train))
    path = tmp_path / "loss.png"
    gpt.main(["--steps", "3", "--sample-every", "3", "--plot", str(path)])
    out = capsys.readouterr()
    assert "loss" in out.out and "what it writes after 3 steps:\nThe " in out.out
    assert "3/3" in out.err
    assert path.read_bytes().startswith(b"\x89PNG")
    with pytest.raises(SystemExit):
        gpt.main(["--steps", "0"])


def _small(train):
    def small(*args, **kwargs):
        return train(*args, **{**kwargs, **SMALL, "batch": 2})

    return small
