"""Export from the editor in JupyterLab: the figures as PNG and SVG downloads, to_code() copied
to the clipboard (run: pytest -m ui tests/ui/test_export_ui.py)."""

import xml.etree.ElementTree as ET

import pytest

from tests.ui.test_editor_ui import wait_not_busy, wait_text

pytestmark = pytest.mark.ui

PNG = b"\x89PNG\r\n\x1a\n"

CELLS = [
    "import os\nos.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\nimport numpy as np, keras, kerawidgets\n"
    "from kerawidgets.widgets import ModelEditor\nkeras.utils.set_random_seed(0)\n"
    # A registered activation: to_code() must register it before using it.
    "kerawidgets.register_activation('my_silu', keras.activations.silu)",
    "inp = keras.Input((6,), name='features')\n"
    "h = keras.layers.Dense(12, activation='relu', name='hidden')(inp)\n"
    "model = keras.Model(inp, keras.layers.Dense(3, activation='softmax', name='head')(h),"
    " name='tiny')\n"
    "rng = np.random.default_rng(0)\n"
    "x = rng.normal(size=(32, 6)).astype('float32'); y = rng.integers(0, 3, 32)\n"
    "editor = ModelEditor(model, x, y, height='360px')\neditor",
]


def test_figures_download_as_png_and_svg_and_the_code_copies(notebook_page, lab):
    nb = notebook_page(CELLS, name="export_ui.ipynb", viewport=(1400, 1300))
    page = nb.page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=lab.url[:-1])
    page.wait_for_selector(".kw-editor .kw-graph[data-painted]", timeout=120_000)
    box = page.locator(".kw-editor .kwx").first
    box.scroll_into_view_if_needed()
    # Before any edit there is nothing to draw.
    assert box.locator("button.kwx-figures").is_disabled()

    # An edit with the mouse: hidden -> my_silu, Apply.
    page.locator(".kw-editor .kw-node[data-id='hidden']").first.click()
    wait_text(page, ".kw-editor .kwe-title", "hidden")
    wait_not_busy(page)
    page.locator(".kw-editor .kwe-activation select").select_option("my_silu")
    wait_text(page, ".kw-editor .kwe-preview-line", "every existing weight is kept")
    page.locator(".kw-editor button.kwe-apply").click()
    wait_text(page, ".kw-editor .kwe-status", "Applied")
    wait_not_busy(page)

    # Copy code: the clipboard holds exactly to_code(), registration included.
    page.wait_for_function(
        "() => document.querySelector('.kw-editor .kwx-code').value.includes('1 edit(s)')")
    box.locator("button.kwx-copy").click()
    wait_text(page, ".kw-editor .kwx-copied", "Copied")
    copied = page.evaluate("() => navigator.clipboard.readText()")
    code = nb.kernel_eval("editor.to_code()")
    assert copied == code
    assert "kerawidgets.register_activation('my_silu', silu)" in copied
    assert "replace_activation(model, 'hidden', 'my_silu')" in copied
    # The code runs in a fresh namespace on the original model and gives the editor's model.
    assert nb.kernel_eval(
        "(lambda ns: (exec(editor.to_code(), ns), ns['model'].get_layer('hidden')"
        ".activation.__name__ == editor.model.get_layer('hidden').activation.__name__)[1])"
        "({'model': editor.original})") is True

    # Figures: four links, each a real download of the file it names.
    box.locator("button.kwx-figures").click()
    links = box.locator("a.kwx-file")
    page.wait_for_function(
        "() => document.querySelectorAll('.kw-editor .kwx a.kwx-file').length === 4",
        timeout=120_000)
    names = links.all_inner_texts()
    assert [n.split()[0] for n in names] == [
        "tiny_step1_comparison.png", "tiny_step1_comparison.svg",
        "tiny_step1_depth.png", "tiny_step1_depth.svg"]
    wait_text(page, ".kw-editor .kwx-note", "click one to download it")
    box.locator("details.kwx-code-box summary").click()
    nb.screenshot("export_box", page.locator(".kw-editor .kwe-panel").first)
    for i in range(4):
        with page.expect_download() as info:
            links.nth(i).click()
        download = info.value
        data = open(download.path(), "rb").read()
        assert download.suggested_filename == names[i].split()[0]
        if download.suggested_filename.endswith(".png"):
            assert data.startswith(PNG) and len(data) > 5000
        else:
            assert ET.fromstring(data).tag.endswith("svg")
            assert b"hidden" in data  # the plotted layer is named in the figure

    # Undo: the links were of the undone step, so they go, and the box says why.
    page.locator(".kw-editor button.kwe-undo").click()
    wait_text(page, ".kw-editor .kwx-note", "press Figures again")
    assert links.count() == 0 and box.locator("button.kwx-figures").is_disabled()
    page.wait_for_function(
        "() => document.querySelector('.kw-editor .kwx-code').value.includes('0 edit(s)')")
