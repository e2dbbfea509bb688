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

from xml.sax.saxutils import escape, quoteattr

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
MARK_COLORS = {"edited": "#1f6feb", "error": "#d1242f"}


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


def to_svg(layout_or_scene, *, heat=None, marks=None, selected=None, margin: float = 16) -> str:
    """SVG text of a `Layout` (or its `scene()` dict) with optional heat, marks and selection."""
    scene = layout_or_scene.scene() if hasattr(layout_or_scene, "scene") else layout_or_scene
    heat = heat or {}
    marks = marks or {}
    width = scene["width"] + 2 * margin
    height = scene["height"] + 2 * margin
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="{-margin:.0f} {-margin:.0f} {width:.0f} {height:.0f}" '
        'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">',
        f"<title>{escape(str(scene.get('model', 'model')))}</title>",
        "<defs><marker id=\"kw-arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" "
        "markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\">"
        "<path d=\"M0,0 L10,5 L0,10 z\" fill=\"#6e7781\"/></marker></defs>",
        f'<rect x="{-margin}" y="{-margin}" width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    for frame in scene["frames"]:
        out.append(
            f'<g class="kw-frame"><rect x="{frame["x"]}" y="{frame["y"]}" width="{frame["w"]}" '
            f'height="{frame["h"]}" rx="8" fill="#f6f8fa" fill-opacity="0.6" stroke="#8c959f" '
            'stroke-dasharray="4 3"/>'
            f'<text x="{frame["x"] + 8}" y="{frame["y"] + 17}" font-size="11" font-weight="600" '
            f'fill="#24292f">{escape(frame["label"])}</text></g>'
        )
    for edge in scene["edges"]:
        pts = edge["pts"]
        d = "M" + " L".join(f"{x},{y}" for x, y in pts)
        out.append(f'<path d="{d}" fill="none" stroke="#6e7781" stroke-width="1.2" '
                   f'marker-end="url(#kw-arrow)"><title>{escape(edge["shape"])}</title></path>')
    for item in scene["nodes"]:
        family = item.get("family", "group") if item["kind"] == "node" else "group"
        value = _heat_for(item, heat)
        fill = heat_color(value) if value is not None else FAMILY_COLORS.get(family, "#f3f3f3")
        mark = marks.get(item["id"]) or next(
            (marks[m] for m in item.get("members", []) if m in marks), None)
        stroke = MARK_COLORS.get(mark, "#57606a")
        width_px = 2.5 if mark else 1
        if selected and selected == item["id"]:
            stroke, width_px = "#0969da", 3
        dash = "" if item.get("trainable", True) else ' stroke-dasharray="5 3"'
        ink, ink2 = ("#ffffff", "#ffffff") if value is not None and value > 0.72 else (
            "#1f2328", "#57606a")
        x, y, w, h = item["x"], item["y"], item["w"], item["h"]
        tooltip = item.get("path", item["id"])
        out.append(
            f'<g class="kw-node" data-id={quoteattr(item["id"])}><title>{escape(tooltip)}</title>'
            f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="6" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="{width_px}"{dash}/>'
            f'<rect x="{x}" y="{y + 3}" width="4" height="{h - 6}" fill="{STRIPE_COLORS.get(family)}"/>'
            f'<text x="{x + 10}" y="{y + 18}" font-size="12" font-weight="600" fill="{ink}">'
            f'{escape(item["label"])}</text>'
            f'<text x="{x + 10}" y="{y + 34}" font-size="10" fill="{ink2}">{escape(item["sub"])}</text>'
        )
        if item.get("params"):
            out.append(f'<text x="{x + w - 6}" y="{y + 18}" font-size="9" text-anchor="end" '
                       f'fill="{ink2}">{short_count(item["params"])}</text>')
        if not item.get("trainable", True):
            out.append(f'<text x="{x + w - 6}" y="{y + 34}" font-size="9" text-anchor="end" '
                       f'fill="{ink2}">frozen</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)


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


__all__ = ["FAMILY_COLORS", "heat_color", "save_svg", "to_svg"]
