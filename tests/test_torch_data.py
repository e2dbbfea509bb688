"""A torch DataLoader given to evaluate, sweep(data=) and recover on the torch backend.

The backend is fixed when Keras is imported, so `tests/torch_data_check.py`
runs in a process of its own with ``KERAS_BACKEND=torch``.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("torch_data_check.py")
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # a process of its own: torch, keras and kerawidgets imported again
def test_a_torch_dataloader_evaluates_sweeps_and_fine_tunes_like_arrays():
    pytest.importorskip("torch")
    env = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "3",
           "MPLBACKEND": "agg",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True,
                          text=True, timeout=900, cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith(("ok", "FAILED", "all"))]
    assert done.returncode == 0, "\n".join(lines) + "\n" + done.stderr[-3000:]
    assert lines[-1] == "all torch data checks passed"
    assert sum(line.startswith("ok: sweep(data=DataLoader) row") for line in lines) == 2
