"""Tests for kerawidgets.plots: figures built without pyplot, titled, labelled, PNG-able."""

import io
import sys

import keras
import numpy as np
import PIL.Image
from keras import layers
from matplotlib.figure import Figure

import kerawidgets
from kerawidgets import plots
from kerawidgets.probe import Probe
from kerawidgets.statistics import agreement, paired_statistics, statistics_by_node

PNG = b"\x89PNG\r\n\x1a\n"


def model_and_edit():
    inp = keras.Input((6,), name="x")
    h = layers.Dense(8, activation="sigmoid", name="hidden")(inp)
    out = layers.Dense(4, activation="softmax", name="out")(h)
    model = keras.Model(inp, out, name="small")
    new = kerawidgets.replace_activation(model, "hidden", "relu")
    probe = Probe(model, np.random.default_rng(0).standard_normal((32, 6)).astype("float32"),
                  y=np.arange(32) % 4)
    return model, new, probe


def test_no_pyplot_state():
    rng = np.random.default_rng(0)
    plots.histogram_figure(rng.normal(size=100), rng.normal(size=100))
    if "matplotlib.pyplot" in sys.modules:
        import matplotlib.pyplot as plt

        assert plt.get_fignums() == []


def test_histogram_figure_shared_bins_legend_and_labels():
    rng = np.random.default_rng(0)
    fig = plots.histogram_figure(rng.normal(size=300), rng.normal(2, 1, size=200), title="conv1",
                                 bins=30)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_title() == "conv1"
    assert ax.get_xlabel() and ax.get_ylabel() == "share of values"
    labels = [t.get_text() for t in plots._key_of(ax).get_texts()]
    assert labels[0].startswith("before") and labels[1].startswith("after")
    filled = [p for p in ax.patches if p.get_alpha() == 0.45]
    assert len(filled) == 2  # one filled staircase per side
    before, after = (p.get_data() for p in filled)
    assert len(before.edges) == 31  # 30 bins
    np.testing.assert_array_equal(before.edges, after.edges)  # shared bins
    assert abs(before.values.sum() - 1.0) < 1e-9  # shares of values
    assert abs(after.values.sum() - 1.0) < 1e-9
    png = plots.figure_to_png(fig, dpi=60)
    assert png.startswith(PNG)


def test_histogram_figure_edge_cases():
    assert plots.figure_to_png(plots.histogram_figure(np.zeros(5))).startswith(PNG)
    assert plots.figure_to_png(plots.histogram_figure(np.array([np.nan]), [np.ones(3)]))


def test_depth_summary_figure():
    model, new, probe = model_and_edit()
    before = probe.outputs(model)
    after = probe.outputs(new)
    stats_before, stats_after = paired_statistics(before, after)
    fig = plots.depth_summary_figure(stats_before, stats_after, list(before), highlight="hidden")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["mean", "standard deviation", "share of zeros", "share saturated"]
    assert fig.get_suptitle()
    ticks = [t.get_text() for t in fig.axes[2].get_xticklabels()]
    assert ticks == ["x", "hidden", "out"]
    assert len(fig.axes[0].lines) == 3  # before, after, edited marker
    assert plots.figure_to_png(fig).startswith(PNG)
    only_before = plots.depth_summary_figure(statistics_by_node(before))
    assert len(only_before.axes[0].lines) == 1


def test_agreement_figure_with_and_without_labels():
    model, new, probe = model_and_edit()
    result = agreement(probe.model_output(model), probe.model_output(new), probe.y)
    fig = plots.agreement_figure(result)
    bars = fig.axes[0]
    assert [t.get_text() for t in bars.get_yticklabels()] == [
        "accuracy after", "accuracy before", "top-1 agreement"]
    texts = [t.get_text() for t in fig.axes[1].texts]
    assert "max |diff|" in texts and "loss after" in texts
    assert plots.figure_to_png(fig).startswith(PNG)
    no_labels = plots.agreement_figure(agreement(np.ones((3, 1)), np.zeros((3, 1))))
    assert "max |diff|" in [t.get_text() for t in no_labels.axes[1].texts]
    changed = plots.agreement_figure(agreement(np.ones((3, 2)), np.ones((3, 4))))
    assert any("→" in t.get_text() for t in changed.axes[1].texts)


