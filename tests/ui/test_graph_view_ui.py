"""GraphView in a real JupyterLab driven by Chromium (run: pytest -m ui tests/ui)."""

import pytest

pytestmark = pytest.mark.ui

HOSTILE = "<img src=x onerror=alert(1)>"

SETUP = [
    "import os\nos.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\nimport keras\n"
    "from kerawidgets.widgets import GraphView",
    # A functional model with a nested Sequential (open by default), a skip connection,
    # a frozen layer and a layer whose name is markup.
    "inp = keras.Input((8,), name='features')\n"
    "h = keras.layers.Dense(8, name='dense_a')(inp)\n"
    "inner = keras.Sequential([keras.Input((8,), name='inner_in'),\n"
    "                          keras.layers.Dense(8, name='inner_dense'),\n"
    "                          keras.layers.ReLU(name='inner_relu')], name='inner')\n"
    "skip = keras.layers.Add(name='skip')([inner(h), h])\n"
    f"odd = keras.layers.Dense(4, name={HOSTILE!r})(skip)\n"
    "frozen = keras.layers.Dense(2, name='head', trainable=False)(odd)\n"
    "model = keras.Model(inp, frozen, name='demo')\n"
    "view = GraphView(model, height='460px')\n"
    "view",
]


def node(page, node_id, index=0):
    return page.locator(f".kw-graph .kw-node[data-id='{node_id}']").nth(index)


@pytest.fixture(scope="module")
def nb(module_notebook_page):
    nb = module_notebook_page(SETUP, name="graph_view_ui.ipynb")
    nb.page.wait_for_selector(".kw-graph[data-painted]", timeout=60_000)
    return nb


def test_widget_renders(nb):
    page = nb.page
    ids = nb.eval("sorted(n.id for n in view.graph.nodes)")
    drawn = page.locator(".kw-graph .kw-node").evaluate_all(
        "els => els.map(e => e.getAttribute('data-id')).sort()")
    assert drawn == ids
    assert page.locator(".kw-graph .kw-edge").count() == nb.eval("len(view.scene['edges'])")
    assert page.locator(".kw-graph .kw-frame").count() == 1  # the nested Sequential
    assert "kw-frozen" in node(page, "head").get_attribute("class")
    nb.screenshot("graph_view_rendered", page.locator(".kw-graph").first)


def test_click_selects_in_kernel(nb):
    page = nb.page
    node(page, "dense_a").click()
    page.wait_for_function(
        "() => document.querySelector(\".kw-node[data-id='dense_a']\")"
        ".classList.contains('kw-selected')")
    assert nb.eval("view.selected") == {"id": "dense_a", "layer": "dense_a"}
    node(page, "inner/inner_dense").click()
    assert nb.eval("view.selected") == {"id": "inner/inner_dense", "layer": "inner/inner_dense"}


def test_kernel_refuses_unknown_selection(nb):
    page = nb.page
    # Forge a selection of a node that does not exist through the widget model.
    page.evaluate(
        "() => { const el = document.querySelector(\".kw-node[data-id='head']\");"
        " el.dispatchEvent(new MouseEvent('click', {bubbles: true})); }")
    assert nb.eval("view.selected['id']") == "head"
    nb.run_cell("view.selected = {'id': 'no_such_layer'}")
    assert nb.eval("view.selected") == {"id": "head", "layer": "head"}


def test_keyboard_moves_and_selects(nb):
    page = nb.page
    node(page, "features").focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    assert nb.eval("view.selected['id']") == "dense_a"


def test_second_view_shows_the_same_selection(nb):
    page = nb.page
    nb.run_cell("view")
    page.wait_for_function("() => document.querySelectorAll('.kw-graph').length >= 2")
    node(page, "skip", 0).click()
    second = node(page, "skip", 1)
    page.wait_for_function(
        "() => [...document.querySelectorAll(\".kw-node[data-id='skip']\")]"
        ".every(e => e.classList.contains('kw-selected'))")
    assert "kw-selected" in second.get_attribute("class")
    nb.run_cell("from IPython.display import clear_output; clear_output()")


def test_group_opens_and_closes(nb):
    page = nb.page
    page.locator(".kw-graph .kw-frame-header[data-group='inner']").first.click()
    node(page, "inner").wait_for()
    assert nb.eval("view.open_groups") == []
    assert page.locator(".kw-graph .kw-node[data-id='inner/inner_dense']").count() == 0
    nb.screenshot("graph_view_group_closed", page.locator(".kw-graph").first)
    node(page, "inner").click()
    node(page, "inner/inner_dense").wait_for()
    assert nb.eval("view.open_groups") == ["inner"]


