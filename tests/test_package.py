"""The package itself: what `import kerawidgets` says when Keras has no backend."""

import os
import subprocess
import sys


def test_import_without_a_backend_says_what_to_install():
    # Keras set to the torch backend, with torch hidden from the import system, fails
    # the way it does on a machine that installed plain `kerawidgets` without a backend.
    env = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "3"}
    code = (
        "import sys\n"
        "class HideTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, HideTorch())\n"
        "import kerawidgets\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: kerawidgets needs a Keras backend")
    assert "kerawidgets[tf]" in last and "KERAS_BACKEND=jax" in last
