"""GraphView in a real JupyterLab driven by Chromium (run: pytest -m ui tests/ui)."""

import os

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


def next_frames(page, count=2):
    """Wait until the page has painted `count` more frames (a condition, not a delay)."""
    page.evaluate("(n) => new Promise(done => { const step = (k) => k ? "
                  "requestAnimationFrame(() => step(k - 1)) : done(); step(n); })", count)


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
    nb.kernel_until("view.selected", {"id": "dense_a", "layer": "dense_a"})
    node(page, "inner/inner_dense").click()
    nb.kernel_until("view.selected", {"id": "inner/inner_dense", "layer": "inner/inner_dense"})


def test_kernel_refuses_unknown_selection(nb):
    page = nb.page
    # Forge a selection of a node that does not exist through the widget model.
    page.evaluate(
        "() => { const el = document.querySelector(\".kw-node[data-id='head']\");"
        " el.dispatchEvent(new MouseEvent('click', {bubbles: true})); }")
    nb.kernel_until("view.selected['id']", "head")
    nb.run_cell("view.selected = {'id': 'no_such_layer'}")
    assert nb.eval("view.selected") == {"id": "head", "layer": "head"}


def test_keyboard_moves_and_selects(nb):
    page = nb.page
    node(page, "features").focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    nb.kernel_until("view.selected['id']", "dense_a")


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
    nb.kernel_until("view.open_groups", [])
    assert page.locator(".kw-graph .kw-node[data-id='inner/inner_dense']").count() == 0
    nb.screenshot("graph_view_group_closed", page.locator(".kw-graph").first)
    node(page, "inner").click()
    node(page, "inner/inner_dense").wait_for()
    nb.kernel_until("view.open_groups", ["inner"])


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


def _fill(page, node_id):
    return node(page, node_id).locator(".kw-body").evaluate("e => getComputedStyle(e).fill")


def _rgb(text):
    return tuple(int(v) for v in text.strip("rgb() ").split(","))