def test_heat_colours_nodes(nb):
    page = nb.page
    nb.run_cell("view.set_heat({'dense_a': 1.0, 'head': 0.5, 'skip': 0.1})")
    page.wait_for_selector(".kw-node[data-id='dense_a'][data-heat]")
    fill = node(page, "dense_a").locator(".kw-body").evaluate("e => getComputedStyle(e).fill")
    assert fill == "rgb(215, 48, 31)"
    half = node(page, "head").locator(".kw-body").evaluate("e => getComputedStyle(e).fill")
    assert half == "rgb(253, 174, 97)"
    nb.run_cell("view.mark('skip', 'error')")
    page.wait_for_selector(".kw-node[data-id='skip'].kw-mark-error")
    nb.screenshot("graph_view_heat", page.locator(".kw-graph").first)


def test_hostile_layer_name_is_text(nb):
    page = nb.page
    nodes = page.locator(".kw-graph .kw-node").evaluate_all(
        "els => els.map(e => e.querySelector('.kw-label').textContent)")
    assert any(label.startswith("<img") for label in nodes)
    assert page.locator(".kw-graph img").count() == 0
    node_id = nb.eval("[n.id for n in view.graph.nodes if n.name.startswith('<img')][0]")
    target = page.locator(".kw-graph .kw-node").filter(has_text="<img").first
    target.hover()
    tooltip = page.locator(".kw-graph .kw-tooltip").first
    assert HOSTILE in tooltip.inner_text()
    target.click()
    assert nb.eval("view.selected['id']") == node_id
    page.wait_for_timeout(300)
    assert nb.dialogs == []



def test_long_model_folds_and_search_jumps(notebook_page):
    nb = notebook_page([
        "import os\nos.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\nimport keras\n"
        "from kerawidgets.widgets import GraphView\n"
        "base = keras.applications.MobileNetV2(alpha=0.35, weights=None, input_shape=(32, 32, 3),"
        " include_top=False)\n"
        "base.trainable = False\n"
        "inp = keras.Input((32, 32, 3), name='image')\n"
        "x = keras.layers.GlobalAveragePooling2D(name='pool')(base(inp))\n"
        "out = keras.layers.Dense(10, activation='softmax', name='classifier')(x)\n"
        "model = keras.Model(inp, out, name='classifier_model')\n"
        "view = GraphView(model, open_groups=['mobilenetv2_0.35_32'], height='640px')\n"
        "view",
    ], name="graph_view_long.ipynb")
    page = nb.page
    page.wait_for_selector(".kw-graph[data-painted]")
    closed = page.locator(".kw-graph .kw-node.kw-closed").count()
    assert closed > 10  # the blocks start folded
    search = page.locator(".kw-graph .kw-search-input")
    search.fill("block_3_expand")
    page.locator(".kw-graph .kw-result").first.wait_for()
    search.press("Enter")
    node(page, "mobilenetv2_0.35_32/block_3_expand").wait_for()
    page.wait_for_function(
        "() => document.querySelector(\".kw-node[data-id='mobilenetv2_0.35_32/block_3_expand']\")"
        "?.classList.contains('kw-selected')")
    assert nb.eval("view.selected['id']") == "mobilenetv2_0.35_32/block_3_expand"
    assert "mobilenetv2_0.35_32/block_3" in nb.eval("view.open_groups")
    nb.run_cell("view.set_heat({'mobilenetv2_0.35_32/block_3_expand': 1.0,"
                " 'mobilenetv2_0.35_32/block_3_project': 0.4, 'classifier': 0.7})\n"
                "view.mark('classifier', 'edited')")
    page.wait_for_selector(".kw-node[data-id='classifier'][data-heat]")
    page.mouse.move(5, 5)
    nb.screenshot("graph_view_mobilenet", page.locator(".kw-graph").first)


def test_dark_theme(nb):
    page = nb.page
    light = node(page, "features").locator(".kw-body").evaluate("e => getComputedStyle(e).fill")
    nb.run_cell("view.theme = 'dark'")
    page.wait_for_selector(".kw-graph.kw-dark")
    dark = node(page, "features").locator(".kw-body").evaluate("e => getComputedStyle(e).fill")
    assert dark != light
    nb.screenshot("graph_view_dark", page.locator(".kw-graph").first)
    nb.run_cell("view.theme = 'auto'")
