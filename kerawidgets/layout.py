"""Layered top-down layout of a `ModelGraph`, with groups that fold.

The layout is compound: each open group is laid out on its own with
grandalf's Sugiyama layout and then placed as one big box in its parent's
layout, so group rectangles never overlap other nodes. A closed group is
drawn as one node. Results are cached per (graph, open groups), and the
geometry per (what the layout reads of the graph, open groups): the graph of
the model after an activation swap is drawn without laying it out again.

>>> import keras
>>> from kerawidgets.graph import ModelGraph
>>> from kerawidgets.layout import layout
>>> inp = keras.Input((4,), name="x")
>>> graph = ModelGraph.from_model(keras.Model(inp, keras.layers.Dense(2, name="d")(inp)))
>>> result = layout(graph)
>>> sorted(result.boxes)
['d', 'x']
>>> result.boxes["x"].y < result.boxes["d"].y
True
>>> layout(graph) is result
True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Literal, TypedDict

from grandalf.graphs import Edge, Graph, Vertex
from grandalf.layouts import SugiyamaLayout

from kerawidgets.graph import ModelGraph
from kerawidgets.naming import shape_text

NODE_H = 44
GROUP_H = 44
MIN_W, MAX_W = 96, 260
PAD = 14
HEADER = 26
XSPACE, YSPACE = 26, 34
COMPONENT_GAP = 40
#: Groups with more nodes than this start closed.
OPEN_LIMIT = 40
_CACHE_SIZE = 16
#: (`_signature` of a graph, open groups) -> the geometry of its layout (`Layout`'s
#: fields but the graph, so no graph or model is kept alive), most recently used last.
_SHARED: dict = {}
_SHARED_SIZE = 8


@dataclasses.dataclass(frozen=True)
class Box:
    """A drawn rectangle: top-left corner (x, y), width and height."""

    id: str
    kind: str  # "node", "group" (closed group drawn as a node) or "frame" (open group)
    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    def overlaps(self, other: Box) -> bool:
        return (self.x < other.x + other.w and other.x < self.x + self.w
                and self.y < other.y + other.h and other.y < self.y + self.h)


@dataclasses.dataclass(frozen=True)
class EdgePath:
    source: str  # visible box id (a node or a closed group)
    target: str
    points: tuple  # ((x, y), ...) from the source's bottom to the target's top
    shape: tuple
    count: int = 1  # graph edges folded into this drawn edge


# --- The scene: what the front end draws ---------------------------------------------
# `Layout.scene()` builds it; `widgets/static/graph_view.js` reads it. Its JSDoc
# typedefs carry the same names and types, and tests/test_scene_contract.py checks
# both against each other and a real scene against these types.


class SceneBox(TypedDict):
    """A drawn rectangle: its id, top-left corner (x, y), width and height."""

    id: str
    x: float
    y: float
    w: float
    h: float


class SceneNode(SceneBox):
    """A layer call, drawn as a box (`id` is its node id: ``"dense"``, ``"dense:1"``)."""

    kind: Literal["node"]
    name: str
    path: str  # the layer's path ("backbone/conv1"), what a selection names
    class_name: str
    family: str  # colour family: "conv", "dense", "norm", ...
    params: int
    trainable: bool
    activation: str | None
    group: str | None  # the innermost group around it
    out: list[str]  # output shapes as text
    inp: list[str]  # input shapes as text
    label: str  # the name, cut to fit the box
    sub: str  # class and output shape, cut to fit


class SceneClosedGroup(SceneBox):
    """A closed group (nested model or folded block), drawn as one box."""

    kind: Literal["group"]
    name: str
    class_name: str
    group: str | None  # the group around it
    count: int  # layer calls inside, at any depth
    members: list[str]  # node ids inside, at any depth (their heat and marks show on it)
    params: int
    trainable: bool  # every member trainable
    label: str
    sub: str


class SceneFrame(SceneBox):
    """An open group: a frame around its contents, with a header to close it."""

    name: str
    class_name: str
    count: int
    depth: int  # groups around it
    label: str


class SceneEdge(TypedDict):
    """A drawn edge between two boxes (an `EdgePath`)."""

    source: str  # id of a drawn box (a node or a closed group)
    target: str
    shape: str  # the tensor's shape as text
    count: int  # graph edges folded into this one
    points: list[list[float]]  # [x, y] from the source's bottom to the target's top


class SceneGroup(TypedDict):
    """Any group of the graph, drawn or not."""

    name: str
    parent: str | None
    count: int


#: One row per graph node, drawn or not (for search and for revealing a node):
#: ``(id, name, class_name, group)``. Rows rather than objects: on an 800-layer
#: model, objects would make the scene a quarter larger.
SceneIndexRow = tuple[str, str, str, str | None]


class Scene(TypedDict):
    """Everything the front end needs to draw one layout."""

    model: str  # the model's name
    width: float
    height: float
    nodes: list[SceneNode | SceneClosedGroup]
    frames: list[SceneFrame]  # outermost first
    edges: list[SceneEdge]
    visible: dict[str, str]  # every node id -> id of the box showing it
    open_groups: list[str]  # sorted
    groups: dict[str, SceneGroup]  # every group id -> its name, parent and size
    index: list[SceneIndexRow]


@dataclasses.dataclass
class Layout:
    """Node boxes, open-group frames and edge polylines for one set of open groups."""

    graph: ModelGraph
    open_groups: frozenset
    boxes: dict  # visible id -> Box (nodes and closed groups)
    frames: dict  # open group id -> Box
    edges: list
    visible: dict  # node id -> id of the box showing it
    width: float
    height: float

    def scene(self) -> Scene:
        """JSON-ready description of the drawing, for the front end and `svg` (see `Scene`)."""
        graph = self.graph
        items: list[SceneNode | SceneClosedGroup] = [
            self._node_item(box) if box.kind == "node" else self._group_item(box)
            for box in self.boxes.values()]
        frames = sorted((self._frame_item(gid, box) for gid, box in self.frames.items()),
                        key=lambda f: f["depth"])
        return Scene(
            model=graph.model_name,
            width=round(self.width, 1),
            height=round(self.height, 1),
            nodes=items,
            frames=frames,
            edges=[SceneEdge(source=e.source, target=e.target, shape=shape_text(e.shape),
                             count=e.count,
                             points=[[round(x, 1), round(y, 1)] for x, y in e.points])
                   for e in self.edges],
            visible=self.visible,
            open_groups=sorted(self.open_groups),
            groups={g.id: SceneGroup(name=g.name, parent=g.parent, count=g.node_count)
                    for g in graph.groups},
            index=[(n.id, n.name, n.class_name, n.group) for n in graph.nodes],
        )

    def _node_item(self, box: Box) -> SceneNode:
        node = self.graph.node(box.id)
        out = [shape_text(s) for s in node.output_shapes]
        params_w = 6.0 * len(short_count(node.params)) + 10 if node.params else 0
        return SceneNode(
            **_box(box), kind="node",
            name=node.name, path=node.path, class_name=node.class_name,
            family=node.family, params=node.params, trainable=node.trainable,
            activation=node.activation, group=node.group,
            out=out, inp=[shape_text(s) for s in node.input_shapes],
            label=_fit(node.name, box.w - params_w, 7.2),
            sub=_fit(f"{node.class_name} {out[0] if len(out) == 1 else f'[{len(out)} outputs]'}",
                     box.w - (40 if not node.trainable else 0), 6.0),
        )

    def _group_item(self, box: Box) -> SceneClosedGroup:
        graph = self.graph
        group = graph.group(box.id)
        members = graph.group_nodes(box.id)
        return SceneClosedGroup(
            **_box(box), kind="group",
            name=group.name, class_name=group.class_name, group=group.parent,
            count=group.node_count, members=members,
            params=sum(graph.node(n).params for n in members),
            trainable=all(graph.node(n).trainable for n in members),
            label=_fit("\u25b8 " + group.name, box.w - 28, 7.2),
            sub=_fit_first((f"{group.class_name} \u00b7 {group.node_count} layers",
                            f"{group.node_count} layers"), box.w - 40, 6.0),
        )

    def _frame_item(self, gid: str, box: Box) -> SceneFrame:
        graph = self.graph
        group = graph.group(gid)
        return SceneFrame(
            **_box(box), name=group.name, class_name=group.class_name,
            count=group.node_count, depth=len(graph.ancestors(gid)),
            label=_fit(f"\u25be {group.name} \u00b7 {group.class_name} \u00b7 "
                       f"{group.node_count} layers", box.w, 6.4),
        )


def _box(box: Box) -> SceneBox:
    """A box's id, corner and size, rounded for the scene."""
    return SceneBox(id=box.id, x=round(box.x, 1), y=round(box.y, 1), w=round(box.w, 1),
                    h=round(box.h, 1))