def test_colour_by_menu_legend_badges_and_real_values(nb):
    page = nb.page
    nb.run_cell(
        "from kerawidgets import node_metrics\n"
        "view.set_metrics({'movement': node_metrics.metric('movement', {'dense_a': 0.004,"
        " 'skip': 0.3}), 'dead': node_metrics.metric('dead', {'dense_a': 0.42, 'skip': 0.05})})")
    graph = page.locator(".kw-graph").first
    legend = graph.locator(".kw-legend")
    legend.wait_for(state="visible")
    graph.scroll_into_view_if_needed()  # JupyterLab skips painting outputs out of view
    page.wait_for_function(
        "() => document.querySelector(\".kw-node[data-id='dense_a']\").dataset.value === '0.004'")
    # A fixed log scale: 0.4% movement stays pale, 30% is strong (not rescaled to the largest).
    assert _rgb(_fill(page, "dense_a"))[1] > 200  # pale: rgb(254, 222, 192)
    assert _rgb(_fill(page, "skip"))[1] < 130
    ticks = legend.locator(".kw-legend-tick")
    assert ticks.all_text_contents() == ["0.1%", "1.0%", "10.0%", "100%"]
    assert ticks.first.is_visible() and legend.locator(".kw-legend-bar").is_visible()
    assert "log scale" in legend.locator(".kw-legend-unit").text_content()
    options = legend.locator("select option").evaluate_all("os => os.map(o => o.value)")
    assert options == ["type", "heat", "movement", "dead"]
    node(page, "dense_a").hover()
    card = graph.locator(".kw-tooltip")
    card.wait_for(state="visible")
    rows = card.locator(".kw-tt-row").evaluate_all(
        "rows => rows.map(r => [...r.children].map(c => c.textContent))")
    assert ["movement", "0.4%"] in rows and ["dead units", "42.0%"] in rows
    page.mouse.move(5, 5)
    # The menu colours by dead units; the kernel takes the choice; badges past 20%.
    legend.locator("select").select_option("dead")
    page.wait_for_selector(".kw-graph[data-color-by='dead']")
    assert nb.kernel_eval("view.color_by") == "dead"
    badge = node(page, "dense_a").locator(".kw-metric-badge")
    badge.wait_for(state="visible")
    assert badge.text_content() == "42% dead"
    assert not node(page, "skip").locator(".kw-metric-badge").is_visible()
    assert ticks.all_text_contents()[-1] == "100%"
    # Selected and edited look different: a halo and the accent, against a purple outline.
    nb.run_cell("view.mark('dense_a', 'edited')\nview.select('skip')")
    page.wait_for_selector(".kw-node[data-id='skip'].kw-selected")
    page.wait_for_selector(".kw-node[data-id='dense_a'].kw-mark-edited")
    edited = node(page, "dense_a").locator(".kw-body").evaluate("e => getComputedStyle(e).stroke")
    chosen = node(page, "skip").locator(".kw-body").evaluate("e => getComputedStyle(e).stroke")
    assert edited != chosen
    assert node(page, "skip").locator(".kw-halo").is_visible()
    assert not node(page, "dense_a").locator(".kw-halo").is_visible()
    node(page, "skip").scroll_into_view_if_needed()
    nb.screenshot("graph_view_colour_by_dead", graph)
    page.set_viewport_size({"width": 900, "height": 900})
    try:
        page.wait_for_function("() => document.querySelector('.kw-graph').clientWidth < 900")
        graph.scroll_into_view_if_needed()
        nb.screenshot("graph_view_colour_by_900px", graph)
        nb.run_cell("view.theme = 'dark'")
        page.wait_for_selector(".kw-graph.kw-dark")
        graph.scroll_into_view_if_needed()
        nb.screenshot("graph_view_colour_by_dark_900px", graph)
    finally:
        nb.run_cell("view.theme = 'auto'")
        page.set_viewport_size({"width": 1400, "height": 900})
    nb.run_cell("view.set_metrics({})\nview.clear_marks()")
    page.wait_for_selector(".kw-graph[data-color-by='heat']")


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
    nb.kernel_until("view.selected['id']", node_id)
    next_frames(page)  # anything the click scheduled (an onerror, an alert) has run
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
    nb.kernel_until("view.selected['id']", "mobilenetv2_0.35_32/block_3_expand")
    nb.kernel_until("'mobilenetv2_0.35_32/block_3' in view.open_groups", True)
    nb.run_cell("view.set_heat({'mobilenetv2_0.35_32/block_3_expand': 1.0,"
                " 'mobilenetv2_0.35_32/block_3_project': 0.4, 'classifier': 0.7})\n"
                "view.mark('classifier', 'edited')")
    page.wait_for_selector(".kw-node[data-id='classifier'][data-heat]")
    page.mouse.move(5, 5)
    nb.screenshot("graph_view_mobilenet", page.locator(".kw-graph").first)
    _fit_pan_and_refit_on_a_tall_model(nb)


def _boxes_in_view(page):
    """How many boxes of the first view are drawn at least partly inside its viewport."""
    return page.evaluate(
        "() => { const v = document.querySelector('.kw-graph .kw-viewport').getBoundingClientRect();"
        " return [...document.querySelectorAll('.kw-graph .kw-node')].filter(n => {"
        " const r = n.getBoundingClientRect(); return r.right > v.left && r.left < v.right"
        " && r.bottom > v.top && r.top < v.bottom; }).length; }")


def _drag(page, dx, dy):
    box = page.locator(".kw-graph .kw-viewport").first.bounding_box()
    x, y = box["x"] + box["width"] - 6, box["y"] + box["height"] - 6
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx, y + dy, steps=4)
    page.mouse.up()


