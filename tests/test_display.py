"""Notebook display: models with parameter counts, Trace / gradcheck / parity report as
Markdown tables with LaTeX; plain repr stays a readable terminal text."""

import numpy as np
import pytest

import handprop
from handprop import worked_example as we


def test_model_html_has_its_parameter_counts_and_repr_is_unchanged():
    model = we.model()
    html = model._repr_html_()
    row = "<code>0.weight</code></td><td>(3, 2)</td><td>float32</td>"
    assert row + "<td style='text-align:right'>6</td>" in html
    assert "<th>total</th><th></th><th></th><th style='text-align:right'>20</th>" in html
    assert repr(model).startswith("Sequential(\n  (0): Linear(in_features=2")
    assert "<" not in repr(model)


def test_trace_markdown_is_a_table_with_latex():
    X, y = we.data()
    md = handprop.trace(we.model(), we.loss_fn(), X, y)._repr_markdown_()
    assert "| name | shape | value |" in md
    assert r"| `Z1` | (2, 3) | $\begin{bmatrix} 4 & 2 & -7.8 \\ 6 & 9 & -16 \end{bmatrix}$ |" in md
    assert "| `dJ/dW3` | (1, 2) |" in md


def test_gradcheck_markdown_names_the_kink():
    X, y = we.data()
    md = handprop.gradcheck(we.model(), we.loss_fn(), X, y)._repr_markdown_()
    assert md.startswith("**gradcheck: passed**") and r"$|a - n| \le" in md
    assert "| `2.bias` | (2,) |" in md and "Z2[0, 0] = 0" in md


def test_parity_markdown_marks_the_first_divergence():
    pytest.importorskip("torch")
    from test_interop import KinkBlindReLU

    from handprop import Sequential
    from handprop.interop import parity_report

    X, y = we.data(np.float64)
    good = parity_report(we.model(np.float64), we.loss_fn(), X, y)._repr_markdown_()
    assert "all tensors match" in good and "**FAIL**" not in good
    model = Sequential(
        *[KinkBlindReLU() if i == 3 else m for i, m in enumerate(we.model(np.float64))]
    )
    bad = parity_report(model, we.loss_fn(), X, y)._repr_markdown_()
    assert "first divergence at `dJ/dZ2`" in bad
    assert "| **`dJ/dZ2`** ← first divergence | (2, 2) |" in bad and "**FAIL**" in bad
