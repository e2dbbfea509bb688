"""ModelEditor in a real JupyterLab driven by Chromium (run: pytest -m ui tests/ui/test_editor_ui.py)."""

import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.ui

# The README image is refreshed by hand from this artifact:
#   cp test-artifacts/editor_docs.png docs/images/editor.png
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

SETUP = [
    "import os\nos.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\nimport numpy as np, keras\n"
    "from sklearn.datasets import load_digits\n"
    "from kerawidgets.widgets import ModelEditor\n"
    "from kerawidgets.edits import ReplaceLayer\n"
    "keras.utils.set_random_seed(0)",
    # A small CNN trained for a few seconds on scikit-learn's 8x8 digits.
    "digits = load_digits()\n"
    "x = (digits.images[..., None] / 16.0).astype('float32'); y = digits.target\n"
    "inp = keras.Input((8, 8, 1), name='digit')\n"
    "h = keras.layers.Conv2D(16, 3, padding='same', activation='relu', name='conv')(inp)\n"
    "h = keras.layers.MaxPooling2D(name='pool')(h)\n"
    "h = keras.layers.Flatten(name='flatten')(h)\n"
    "h = keras.layers.Dense(32, activation='relu', name='hidden')(h)\n"
    "h = keras.layers.Dropout(0.1, name='drop')(h)\n"
    "out = keras.layers.Dense(10, activation='softmax', name='head')(h)\n"
    "model = keras.Model(inp, out, name='digits_cnn')\n"
    "model.compile('adam', 'sparse_categorical_crossentropy', metrics=['accuracy'])\n"
    "_ = model.fit(x[:1500], y[:1500], epochs=4, batch_size=64, verbose=0)",
    "editor = ModelEditor(model, x[1500:1564], y[1500:1564], height='520px')\n"
    "editor",
]


def node(page, node_id):
    return page.locator(f".kw-editor .kw-graph .kw-node[data-id='{node_id}']").first


def image_src(page, cls):
    return page.locator(f".{cls}").first.get_attribute("src") or ""


@pytest.fixture(scope="module")
def nb(module_notebook_page):
    nb = module_notebook_page(SETUP, name="editor_ui.ipynb", viewport=(1400, 1700))
    nb.page.wait_for_selector(".kw-editor .kw-graph[data-painted]", timeout=120_000)
    return nb


def select_layer(nb, node_id):
    """Click a node and wait until the kernel has filled the panel for it.

    The kernel is asked (not the page) whether the click arrived; its answer
    comes after every panel update the click caused, so the dropdowns hold
    this layer's choices, not the previous one's, before the test goes on.
    """
    node(nb.page, node_id).click()
    nb.page.wait_for_function(
        "(name) => { const t = document.querySelector('.kw-editor .kwe-title');"
        " return t && t.textContent.includes(name); }", arg=node_id.split("/")[-1])
    assert nb.kernel_eval("editor.view.selected.get('id')") == node_id
    wait_not_busy(nb.page)


def wait_not_busy(page, timeout=120_000):
    """Wait until the editor's status line no longer says the kernel is working."""
    page.wait_for_function(
        "() => !document.querySelector('.kw-editor .kwe-status .kwe-status-busy')",
        timeout=timeout)


def wait_text(page, selector, text, timeout=60_000):
    page.wait_for_function(
        "([sel, text]) => { const e = document.querySelector(sel);"
        " return e && e.textContent.includes(text); }", arg=[selector, text], timeout=timeout)


def choose_activation_and_apply(nb, layer, activation):
    """Click `layer` in the graph, pick `activation`, wait for the preview, press Apply."""
    page = nb.page
    select_layer(nb, layer)
    page.locator(".kw-editor .kwe-activation select").select_option(activation)
    wait_text(page, ".kw-editor .kwe-preview-line", f"'{activation}'")
    page.locator(".kw-editor button.kwe-apply").click()


def test_editor_renders_with_panel(nb):
    page = nb.page
    assert page.locator(".kw-editor .kwe-panel").count() == 1
    assert page.locator(".kw-editor .kwe-apply").first.is_disabled()
    wait_text(page, ".kw-editor .kwe-panel", "64 samples of the given data, with labels")
    nb.screenshot("editor_initial", page.locator(".kw-editor").first)


