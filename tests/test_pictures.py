"""The documentation's pictures and the worked-example page are current.

``tools/make_pictures.py`` draws every picture in docs/img/ from handprop's own computation and
writes docs/worked_example.md. These tests redraw them and compare with what is committed:
the page exactly, the pictures number by number to 0.25 px, because training curves in float32
differ in their last bits from one CPU's BLAS to another's.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import make_pictures  # noqa: E402

pytest.importorskip("sklearn", reason="the training curves run examples that need scikit-learn")

NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
STALE = "is stale: run `.venv/bin/python tools/make_pictures.py` and commit the result"


def same_up_to_rounding(a: str, b: str, tol: float = 0.25) -> bool:
    """True when ``a`` and ``b`` have the same text and the same numbers, within ``tol``."""
    if NUMBER.split(a) != NUMBER.split(b):
        return False
    numbers = zip(NUMBER.findall(a), NUMBER.findall(b), strict=True)  # same split: same count
    return all(abs(float(x) - float(y)) <= tol for x, y in numbers)


def test_the_comparison_sees_a_changed_word_and_a_moved_point():
    svg = '<polyline points="10.0,20.5 30.0,40.0"/><text>loss</text>'
    assert same_up_to_rounding(svg, svg.replace("20.5", "20.6"))
    assert not same_up_to_rounding(svg, svg.replace("20.5", "21.5"))
    assert not same_up_to_rounding(svg, svg.replace("loss", "cost"))
    assert not same_up_to_rounding(svg, svg.replace(" 30.0,40.0", ""))


@pytest.fixture(scope="module")
def pictures():
    return make_pictures.pictures()


def test_every_picture_is_current(pictures):
    committed = {p.name for p in (ROOT / "docs" / "img").glob("*.svg")}
    assert committed == set(pictures), f"docs/img/ {STALE}"
    for name, svg in pictures.items():
        text = (ROOT / "docs" / "img" / name).read_text(encoding="utf-8")
        assert same_up_to_rounding(text, svg), f"docs/img/{name} {STALE}"


def test_the_worked_example_page_is_current():
    text = (ROOT / "docs" / "worked_example.md").read_text(encoding="utf-8")
    assert text == make_pictures.worked_example_page(), f"docs/worked_example.md {STALE}"


def test_every_picture_is_shown_somewhere(pictures):
    pages = [p.read_text(encoding="utf-8") for p in (ROOT / "docs").rglob("*.md")]
    pages.append((ROOT / "README.md").read_text(encoding="utf-8"))
    for name in pictures:
        assert any(f"img/{name}" in page for page in pages), f"docs/img/{name} is on no page"


def test_the_activation_pictures_plot_what_backward_returns(pictures):
    """ReLU's derivative line: 0 left of the kink, 1 right of it, and the dot at x = 0 is at 0
    (torch's ReLU'(0)); LeakyReLU's dot sits at its left slope."""
    relu = pictures["relu.svg"]
    dots = re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)"', relu)
    assert len(dots) == 1
    zero_line = re.search(r'<text x="[\d.]+" y="([\d.]+)" text-anchor="end">0</text>', relu)
    assert abs(float(dots[0][1]) - (float(zero_line.group(1)) - 4)) < 0.2
