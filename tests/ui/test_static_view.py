"""A saved notebook reads well without a kernel: its GraphView and ModelEditor outputs
carry a static SVG (and the editor's plots as PNG) that `jupyter nbconvert --to html`
shows; the HTML is opened from a file:// URL in Chromium with every network request
refused, and the drawings must be there.
"""

from __future__ import annotations

import json
import os
import sys

import nbformat
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter

from tests.ui.conftest import ARTIFACTS

pytestmark = pytest.mark.ui

CELLS = [
    "import os\nos.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\nimport keras\nimport numpy as np\n"
    "from kerawidgets import node_metrics\nfrom kerawidgets.edits import SetActivation\n"
    "from kerawidgets.widgets import GraphView, ModelEditor\nkeras.utils.set_random_seed(0)",
    "inp = keras.Input((8,), name='features')\n"
    "h = keras.layers.Dense(16, activation='relu', name='hidden')(inp)\n"
    "out = keras.layers.Dense(3, activation='softmax', name='head')(h)\n"
    "model = keras.Model(inp, out, name='static_demo')",
    "view = GraphView(model)\n"
    "view.set_metrics({'dead': node_metrics.metric('dead', {'hidden': 0.42})}, color_by='dead')\n"
    "view.mark('head', 'edited')\nview.select('hidden')\nview",
    "x = np.random.default_rng(0).normal(size=(32, 8)).astype('float32')\n"
    "editor = ModelEditor(model, x)\neditor.apply(SetActivation('hidden', 'tanh'))\neditor",
]


def _executed_html(tmp_path, monkeypatch) -> str:
    """Run the notebook in a kernel of this interpreter and convert it to HTML.

    The widget state is not stored, as JupyterLab saves a notebook by default:
    nbconvert then falls back from the widget view to the static copy.
    """
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    # The kernel is this interpreter, importing this checkout's kerawidgets.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        filter(None, [str(ARTIFACTS.parent), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    client = NotebookClient(nb, timeout=600, kernel_name="python3", store_widget_state=False,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    nbformat.write(nb, tmp_path / "saved.ipynb")
    body, _ = HTMLExporter().from_notebook_node(nb)
    return body


def test_nbconvert_html_shows_the_graph_and_plots_offline(tmp_path, browser, monkeypatch):
    body = _executed_html(tmp_path, monkeypatch)
    page_path = tmp_path / "saved.html"
    page_path.write_text(body, encoding="utf-8")
    saved = json.loads((tmp_path / "saved.ipynb").read_text())
    kinds = [sorted(o.get("data", {})) for c in saved["cells"] for o in c.get("outputs", [])]
    assert ["application/vnd.jupyter.widget-view+json", "image/svg+xml", "text/html",
            "text/plain"] in kinds
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    refused = []

    def offline(route):
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    context.route("**/*", offline)
    try:
        page = context.new_page()
        page.goto(page_path.as_uri())
        graphs = page.locator(".kw-static-graph svg")
        assert graphs.count() == 2  # the GraphView and the editor's graph
        first = graphs.first
        box = first.bounding_box()
        assert box["width"] > 100 and box["height"] > 100
        nodes = first.locator("g.kw-node").evaluate_all("gs => gs.map(g => g.dataset.id)")
        assert nodes == ["features", "hidden", "head"]
        assert "42% dead" in first.locator(".kw-metric-badge").text_content()
        assert first.locator(".kw-halo").count() == 1
        assert "dead units" in first.locator(".kw-legend").text_content()
        # The editor: its graph coloured by movement, and its plots drawn from PNG.
        editor = page.locator(".kw-static-editor")
        assert "Set the activation of 'hidden' to 'tanh'" in editor.inner_text()
        plots = editor.locator("img.kw-static-plot")
        assert plots.count() == 2
        assert plots.evaluate_all("imgs => imgs.every(i => i.complete && i.naturalWidth > 100)")
        assert graphs.nth(1).locator("g.kw-node[data-id='hidden'] rect").first.get_attribute(
            "fill") not in ("#d3efd6", None)  # coloured by movement, not by family
        assert page.locator("script[type='application/vnd.jupyter.widget-view+json']").count() == 0
        ARTIFACTS.mkdir(exist_ok=True)
        first.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "static_view_nbconvert.png"), full_page=True)
    finally:
        context.close()