def _fit_pan_and_refit_on_a_tall_model(nb):
    page = nb.page
    graph = page.locator(".kw-graph").first
    # Every block open: a drawing thousands of pixels tall.
    nb.run_cell("view.open_groups = sorted(g.id for g in view.graph.groups)")
    page.wait_for_function(
        "() => document.querySelectorAll('.kw-graph .kw-node').length > 100", timeout=60_000)
    button(page, "Fit to view").click()
    scale = transform(page)[2]
    assert scale >= 0.35  # a usable view, not a 1-pixel column
    assert _boxes_in_view(page) >= 4
    nb.screenshot("graph_view_fit_tall", graph)
    # Panning is bounded: dragging far away keeps part of the drawing in view.
    for _ in range(3):
        _drag(page, 0, -2000)
    assert _boxes_in_view(page) >= 1
    for _ in range(3):
        _drag(page, 2000, 2000)
    assert _boxes_in_view(page) >= 1
    # Closing the backbone: the drawing is small again and refitted whole, not a strip.
    graph.locator(".kw-frame-header[data-group='mobilenetv2_0.35_32']").first.dispatch_event("click")
    page.wait_for_function("() => document.querySelectorAll('.kw-graph .kw-node').length < 10")
    page.wait_for_function(
        "() => { const v = document.querySelector('.kw-graph .kw-viewport').getBoundingClientRect();"
        " return [...document.querySelectorAll('.kw-graph .kw-node')].every(n => {"
        " const r = n.getBoundingClientRect(); return r.left >= v.left && r.right <= v.right"
        " && r.top >= v.top && r.bottom <= v.bottom; }); }")
    assert transform(page)[2] > 0.55
    nb.screenshot("graph_view_refit_after_close", graph)


def test_plain_wheel_scrolls_the_page_and_ctrl_wheel_zooms(nb):
    page = nb.page
    # Room to scroll below the graph.
    nb.run_cell("from IPython.display import HTML\nHTML('<div style=\"height:1600px\">end</div>')")
    viewport = page.locator(".kw-graph .kw-viewport").first
    viewport.scroll_into_view_if_needed()
    button(page, "Fit to view").click()
    before = transform(page)
    scroller = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer"
    top = page.evaluate("(s) => document.querySelector(s).scrollTop", scroller)
    hint = page.locator(".kw-graph .kw-wheel-hint").first
    assert not hint.is_visible()
    box = viewport.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, 240)
    page.wait_for_function("([s, t]) => document.querySelector(s).scrollTop > t",
                           arg=[scroller, top])
    assert transform(page) == pytest.approx(before)  # the graph did not zoom
    hint.wait_for(state="visible")
    assert "wheel zooms" in hint.inner_text()
    nb.screenshot("graph_view_wheel_hint", page.locator(".kw-graph").first)
    box = viewport.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.keyboard.down("Control")
    page.mouse.wheel(0, -240)
    page.keyboard.up("Control")
    page.wait_for_function(
        "(s) => { const t = document.querySelector('.kw-graph .kw-world').getAttribute('transform');"
        " return parseFloat(t.split('scale(')[1]) > s; }", arg=before[2] * 1.1)
    hint.wait_for(state="hidden")  # it fades by itself
    button(page, "Fit to view").click()
    nb.run_cell("from IPython.display import clear_output\nclear_output()")


def test_inserted_layer_is_in_view_after_set_model(nb):
    page = nb.page
    button(page, "Zoom in").click()
    button(page, "Zoom in").click()
    nb.run_cell(
        "x = keras.layers.Dense(4, name='extra_1')(model.get_layer('head').output)\n"
        "x = keras.layers.Dense(4, name='extra_2')(x)\n"
        "longer = keras.Model(model.inputs, keras.layers.Dense(2, name='last')(x))\n"
        "view.set_model(longer)\nview.mark('last', 'edited')")
    node(page, "last").wait_for()
    page.wait_for_function(
        "() => { const v = document.querySelector('.kw-graph .kw-viewport').getBoundingClientRect();"
        " const r = document.querySelector(\".kw-node[data-id='last']\").getBoundingClientRect();"
        " return r.top >= v.top && r.bottom <= v.bottom; }")
    nb.screenshot("graph_view_after_insert", page.locator(".kw-graph").first)
    nb.run_cell("view.set_model(model)\nview.clear_marks()")
    node(page, "last").wait_for(state="detached")


