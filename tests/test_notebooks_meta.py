"""Fast checks of the notebooks and Binder files (no execution: nbval runs them in CI)."""

import json
import os
import re
import stat
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
EXPECTED = [
    "01_tour.ipynb",
    "02_replace_activation.ipynb",
    "03_replace_layers.ipynb",
    "04_custom_activations.ipynb",
    "05_backbones.ipynb",
    "06_workshop.ipynb",
]


def load(name):
    return json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_every_notebook_is_there():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_outputs_are_cleared(name):
    for cell in code_cells(load(name)):
        if "NBVAL_CHECK_OUTPUT" in source(cell):
            continue  # compared by nbval: keeps its expected output
        assert cell.get("outputs") == [], f"{name}: clear the outputs of\n{source(cell)[:200]}"
        assert cell.get("execution_count") is None, f"{name}: execution counts left in"


@pytest.mark.parametrize("name", EXPECTED)
def test_first_cell_quiets_tensorflow_and_seeds(name):
    nb = load(name)
    first = source(code_cells(nb)[0])
    assert 'os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"' in first
    env_at = first.index("TF_CPP_MIN_LOG_LEVEL")
    assert "import keras" not in first[:env_at], "set the variable before importing keras"
    assert "keras.utils.set_random_seed(0)" in first
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("name", EXPECTED)
def test_offline_and_inline_plots(name):
    text = "\n".join(source(c) for c in code_cells(load(name)))
    assert "MPLBACKEND" not in text, "plots must stay inline"
    assert "keras.datasets" not in text and "get_file" not in text and "http" not in text
    for match in re.finditer(r"keras\.applications\.\w+\(", text):
        assert "weights=None" in call_arguments(text, match.end()), (
            f"{name}: keras.applications needs weights=None")


def call_arguments(text, start):
    """The text between the "(" ending at `start` and its matching ")"."""
    depth = 1
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return text[start:i]
    return text[start:]


def test_workshop_exercises_have_solutions_and_checks():
    cells = code_cells(load("06_workshop.ipynb"))
    marker = "# YOUR CODE HERE — reference solution below, try it yourself first"
    exercises = [i for i, c in enumerate(cells) if marker in source(c)]
    assert len(exercises) >= 4
    for n, i in enumerate(exercises, start=1):
        before, body = source(cells[i]).split(marker)
        assert body.strip(), f"exercise {n} ships without a reference solution"
        # Above the marker only the clearing of the answer, so that a check reads what the
        # cell made this time (not a variable left from an earlier run).
        for line in before.strip().splitlines():
            assert re.fullmatch(r"[\w, ]+ = None(, None)*\s+#.*", line), line
        check = source(cells[i + 1])
        assert check.startswith(f"# Check exercise {n}") and "✅" in check
        assert "run_code_check(" in check  # prints nothing in Voila, where the code is not theirs


def test_binder_files():
    binder = ROOT / "binder"
    assert (binder / "runtime.txt").read_text().strip() == "python-3.11"
    lines = [ln.strip() for ln in (binder / "requirements.txt").read_text().splitlines()]
    pins = dict(ln.split("==") for ln in lines if ln and not ln.startswith("#"))
    for package in ("tensorflow-cpu", "keras", "anywidget", "ipywidgets", "matplotlib", "numpy",
                    "grandalf", "scikit-learn", "jupyterlab", "voila"):
        assert package in pins, f"binder/requirements.txt: pin {package}"
    assert pins["keras"].startswith("3.") and pins["ipywidgets"].startswith("8.")
    assert pins["jupyterlab"].startswith("4.")
    post = binder / "postBuild"
    assert post.stat().st_mode & stat.S_IXUSR, "binder/postBuild must be executable"
    text = post.read_text()
    assert text.startswith("#!/usr/bin/env bash") and "pip install" in text


def test_badge_urls_documented():
    text = (ROOT / "docs" / "notebooks.md").read_text(encoding="utf-8")
    base = "https://mybinder.org/v2/gh/kerawidgets/kerawidgets/HEAD?urlpath="
    assert base + "lab/tree/notebooks/01_tour.ipynb" in text
    assert base + "voila/render/notebooks/06_workshop.ipynb" in text
    for name in EXPECTED:
        assert name in text


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_notebooks_are_valid_nbformat():
    nbformat = pytest.importorskip("nbformat")
    for name in EXPECTED:
        nbformat.validate(nbformat.read(NOTEBOOKS / name, as_version=4))
