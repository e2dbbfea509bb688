"""The editor's plots in a real JupyterLab: drawn at the width they are shown, at the
screen's pixel ratio, readable at a 900 px window, dark in the dark theme, and drawn
again when the window is resized or the theme changes (run: pytest -m ui tests/ui/test_plots_ui.py).
"""

import pytest

from tests.ui.test_graph_view_ui import _switch_jupyterlab_theme

pytestmark = pytest.mark.ui

SETUP = [
    "import os\nos.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\nimport numpy as np, keras\n"
    "from kerawidgets.widgets import ModelEditor\n"
    "from kerawidgets.edits import SetActivation\n"
    "from kerawidgets import plots\n"
    "keras.utils.set_random_seed(0)\n"
    "inp = keras.Input((16,), name='x')\n"
    "h = inp\n"
    "for i in range(12):\n"
    "    h = keras.layers.Dense(16, activation='relu', name=f'block_{i}_expand_relu')(h)\n"
    "model = keras.Model(inp, keras.layers.Dense(10, activation='softmax', name='head')(h))\n"
    "rng = np.random.default_rng(0)\n"
    "x = rng.normal(size=(32, 16)).astype('float32'); y = rng.integers(0, 10, 32)\n"
    "editor = ModelEditor(model, x, y, height='300px')\n"
    "editor",
    # Count the PNGs the kernel draws (the plots' redraws), then apply an edit.
    "_kw_real_png = plots.FigureCache.png\n_kw_drawn = []\n"
    "def _kw_counting(cache, plot, display, **inputs):\n"
    "    _kw_drawn.append(display.width)\n"
    "    return _kw_real_png(cache, plot, display, **inputs)\n"
    "plots.FigureCache.png = _kw_counting\n"
    "editor.apply(SetActivation('block_8_expand_relu', 'tanh'))",
]

#: The editor shown with no edit yet; the kernel counts the PNGs it draws.
UNEDITED = [SETUP[0], SETUP[1].rsplit("\n", 1)[0]]

#: Each plot as shown: its box, the image's CSS width and its pixels, and the screen's ratio.
SHOWN_JS = """(name) => {
  const box = document.querySelector(`.kw-editor .kwe-plot-${name}`);
  const img = box && box.querySelector('img');
  if (!img || !img.complete || !img.naturalWidth) return null;
  return {box: box.getBoundingClientRect().width, css: img.getBoundingClientRect().width,
          pixels: img.naturalWidth, ratio: window.devicePixelRatio};
}"""

#: Mean brightness (0-255) of a plot image's pixels, read back through a canvas.
BRIGHTNESS_JS = """(name) => {
  const img = document.querySelector(`.kw-editor .kwe-plot-${name} img`);
  if (!img || !img.complete || !img.naturalWidth) return null;  // a new PNG still loading
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d'); g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let sum = 0; for (let i = 0; i < d.length; i += 4) sum += d[i] + d[i + 1] + d[i + 2];
  return sum / (3 * d.length / 4);
}"""

CAPS = {"comparison": 1280, "depth": 1400}  # the editor's widest plots (CSS px)


def wait_drawn_as_shown(page, name):
    """Wait until plot `name` is drawn for its box (capped), one image pixel per device pixel."""
    page.wait_for_function(
        f"(cap) => {{ const s = ({SHOWN_JS})('{name}'); if (!s) return false;"
        " const want = Math.min(s.box, cap);"
        " return Math.abs(s.css - want) <= 8 && Math.abs(s.pixels - s.css * s.ratio) <= 2; }",
        arg=CAPS[name], timeout=120_000)
    return page.evaluate(SHOWN_JS, name)


def wait_theme(page, name, dark):
    page.wait_for_function(
        f"(dark) => {{ const b = ({BRIGHTNESS_JS})('{name}');"
        " return b !== null && (dark ? b < 80 : b > 180); }",
        arg=dark, timeout=120_000)


def min_font_px(nb):
    """The smallest text of the shown plots, in CSS px (the figures are drawn 1 pt = 1 px)."""
    return nb.kernel_eval(
        "min(t.get_fontsize() for f in editor.figures().values() "
        "for t in f.findobj(__import__('matplotlib.text', fromlist=['Text']).Text) "
        "if t.get_text() and t.get_visible())")


