"""What the graph can be coloured by: per-node numbers from the probe's statistics.

Each metric is a `MetricSpec`: its values by node id, a fixed scale (so a small
change never looks like a big one), how to write a value, and when a node gets
a badge ("42% dead"). Computed from `statistics.layer_statistics` results the
probe already has (no extra forward pass) and from `statistics.movement`.
`GraphView.set_metrics` shows them; the front end (graph_view.js) and the SVG
export (`svg.py`) place values on the scale with the same rule, `position`.

>>> stats = {"conv": {"dead_fraction": 0.42, "saturation": 0.0, "zero_fraction": 0.5,
...                   "mean": 0.3, "std": 0.9}}
>>> specs = from_statistics(stats, movement={"conv": 0.02})
>>> sorted(specs)
['dead', 'mean', 'movement', 'near_zero', 'saturation', 'std']
>>> badge_text(specs["dead"], 0.42), format_value(specs["movement"], 0.02)
('42% dead', '2.0%')
>>> round(position(specs["movement"], 0.02), 3)  # log scale, 0.1% .. 100%
0.434
"""

from __future__ import annotations

import math
from typing import Literal, TypedDict

__all__ = [
    "METRICS", "MetricSpec", "badge_text", "format_value", "from_statistics", "group_value",
    "metric", "position",
]


class MetricSpec(TypedDict):
    """One colouring of the graph, as sent to the front end (``GraphView.metrics``)."""

    label: str  # what the legend and the "colour by" menu call it
    unit: str  # what a value means, said once in the legend
    scale: Literal["log", "linear", "diverging"]
    domain: list[float]  # [low, high] of the colour scale (values outside are clamped)
    format: Literal["percent", "number"]
    badge: str | None  # the word after the value on a badge ("dead"), or None for no badges
    threshold: float | None  # a badge from this value up
    values: dict[str, float]  # node id -> value


#: name -> (label, unit, scale, format, badge word, badge threshold, statistics keys, fixed domain).
#: The statistics keys are tried in order (the first one present is used).
METRICS: dict = {
    "movement": ("movement", "mean |after - before| / mean |before| on the probe",
                 "log", "percent", None, None, (), [1e-3, 1.0]),
    "dead": ("dead units", "share of units never active (0 for every probe sample; for a large "
             "output, at every sampled position)",
             "linear", "percent", "dead", 0.2,
             ("never_positive_fraction", "dead_fraction"), [0.0, 1.0]),
    "saturation": ("saturation", "share of values near the activation's limits",
                   "linear", "percent", "saturated", 0.2, ("saturation",), [0.0, 1.0]),
    "near_zero": ("near-zero share", "share of output values at (or near) zero",
                  "linear", "percent", "zero", 0.5,
                  ("near_zero_fraction", "zero_fraction"), [0.0, 1.0]),
    "mean": ("mean", "mean of the layer's output on the probe", "diverging", "number",
             None, None, ("mean",), None),
    "std": ("std", "standard deviation of the layer's output on the probe", "log", "number",
            None, None, ("std",), None),
}


