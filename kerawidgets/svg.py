"""Standalone SVG drawing of a graph layout (no Graphviz, no browser).

The drawing matches the GraphView widget's light theme. Layer names are
escaped as XML text, never interpreted as markup.

>>> import keras
>>> from kerawidgets.graph import ModelGraph
>>> from kerawidgets.layout import layout
>>> from kerawidgets.svg import to_svg
>>> inp = keras.Input((4,), name="x")
>>> graph = ModelGraph.from_model(keras.Model(inp, keras.layers.Dense(2, name="<d>")(inp)))
>>> text = to_svg(layout(graph))
>>> text.startswith("<svg") and "&lt;d&gt;" in text and "<d>" not in text
True
"""

from __future__ import annotations

import math
from xml.sax.saxutils import escape, quoteattr

from kerawidgets import node_metrics
from kerawidgets.layout import short_count

#: Fill colour of each layer family (light theme); the front end uses the same.
FAMILY_COLORS = {
    "input": "#e3e7ec",
    "conv": "#cfe0fb",
    "dense": "#d3efd6",
    "norm": "#fbefc2",
    "activation": "#eedcf7",
    "pool": "#cdeeee",
    "merge": "#f9d9d9",
    "reshape": "#e4e4f4",
    "recurrent": "#ead9c6",
    "op": "#eeeeee",
    "other": "#f3f3f3",
    "group": "#f6f8fa",
}
STRIPE_COLORS = {
    "input": "#7d8794", "conv": "#3b73d1", "dense": "#3c9a4a", "norm": "#c9a227",
    "activation": "#9b59b6", "pool": "#1f9a9a", "merge": "#d05656", "reshape": "#6a6ab8",
    "recurrent": "#9a6a3a", "op": "#8a8a8a", "other": "#a0a0a0", "group": "#59636e",
}
#: Edited nodes are purple, so they never look like the selection (blue, with a halo).
MARK_COLORS = {"edited": "#8250df", "error": "#d1242f"}
SELECTED_COLOR = "#0969da"


def heat_color(value: float) -> str:
    """White -> orange -> red for a value in 0..1.

    >>> heat_color(0.0), heat_color(1.0)
    ('#ffffff', '#d7301f')
    """
    v = min(1.0, max(0.0, float(value)))
    stops = [(0.0, (255, 255, 255)), (0.5, (253, 174, 97)), (1.0, (215, 48, 31))]
    for (a, ca), (b, cb) in zip(stops, stops[1:]):
        if v <= b:
            t = (v - a) / (b - a)
            rgb = [round(x + (y - x) * t) for x, y in zip(ca, cb)]
            return "#{:02x}{:02x}{:02x}".format(*rgb)
    return "#d7301f"


MARK_BADGES = {"edited": "\u270e", "error": "!"}


def diverging_color(value: float) -> str:
    """Blue -> white -> red for a position in 0..1 (0.5 is white).

    >>> diverging_color(0.0), diverging_color(0.5), diverging_color(1.0)
    ('#2166ac', '#ffffff', '#b2182b')
    """
    v = min(1.0, max(0.0, float(value)))
    low, mid, high = (33, 102, 172), (255, 255, 255), (178, 24, 43)
    a, b, t = (low, mid, v / 0.5) if v <= 0.5 else (mid, high, (v - 0.5) / 0.5)
    return "#{:02x}{:02x}{:02x}".format(*(round(x + (y - x) * t) for x, y in zip(a, b)))


def metric_color(spec, value) -> str:
    """The fill of a value of a `node_metrics.MetricSpec` (graph_view.js: `metricColor`)."""
    t = node_metrics.position(spec, value)
    return diverging_color(t) if spec["scale"] == "diverging" else heat_color(t)


def _num(value) -> str:
    """A finite number as attribute text; anything else raises ValueError.

    >>> _num(3), _num("2.50"), _num(-0.04)
    ('3', '2.5', '-0')
    """
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"Not a finite number in the scene: {value!r}")
    text = f"{number:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _tag(name: str, attrs: dict, text: str | None = None, close: bool = True) -> str:
    """``<name a="..."...>`` with every value quoted and escaped; numbers go through `_num`."""
    parts = [name]
    for key, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = _num(value)
        parts.append(f"{key}={quoteattr(str(value))}")
    head = "<" + " ".join(parts)
    if text is None and close:
        return head + "/>"
    if text is None:
        return head + ">"
    return f"{head}>{escape(str(text))}</{name}>" if close else f"{head}>{escape(str(text))}"