def test_activation_apply_updates_plot_heat_and_kernel(nb):
    page = nb.page
    select_layer(nb, "conv")
    page.locator(".kw-editor .kwe-activation select").select_option("gelu")
    wait_text(page, ".kw-editor .kwe-preview-line", "'gelu'")
    wait_text(page, ".kw-editor .kwe-preview-line", "every existing weight is kept")
    page.locator(".kw-editor button.kwe-apply").click()
    wait_text(page, ".kw-editor .kwe-status", "Applied")
    page.wait_for_function(
        "() => { const i = document.querySelector('.kw-editor .kwe-plot-comparison img');"
        " return i && i.naturalWidth > 100; }")
    page.wait_for_selector(".kw-editor .kw-node[data-id='conv'][data-heat]")
    assert "kw-mark-edited" in node(page, "conv").get_attribute("class")
    assert nb.eval("editor.model.get_layer('conv').activation.__name__") == "gelu"
    assert nb.eval("editor.original.get_layer('conv').activation.__name__") == "relu"
    assert nb.eval("[e.describe() for e in editor.history]") == [
        "Set the activation of 'conv' to 'gelu'"]
    first_plot = image_src(page, "kwe-plot-comparison img")
    # A second edit near the output: the plot image changes.
    choose_activation_and_apply(nb, "head", "sigmoid")
    wait_text(page, ".kw-editor .kwe-status", "Applied: Set the activation of 'head'")
    page.wait_for_function(
        "(old) => { const i = document.querySelector('.kw-editor .kwe-plot-comparison img');"
        " return i && i.getAttribute('src') !== old && i.naturalWidth > 100; }", arg=first_plot)
    wait_text(page, ".kw-editor", "top-1 agreement")
    assert nb.eval("editor.compare()['recompute']") == "incremental"
    page.wait_for_function(  # every plot decoded before the screenshot
        "() => [...document.querySelectorAll('.kw-editor img')].every(i => i.complete)")
    nb.screenshot("editor_after_apply", page.locator(".kw-editor").first)
    # The README image's framing: graph, panel and the comparison plot (no depth plot).
    page.locator(".kw-editor").first.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => "
                  "requestAnimationFrame(done)))")  # scrolled and painted
    top = page.locator(".kw-editor").first.bounding_box()
    plot = page.locator(".kw-editor .kwe-plot-comparison").first.bounding_box()
    if plot["y"] + plot["height"] <= page.viewport_size["height"]:
        path = nb.lab.root / "editor_docs.png"
        page.screenshot(path=str(path), clip={"x": top["x"], "y": top["y"], "width": top["width"],
                                              "height": plot["y"] + plot["height"] - top["y"]})
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copyfile(path, ARTIFACTS / "editor_docs.png")


def test_impossible_replacement_is_refused(nb):
    page = nb.page
    history = nb.eval("len(editor.history)")
    select_layer(nb, "conv")
    page.locator(".kw-editor .kwe-tabs .lm-TabBar-tab", has_text="Replace").click()
    page.locator(".kw-editor .kwe-replace select").select_option(label="Conv2D")
    filters = page.locator(".kw-editor .kwe-setting-filters input")
    filters.wait_for()
    assert filters.input_value() == "16"
    filters.fill("4")
    filters.press("Enter")
    wait_text(page, ".kw-editor .kwe-preview-line", "cannot apply")
    wait_text(page, ".kw-editor .kwe-preview-line", "hidden")
    assert page.locator(".kw-editor button.kwe-apply").is_disabled()
    nb.screenshot("editor_refused_preview", page.locator(".kw-editor").first)
    # The same edit from a script: the panel shows the error, nothing changes.
    out = nb.run_cell(
        "try:\n    editor.apply(ReplaceLayer('conv', keras.layers.Conv2D(4, 3, padding='same')))\n"
        "except Exception as error:\n    print(type(error).__name__)")
    assert "ShapeMismatchError" in out
    page.wait_for_selector(".kw-editor .kwe-status .kwe-status-error")
    wait_text(page, ".kw-editor .kwe-status", "hidden")
    assert nb.eval("len(editor.history)") == history
    assert nb.eval("editor.model.get_layer('conv').filters") == 16
    page.locator(".kw-editor .kw-editor, .kw-editor").first.scroll_into_view_if_needed()
    nb.screenshot("editor_refused_error", page.locator(".kw-editor").first)
    # Still usable: undo from the panel.
    page.locator(".kw-editor button.kwe-undo").click()
    wait_text(page, ".kw-editor .kwe-status", "Undone")
    assert nb.eval("editor.model.get_layer('head').activation.__name__") == "softmax"
    assert nb.eval("len(editor.history)") == history - 1


