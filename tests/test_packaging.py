"""Packaging promises: importing handprop does not import torch; the README's commands and
example are the ones CI runs and they work."""

import contextlib
import io
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_importing_handprop_does_not_import_torch():
    code = "import sys, handprop, handprop.layers, handprop.losses; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_torch_is_not_a_runtime_dependency():
    pyproject = (ROOT / "pyproject.toml").read_text()
    deps = re.search(r"^dependencies = \[(.*?)\]", pyproject, re.M | re.S).group(1)
    assert "torch" not in deps and "numpy" in deps
    assert "torch==2.13.0" in (ROOT / "requirements-test.txt").read_text()


def bash_blocks():
    return re.findall(r"```bash\n(.*?)\n```", README, re.S)


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    blocks = bash_blocks()
    assert len(blocks) == 2 and all("\n" not in b for b in blocks)
    example_cmd, test_cmd = blocks
    assert "examples/worked_example.py" in example_cmd
    assert "pytest" in test_cmd
    ci_text = (ROOT / ".ci" / "run").read_text()
    assert test_cmd in ci_text.splitlines()
    assert f'(cd "$fresh" && {example_cmd} > /dev/null)' in ci_text  # in a fresh clone
    for cmd in (example_cmd, test_cmd):  # PEP 668: never pip into the system Python
        assert cmd.startswith("python3 -m venv .venv && .venv/bin/python -m pip install")


def test_readme_python_example_runs_and_prints_what_it_says():
    code = re.search(r"```python\n(.*?)\n```", README, re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    printed = re.search(r"print\(.*\)\s+# (.*)", code).group(1)
    assert out.getvalue().split() == printed.split()


def test_worked_example_script_runs():
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "worked_example.py")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "handprop  J = 0.1952" in out.stdout
    assert "handprop  dJ/dW3 = [[-1.022, -0.9253]]" in out.stdout


def test_training_examples_run_and_plot(tmp_path):
    import pytest

    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    for script in ("train_digits.py", "train_breast_cancer.py"):
        png = tmp_path / f"{script}.png"
        out = subprocess.run(
            [sys.executable, str(ROOT / "examples" / script), "--epochs", "3", "--plot", str(png)],
            capture_output=True,
            text=True,
            check=True,
            cwd=tmp_path,
        )
        lines = [line for line in out.stdout.splitlines() if line.startswith("epoch")]
        assert len(lines) == 3
        losses = [float(line.split("loss")[1].split()[0]) for line in lines]
        assert losses[-1] < losses[0]  # the loss falls
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_interop_without_torch_says_what_to_install():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import handprop.interop as i\n"
        "try:\n    i.to_torch(None)\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert (
        "handprop.interop needs PyTorch, which is not installed: pip install 'handprop[torch]'"
        in out.stdout
    )


# Words of the team's work, which mean nothing to a user: tests/test_docs_browser.py also looks
# for them in the text of every built page.
INTERNAL_WORDS = re.compile(
    r"\bissues? \d|\(issue|this project's machine|CI machine|our machines", re.I
)


def test_user_facing_text_speaks_only_of_the_library_and_its_users():
    """README, docs pages, examples, the notebook, the CLI's help and the package's own text
    (docstrings, messages) carry no words of the team's work: issue numbers, 'this project's
    machines', CI machines."""
    files = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "examples").glob("*.py")]
    files += [
        ROOT / "examples" / "worked_example.ipynb",
        *(ROOT / "src" / "handprop").rglob("*.py"),
    ]
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if INTERNAL_WORDS.search(line)
    ]
    for args in (["--help"], ["walkthrough", "--help"]):
        shown = subprocess.run(
            [sys.executable, "-m", "handprop", *args], capture_output=True, text=True, check=True
        ).stdout
        found += [
            f"handprop {' '.join(args)}: {line}"
            for line in shown.splitlines()
            if INTERNAL_WORDS.search(line)
        ]
    assert not found, "\n".join(found)
    assert INTERNAL_WORDS.search("see issue 6") and INTERNAL_WORDS.search(
        "on this project's machines"
    )


def test_the_notebook_extra_installs_jupyter():
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    names = {re.split(r"[<>=\[ ]", req)[0] for req in extras["notebook"]}
    assert {"notebook", "ipykernel"} <= names  # `jupyter notebook` and the python3 kernel
    assert "'.[notebook]'" in (ROOT / "README.md").read_text()
