"""Matplotlib figures of layer outputs before and after an edit.

Every function returns a new `matplotlib.figure.Figure` built without
pyplot, so nothing touches global state or opens a window; show one in a
notebook by leaving it as the cell's value, or turn it into PNG bytes with
`figure_to_png` (what the editor widget displays). Text (layer names,
titles) is drawn literally: a ``$`` in a name is a dollar sign, not mathtext.

Figures are made at 72 dots per inch, so one point is one CSS pixel: a
figure `Display(width=760)` asks for is 760 px wide with 11 px text, and
`figure_to_png(fig, pixel_ratio=2)` draws it with twice the pixels for a
screen of that device pixel ratio (sharp, same size on screen). A dark
`Display` draws light text on a dark background.

>>> import numpy as np
>>> from kerawidgets.plots import figure_to_png, histogram_figure
>>> rng = np.random.default_rng(0)
>>> fig = histogram_figure(rng.normal(size=500), rng.normal(0.5, 1, 500), title="dense_1")
>>> figure_to_png(fig)[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
True
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import math
import struct
import threading
import zlib

import matplotlib
import numpy as np
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.colors import is_color_like
from matplotlib.figure import Figure
from matplotlib.font_manager import findfont, get_font
from matplotlib.patches import Rectangle
from matplotlib.text import Text
from matplotlib.transforms import IdentityTransform, ScaledTranslation

from kerawidgets import arguments
from kerawidgets.statistics import LayerSummary
from kerawidgets.statistics import agreement as compute_agreement

__all__ = [
    "Display",
    "FigureCache",
    "PngFrames",
    "agreement_figure",
    "comparison_figure",
    "depth_summary_figure",
    "encode_png",
    "figure_to_png",
    "histogram_figure",
    "sweep_figure",
]

BEFORE_COLOR = "#4C72B0"
AFTER_COLOR = "#DD8452"
#: Points, and so CSS pixels at the figures' 72 dpi: tick labels and legends; titles are 1 larger.
FONT_SIZE = 11
#: Every figure's dots per inch: one point is one CSS pixel.
DPI = 72
#: Colours of the light and the dark theme (dark: JupyterLab's dark background).
THEMES = {
    False: {"background": "white", "text": "#1f1f1f", "muted": "#555555", "edge": "#777777",
            "grid": "#b0b0b0", "empty": "#cccccc", "before": BEFORE_COLOR, "after": AFTER_COLOR,
            "edited": "#C44E52", "agree": "#55A868"},
    True: {"background": "#111111", "text": "#e6e6e6", "muted": "#b4b4b4", "edge": "#8a8a8a",
           "grid": "#5a5a5a", "empty": "#555555", "before": "#6F9BD8", "after": "#F0A060",
           "edited": "#F07078", "agree": "#6CC082"},
}
#: Text properties for every title, label and tick label: layer names are data,
#: drawn as written, never parsed as mathtext (a name like ``odd$\foo{$`` would
#: otherwise make matplotlib raise while drawing).
LITERAL = {"parse_math": False}
#: Axes titles: literal, and at a fixed height just above the axes (no axes here
#: has tick labels on top), which spares matplotlib a search for overlaps on
#: every draw.
TITLE = {**LITERAL, "y": 1.0}


@dataclasses.dataclass(frozen=True)
class Display:
    """Where a figure is shown: `width` in CSS pixels, the screen's `pixel_ratio`, `dark` theme.

    The editor's plots report theirs from the browser; figures lay
    themselves out for `width` (narrower: panels stacked) with text at
    `FONT_SIZE` pixels, and `figure_to_png(fig, pixel_ratio=...)` draws them
    at the screen's resolution.

    >>> Display(760).width, Display(760, 2.0, True).key()
    (760, (760, 2.0, True))
    """

    width: int = 900
    pixel_ratio: float = 1.0
    dark: bool = False

    def key(self) -> tuple:
        return (int(self.width), float(self.pixel_ratio), bool(self.dark))


def _palette(display) -> dict:
    return THEMES[bool(display is not None and display.dark)]


@contextlib.contextmanager
def _themed(display):
    """Matplotlib's defaults (text, axes, ticks, grid) in `display`'s theme, while building."""
    c = _palette(display)
    with matplotlib.rc_context({
            "text.color": c["text"], "axes.labelcolor": c["text"], "axes.edgecolor": c["edge"],
            "axes.facecolor": c["background"], "figure.facecolor": c["background"],
            "xtick.color": c["text"], "ytick.color": c["text"], "grid.color": c["grid"],
            "legend.labelcolor": c["text"]}):
        yield c


def _values(array) -> np.ndarray:
    if isinstance(array, (list, tuple)):
        array = array[0]  # several model outputs: the first
    if array is None:
        return np.zeros(0)
    if isinstance(array, LayerSummary):  # its sample: the histogram of a bounded sample
        array = array.sample
    if not isinstance(array, np.ndarray):
        import keras

        array = keras.ops.convert_to_numpy(array)
    values = np.asarray(array, dtype=np.float64).ravel()
    return values[np.isfinite(values)]


def _new_figure(width, height) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    return fig


def _shared_bins(before, after, bins):
    both = np.concatenate([before, after]) if after is not None else before
    if both.size == 0:
        return np.linspace(-0.5, 0.5, bins + 1)
    low, high = float(both.min()), float(both.max())
    if low == high:
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, bins + 1)


def _label(name, values, source=None):
    if isinstance(source, LayerSummary):  # the summary's numbers (≈: read at sampled rows)
        stats = source.statistics()
        if stats["mean"] is not None:
            about = "≈" if stats["sampled"] else ""
            return f"{name}: mean {about}{stats['mean']:.3g}, std {about}{stats['std']:.3g}"
    if values.size == 0:
        return f"{name} (no values)"
    return f"{name}: mean {values.mean():.3g}, std {values.std():.3g}"


def _histogram_sides(before, after, bins):
    """(shared bin edges, [(side, shares of values per bin, legend label)]) of a histogram."""
    b = _values(before)
    a = None if after is None else _values(after)
    edges = _shared_bins(b, a, bins)
    sides = []
    for values, source, name in ((b, before, "before"), (a, after, "after")):
        if values is not None:
            shares = np.histogram(values, bins=edges)[0] / max(values.size, 1)
            sides.append((name, shares, _label(name, values, source)))
    return edges, sides


def _draw_histogram(ax, before, after, title, bins=50, xlabel="output value", colors=None):
    c = colors or THEMES[False]
    edges, sides = _histogram_sides(before, after, bins)
    # One filled and one outlined staircase per side: two artists instead of a
    # patch per bar, which keeps drawing fast for the editor.
    for name, shares, label in sides:
        ax.stairs(shares, edges, fill=True, color=c[name], alpha=0.45, label=label)
        ax.stairs(shares, edges, color=c[name], linewidth=1.2)
    ax.set_title(title, fontsize=FONT_SIZE + 1, **TITLE)
    ax.set_xlabel(xlabel, fontsize=FONT_SIZE, **LITERAL)
    ax.set_ylabel("share of values", fontsize=FONT_SIZE)
    ax.tick_params(labelsize=FONT_SIZE)
    _pin_xlabel(ax)
    ax.add_artist(_Key(ax.patches[0::2], [label for _name, _shares, label in sides]))
    ax.grid(axis="y", alpha=0.3)
    ax.locator_params(axis="both", nbins=5)
    _histogram_top(ax)


class _Key(Artist):
    """A histogram's legend: a swatch and a label per side, in the upper right corner.

    Laid out as ``ax.legend(loc="upper right", frameon=False, handlelength=1.2,
    borderaxespad=0.2, labelspacing=0.25)`` lays it out (the swatches in a column left of
    the labels, the widest label ending at the corner), at a fraction of the cost: a
    matplotlib `Legend` measures its texts several times over in its packers, and the
    editor draws new labels after every Apply.
    """

    zorder = 5  # a legend's

    def __init__(self, fills, labels):
        super().__init__()
        color = matplotlib.rcParams["legend.labelcolor"]  # a legend's, in the theme's defaults
        if str(color) == "None" or not is_color_like(color):
            color = matplotlib.rcParams["text.color"]
        self.set_in_layout(False)
        self._texts = [Text(0, 0, label, fontsize=FONT_SIZE, color=color, va="baseline",
                            transform=IdentityTransform(), parse_math=False) for label in labels]
        self._swatches = [Rectangle((0, 0), 1, 1, facecolor=fill.get_facecolor(),
                                    edgecolor=fill.get_edgecolor(),
                                    linewidth=fill.get_linewidth(), transform=IdentityTransform())
                          for fill in fills]

    def get_texts(self) -> list:
        """The labels, as `Legend.get_texts` gives them."""
        return self._texts

    def draw(self, renderer):
        figure, ax = self.get_figure(), self.axes
        if not self.get_visible() or figure is None or ax is None:
            return
        font = renderer.points_to_pixels(FONT_SIZE)
        boxes = []
        for text in self._texts:
            text.set_figure(figure)
            text.set_position((0, 0))
            boxes.append(text.get_window_extent(renderer))  # from the baseline's start
        width = max((box.width for box in boxes), default=0)
        left = ax.bbox.x1 - 0.6 * font - width - 2.0 * font  # pads, swatch, its gap
        top = ax.bbox.y1 - 0.6 * font
        for text, swatch, box in zip(self._texts, self._swatches, boxes):
            baseline = top - box.y1
            swatch.set_bounds(left, baseline, 1.2 * font, 0.7 * font)
            swatch.set_figure(figure)
            swatch.draw(renderer)
            text.set_position((left + 2.0 * font, baseline))
            text.draw(renderer)
            top = baseline + box.y0 - 0.25 * font
        self.stale = False


def _key_of(ax) -> _Key:
    """The `_Key` `_draw_histogram` put on `ax`."""
    return next(artist for artist in ax.artists if isinstance(artist, _Key))


def _pin_xlabel(ax):
    """Fix `ax`'s x label where matplotlib puts it: under the tick marks, their pad, one line
    of tick labels and the label's pad. Matplotlib measures every tick label on each draw
    to find that place; pinned, the label stays put, and the editor keeps it as pixels."""
    tick = ax.xaxis.get_major_ticks()[0]
    label = tick.label1.get_fontproperties()
    ascent, descent, _gap = _font_heights(get_font(findfont(label)), label.get_size_in_points())
    line = ascent + descent  # the line matplotlib lays a label in, in points
    below = tick.get_tick_padding() + tick.get_pad() + line + ax.xaxis.labelpad  # points
    figure = ax.get_figure()
    ax.xaxis.set_label_coords(0.5, 0.0, transform=ax.transAxes + ScaledTranslation(
        0.0, -below / 72, figure.dpi_scale_trans))


def _font_heights(font, size) -> tuple:
    """(ascent, descent, line gap) of an FT2Font at `size`, in the unit of `size`, from its
    OS/2 table, else its hhea table, as matplotlib reads them to lay a text out (None each
    without either)."""
    for table_name, gap, ascent, descent in (
            ("OS/2", "sTypoLineGap", "sTypoAscender", "sTypoDescender"),
            ("hhea", "lineGap", "ascent", "descent")):
        table = font.get_sfnt_table(table_name)
        if table is not None:
            scale = size / font.get_sfnt_table("head")["unitsPerEm"]
            return table[ascent] * scale, -table[descent] * scale, table[gap] * scale
    return None, None, None


def _histogram_top(ax):
    top = ax.get_ylim()[1]
    ax.set_ylim(0, top * 1.4)  # room for the legend


def _update_histogram(ax, before, after, title, bins=50):
    """Put new data into a histogram `_draw_histogram` drew with the same sides: the same
    staircases, limits and legend a fresh one gets, without making its artists again."""
    edges, sides = _histogram_sides(before, after, bins)
    legend = _key_of(ax).get_texts()
    for (_name, shares, label), fill, line, text in zip(sides, ax.patches[0::2],
                                                        ax.patches[1::2], legend):
        fill.set_data(shares, edges)
        line.set_data(shares, edges)
        text.set_text(label)
    # The data limits the staircases give (baseline 0 to the highest bar, first to last
    # edge), set at once: measuring the patches' paths again is most of a fresh draw's setup.
    top = max(float(shares.max()) for _name, shares, _label in sides)
    ax.dataLim.set_points(np.array([[edges[0], min(top, 0.0)], [edges[-1], max(top, 0.0)]]))
    ax.title.set_text(title)
    ax.set_autoscale_on(True)
    ax.autoscale_view()
    _histogram_top(ax)


def histogram_figure(before, after=None, *, title="Layer output", bins=50,
                     xlabel="output value", figsize=(6.4, 3.4)) -> Figure:
    """Overlaid histograms of `before` and `after` values with shared bins.

    Bars are shares of all values (so different sizes compare); the legend
    gives each side's mean and std. Either side may be a
    `kerawidgets.statistics.LayerSummary` (what the editor keeps): its
    sample is drawn and its mean and std are written (with ≈ when they were
    read at sampled positions of a large output).

    >>> import numpy as np
    >>> fig = histogram_figure(np.zeros(10), np.ones(10), title="relu")
    >>> fig.axes[0].get_title()
    'relu'
    """
    fig = _new_figure(*figsize)
    _draw_histogram(fig.add_subplot(), before, after, title, bins, xlabel)
    return fig


_DEPTH_PANELS = (
    ("mean", "mean"),
    ("std", "standard deviation"),
    ("zero_fraction", "share of zeros"),
    ("saturation", "share saturated"),
)
#: Horizontal room, in pixels, a rotated layer name needs on the depth plot's axis.
_LABEL_PITCH = 20


def _series(stats, order, key):
    out = []
    for node in order:
        value = (stats or {}).get(node, {}).get(key) if stats else None
        out.append(np.nan if value is None else float(value))
    return np.array(out)


def _depth_layout(order, width, figsize):
    """(width, height, margins in px, columns) of the depth figure: 2x2 panels, 4x1 when narrow."""
    columns = 2 if width >= 560 else 1
    longest = max((len(_short(name)) for name in order), default=1)
    first = len(_short(order[0])) if order else 1
    glyph = 0.6 * FONT_SIZE  # an average character's width
    # names at 60°: their height, the tick, and the axis title under them
    labels = longest * glyph * 0.87 + 0.5 * FONT_SIZE + 2 * FONT_SIZE + 14
    top = 52 if columns == 2 else 70  # narrow: the legend on its own line under the title
    rows, panel, gap = 4 // columns, 118, 34
    height = top + rows * panel + (rows - 1) * gap + labels
    if figsize is not None:
        width, height = figsize[0] * DPI, figsize[1] * DPI
    left = max(58, first * glyph * 0.5 + 6)  # the first name reaches left of its tick
    return width, height, {"left": left, "right": 16, "top": top, "bottom": labels, "gap": gap,
                           "wgap": 58, "legend": 4 if columns == 2 else 24}, columns


def depth_summary_figure(stats_before, stats_after=None, order=None, *,
                         title="Layer statistics along depth", highlight=None,
                         figsize=None, display=None) -> Figure:
    """Per-layer mean, std, share of zeros and saturation along depth, before vs after.

    `stats_before` / `stats_after` map node ids to `layer_statistics` dicts
    (see `kerawidgets.statistics.statistics_by_node`); `order` is the node
    ids from input to output (default: `stats_before`'s order). `highlight`
    marks a node id (the edited layer) with a vertical line. `display`
    (a `Display`) sets the width, in CSS pixels, and the theme; `figsize`
    (inches) overrides the size.

    >>> from kerawidgets.statistics import layer_statistics
    >>> stats = {"a": layer_statistics(np.ones(3)), "b": layer_statistics(np.zeros(3))}
    >>> len(depth_summary_figure(stats, stats).axes)
    4
    """
    order = _depth_order(stats_before, stats_after, order)
    display = display or Display()
    positions = np.arange(len(order))
    width, height, m, columns = _depth_layout(order, display.width, figsize)
    with _themed(display) as c:
        # Fixed margins (room for the rotated layer names) instead of constrained
        # layout: the margins are known, and this figure then draws in one pass.
        fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, facecolor=c["background"])
        panel_width = (width - m["left"] - m["right"] - (columns - 1) * m["wgap"]) / columns
        panel_height = (height - m["top"] - m["bottom"] - (3 // columns) * m["gap"]) / (4 // columns)
        fig.subplots_adjust(left=m["left"] / width, right=1 - m["right"] / width,
                            top=1 - m["top"] / height, bottom=m["bottom"] / height,
                            hspace=m["gap"] / max(panel_height, 1),
                            wspace=m["wgap"] / max(panel_width, 1))
        axes = np.atleast_2d(fig.subplots(4 // columns, columns))
        if columns == 1:
            axes = axes.reshape(-1, 1)
        _depth_panels(axes.ravel(), order, positions, stats_before, stats_after, highlight, c)
        for ax in axes[:-1].ravel():  # the panels above the last row: no x ticks to draw
            ax.set_xticks([])
        for ax in axes.ravel():
            ax.set_xlim(-0.5, max(len(order) - 0.5, 0.5))
        fig.legend(*axes.ravel()[0].get_legend_handles_labels(), loc="upper right", ncol=3,
                   fontsize=FONT_SIZE, frameon=False, handlelength=1.6,
                   bbox_to_anchor=(1 - m["right"] / width, 1 - m["legend"] / height))
        fit = max(2, int(panel_width // _LABEL_PITCH))
        step = max(1, int(np.ceil(len(order) / fit)))
        for ax in axes[-1]:
            ax.set_xticks(positions[::step])
            ax.set_xticklabels([_short(order[i]) for i in positions[::step]], rotation=60,
                               ha="right", rotation_mode="anchor", fontsize=FONT_SIZE, **LITERAL)
            ax.set_xlabel("layer (input → output)", fontsize=FONT_SIZE)
        fig.suptitle(title, fontsize=FONT_SIZE + 2, x=m["left"] / width, y=1 - 6 / height,
                     ha="left", va="top", **LITERAL)
    return fig


def _depth_order(stats_before, stats_after, order) -> list:
    """The depth figure's layers: `order`, or the statistics' own order (before's, then after's)."""
    if order is None:
        order = list(stats_before or {})
        order += [k for k in (stats_after or {}) if k not in order]
    return list(order)


def _depth_panels(axes, order, positions, stats_before, stats_after, highlight, c):
    marks = len(order) <= 40  # a marker per layer helps a small model, clutters a large one
    for ax, (key, label) in zip(axes, _DEPTH_PANELS):
        before = _series(stats_before, order, key)
        ax.plot(positions, before, color=c["before"], marker="o" if marks else None,
                markersize=3, linewidth=1.4, label="before")
        if stats_after:
            after = _series(stats_after, order, key)
            ax.plot(positions, after, color=c["after"], marker="s" if marks else None,
                    markersize=3, linewidth=1.4, linestyle="--", label="after")
        if highlight is not None and highlight in order:
            ax.axvline(order.index(highlight), color=c["edited"], linewidth=1, alpha=0.8,
                       label="edited")
        ax.set_title(label, fontsize=FONT_SIZE + 1, **TITLE)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=FONT_SIZE)
        ax.locator_params(axis="y", nbins=4)
        # No y label: a fixed place for it spares matplotlib measuring every tick label of
        # every panel on each draw to place an empty text.
        ax.yaxis.set_label_coords(-0.1, 0.5)
        if key in ("zero_fraction", "saturation"):
            ax.set_ylim(-0.03, 1.03)


def _short(name, limit=22):
    name = str(name)
    return name if len(name) <= limit else "…" + name[-(limit - 1):]


def _fmt(value):
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


_SHARES = (
    ("top1_agreement", "top-1 agreement"),
    ("accuracy_before", "accuracy before"),
    ("accuracy_after", "accuracy after"),
)
_NUMBERS = (
    ("max_abs_diff", "max |diff|"),
    ("mean_abs_diff", "mean |diff|"),
    ("kl_divergence", "KL(before‖after)"),
    ("loss_before", "loss before"),
    ("loss_after", "loss after"),
)


def _draw_agreement(bars_ax, text_ax, result, title, c=None):
    """Shares as bars on `bars_ax`, the other numbers as a two-column table on `text_ax`."""
    c = c or THEMES[False]
    shares = _agreement_shares(result)
    if shares:
        _draw_bars(bars_ax, shares, c)
        bars_ax.set_xlim(0, 1)
        bars_ax.set_xlabel("share of samples", fontsize=FONT_SIZE)
        bars_ax.tick_params(labelsize=FONT_SIZE)
        bars_ax.grid(axis="x", alpha=0.3)
        bars_ax.xaxis.set_ticks([0, 0.5, 1], ["0", "0.5", "1"])
        bars_ax.set_ylim(len(shares) - 0.4 - max(3, len(shares)), len(shares) - 0.4)
    else:
        bars_ax.set_axis_off()
        bars_ax.text(0.5, 0.5, "no class-like output", ha="center", va="center",
                     fontsize=FONT_SIZE, color=c["muted"], transform=bars_ax.transAxes)
    bars_ax.set_title(title, fontsize=FONT_SIZE + 1, **TITLE)
    text_ax.set_axis_off()
    rows = _agreement_rows(result)
    step = 1.0 / max(len(rows), 4)
    for r, (label, value) in enumerate(rows):
        y = 1.0 - (r + 0.5) * step
        text_ax.text(0.0, y, label, ha="left", va="center", fontsize=FONT_SIZE,
                     color=c["muted"], transform=text_ax.transAxes, **LITERAL)
        text_ax.text(1.0, y, value, ha="right", va="center", fontsize=FONT_SIZE,
                     family="monospace", transform=text_ax.transAxes, **LITERAL)


def _agreement_shares(result) -> list:
    """[(label, share)] of the agreement's shares there are (top-1 agreement, accuracies)."""
    return [(label, result[key]) for key, label in _SHARES if result.get(key) is not None]


def _agreement_rows(result) -> list:
    """[(label, value as text)]: the agreement table's rows."""
    rows = [(label, _fmt(result.get(key))) for key, label in _NUMBERS if key in result]
    if result.get("same_shape") is False:
        rows = [("output shape", f"{tuple(result.get('shape_before', ()))} → "
                                 f"{tuple(result.get('shape_after', ()))}")]
    return rows or [("no numbers", "")]


def _draw_bars(ax, shares, c):
    """One bar per share, its value written inside it (long bars) or after it."""
    colors = {"top-1 agreement": c["agree"], "accuracy before": c["before"],
              "accuracy after": c["after"]}
    labels = [label for label, _ in shares][::-1]
    values = [value for _, value in shares][::-1]
    bars = ax.barh(labels, values, color=[colors[label] for label in labels], height=0.6)
    for bar, value in zip(bars, values):
        _place_value(ax.text(0, bar.get_y() + bar.get_height() / 2, "", va="center",
                             fontsize=FONT_SIZE), value, c)


def _place_value(text, value, c):
    """A bar's value: inside its end in white (a long bar), else just after it."""
    inside = value > 0.75
    text.set_x(value - 0.02 if inside else value + 0.02)
    text.set_text(f"{value:.1%}")
    text.set_horizontalalignment("right" if inside else "left")
    text.set_color("white" if inside else c["text"])


def _update_bars(ax, shares, c):
    """Put new shares (of the same labels) into the bars and values `_draw_bars` drew."""
    values = [value for _, value in shares][::-1]
    for bar, text, value in zip(ax.containers[0], ax.texts, values):
        bar.set_width(value)
        _place_value(text, value, c)


def agreement_figure(agreement_dict, *, title="Model output: before vs after",
                     figsize=(5.5, 4.0)) -> Figure:
    """Bars of top-1 agreement (and accuracy before/after when labels were given),
    with max / mean |diff|, KL divergence and losses as text.

    `agreement_dict` is the result of `kerawidgets.statistics.agreement`.

    >>> fig = agreement_figure({"max_abs_diff": 0.1, "mean_abs_diff": 0.01, "top1_agreement": 0.9})
    >>> fig.axes[0].get_title()
    'Model output: before vs after'
    """
    fig = _new_figure(*figsize)
    grid = fig.add_gridspec(2, 1, height_ratios=[1.5, 1.0])
    _draw_agreement(fig.add_subplot(grid[0]), fig.add_subplot(grid[1]), agreement_dict, title)
    return fig


#: Narrower than this (CSS px), the comparison figure puts the agreement under the histograms,
WIDE = 720
#: and narrower than this, one histogram under the other (JupyterLab at a 900 px window: 468).
NARROW = 600


def _comparison_boxes(width, titled):
    """Panels of the comparison figure in pixels from the top left: (height, {name: box})."""
    top, bottom, left, right, gap, bar_labels = 30 + (24 if titled else 0), 46, 58, 16, 60, 108
    if width >= WIDE:
        height = 300 + top - 30
        panel = (width - left - gap - bar_labels - right) / 2.75  # histogram : agreement = 1 : 0.75
        inner = height - top - bottom
        table = max(84, 0.36 * inner)
        column = left + 2 * panel + gap + bar_labels
        return height, {
            "layer": (left, top, panel, inner), "model": (left + panel + gap, top, panel, inner),
            "bars": (column, top, 0.75 * panel, inner - table - 40),
            "table": (column - bar_labels + 20, top + inner - table + 12,
                      0.75 * panel + bar_labels - 20, table - 4)}
    if width < NARROW:  # one histogram per row, then the bars, then the numbers
        panel, hist, bars, table = width - left - right, 190, 96, 96
        rows = [top, top + hist + bottom + 30]
        third = rows[1] + hist + bottom + 30
        return third + bars + bottom + table, {
            "layer": (left, rows[0], panel, hist), "model": (left, rows[1], panel, hist),
            "bars": (bar_labels + 8, third, width - right - bar_labels - 8, bars),
            "table": (left - 40, third + bars + bottom - 6, min(panel + 40, 360), table)}
    panel = (width - left - gap - right) / 2
    hist, bars = 220, 96
    height = top + hist + bottom + 34 + bars + bottom
    second = top + hist + bottom + 34
    bars_width = (width - left - right - bar_labels) * 0.5
    return height, {
        "layer": (left, top, panel, hist), "model": (left + panel + gap, top, panel, hist),
        "bars": (bar_labels + 8, second, bars_width, bars),
        "table": (bar_labels + 8 + bars_width + 36, second - 8,
                  width - right - (bar_labels + 8 + bars_width + 36), bars + 40)}


def comparison_figure(layer_before, layer_after, output_before, output_after, *,
                      agreement=None, y=None, layer_name="edited layer",
                      title=None, figsize=None, display=None) -> Figure:
    """The editor's figure after Apply: edited layer's histogram, model output's
    histogram, and the agreement panel, side by side (the agreement under the
    histograms when `display` is narrower than `WIDE` pixels, everything in one
    column when narrower than `NARROW`).

    `agreement` defaults to `statistics.agreement(output_before, output_after, y)`.
    Several model outputs (lists) show the first. `display` (a `Display`)
    sets the width in CSS pixels and the theme; `figsize` (inches) the size.

    >>> rng = np.random.default_rng(0)
    >>> before = rng.normal(size=(16, 4))
    >>> fig = comparison_figure(before, np.tanh(before), before, before + 0.1, layer_name="dense")
    >>> [ax.get_title() for ax in fig.axes][:3]
    ['dense output', 'model output', 'model output agreement']
    """
    if agreement is None:
        agreement = compute_agreement(output_before, output_after, y)
    display = display or Display()
    with _themed(display) as c:
        fig, axes = _comparison_axes(display, figsize, title)
        _draw_comparison(axes, (layer_before, layer_after, output_before, output_after),
                         agreement, layer_name, c)
    return fig


def _comparison_axes(display, figsize, title):
    """The comparison figure's empty panels, laid out for `display`: (figure, {panel: axes})."""
    width = display.width if figsize is None else figsize[0] * DPI
    height, boxes = _comparison_boxes(width, bool(title))
    if figsize is not None:
        height = figsize[1] * DPI
    # Fixed margins, in pixels, instead of constrained layout: the editor draws
    # this figure after every edit, and known margins draw in one pass.
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI,
                 facecolor=matplotlib.rcParams["figure.facecolor"])
    axes = {}
    for name, (x, top, w, h) in boxes.items():
        axes[name] = fig.add_axes((x / width, 1 - (top + h) / height, w / width, h / height))
    if title:
        fig.suptitle(title, fontsize=FONT_SIZE + 2, y=1 - 6 / height, va="top", **LITERAL)
    return fig, axes


