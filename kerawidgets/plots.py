"""Matplotlib figures of layer outputs before and after an edit.

Every function returns a new `matplotlib.figure.Figure` built without
pyplot, so nothing touches global state or opens a window; show one in a
notebook by leaving it as the cell's value, or turn it into PNG bytes with
`figure_to_png` (what the editor widget displays). Text (layer names,
titles) is drawn literally: a ``$`` in a name is a dollar sign, not mathtext.

>>> import numpy as np
>>> from kerawidgets.plots import figure_to_png, histogram_figure
>>> rng = np.random.default_rng(0)
>>> fig = histogram_figure(rng.normal(size=500), rng.normal(0.5, 1, 500), title="dense_1")
>>> figure_to_png(fig)[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
True
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure

from kerawidgets.statistics import LayerSummary
from kerawidgets.statistics import agreement as compute_agreement

__all__ = [
    "agreement_figure",
    "comparison_figure",
    "depth_summary_figure",
    "figure_to_png",
    "histogram_figure",
    "sweep_figure",
]

BEFORE_COLOR = "#4C72B0"
AFTER_COLOR = "#DD8452"
FONT_SIZE = 9
#: Text properties for every title, label and tick label: layer names are data,
#: drawn as written, never parsed as mathtext (a name like ``odd$\foo{$`` would
#: otherwise make matplotlib raise while drawing).
LITERAL = {"parse_math": False}
#: Axes titles: literal, and at a fixed height just above the axes (no axes here
#: has tick labels on top), which spares matplotlib a search for overlaps on
#: every draw.
TITLE = {**LITERAL, "y": 1.0}


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
    fig = Figure(figsize=(width, height), layout="constrained")
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
    if isinstance(source, LayerSummary):  # exact numbers, not the sample's
        stats = source.statistics()
        if stats["mean"] is not None:
            return f"{name}: mean {stats['mean']:.3g}, std {stats['std']:.3g}"
    if values.size == 0:
        return f"{name} (no values)"
    return f"{name}: mean {values.mean():.3g}, std {values.std():.3g}"


def _draw_histogram(ax, before, after, title, bins=50, xlabel="output value"):
    b = _values(before)
    a = None if after is None else _values(after)
    edges = _shared_bins(b, a, bins)
    # One filled and one outlined staircase per side: two artists instead of a
    # patch per bar, which keeps drawing fast for the editor.
    for values, source, color, name in ((b, before, BEFORE_COLOR, "before"),
                                        (a, after, AFTER_COLOR, "after")):
        if values is None:
            continue
        shares = np.histogram(values, bins=edges)[0] / max(values.size, 1)
        ax.stairs(shares, edges, fill=True, color=color, alpha=0.45,
                  label=_label(name, values, source))
        ax.stairs(shares, edges, color=color, linewidth=1.2)
    ax.set_title(title, fontsize=FONT_SIZE + 1, **TITLE)
    ax.set_xlabel(xlabel, fontsize=FONT_SIZE, **LITERAL)
    ax.set_ylabel("share of values", fontsize=FONT_SIZE)
    ax.tick_params(labelsize=FONT_SIZE - 1)
    ax.legend(fontsize=FONT_SIZE - 1, frameon=False, loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    top = ax.get_ylim()[1]
    ax.set_ylim(0, top * 1.25)  # room for the legend


def histogram_figure(before, after=None, *, title="Layer output", bins=50,
                     xlabel="output value", figsize=(6.4, 3.4)) -> Figure:
    """Overlaid histograms of `before` and `after` values with shared bins.

    Bars are shares of all values (so different sizes compare); the legend
    gives each side's mean and std. Either side may be a
    `kerawidgets.statistics.LayerSummary` (what the editor keeps): its
    sample is drawn and its exact mean and std are written.

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


def _series(stats, order, key):
    out = []
    for node in order:
        value = (stats or {}).get(node, {}).get(key) if stats else None
        out.append(np.nan if value is None else float(value))
    return np.array(out)


