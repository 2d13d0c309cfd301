"""examples/worked_example.ipynb: stored without outputs, and it runs from top to bottom."""

import json
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "worked_example.ipynb"


def test_the_notebook_is_stored_without_outputs():
    for cell in json.loads(NOTEBOOK.read_text())["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


@pytest.mark.torch  # the notebook shows handprop's parity report against torch
def test_the_notebook_runs_and_shows_the_worked_example():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()
    outputs = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", out
            outputs.append(out.get("text", "") + json.dumps(out.get("data", {})))
    text = "\n".join(outputs)
    assert "cost J = 0.19522" in text
    assert "[[0.0456, -0.0273], [-0.1277, 0.0766]]" in text  # the chain rule's step 4
    assert "gradcheck: passed" in text and "Z2[0, 0] = 0" in text
    assert "all tensors match" in text  # torch is installed where this runs in CI
    assert "<svg" in text and "parameter" in text  # the graph, the model's parameter table