def _draw_comparison(axes, values, agreement, layer_name, c):
    """The histograms and the agreement of one comparison, drawn on `_comparison_axes`' panels."""
    layer_before, layer_after, output_before, output_after = values
    _draw_histogram(axes["layer"], layer_before, layer_after, f"{_short(layer_name, 48)} output",
                    colors=c)
    _draw_histogram(axes["model"], output_before, output_after, "model output", colors=c)
    _draw_agreement(axes["bars"], axes["table"], agreement, "model output agreement", c)


def _panel_bins(panels, bins):
    """Bins shared by every panel: the pooled 0.5-99.5 percentiles (one wild candidate
    cannot squash the others; its tails fall outside and are counted in the end bins)."""
    pooled = [v for _, v in panels if v is not None and v.size]
    if not pooled:
        return np.linspace(-0.5, 0.5, bins + 1)
    both = np.concatenate(pooled)
    low, high = (float(v) for v in np.percentile(both, [0.5, 99.5]))
    if low == high:
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, bins + 1)


def _draw_board(ax, board, metric, baseline, higher):
    """Horizontal bars of `metric` per candidate, best at the top; failed ones say so."""
    good = sorted([b for b in board if b[1] is not None], key=lambda b: b[1], reverse=higher)
    rest = [b for b in board if b[1] is None]
    rows = good + rest
    labels = [_short(label, 28) for label, _, _ in rows]
    values = [0.0 if v is None else float(v) for _, v, _ in rows]
    y = np.arange(len(rows))[::-1]
    ax.barh(y, values, color=[AFTER_COLOR if v is not None else "#cccccc" for _, v, _ in rows])
    ax.set_yticks(y, labels, fontsize=FONT_SIZE, **LITERAL)
    for yy, (_, value, error) in zip(y, rows):
        text = "could not be built" if error else ("n/a" if value is None else _fmt(value))
        ax.text(0, yy, f" {text}", va="center", ha="left", fontsize=FONT_SIZE - 1,
                family="monospace", **LITERAL)
    if baseline is not None:
        ax.axvline(float(baseline), color=BEFORE_COLOR, linewidth=1.2, linestyle="--",
                   label=f"original {_fmt(baseline)}")
        ax.legend(fontsize=FONT_SIZE - 1, frameon=False, loc="lower right")
    ax.set_title(f"{metric} ({'higher' if higher else 'lower'} is better)",
                 fontsize=FONT_SIZE + 1, **TITLE)
    ax.tick_params(axis="x", labelsize=FONT_SIZE - 1)
    ax.grid(axis="x", alpha=0.3)