def test_comparison_figure_after_an_edit(tmp_path):
    model, new, probe = model_and_edit()
    before = probe.outputs(model)
    after = probe.outputs(new)
    fig = plots.comparison_figure(before["hidden"], after["hidden"], probe.model_output(model),
                                  probe.model_output(new), y=probe.y, layer_name="hidden",
                                  title="hidden: sigmoid → relu")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:3] == ["hidden output", "model output", "model output agreement"]
    assert fig.get_suptitle() == "hidden: sigmoid → relu"
    png = plots.figure_to_png(fig, dpi=80)
    assert png.startswith(PNG)
    (tmp_path / "comparison.png").write_bytes(png)
    several = plots.comparison_figure(before["hidden"], after["hidden"],
                                      [probe.model_output(model)], [probe.model_output(new)])
    assert isinstance(several, Figure)


def test_names_with_dollar_signs_are_drawn_literally():
    name = "odd$\\foo{$"  # mathtext would fail on it: unknown symbol \foo
    rng = np.random.default_rng(0)
    before, after = rng.normal(size=(8, 3)), rng.normal(size=(8, 3))
    stats_before = statistics_by_node({"x": before, name: before})
    stats_after = statistics_by_node({"x": after, name: after})
    figures = [
        plots.histogram_figure(before, after, title=name, xlabel=f"{name} value"),
        plots.comparison_figure(before, after, before, after, layer_name=name, title=name),
        plots.depth_summary_figure(stats_before, stats_after, highlight=name, title=name),
        plots.agreement_figure(agreement(before, after), title=name),
    ]
    for fig in figures:
        assert plots.figure_to_png(fig, dpi=40).startswith(PNG)
    assert figures[0].axes[0].get_title() == name
    assert figures[1].axes[0].get_title() == f"{name} output"
    ticks = [t.get_text() for t in figures[2].axes[2].get_xticklabels()]
    assert ticks == ["x", name]


# --- drawn for where they are shown: width, pixel ratio, theme ----------------------------

def _png_size(png):
    import struct

    return struct.unpack(">II", png[16:24])


def _comparison(display):
    model, new, probe = model_and_edit()
    before, after = probe.outputs(model), probe.outputs(new)
    return plots.comparison_figure(before["hidden"], after["hidden"], probe.model_output(model),
                                   probe.model_output(new), y=probe.y, layer_name="hidden",
                                   display=display)


def _texts(fig):
    from matplotlib.text import Text

    return [t for t in fig.findobj(Text) if t.get_text() and t.get_visible()]


