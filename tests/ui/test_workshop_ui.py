"""What a class sees in JupyterLab, at 900 px and full width (issue 12, items 2, 6, 8, 10).

- the tour works clicking first or running all first;
- the panel's controls say what is true now (labels, checkbox, messages, Remove, report);
- the workshop's checks read the cell's own result, give a next step, never the answer.

Run: pytest -m ui tests/ui/test_workshop_ui.py
"""

import json
from pathlib import Path

import pytest

from tests.ui.test_editor_ui import choose_tab, wait_not_busy, wait_text

pytestmark = pytest.mark.ui

REPO = Path(__file__).resolve().parents[2]
WIDTHS = {"900px": (900, 1300), "full": (1400, 1100)}


def notebook_cells(name):
    """The code cells' sources of a notebook of the repository (markdown dropped)."""
    nb = json.loads((REPO / "notebooks" / name).read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def error_outputs(page) -> int:
    """Error outputs in the open notebook's model (JupyterLab renders only cells in view)."""
    return page.evaluate(
        "() => { const m = window.jupyterapp.shell.currentWidget.content.model; let n = 0;"
        " for (let i = 0; i < m.cells.length; i++) { const c = m.cells.get(i);"
        "  if (c.type !== 'code') continue;"
        "  for (let j = 0; j < c.outputs.length; j++) if (c.outputs.get(j).type === 'error') n++; }"
        " return n; }")


def run_command(nb, command, active_cell):
    """Run a notebook command (run-all-above...) with cell `active_cell` active; wait idle."""
    nb.page.evaluate(
        "([command, index]) => { const panel = window.jupyterapp.shell.currentWidget;"
        " panel.content.activeCellIndex = index;"
        " return window.jupyterapp.commands.execute(command); }", [command, active_cell])
    # The command sent every cell's execute request; a request sent after them is
    # answered once they have all run (as `Notebook.run_all`).
    nb.kernel_eval("None")
    nb.wait_idle()


def click_tanh_on_conv2(nb):
    page = nb.page
    select_layer(nb, "conv2")
    page.locator(".kw-editor .kwe-activation select").select_option("tanh")
    wait_text(page, ".kw-editor .kwe-preview-line", "every existing weight is kept")
    page.locator(".kw-editor button.kwe-apply").click()
    wait_text(page, ".kw-editor .kwe-status", "Applied: Set the activation of 'conv2' to 'tanh'")


# --- item 2: the tour, both ways ---------------------------------------------------


def test_tour_click_through_after_run_all(notebook_page):
    cells = notebook_cells("01_tour.ipynb")
    nb = notebook_page(cells, name="tour_run_all.ipynb", viewport=WIDTHS["900px"])
    page = nb.page
    nb.show_cell(next(i for i, c in enumerate(cells) if c.startswith("editor = ")))
    page.wait_for_selector(".kw-editor .kw-graph[data-painted]", timeout=120_000)
    assert error_outputs(page) == 0
    # Run All scripted its own editor: the displayed one is still on the trained model.
    assert nb.kernel_eval("[editor.model is editor.original, len(scripted.history)]") == [True, 1]
    page.locator(".kw-editor").first.scroll_into_view_if_needed()
    click_tanh_on_conv2(nb)
    assert nb.kernel_eval("editor.model.get_layer('conv2').activation.__name__") == "tanh"
    status = page.locator(".kw-editor .kwe-status").first.inner_text()
    assert "already uses" not in status and "Saved to" not in status
    nb.screenshot("tour_click_after_run_all_900", page.locator(".kw-editor").first)


def test_tour_clicking_first_then_running_the_rest(notebook_page):
    cells = notebook_cells("01_tour.ipynb")
    nb = notebook_page(cells, name="tour_click_first.ipynb", run=False, viewport=WIDTHS["full"])
    page = nb.page
    editor_cell = next(i for i, c in enumerate(cells) if c.startswith("editor = "))
    run_command(nb, "notebook:run-all-above", editor_cell + 1)
    assert nb.kernel_eval("type(editor).__name__") == "ModelEditor"
    nb.show_cell(editor_cell)  # drawn only once in view
    page.wait_for_selector(".kw-editor .kw-graph[data-painted]", timeout=120_000)
    click_tanh_on_conv2(nb)
    run_command(nb, "notebook:run-all-below", editor_cell + 1)
    assert error_outputs(page) == 0
    assert nb.kernel_eval("[editor.model.get_layer('conv2').activation.__name__, "
                          "scripted.model.get_layer('conv2').activation.__name__, "
                          "len(editor.history), len(scripted.history)]") == ["tanh", "tanh", 1, 1]
    status = page.locator(".kw-editor .kwe-status").first.inner_text()
    assert "Saved to" not in status  # the tour's save() is the scripted editor's
    nb.screenshot("tour_click_first_full", page.locator(".kw-editor").first)


# --- items 6 and 8: the panel's controls and the report -----------------------------

PANEL_SETUP = [
    "import os\nos.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\nimport numpy as np, keras\n"
    "from kerawidgets.widgets import ModelEditor\nkeras.utils.set_random_seed(0)",
    # Six Dense layers alike (a bulk edit makes one group of six) after a first convolution
    # whose removal changes the shape its consumer gets.
    "inp = keras.Input((8, 8, 1), name='digit')\n"
    "h = keras.layers.Conv2D(16, 3, padding='same', activation='relu', name='conv')(inp)\n"
    "h = keras.layers.Conv2D(8, 3, padding='same', activation='relu', name='conv_b')(h)\n"
    "h = keras.layers.MaxPooling2D(name='pool')(h)\n"
    "h = keras.layers.Flatten(name='flatten')(h)\n"
    "for i in range(6):\n"
    "    h = keras.layers.Dense(24, activation='relu', name=f'dense_block_{i}')(h)\n"
    "out = keras.layers.Dense(10, activation='softmax', name='head')(h)\n"
    "model = keras.Model(inp, out, name='many_dense')\n"
    "rng = np.random.default_rng(0)\n"
    "x = rng.random((32, 8, 8, 1)).astype('float32'); y = rng.integers(0, 10, 32)",
    "editor = ModelEditor(model, x, y, height='480px')\neditor",
]


def find_layer(nb, name):
    """Select a layer through the graph's "Find a layer" box (it may be out of view)."""
    page = nb.page
    search = page.locator(".kw-editor .kw-search-input").first
    search.fill(name)
    page.locator(".kw-editor .kw-result").first.wait_for()
    search.press("Enter")
    page.wait_for_function(
        "(name) => { const t = document.querySelector('.kw-editor .kwe-title');"
        " return t && t.textContent.trim().split(/\\s+/)[0] === name; }", arg=name)
    assert nb.kernel_eval("editor.view.selected.get('id')") == name
    wait_not_busy(page)


def select_layer(nb, name):
    """Click a node; wait until the panel's title names exactly it (conv, not conv_b)."""
    page = nb.page
    page.locator(f".kw-editor .kw-graph .kw-node[data-id='{name}']").first.click()
    page.wait_for_function(
        "(name) => { const t = document.querySelector('.kw-editor .kwe-title');"
        " return t && t.textContent.trim().split(/\\s+/)[0] === name; }", arg=name)
    assert nb.kernel_eval("editor.view.selected.get('id')") == name
    wait_not_busy(page)


def panel_text(page):
    return page.locator(".kw-editor .kwe-panel").first.inner_text()


def checkbox(page):
    return page.locator(".kw-editor .kwe-reinitialize input")


@pytest.mark.parametrize("width", list(WIDTHS))
def test_panel_controls_say_what_is_true(notebook_page, width):
    nb = notebook_page(PANEL_SETUP, name=f"panel_{width}.ipynb", viewport=WIDTHS[width])
    page = nb.page
    page.wait_for_selector(".kw-editor .kw-graph[data-painted]", timeout=120_000)
    # Toolbar summary whole (not "423.0k para…").
    summary = page.locator(".kw-editor .kw-status").first
    assert summary.evaluate("e => e.scrollWidth <= e.clientWidth + 1")
    assert "params" in summary.inner_text()

    # A layer without an activation: the disabled dropdown shows no stale activation.
    select_layer(nb, "pool")
    activation = page.locator(".kw-editor .kwe-activation select")
    assert activation.is_disabled() and activation.input_value() == "(no activation)"

    # Layer config opened: it scrolls in a short box, Apply stays near.
    select_layer(nb, "conv_b")
    page.locator(".kw-editor .jupyter-widget-Collapse-header, .kw-editor .p-Collapse-header,"
                 " .kw-editor .lm-Collapse-header").first.click()
    config = page.locator(".kw-editor .kwe-config pre").first
    config.wait_for()
    assert config.bounding_box()["height"] <= 190
    config_bottom = config.bounding_box()["y"] + config.bounding_box()["height"]
    apply = page.locator(".kw-editor button.kwe-apply").first.bounding_box()
    assert apply["y"] - config_bottom < 400
    page.locator(".kw-editor .jupyter-widget-Collapse-header, .kw-editor .p-Collapse-header,"
                 " .kw-editor .lm-Collapse-header").first.click()

    # Replace: class names only; the verdict follows the settings, and the label agrees.
    choose_tab(page, "Replace")
    # The layer types that fit are found when the tab opens: their options arrive then.
    page.locator(".kw-editor .kwe-replace select option", has_text="Conv2D").first.wait_for(
        state="attached")
    labels = page.locator(".kw-editor .kwe-replace select option").all_inner_texts()
    assert "Conv2D" in labels and not any("shape" in label for label in labels)
    page.locator(".kw-editor .kwe-replace select").select_option(label="Conv2D")
    filters = page.locator(".kw-editor .kwe-setting-filters input")
    filters.wait_for()
    filters.fill("4")
    filters.press("Enter")
    wait_text(page, ".kw-editor .kwe-preview-line", "cannot apply")
    text = panel_text(page)
    assert "Tick 'allow reinitialising downstream layers'" in text
    assert "Pass reinitialize" not in text and "re-initialis" not in text
    nb.screenshot(f"panel_replace_refused_{width}", page.locator(".kw-editor .kwe-panel").first)

    # Remove the first convolution: said once, allowed with the box ticked, box unticked after.
    select_layer(nb, "conv")
    choose_tab(page, "Remove")
    wait_text(page, ".kw-editor .kwe-preview-line", "cannot apply")
    assert panel_text(page).count("would feed") == 1
    checkbox(page).check()
    wait_text(page, ".kw-editor .kwe-preview-line", "downstream affected (reinitialised): conv_b")
    assert "re-initialis" not in panel_text(page)
    page.locator(".kw-editor button.kwe-apply").click()
    wait_text(page, ".kw-editor .kwe-status", "Applied: Remove 'conv'")
    wait_not_busy(page)
    assert nb.kernel_eval("[editor.report['conv'].status, editor.report['conv_b'].status]") == [
        "removed", "reinitialised"]
    assert not checkbox(page).is_checked()
    # Ticked, then Reset: unticked again.
    # Reset pressed at once, as a hurried user would: it runs after the tick's preview.
    checkbox(page).check()
    page.locator(".kw-editor button.kwe-reset").click()
    wait_text(page, ".kw-editor .kwe-status", "Reset to the original model")
    wait_not_busy(page)
    assert not checkbox(page).is_checked()
    assert nb.kernel_eval("editor.model is editor.original") is True

    # Item 6: a bulk edit of six layers is one row, expandable; the `why` column not clipped.
    choose_tab(page, "Activation")
    find_layer(nb, "dense_block_2")
    page.locator(".kw-editor .kwe-activation select").select_option("gelu")
    page.locator(".kw-editor .kwe-bulk input").check()
    wait_text(page, ".kw-editor .kwe-bulk", "apply to all 6 Dense layers")
    # ipywidgets may hold a model's update until its previous one is answered: ask the
    # kernel until the tick has arrived, then wait for the preview of the bulk edit.
    nb.kernel_until("editor.panel.bulk.value", True)
    pending = nb.kernel_eval("editor.pending_edit().describe()")
    assert "dense_block_5" in pending
    wait_text(page, ".kw-editor .kwe-preview-line", pending)
    wait_not_busy(page)
    page.locator(".kw-editor button.kwe-apply").click()
    wait_text(page, ".kw-editor .kwe-status", "Applied")
    wait_not_busy(page)
    report = page.locator(".kw-editor .kwe-report").first
    summary_row = report.locator("summary", has_text="6 Dense layers")
    summary_row.wait_for()
    assert report.locator("tr").count() == 2  # header + one group
    assert "activation relu → gelu" in report.inner_text()
    assert report.evaluate("e => e.scrollWidth <= e.clientWidth + 1")  # nothing cut on the right
    why = report.locator("td").nth(2).bounding_box()
    box = report.bounding_box()
    assert why["x"] + why["width"] <= box["x"] + box["width"] + 1
    summary_row.click()
    wait_text(page, ".kw-editor .kwe-report", "dense_block_5")
    report.scroll_into_view_if_needed()
    nb.screenshot(f"panel_report_grouped_{width}", page.locator(".kw-editor .kwe-panel").first)
    nb.screenshot(f"panel_editor_{width}", page.locator(".kw-editor").first)


# --- item 10: the workshop's checks in JupyterLab -----------------------------------------


def test_workshop_checks_read_the_cells_own_result(notebook_page):
    cells = notebook_cells("06_workshop.ipynb")
    nb = notebook_page(cells, name="workshop_lab.ipynb", viewport=WIDTHS["900px"])
    page = nb.page
    page.wait_for_selector(".kw-editor .kw-graph[data-painted]", timeout=120_000)
    assert error_outputs(page) == 0
    exercise_1 = next(c for c in cells if "model_gelu = None" in c)
    # A typo after a Run All: the error suggests the name, the check does not pass on the old result.
    out = nb.run_cell(exercise_1.replace('"gelu"', '"Gelu"'))
    assert "Did you mean 'gelu'" in out
    out = nb.run_cell("run_code_check(check_exercise_1)")
    assert "Not yet" in out and "not set" in out and "✅" not in out
    # An inplace=True attempt: every check says to re-run the model cell.
    nb.run_cell("kerawidgets.replace_activation(model, 'hidden', 'gelu', inplace=True)")
    out = nb.run_cell("run_code_check(check_exercise_2)")
    assert "Re-run the model cell" in out
    model_cell = next(c for c in cells if c.startswith("model = keras.Sequential"))
    nb.run_cell(model_cell)
    # Exercise 3, answered unsorted: the hint says to sort, and never prints the answer.
    exercise_3 = next(c for c in cells if "wide, fresh = None, None" in c)
    nb.run_cell(exercise_3.replace("fresh = sorted(wide.report.reinitialised)",
                                   "fresh = list(reversed(sorted(wide.report.reinitialised)))"))
    out = nb.run_cell("run_code_check(check_exercise_3)")
    assert "sorted" in out and "digit" not in out.split("AssertionError")[-1]
    nb.run_cell(exercise_3)
    assert "✅ Exercise 3 done" in nb.run_cell("run_code_check(check_exercise_3)")
    # Exercise 2 with a wrong dict value: the hint does not give the expected number.
    exercise_2 = next(c for c in cells if "agreements, best = None, None" in c)
    nb.run_cell(exercise_2 + "\nagreements['tanh'] = 0.123")
    out = nb.run_cell("run_code_check(check_exercise_2)")
    assert "Not yet" in out and "'tanh' is off" in out and "should be about" not in out
    # The widget exercise beside it, in JupyterLab too: a wrong pick gets a next step.
    choice = page.locator(".kw-exercise-2-choice select").first
    choice.scroll_into_view_if_needed()
    scores = nb.kernel_eval("{n: conv2_agreement(n) for n in CANDIDATES}")
    worst = min(scores, key=scores.get)
    choice.select_option(worst)
    exercise = page.locator(".kw-exercise", has=page.locator(".kw-exercise-2-choice")).first
    exercise.locator("button.kw-exercise-check").click()
    wait_text(page, ".kw-exercise-feedback .kw-exercise-notyet", "Try each one")
    feedback = exercise.locator(".kw-exercise-feedback").inner_text()
    best = max(scores, key=scores.get)
    assert repr(best) not in feedback and "%" not in feedback
    nb.screenshot("workshop_lab_exercise_2_900", exercise)
