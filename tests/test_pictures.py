"""The documentation's pictures and the worked-example page are current.

``tools/make_pictures.py`` draws every picture in docs/img/ from handprop's own computation and
writes docs/worked_example.md. These tests redraw them and compare with what is committed:
the page exactly, the pictures by what they show (``same_picture``), because a training in
float32 rounds differently on each CPU's BLAS kernels (OpenBLAS picks AVX-512 ones where the CPU
has them) and its curves and learned filters come out a little different: a picture is current
when it shows the same thing, not when its pixels are equal.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import make_pictures  # noqa: E402

pytest.importorskip("sklearn", reason="the training curves run examples that need scikit-learn")

NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
ELEMENT = re.compile(r"<[^>]*>|[^<]+")
POLYLINE = re.compile(r'^<polyline points="([^"]*)"')
COLOUR = re.compile(r"rgb\(\d+,\d+,\d+\)")
STALE = "is stale: run `.venv/bin/python tools/make_pictures.py` and commit the result"
#: What the eye cannot tell apart at these pictures' size: a curve within 1 px of the other
#: everywhere, a grey or colour level within 3 of 255 (about 1%), any other position or size
#: within 0.25 px (they come from fixed layouts, not from training, so they never move).
CURVE_PX, LEVELS, PX = 1.0, 3, 0.25


def same_picture(a: str, b: str) -> bool:
    """True when SVG pictures ``a`` and ``b`` show the same thing: the same elements with the
    same words, each curve drawn within ``CURVE_PX`` of the other, each colour within
    ``LEVELS``, every other number within ``PX``."""
    elements_a, elements_b = ELEMENT.findall(a), ELEMENT.findall(b)
    if len(elements_a) != len(elements_b):
        return False
    return all(map(_same_element, elements_a, elements_b))


def _same_element(a: str, b: str) -> bool:
    if NUMBER.split(a) != NUMBER.split(b):  # other words, tags or number of numbers
        return False
    curve_a, curve_b = POLYLINE.match(a), POLYLINE.match(b)
    if curve_a and curve_b:
        if not _same_curve(_points(curve_a[1]), _points(curve_b[1])):
            return False
        a, b = a[curve_a.end() :], b[curve_b.end() :]
    for colour_a, colour_b in zip(COLOUR.findall(a), COLOUR.findall(b), strict=True):
        if not np.all(np.abs(_numbers(colour_a) - _numbers(colour_b)) <= LEVELS):
            return False
    a, b = COLOUR.sub("", a), COLOUR.sub("", b)
    return bool(np.all(np.abs(_numbers(a) - _numbers(b)) <= PX))


def _numbers(text: str) -> np.ndarray:
    return np.array([float(x) for x in NUMBER.findall(text)])


def _points(text: str) -> np.ndarray:
    return _numbers(text).reshape(-1, 2)


def _same_curve(p: np.ndarray, q: np.ndarray) -> bool:
    """Every point of each curve lies within CURVE_PX of the other curve as drawn (its line
    segments): on a steep stretch a point may move along the line without the picture
    changing, while a flat stretch moved by more than that is seen."""
    return bool(_distance_to(p, q).max() <= CURVE_PX and _distance_to(q, p).max() <= CURVE_PX)


def _distance_to(points: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """Each point's distance to the nearest segment of ``curve``."""
    if len(curve) == 1:
        return np.hypot(*(points - curve[0]).T)
    start, end = curve[:-1], curve[1:]
    along = end - start  # (segments, 2)
    length2 = np.maximum((along**2).sum(axis=1), 1e-12)
    offset = points[:, None, :] - start[None]  # (points, segments, 2)
    t = np.clip((offset * along).sum(axis=2) / length2, 0, 1)
    nearest = start[None] + t[..., None] * along[None]
    return np.hypot(*(points[:, None, :] - nearest).transpose(2, 0, 1)).min(axis=1)


def test_the_comparison_sees_a_changed_word_a_moved_curve_and_a_darker_cell():
    svg = (
        '<polyline points="10.0,20.5 30.0,40.0 32.0,100.0 50.0,100.0"/><text>loss</text>'
        '<rect x="3" y="4" fill="rgb(200,200,200)"/>'
    )
    assert same_picture(svg, svg.replace("20.5", "20.6"))
    assert same_picture(svg, svg.replace("40.0 32.0", "40.0 32.1"))  # along a steep stretch
    assert same_picture(svg, svg.replace("rgb(200,200,200)", "rgb(199,199,199)"))
    assert not same_picture(svg, svg.replace("20.5", "23.5"))
    assert not same_picture(svg, svg.replace("50.0,100.0", "50.0,102.0"))  # a flat end moved
    assert not same_picture(svg, svg.replace("loss", "cost"))
    assert not same_picture(svg, svg.replace(" 30.0,40.0", ""))
    assert not same_picture(svg, svg.replace("rgb(200,200,200)", "rgb(190,190,190)"))
    assert not same_picture(svg, svg.replace('x="3"', 'x="4"'))
    assert not same_picture(svg, svg + "<text>more</text>")


@pytest.fixture(scope="module")
def pictures():
    return make_pictures.pictures()


def test_every_picture_is_current(pictures):
    committed = {p.name for p in (ROOT / "docs" / "img").glob("*.svg")}
    assert committed == set(pictures), f"docs/img/ {STALE}"
    for name, svg in pictures.items():
        text = (ROOT / "docs" / "img" / name).read_text(encoding="utf-8")
        assert same_picture(text, svg), f"docs/img/{name} {STALE}"


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


def test_the_recurrent_page_quotes_what_its_picture_measured():
    """docs/layers/recurrent.md: a tanh RNN's gradient shrinks about 1.8 times a step; after 39
    steps back an LSTM keeps about 1e-9 of it, and 1e-4 with its forget gate started open."""
    rnn = make_pictures._gradient_through_time("RNN")
    assert 1.7 < (1 / rnn[0]) ** (1 / 39) < 1.9
    assert 1e-10 < make_pictures._gradient_through_time("LSTM")[0] < 1e-8
    assert 1e-5 < make_pictures._gradient_through_time("LSTM", forget_bias=1.0)[0] < 1e-3