def sweep_figure(panels, board, *, metric, higher=True, layer="edited layer", baseline=None,
                 columns=4, bins=40) -> Figure:
    """Small multiples of one layer's output distribution per candidate, on shared axes,
    beside a leaderboard of `metric`.

    `panels` is ``[(label, values or None)]`` (the original first), `board`
    ``[(label, metric value or None, error or None)]``; `baseline` the
    original's value of `metric` (a dashed line); `higher`: whether a larger
    value ranks first. `SweepResult.figure` fills
    these in.

    >>> rng = np.random.default_rng(0)
    >>> fig = sweep_figure([("original", rng.normal(size=99)), ("tanh", np.tanh(rng.normal(size=99)))],
    ...                    [("tanh", 0.9, None), ("bad", None, "error")], metric="top1_agreement")
    >>> [ax.get_title() for ax in fig.axes][:2], fig.axes[-1].get_title()
    (['original', 'tanh'], 'top1_agreement (higher is better)')
    """
    columns = max(1, min(columns, len(panels)))
    grid_rows = max(1, -(-len(panels) // columns))
    fig = Figure(figsize=(2.3 * columns + 4.2, max(2.0 * grid_rows, 0.35 * len(board) + 1.2) + 0.5),
                 layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[2.3 * columns, 4.2])  # type: ignore[misc]
    axes = np.atleast_1d(left.subplots(grid_rows, columns, sharex=True, sharey=True)).ravel()
    edges = _panel_bins(panels, bins)
    for ax, (label, values) in zip(axes, panels):
        color = BEFORE_COLOR if label == "original" and ax is axes[0] else AFTER_COLOR
        if values is not None and values.size:
            clipped = np.clip(values, edges[0], edges[-1])
            shares = np.histogram(clipped, bins=edges)[0] / values.size
            ax.stairs(shares, edges, fill=True, color=color, alpha=0.5)
            ax.stairs(shares, edges, color=color, linewidth=1.0)
        else:
            ax.text(0.5, 0.5, "no values", ha="center", va="center", color="gray",
                    fontsize=FONT_SIZE, transform=ax.transAxes)
        ax.set_title(_short(label, 24), fontsize=FONT_SIZE, **TITLE)
        ax.tick_params(labelsize=FONT_SIZE - 2)
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    left.suptitle(f"{_short(layer, 40)} output, share of values", fontsize=FONT_SIZE + 1,
                  **LITERAL)
    _draw_board(right.add_subplot(), board, metric, baseline, higher)
    return fig


class _StampedText(RendererAgg):
    """Agg's renderer drawing each text from a kept stamp: its pixels' coverage, rendered
    once per string, font, angle and dpi, then laid on the canvas at whole pixels.

    Agg renders a text glyph by glyph at 1/64-pixel positions, about a millisecond a
    label, most of the editor's redraw; a stamp costs one composite. The text lands at
    the nearest whole pixel (at most half a pixel from where Agg puts it), with the
    coverage Agg gives it there: a stamp is Agg's own rendering at a whole-pixel
    origin. Every figure here is drawn through it (`_Canvas`), so a kept figure and a
    fresh one draw the same pixels.
    """

    def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if ismath:  # (not used here: every text is literal)
            return super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)
        key = (s, hash(prop), float(angle), float(self.dpi), bool(gc.get_antialiased()),
               matplotlib.rcParams["text.hinting"], matplotlib.rcParams["text.hinting_factor"],
               *(str(getattr(mtext, name, lambda: None)()) for name in _TEXT_OPTIONS))
        try:
            stamp = _STAMPS.get(key)
            if stamp is None:
                stamp = _STAMPS.keep(key, self._stamp(gc, s, prop, angle, mtext))
            mask, left, top = stamp
            if mask is not None:  # y: the bottom row, counted from the top (as Agg's own call)
                self._renderer.draw_text_image(mask, round(x) + left,
                                               round(y) + top + mask.shape[0], 0, gc)
        except (AttributeError, TypeError):  # Agg's private calls changed (another matplotlib)
            return super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)

    def get_text_width_height_descent(self, s, prop, ismath):
        """Agg's (width, height, descent) of `s`, kept per string, font and dpi.

        Matplotlib keeps a text's measures per renderer, and every figure's canvas draws
        with a new one: here they are kept between figures, as the stamps are (a layer
        name or a tick label is measured once).
        """
        if ismath:  # (not used here: every text is literal)
            return super().get_text_width_height_descent(s, prop, ismath)
        key = (s, hash(prop), float(self.dpi), matplotlib.rcParams["text.hinting"],
               matplotlib.rcParams["text.hinting_factor"])
        return _kept(_TEXT_SIZES, key, 4096,
                     lambda: RendererAgg.get_text_width_height_descent(self, s, prop, False))

    def _get_font_height_metrics(self, prop):
        """(ascent, descent, line gap) of `prop`'s font in pixels, kept per font and dpi.

        Matplotlib 3.11 and later ask the renderer this for every text's layout (the
        hook of its PDF and PS backends) and otherwise read them from the font's tables
        each time: here they are read as matplotlib reads them (`Text._get_layout`), once.
        """
        return _kept(_FONT_HEIGHTS, (hash(prop), float(self.dpi)), 256,
                     lambda: self._read_font_heights(prop))

    def _read_font_heights(self, prop) -> tuple:
        return _font_heights(self._prepare_font(prop), prop.get_size_in_points() * self.dpi / 72)

    def _stamp(self, gc, s, prop, angle, mtext) -> tuple:
        """(coverage, left, top) of `s` drawn at a whole-pixel origin: offsets from it, down.

        Drawn on a scratch canvas sized for an em per character (no measuring: a text's
        layout is most of its cost); one that reaches the canvas' edge is drawn again on
        a canvas of its measured size.
        """
        em = prop.get_size_in_points() * self.dpi / 72
        stamp = self._stamp_within(gc, s, prop, angle, mtext, (1.5 * em * len(s), 1.4 * em, 0.4 * em))
        if stamp is None:
            size = self.get_text_width_height_descent(s, prop, False)  # kept
            stamp = self._stamp_within(gc, s, prop, angle, mtext, size, margin=2 * em)
        return stamp or (None, 0, 0)

    def _stamp_within(self, gc, s, prop, angle, mtext, size, margin=None) -> tuple | None:
        """The stamp, drawn on a canvas around a box of `size` (width, height, descent), or
        None when its ink reaches the canvas' edge (without `margin`: a guessed size)."""
        width, height, descent = size
        guessed = margin is None
        margin = math.ceil(margin or prop.get_size_in_points() * self.dpi / 72) + 2
        cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        corners = [(u * cos + v * sin, -u * sin + v * cos)  # rotated, y down
                   for u in (-margin, width + margin)
                   for v in (descent + margin, descent - height - margin)]
        x0 = math.floor(min(u for u, _ in corners))
        y0 = math.floor(min(v for _, v in corners))
        scratch = RendererAgg(math.ceil(max(u for u, _ in corners)) - x0 + 1,
                              math.ceil(max(v for _, v in corners)) - y0 + 1, self.dpi)
        pen = scratch.new_gc()
        pen.set_antialiased(gc.get_antialiased())
        pen.set_foreground((0.0, 0.0, 0.0, 1.0))
        RendererAgg.draw_text(scratch, pen, -x0, -y0, s, prop, angle, False, mtext)
        pen.restore()
        coverage = np.asarray(scratch.buffer_rgba())[..., 3]
        rows, columns = np.flatnonzero(coverage.any(1)), np.flatnonzero(coverage.any(0))
        if not rows.size:
            return None if guessed and s.strip() else (None, 0, 0)
        if guessed and (rows[0] == 0 or columns[0] == 0 or rows[-1] == coverage.shape[0] - 1
                        or columns[-1] == coverage.shape[1] - 1):
            return None
        top, left = int(rows[0]), int(columns[0])
        mask = np.ascontiguousarray(coverage[top:rows[-1] + 1, left:columns[-1] + 1])
        return mask, left + x0, top + y0


