"""Data parallelism on 4 simulated CPU devices: rebuild, evaluate and recover under Keras' own
distribution (jax `DataParallel`) and strategy (tensorflow `MirroredStrategy`).

The device count must be set before the backend starts, so each backend runs
`tests/distributed_check.py` in a process of its own; its checks (variable
layouts like the original's, evaluate equal to single-device, fine-tuning
data-parallel ending at the single-device weights) are printed one per line.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("distributed_check.py")
ROOT = Path(__file__).resolve().parents[1]


def run_check(backend, extra_env):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           **extra_env}
    done = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True,
                          text=True, timeout=900, cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith(("ok", "FAILED", "all"))]
    assert done.returncode == 0, "\n".join(lines) + "\n" + done.stderr[-3000:]
    return lines


@pytest.mark.slow
def test_jax_data_parallel_on_four_cpu_devices():
    pytest.importorskip("jax")
    lines = run_check("jax", {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"})
    assert lines[-1] == "all distribution checks passed"
    assert any(line.startswith("ok: layout of hidden/kernel") for line in lines)
    assert any("fine-tune data-parallel" in line for line in lines)


@pytest.mark.slow
def test_tensorflow_mirrored_strategy_on_four_logical_cpus():
    lines = run_check("tensorflow", {})
    assert lines[-1] == "all distribution checks passed"
    assert any("an editor's rebuild outside the scope" in line for line in lines)
    assert any("a model rebuilt by undo is mirrored" in line for line in lines)