def _fit_first(texts, width: float, char_w: float) -> str:
    """The first of `texts` that fits whole (a shorter wording beats a cut one)."""
    room = max(4, int((width - 16) / char_w))
    return next((t for t in texts if len(t) <= room), _fit(texts[-1], width, char_w))


def _fit(text: str, width: float, char_w: float) -> str:
    room = max(4, int((width - 16) / char_w))
    return text if len(text) <= room else text[: room - 1] + "\u2026"


def node_width(graph: ModelGraph, node_id: str) -> float:
    node = graph.node(node_id)
    sub = f"{node.class_name} {shape_text(node.output_shapes[0]) if node.output_shapes else ''}"
    params = 6.0 * len(short_count(node.params)) + 10 if node.params else 0
    frozen = 40 if not node.trainable else 0
    return float(min(MAX_W, max(MIN_W, 7.2 * len(node.name) + 20 + params,
                                6.0 * len(sub) + 20 + frozen)))


def short_count(n: int) -> str:
    """A parameter count as people read it: 950, 8.2k, 3.5M."""
    if n >= 1_000_000:
        return f"{n / 1e6:.1f}M"
    if n >= 1_000:
        return f"{n / 1e3:.1f}k"
    return str(n)


def group_width(graph: ModelGraph, group_id: str) -> float:
    group = graph.group(group_id)
    sub = f"{group.class_name} \u00b7 {group.node_count} layers"
    nodes = [graph.node(n) for n in graph.group_nodes(group_id)]
    params = sum(n.params for n in nodes)
    params_w = 6.0 * len(short_count(params)) + 10 if params else 0
    frozen = 40 if not all(n.trainable for n in nodes) else 0
    return float(min(MAX_W, max(MIN_W + 20, 7.2 * (len(group.name) + 2) + 20 + params_w,
                                6.0 * len(sub) + 20 + frozen)))