def _kept(cache: dict, key, limit: int, compute):
    """``cache[key]``, computed and kept when missing; a cache holding more than `limit`
    answers is emptied first (a session draws few texts and fonts).

    >>> cache = {}
    >>> _kept(cache, "a", 1, lambda: 1), _kept(cache, "a", 1, lambda: 2)
    (1, 1)
    """
    value = cache.get(key)
    if value is None:
        if len(cache) > limit:
            cache.clear()
        value = cache[key] = compute()
    return value


#: Font heights (`_StampedText._get_font_height_metrics`) per font and dpi.
_FONT_HEIGHTS: dict = {}
#: Texts' measures (`_StampedText.get_text_width_height_descent`) per string, font and dpi.
_TEXT_SIZES: dict = {}
#: A text's options that change its glyphs (matplotlib 3.11 and later).
_TEXT_OPTIONS = ("get_fontfeatures", "get_language")
#: The font lists the kept texts were drawn with (`_fonts_in_use`).
_fonts_seen: tuple | None = None


def _fonts_in_use() -> tuple:
    """The rcParams that say which font file a generic family ("sans-serif") is drawn with
    (a `FontProperties`' hash, in the kept texts' keys, names the family, not the file), as they
    are now. When they differ from the last call's, the kept stamps, measures and font
    heights are forgotten: they were drawn with other fonts. Called once per figure drawn
    (`figure_to_png`, `FigureCache.png`, which keeps its figures per these lists too).

    >>> _ = _fonts_in_use(); _TEXT_SIZES["a text"] = (10.0, 8.0, 2.0)
    >>> _ = _fonts_in_use(); "a text" in _TEXT_SIZES  # the same fonts: kept
    True
    >>> with matplotlib.rc_context({"font.sans-serif": ["DejaVu Serif"]}):
    ...     _ = _fonts_in_use()
    >>> "a text" in _TEXT_SIZES  # drawn with other fonts meanwhile: forgotten
    False
    """
    global _fonts_seen
    rc = matplotlib.rcParams
    now = tuple(map(tuple, (rc["font.serif"], rc["font.sans-serif"], rc["font.cursive"],
                            rc["font.fantasy"], rc["font.monospace"])))
    if now != _fonts_seen:
        _fonts_seen = now
        _STAMPS.clear()
        _TEXT_SIZES.clear()
        _FONT_HEIGHTS.clear()
    return now