def test_dark_theme(nb):
    page = nb.page
    light = node(page, "features").locator(".kw-body").evaluate("e => getComputedStyle(e).fill")
    nb.run_cell("view.theme = 'dark'")
    page.wait_for_selector(".kw-graph.kw-dark")
    dark = node(page, "features").locator(".kw-body").evaluate("e => getComputedStyle(e).fill")
    assert dark != light
    nb.screenshot("graph_view_dark", page.locator(".kw-graph").first)
    nb.run_cell("view.theme = 'auto'")


# --- view controls, hover card, JupyterLab's theme ---------------------------------------

ACTIVE_JS = ("() => { const e = document.activeElement;"
             " return e ? (e.getAttribute('data-id') || e.getAttribute('data-group')"
             " || e.className || e.tagName) : null; }")


def transform(page):
    """(tx, ty, scale) of the first view's drawing."""
    import re

    text = page.locator(".kw-graph .kw-world").first.get_attribute("transform")
    tx, ty, scale = map(float, re.match(
        r"translate\(([-\d.e]+),([-\d.e]+)\) scale\(([-\d.e]+)\)", text).groups())
    return tx, ty, scale


def active(page):
    return page.evaluate(ACTIVE_JS)


def button(page, label):
    return page.locator(f".kw-graph .kw-button[aria-label^='{label}']").first


def test_pan_zoom_and_fit_buttons_change_the_view(nb):
    page = nb.page
    button(page, "Fit to view").click()
    fitted = transform(page)
    button(page, "Zoom in").click()
    zoomed = transform(page)
    assert zoomed[2] > fitted[2] * 1.2
    button(page, "Zoom out").click()
    button(page, "Zoom out").click()
    assert transform(page)[2] < zoomed[2] * 0.7
    button(page, "Fit to view").click()
    assert transform(page) == pytest.approx(fitted)
    # Drag the background: the drawing moves by the drag, the zoom stays.
    viewport = page.locator(".kw-graph .kw-viewport").first
    viewport.scroll_into_view_if_needed()
    box = viewport.bounding_box()
    # A corner with no node (the legend takes the bottom left one).
    x, y = box["x"] + box["width"] - 10, box["y"] + box["height"] - 10
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 40, y - 60, steps=6)
    assert page.evaluate("() => document.elementFromPoint(0, 0) !== null")
    page.mouse.up()
    panned = transform(page)
    assert panned[0] == pytest.approx(fitted[0] + 40, abs=1)
    assert panned[1] == pytest.approx(fitted[1] - 60, abs=1)
    assert panned[2] == pytest.approx(fitted[2])
    button(page, "Fit to view").click()


def test_hover_card_shows_shapes_and_params(nb):
    page = nb.page
    node(page, "dense_a").hover()
    card = page.locator(".kw-graph .kw-tooltip").first
    card.wait_for(state="visible")
    rows = card.locator(".kw-tt-row").evaluate_all(
        "rows => rows.map(r => [...r.children].map(c => c.textContent))")
    assert ["input", "(None, 8)"] in rows and ["output", "(None, 8)"] in rows
    assert ["params", "72"] in rows and ["class", "Dense"] in rows
    nb.screenshot("graph_view_hover_card", page.locator(".kw-graph").first)
    page.mouse.move(5, 5)
    card.wait_for(state="hidden")


