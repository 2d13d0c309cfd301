"""The step-through page (Trace.to_html) in a real browser (headless Chromium), offline: for
the worked example and for a network written for no one in particular, stepping to each frame
shows its title, its formula and numbers, and highlights exactly the nodes it reads and
writes. Screenshots go to ``test-artifacts/stepper/`` (or ``$HANDPROP_ARTIFACTS/stepper/``).

Needs playwright and Debian's chromium (``apt-get install chromium``); skipped where they are
missing, which CI does not allow.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from browser import have_chromium, launch

from handprop import Sequential, trace
from handprop import worked_example as we
from handprop.explain.stepper import frames
from handprop.layers import BatchNorm1d, Linear, ReLU, Tanh
from handprop.losses import CrossEntropyLoss, MSELoss

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("HANDPROP_ARTIFACTS", ROOT / "test-artifacts")) / "stepper"

playwright_api = pytest.importorskip("playwright.sync_api", reason="needs playwright")
if not have_chromium():  # pragma: no cover - CI installs it
    pytest.skip("needs Debian's chromium (apt-get install chromium)", allow_module_level=True)


def traces():
    X, y = we.data()
    yield "worked_example", trace(we.model(), we.loss_fn(), X, y)
    rng = np.random.default_rng(0)
    model = Sequential(
        Linear(5, 4, rng=1),
        BatchNorm1d(4),
        Tanh(),
        Linear(4, 4, rng=2),
        ReLU(),
        Linear(4, 3, rng=3),
    )
    yield (
        "other_network",
        trace(model, CrossEntropyLoss(), rng.standard_normal((6, 5)), rng.integers(0, 3, 6)),
    )
    from test_calls import X as BX
    from test_calls import Y as BY
    from test_calls import model as blocks  # a residual block and a Linear used twice

    yield "blocks", trace(blocks(np.float32), MSELoss(), BX, BY)  # each call a frame
    from test_recurrent import Classifier  # an LSTM of 2 layers: a frame per time step

    x = rng.standard_normal((4, 3, 3))
    yield "lstm", trace(Classifier(), CrossEntropyLoss(), x, np.array([0, 1, 1]))
    from test_attention import Attend  # attention: its weights and dS drawn as heat maps

    x = rng.standard_normal((2, 5, 4))
    yield "attention", trace(Attend(), MSELoss(), x, np.zeros((2, 5, 1)))


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        chromium = launch(p)  # no network at all: the page is a file
        yield chromium
        chromium.close()


_STATE = """() => ({
  title: document.getElementById("step-title").textContent,
  formula: document.getElementById("step-formula").textContent,
  values: document.getElementById("step-values").textContent,
  active: Array.from(document.querySelectorAll("[data-name].active")).map((e) => e.dataset.name),
  written: Array.from(document.querySelectorAll("[data-name].written")).map((e) => e.dataset.name),
  picture: document.getElementById("step-picture").querySelectorAll("svg rect").length,
  prev: document.getElementById("prev").disabled,
  next: document.getElementById("next").disabled,
})"""


@pytest.mark.parametrize(
    ("name", "t"), list(traces()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_stepping_through_every_frame(tmp_path, browser, name, t):
    page_file = tmp_path / f"{name}.html"
    t.to_html(page_file)
    expected = frames(t)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    requests = []
    page.on("request", lambda r: r.url.startswith("file:") or requests.append(r.url))
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(page_file.as_uri(), wait_until="load")
    names_in_graph = set(
        page.evaluate(
            "() => Array.from(document.querySelectorAll('[data-name]')).map((e) => e.dataset.name)"
        )
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for index, frame in enumerate(expected):
        state = page.evaluate(_STATE)
        assert state["title"] == frame["title"]
        assert state["formula"] == frame["formula"]
        assert state["values"] == "\n".join(frame["values"])
        used = set(frame["reads"]) | set(frame["writes"])
        assert used <= names_in_graph, used - names_in_graph  # every name is a node
        assert sorted(state["active"]) == sorted(used), frame["title"]
        assert sorted(state["written"]) == sorted(frame["writes"])
        assert (state["picture"] > 0) == bool(frame.get("picture")), frame["title"]
        assert state["prev"] == (index == 0)
        assert state["next"] == (index == len(expected) - 1)
        if index in (0, len(expected) // 2):
            page.screenshot(path=str(ARTIFACTS / f"{name}_{index + 1}.png"), full_page=True)
        if index == len(expected) - 1:
            break  # the last frame: next is disabled
        if index % 2:
            page.click("#next")
        else:
            page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowLeft")  # back one frame with the keyboard
    assert page.evaluate(_STATE)["title"] == expected[-2]["title"]
    page.click("#prev")
    assert page.evaluate(_STATE)["title"] == expected[-3]["title"]
    assert errors == [] and requests == []
    page.close()