def shoot(nb, name):
    """Screenshots of each plot as shown: test-artifacts/<name>_comparison.png and _depth.png."""
    page = nb.page
    page.wait_for_function(
        "() => [...document.querySelectorAll('.kw-editor .kw-plot img')].every(i => i.complete)")
    for plot in ("comparison", "depth"):
        box = page.locator(f".kw-editor .kwe-plot-{plot}").first
        box.scroll_into_view_if_needed()
        page.evaluate("() => new Promise(done => requestAnimationFrame(() => "
                      "requestAnimationFrame(done)))")  # scrolled and painted
        nb.screenshot(f"{name}_{plot}", box)


def check_both(nb, dark):
    shown = {}
    for name in ("comparison", "depth"):
        shown[name] = wait_drawn_as_shown(nb.page, name)
        wait_theme(nb.page, name, dark)
    assert min_font_px(nb) >= 11  # shown 1:1, so 11 px on screen
    return shown


def test_plots_at_900px_and_full_width_light_and_dark(notebook_page):
    nb = notebook_page(SETUP, name="plots_ui.ipynb", viewport=(900, 1000))
    page = nb.page
    page.wait_for_selector(".kw-editor .kwe-plot-depth img", timeout=120_000)
    narrow = check_both(nb, dark=False)
    # At 900 px the output area is narrower than the 900 px the kernel first drew for.
    assert narrow["comparison"]["box"] < 900 and narrow["comparison"]["css"] < 900
    assert nb.kernel_eval("editor.comparison_image.drawn_width") == round(narrow["comparison"]["css"])
    shoot(nb, "plots_900px_light")
    _switch_jupyterlab_theme(page, "JupyterLab Dark")
    try:
        check_both(nb, dark=True)
        shoot(nb, "plots_900px_dark")
        before = nb.kernel_eval("len(_kw_drawn)")
        page.set_viewport_size({"width": 1700, "height": 1000})
        # JupyterLab lays the notebook out again on its next frames: wait for the wider box,
        # or the plots as drawn for the old one would pass for drawn as shown.
        page.wait_for_function(
            "(old) => { const b = document.querySelector('.kw-editor .kwe-plot-depth');"
            " return b && b.getBoundingClientRect().width > old + 300; }",
            arg=narrow["depth"]["box"], timeout=120_000)
        wide = check_both(nb, dark=True)
        assert wide["depth"]["css"] > narrow["depth"]["css"] + 300
        drawn = nb.kernel_eval(f"_kw_drawn[{before}:]")
        # One resize, debounced: each plot drawn again once or twice, never in a loop.
        assert 2 <= len(drawn) <= 4, drawn
        shoot(nb, "plots_full_dark")
    finally:
        _switch_jupyterlab_theme(page, "JupyterLab Light")
    check_both(nb, dark=False)
    shoot(nb, "plots_full_light")


def test_plots_at_pixel_ratio_two(notebook_page):
    nb = notebook_page(SETUP, name="plots_ui_2x.ipynb", viewport=(900, 1000), scale=2)
    page = nb.page
    page.wait_for_selector(".kw-editor .kwe-plot-depth img", timeout=120_000)
    shown = check_both(nb, dark=False)
    assert shown["comparison"]["ratio"] == 2
    assert abs(shown["comparison"]["pixels"] - 2 * shown["comparison"]["css"]) <= 2
    shoot(nb, "plots_900px_2x")


def test_the_first_plots_are_drawn_once_for_the_width_they_are_shown_at(notebook_page):
    nb = notebook_page(UNEDITED, name="plots_first_ui.ipynb", viewport=(900, 1000))
    # No plot yet, but the empty plots are laid out: the browser reports where they are
    # shown before the first Apply (at 900 px, narrower than the 900 px default).
    nb.kernel_until("[editor.comparison_image.shown_width < 880, "
                    "editor.depth_image.shown_width < 880]", [True, True], timeout=120)
    assert nb.kernel_eval("[len(editor.comparison_image.value), len(editor.depth_image.value)]"
                          ) == [0, 0]
    widths = nb.kernel_eval("[editor.comparison_image.shown_width, editor.depth_image.shown_width]")
    # Only the draws of the Apply and after are counted.
    assert nb.kernel_eval("[_kw_drawn.clear(), "
                          "editor.apply(SetActivation('block_8_expand_relu', 'tanh')) is not None,"
                          " len(editor.history)]") == [None, True, 1]
    shown = check_both(nb, dark=False)
    # Each plot drawn once, for the width reported: no second draw once shown.
    assert nb.kernel_eval("_kw_drawn") == widths
    assert [round(shown[name]["css"]) for name in ("comparison", "depth")] == widths
    shoot(nb, "plots_first_apply_900px")