def _finite(value) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _nice_up(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten that is >= value (> 0).

    >>> _nice_up(0.37), _nice_up(3.0), _nice_up(12)
    (0.5, 5.0, 20.0)
    """
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        candidate = step * 10.0 ** exponent
        if candidate >= value * (1 - 1e-9):
            return float(f"{candidate:.6g}")
    return 10.0 ** (exponent + 1)


def _domain(name: str, scale: str, values: dict) -> list[float]:
    """The colour scale's range for values without a fixed one: decades for log, +-max for diverging."""
    finite = [v for v in values.values() if v is not None]
    if scale == "diverging":
        top = max((abs(v) for v in finite), default=0.0)
        top = _nice_up(top) if top > 0 else 1.0
        return [-top, top]
    positive = [v for v in finite if v > 0]
    if not positive:
        return [1e-3, 1.0]
    low = 10.0 ** math.floor(math.log10(min(positive)))
    high = 10.0 ** math.ceil(math.log10(max(positive)))
    return [low, high if high > low else low * 10]


def metric(name: str, values: dict) -> MetricSpec:
    """The `MetricSpec` of one of `METRICS` for ``{node id: value}`` (non-finite values dropped).

    >>> metric("dead", {"a": 0.5, "b": float("nan")})["values"]
    {'a': 0.5}
    """
    label, unit, scale, fmt, badge, threshold, _, fixed = METRICS[name]
    clean = {str(k): v for k, v in ((k, _finite(v)) for k, v in values.items()) if v is not None}
    return {"label": label, "unit": unit, "scale": scale,
            "domain": list(fixed) if fixed else _domain(name, scale, clean),
            "format": fmt, "badge": badge, "threshold": threshold, "values": clean}


def from_statistics(stats: dict, movement: dict | None = None) -> dict[str, MetricSpec]:
    """Every metric the statistics hold, from ``{node id: layer_statistics(...)}``.

    `movement` (``statistics.movement``) adds the "movement" metric. Metrics no
    node has a value for are left out.
    """
    out: dict[str, MetricSpec] = {}
    if movement:
        out["movement"] = metric("movement", movement)
    for name, spec in METRICS.items():
        keys = spec[6]
        if not keys:
            continue
        values = {}
        for node_id, layer in (stats or {}).items():
            if not isinstance(layer, dict):
                continue
            found = next((layer[k] for k in keys if layer.get(k) is not None), None)
            if _finite(found) is not None:
                values[node_id] = found
        if values:
            out[name] = metric(name, values)
    return {name: out[name] for name in sorted(out)}


def position(spec: MetricSpec, value) -> float:
    """Where a value sits on the metric's colour scale, 0..1 (graph_view.js: `metricPosition`).

    >>> spec = metric("dead", {})
    >>> position(spec, 0.25), position(spec, 2.0)
    (0.25, 1.0)
    >>> position(metric("mean", {"a": -2.0}), 0.0)
    0.5
    """
    value = _finite(value)
    if value is None:
        return 0.0
    low, high = (float(d) for d in spec["domain"])
    if spec["scale"] == "log":
        if value <= low:
            return 0.0
        t = (math.log10(value) - math.log10(low)) / (math.log10(high) - math.log10(low))
    else:
        t = (value - low) / (high - low) if high > low else 0.0
    return min(1.0, max(0.0, t))


def format_value(spec: MetricSpec, value) -> str:
    """A value as the legend and the hover card write it (graph_view.js: `formatMetric`).

    >>> spec = metric("movement", {})
    >>> format_value(spec, 0.0004), format_value(spec, 0.25), format_value(spec, 3)
    ('0.04%', '25.0%', '300%')
    >>> format_value(metric("std", {}), 0.001234), format_value(metric("std", {}), 1234.5)
    ('0.00123', '1.23e+03')
    """
    value = _finite(value)
    if value is None:
        return "n/a"
    if spec["format"] == "percent":
        pct = value * 100
        if pct == 0 or abs(pct) >= 100:
            return f"{pct:.0f}%"
        if abs(pct) >= 1:
            return f"{pct:.1f}%"
        return f"{pct:.2g}%"
    if value == 0 or 1e-3 <= abs(value) < 1e3:
        return f"{value:.3g}"
    return f"{value:.2e}"


def badge_text(spec: MetricSpec, value) -> str | None:
    """The badge a node gets for a value past the metric's threshold ("42% dead"), else None."""
    value = _finite(value)
    if spec["badge"] is None or spec["threshold"] is None or value is None \
            or value < spec["threshold"]:
        return None
    return f"{round(value * 100)}% {spec['badge']}"


def group_value(spec: MetricSpec, members) -> float | None:
    """A closed group's value: the member farthest along the scale (the largest; for a
    diverging scale the largest in size). None if no member has a value."""
    values = [spec["values"][m] for m in members if m in spec["values"]]
    if not values:
        return None
    if spec["scale"] == "diverging":
        return max(values, key=abs)
    return max(values)