def test_editor_at_notebook_width(module_notebook_page):
    nb = module_notebook_page(SETUP, name="editor_narrow.ipynb", viewport=(1000, 1300))
    page = nb.page
    page.wait_for_selector(".kw-editor .kw-graph[data-painted]", timeout=120_000)
    choose_activation_and_apply(nb, "hidden", "tanh")
    wait_text(page, ".kw-editor .kwe-status", "Applied")
    page.wait_for_function(
        "() => { const i = document.querySelector('.kw-editor .kwe-plot-comparison img');"
        " return i && i.naturalWidth > 100; }")
    nb.screenshot("editor_narrow", page.locator(".kw-editor").first)
    panel = page.locator(".kw-editor .kwe-panel").first.bounding_box()
    graph = page.locator(".kw-editor .kw-graph").first.bounding_box()
    editor = page.locator(".kw-editor").first.bounding_box()
    assert panel["width"] >= 320 and graph["width"] >= 300
    # Side by side when there is room, else the panel under the graph: never overlapping,
    # never wider than the editor.
    beside = panel["x"] >= graph["x"] + graph["width"] - 1
    below = panel["y"] >= graph["y"] + graph["height"] - 1
    assert beside or below
    assert graph["x"] + graph["width"] <= editor["x"] + editor["width"] + 1
    assert panel["x"] + panel["width"] <= editor["x"] + editor["width"] + 1


# --- every control of the panel, with the kernel state read back by running a cell ----
# These share the module's notebook; each starts from the original model (a cell runs
# `editor.reset()`) on the Activation tab, so they can run alone (-k) or after the others.


def choose_tab(page, title):
    page.locator(".kw-editor .kwe-tabs .lm-TabBar-tab", has_text=title).click()
    page.wait_for_selector(f".kw-editor .kwe-tabs .lm-TabBar-tab.lm-mod-current:has-text('{title}')")
    wait_not_busy(page)


def start_from_original(nb):
    """The original model (reset from a cell) with the panel on its Activation tab."""
    nb.run_cell("editor.reset()")
    wait_text(nb.page, ".kw-editor .kwe-status", "Reset to the original model")
    assert nb.eval("editor.model is editor.original") is True
    choose_tab(nb.page, "Activation")


def press_apply(nb, outcome):
    """Press Apply and wait for the outcome in the status line (the busy state is over)."""
    page = nb.page
    page.locator(".kw-editor button.kwe-apply").click()
    wait_text(page, ".kw-editor .kwe-status", outcome)
    page.wait_for_selector(".kw-editor .kwe-status .kwe-status-ok")


def set_number(page, setting, value):
    field = page.locator(f".kw-editor .kwe-setting-{setting} input")
    field.wait_for()
    field.fill(str(value))
    field.press("Enter")  # ipywidgets number fields send their value on Enter
    return field