class _Stamps(collections.OrderedDict):
    """The stamps of the texts drawn lately, least recent first, at most `limit` bytes of
    coverage (a tick label's is a few hundred bytes, a rotated layer name's at a pixel
    ratio of 2 tens of KB). Thread-safe."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit, self.size = limit, 0
        self._lock = threading.Lock()

    def get(self, key, default=None):
        with self._lock:
            if key in self:
                self.move_to_end(key)
                return self[key]
        return default

    def keep(self, key, stamp: tuple) -> tuple:
        with self._lock:
            if key not in self:
                self[key] = stamp
                self.size += _stamp_size(stamp)
            while self.size > self.limit and len(self) > 1:
                self.size -= _stamp_size(self.popitem(last=False)[1])
        return stamp

    def clear(self) -> None:
        with self._lock:
            super().clear()
            self.size = 0


def _stamp_size(stamp) -> int:
    return 64 + (0 if stamp[0] is None else stamp[0].nbytes)


_STAMPS = _Stamps(limit=16 * 2**20)


class _Canvas(FigureCanvasAgg):
    """Agg's canvas with `_StampedText` as its renderer."""

    def get_renderer(self):
        renderer = super().get_renderer()
        if type(renderer) is RendererAgg:  # just made by Agg: same state, texts stamped
            renderer.__class__ = _StampedText
        return renderer