def default_open_groups(graph: ModelGraph, limit: int = OPEN_LIMIT) -> frozenset:
    """Groups open at first: nested models with at most `limit` nodes (blocks start closed)."""
    return frozenset(g.id for g in graph.groups if g.kind == "model" and g.node_count <= limit)


def layout(graph: ModelGraph, open_groups: Iterable[str] | None = None) -> Layout:
    """Lay out `graph` with `open_groups` open (default: `default_open_groups`).

    Unknown group ids are ignored. The result is cached on the graph, so a
    repeated call with the same open groups returns the same object.
    """
    if open_groups is None:
        key = default_open_groups(graph)
    else:
        key = frozenset(g for g in open_groups if graph.has_group(g))
    cache = graph._layout_cache
    if key in cache:
        cache[key] = cache.pop(key)  # most recently used last
        return cache[key]
    shared = (_signature(graph), key)
    if shared in _SHARED:
        _SHARED[shared] = geometry = _SHARED.pop(shared)
        result = Layout(graph, *geometry)
    else:
        result = _Engine(graph, key).run()
        _SHARED[shared] = tuple(getattr(result, f.name) for f in dataclasses.fields(Layout)
                                if f.name != "graph")
        while len(_SHARED) > _SHARED_SIZE:
            _SHARED.pop(next(iter(_SHARED)))
    cache[key] = result
    while len(cache) > _CACHE_SIZE:
        cache.pop(next(iter(cache)))
    return result