def _inside_figure(fig):
    """Everything drawn lies inside the figure (nothing clipped at its edges): None, or the box."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()  # axis labels find their place while drawing
    box = fig.get_tightbbox(canvas.get_renderer())  # inches, of what is drawn
    width, height = fig.get_size_inches()
    tolerance = 1.5 / fig.dpi
    inside = (box.x0 >= -tolerance and box.y0 >= -tolerance and box.x1 <= width + tolerance
              and box.y1 <= height + tolerance)
    return None if inside else (box, (width, height))


def test_figures_are_drawn_at_the_shown_width_and_pixel_ratio():
    fig = _comparison(plots.Display(760, 2.0))
    assert fig.dpi == plots.DPI == 72 and round(fig.bbox.width) == 760  # one point, one CSS px
    assert _png_size(plots.figure_to_png(fig, pixel_ratio=2.0))[0] == 1520  # device pixels
    assert _png_size(plots.figure_to_png(fig))[0] == 760
    stats = statistics_by_node({f"layer_{i}": np.full((4, 2), float(i)) for i in range(150)})
    depth = plots.depth_summary_figure(stats, stats, display=plots.Display(900))
    assert round(depth.bbox.width) == 900


def test_text_is_readable_when_shown_at_900_px():
    """Every text is at least 11 CSS px (the figure is shown at the size it is drawn)."""
    stats = statistics_by_node({f"conv{i}_block{i % 3}_relu": np.full((4, 2), float(i))
                                for i in range(177)})
    for fig in (_comparison(plots.Display(760)), _comparison(plots.Display(500)),
                plots.depth_summary_figure(stats, stats, display=plots.Display(760)),
                plots.depth_summary_figure(stats, stats, display=plots.Display(420))):
        sizes = {t.get_fontsize() for t in _texts(fig)}
        assert min(sizes) >= plots.FONT_SIZE >= 11, sizes
        assert _inside_figure(fig) is None


def test_depth_labels_fit_the_panel_width():
    names = [f"block_{i}_expand_relu" for i in range(155)]
    stats = statistics_by_node({name: np.ones((2, 2)) for name in names})
    for width in (420, 760, 1400):
        fig = plots.depth_summary_figure(stats, stats, display=plots.Display(width))
        bottom = fig.axes[-1]
        labels = [t for t in bottom.get_xticklabels() if t.get_text()]
        panel = bottom.get_window_extent().width
        assert 2 <= len(labels) <= panel / plots._LABEL_PITCH + 1, (width, len(labels))
    wide = plots.depth_summary_figure(stats, stats, display=plots.Display(1400))
    narrow = plots.depth_summary_figure(stats, stats, display=plots.Display(420))
    # 2x2 panels when wide, one column when narrow: the last two panels share a row or not
    assert wide.axes[2].get_position().y0 == wide.axes[3].get_position().y0
    assert narrow.axes[2].get_position().y0 > narrow.axes[3].get_position().y0


def test_narrow_comparison_puts_the_agreement_under_the_histograms():
    wide, narrow = _comparison(plots.Display(900)), _comparison(plots.Display(520))
    hist, _, bars = wide.axes[:3]
    assert abs(bars.get_position().y1 - hist.get_position().y1) < 0.01  # one row
    hist, _, bars = narrow.axes[:3]
    assert bars.get_position().y1 < hist.get_position().y0  # a second row


def test_dark_display_draws_light_text_on_a_dark_background():
    from matplotlib.colors import to_rgb

    def brightness(color):
        return sum(to_rgb(color)) / 3

    def texts(fig):  # the bar values drawn inside a bar are white on both themes
        return [t for t in _texts(fig) if to_rgb(t.get_color()) != (1.0, 1.0, 1.0)]

    light, dark = _comparison(plots.Display(760)), _comparison(plots.Display(760, dark=True))
    assert brightness(light.get_facecolor()) > 0.9 and brightness(dark.get_facecolor()) < 0.1
    assert all(brightness(t.get_color()) > 0.6 for t in texts(dark))
    assert all(brightness(t.get_color()) < 0.4 for t in texts(light))
    import io

    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(plots.figure_to_png(dark))).convert("L"))
    assert np.median(pixels) < 40  # mostly background: dark
    import matplotlib

    assert matplotlib.rcParams["text.color"] == "black"  # the theme did not leak


# --- the editor's kept figures: only the data drawn again, never another step's -----------

def _pixels(png):
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA")).astype(int)


def _assert_same_pixels(got, want, what):
    got, want = _pixels(got), _pixels(want)
    assert got.shape == want.shape, what
    differ = np.abs(got - want).max(axis=-1) > 2  # a rounding step at most
    assert differ.mean() < 1e-4, (what, int(differ.sum()))


def _depth_steps(layers):
    """Three steps' depth inputs (different values, ranges and edited layers), same layers."""
    rng = np.random.default_rng(1)
    names = [f"block_{i}_conv" for i in range(layers)]
    base = {name: rng.normal(size=(8, 4)) for name in names}
    steps = []
    for step, (scale, edited) in enumerate([(1.0, 3), (40.0, layers - 2), (0.01, layers // 2)]):
        after = {name: np.maximum(value * scale + step, 0) if i >= edited else value
                 for i, (name, value) in enumerate(base.items())}
        steps.append({"stats_before": statistics_by_node(base),
                      "stats_after": statistics_by_node(after),
                      "order": names, "highlight": names[edited]})
    return steps


def _comparison_steps():
    rng = np.random.default_rng(2)
    steps = []
    for step, (shift, scale) in enumerate([(0.0, 1.0), (5.0, 0.01), (-2.0, 300.0)]):
        layer = rng.normal(size=(16, 8))
        logits = rng.normal(size=(16, 4))
        after = logits * scale + shift
        steps.append({"layer_before": layer, "layer_after": np.tanh(layer) * scale + shift,
                      "output_before": logits, "output_after": after,
                      "agreement": agreement(logits, after, np.arange(16) % 4),
                      "layer_name": f"dense_{step}"})
    return steps


def _fresh(plot, display, inputs):
    make = plots.depth_summary_figure if plot == "depth" else plots.comparison_figure
    return plots.figure_to_png(make(**inputs, display=display), pixel_ratio=display.pixel_ratio)


def test_kept_figures_draw_what_a_fresh_figure_draws_step_after_step():
    """A, B, C, then A again: each cached draw equals a fresh figure of that step's data."""
    cache = plots.FigureCache()
    displays = [plots.Display(900), plots.Display(468, 2.0, True)]
    for plot, steps in (("depth", _depth_steps(60)), ("depth", _depth_steps(12)),
                        ("comparison", _comparison_steps())):
        for display in displays:
            for index in (0, 1, 2, 0, 2):
                got = cache.png(plot, display, **steps[index])
                _assert_same_pixels(got, _fresh(plot, display, steps[index]),
                                    (plot, display, index))


def test_a_kept_figure_never_shows_the_previous_steps_data():
    cache = plots.FigureCache()
    first, second = _depth_steps(30)[:2]
    display = plots.Display(760)
    a = cache.png("depth", display, **first)
    b = cache.png("depth", display, **second)
    assert not np.array_equal(_pixels(a), _pixels(b))  # the data did change what is drawn
    _assert_same_pixels(cache.png("depth", display, **first), a, "back to the first step")
    one, two = _comparison_steps()[:2]
    a = cache.png("comparison", display, **one)
    assert not np.array_equal(_pixels(cache.png("comparison", display, **two)), _pixels(a))
    _assert_same_pixels(cache.png("comparison", display, **one), a, "comparison, back")


def test_kept_figures_follow_layout_changes_and_stay_few():
    """Another layer order, no edited mark, no after side, no labels: each drawn as fresh."""
    cache = plots.FigureCache(keep=2)
    display = plots.Display(900)
    step = _depth_steps(20)[0]
    variants = [step, {**step, "highlight": None}, {**step, "stats_after": None},
                {**step, "order": step["order"][:10]}, step]
    for inputs in variants:
        _assert_same_pixels(cache.png("depth", display, **inputs),
                            _fresh("depth", display, inputs), sorted(inputs))
    unlabelled = {**_comparison_steps()[1], "agreement": None, "y": None}
    for inputs in (unlabelled, _comparison_steps()[0], unlabelled):
        _assert_same_pixels(cache.png("comparison", display, **inputs),
                            _fresh("comparison", display, inputs), "labels or not")
    assert len(cache._kept) <= 4  # two per plot


def test_encode_png_is_lossless_with_and_without_transparency():
    import io

    from PIL import Image

    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, size=(7, 5, 4), dtype=np.uint8)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(plots.encode_png(rgba)))), rgba)
    rgba[..., 3] = 255
    image = Image.open(io.BytesIO(plots.encode_png(rgba, dpi=144)))
    assert image.mode == "RGB" and np.array_equal(np.asarray(image), rgba[..., :3])
    assert round(image.info["dpi"][0]) == 144


