"""The layout docs/architecture.md shows is the code's: every source file is on the page, and
the imports go the way the page says (no circle between the optimizers and the schedules; the
trust tools never import the teaching tools)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "handprop"
PAGE = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")


def _sources() -> list[str]:
    return sorted(
        p.relative_to(SRC).as_posix()
        for p in SRC.rglob("*.py")
        if "templates" not in p.parts  # the exercises' starting files: one line for all
    )


@pytest.mark.parametrize("path", _sources())
def test_every_source_file_is_on_the_architecture_page(path):
    assert f"`{path}`" in PAGE, f"{path} is not on docs/architecture.md"
    assert "`exercises/templates/*.py`" in PAGE


def _imports(path: str) -> set[str]:
    """The handprop modules that ``path`` imports, as dotted names relative to the package
    (``layers``, ``explain.naming``, ...), at any depth of the file (lazy imports too)."""
    tree = ast.parse((SRC / path).read_text(encoding="utf-8"))
    package = Path(path).parent.parts
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - (node.level - 1)])
                module = ".".join([*base, *(node.module.split(".") if node.module else [])])
                names = [module] if node.module else [".".join([*base, a.name]) for a in node.names]
                found.update(n for n in names if n)
            elif node.module and node.module.startswith("handprop"):
                found.add(node.module.removeprefix("handprop").lstrip("."))
        elif isinstance(node, ast.Import):
            found.update(
                a.name.removeprefix("handprop").lstrip(".")
                for a in node.names
                if a.name.startswith("handprop.")
            )
    return found


@pytest.mark.parametrize("path", ["_gradcheck.py", "interop.py", "serialization.py"])
def test_the_trust_tools_do_not_import_the_teaching_tools(path):
    teaching = {m for m in _imports(path) if m.startswith(("explain", "exercises"))}
    assert not teaching, f"{path} imports {sorted(teaching)}"


def test_the_schedules_import_only_the_optimizer_base_class():
    assert {m for m in _imports("optim/lr_scheduler.py") if m.startswith("optim")} == {
        "optim.optimizer"
    }
    assert "optim" not in _imports("optim/optimizer.py")
    assert not {m for m in _imports("optim/_foreach.py") if m.startswith("optim")}


def test_the_import_reader_sees_relative_and_lazy_imports():
    """_imports itself: the test above would pass vacuously if it saw nothing."""
    assert "optim.optimizer" in _imports("optim/lr_scheduler.py")
    assert "naming" in _imports("interop.py") and "layers" in _imports("interop.py")
    assert "explain.diagnose" in _imports("__init__.py")
