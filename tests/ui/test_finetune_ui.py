"""The editor's Fine-tune section in a real JupyterLab: Run, a live curve, Stop, Undo.

Run: pytest -m ui tests/ui/test_finetune_ui.py
"""

import pytest

from tests.ui.test_editor_ui import wait_not_busy, wait_text

pytestmark = pytest.mark.ui

SETUP = [
    "import os\nos.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\nimport numpy as np, keras\n"
    "from sklearn.datasets import load_digits\n"
    "from kerawidgets.widgets import ModelEditor\n"
    "from kerawidgets.edits import SetActivation\n"
    "keras.utils.set_random_seed(0)",
    "digits = load_digits()\n"
    "x = (digits.images[..., None] / 16.0).astype('float32'); y = digits.target\n"
    "inp = keras.Input((8, 8, 1), name='digit')\n"
    "h = keras.layers.Conv2D(16, 3, padding='same', activation='relu', name='conv')(inp)\n"
    "h = keras.layers.Flatten(name='flatten')(h)\n"
    "h = keras.layers.Dense(32, activation='relu', name='hidden')(h)\n"
    "out = keras.layers.Dense(10, activation='softmax', name='head')(h)\n"
    "model = keras.Model(inp, out, name='digits_cnn')\n"
    "model.compile('adam', 'sparse_categorical_crossentropy', metrics=['accuracy'])\n"
    "_ = model.fit(x[:1200], y[:1200], epochs=3, batch_size=64, verbose=0)",
    "editor = ModelEditor(model, x[1200:1456], y[1200:1456], height='420px')\n"
    "_ = editor.apply(SetActivation('hidden', 'sigmoid'))\n"
    "before = [w.copy() for w in editor.model.get_weights()]\n"
    "editor",
]

CURVE_BATCHES = ("() => { const s = document.querySelector('.kw-editor .kwe-finetune-curve svg');"
                 " return s ? Number(s.dataset.batches) : 0; }")


def set_number(page, cls, value):
    box = page.locator(f".kw-editor .{cls} input").first
    box.fill(str(value))
    box.press("Enter")


def test_fine_tune_runs_with_a_live_curve_and_stop_ends_it_early(notebook_page):
    nb = notebook_page(SETUP, name="finetune_ui.ipynb", viewport=(1400, 1500))
    page = nb.page
    page.wait_for_selector(".kw-editor .kw-graph[data-painted]", timeout=120_000)
    wait_not_busy(page)
    page.locator(".kw-editor .kwe-finetune .jupyter-widget-Collapse-header").first.click()
    run = page.locator(".kw-editor button.kwe-finetune-run").first
    run.wait_for(state="visible")
    wait_text(page, ".kw-editor .kwe-finetune-note", "256 samples")
    # 200 epochs of 32 batches: far longer than the test waits before pressing Stop.
    set_number(page, "kwe-finetune-epochs", 200)
    set_number(page, "kwe-finetune-batch-size", 8)
    nb.kernel_until("[editor.finetune_panel.epochs.value,"
                    " editor.finetune_panel.batch_size.value]", [200, 8])
    run.click()
    page.wait_for_function(f"() => ({CURVE_BATCHES})() >= 3", timeout=120_000)
    first = page.evaluate(CURVE_BATCHES)
    page.wait_for_function(f"(n) => ({CURVE_BATCHES})() > n", arg=first, timeout=120_000)
    assert nb.kernel_eval("editor.fine_tuning") is True  # the kernel answers while it trains
    assert page.locator(".kw-editor button.kwe-apply").first.is_disabled()
    nb.screenshot("finetune_running", page.locator(".kw-editor .kwe-finetune").first)
    page.locator(".kw-editor button.kwe-finetune-stop").first.click()
    wait_text(page, ".kw-editor .kwe-finetune-result", "stopped after", timeout=120_000)
    wait_not_busy(page)
    step = nb.kernel_eval(
        "dict(stopped=editor.history[-1].stopped, batches=editor.history[-1].batches,"
        " total=editor.history[-1].total_batches, running=editor.fine_tuning,"
        " steps=[e.describe() for e in editor.history])")
    assert step["stopped"] and not step["running"] and step["total"] == 6400
    assert first < step["batches"] < 6400
    assert step["steps"][-1].startswith(f"Fine-tune stopped after {step['batches']} of 6400")
    wait_text(page, ".kw-editor .kwe-status", f"stopped after {step['batches']} of 6400")
    assert page.evaluate(CURVE_BATCHES) == step["batches"]
    page.wait_for_function(  # the before/after plots were redrawn for the fine-tuned model
        "() => document.querySelector('.kw-editor .kwe-plot-comparison img, "
        ".kw-editor img.kwe-plot-comparison').naturalWidth > 100")
    nb.screenshot("finetune_stopped", page.locator(".kw-editor").first)
    page.locator(".kw-editor button.kwe-undo").first.click()
    wait_text(page, ".kw-editor .kwe-status", "Undone.")
    assert nb.kernel_eval(
        "len(editor.history) == 1 and all(np.array_equal(a, b) for a, b in"
        " zip(before, editor.model.get_weights()))") is True