def test_png_frames_reuse_unchanged_bands_and_stay_lossless():
    """Successive images of one size: each decodes to its own pixels, whichever bands changed."""
    import io
    import zlib

    from PIL import Image

    rng = np.random.default_rng(3)
    frames = plots.PngFrames(rows=4)
    image = np.full((19, 7, 4), 255, np.uint8)
    for step in range(6):
        if step:  # a few rows change: the others' bands are reused
            rows = rng.choice(19, size=step % 3 + 1, replace=False)
            image[rows, rng.integers(0, 7), :3] = rng.integers(0, 256, 3)
        if step == 4:
            image[0, 0, 3] = 10  # transparency: RGBA from here on
        png = frames.encode(image, dpi=72)
        decoded = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
        assert np.array_equal(decoded, image), step
    smaller = np.full((3, 2, 4), 200, np.uint8)  # another size: nothing of the last reused
    smaller[..., 3] = 255
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(frames.encode(smaller)))),
                          smaller[..., :3])
    first, second = b"kerawidgets" * 40, bytes(range(256)) * 300
    assert plots._adler32_combine(zlib.adler32(first), zlib.adler32(second), len(second)) == \
        zlib.adler32(first + second)


def test_the_editor_shows_each_steps_own_plots_through_undo_redo_the_switch_and_the_picker():
    """What the editor shows (kept figures) equals fresh figures of what it compares, after
    every move: Apply, Apply, Undo, Redo, the switch, a bulk edit's layer picker, a new
    width, pixel ratio and theme."""
    from kerawidgets.edits import SetActivation
    from kerawidgets.widgets import ModelEditor

    keras.utils.set_random_seed(0)
    inp = keras.Input((6,), name="x")
    h = layers.Dense(8, activation="relu", name="h1")(inp)
    h = layers.Dense(8, activation="relu", name="h2")(h)
    model = keras.Model(inp, layers.Dense(4, activation="softmax", name="head")(h))
    rng = np.random.default_rng(0)
    editor = ModelEditor(model, rng.normal(size=(32, 6)).astype("float32"), np.arange(32) % 4)
    images = {"comparison": editor.comparison_image, "depth": editor.depth_image}

    def check(what):
        fresh = editor.figures()
        for name, image in images.items():
            want = plots.figure_to_png(fresh[name], pixel_ratio=image.display().pixel_ratio)
            _assert_same_pixels(bytes(image.value), want, (what, name))

    editor.apply(SetActivation("h1", "tanh"))
    check("first edit")
    editor.apply(SetActivation("h2", "gelu"))
    check("second edit")
    editor.undo()
    check("undo")
    editor.redo()
    check("redo")
    editor.show(against="previous")
    check("against the last step")
    for image in images.values():
        image.set_state({"shown_width": 468, "pixel_ratio": 2.0, "dark": True})
    check("468 px, ratio 2, dark")
    editor.show(against="original")
    check("against the original, 468 px")
    editor.apply(SetActivation(layers.Dense, "elu"))  # a bulk edit: h1, h2 and head
    check("bulk edit")
    editor.show(layer="head")
    check("the picker: head")
    editor.undo()
    check("undo of the bulk edit")