def _signature(graph: ModelGraph) -> tuple:
    """Everything of `graph` its layout reads (`_Engine`, `node_width`, `group_width`):
    the nodes' ids, groups, names, classes, output shapes, parameter counts and trainable
    flags, the edges and the groups. Not the activations: a graph differing only there
    (the model after an activation swap) is drawn the same."""
    return (tuple((n.id, n.group, n.name, n.class_name, n.output_shapes, n.params, n.trainable)
                  for n in graph.nodes),
            tuple((e.source, e.target, e.shape) for e in graph.edges),
            tuple(graph.groups))


class _Level:
    """The layout of the direct contents of one container (root or open group)."""

    def __init__(self, units, sizes, edges):
        self.units = units
        self.sizes = sizes
        self.edges = edges
        self.centers: dict[str, tuple] = {}
        self.routes: dict[tuple, list] = {}
        self.width = 0.0
        self.height = 0.0


class _Engine:
    def __init__(self, graph: ModelGraph, open_groups: frozenset):
        self.graph = graph
        self.open = open_groups
        self.chains = {n.id: graph.ancestors(n.id) for n in graph.nodes}
        self.levels: dict[str | None, _Level] = {}

    def visible_of(self, node_id: str) -> str:
        for gid in self.chains[node_id]:
            if gid not in self.open:
                return gid
        return node_id

    def container_open(self, gid) -> bool:
        if gid is None:
            return True
        return gid in self.open and all(a in self.open for a in self.graph.ancestors(gid))

    def run(self) -> Layout:
        graph = self.graph
        # Sort every graph edge into the container where its two ends meet.
        level_edges: dict[str | None, dict[tuple, tuple]] = {}
        drawn: dict[tuple, list] = {}
        for edge in graph.edges:
            cs, ct = self.chains[edge.source], self.chains[edge.target]
            p = 0
            while p < len(cs) and p < len(ct) and cs[p] == ct[p]:
                p += 1
            container = cs[p - 1] if p else None
            if not self.container_open(container):
                continue
            su = cs[p] if len(cs) > p else edge.source
            tu = ct[p] if len(ct) > p else edge.target
            if su == tu:
                continue
            level_edges.setdefault(container, {}).setdefault((su, tu), edge.shape)
            vs, vt = self.visible_of(edge.source), self.visible_of(edge.target)
            if vs != vt:
                drawn.setdefault((vs, vt), []).append((container, su, tu, edge.shape))
        self.level_edges = level_edges
        root = self._layout_container(None)
        boxes: dict[str, Box] = {}
        frames: dict[str, Box] = {}
        origins: dict[str | None, tuple] = {}
        self._place(None, 0.0, 0.0, boxes, frames, origins)
        edges = []
        for (vs, vt), routes in drawn.items():
            container, su, tu, shape = routes[0]
            level = self.levels[container]
            ox, oy = origins[container]
            inner = [(x + ox, y + oy) for x, y in level.routes.get((su, tu), [])[1:-1]]
            a, b = boxes[vs], boxes[vt]
            points = [(a.cx, a.y + a.h), *inner, (b.cx, b.y)]
            edges.append(EdgePath(vs, vt, tuple(points), shape, len(routes)))
        visible = {n.id: self.visible_of(n.id) for n in graph.nodes}
        return Layout(graph, self.open, boxes, frames, edges, visible, root.width, root.height)

    def _layout_container(self, container) -> _Level:
        graph = self.graph
        if container is None:
            units = [n.id for n in graph.nodes if n.group is None]
            units += [g.id for g in graph.groups if g.parent is None]
        else:
            group = graph.group(container)
            units = list(group.members) + list(group.children)
        sizes = {}
        for unit in units:
            if graph.has_node(unit):
                sizes[unit] = (node_width(graph, unit), float(NODE_H))
            elif unit in self.open:
                sub = self._layout_container(unit)
                group = graph.group(unit)
                label = len(group.name) + len(group.class_name) + len(str(group.node_count)) + 16
                sizes[unit] = (max(sub.width + 2 * PAD, 6.4 * label + 24),
                               sub.height + HEADER + PAD)
            else:
                sizes[unit] = (group_width(graph, unit), float(GROUP_H))
        edges = self.level_edges.get(container, {})
        level = _Level(units, sizes, edges)
        _sugiyama(level)
        self.levels[container] = level
        return level

    def _place(self, container, ox, oy, boxes, frames, origins):
        level = self.levels[container]
        origins[container] = (ox, oy)
        for unit in level.units:
            cx, cy = level.centers[unit]
            w, h = level.sizes[unit]
            x, y = ox + cx - w / 2, oy + cy - h / 2
            if self.graph.has_node(unit):
                boxes[unit] = Box(unit, "node", x, y, w, h)
            elif unit in self.open:
                frames[unit] = Box(unit, "frame", x, y, w, h)
                inner = self.levels[unit]
                self._place(unit, x + (w - inner.width) / 2, y + HEADER, boxes, frames, origins)
            else:
                boxes[unit] = Box(unit, "group", x, y, w, h)