def test_replace_dense_with_other_units_reinitialising_downstream(nb):
    page = nb.page
    start_from_original(nb)
    select_layer(nb, "hidden")
    choose_tab(page, "Replace")
    page.locator(".kw-editor .kwe-replace select").select_option(label="Dense")
    units = page.locator(".kw-editor .kwe-setting-units input")
    units.wait_for()
    assert units.input_value() == "32"  # the form is prefilled from the layer
    set_number(page, "units", 24)
    wait_text(page, ".kw-editor .kwe-preview-line", "cannot apply")
    wait_text(page, ".kw-editor .kwe-preview-line", "'head'")
    assert page.locator(".kw-editor button.kwe-apply").is_disabled()
    reinitialize = page.locator(".kw-editor .kwe-reinitialize input")
    reinitialize.check()
    wait_text(page, ".kw-editor .kwe-preview-line", "downstream affected (reinitialised): head")
    nb.screenshot("editor_replace_form", page.locator(".kw-editor .kwe-panel").first)
    press_apply(nb, "Applied: Replace 'hidden' with Dense(units=24")
    wait_text(page, ".kw-editor .kwe-report", "reinitialised")
    page.wait_for_selector(".kw-editor .kw-node[data-id='hidden'].kw-mark-edited")
    assert nb.eval("editor.model.get_layer('hidden').units") == 24
    assert nb.eval("editor.original.get_layer('hidden').units") == 32
    assert nb.eval("[editor.report[n].status for n in ('hidden', 'head', 'conv')]") == [
        "reinitialised", "reinitialised", "kept"]
    assert nb.eval("editor.to_code().strip().splitlines()[-1]").endswith(
        "reinitialize='downstream')")
    nb.screenshot("editor_after_replace", page.locator(".kw-editor").first)
    reinitialize.uncheck()


def test_insert_dropout_after_a_layer(nb):
    page = nb.page
    start_from_original(nb)
    select_layer(nb, "hidden")
    choose_tab(page, "Insert after")
    page.locator(".kw-editor .kwe-insert select").select_option(label="Dropout")
    set_number(page, "rate", 0.3)
    wait_text(page, ".kw-editor .kwe-preview-line", "Insert Dropout(rate=0.3) after 'hidden'")
    wait_text(page, ".kw-editor .kwe-preview-line", "every existing weight is kept")
    press_apply(nb, "Applied: Insert Dropout(rate=0.3) after 'hidden'")
    (new,) = nb.eval("[o.layer for o in editor.report.outcomes if o.status == 'new']")
    page.wait_for_selector(f".kw-editor .kw-node[data-id='{new}']")
    names = nb.eval("[layer.name for layer in editor.model.layers]")
    assert names[names.index("hidden") + 1] == new
    assert nb.eval(f"[type(editor.model.get_layer({new!r})).__name__, "
                   f"editor.model.get_layer({new!r}).rate]") == ["Dropout", 0.3]
    assert nb.eval("len(editor.original.layers)") == len(names) - 1
    nb.screenshot("editor_after_insert", page.locator(".kw-editor").first)


def test_remove_a_layer(nb):
    page = nb.page
    start_from_original(nb)
    select_layer(nb, "drop")
    choose_tab(page, "Remove")
    wait_text(page, ".kw-editor .kwe-panel", "its input flows on to its consumers")
    wait_text(page, ".kw-editor .kwe-preview-line", "Remove 'drop'")
    press_apply(nb, "Applied: Remove 'drop'")
    page.wait_for_function(
        "() => !document.querySelector(\".kw-editor .kw-node[data-id='drop']\")")
    assert "drop" not in nb.eval("[layer.name for layer in editor.model.layers]")
    assert nb.eval("'drop' in [layer.name for layer in editor.original.layers]") is True
    assert nb.eval("editor.report['drop'].status") == "removed"
    nb.screenshot("editor_after_remove", page.locator(".kw-editor").first)


