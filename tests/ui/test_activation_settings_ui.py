"""The editor's activation tab in a real JupyterLab: activation layers read with their
settings (ReLU6 is relu6) and layers with several activation settings (LSTM)."""

import pytest

from tests.ui.test_editor_ui import select_layer, wait_not_busy, wait_text

pytestmark = pytest.mark.ui

SETUP = [
    "import os\nos.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\nimport numpy as np, keras\n"
    "from kerawidgets.widgets import ModelEditor\n"
    "keras.utils.set_random_seed(0)",
    "inp = keras.Input((8, 8), name='seq')\n"
    "h = keras.layers.Dense(8, name='proj')(inp)\n"
    "h = keras.layers.ReLU(6.0, name='relu6_a')(h)\n"
    "h = keras.layers.LSTM(6, return_sequences=True, name='lstm')(h)\n"
    "out = keras.layers.Dense(3, activation='softmax', name='head')(keras.layers.Flatten(name='flat')(h))\n"
    "model = keras.Model(inp, out, name='gates')\n"
    "x = np.random.default_rng(0).normal(size=(16, 8, 8)).astype('float32')\n"
    "editor = ModelEditor(model, x, height='460px')\n"
    "editor",
]

SETTING = ".kw-editor .kwe-activation-setting"
ACTIVATION = ".kw-editor .kwe-activation select"


@pytest.fixture(scope="module")
def nb(module_notebook_page):
    nb = module_notebook_page(SETUP, name="activation_settings_ui.ipynb", viewport=(1400, 1200))
    nb.page.wait_for_selector(".kw-editor .kw-graph[data-painted]", timeout=120_000)
    return nb


def test_relu6_is_shown_as_relu6_and_already_used(nb):
    page = nb.page
    select_layer(nb, "relu6_a")
    assert page.locator(ACTIVATION).input_value() == "relu6"
    assert not page.locator(SETTING).is_visible()  # one plain `activation` setting
    wait_text(page, ".kw-editor .kwe-info", "relu6")
    assert page.locator(".kw-editor button.kwe-apply").is_disabled()
    page.locator(ACTIVATION).select_option("relu")  # unbounded relu: a real change
    wait_text(page, ".kw-editor .kwe-preview-line", "'relu'")
    wait_not_busy(page)
    assert not page.locator(".kw-editor button.kwe-apply").is_disabled()
    assert nb.kernel_eval("editor.pending_edit().describe()") == \
        "Set the activation of 'relu6_a' to 'relu'"


def test_lstm_offers_both_activation_settings(nb):
    page = nb.page
    select_layer(nb, "lstm")
    setting = page.locator(f"{SETTING} select")
    page.wait_for_selector(f"{SETTING} select", state="visible")
    assert [o.strip() for o in setting.locator("option").all_inner_texts()] == [
        "activation", "recurrent_activation"]
    assert page.locator(ACTIVATION).input_value() == "tanh"
    setting.select_option("recurrent_activation")
    page.wait_for_function(
        "(sel) => document.querySelector(sel).value === 'sigmoid'", arg=ACTIVATION)
    wait_not_busy(page)
    page.locator(ACTIVATION).select_option("hard_sigmoid")
    wait_text(page, ".kw-editor .kwe-preview-line", "'hard_sigmoid'")
    wait_not_busy(page)
    nb.screenshot("editor_activation_setting", page.locator(".kw-editor").first)
    page.locator(".kw-editor button.kwe-apply").click()
    wait_text(page, ".kw-editor .kwe-status", "Applied")
    assert nb.kernel_eval(
        "editor.model.get_layer('lstm').cell.recurrent_activation.__name__") == "hard_sigmoid"
    assert nb.kernel_eval("editor.model.get_layer('lstm').cell.activation.__name__") == "tanh"