def to_svg(layout_or_scene, *, heat=None, marks=None, selected=None, metric=None,
           margin: float = 16) -> str:
    """SVG text of a `Layout` (or its `scene()` dict) with optional heat, marks and selection.

    `metric` (a `node_metrics.MetricSpec`) colours the nodes by its values instead
    of `heat`, draws its badges ("42% dead") and a legend with its units below.

    Every number of the scene is read with `float` (a malformed scene raises
    `ValueError`), every attribute is quoted and every text escaped, so the
    output stays well-formed whatever the scene holds.
    """
    scene = layout_or_scene.scene() if hasattr(layout_or_scene, "scene") else layout_or_scene
    heat = heat or {}
    marks = marks or {}
    margin = float(margin)
    legend = bool(metric or heat)
    width = max(float(scene["width"]), LEGEND_W if legend else 0.0) + 2 * margin
    height = float(scene["height"]) + 2 * margin + (LEGEND_H if legend else 0)
    out = [
        _tag("svg", {
            "xmlns": "http://www.w3.org/2000/svg", "width": round(width), "height": round(height),
            "viewBox": f"{_num(-margin)} {_num(-margin)} {_num(round(width))} {_num(round(height))}",
            "font-family": "system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif",
        }, close=False),
        _tag("title", {}, str(scene.get("model", "model"))),
        "<defs>" + _tag("marker", {
            "id": "kw-arrow", "viewBox": "0 0 10 10", "refX": 9, "refY": 5, "markerWidth": 7,
            "markerHeight": 7, "orient": "auto-start-reverse"}, close=False)
        + _tag("path", {"d": "M0,0 L10,5 L0,10 z", "fill": "#6e7781"}) + "</marker></defs>",
        _tag("rect", {"x": -margin, "y": -margin, "width": width, "height": height,
                      "fill": "#ffffff"}),
    ]
    for frame in scene["frames"]:
        x, y = float(frame["x"]), float(frame["y"])
        out.append(
            _tag("g", {"class": "kw-frame"}, close=False)
            + _tag("rect", {"x": x, "y": y, "width": float(frame["w"]), "height": float(frame["h"]),
                            "rx": 8, "fill": "#f6f8fa", "fill-opacity": "0.6",
                            "stroke": "#8c959f", "stroke-dasharray": "4 3"})
            + _tag("text", {"x": x + 8, "y": y + 17, "font-size": 11, "font-weight": 600,
                            "fill": "#24292f"}, frame["label"])
            + "</g>")
    for edge in scene["edges"]:
        d = "M" + " L".join(f"{_num(px)},{_num(py)}" for px, py in edge["points"])
        out.append(
            _tag("path", {"d": d, "fill": "none", "stroke": "#6e7781", "stroke-width": 1.2,
                          "marker-end": "url(#kw-arrow)"}, close=False)
            + _tag("title", {}, edge["shape"]) + "</path>")
    for item in scene["nodes"]:
        out.append(_node_svg(item, heat, marks, selected, metric))
    if legend:
        out.append(_legend_svg(metric, 0.0, float(scene["height"]) + margin))
    out.append("</svg>")
    return "\n".join(out)


LEGEND_H = 46
LEGEND_W = 360  # the unit line may run past the colour bar


def _legend_svg(metric, x: float, y: float) -> str:
    """The colour scale under the drawing: label, a gradient of 5 steps, low and high ends."""
    ends: tuple[str, ...]
    if metric is None:
        label, unit, ends = "heat", "relative (1 = the largest value)", ("0", "1")
        colors = [heat_color(i / 4) for i in range(5)]
    else:
        label, unit = metric["label"], metric["unit"]
        if metric["scale"] == "log":
            unit += " (log scale)"
        ends = tuple(node_metrics.format_value(metric, d) for d in metric["domain"])
        colors = [diverging_color(i / 4) if metric["scale"] == "diverging" else heat_color(i / 4)
                  for i in range(5)]
    parts = [_tag("g", {"class": "kw-legend"}, close=False),
             _tag("text", {"x": x, "y": y + 12, "font-size": 11, "font-weight": 600,
                           "fill": "#1f2328"}, f"colour: {label}"),
             _tag("text", {"x": x, "y": y + 40, "font-size": 10, "fill": "#57606a"}, unit)]
    for i, color in enumerate(colors):
        parts.append(_tag("rect", {"x": x + 150 + 24 * i, "y": y + 3, "width": 24, "height": 11,
                                   "fill": color, "stroke": "#8c959f", "stroke-width": 0.5}))
    parts.append(_tag("text", {"x": x + 146, "y": y + 12, "font-size": 10, "fill": "#57606a",
                               "text-anchor": "end"}, ends[0]))
    parts.append(_tag("text", {"x": x + 274, "y": y + 12, "font-size": 10, "fill": "#57606a"},
                      ("\u2265 " if metric is not None and metric["scale"] != "diverging" else "")
                      + ends[1]))
    return "".join(parts) + "</g>"


def _fill(item, family, heat, metric):
    """(fill colour, strength 0..1 for the ink or None, the metric's raw value or None)."""
    if metric is not None:
        raw = metric["values"].get(item["id"])
        if raw is None:
            raw = node_metrics.group_value(metric, item.get("members", []))
        if raw is None:
            return FAMILY_COLORS[family], None, None
        t = node_metrics.position(metric, raw)
        strength = abs(t - 0.5) * 2 if metric["scale"] == "diverging" else t
        return metric_color(metric, raw), strength, raw
    value = _heat_for(item, heat or {})
    if value is None:
        return FAMILY_COLORS[family], None, None
    value = min(1.0, max(0.0, float(value)))
    return heat_color(value), value, None