def test_undo_then_redo(nb):
    page = nb.page
    start_from_original(nb)
    nb.run_cell("import gc\nfrom kerawidgets.widgets import idle_collection\n"
                "gc_during = []  # whether Python's collector was on, during each move\n"
                "editor.on_change(lambda: gc_during.append(gc.isenabled()))")
    choose_activation_and_apply(nb, "hidden", "tanh")
    wait_text(page, ".kw-editor .kwe-status", "Applied: Set the activation of 'hidden'")
    page.wait_for_selector(".kw-editor .kw-node[data-id='hidden'].kw-mark-edited")
    page.locator(".kw-editor button.kwe-undo").click()
    wait_text(page, ".kw-editor .kwe-status", "Undone.")
    # A click runs with the collector paused; the kernel's event loop, idle, collects
    # and switches it on again (`idle_collection`): inside the real kernel, not a stand-in.
    nb.kernel_until("[gc_during, gc.isenabled(), idle_collection._COLLECTOR.owed]",
                    [[False, False], True, False])
    assert nb.eval("[editor.model is editor.original, len(editor.history)]") == [True, 0]
    page.wait_for_selector(".kw-editor .kw-node[data-id='hidden']:not(.kw-mark-edited)")
    assert page.locator(".kw-editor button.kwe-undo").is_disabled()
    page.locator(".kw-editor button.kwe-redo").click()
    wait_text(page, ".kw-editor .kwe-status", "Redone.")
    assert nb.eval("editor.model.get_layer('hidden').activation.__name__") == "tanh"
    assert nb.eval("[e.describe() for e in editor.history]") == [
        "Set the activation of 'hidden' to 'tanh'"]
    page.wait_for_selector(".kw-editor .kw-node[data-id='hidden'].kw-mark-edited")
    page.wait_for_function(
        "() => { const i = document.querySelector('.kw-editor .kwe-plot-comparison img');"
        " return i && i.naturalWidth > 100 && i.offsetParent !== null; }")
    assert page.locator(".kw-editor button.kwe-redo").is_disabled()
    nb.screenshot("editor_after_redo", page.locator(".kw-editor").first)


def test_reset_button(nb):
    page = nb.page
    start_from_original(nb)
    choose_activation_and_apply(nb, "hidden", "elu")
    wait_text(page, ".kw-editor .kwe-status", "Applied: Set the activation of 'hidden'")
    choose_activation_and_apply(nb, "head", "sigmoid")
    wait_text(page, ".kw-editor .kwe-status", "Applied: Set the activation of 'head'")
    page.wait_for_selector(".kw-editor .kw-node[data-heat]")
    page.locator(".kw-editor button.kwe-reset").click()
    wait_text(page, ".kw-editor .kwe-status", "Reset to the original model.")
    assert nb.eval("[editor.model is editor.original, len(editor.history)]") == [True, 0]
    page.wait_for_function("() => !document.querySelector('.kw-editor .kw-node[data-heat]')"
                           " && !document.querySelector('.kw-editor .kw-mark-edited')")
    assert page.locator(".kw-editor .kwe-plot-comparison").first.is_hidden()
    assert page.locator(".kw-editor button.kwe-reset").is_disabled()
    assert page.locator(".kw-editor button.kwe-undo").is_disabled()
    nb.screenshot("editor_after_reset", page.locator(".kw-editor").first)
    # The edits stay available to Redo.
    page.locator(".kw-editor button.kwe-redo").click()
    wait_text(page, ".kw-editor .kwe-status", "Redone.")
    assert nb.eval("[e.describe() for e in editor.history]") == [
        "Set the activation of 'hidden' to 'elu'"]


def test_compare_several_runs_a_sweep_and_a_row_applies_its_candidate(nb):
    page = nb.page
    start_from_original(nb)
    select_layer(nb, "hidden")
    page.locator(".kw-editor .kwe-compare .jupyter-widget-Collapse-header").first.click()
    choices = page.locator(".kw-editor .kwe-compare-choices select").first
    choices.wait_for(state="visible")
    choices.select_option(["activation: tanh", "activation: gelu", "activation: sigmoid"])
    nb.kernel_until("sorted(editor.compare_panel.choices.value)", [
        "activation: gelu", "activation: sigmoid", "activation: tanh"])
    page.locator(".kw-editor button.kwe-compare-run").click()
    wait_text(page, ".kw-editor .kwe-status", "Compared 3 candidates for hidden", timeout=120_000)
    wait_text(page, ".kw-editor .kwe-compare-table", "ranked by accuracy")
    page.wait_for_function(
        "() => { const i = document.querySelector('.kw-editor .kwe-compare-figure img')"
        " || document.querySelector('.kw-editor img.kwe-compare-figure');"
        " return i && i.naturalWidth > 100; }")
    assert nb.eval("len(editor.history)") == 0  # comparing applies nothing
    nb.screenshot("editor_compare_several", page.locator(".kw-editor .kwe-compare").first)
    page.locator(".kw-editor img.kwe-compare-figure").first.scroll_into_view_if_needed()
    nb.screenshot("editor_compare_several_figure",
                  page.locator(".kw-editor img.kwe-compare-figure").first)
    page.locator(".kw-editor button.kwe-compare-apply", has_text="Apply gelu").click()
    wait_text(page, ".kw-editor .kwe-status", "Applied: Set the activation of 'hidden' to 'gelu'")
    assert nb.eval("[e.describe() for e in editor.history]") == [
        "Set the activation of 'hidden' to 'gelu'"]