def _switch_jupyterlab_theme(page, name):
    import re

    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Settings$")).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Theme$")).first.hover()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{name}$")).first.click()
    light = "false" if "Dark" in name else "true"
    page.wait_for_selector(f"body[data-jp-theme-light='{light}']", state="attached",
                           timeout=30_000)
    # The theme's CSS has reached the graph: its background is dark or light as asked.
    page.wait_for_function(
        "(dark) => { const g = document.querySelector('.kw-graph'); if (!g) return true;"
        " const [r, gr, b] = getComputedStyle(g).backgroundColor.match(/\\d+/g).map(Number);"
        " return (r + gr + b < 384) === dark; }", arg="Dark" in name, timeout=30_000)


def test_auto_theme_follows_jupyterlab(nb):
    page = nb.page
    assert nb.eval("view.theme") == "auto"
    graph = page.locator(".kw-graph").first
    body = node(page, "features").locator(".kw-body")
    light_fill = body.evaluate("e => getComputedStyle(e).fill")
    light_bg = graph.evaluate("e => getComputedStyle(e).backgroundColor")
    _switch_jupyterlab_theme(page, "JupyterLab Dark")
    try:
        dark_fill = body.evaluate("e => getComputedStyle(e).fill")
        dark_bg = graph.evaluate("e => getComputedStyle(e).backgroundColor")
        assert dark_fill != light_fill and dark_bg != light_bg
        assert "kw-dark" not in graph.get_attribute("class")  # followed, not forced
        nb.screenshot("graph_view_jupyterlab_dark", graph)
    finally:
        _switch_jupyterlab_theme(page, "JupyterLab Light")
    assert body.evaluate("e => getComputedStyle(e).fill") == light_fill


# --- keyboard and the pending state ---------------------------------------------------

def test_tab_enters_the_graph_once_and_arrows_move(nb):
    page = nb.page
    nb.run_cell("view.select('dense_a')")
    page.mouse.move(5, 5)  # no hover card from the mouse: only the keyboard's
    graph = page.locator(".kw-graph").first
    # One tab stop for the whole graph: the selected node.
    stops = graph.locator(".kw-world [tabindex='0']")
    assert stops.count() == 1
    assert stops.first.get_attribute("data-id") == "dense_a"
    assert graph.locator(".kw-world [tabindex='-1']").count() >= 7
    graph.locator(".kw-search-input").focus()
    presses = 0
    while active(page) != "dense_a" and presses < 6:
        page.keyboard.press("Tab")
        presses += 1
    assert presses == 4  # find box -> fit, zoom in, zoom out -> the graph
    page.keyboard.press("Shift+Tab")  # back out is one step too
    assert page.evaluate("() => document.activeElement.getAttribute('aria-label')") \
        .startswith("Zoom out")
    page.keyboard.press("Tab")
    assert active(page) == "dense_a"
    # The hover card follows the keyboard.
    card = graph.locator(".kw-tooltip")
    card.wait_for(state="visible")
    assert "dense_a" in card.inner_text()
    page.keyboard.press("ArrowUp")  # along the edge to the input
    assert active(page) == "features"
    assert "features" in card.inner_text() and "(None, 8)" in card.inner_text()
    assert stops.first.get_attribute("data-id") == "features"  # the tab stop moved along
    nb.screenshot("graph_view_keyboard_focus", graph)
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.querySelector(\".kw-node[data-id='features']\")"
        ".classList.contains('kw-selected')")
    nb.kernel_until("view.selected", {"id": "features", "layer": "features"})
    # Home / End: the first and last node in reading order.
    node(page, "skip").focus()
    page.keyboard.press("End")
    assert active(page) == "head"
    page.keyboard.press("Home")
    assert active(page) == "features"
    page.keyboard.press("Tab")  # one Tab leaves the graph, however many nodes it has
    assert page.evaluate("() => !document.querySelector('.kw-graph .kw-world')"
                         ".contains(document.activeElement)")