def depth_summary_figure(stats_before, stats_after=None, order=None, *,
                         title="Layer statistics along depth", highlight=None,
                         figsize=None) -> Figure:
    """Per-layer mean, std, share of zeros and saturation along depth, before vs after.

    `stats_before` / `stats_after` map node ids to `layer_statistics` dicts
    (see `kerawidgets.statistics.statistics_by_node`); `order` is the node
    ids from input to output (default: `stats_before`'s order). `highlight`
    marks a node id (the edited layer) with a vertical line.

    >>> from kerawidgets.statistics import layer_statistics
    >>> stats = {"a": layer_statistics(np.ones(3)), "b": layer_statistics(np.zeros(3))}
    >>> len(depth_summary_figure(stats, stats).axes)
    4
    """
    if order is None:
        order = list(stats_before or {})
        order += [k for k in (stats_after or {}) if k not in order]
    order = list(order)
    positions = np.arange(len(order))
    width = min(13.0, max(7.0, 0.28 * len(order) + 4))
    longest = max((len(_short(name)) for name in order), default=1)
    label_height = (longest * 0.6 * (FONT_SIZE - 2) * 0.87 + 30) / 72  # 60° labels + axis title
    figsize = figsize or (width, 4.2 + label_height)
    # Fixed margins (room for the rotated layer names) instead of constrained
    # layout: the margins are known, and this figure then draws in one pass.
    fig = Figure(figsize=figsize)
    fig.subplots_adjust(left=0.55 / figsize[0], right=1 - 0.15 / figsize[0],
                        top=1 - 0.55 / figsize[1], bottom=label_height / figsize[1],
                        hspace=0.32, wspace=0.16)
    axes = fig.subplots(2, 2, sharex=True)
    marks = len(order) <= 60  # a marker per layer helps a small model, clutters a large one
    for ax, (key, label) in zip(axes.ravel(), _DEPTH_PANELS):
        before = _series(stats_before, order, key)
        ax.plot(positions, before, color=BEFORE_COLOR, marker="o" if marks else None,
                markersize=3, linewidth=1.4, label="before")
        if stats_after:
            after = _series(stats_after, order, key)
            ax.plot(positions, after, color=AFTER_COLOR, marker="s" if marks else None,
                    markersize=3, linewidth=1.4, linestyle="--", label="after")
        if highlight is not None and highlight in order:
            ax.axvline(order.index(highlight), color="#C44E52", linewidth=1, alpha=0.7,
                       label="edited")
        ax.set_title(label, fontsize=FONT_SIZE + 1, **TITLE)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=FONT_SIZE - 1)
        if key in ("zero_fraction", "saturation"):
            ax.set_ylim(-0.03, 1.03)
    # One legend for the four panels, in the title line, where it hides no data.
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="upper right", ncol=3,
               fontsize=FONT_SIZE - 1, frameon=False, bbox_to_anchor=(1 - 0.1 / figsize[0], 1.0))
    step = max(1, int(np.ceil(len(order) / 30)))
    for ax in axes[1]:
        ax.set_xticks(positions[::step])
        ax.set_xticklabels([_short(order[i]) for i in positions[::step]], rotation=60,
                           ha="right", fontsize=FONT_SIZE - 2, **LITERAL)
        ax.set_xlabel("layer (input → output)", fontsize=FONT_SIZE)
    fig.suptitle(title, fontsize=FONT_SIZE + 2, x=0.55 / figsize[0], ha="left", **LITERAL)
    return fig


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