def test_a_kept_comparison_without_class_like_outputs_draws_no_bars_frame():
    """A model with one output value: no agreement bars (a note instead), as fresh."""
    cache = plots.FigureCache()
    rng = np.random.default_rng(4)
    for step in range(3):
        before, after = rng.normal(size=(16, 1)), rng.normal(step, 1 + step, size=(16, 1))
        inputs = {"layer_before": before, "layer_after": after * 2, "output_before": before,
                  "output_after": after, "agreement": agreement(before, after),
                  "layer_name": "dense"}
        assert not plots._agreement_shares(inputs["agreement"])
        _assert_same_pixels(cache.png("comparison", plots.Display(760), **inputs),
                            _fresh("comparison", plots.Display(760), inputs), step)


def test_the_legend_marks_a_mean_and_std_read_at_sampled_rows():
    from kerawidgets.statistics import summarize

    values = np.random.default_rng(2).normal(1.0, 2.0, (16, 64, 64, 32)).astype("float32")
    large, small = summarize(values), summarize(values[:1, :8])
    fig = plots.histogram_figure(large, small)
    before, after = [t.get_text() for t in plots._key_of(fig.axes[0]).get_texts()]
    assert before.startswith("before: mean ≈") and ", std ≈" in before
    assert "≈" not in after and after.startswith("after: mean ")
    exact = plots.histogram_figure(summarize(values, exact=True))
    assert "≈" not in plots._key_of(exact.axes[0]).get_texts()[0].get_text()



