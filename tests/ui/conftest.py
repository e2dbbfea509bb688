"""Real-browser fixtures: a JupyterLab started by the tests and Debian's Chromium.

Reusable by every browser test (GraphView, ModelEditor, ...):

- ``lab``: a session-wide JupyterLab on 127.0.0.1 (free port, no token, no
  password, a temp root dir, the kernel is this interpreter). ``lab.url`` is
  the base URL, ``lab.root`` the root directory.
- ``browser``: Playwright's Chromium from ``/usr/bin/chromium``, headless.
- ``notebook_page``: ``nb = notebook_page(["code cell", ...], name="x.ipynb")``
  writes the notebook into ``lab.root``, opens it in a fresh page and runs
  every cell. ``nb.page`` is the Playwright page; ``nb.run_cell(code)`` adds a
  cell, runs it and returns its text output; ``nb.eval(expr)`` (``nb.kernel_eval``)
  returns the JSON value of an expression, asked of the kernel directly; ``nb.screenshot(name)`` saves
  ``test-artifacts/<name>.png``; ``nb.dialogs`` lists every alert/confirm
  the page tried to show (they are dismissed).

    def test_it(notebook_page):
        nb = notebook_page(["x = 1 + 1"])
        assert nb.eval("x") == 2
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
KERNEL_TIMEOUT_MS = 180_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A running JupyterLab server: `url` (ends with "/") and `root` (a Path)."""

    def __init__(self, url: str, root: Path, process: subprocess.Popen, log: Path):
        self.url = url
        self.root = root
        self.process = process
        self.log = log

    def write_notebook(self, cells, name: str | None = None) -> str:
        """Write a notebook of code cells into the root dir; returns its file name."""
        name = name or f"nb_{uuid.uuid4().hex[:8]}.ipynb"
        notebook = {
            "cells": [
                {"cell_type": "code", "execution_count": None, "id": uuid.uuid4().hex[:8],
                 "metadata": {}, "outputs": [], "source": source}
                for source in cells
            ],
            "metadata": {
                "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                               "name": "python3"},
                "language_info": {"name": "python"},
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        (self.root / name).write_text(json.dumps(notebook), encoding="utf-8")
        return name


@contextlib.contextmanager
def start_lab(root: Path, home: Path, app: str = "jupyterlab"):
    """Run JupyterLab (or `app="notebook"`: Notebook 7) on 127.0.0.1 serving `root`.

    Free port, no token or password; yields a `Lab`. `home` holds its config,
    runtime, settings and workspaces, so the user's own Jupyter set-up is
    never read or changed. Also used by the benchmarks.
    """
    root, home = Path(root), Path(home)
    port = _free_port()
    env = server_env(home)
    # No news/update pop-ups in the screenshots.
    overrides = home / "settings" / "@jupyterlab" / "apputils-extension"
    overrides.mkdir(parents=True, exist_ok=True)
    (overrides / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    log = home / f"{app}.log"
    cmd = [
        sys.executable, "-m", app,
        "--no-browser",
        "--ServerApp.open_browser=False",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        "--ServerApp.disable_check_xsrf=True",
        f"--ServerApp.root_dir={root}",
        "--MappingKernelManager.cull_idle_timeout=0",
    ]
    if app == "jupyterlab":
        cmd += ["--LabApp.news_url=None",
                "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: kernel_eval
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    url = f"http://127.0.0.1:{port}/"
    with serve(cmd, env, root, url + "api/status", log) as process:
        yield Lab(url, root, process, log)


def server_env(home: Path) -> dict:
    """Environment for a Jupyter server of the tests: own config dirs, quiet TF, this venv."""
    env = dict(os.environ)
    env.update(
        TF_CPP_MIN_LOG_LEVEL="3",
        MPLBACKEND="agg",
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
        PATH=str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
        PYTHONPATH=str(Path(__file__).resolve().parents[2]) + os.pathsep
        + env.get("PYTHONPATH", ""),
    )
    return env


@contextlib.contextmanager
def serve(cmd, env, cwd, ready_url, log: Path, timeout: float = 90):
    """Run a server process until `ready_url` answers 200; stop it afterwards."""
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
    try:
        deadline = time.time() + timeout
        while True:
            try:
                with urllib.request.urlopen(ready_url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"{' '.join(map(str, cmd[:3]))} did not start:\n"
                                   + log.read_text()[-3000:])
            # Between two asks: wait on the process itself (a server that dies ends it).
            try:
                process.wait(timeout=0.3)
            except subprocess.TimeoutExpired:
                continue
            raise RuntimeError(f"{' '.join(map(str, cmd[:3]))} exited {process.returncode}:\n"
                               + log.read_text()[-3000:])
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@contextlib.contextmanager
def launch_chromium():
    """Playwright's Chromium from /usr/bin/chromium (headless), as a context manager."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """A JupyterLab for the test session: `lab.url`, `lab.root`, `lab.write_notebook`."""
    with start_lab(tmp_path_factory.mktemp("lab_root"), tmp_path_factory.mktemp("lab_home")) as lab:
        yield lab


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (headless)."""
    with launch_chromium() as instance:
        yield instance


class Notebook:
    """An open notebook page with helpers to run code and read the kernel's answers."""

    def __init__(self, lab: Lab, page, name: str):
        self.lab = lab
        self.page = page
        self.name = name
        self.dialogs: list[str] = []
        page.on("dialog", self._on_dialog)

    def _on_dialog(self, dialog):
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        with contextlib.suppress(Exception):
            dialog.dismiss()

    # --- kernel state -----------------------------------------------------

    def wait_idle(self, timeout: float = KERNEL_TIMEOUT_MS) -> None:
        """Wait until the kernel has finished running every queued cell."""
        page = self.page
        page.wait_for_function(_KERNEL_IDLE_JS, timeout=timeout)
        page.wait_for_function(
            "() => ![...document.querySelectorAll('.jp-InputArea-prompt')]"
            ".some(e => e.textContent.includes('[*]'))",
            timeout=timeout,
        )

    def cells(self):
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell")

    def run_all(self) -> None:
        """Run every cell (Run menu > Run All Cells) and wait for the kernel."""
        page = self.page
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        # Run All sends every cell's execute request at once; a request sent after them
        # is answered once they have all run (the kernel runs its queue in order).
        self.kernel_eval("None")
        self.wait_idle()

    def run_cell(self, code: str, timeout: float = KERNEL_TIMEOUT_MS) -> str:
        """Append a code cell, run it, return the text of its output."""
        page = self.page
        before = self.cells().count()
        page.evaluate("() => document.activeElement && document.activeElement.blur()")
        self.cells().nth(before - 1).locator(".jp-InputArea-prompt").click()
        page.keyboard.press("Escape")
        page.keyboard.press("b")
        self.cells().nth(before).wait_for()
        cell = self.cells().nth(before)
        cell.locator(".cm-content").click()
        page.keyboard.insert_text(code)
        page.keyboard.press("Shift+Enter")
        # A new cell has no execution count until it has run: wait for one.
        page.wait_for_function(
            "(i) => { const c = document.querySelectorAll("
            "'.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell')[i];"
            " if (!c) return false; const p = c.querySelector('.jp-InputArea-prompt');"
            " return p && /\\[\\d+\\]/.test(p.textContent); }",
            arg=before, timeout=timeout,
        )
        outputs = cell.locator(".jp-OutputArea-output")
        return "\n".join(outputs.nth(i).inner_text() for i in range(outputs.count()))

    def eval(self, expression: str):
        """The JSON value of a Python expression evaluated in the kernel (`kernel_eval`).

        Asked of the kernel, not read from an output cell: JupyterLab 4 renders only the
        cells in view, so a cell's output may not be in the page at all.
        """
        return self.kernel_eval(expression)

    def kernel_eval(self, expression: str, timeout: float = KERNEL_TIMEOUT_MS):
        """The JSON value of `expression`, asked of the notebook's kernel directly.

        Unlike `eval`, it adds no cell: JupyterLab's own kernel connection
        (`sessionContext.session.kernel.requestExecute`) runs it silently, after
        every message the page sent before (widget clicks included), so the
        answer reflects them. Needs JupyterLab started with
        `expose_app_in_browser` (as `start_lab` does).
        """
        text = self.page.evaluate(_KERNEL_EVAL_JS, f"__import__('json').dumps({expression})")
        return json.loads(ast.literal_eval(text))

    def show_cell(self, index: int) -> None:
        """Scroll cell `index` into view. JupyterLab renders only the cells in view, so a
        widget in a cell out of view is not drawn until it is scrolled to."""
        self.page.evaluate(
            "async (i) => { const n = window.jupyterapp.shell.currentWidget.content;"
            " n.activeCellIndex = i; await n.scrollToItem(i, 'start'); }", index)

    def screenshot(self, name: str, locator=None) -> Path:
        """Save a PNG to test-artifacts/<name>.png (of `locator` if given)."""
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        (locator or self.page).screenshot(path=str(path))
        return path


def notebook_factory(lab, browser, contexts):
    """`open_notebook(cells, name=None, run=True, viewport=(w, h), scale=1) -> Notebook`;
    `scale` is the screen's device pixel ratio. New browser contexts are appended to
    `contexts` for the caller to close."""
    def open_notebook(cells, name=None, run=True, viewport=(1400, 900), scale=1) -> Notebook:
        context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                      device_scale_factor=scale)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(60_000)
        name = lab.write_notebook(cells, name)
        nb = Notebook(lab, page, name)
        contexts[-1]._kw_notebooks = [name]
        _open_until_kernel_idle(page, f"{lab.url}lab/tree/{name}?reset", name)
        # News and update pop-ups are off (`start_lab`); close one if shown anyway (no waiting).
        for button in page.locator(".jp-toast-button", has_text="No").all():
            with contextlib.suppress(Exception):
                button.click(timeout=5_000)
        if run:
            nb.run_all()
        return nb

    return open_notebook


_KERNEL_EVAL_JS = """async (code) => {
  const panel = window.jupyterapp.shell.currentWidget;
  await panel.sessionContext.ready;  // a session exists (under load it may come late)
  const session = panel.sessionContext.session;
  if (!session || !session.kernel) throw new Error('The notebook has no kernel');
  const kernel = session.kernel;
  const future = kernel.requestExecute(
    {code: '', silent: true, store_history: false, user_expressions: {value: code}});
  const reply = await future.done;
  const value = reply.content.user_expressions.value;
  if (value.status !== 'ok') throw new Error(value.ename + ': ' + value.evalue);
  return value.data['text/plain'];
}"""

# The notebook's own kernel, asked through JupyterLab's app object: connected and idle. The
# execution indicator below can read "idle" before any kernel exists (under load the session
# came after it, and the next kernel_eval found none).
_KERNEL_READY_JS = (
    "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
    " const s = w && w.sessionContext && w.sessionContext.session; const k = s && s.kernel;"
    " return !!k && k.status === 'idle' && k.connectionStatus === 'connected'; }"
)

# Idle kernel: the toolbar's execution indicator, or (when a narrow toolbar moved
# that indicator into its overflow menu) the status bar's "Kernel | Idle" item.
_KERNEL_IDLE_JS = (
    "() => { const i = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) "
    ".jp-Notebook-ExecutionIndicator'); if (i && i.dataset.status === 'idle') return true;"
    " return [...document.querySelectorAll('.jp-StatusBar-Widget, .jp-StatusBar-TextItem')]"
    ".some(e => /\\|\\s*Idle\\b/.test(e.textContent)); }"
)


def _open_until_kernel_idle(page, url, name, attempts=3):
    """Open `url` and wait for its kernel to be idle; dismiss dialogs, reload if stuck.

    On a loaded 2-core machine a kernel (TensorFlow import) can start slowly,
    and JupyterLab occasionally misses the first status; a reload recovers.
    """
    per_attempt = KERNEL_TIMEOUT_MS / attempts
    for attempt in range(attempts):
        page.goto(url)
        page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell", timeout=120_000)
        deadline = time.time() + per_attempt / 1000
        while time.time() < deadline:
            with contextlib.suppress(Exception):
                page.locator(".jp-Dialog .jp-mod-accept").click(timeout=500)
            with contextlib.suppress(Exception):
                page.wait_for_function(_KERNEL_READY_JS, timeout=5_000)
                return
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"kernel_not_idle_{name}_{attempt}.png"))
    raise AssertionError(f"The kernel of {name} never became idle (screenshots in test-artifacts/)")


def _shutdown_kernels(lab, names):
    """Stop the kernels of the given notebooks, so they do not pile up over a session."""
    try:
        with urllib.request.urlopen(lab.url + "api/sessions", timeout=5) as response:
            sessions = json.loads(response.read())
    except OSError:
        return
    for session in sessions:
        if session.get("path") in names:
            request = urllib.request.Request(
                f"{lab.url}api/sessions/{session['id']}", method="DELETE")
            with contextlib.suppress(OSError):
                urllib.request.urlopen(request, timeout=10).close()


def _close(contexts, lab=None):
    for context in contexts:
        with contextlib.suppress(Exception):
            context.close()
        if lab is not None:
            _shutdown_kernels(lab, getattr(context, "_kw_notebooks", []))


@pytest.fixture
def notebook_page(lab, browser):
    """Factory: ``notebook_page(cells, name=None, run=True, viewport=(1400, 900))``."""
    contexts = []
    yield notebook_factory(lab, browser, contexts)
    _close(contexts, lab)


@pytest.fixture(scope="module")
def module_notebook_page(lab, browser):
    """Like `notebook_page`, but pages live for the whole test module (share one kernel)."""
    contexts = []
    yield notebook_factory(lab, browser, contexts)
    _close(contexts, lab)