def figure_to_png(fig: Figure, dpi=None, *, pixel_ratio=1.0) -> bytes:
    """The figure as PNG bytes (for an `ipywidgets.Image` or a file).

    By default at the figure's own dpi times `pixel_ratio`: a figure made
    for a `Display` is drawn with one dot per device pixel of that screen.
    Texts are drawn as Agg renders them, placed at the nearest whole pixel,
    from stamps kept between figures (a text drawn before costs one composite).

    >>> figure_to_png(histogram_figure(np.arange(5.0)), dpi=50)[:4]
    b'\\x89PNG'
    >>> import struct
    >>> png = figure_to_png(comparison_figure(np.ones(3), np.ones(3), np.ones(3), np.ones(3),
    ...                                       display=Display(600)), pixel_ratio=2)
    >>> struct.unpack(">I", png[16:20])[0]  # width in device pixels
    1200
    """
    # Agg's canvas and our PNG writer directly: what `savefig` does for a PNG, without its
    # search for tight boxes and its canvas switching (a tenth of the editor's plot time);
    # texts drawn from kept stamps at whole pixels (`_StampedText`).
    dpi = float(dpi or fig.dpi * float(pixel_ratio))
    shown = fig.dpi
    _fonts_in_use()
    try:
        fig.dpi = dpi
        canvas = _Canvas(fig)
        canvas.draw()
        rgba = np.asarray(canvas.buffer_rgba())
    finally:
        fig.dpi = shown
    return encode_png(rgba, dpi)