def _stroked_renderer(kind, dpi):
    """A white renderer of `kind` with a thick grey line across it: a figure's background."""
    from matplotlib.path import Path
    from matplotlib.transforms import IdentityTransform

    renderer = kind(320, 260, dpi)
    np.asarray(renderer.buffer_rgba())[...] = 255
    pen = renderer.new_gc()
    pen.set_foreground("#b0b0b0")
    pen.set_linewidth(9)
    renderer.draw_path(pen, Path([(0, 0), (320, 260)]), IdentityTransform())
    return renderer


def test_stamped_text_draws_what_agg_draws_at_whole_pixels():
    """A text drawn from its stamp equals Agg's own rendering at the nearest whole pixel, at
    any angle and dpi, over a drawn background (but for a rounding step where the glyphs of
    a rotated text overlap); a stamp is made once, then reused anywhere."""
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.font_manager import FontProperties

    prop = FontProperties(size=plots.FONT_SIZE)
    texts = [("0.0005", 100.4, 120.6), ("after: mean ≈0.629, std ≈0.714", 40, 200),
             ("block_153_expand_relu", 160.5, 130.2), ("KL(before‖after)", 7, 99)]
    plots._STAMPS.clear()
    for dpi in (72, 144):
        blank = np.asarray(_stroked_renderer(RendererAgg, dpi).buffer_rgba())
        for angle in (0.0, 60.0, 90.0):
            for text, x, y in texts:
                want = _stroked_renderer(RendererAgg, dpi)
                RendererAgg.draw_text(want, want.new_gc(), round(x), round(y), text, prop, angle)
                got = _stroked_renderer(plots._StampedText, dpi)
                got.draw_text(got.new_gc(), x, y, text, prop, angle)
                want_pixels = np.asarray(want.buffer_rgba()).astype(int)
                assert (want_pixels != blank).any()  # the text is drawn
                differ = np.abs(want_pixels - np.asarray(got.buffer_rgba()).astype(int))
                assert differ.max() <= (1 if angle in (0.0, 90.0) else 6), (dpi, angle, text)
    assert len(plots._STAMPS) == 2 * 3 * len(texts)
    stamps = dict(plots._STAMPS)
    got = _stroked_renderer(plots._StampedText, 72)
    got.draw_text(got.new_gc(), 10.2, 50.7, "0.0005", prop, 0.0)  # elsewhere: the same stamp
    assert plots._STAMPS == stamps
    # A text larger than its scratch canvas was guessed: drawn again on one of its size.
    assert got._stamp_within(got.new_gc(), "WWW", prop, 0.0, None, (9.0, 9.0, 2.0)) is None
    assert got._stamp_within(got.new_gc(), "WWW", prop, 0.0, None, (9.0, 9.0, 2.0), 40)[0].size