def test_enter_on_a_group_toggles_it_and_keeps_focus(nb):
    page = nb.page
    nb.kernel_until("view.open_groups", ["inner"])
    node(page, "inner/inner_dense").focus()
    page.keyboard.press("ArrowUp")
    assert active(page) == "inner/inner_in"
    page.keyboard.press("ArrowUp")  # out of the group: its header first
    assert active(page) == "inner"
    page.keyboard.press("Enter")
    node(page, "inner").wait_for()  # closed: one box
    page.wait_for_function(f"() => ({ACTIVE_JS})() === 'inner'")
    assert page.evaluate("() => document.activeElement.classList.contains('kw-closed')")
    nb.kernel_until("view.open_groups", [])
    node(page, "inner").focus()
    page.keyboard.press("Enter")
    page.locator(".kw-graph .kw-frame-header[data-group='inner']").first.wait_for()
    page.wait_for_function(
        "() => document.activeElement && document.activeElement.matches("
        "\".kw-frame-header[data-group='inner']\")")
    page.keyboard.press("ArrowDown")  # into the group
    assert active(page) == "inner/inner_in"
    nb.kernel_until("view.open_groups", ["inner"])


def test_kernel_redraw_keeps_keyboard_focus(nb):
    page = nb.page
    # The kernel closes the group a moment after the cell ends, while a node is focused.
    nb.run_cell("import threading\nthreading.Timer(1.5, view.close_group, ['inner']).start()")
    node(page, "skip").focus()
    painted = page.evaluate("() => Number(document.querySelector('.kw-graph').dataset.painted)")
    node(page, "inner").wait_for()
    page.wait_for_function(  # the redraw is done, focus restored
        "(n) => Number(document.querySelector('.kw-graph').dataset.painted) > n", arg=painted)
    assert active(page) == "skip"
    assert page.evaluate("() => document.activeElement.getAttribute('tabindex')") == "0"
    nb.run_cell("view.open_group('inner')")
    page.locator(".kw-graph .kw-frame-header[data-group='inner']").first.wait_for()


def test_zoom_keys(nb):
    page = nb.page
    button(page, "Fit to view").click()
    fitted = transform(page)
    node(page, "skip").focus()
    page.keyboard.press("+")
    assert transform(page)[2] > fitted[2] * 1.2
    page.keyboard.press("-")
    page.keyboard.press("-")
    assert transform(page)[2] < fitted[2]
    page.keyboard.press("0")
    page.keyboard.press("0")  # twice: JupyterLab's "restart kernel" keys must not fire
    assert transform(page) == pytest.approx(fitted)
    assert page.locator(".jp-Dialog").count() == 0
    assert active(page) == "skip"


def test_find_box_results_move_with_arrow_keys(nb):
    page = nb.page
    search = page.locator(".kw-graph .kw-search-input").first
    search.fill("dense")
    results = page.locator(".kw-graph .kw-result[role='option']")
    results.first.wait_for()
    names = results.locator(".kw-result-name").all_inner_texts()
    assert len(names) >= 3
    search.press("ArrowDown")
    search.press("ArrowDown")
    active_row = page.locator(".kw-graph .kw-result.kw-active")
    assert active_row.count() == 1 and active_row.locator(".kw-result-name").inner_text() == names[1]
    assert search.get_attribute("aria-activedescendant") == active_row.get_attribute("id")
    search.press("ArrowUp")
    assert active_row.locator(".kw-result-name").inner_text() == names[0]
    search.press("ArrowDown")
    nb.screenshot("graph_view_find_keyboard", page.locator(".kw-graph").first)
    search.press("Enter")
    page.wait_for_function(f"() => ({ACTIVE_JS})() === {names[1]!r}")
    nb.kernel_until("view.selected['id']", names[1])
    search.fill("")