def encode_png(rgba, dpi=DPI) -> bytes:
    """PNG bytes of an RGBA array (height, width, 4) of uint8: RGB when opaque, else RGBA.

    Lossless, rows unfiltered and zlib at level 1: plots are mostly flat colour,
    which this compresses as well as Pillow's adaptive filters (within a few
    percent) in less than half its time. `dpi` is written as the pixel density.
    `PngFrames` encodes successive images of one figure, reusing what did not change.

    >>> import io, PIL.Image
    >>> rgba = np.zeros((2, 3, 4), np.uint8); rgba[..., 3] = 255; rgba[0, 1, 0] = 200
    >>> png = encode_png(rgba)
    >>> np.array_equal(np.asarray(PIL.Image.open(io.BytesIO(png))), rgba[..., :3])
    True
    """
    return PngFrames().encode(rgba, dpi)


class PngFrames:
    """PNG encoding of successive images of one figure: a band of rows whose pixels did
    not change since the last image keeps its compressed bytes.

    The rows are compressed in bands of `rows`, each ending on a byte boundary with
    zlib's state reset (a full flush), so the bands' bytes join into one valid stream
    whichever were compressed now; the stream's checksum is combined from the bands'.
    The depth plot after an edit changes a third to four fifths of its rows.

    >>> import io, PIL.Image
    >>> frames, image = PngFrames(rows=2), np.full((5, 4, 4), 255, np.uint8)
    >>> _ = frames.encode(image); image[4, 0, :3] = 9
    >>> png = frames.encode(image)  # two bands of the three kept
    >>> np.array_equal(np.asarray(PIL.Image.open(io.BytesIO(png))), image[..., :3])
    True
    """

    def __init__(self, rows: int = 32):
        self.rows = rows
        self._last: np.ndarray | None = None
        self._bands: list = []  # (compressed bytes, adler32, length) per band of the last image
        self._channels = 0

    def encode(self, rgba, dpi=DPI) -> bytes:
        """PNG bytes of `rgba` (see `encode_png`)."""
        rgba = np.asarray(rgba)
        height, width = rgba.shape[:2]
        channels = 3 if _opaque(rgba) else 4
        last = self._last
        if last is None or last.shape != rgba.shape or self._channels != channels:
            last = None
        bands = []
        for band, start in enumerate(range(0, height, self.rows)):
            block = rgba[start:start + self.rows]
            if last is not None and np.array_equal(block, last[start:start + self.rows]):
                bands.append(self._bands[band])
            else:
                bands.append(_compressed_band(block, channels))
        self._last, self._bands, self._channels = rgba.copy(), bands, channels
        checksum = 1  # the Adler-32 of no bytes
        for _, adler, length in bands:
            checksum = _adler32_combine(checksum, adler, length)
        stream = b"".join([b"\x78\x01", *(data for data, _, _ in bands), _LAST_BLOCK,
                           struct.pack(">I", checksum)])
        per_metre = round(float(dpi) / 0.0254)
        return b"".join([
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8,
                                        2 if channels == 3 else 6, 0, 0, 0)),
            _chunk(b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1)),
            _chunk(b"IDAT", stream),
            _chunk(b"IEND", b""),
        ])


#: A raw deflate stream's closing block (final, empty).
_LAST_BLOCK = zlib.compressobj(1, zlib.DEFLATED, -15).flush()


def _compressed_band(block, channels) -> tuple:
    """(raw deflate bytes ending in a full flush, Adler-32, length) of rows of PNG data."""
    height, width = block.shape[:2]
    rows = np.empty((height, width * channels + 1), np.uint8)
    rows[:, 0] = 0  # filter type "None" on every row
    rows[:, 1:].reshape(height, width, channels)[...] = block[..., :channels]
    packer = zlib.compressobj(1, zlib.DEFLATED, -15)
    data = packer.compress(rows.data) + packer.flush(zlib.Z_FULL_FLUSH)
    return data, zlib.adler32(rows.data), rows.size


def _adler32_combine(first, second, length) -> int:
    """The Adler-32 of two byte strings joined, from theirs and the second's length (zlib's
    `adler32_combine`)."""
    base = 65521
    rem = length % base
    low = ((first & 0xFFFF) + (second & 0xFFFF) + base - 1) % base
    high = (rem * (first & 0xFFFF) + (first >> 16) + (second >> 16) + base - rem) % base
    return low | (high << 16)


def _chunk(kind, data) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _opaque(rgba) -> bool:
    return bool(rgba[..., 3].min() == 255)


class FigureCache:
    """The editor's two figures, kept between draws: only what changes is drawn again.

    ``png("depth", display, **inputs)`` returns what
    ``figure_to_png(depth_summary_figure(**inputs, display=display), pixel_ratio=...)``
    returns (``"comparison"``: `comparison_figure`), pixel for pixel (but for
    one pixel where a bar meets a tick mark), at about a third of the cost after
    the first call for a layout: a figure is kept per plot, `Display` and layout
    (the depth figure's layer order, which legend entries, agreement bars and
    table rows there are...), and each call puts the new data into it. Its
    fixed parts are drawn once and kept as pixels (depth: panels, titles, the
    layer names, legend, the shares' y axes; comparison: backgrounds, titles,
    the histograms' x labels (pinned: `_pin_xlabel`), the bars' axes, the table's
    labels); what the data changes is drawn over a copy of them (depth: lines,
    the mean and std y axes, frames; comparison: the staircases, updated in
    place, the histograms' axes and keys (`_Key`), the bars and their grid
    lines, the numbers), texts from kept stamps (`_StampedText`). Each
    kept figure's PNG reuses the compressed bands of rows that did not change
    (`PngFrames`). At most `keep` figures per plot are kept (a few MB each at
    a pixel ratio of 1, about 20 MB at 2). One lock: calls from several
    threads take turns.

    >>> from kerawidgets.statistics import layer_statistics
    >>> cache = FigureCache()
    >>> stats = {"a": layer_statistics(np.ones(3)), "b": layer_statistics(np.zeros(3))}
    >>> cache.png("depth", Display(600), stats_before=stats, stats_after=stats)[:4]
    b'\\x89PNG'
    """

    def __init__(self, keep: int = 2):
        self.keep = keep
        self._kept: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()

    def png(self, plot: str, display: Display | None = None, **inputs) -> bytes:
        """PNG bytes of `plot` ("comparison" or "depth") of `inputs`, drawn for `display`."""
        arguments.choice("plot", plot, ("comparison", "depth"))
        live_class: type[_LiveDepth] | type[_LiveComparison] = (
            _LiveDepth if plot == "depth" else _LiveComparison)
        display = display or Display()
        inputs = live_class.complete(inputs)
        key = (plot, display.key(), live_class.layout(inputs), _fonts_in_use())
        with self._lock:
            live = self._kept.pop(key, None)  # kept again only once drawn without an error
            if live is None:
                live = live_class(display, inputs)
            else:
                live.update(inputs)
            png = live.frames.encode(live.draw(), live.fig.dpi)
            self._kept[key] = live
            for old in [k for k in self._kept if k[0] == plot][:-self.keep]:
                del self._kept[old]
            return png