def _draw_agreement(bars_ax, text_ax, result, title):
    """Shares as bars on `bars_ax`, the other numbers as a two-column table on `text_ax`."""
    shares = [(label, result[key]) for key, label in _SHARES if result.get(key) is not None]
    colors = {"top-1 agreement": "#55A868", "accuracy before": BEFORE_COLOR,
              "accuracy after": AFTER_COLOR}
    if shares:
        labels = [label for label, _ in shares][::-1]
        values = [value for _, value in shares][::-1]
        bars = bars_ax.barh(labels, values, color=[colors[label] for label in labels],
                            height=0.6)
        for bar, value in zip(bars, values):
            inside = value > 0.75
            bars_ax.text(value - 0.02 if inside else value + 0.02,
                         bar.get_y() + bar.get_height() / 2, f"{value:.1%}", va="center",
                         ha="right" if inside else "left",
                         color="white" if inside else "black", fontsize=FONT_SIZE)
        bars_ax.set_xlim(0, 1)
        bars_ax.set_xlabel("share of samples", fontsize=FONT_SIZE)
        bars_ax.tick_params(labelsize=FONT_SIZE)
        bars_ax.grid(axis="x", alpha=0.3)
        bars_ax.set_ylim(len(shares) - 0.4 - max(3, len(shares)), len(shares) - 0.4)
    else:
        bars_ax.set_axis_off()
        bars_ax.text(0.5, 0.5, "no class-like output", ha="center", va="center",
                     fontsize=FONT_SIZE, color="gray", transform=bars_ax.transAxes)
    bars_ax.set_title(title, fontsize=FONT_SIZE + 1, **TITLE)
    text_ax.set_axis_off()
    rows = [(label, _fmt(result.get(key))) for key, label in _NUMBERS if key in result]
    if result.get("same_shape") is False:
        rows = [("output shape", f"{tuple(result.get('shape_before', ()))} → "
                                 f"{tuple(result.get('shape_after', ()))}")]
    if not rows:
        rows = [("no numbers", "")]
    step = 1.0 / max(len(rows), 4)
    for r, (label, value) in enumerate(rows):
        y = 1.0 - (r + 0.5) * step
        text_ax.text(0.0, y, label, ha="left", va="center", fontsize=FONT_SIZE,
                     color="#444444", transform=text_ax.transAxes, **LITERAL)
        text_ax.text(1.0, y, value, ha="right", va="center", fontsize=FONT_SIZE,
                     family="monospace", transform=text_ax.transAxes, **LITERAL)


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


def comparison_figure(layer_before, layer_after, output_before, output_after, *,
                      agreement=None, y=None, layer_name="edited layer",
                      title=None, figsize=(14.0, 3.9)) -> Figure:
    """The editor's figure after Apply: edited layer's histogram, model output's
    histogram, and the agreement panel, side by side.

    `agreement` defaults to `statistics.agreement(output_before, output_after, y)`.
    Several model outputs (lists) show the first.

    >>> rng = np.random.default_rng(0)
    >>> before = rng.normal(size=(16, 4))
    >>> fig = comparison_figure(before, np.tanh(before), before, before + 0.1, layer_name="dense")
    >>> [ax.get_title() for ax in fig.axes][:3]
    ['dense output', 'model output', 'model output agreement']
    """
    if agreement is None:
        agreement = compute_agreement(output_before, output_after, y)
    # Fixed margins, in inches, instead of constrained layout: the editor draws
    # this figure after every edit, and known margins draw in one pass.
    width, height = figsize
    fig = Figure(figsize=figsize)
    left, gap, bar_labels, right = 0.65, 0.8, 1.3, 0.25  # room for tick labels and titles
    top, bottom, x_label = 0.35 + (0.3 if title else 0.0), 0.55, 0.5
    panel = (width - left - gap - bar_labels - right) / 2.75  # histogram : agreement = 1 : 0.75
    y0, h = bottom / height, (height - top - bottom) / height

    def axes(x, w, y, hh):
        return fig.add_axes((x / width, y, w / width, hh))

    _draw_histogram(axes(left, panel, y0, h), layer_before, layer_after,
                    f"{_short(layer_name, 48)} output")
    _draw_histogram(axes(left + panel + gap, panel, y0, h), output_before, output_after,
                    "model output")
    column = left + 2 * panel + gap + bar_labels
    text_height = 0.36 * (height - top - bottom)
    bars = axes(column, 0.75 * panel, (bottom + text_height + x_label) / height,
                h - (text_height + x_label) / height)
    text = axes(column - bar_labels + 0.25, 0.75 * panel + bar_labels - 0.25, y0,
                (text_height - 0.1) / height)
    _draw_agreement(bars, text, agreement, "model output agreement")
    if title:
        fig.suptitle(title, fontsize=FONT_SIZE + 2, y=1 - 0.12 / height, **LITERAL)
    return fig


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


def figure_to_png(fig: Figure, dpi=100) -> bytes:
    """The figure as PNG bytes (for an `ipywidgets.Image` or a file).

    >>> figure_to_png(histogram_figure(np.arange(5.0)), dpi=50)[:4]
    b'\\x89PNG'
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return buffer.getvalue()
