"""ModelEditor on a subclassed model in a real JupyterLab (issue 14): click a sub-layer, Apply."""

import pytest

from tests.ui.test_editor_ui import node, select_layer, wait_not_busy, wait_text

pytestmark = pytest.mark.ui

SETUP = [
    "import os\nos.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\nimport numpy as np, keras\n"
    "from keras import layers\nfrom kerawidgets.widgets import ModelEditor\n"
    "keras.utils.set_random_seed(0)",
    "class Block(layers.Layer):\n"
    "    def __init__(self, **kwargs):\n"
    "        super().__init__(**kwargs)\n"
    "        self.inner = layers.Dense(8, activation='relu', name='inner')\n"
    "        self.add = layers.Add(name='add')\n"
    "    def call(self, x):\n"
    "        return self.add([x, self.inner(x)])\n"
    "class ResidualMLP(keras.Model):\n"
    "    def __init__(self, **kwargs):\n"
    "        super().__init__(**kwargs)\n"
    "        self.stem = layers.Dense(8, activation='tanh', name='stem')\n"
    "        self.blocks = [Block(name=f'block{i}') for i in range(2)]\n"
    "        self.head = layers.Dense(3, activation='softmax', name='head')\n"
    "    def call(self, x):\n"
    "        x = self.stem(x)\n"
    "        for block in self.blocks:\n"
    "            x = block(x)\n"
    "        return self.head(x)\n"
    "x = np.random.default_rng(0).normal(size=(64, 5)).astype('float32')\n"
    "model = ResidualMLP(name='residual_mlp')\n"
    "_ = model(x)",
    "editor = ModelEditor(model, x, height='520px')\neditor",
]


def _editor_notebook(module_notebook_page, setup, name):
    """A notebook running `setup`, once its editor's graph is painted."""
    nb = module_notebook_page(setup, name=name, viewport=(1400, 1500))
    nb.page.wait_for_selector(".kw-editor .kw-graph[data-painted]", timeout=120_000)
    return nb


def _apply_gelu(page):
    """Pick gelu in the Activation tab of the selected layer, Apply, wait for the plots."""
    page.locator(".kw-editor .kwe-activation select").select_option("gelu")
    wait_text(page, ".kw-editor .kwe-preview-line", "'gelu'")
    page.locator(".kw-editor button.kwe-apply").click()
    wait_text(page, ".kw-editor .kwe-status", "Applied")
    wait_not_busy(page)
    page.wait_for_function(
        "() => { const i = document.querySelector('.kw-editor .kwe-plot-comparison img');"
        " return i && i.naturalWidth > 100; }")


@pytest.fixture(scope="module")
def nb(module_notebook_page):
    return _editor_notebook(module_notebook_page, SETUP, "subclassed_ui.ipynb")


def test_click_a_sub_layer_of_a_subclassed_model_and_apply(nb):
    page = nb.page
    assert node(page, "stem").count() == 1
    nb.screenshot("subclassed_editor_graph", page.locator(".kw-editor .kw-graph").first)
    select_layer(nb, "stem")
    _apply_gelu(page)
    assert nb.eval("type(editor.model).__name__") == "ResidualMLP"
    assert nb.eval("editor.model.stem.activation.__name__") == "gelu"
    assert nb.eval("model.stem.activation.__name__") == "tanh"
    assert nb.eval("[n.id for n in editor.view.graph.nodes if n.group == 'block1']") == [
        "block1/input", "block1/inner", "block1/add"]
    page.wait_for_function(
        "() => [...document.querySelectorAll('.kw-editor img')].every(i => i.complete)")
    nb.screenshot("subclassed_editor_after_apply", page.locator(".kw-editor").first)


NESTED_SETUP = [
    SETUP[0],
    "class MLP(keras.Model):\n"
    "    def __init__(self, **kwargs):\n"
    "        super().__init__(**kwargs)\n"
    "        self.dense1 = layers.Dense(8, activation='relu', name='dense1')\n"
    "        self.head = layers.Dense(3, activation='softmax', name='head')\n"
    "    def call(self, x):\n"
    "        return self.head(self.dense1(x))\n"
    "features = keras.Input((5,), name='features')\n"
    "pre = layers.Dense(5, activation='tanh', name='pre')(features)\n"
    "outer = keras.Model(features, MLP(name='inner_mlp')(pre), name='outer')\n"
    "x = np.random.default_rng(0).normal(size=(64, 5)).astype('float32')",
    "editor = ModelEditor(outer, x, height='520px')\neditor",
]


@pytest.fixture(scope="module")
def nested_nb(module_notebook_page):
    return _editor_notebook(module_notebook_page, NESTED_SETUP, "subclassed_nested_ui.ipynb")


def test_click_a_layer_inside_a_nested_subclassed_model_and_apply(nested_nb):
    nb, page = nested_nb, nested_nb.page
    assert node(page, "inner_mlp/dense1").count() == 1
    nb.screenshot("subclassed_nested_editor_graph", page.locator(".kw-editor .kw-graph").first)
    select_layer(nb, "inner_mlp/dense1")
    _apply_gelu(page)
    assert nb.eval("type(editor.model.get_layer('inner_mlp')).__name__") == "MLP"
    assert nb.eval("editor.model.get_layer('inner_mlp').dense1.activation.__name__") == "gelu"
    assert nb.eval("outer.get_layer('inner_mlp').dense1.activation.__name__") == "relu"
    page.wait_for_function(
        "() => [...document.querySelectorAll('.kw-editor img')].every(i => i.complete)")
    nb.screenshot("subclassed_nested_editor_after_apply", page.locator(".kw-editor").first)