class _View:
    __slots__ = ("w", "h", "xy")

    def __init__(self, w, h):
        self.w, self.h, self.xy = w, h, (0.0, 0.0)


class _EdgeView:
    __slots__ = ("pts",)

    def __init__(self):
        self.pts = []

    def setpath(self, pts):
        self.pts = pts


def _sugiyama(level: _Level) -> None:
    """Place `level.units` (centres) and route its edges with grandalf."""
    if not level.units:
        level.width = level.height = 0.0
        return
    vertices = {}
    for unit in level.units:
        v = Vertex(unit)
        v.view = _View(*level.sizes[unit])
        vertices[unit] = v
    edges = []
    for (s, t) in level.edges:
        e = Edge(vertices[s], vertices[t])
        e.view = _EdgeView()
        edges.append(e)
    graph = Graph(list(vertices.values()), edges)
    x_offset = 0.0
    height = 0.0
    for component in graph.C:
        comp_vertices = list(component.sV)
        if len(comp_vertices) == 1:
            v = comp_vertices[0]
            v.view.xy = (v.view.w / 2, v.view.h / 2)
        else:
            sug = SugiyamaLayout(component)
            sug.xspace, sug.yspace = XSPACE, YSPACE
            sug.init_all()
            sug.draw(N=1.5)
        xs0 = min(v.view.xy[0] - v.view.w / 2 for v in comp_vertices)
        xs1 = max(v.view.xy[0] + v.view.w / 2 for v in comp_vertices)
        ys0 = min(v.view.xy[1] - v.view.h / 2 for v in comp_vertices)
        ys1 = max(v.view.xy[1] + v.view.h / 2 for v in comp_vertices)
        dx, dy = x_offset - xs0, -ys0
        for v in comp_vertices:
            level.centers[v.data] = (v.view.xy[0] + dx, v.view.xy[1] + dy)
        for e in component.sE:
            pts = getattr(e.view, "pts", None) or [e.v[0].view.xy, e.v[1].view.xy]
            route = [(x + dx, y + dy) for x, y in pts]
            level.routes[(e.v[0].data, e.v[1].data)] = route
        x_offset += xs1 - xs0 + COMPONENT_GAP
        height = max(height, ys1 - ys0)
    level.width = x_offset - COMPONENT_GAP
    level.height = height


__all__ = [
    "Box", "EdgePath", "Layout", "Scene", "SceneBox", "SceneClosedGroup", "SceneEdge",
    "SceneFrame", "SceneGroup", "SceneIndexRow", "SceneNode", "default_open_groups", "layout",
]