class _LiveDepth:
    """A kept `depth_summary_figure`: fixed parts as pixels, lines and y axes drawn on them."""

    @staticmethod
    def complete(inputs) -> dict:
        return {**inputs, "order": _depth_order(inputs.get("stats_before"),
                                                inputs.get("stats_after"), inputs.get("order"))}

    @staticmethod
    def layout(inputs) -> tuple:
        order = inputs["order"]
        return (tuple(order), inputs.get("title"), inputs.get("figsize"),
                bool(inputs.get("stats_after")),
                inputs.get("highlight") is not None and inputs.get("highlight") in order)

    def __init__(self, display, inputs):
        self.display = display
        self.frames = PngFrames()
        with _themed(display):
            self.fig = depth_summary_figure(**inputs, display=display)
        self.fig.dpi = DPI * display.pixel_ratio
        self.canvas = _Canvas(self.fig)
        for ax in self.fig.axes:
            for artist in self._drawn(ax):
                artist.set_animated(True)  # left out of the kept pixels
        self.canvas.draw()
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)

    @staticmethod
    def _drawn(ax) -> list:
        """What is drawn on every call, in matplotlib's order: y axis (unless its limits are
        fixed: the shares' panels), lines, frame."""
        axis = [ax.yaxis] if ax.get_autoscaley_on() else []
        return [*axis, *ax.lines, *ax.spines.values()]

    def update(self, inputs) -> None:
        order = inputs["order"]
        highlight = inputs.get("highlight")
        for ax, (key, _label) in zip(self.fig.axes, _DEPTH_PANELS):
            lines = list(ax.lines)
            lines.pop(0).set_ydata(_series(inputs.get("stats_before"), order, key))
            if inputs.get("stats_after"):
                lines.pop(0).set_ydata(_series(inputs["stats_after"], order, key))
            if lines:  # the edited layer's mark
                at = order.index(highlight)
                lines[0].set_xdata([at, at])
            if ax.get_autoscaley_on():
                ax.relim()
                ax.autoscale_view(scalex=False)

    def draw(self) -> np.ndarray:
        """The figure's pixels (RGBA) with the current data."""
        self.canvas.restore_region(self.background)
        with _themed(self.display):  # ticks made while drawing take the theme
            for ax in self.fig.axes:
                for artist in self._drawn(ax):
                    ax.draw_artist(artist)
        return np.asarray(self.canvas.buffer_rgba())


class _LiveComparison:
    """A kept `comparison_figure`: fixed parts (frames' backgrounds, the bars' labels and
    titles, the table's labels) as pixels; histograms, axes, legends and numbers drawn on them."""

    @staticmethod
    def complete(inputs) -> dict:
        if inputs.get("agreement") is None:
            inputs = {**inputs, "agreement": compute_agreement(
                inputs["output_before"], inputs["output_after"], inputs.get("y"))}
        return inputs

    @staticmethod
    def layout(inputs) -> tuple:
        agreement = inputs["agreement"]
        return (inputs.get("title"), inputs.get("figsize"),
                inputs["layer_after"] is None, inputs["output_after"] is None,
                tuple(label for label, _ in _agreement_shares(agreement)),
                tuple(label for label, _ in _agreement_rows(agreement)))

    def __init__(self, display, inputs):
        self.display = display
        self.frames = PngFrames()
        with _themed(display) as c:
            self.fig, self.axes = _comparison_axes(display, inputs.get("figsize"),
                                                   inputs.get("title"))
            _draw_comparison(self.axes, self._values(inputs), inputs["agreement"],
                             inputs.get("layer_name", "edited layer"), c)
        self.fig.dpi = DPI * display.pixel_ratio
        self.canvas = _Canvas(self.fig)
        self.values = self.axes["table"].texts[1::2]  # the table: label, value, label...
        bars = self.axes["bars"]
        # The bars' grid lines lie over the bars: drawn on every call, the rest of their
        # axis (ticks 0, 0.5, 1 and the axis label) kept as pixels.
        self.grid = ([tick.gridline for tick in bars.xaxis.get_major_ticks(len(bars.get_xticks()))]
                     if bars.axison else [])
        self._drawn = self._dynamic()
        for _ax, artist in self._drawn:
            artist.set_animated(True)  # left out of the kept pixels
        for line in self.grid:  # a tick draws its lines whether animated or not
            line.set_visible(False)
        self.canvas.draw()
        for line in self.grid:
            line.set_visible(True)
        # The histograms' x labels are pinned (`_pin_xlabel`): kept as pixels, not drawn
        # with their axes.
        self.pinned = [self.axes[name].xaxis.label for name in ("layer", "model")]
        for name, label in zip(("layer", "model"), self.pinned):
            self.axes[name].draw_artist(label)
        self.background = self.canvas.copy_from_bbox(self.fig.bbox)

    @staticmethod
    def _values(inputs):
        return (inputs["layer_before"], inputs["layer_after"], inputs["output_before"],
                inputs["output_after"])

    def _dynamic(self) -> list:
        """(axes, artist) drawn on every call, in the order matplotlib draws them."""
        a = self.axes
        spines = {name: list(a[name].spines.values()) for name in ("layer", "model", "bars")}
        drawn = {
            "layer": [*a["layer"].patches, a["layer"].xaxis, a["layer"].yaxis, *spines["layer"],
                      a["layer"].title, _key_of(a["layer"])],
            "model": [*a["model"].patches, a["model"].xaxis, a["model"].yaxis, *spines["model"],
                      _key_of(a["model"])],
            "table": list(self.values),
        }
        bars = a["bars"]  # with shares: bars, their grid lines, the frame, their values
        bars_drawn = ([*_in_draw_order(bars, bars.patches), *self.grid,
                       *_in_draw_order(bars, [*spines["bars"], *bars.texts])]
                      if bars.axison else list(bars.texts))  # without: one note, no frame
        return [(ax, artist) for name, ax in a.items() if name != "bars"
                for artist in _in_draw_order(ax, drawn[name])] + [(bars, artist)
                                                                  for artist in bars_drawn]

    def update(self, inputs) -> None:
        layer_before, layer_after, output_before, output_after = self._values(inputs)
        name = inputs.get("layer_name", "edited layer")
        with _themed(self.display) as c:
            _update_histogram(self.axes["layer"], layer_before, layer_after,
                              f"{_short(name, 48)} output")
            _update_histogram(self.axes["model"], output_before, output_after, "model output")
            bars = self.axes["bars"]
            shares = _agreement_shares(inputs["agreement"])
            if shares:
                _update_bars(bars, shares, c)
            for text, (_label, value) in zip(self.values, _agreement_rows(inputs["agreement"])):
                text.set_text(value)
        self._drawn = self._dynamic()

    def draw(self) -> np.ndarray:
        """The figure's pixels (RGBA) with the current data."""
        self.canvas.restore_region(self.background)
        for label in self.pinned:
            label.set_visible(False)
        try:
            with _themed(self.display):
                for ax, artist in self._drawn:
                    ax.draw_artist(artist)
        finally:
            for label in self.pinned:
                label.set_visible(True)
        return np.asarray(self.canvas.buffer_rgba())


def _in_draw_order(ax, artists) -> list:
    """`artists` of `ax` in the order `Axes.draw` draws its children (by zorder, stably)."""
    wanted = {id(artist) for artist in artists if artist is not None}
    return [child for child in sorted(ax.get_children(), key=lambda child: child.get_zorder())
            if id(child) in wanted]