def test_pending_state_while_the_kernel_lays_out(nb):
    page = nb.page
    # Hold the kernel's layout until the test has seen the pending state: the kernel's
    # redraw first reads a named pipe, which blocks until the test writes to it.
    gate = nb.lab.root / "layout_gate.fifo"
    os.mkfifo(gate)
    nb.run_cell(f"_redraw = view._redraw\n"
                f"view._redraw = lambda: (open({str(gate)!r}).read(), _redraw())")
    graph = page.locator(".kw-graph").first
    assert "kw-pending" not in graph.get_attribute("class")
    graph.locator(".kw-frame-header[data-group='inner']").click()
    page.mouse.move(5, 5)
    page.wait_for_selector(".kw-graph.kw-pending .kw-pending-note", state="visible", timeout=2000)
    assert graph.locator(".kw-pending-note").inner_text() == "laying out\u2026"
    assert graph.get_attribute("aria-busy") == "true"
    assert graph.locator(".kw-viewport").evaluate("e => getComputedStyle(e).cursor") == "progress"
    nb.screenshot("graph_view_pending", graph)
    gate.write_text("go")  # blocks until the kernel's redraw opened the pipe, then lets it go
    node(page, "inner").wait_for(timeout=30_000)
    assert "kw-pending" not in graph.get_attribute("class")
    assert not graph.locator(".kw-pending-note").is_visible()
    nb.run_cell("del view._redraw\nview.open_group('inner')")
    graph.locator(".kw-frame-header[data-group='inner']").wait_for()


# --- the toolbar's summary, whole at 900 px and full width, light and dark ---------------

SUMMARY_JS = """(sel) => { const s = document.querySelector(sel);
  const r = s.getBoundingClientRect();
  let clip = {left: 0, right: window.innerWidth};
  for (let e = s.parentElement; e; e = e.parentElement) {
    const st = getComputedStyle(e);
    if (st.overflowX !== 'visible') { const b = e.getBoundingClientRect();
      clip = {left: Math.max(clip.left, b.left), right: Math.min(clip.right, b.right)}; } }
  return {text: s.textContent, left: r.left, right: r.right, clipLeft: clip.left,
          clipRight: clip.right, scroll: s.scrollWidth, client: s.clientWidth}; }"""


def test_toolbar_summary_is_whole_at_900px_and_full_width(notebook_page):
    nb = notebook_page([
        "import os\nos.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\nimport numpy as np, keras\n"
        "from kerawidgets.widgets import ModelEditor\nkeras.utils.set_random_seed(0)\n"
        "inp = keras.Input((32,), name='features')\nh = inp\n"
        "for i in range(12):\n"
        "    h = keras.layers.Dense(256, activation='relu', name=f'dense_{i}')(h)\n"
        "model = keras.Model(inp, keras.layers.Dense(10, name='head')(h),"
        " name='mobilenetv2_1.00_224_like')\n"
        "editor = ModelEditor(model, np.zeros((8, 32), 'float32'), height='360px')\neditor",
    ], name="toolbar_summary.ipynb", viewport=(900, 1000))
    page = nb.page
    page.wait_for_selector(".kw-editor .kw-graph[data-painted]", timeout=120_000)
    selector = ".kw-editor .kw-status"
    for width in (900, 1400):
        page.set_viewport_size({"width": width, "height": 1000})
        for theme in ("light", "dark"):
            nb.kernel_eval(f"setattr(editor.view, 'theme', {theme!r})")
            page.wait_for_selector(f".kw-editor .kw-graph.kw-{theme}")
            page.locator(".kw-editor").first.scroll_into_view_if_needed()
            box = page.evaluate(SUMMARY_JS, selector)
            assert box["text"].startswith("mobilenetv2_1.00_224_like") and "params" in box["text"]
            assert box["scroll"] <= box["client"] + 1, box  # no ellipsis
            assert box["clipLeft"] - 1 <= box["left"] and box["right"] <= box["clipRight"] + 1, box
            nb.screenshot(f"graph_toolbar_{width}px_{theme}",
                          page.locator(".kw-editor .kw-toolbar").first)
