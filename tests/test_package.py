"""The package itself: what `import kerawidgets` says when Keras has no backend."""

import importlib.util
import os
import subprocess
import sys

import pytest


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="torch is installed")
def test_import_without_a_backend_says_what_to_install():
    # Keras set to a backend that is not installed here (torch) fails the way it does
    # on a machine that installed plain `kerawidgets` without TensorFlow.
    env = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", "import kerawidgets"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: kerawidgets needs a Keras backend")
    assert "kerawidgets[tf]" in last and "KERAS_BACKEND=jax" in last
