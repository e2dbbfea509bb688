"""The switch and the layer picker above the editor's plots, clicked in JupyterLab.

"Compare with: the original | the last step" (issue 12, item 4) and "Layer
plotted" after a bulk edit, with every edited layer marked (item 3). Kernel
state is read through the kernel; screenshots go to test-artifacts/.
"""

import pytest

from tests.ui.test_editor_ui import wait_not_busy, wait_text

pytestmark = pytest.mark.ui

SETUP = [
    "import os\nos.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\nimport numpy as np, keras\n"
    "from kerawidgets.widgets import ModelEditor\n"
    "from kerawidgets.edits import SetActivation\n"
    "keras.utils.set_random_seed(0)",
    "inp = keras.Input((8, 8, 1), name='image')\n"
    "h = keras.layers.Conv2D(8, 3, padding='same', activation='relu', name='conv_a')(inp)\n"
    "h = keras.layers.Conv2D(8, 3, padding='same', activation='relu', name='conv_b')(h)\n"
    "h = keras.layers.Flatten(name='flatten')(h)\n"
    "out = keras.layers.Dense(10, activation='softmax', name='head')(h)\n"
    "model = keras.Model(inp, out, name='small_cnn')\n"
    "rng = np.random.default_rng(0)\n"
    "x = rng.normal(size=(32, 8, 8, 1)).astype('float32'); y = rng.integers(0, 10, size=32)",
    "editor = ModelEditor(model, x, y, height='380px')\neditor",
]

NOTE = ".kw-editor .kwe-plots-note"


def image_src(page):
    return page.locator(".kw-editor .kwe-plot-comparison img").first.get_attribute("src") or ""


def wait_image_changed(page, old):
    page.wait_for_function(
        "(old) => { const i = document.querySelector('.kw-editor .kwe-plot-comparison img');"
        " return i && i.src !== old && i.naturalWidth > 100; }", arg=old)


@pytest.fixture(scope="module")
def nb(module_notebook_page):
    nb = module_notebook_page(SETUP, name="plot_controls_ui.ipynb", viewport=(1400, 1500))
    nb.page.wait_for_selector(".kw-editor .kw-graph[data-painted]", timeout=120_000)
    return nb


def test_the_switch_compares_with_the_original_or_the_last_step(nb):
    page = nb.page
    assert not page.locator(".kw-editor .kwe-plot-controls").is_visible()  # nothing yet
    nb.kernel_eval("editor.apply(SetActivation('conv_a', 'tanh')) and None")
    nb.kernel_eval("editor.apply(SetActivation('head', 'sigmoid')) and None")
    wait_text(page, NOTE, "against the original (2 edits)")
    original = page.locator(".kw-editor .kwe-against button", has_text="the original")
    last = page.locator(".kw-editor .kwe-against button", has_text="the last step")
    assert "mod-active" in original.get_attribute("class")
    # Against the original, conv_a (edited first) moved: the heat shows it.
    page.wait_for_selector(".kw-editor .kw-node[data-id='conv_a'][data-heat]")
    against_original = image_src(page)
    nb.screenshot("plots_against_original", page.locator(".kw-editor").first)
    last.click()
    wait_text(page, NOTE, "against the last step")
    wait_image_changed(page, against_original)
    wait_not_busy(page)
    assert nb.kernel_eval("editor.session.against") == "previous"
    assert nb.kernel_eval("editor.compare()['movement']['conv_a']") == 0
    assert "mod-active" in last.get_attribute("class")
    nb.screenshot("plots_against_last_step", page.locator(".kw-editor").first)
    # Undo then Redo keep the choice; the plots are the step's own, kept.
    page.locator(".kw-editor button.kwe-undo").click()
    wait_text(page, ".kw-editor .kwe-status", "Undone")
    page.locator(".kw-editor button.kwe-redo").click()
    wait_text(page, ".kw-editor .kwe-status", "Redone")
    assert nb.kernel_eval("editor.session.against") == "previous"
    assert "against the last step" in page.locator(NOTE).inner_text()
    original.click()
    wait_text(page, NOTE, "against the original (2 edits)")
    assert nb.kernel_eval("editor.session.against") == "original"


