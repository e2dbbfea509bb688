"""Binder as Binder users get it: a fresh venv from binder/requirements.txt, then
binder/postBuild, then every notebook under nbval in that venv.

Slow tier (it installs TensorFlow from PyPI into a new venv: minutes). pip's
cache is reused between runs (PIP_CACHE_DIR, or pip's default), so a second run
downloads nothing. Run: ``pytest -m slow tests/test_binder.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
#: What the test itself needs in the Binder venv to run the notebooks (not a Binder dependency).
TEST_TOOLS = ["pytest==9.2.0", "nbval==0.11.0"]


def _python_for_binder() -> str:
    """The interpreter binder/runtime.txt names (python-3.X), else this one."""
    wanted = (BINDER / "runtime.txt").read_text().strip().removeprefix("python-")
    found = shutil.which(f"python{wanted}")
    if found:
        return found
    if f"{sys.version_info.major}.{sys.version_info.minor}" == wanted:
        return sys.executable
    pytest.skip(f"binder/runtime.txt asks for Python {wanted}, which is not installed")


def _clean_env(venv: Path) -> dict:
    """This process's environment without anything pointing into the project's own venv."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "JUPYTER_PATH")}
    env["PATH"] = str(venv / "bin") + os.pathsep + env.get("PATH", "")
    env["VIRTUAL_ENV"] = str(venv)
    env.update(TF_CPP_MIN_LOG_LEVEL="3", MPLBACKEND="agg", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def _run(cmd, env, cwd, log: Path):
    with open(log, "ab") as out:
        out.write(("\n$ " + " ".join(map(str, cmd)) + "\n").encode())
        out.flush()
        done = subprocess.run(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode:
        raise AssertionError(f"{' '.join(map(str, cmd))} exited {done.returncode}:\n"
                             + log.read_text(errors="replace")[-6000:])


def _copy_sources(dest: Path) -> None:
    """The project's tracked files (what Binder clones), without .venv or build output."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)


@pytest.mark.slow
def test_binder_requirements_and_postbuild_run_every_notebook(tmp_path):
    repo, venv, log = tmp_path / "repo", tmp_path / "venv", tmp_path / "binder.log"
    _copy_sources(repo)
    subprocess.run([_python_for_binder(), "-m", "venv", str(venv)], check=True)
    env = _clean_env(venv)
    python = str(venv / "bin" / "python")
    _run([python, "-m", "pip", "install", "-q", "-r", "binder/requirements.txt", *TEST_TOOLS],
         env, repo, log)
    _run(["bash", "binder/postBuild"], env, repo, log)
    # The notebooks run from the installed package, not from the sources beside them.
    where = subprocess.run([python, "-c", "import kerawidgets; print(kerawidgets.__file__)"],
                           env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert str(venv) in where.stdout
    notebooks = sorted((repo / "notebooks").glob("*.ipynb"))
    assert len(notebooks) >= 6
    _run([python, "-m", "pytest", "-p", "no:cacheprovider", "-c", os.devnull,
          "--rootdir", str(repo), "--nbval-lax", "-q", *map(str, notebooks)], env, repo, log)
