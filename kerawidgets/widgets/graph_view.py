"""`GraphView`: an interactive graph of a Keras model in any notebook front end.

>>> import keras
>>> from kerawidgets.widgets import GraphView
>>> inp = keras.Input((4,), name="x")
>>> model = keras.Model(inp, keras.layers.Dense(2, name="head")(inp))
>>> view = GraphView(model)
>>> view.select("head")
>>> view.selected
{'id': 'head', 'layer': 'head'}
>>> view.set_heat({"head": 3.0, "x": 1.0})
>>> view.heat
{'head': 1.0, 'x': 0.3333333333333333}
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import anywidget
import traitlets

from kerawidgets import arguments, node_metrics
from kerawidgets.errors import InvalidEditError, UnknownLayerError
from kerawidgets.graph import ModelGraph
from kerawidgets.layout import default_open_groups, layout
from kerawidgets.svg import save_svg, to_svg
from kerawidgets.widgets.closing import static_text

MARK_KINDS = ("edited", "error")
#: The only traits the browser may write, each checked: `selected` and `open_groups` against
#: the graph, `color_by` (the graph's menu) against the colourings that exist. A write to any
#: other (`scene`, `heat`, `metrics`, `_esm`, `_model_name`, `tabbable`...) is refused and reverted.
BROWSER_TRAITS = ("selected", "open_groups", "color_by")
#: `color_by` values besides a metric's name: "" picks one (movement, else heat, else
#: the layer type), "type" colours by layer type, "heat" by `set_heat`'s values.
COLOR_BY_FIXED = ("", "type", "heat")


class GraphView(anywidget.AnyWidget):
    """Interactive top-down graph of a Keras model: click, hover, fold, search.

    Traits synced with the front end: `scene` (layout + node data),
    `open_groups`, `selected` (``{"id": node_id, "layer": layer_path}`` or
    ``{}``), `heat` (``{node_id: 0..1}``), `marks` (``{node_id: "edited" |
    "error"}``) and `theme` (``"auto"``, ``"light"`` or ``"dark"``).

    The browser may only write `selected` and `open_groups`, and both are
    checked against the graph before anything sees them (`set_state`); writes
    to the other traits are refused and the browser is sent the kernel's value.
    """

    # Their text, not their paths: anywidget would keep every instance alive (`closing`).
    _esm = static_text("graph_view.js")
    _css = static_text("graph_view.css")

    scene = traitlets.Dict().tag(sync=True)
    open_groups = traitlets.List(traitlets.Unicode()).tag(sync=True)
    selected = traitlets.Dict().tag(sync=True)
    heat = traitlets.Dict().tag(sync=True)
    marks = traitlets.Dict().tag(sync=True)
    theme = traitlets.Unicode("auto").tag(sync=True)
    height = traitlets.Unicode("520px").tag(sync=True)
    #: {name: node_metrics.MetricSpec}: what the graph can be coloured by (`set_metrics`).
    metrics = traitlets.Dict().tag(sync=True)
    #: What the nodes are coloured by: "" (automatic), "type", "heat" or a metric's name.
    color_by = traitlets.Unicode("").tag(sync=True)

    def __init__(self, model, *, open_groups=None, height="520px", theme="auto", x=None,
                 input_shape=None, **kwargs):
        """`x` or `input_shape` give a subclassed model's input shapes when it is not built."""
        check_view_arguments(model, open_groups, height, theme)
        self._select_callbacks = []
        self._guard = False
        self._last_selected: dict = {}
        self.model = model
        self.graph = ModelGraph.from_model(model, x=x, input_shape=input_shape)
        opened = (default_open_groups(self.graph) if open_groups is None
                  else [g for g in open_groups if self.graph.has_group(g)])
        super().__init__(height=height, theme=theme, **kwargs)
        self._guard = True
        try:
            self.open_groups = sorted(opened)
            self._redraw()
        finally:
            self._guard = False

    # --- drawing ------------------------------------------------------------

    @property
    def layout(self):
        """The `kerawidgets.layout.Layout` currently drawn (cached)."""
        return layout(self.graph, self.open_groups)

    def _redraw(self):
        self.scene = self.layout.scene()

    @traitlets.observe("open_groups")
    def _on_open_groups(self, change):
        if self._guard:
            return
        valid = sorted({g for g in change["new"] if self.graph.has_group(g)})
        if valid != list(change["new"]):
            self._guard = True
            try:
                self.open_groups = valid
            finally:
                self._guard = False
        self._redraw()

    def open_group(self, group_id: str) -> None:
        """Open a group (and the groups around it)."""
        self.graph.group(group_id)
        wanted = set(self.open_groups) | {group_id, *self.graph.ancestors(group_id)}
        self.open_groups = sorted(wanted)

    def close_group(self, group_id: str) -> None:
        """Close a group: it is drawn as one node."""
        self.graph.group(group_id)
        self.open_groups = sorted(set(self.open_groups) - {group_id})

    def reveal(self, node_id: str) -> None:
        """Open every group around a node so it is drawn."""
        chain = self.graph.ancestors(node_id)
        if not set(chain) <= set(self.open_groups):
            self.open_groups = sorted(set(self.open_groups) | set(chain))

    # --- selection ------------------------------------------------------------

    def _node_ids(self, key) -> list[str]:
        if isinstance(key, str):
            return [n.id for n in self.graph.resolve(key)]
        name = getattr(key, "name", None)
        if name is not None:
            return [n.id for n in self.graph.resolve(name)]
        raise InvalidEditError(f"Cannot find a node from {arguments.shorten(key)}: give a node id or layer name.")

    def select(self, node_id) -> None:
        """Select a node (by node id or layer name/path); ``None`` clears the selection."""
        if node_id is None or node_id == "":
            self.selected = {}
            return
        ids = self._node_ids(node_id)
        self.reveal(ids[0])
        self.selected = {"id": ids[0], "layer": self.graph.node(ids[0]).path}

    def _checked_selection(self, value) -> dict | None:
        """``{id, layer}`` for a selection naming an existing node, ``{}`` for an empty
        one, ``None`` for anything else (unknown id, not a dict)."""
        if not value:
            return {}
        node_id = value.get("id") if isinstance(value, dict) else None
        if not isinstance(node_id, str) or not self.graph.has_node(node_id):
            return None
        return {"id": node_id, "layer": self.graph.node(node_id).path}

    @traitlets.validate("selected")
    def _validate_selected(self, proposal):
        checked = self._checked_selection(proposal["value"])
        # Unknown ids are refused: keep the last valid selection (stored here, since
        # inside hold_trait_notifications `self.selected` already holds the new value).
        return dict(self._last_selected) if checked is None else checked

    @traitlets.observe("selected")
    def _on_selected(self, change):
        self._last_selected = dict(change["new"])
        for callback in list(self._select_callbacks):
            callback(dict(change["new"]))

    def set_state(self, sync_data):
        """Apply a state update from the browser, checked before any observer sees it.

        `selected` must name an existing node (its layer is taken from the graph),
        `open_groups` is reduced to existing groups; every other trait (the
        module's code `_esm`, `_css`, the model and view names, DOM traits
        such as `tabbable`) is the kernel's alone. Whatever is refused or
        corrected is sent back, so the browser shows the kernel's state again.
        """
        accepted: dict[str, Any] = {}
        corrected: list[str] = []
        for name, value in sync_data.items():
            if name == "selected":
                checked = self._checked_selection(value)
                if checked is None:
                    corrected.append(name)
                    continue
                accepted[name] = checked
                if checked != value:
                    corrected.append(name)
            elif name == "open_groups":
                groups = value if isinstance(value, list) else []
                valid = sorted({g for g in groups if isinstance(g, str) and self.graph.has_group(g)})
                accepted[name] = valid
                if valid != value:
                    corrected.append(name)
            elif name == "color_by":
                if self._color_by_ok(value):
                    accepted[name] = value
                else:
                    corrected.append(name)
            else:  # only the kernel sets the rest (code, model names, DOM traits): refused
                corrected.append(name)
        if accepted:
            try:
                super().set_state(accepted)
            except (traitlets.TraitError, TypeError, ValueError):
                corrected += list(accepted)  # the old values stay
        known = [name for name in corrected if name in self.keys]
        if known:
            self.send_state(known)

    def on_select(self, callback: Callable[[dict], Any], *, remove: bool = False) -> None:
        """Call ``callback(selected_dict)`` whenever the selection changes."""
        if remove:
            self._select_callbacks.remove(callback)
        else:
            self._select_callbacks.append(callback)

    # --- heat and marks -------------------------------------------------------

    @traitlets.validate("heat")
    def _validate_heat(self, proposal):
        out = {}
        for node_id, value in dict(proposal["value"]).items():
            if not self.graph.has_node(node_id):
                raise traitlets.TraitError(f"heat: {node_id!r} is not a node of this graph")
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or not 0 <= value <= 1:
                raise traitlets.TraitError(
                    f"heat: the value of {node_id!r} must be a number from 0 to 1, not {value!r}"
                    " (set_heat scales any numbers)")
            out[node_id] = float(value)
        return out

    @traitlets.validate("marks")
    def _validate_marks(self, proposal):
        marks = dict(proposal["value"])
        for node_id, kind in marks.items():
            if not self.graph.has_node(node_id):
                raise traitlets.TraitError(f"marks: {node_id!r} is not a node of this graph")
            if kind not in MARK_KINDS:
                raise traitlets.TraitError(
                    f"marks: {kind!r} on {node_id!r} is not one of {', '.join(MARK_KINDS)}")
        return marks

    def set_heat(self, values: dict | None) -> None:
        """Colour nodes by value: ``{layer_name_or_node_id: number}``, scaled to 0..1.

        Non-negative values are divided by the largest; otherwise min-max scaled.
        A layer name colours every call of that layer; a nested model's group
        id is skipped (its inner nodes carry their own values, as
        `statistics.movement` reports them). ``None`` or ``{}`` clears.
        """
        if not values:
            self.heat = {}
            return
        raw = {}
        for key, value in values.items():
            try:
                node_ids = self._node_ids(key)
            except UnknownLayerError:
                if self.graph.has_group(key):
                    continue  # a nested model's own output: its inner nodes carry the heat
                raise
            for node_id in node_ids:
                raw[node_id] = float(value)
        finite = [v for v in raw.values() if v == v and abs(v) != float("inf")]
        low, high = (min(finite), max(finite)) if finite else (0.0, 0.0)
        out = {}
        for node_id, value in raw.items():
            if value != value:
                continue
            if low >= 0:
                scaled = value / high if high > 0 else 0.0
            else:
                scaled = (value - low) / (high - low) if high > low else 0.0
            out[node_id] = min(1.0, max(0.0, scaled))
        self.heat = out

    # --- colour by: metrics from the probe's statistics ----------------------------

    def _color_by_ok(self, value) -> bool:
        return isinstance(value, str) and (value in COLOR_BY_FIXED or value in self.metrics)

    @traitlets.validate("color_by")
    def _validate_color_by(self, proposal):
        value = proposal["value"]
        if not self._color_by_ok(value):
            choices = ", ".join(repr(c) for c in (*COLOR_BY_FIXED, *self.metrics))
            raise traitlets.TraitError(f"color_by: {value!r} is not one of {choices}")
        return value

    def set_metrics(self, metrics: dict | None, color_by: str | None = None) -> None:
        """What the graph can be coloured by: ``{name: MetricSpec}``, as made by
        `kerawidgets.node_metrics.from_statistics` (or ``node_metrics.metric``).

        Values may be keyed by node id or layer name (a name gives every call of
        the layer); a nested model's group id is skipped, as in `set_heat`. The
        "colour by" menu of the graph lists them, with a legend in real units and
        badges past each metric's threshold. `color_by` picks one (else the
        current choice stays where it still exists). ``None`` or ``{}`` clears.
        """
        out = {}
        for name, spec in (metrics or {}).items():
            if not isinstance(spec, dict) or set(spec) != set(node_metrics.MetricSpec.__annotations__):
                raise InvalidEditError(
                    f"set_metrics: {name!r} is not a MetricSpec; make one with "
                    "kerawidgets.node_metrics.metric(name, values) or from_statistics(stats)")
            values = {}
            for key, value in spec["values"].items():
                for node_id in self._ids_or_skip(key):
                    values[node_id] = float(value)
            out[str(name)] = {**spec, "values": values}
        with self.hold_trait_notifications():
            self.metrics = out
            wanted = self.color_by if color_by is None else color_by
            self.color_by = wanted if self._color_by_ok(wanted) else ""

    def _ids_or_skip(self, key) -> list[str]:
        try:
            return self._node_ids(key)
        except UnknownLayerError:
            if self.graph.has_group(key):
                return []  # a nested model's own output: its inner nodes carry the values
            raise

    def active_coloring(self) -> tuple[str, dict | None]:
        """What the nodes are coloured by now: ``(name, MetricSpec or None)``.

        `color_by` "" picks movement if there is such a metric, else heat if set,
        else the layer type ("type", None). "heat" gives None as spec (heat is 0..1).
        """
        choice = self.color_by
        if choice == "heat" and not self.heat:
            choice = ""
        if not choice:
            choice = ("movement" if "movement" in self.metrics
                      else "heat" if self.heat else "type")
        if choice in self.metrics:
            return choice, self.metrics[choice]
        return choice, None

    def mark(self, node_id, kind: str = "edited") -> None:
        """Draw a badge on a node (by node id or layer): ``"edited"`` or ``"error"``."""
        if kind not in MARK_KINDS:
            raise InvalidEditError(f"Unknown mark {kind!r}; use one of {', '.join(MARK_KINDS)}.")
        marks = dict(self.marks)
        for nid in self._node_ids(node_id):
            marks[nid] = kind
        self.marks = marks

    def clear_marks(self) -> None:
        self.marks = {}

    # --- model changes and export ---------------------------------------------

    def set_model(self, model) -> None:
        """Show another model (say, after an edit), keeping open groups and selection
        where they still exist."""
        old_selected = dict(self.selected)
        self.model = model
        self.graph = ModelGraph.from_model(model)
        self._guard = True
        try:
            kept = [g for g in self.open_groups if self.graph.has_group(g)]
            if not self.open_groups:
                kept = sorted(default_open_groups(self.graph))
            self.open_groups = kept
        finally:
            self._guard = False
        self.heat = {k: v for k, v in self.heat.items() if self.graph.has_node(k)}
        self.marks = {k: v for k, v in self.marks.items() if self.graph.has_node(k)}
        self.metrics = {name: {**spec, "values": {k: v for k, v in spec["values"].items()
                                                  if self.graph.has_node(k)}}
                        for name, spec in self.metrics.items()}
        self._redraw()
        if old_selected and not self.graph.has_node(old_selected.get("id")):
            self.selected = {}
        elif old_selected:
            self.selected = {"id": old_selected["id"],
                             "layer": self.graph.node(old_selected["id"]).path}

    def _repr_mimebundle_(self, **kwargs):
        """The widget view, plus a static copy of the drawing for readers without a kernel
        (GitHub, nbviewer, nbconvert): see `kerawidgets.widgets.static_view`."""
        bundle = super()._repr_mimebundle_(**kwargs)
        from kerawidgets.widgets import static_view

        return static_view.with_fallback(bundle, lambda: static_view.graph_bundle(self))

    def to_svg(self) -> str:
        """The current drawing (open groups, heat, marks, selection) as SVG text.

        Drawn from the kernel's own layout, never from the synced `scene`.
        """
        return to_svg(self.layout, **self._drawing_args())

    def save(self, path) -> str:
        """Write the current drawing as a standalone SVG file; returns the path."""
        return save_svg(self.layout, path, **self._drawing_args())

    def _drawing_args(self) -> dict:
        name, spec = self.active_coloring()
        return {"heat": self.heat if name == "heat" else None, "metric": spec,
                "marks": self.marks, "selected": self.selected.get("id")}


THEMES = ("auto", "light", "dark")


def check_view_arguments(model, open_groups, height, theme) -> None:
    """Refuse bad `GraphView` arguments before anything is built (`kerawidgets.arguments`)."""
    arguments.model(model)
    if open_groups is not None and (isinstance(open_groups, str) or not all(
            isinstance(g, str) for g in arguments.sequence("open_groups", open_groups))):
        raise arguments.ArgumentError(
            "open_groups must be None or a list of group ids (strings); got "
            f"{arguments.described(open_groups)}.")
    arguments.text("height", height, limit=40)
    arguments.choice("theme", theme, THEMES)


__all__ = ["GraphView"]
