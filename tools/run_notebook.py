"""Run examples/worked_example.ipynb from top to bottom and store it with its outputs.

    .venv/bin/python tools/run_notebook.py

The notebook is committed with its outputs, so that it reads on any viewer (GitHub, nbviewer)
without being run. ``tests/test_notebook.py`` runs it again and fails when a stored output is no
longer what the notebook prints (numbers compared to float32 rounding). Run this after changing
the notebook or anything it prints, and commit the result.
"""

from __future__ import annotations

from pathlib import Path

import nbclient
import nbformat

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "worked_example.ipynb"


def execute(path: Path = NOTEBOOK):
    """The notebook at ``path``, run in a fresh python3 kernel, with only what a reader needs:
    outputs and execution counts, no timings, no interpreter version."""
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    nb.metadata["language_info"] = {"name": "python"}
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    return nb


def main() -> None:
    nbformat.write(execute(), NOTEBOOK)
    print(f"ran and stored {NOTEBOOK.relative_to(NOTEBOOK.parent.parent)} with its outputs")


if __name__ == "__main__":
    main()
