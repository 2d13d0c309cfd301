"""examples/worked_example.ipynb: stored with its outputs, and they are what it prints today.

``tools/run_notebook.py`` runs the notebook and stores it with its outputs, so it reads on any
viewer. This test runs it again: no cell may fail, and every stored output must equal the new
one, word for word, with numbers equal to float32 rounding (the last bits of a float32 matrix
product depend on the CPU's BLAS).
"""

import json
import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "worked_example.ipynb"
sys.path.insert(0, str(ROOT / "tools"))
import run_notebook  # noqa: E402

NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
STALE = "examples/worked_example.ipynb is stale: run `.venv/bin/python tools/run_notebook.py`"


def _outputs(nb) -> list[str]:
    """Each code cell's outputs as one text: streams, results, pictures, errors."""
    texts = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            texts.append(json.dumps([_output(out) for out in cell.outputs], sort_keys=True))
    return texts


def _output(out) -> dict:
    return {k: out.get(k) for k in ("output_type", "name", "text", "data", "ename")}


def same_to_float32_rounding(stored: str, new: str) -> bool:
    """Same words; numbers equal to 1e-6 relative or 1e-7 absolute."""
    if NUMBER.split(stored) != NUMBER.split(new):
        return False
    numbers = zip(NUMBER.findall(stored), NUMBER.findall(new), strict=True)
    return all(abs(float(a) - float(b)) <= 1e-7 + 1e-6 * abs(float(b)) for a, b in numbers)


def test_the_comparison_tells_rounding_from_change():
    text = "cost J = 0.1952289193868637, max difference 6.0e-08"
    assert same_to_float32_rounding(text, text.replace("0.1952289193868637", "0.19522892"))
    assert same_to_float32_rounding(text, text.replace("6.0e-08", "1.2e-07"))
    assert not same_to_float32_rounding(text, text.replace("0.1952289", "0.1953289"))
    assert not same_to_float32_rounding(text, text.replace("cost J", "cost L"))


def test_the_notebook_is_stored_with_its_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs and cell.execution_count for cell in code)
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))


@pytest.mark.torch  # the notebook shows handprop's parity report against torch
def test_the_notebook_runs_and_its_stored_outputs_are_current():
    stored = _outputs(nbformat.read(NOTEBOOK, as_version=4))
    new = _outputs(run_notebook.execute(NOTEBOOK))
    assert len(stored) == len(new), STALE
    for i, (a, b) in enumerate(zip(stored, new, strict=True)):
        assert same_to_float32_rounding(a, b), f"code cell {i + 1}: {STALE}"
    text = "\n".join(new)
    assert '"output_type": "error"' not in text
    assert "cost J = 0.19522" in text
    assert "[[0.0456, -0.0273], [-0.1277, 0.0766]]" in text  # the chain rule's step 4
    assert "gradcheck: passed" in text and "Z2[0, 0] = 0" in text
    assert "all tensors match" in text  # torch is installed where this runs in CI
    assert "<svg" in text and "parameter" in text  # the graph, the model's parameter table