def test_after_a_bulk_edit_every_edited_layer_is_marked_and_can_be_plotted(nb):
    page = nb.page
    nb.kernel_eval("editor.reset() or editor.apply(SetActivation(keras.layers.Conv2D, 'elu'))"
                   " and None")
    wait_text(page, ".kw-editor .kwe-status", "Applied: Set the activation of every Conv2D")
    picker = page.locator(".kw-editor .kwe-plotted-layer select")
    page.wait_for_function(
        "() => document.querySelectorAll('.kw-editor .kwe-plotted-layer option').length === 2")
    assert picker.input_value() == "conv_a" and picker.is_enabled()
    for layer in ("conv_a", "conv_b"):
        page.wait_for_selector(f".kw-editor .kw-node[data-id='{layer}'].kw-mark-edited")
    assert page.locator(".kw-editor .kw-node.kw-mark-edited").count() == 2
    before = image_src(page)
    picker.select_option("conv_b")
    wait_image_changed(page, before)
    wait_not_busy(page)
    assert nb.kernel_eval("editor.session.plotted_layer") == "conv_b"
    assert nb.kernel_eval("editor.compare()['layer']") == "conv_b"
    nb.screenshot("plots_layer_picker", page.locator(".kw-editor").first)


MOBILENET = [
    "import os\nos.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\nimport numpy as np, keras\n"
    "from kerawidgets.widgets import ModelEditor\n"
    "from kerawidgets.edits import SetActivation\n"
    "keras.utils.set_random_seed(0)",
    "model = keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3), classes=10)\n"
    "x = np.random.default_rng(0).normal(size=(8, 96, 96, 3)).astype('float32')",
    "editor = ModelEditor(model, x, max_batches=1, batch_size=8, height='480px')\neditor",
]


def test_a_bulk_edit_of_mobilenet_marks_all_35_layers_and_any_can_be_plotted(notebook_page):
    nb = notebook_page(MOBILENET, name="plot_controls_mobilenet.ipynb", viewport=(1400, 1500))
    page = nb.page
    page.wait_for_selector(".kw-editor .kw-graph[data-painted]", timeout=120_000)
    nb.kernel_eval("editor.apply(SetActivation(keras.layers.ReLU, 'gelu')) and None")
    wait_text(page, ".kw-editor .kwe-status", "Applied", timeout=180_000)
    edited = nb.kernel_eval("editor.edited_layers()")
    assert len(edited) == 35 and edited[0] == "Conv1_relu" and edited[-1] == "out_relu"
    assert sorted(nb.kernel_eval("list(editor.view.marks)")) == sorted(edited)
    page.wait_for_function(
        "() => document.querySelectorAll('.kw-editor .kwe-plotted-layer option').length === 35")
    picker = page.locator(".kw-editor .kwe-plotted-layer select")
    assert picker.input_value() == "Conv1_relu"
    # Every edited layer drawn as its own box is marked; no other layer box is.
    drawn = page.evaluate(
        "() => [...document.querySelectorAll('.kw-editor .kw-node:not(.kw-closed)')].map("
        "g => [g.dataset.id, g.classList.contains('kw-mark-edited')])")
    assert drawn and all(marked == (node_id in edited) for node_id, marked in drawn)
    assert page.locator(".kw-editor .kw-node.kw-mark-edited").count() >= 1
    before = image_src(page)
    picker.select_option("block_6_expand_relu")
    wait_image_changed(page, before)
    wait_not_busy(page)
    assert nb.kernel_eval("editor.compare()['layer']") == "block_6_expand_relu"
    wait_text(page, NOTE, "against the original (1 edit)")
    nb.screenshot("plots_mobilenet_bulk_edit", page.locator(".kw-editor").first)
