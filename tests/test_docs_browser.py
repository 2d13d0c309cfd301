"""The documentation site in a real browser (headless Chromium), with no network.

The site is built with ``mkdocs build --strict`` into a temporary folder and served on
127.0.0.1; Chromium may resolve no other host. On every page, every formula must be typeset
(MathJax ships with the site), no raw LaTeX may be left in the text a reader sees, every picture
must load, and no request may leave the local server. Each page is screenshotted into
``test-artifacts/docs/`` (or ``$HANDPROP_ARTIFACTS/docs/``), kept as the run's artefact.

Needs the documentation tools (requirements-docs.txt), playwright and Debian's chromium
(``apt-get install chromium``); skipped where they are missing, which CI does not allow.
"""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from browser import have_chromium, launch
from test_packaging import INTERNAL_WORDS

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("HANDPROP_ARTIFACTS", ROOT / "test-artifacts")) / "docs"

playwright_api = pytest.importorskip("playwright.sync_api", reason="needs playwright")
pytest.importorskip("mkdocs", reason="needs the documentation tools (requirements-docs.txt)")
if not have_chromium():  # pragma: no cover - CI installs it
    pytest.skip("needs Debian's chromium (apt-get install chromium)", allow_module_level=True)

# Text a reader sees, outside code and typeset math: raw LaTeX here means a formula failed.
_VISIBLE_TEXT = """() => {
  const skip = new Set(["PRE", "CODE", "SCRIPT", "STYLE", "MJX-CONTAINER", "svg", "TEXTAREA"]);
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {
    acceptNode(node) {
      for (let el = node.parentElement; el; el = el.parentElement) {
        if (skip.has(el.tagName)) return NodeFilter.FILTER_REJECT;
        const style = getComputedStyle(el);
        const hidden = style.display === "none" || style.visibility === "hidden";
        if (hidden) return NodeFilter.FILTER_REJECT;
      }
      return NodeFilter.FILTER_ACCEPT;
    },
  });
  let text = "";
  while (walker.nextNode()) text += walker.currentNode.textContent + " ";
  return text;
}"""

# Each formula pymdownx.arithmatex marked, and whether MathJax drew it: an SVG in every copy
# (the navigation repeats headings in menus that are hidden at this width), of non-zero size
# where the formula is on screen.
_FORMULAS = """() => Array.from(document.querySelectorAll(".arithmatex")).map((el) => {
  const svg = el.querySelector("mjx-container svg");
  const shown = el.getClientRects().length > 0;
  const box = svg ? svg.getBoundingClientRect() : null;
  return { latex: el.textContent.slice(0, 80), shown: shown,
           drawn: !!svg && (!shown || (box.width > 0 && box.height > 0)),
           error: !!el.querySelector("mjx-merror, [data-mjx-error]") };
})"""

_IMAGES = """() => Array.from(document.images).map((img) => ({
  src: img.getAttribute("src"), loaded: img.complete && img.naturalWidth > 0 }))"""

_RAW_LATEX = ("\\(", "\\)", "\\[", "\\]", "$$", "\\frac", "\\partial", "\\begin{")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The built site, served on 127.0.0.1; yields (base URL, list of page paths)."""
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    # not --quiet: it hides the warnings that --strict counts, and the build then passes
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, f"mkdocs build --strict failed:\n{built.stderr}"
    pages = sorted(
        p.relative_to(out).parent.as_posix().removeprefix(".")
        for p in out.rglob("index.html")
        if "search" not in p.parts
    )

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(out))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/", pages, out
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        chromium = launch(p, local_server=True)
        yield chromium
        chromium.close()


def _visit(browser, base: str, url: str, screenshot: Path):
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    outside = []
    local = (base, "data:", "blob:", "about:")
    page.on("request", lambda r: r.url.startswith(local) or outside.append(r.url))
    failed = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.goto(url, wait_until="load")
    page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
    page.evaluate("() => MathJax.startup.promise")
    found = {
        "text": page.evaluate(_VISIBLE_TEXT),
        "all_text": page.evaluate("() => document.body.innerText"),
        "formulas": page.evaluate(_FORMULAS),
        "images": page.evaluate(_IMAGES),
        "outside": outside,
        "failed": failed,
    }
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot), full_page=True)
    page.close()
    return found


def _pages() -> list[str]:
    """The site's page paths, from docs/'s Markdown files as MkDocs names them ("" the home
    page, "layers/linear" for docs/layers/linear.md): one test per page, so that the pages are
    shared among the test workers."""
    docs = ROOT / "docs"
    paths = []
    for md in docs.rglob("*.md"):
        path = md.relative_to(docs).with_suffix("").as_posix()
        paths.append(path.removesuffix("index").rstrip("/"))
    return sorted(paths)


PAGES = _pages()


def test_every_built_page_is_visited_and_the_site_has_math(site):
    _, pages, out = site
    assert {"", "worked_example", "optimizers", "checking", "layers/linear"} <= set(pages)
    assert pages == PAGES
    # the site has math to render: a check that finds no formula would prove nothing
    built = sum(
        p.read_text(encoding="utf-8").count('class="arithmatex"') for p in out.rglob("*.html")
    )
    assert built > 200


@pytest.mark.parametrize("path", PAGES, ids=[p or "home" for p in PAGES])
def test_the_page_renders_its_math_offline(site, browser, path):
    base, _, out = site
    name = path.replace("/", "_") or "home"
    url = base + path + ("/" if path else "")
    screenshot = ARTIFACTS / f"{name}.png"
    screenshot.unlink(missing_ok=True)
    found = _visit(browser, base, url, screenshot)
    problems = []
    built = (out / path / "index.html").read_text(encoding="utf-8").count('class="arithmatex"')
    if len(found["formulas"]) != built:
        problems.append(f"{built} formulas built, {len(found['formulas'])} seen")
    internal = INTERNAL_WORDS.search(found["all_text"])
    if internal:
        problems.append(f"words of the team's work: {internal.group(0)!r}")
    left = [raw for raw in _RAW_LATEX if raw in found["text"]]
    if left:
        problems.append(f"raw LaTeX {left} in the visible text")
    for formula in found["formulas"]:
        if not formula["drawn"] or formula["error"]:
            problems.append(f"formula not typeset: {formula['latex']!r}")
    for image in found["images"]:
        if not image["loaded"]:
            problems.append(f"picture not loaded: {image['src']}")
    problems += [f"request left the site: {u}" for u in found["outside"]]
    problems += [f"request failed: {u}" for u in found["failed"]]
    assert not problems, f"{path or '/'}:\n" + "\n".join(problems)
    assert screenshot.exists()
