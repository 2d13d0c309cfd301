"""MkDocs hook: formulas in the table of contents are typeset like those in the page.

pymdownx.arithmatex wraps each formula of a page in ``<span class="arithmatex">``, which the
site's MathJax (shipped with the site, docs/javascripts/mathjax/) typesets. A heading's formula
reaches the table of contents as bare text, ``\\(\\partial J / \\partial W\\)``, outside any
such span, and would show as raw LaTeX there; this hook wraps it the same way.
"""

from __future__ import annotations

import re

_INLINE = re.compile(r"\\\(.*?\\\)", re.DOTALL)


def _wrap(items) -> None:
    for item in items:
        item.title = _INLINE.sub(_span, item.title)
        _wrap(item.children)


def _span(formula: re.Match) -> str:
    return f'<span class="arithmatex">{formula.group(0)}</span>'


def on_page_content(html, page, config, files):  # MkDocs' hook signature
    _wrap(page.toc)
    return html