def test_settings_tab_padding_refused_then_allowed_and_dropout_rate(nb):
    """The Settings tab (a SetSettings edit): its form comes from the catalog, prefilled."""
    page = nb.page
    start_from_original(nb)
    select_layer(nb, "conv")
    choose_tab(page, "Settings")
    cut = page.evaluate(
        "() => [...document.querySelectorAll('.kw-editor .kwe-tabs .lm-TabBar-tabLabel')]"
        ".filter(e => e.scrollWidth > e.clientWidth).map(e => e.textContent)")
    assert cut == []  # every tab title shows in full
    padding = page.locator(".kw-editor .kwe-setting-padding select")
    padding.wait_for()
    assert padding.input_value() == "same"  # the layer's own value
    assert page.locator(".kw-editor .kwe-setting-filters").count() == 0  # width: not a setting here
    padding.select_option("valid")
    wait_text(page, ".kw-editor .kwe-preview-line", "cannot apply")
    wait_text(page, ".kw-editor .kwe-preview-line", "'hidden' (Dense)")
    assert page.locator(".kw-editor button.kwe-apply").is_disabled()
    nb.screenshot("editor_settings_refused", page.locator(".kw-editor .kwe-panel").first)
    reinitialize = page.locator(".kw-editor .kwe-reinitialize input")
    reinitialize.check()
    wait_text(page, ".kw-editor .kwe-preview-line", "downstream affected (reinitialised): hidden")
    press_apply(nb, "Applied: Set padding='valid' on 'conv'")
    assert nb.eval("editor.model.get_layer('conv').padding") == "valid"
    assert nb.eval("editor.original.get_layer('conv').padding") == "same"
    assert nb.eval("[editor.report[n].status for n in ('conv', 'hidden', 'head')]") == [
        "kept", "reinitialised", "kept"]
    reinitialize.uncheck()
    nb.screenshot("editor_after_settings", page.locator(".kw-editor").first)
    select_layer(nb, "drop")
    choose_tab(page, "Settings")
    set_number(page, "rate", 0.25)
    wait_text(page, ".kw-editor .kwe-preview-line", "Set rate=0.25 on 'drop'")
    press_apply(nb, "Applied: Set rate=0.25 on 'drop'")
    assert nb.eval("editor.model.get_layer('drop').rate") == 0.25
    assert nb.eval("[edit.kind for edit in editor.history]") == ["SetSettings", "SetSettings"]
    assert nb.eval("editor.to_code().strip().splitlines()[-1]") == (
        "model = kerawidgets.set_settings(model, 'drop', rate=0.25)")


def test_a_closed_editor_leaves_the_page(notebook_page):
    nb = notebook_page([
        "import numpy as np, keras\nfrom kerawidgets.widgets import ModelEditor\n"
        "inp = keras.Input((4,), name='x')\n"
        "out = keras.layers.Dense(3, activation='softmax', name='head')("
        "keras.layers.Dense(8, activation='relu', name='hidden')(inp))\n"
        "editor = ModelEditor(keras.Model(inp, out), np.zeros((8, 4), 'float32'))\n"
        "editor",
    ], name="editor_close_ui.ipynb")
    page = nb.page
    page.wait_for_selector(".kw-editor .kw-graph[data-painted]", timeout=120_000)
    nb.run_cell("editor.close()")
    page.wait_for_function("() => !document.querySelector('.kw-editor')", timeout=60_000)
    nb.screenshot("editor_closed")  # the cell's output area is empty
    assert nb.eval("repr(editor)").endswith(": closed>")