def test_texts_are_measured_once_for_all_figures(monkeypatch):
    """Each figure draws with a new renderer, and matplotlib keeps a text's measure per
    renderer: `_StampedText` keeps them between figures, so a second figure with the same
    texts asks Agg to measure none, and lays every text out where Agg alone puts it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg

    measured = []
    measure = RendererAgg.get_text_width_height_descent

    def counted(self, s, prop, ismath):
        measured.append(s)
        return measure(self, s, prop, ismath)

    monkeypatch.setattr(RendererAgg, "get_text_width_height_descent", counted)
    monkeypatch.setattr(plots, "_TEXT_SIZES", {})
    before = np.random.default_rng(3).normal(size=(16, 4))
    boxes = []
    for canvas_class in (plots._Canvas, plots._Canvas, FigureCanvasAgg):
        measured.clear()
        fig = plots.comparison_figure(before, np.tanh(before), before, before * 2,
                                      layer_name="dense_7", display=plots.Display(760))
        canvas = canvas_class(fig)
        canvas.draw()
        texts = fig.findobj(lambda artist: hasattr(artist, "get_text") and artist.get_text())
        boxes.append([text.get_window_extent(canvas.get_renderer()).bounds for text in texts])
        if len(boxes) == 1:
            assert "dense_7 output" in measured  # the first figure measures its texts
        elif len(boxes) == 2:
            assert measured == []  # the second: none
    assert len(boxes[0]) > 20 and boxes[0] == boxes[1] == boxes[2]


def test_stamped_text_lays_texts_out_as_agg_does():
    """Every text's box (tick labels, titles, a legend, two lines) is where Agg puts it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    def boxes(canvas_class):
        rng = np.random.default_rng(0)
        fig = plots.histogram_figure(rng.normal(size=99), rng.normal(1, 2, 99), title="gj ≈ $x$")
        fig.dpi = 144
        fig.axes[0].text(0.1, 0.5, "two\nlines", family="monospace")
        canvas = canvas_class(fig)
        canvas.draw()
        texts = fig.findobj(lambda artist: hasattr(artist, "get_text") and artist.get_text())
        return [text.get_window_extent(canvas.get_renderer()).bounds for text in texts]

    stamped = boxes(plots._Canvas)
    assert len(stamped) > 10 and stamped == boxes(FigureCanvasAgg)



def test_the_histograms_key_is_drawn_where_matplotlibs_legend_is():
    """The histogram's key (swatches and labels) draws what the `Legend` it stands for draws."""
    rng = np.random.default_rng(5)
    for after, dpi in ((rng.normal(3, 2, 400), 72), (None, 144), (rng.normal(0, 1e-4, 90), 144)):
        before = rng.normal(size=500)
        with_key, with_legend = (plots.histogram_figure(before, after, title="dense")
                                 for _ in range(2))
        ax = with_legend.axes[0]
        plots._key_of(ax).remove()
        ax.legend(fontsize=plots.FONT_SIZE, frameon=False, loc="upper right", handlelength=1.2,
                  borderaxespad=0.2, labelspacing=0.25)
        png = plots.figure_to_png(with_key, dpi=dpi)
        _assert_same_pixels(png, plots.figure_to_png(with_legend, dpi=dpi), (dpi, after is None))
        ax.get_legend().remove()
        assert not np.array_equal(_pixels(png), _pixels(plots.figure_to_png(with_legend, dpi=dpi)))


def test_a_pinned_x_label_sits_where_matplotlib_puts_it():
    """`_pin_xlabel` fixes the x label where matplotlib's own placing (under the measured tick
    labels) puts it, at the figures' tick label size and larger, at any dpi. (At 9 points and
    72 dpi, hinting makes a digit a sixth of a pixel taller than the font's line.)"""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    for dpi in (72, 144):
        for size in (plots.FONT_SIZE, 12, 16):
            boxes = []
            for pin in (False, True):
                fig = Figure(dpi=dpi)
                ax = fig.add_subplot()
                ax.plot([-3.0, 4.0], [0.0, 1.0])
                ax.set_xlabel("output value")
                ax.tick_params(labelsize=size)
                if pin:
                    plots._pin_xlabel(ax)
                FigureCanvasAgg(fig).draw()
                boxes.append(ax.xaxis.label.get_window_extent().bounds)
            np.testing.assert_allclose(boxes[1], boxes[0], atol=1e-6)


