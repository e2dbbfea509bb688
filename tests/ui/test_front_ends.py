"""GraphView and the editor beyond JupyterLab: Notebook 7, Voila (the Binder workshop link),
and the README's first command, which opens the tour in JupyterLab."""

import contextlib
import json
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.ui.conftest import (
    _KERNEL_IDLE_JS,
    ARTIFACTS,
    KERNEL_TIMEOUT_MS,
    _free_port,
    serve,
    server_env,
    start_lab,
)

pytestmark = pytest.mark.ui

REPO = Path(__file__).resolve().parents[2]

GRAPH_CELLS = [
    "import os\nos.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\nimport keras\n"
    "from kerawidgets import GraphView\n"
    "inp = keras.Input((8,), name='features')\n"
    "x = keras.layers.Dense(8, activation='relu', name='hidden')(inp)\n"
    "model = keras.Model(inp, keras.layers.Dense(2, name='head')(x))\n"
    "view = GraphView(model)\nview",
    "print('selected:', view.selected.get('id'))",
]


@contextlib.contextmanager
def page_at(browser, url, viewport, timeout_ms):
    """A fresh browser context's page, opened at `url`; the context is closed afterwards."""
    context = browser.new_context(viewport=viewport)
    try:
        page = context.new_page()
        page.set_default_timeout(timeout_ms)
        page.goto(url)
        yield page
    finally:
        context.close()


def _has_session(server, name) -> bool:
    with urllib.request.urlopen(server.url + "api/sessions", timeout=10) as response:
        return any(s.get("path") == name for s in json.loads(response.read()))


def _start_kernel(page, server, name):
    """Until the server has a session for the notebook: accept Notebook 7's "Select Kernel"
    dialog when it shows (it does when the kernel specs come late, under load). Then wait
    for the kernel to be idle. Every wait is on a condition (the dialog, the session)."""
    for _ in range(60):
        if _has_session(server, name):
            break
        with contextlib.suppress(Exception):
            page.locator(".jp-Dialog .jp-mod-accept").click(timeout=2_000)
    assert _has_session(server, name), "Notebook 7 started no kernel"
    page.wait_for_function(_KERNEL_IDLE_JS, timeout=KERNEL_TIMEOUT_MS)


def test_graph_view_in_notebook_7(browser, tmp_path):
    root, home = tmp_path / "root", tmp_path / "home"
    root.mkdir()
    home.mkdir()
    with start_lab(root, home, app="notebook") as server:
        name = server.write_notebook(GRAPH_CELLS, "nb7.ipynb")
        with page_at(browser, f"{server.url}notebooks/{name}", {"width": 1200, "height": 900},
                     120_000) as page:
            page.wait_for_selector(".jp-Cell .cm-content")
            _start_kernel(page, server, name)
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            try:
                # The cells ran (each has its execution count), then the graph painted.
                page.wait_for_function(
                    "() => { const p = [...document.querySelectorAll('.jp-InputArea-prompt')];"
                    " return p.length && p.every(e => /\\[\\d+\\]/.test(e.textContent)); }",
                    timeout=KERNEL_TIMEOUT_MS)
                page.wait_for_selector(".kw-graph[data-painted]", timeout=KERNEL_TIMEOUT_MS)
            except Exception:
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "notebook7_not_painted.png"))
                raise
            page.locator(".kw-node[data-id='hidden']").click()
            page.wait_for_selector(".kw-node.kw-selected[data-id='hidden']")
            # Read the kernel's state back: re-run the second cell.
            second = page.locator(".jp-Cell").nth(1)
            second.locator(".cm-content").click()
            page.keyboard.press("Shift+Enter")
            page.wait_for_function(
                "() => [...document.querySelectorAll('.jp-OutputArea-output')]"
                ".some(e => e.textContent.includes('selected: hidden'))")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "notebook7_graph_view.png"))


def test_workshop_renders_in_voila_with_every_check_passing(browser, tmp_path):
    port = _free_port()
    home = tmp_path / "home"
    home.mkdir()
    notebook = REPO / "notebooks" / "06_workshop.ipynb"
    cmd = [sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}",
           "--Voila.ip=127.0.0.1", "--Voila.show_tracebacks=True"]
    url = f"http://127.0.0.1:{port}/"
    with serve(cmd, server_env(home), notebook.parent, url, home / "voila.log", timeout=120):
        with page_at(browser, url, {"width": 1300, "height": 1000}, 240_000) as page:
            page.wait_for_function(
                "() => document.body.innerText.includes('Exercise 5 done')")
            page.wait_for_selector(".kw-graph[data-painted]")
            text = page.locator("body").inner_text()
            for exercise in range(1, 6):
                assert f"✅ Exercise {exercise} done" in text
            assert "Traceback" not in text
            assert page.locator("[data-mime-type='application/vnd.jupyter.error']").count() == 0
            ARTIFACTS.mkdir(exist_ok=True)
            with contextlib.suppress(Exception):
                page.locator(".kw-editor").first.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "voila_workshop.png"))


def test_readme_tour_command_opens_the_tour_in_jupyterlab(browser, tmp_path):
    # `bash scripts/tour.sh` as the README says, plus flags for a headless test run;
    # it must also start as root (containers, CI), where JupyterLab wants --allow-root.
    port = _free_port()
    home = tmp_path / "home"
    home.mkdir()
    cmd = ["bash", str(REPO / "scripts" / "tour.sh"), "--no-browser", f"--port={port}",
           "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token="]
    url = f"http://127.0.0.1:{port}/api/contents/01_tour.ipynb?content=0"
    with serve(cmd, server_env(home), REPO, url, home / "tour.log", timeout=120):
        with page_at(browser, f"http://127.0.0.1:{port}/lab/tree/01_tour.ipynb",
                     {"width": 1200, "height": 900}, 120_000) as page:
            page.wait_for_selector(".jp-MarkdownOutput h1:has-text('Welcome to kerawidgets')")
            assert page.locator(".lm-TabBar-tab.lm-mod-current", has_text="01_tour").count() == 1
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "tour_opened.png"))