def _mark_of(item, marks):
    mark = marks.get(item["id"]) or next(
        (marks[m] for m in item.get("members", []) if m in marks), None)
    return mark if mark in MARK_COLORS else None


def _node_svg(item, heat, marks, selected, metric) -> str:
    """One node or closed group: body (coloured by family, heat or metric), texts, mark, badge."""
    family = item.get("family", "group") if item["kind"] == "node" else "group"
    family = family if family in FAMILY_COLORS else "other"
    fill, strength, raw = _fill(item, family, heat, metric)
    mark = _mark_of(item, marks or {})
    stroke, width_px = MARK_COLORS.get(mark, "#57606a"), 2.5 if mark else 1
    x, y, w, h = (float(item[k]) for k in ("x", "y", "w", "h"))
    out = []
    if selected and selected == item["id"]:
        # Selected: blue with a halo (edited is purple), so the two never look alike.
        stroke, width_px = SELECTED_COLOR, 3
        out.append(_tag("rect", {"x": x - 4, "y": y - 4, "width": w + 8, "height": h + 8,
                                 "rx": 9, "fill": "none", "stroke": SELECTED_COLOR,
                                 "stroke-opacity": "0.35", "stroke-width": 4,
                                 "class": "kw-halo"}))
    frozen = not item.get("trainable", True)
    ink, ink2 = ("#ffffff", "#ffffff") if strength is not None and strength > 0.72 else (
        "#1f2328", "#57606a")
    out.append(
        _tag("g", {"class": "kw-node", "data-id": item["id"]}, close=False)
        + _tag("title", {}, item.get("path", item["id"]))
        + _tag("rect", {"x": x, "y": y, "width": w, "height": h, "rx": 6, "fill": fill,
                        "stroke": stroke, "stroke-width": width_px,
                        "stroke-dasharray": "5 3" if frozen else None})
        + _tag("rect", {"x": x, "y": y + 3, "width": 4, "height": h - 6,
                        "fill": STRIPE_COLORS[family]})
        + _tag("text", {"x": x + 10, "y": y + 18, "font-size": 12, "font-weight": 600,
                        "fill": ink}, item["label"])
        + _tag("text", {"x": x + 10, "y": y + 34, "font-size": 10, "fill": ink2}, item["sub"]))
    params = int(item.get("params") or 0)
    if params:
        out.append(_tag("text", {"x": x + w - 6, "y": y + 18, "font-size": 9,
                                 "text-anchor": "end", "fill": ink2}, short_count(params)))
    if frozen:
        out.append(_tag("text", {"x": x + w - 6, "y": y + 34, "font-size": 9,
                                 "text-anchor": "end", "fill": ink2}, "frozen"))
    if mark:
        # The widget's badge: a filled circle on the top-right corner with a symbol.
        out.append(
            _tag("g", {"class": "kw-badge", "data-mark": mark}, close=False)
            + _tag("circle", {"cx": x + w - 2, "cy": y + 2, "r": 7, "fill": MARK_COLORS[mark]})
            + _tag("text", {"x": x + w - 2, "y": y + 5.5, "font-size": 10, "font-weight": 700,
                            "fill": "#ffffff", "text-anchor": "middle"}, MARK_BADGES[mark])
            + "</g>")
    if metric is not None and raw is not None:
        out.append(_metric_badge_svg(metric, raw, x, y))
    out.append("</g>")
    return "".join(out)


def _metric_badge_svg(metric, raw, x: float, y: float) -> str:
    """A pill on the node's top edge for a value past the metric's threshold ("42% dead")."""
    text = node_metrics.badge_text(metric, raw)
    if text is None:
        return ""
    width = 6.2 * len(text) + 8
    return (_tag("g", {"class": "kw-metric-badge"}, close=False)
            + _tag("rect", {"x": x + 8, "y": y - 8, "width": width, "height": 14, "rx": 7,
                            "fill": "#6e2b0c", "stroke": "#ffffff", "stroke-width": 1})
            + _tag("text", {"x": x + 8 + width / 2, "y": y + 2.5, "font-size": 9.5,
                            "font-weight": 600, "fill": "#ffffff", "text-anchor": "middle"}, text)
            + "</g>")


def _heat_for(item, heat):
    if item["id"] in heat:
        return heat[item["id"]]
    values = [heat[m] for m in item.get("members", []) if m in heat]
    return max(values) if values else None


def save_svg(layout_or_scene, path, **kwargs) -> str:
    """Write `to_svg(...)` to `path`; returns the path."""
    text = to_svg(layout_or_scene, **kwargs)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return str(path)


__all__ = ["FAMILY_COLORS", "MARK_BADGES", "diverging_color", "heat_color", "metric_color",
           "save_svg", "to_svg"]