def test_a_kept_comparisons_bars_follow_their_values_inside_and_out():
    """Bars updated in place: a long bar's value written inside it, a short one's after it,
    as a fresh figure writes them, whichever the previous step had."""
    cache = plots.FigureCache()
    base = _comparison_steps()[0]
    for display in (plots.Display(900), plots.Display(468, 2.0, True)):
        for top1, accuracy in ((1.0, 0.25), (0.5, 0.8), (0.9, 0.05), (0.1, 1.0)):
            inputs = {**base, "agreement": {**base["agreement"], "top1_agreement": top1,
                                            "accuracy_after": accuracy}}
            _assert_same_pixels(cache.png("comparison", display, **inputs),
                                _fresh("comparison", display, inputs), (display, top1))


def test_stamps_are_kept_within_their_bytes_least_recent_first():
    stamps = plots._Stamps(limit=1000)
    for name in "abcd":  # 64 + 236 bytes each: three fit
        stamps.keep(name, (np.zeros((4, 59), np.uint8), 0, 0))
    assert list(stamps) == ["b", "c", "d"] and stamps.size == 900
    assert stamps.get("b") is not None and stamps.get("a") is None  # b used: now the latest
    stamps.keep("e", (None, 0, 0))  # an empty text's: its key only
    stamps.keep("f", (np.zeros((4, 59), np.uint8), 0, 0))
    assert list(stamps) == ["d", "b", "e", "f"] and stamps.size == 964  # c went first


def test_texts_are_drawn_by_agg_itself_when_its_private_calls_differ(monkeypatch):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    def changed(*_args, **_kwargs):
        raise AttributeError("'RendererAgg' object has no attribute '_prepare_font'")

    monkeypatch.setattr(plots, "_STAMPS", plots._Stamps(limit=2**20))  # nothing kept yet
    monkeypatch.setattr(plots._StampedText, "_stamp", changed)
    fig = plots.histogram_figure(np.arange(5.0), np.arange(5.0) + 1, title="fallback")
    png = plots.figure_to_png(fig)
    canvas = FigureCanvasAgg(fig)  # Agg alone, every text drawn glyph by glyph
    canvas.draw()
    drawn = np.asarray(PIL.Image.open(io.BytesIO(png)).convert("RGBA"))
    assert np.array_equal(drawn, np.asarray(canvas.buffer_rgba()))



def test_a_change_of_the_generic_fonts_is_drawn_with_the_new_font(monkeypatch):
    """A text's kept stamp and measure are keyed by its `FontProperties`, which names the
    family ("sans-serif"), not the font file rcParams resolve it to: after the user changes
    that, figures (fresh or kept) are drawn as they are with nothing kept."""
    import matplotlib

    before = np.random.default_rng(4).normal(size=(16, 4))
    inputs = {"layer_before": before, "layer_after": np.tanh(before), "output_before": before,
              "output_after": before * 2, "layer_name": "dense_7"}

    def pictures(cache):
        fig = plots.comparison_figure(before, np.tanh(before), before, before * 2,
                                      layer_name="dense_7", display=plots.Display(600))
        return plots.figure_to_png(fig), cache.png("comparison", plots.Display(600), **inputs)

    def fonts(name):
        return matplotlib.rc_context({"font.family": "sans-serif", "font.sans-serif": [name]})

    monkeypatch.setattr(plots, "_STAMPS", plots._Stamps(limit=16 * 2**20))
    with fonts("DejaVu Serif"):  # nothing kept yet
        plots._STAMPS.clear(), plots._TEXT_SIZES.clear(), plots._FONT_HEIGHTS.clear()
        serif = pictures(plots.FigureCache())
    cache = plots.FigureCache()
    with fonts("DejaVu Sans"):
        sans = pictures(cache)
    with fonts("DejaVu Serif"):  # the sans stamps, measures and kept figure are kept
        again = pictures(cache)
    assert sans[0] != serif[0] and sans[1] != serif[1]  # the fonts differ on the page
    assert again == serif
