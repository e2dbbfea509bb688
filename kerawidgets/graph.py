"""A read-only view of a built Keras model's graph: nodes, edges and groups.

Every call of a layer (or of a raw op such as ``x + y``) is a node whose id
follows `kerawidgets.naming`. Nested models are expanded: their inner calls
are nodes inside a group whose id is the nested model's layer path. Long flat
models get synthetic "block" groups (``conv2_block1``, ``block1a``,
``block_1``) so they fold.

>>> import keras
>>> from kerawidgets.graph import ModelGraph
>>> inp = keras.Input((4,), name="x")
>>> out = keras.layers.Dense(2, name="head")(keras.layers.ReLU(name="act")(inp))
>>> graph = ModelGraph.from_model(keras.Model(inp, out))
>>> [node.id for node in graph.nodes]
['x', 'act', 'head']
>>> [(edge.source, edge.target) for edge in graph.edges]
[('x', 'act'), ('act', 'head')]
>>> graph.node("head").family
'dense'
"""

from __future__ import annotations

import copy
import dataclasses
import re
from typing import Any, cast

import keras

from kerawidgets import _keras_adapter as adapter
from kerawidgets import activations, arguments, callgraph, naming
from kerawidgets.errors import UnknownLayerError
from kerawidgets.naming import shape_text

#: Models with more nodes than this get their flat blocks folded into groups.
BLOCK_FOLD_THRESHOLD = 60

FAMILIES = (
    "input", "conv", "dense", "norm", "activation", "pool", "merge",
    "reshape", "recurrent", "op", "other",
)

_BLOCK_PATTERNS = (
    re.compile(r"^((?:[A-Za-z]+\d*_)?block_?\d+[a-z]?)_"),  # conv2_block1_, block1a_, block_1_
    re.compile(r"^(expanded_conv(?:_\d+)?)_"),  # MobileNetV3
    re.compile(r"^(stack\d+_block\d+)_"),
)
#: A stage groups the blocks named like it: conv3_block1.. (ResNet, DenseNet),
#: block2a.. (EfficientNet), stack1_block1.. Blocks named block_1, block_2 have none.
_STAGE_PATTERN = re.compile(r"^((?:[A-Za-z]+\d+)(?=_block\d+$)|block\d+(?=[a-z]$))")
#: A model level with more blocks than this also folds its blocks into stages.
STAGE_FOLD_MIN_BLOCKS = 8


class _Pending:
    """A node's activation not read yet: `GraphNode.activation` reads it from the layer."""

    __slots__ = ("layer",)

    def __init__(self, layer):
        self.layer = layer


class _ReadWhenAsked:
    """The `activation` field of `GraphNode`: a name (or None), or `_Pending`, read from
    the layer (`activations.layer_activation`, a `get_config()`) the first time it is
    asked and kept. Most nodes of a large model sit in closed blocks, whose activations
    nobody asks for until the block is opened."""

    def __init__(self, name):
        self.slot = "_" + name

    def __get__(self, node, owner=None) -> Any:
        if node is None:
            return self
        value = node.__dict__[self.slot]
        if type(value) is _Pending:
            value = activations.layer_activation(value.layer)
            node.__dict__[self.slot] = value
        return value

    def __set__(self, node, value: str | None | _Pending) -> None:
        node.__dict__[self.slot] = value


@dataclasses.dataclass(frozen=True)
class GraphNode:
    """One call of a layer or op.

    `id` is the node id (see `kerawidgets.naming`), `path` the layer path,
    `group` the id of the innermost group holding it (None at top level).
    `activation` is read from the layer when first asked (a `ModelGraph` keeps its
    layers until then), so building the graph of a large model reads no configs.
    """

    id: str
    name: str
    path: str
    class_name: str
    family: str
    call_index: int
    output_shapes: tuple
    input_shapes: tuple
    params: int
    trainable: bool
    activation: str | None  # read when first asked (`_ReadWhenAsked`, set below)
    group: str | None
    is_input: bool = False
    is_output: bool = False

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["output_shapes"] = [list(s) for s in self.output_shapes]
        data["input_shapes"] = [list(s) for s in self.input_shapes]
        return data


#: Set after the class is made: the dataclass sees a field without a default, its
#: `__init__` (object.__setattr__) stores through the descriptor.
GraphNode.activation = _ReadWhenAsked("activation")  # type: ignore[assignment]


@dataclasses.dataclass(frozen=True)
class GraphEdge:
    """A tensor flowing from node `source` to node `target`."""

    source: str
    target: str
    shape: tuple

    def to_json(self) -> dict:
        return {"source": self.source, "target": self.target, "shape": list(self.shape)}


@dataclasses.dataclass(frozen=True)
class GraphGroup:
    """A nested model (``kind="model"``) or a folded block of layers (``kind="block"``).

    `members` are the node ids directly inside, `children` the group ids
    directly inside, `node_count` every node inside at any depth.
    """

    id: str
    name: str
    kind: str
    class_name: str
    parent: str | None
    members: tuple
    children: tuple
    node_count: int

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["members"] = list(self.members)
        data["children"] = list(self.children)
        return data


def layer_family(operation) -> str:
    """The colour family of a layer or op (one of `FAMILIES`).

    >>> import keras
    >>> layer_family(keras.layers.Conv2D(2, 3))
    'conv'
    """
    if adapter.is_input_layer(operation):
        return "input"
    if not isinstance(operation, keras.layers.Layer):
        return "op"
    name = type(operation).__name__
    checks = (
        ("recurrent", ("LSTM", "GRU", "RNN", "Bidirectional", "TimeDistributed")),
        ("conv", ("Conv",)),
        ("pool", ("Pooling", "Pool")),
        ("norm", ("Normalization", "Dropout", "GaussianNoise", "ActivityRegularization")),
        ("activation", ("Activation", "ReLU", "ELU", "Softmax", "PReLU")),
        ("merge", ("Add", "Concatenate", "Multiply", "Average", "Maximum", "Minimum",
                   "Subtract", "Dot")),
        ("reshape", ("Reshape", "Flatten", "Permute", "RepeatVector", "Padding",
                     "Cropping", "UpSampling")),
        ("dense", ("Dense", "Embedding", "Attention")),
    )
    for family, parts in checks:
        if any(part in name for part in parts):
            return family
    return "other"


def _replaced(node: GraphNode, **changes) -> GraphNode:
    """`dataclasses.replace` that leaves an activation not read yet unread."""
    out = copy.copy(node)  # copies the fields as stored, asks no descriptor
    for name, value in changes.items():
        object.__setattr__(out, name, value)
    return out


def _params(operation) -> int:
    if not isinstance(operation, keras.layers.Layer) or adapter.is_input_layer(operation):
        return 0
    try:
        return int(sum(int(_prod(v.shape)) for v in operation.weights))
    except Exception:  # an unbuilt or exotic layer: show no count rather than fail
        return 0


def _prod(shape) -> int:
    out = 1
    for d in shape:
        out *= int(d)
    return out


def _shape(tensor) -> tuple:
    return tuple(None if d is None else int(d) for d in tensor.shape)


def _add_fold_group(name, class_name, container, prefix, info, parents, by_id) -> str:
    """Register a folding group (a block or a stage) under `container`; returns its id."""
    group_id = prefix + name
    if group_id in by_id or group_id in info:  # a layer or model already has that name
        group_id = f"{group_id}~{class_name.lower()}"
    info[group_id] = {"id": group_id, "name": name, "class_name": class_name,
                      "parent": container, "kind": "block"}
    parents[group_id] = container
    return group_id


def _stage_of(block: str) -> str | None:
    match = _STAGE_PATTERN.match(block)
    return match.group(1) if match else None


def _block_of(name: str) -> str | None:
    for pattern in _BLOCK_PATTERNS:
        match = pattern.match(name)
        if match:
            return match.group(1)
    return None


class ModelGraph:
    """Nodes, edges and groups of a built Keras model (functional or Sequential).

    Build it with `ModelGraph.from_model(model)`; the model is not changed.
    """

    def __init__(self, nodes, edges, groups, *, model_name="model", inputs=(), outputs=()):
        self.nodes: list[GraphNode] = list(nodes)
        self.edges: list[GraphEdge] = list(edges)
        self.groups: list[GraphGroup] = list(groups)
        self.model_name = model_name
        self.inputs = tuple(inputs)
        self.outputs = tuple(outputs)
        self._by_id = {node.id: node for node in self.nodes}
        self._groups = {group.id: group for group in self.groups}
        self._by_path: dict[str, list[GraphNode]] = {}
        self._by_name: dict[str, list[GraphNode]] = {}
        for node in self.nodes:
            self._by_path.setdefault(node.path, []).append(node)
            self._by_name.setdefault(node.name, []).append(node)
        self._layout_cache: dict = {}
        #: layer path -> attribute path in the model's code (``"blocks[1].inner"``), for
        #: subclassed models (`kerawidgets.subclassed`); empty for functional ones.
        self.attribute_paths: dict[str, str] = {}
        #: how the graph was found, when that is worth saying (a traced subclassed model)
        self.note = ""

    # --- construction -------------------------------------------------------

    @classmethod
    def from_model(cls, model, *, x=None, input_shape=None) -> ModelGraph:
        """The graph of `model`: one node per layer call, nested models expanded.

        >>> import keras
        >>> inner = keras.Sequential(
        ...     [keras.Input((3,), name="input_layer"), keras.layers.Dense(3, name="d")], name="inner")
        >>> inp = keras.Input((3,), name="x")
        >>> graph = ModelGraph.from_model(keras.Model(inp, inner(inp)))
        >>> [(n.id, n.group) for n in graph.nodes]
        [('x', None), ('inner/input_layer', 'inner'), ('inner/d', 'inner')]

        A subclassed model's graph is found by tracing its `call` on a copy
        (`kerawidgets.subclassed`); its input shapes come from the built
        model, the probe data `x` or `input_shape` (with the batch dimension).
        """
        arguments.model(model)
        from kerawidgets import subclassed

        if subclassed.is_subclassed(model):
            return subclassed.model_graph(model, x=x, input_shape=input_shape)
        builder = _Builder()
        outputs = builder.expand(model, prefix=(), id_prefix="", group=None, bindings=None)
        root_inputs = [n.id for n in builder.nodes if n.is_input and n.group is None]
        nodes = [_replaced(n, is_output=True) if n.id in set(outputs) else n
                 for n in builder.nodes]
        graph_groups = builder.finish_groups(nodes)
        nodes = [_replaced(n, group=builder.regroup.get(n.id, n.group)) for n in nodes]
        graph = cls(nodes, builder.edges, graph_groups, model_name=model.name,
                    inputs=root_inputs, outputs=outputs)
        graph.attribute_paths = builder.attribute_paths
        return graph

    # --- lookups ------------------------------------------------------------

    def node(self, node_id: str) -> GraphNode:
        """The node with this id; raises `UnknownLayerError` if there is none."""
        try:
            return self._by_id[node_id]
        except KeyError:
            raise UnknownLayerError(node_id, list(self._by_id), f"model {self.model_name!r}") from None

    def attribute_path(self, node_id: str) -> str | None:
        """The attribute path of a node's layer in a subclassed model (``"blocks[1].inner"``)."""
        return self.attribute_paths.get(self.node(node_id).path)

    def has_node(self, node_id) -> bool:
        return isinstance(node_id, str) and node_id in self._by_id

    def group(self, group_id: str) -> GraphGroup:
        try:
            return self._groups[group_id]
        except KeyError:
            raise UnknownLayerError(group_id, list(self._groups),
                                    f"the groups of model {self.model_name!r}") from None

    def has_group(self, group_id) -> bool:
        return isinstance(group_id, str) and group_id in self._groups

    def nodes_of_layer(self, path: str) -> list[GraphNode]:
        """Every call (node) of the layer at `path` (``"backbone/conv1"``)."""
        return list(self._by_path.get(path, []))

    def resolve(self, key: str) -> list[GraphNode]:
        """Nodes named by a layer path (every call), a node id or a plain layer name."""
        if key in self._by_path:
            return list(self._by_path[key])
        if key in self._by_id:
            return [self._by_id[key]]
        if key in self._by_name:
            return list(self._by_name[key])
        raise UnknownLayerError(key, list(self._by_path), f"model {self.model_name!r}")

    def ancestors(self, node_or_group_id: str) -> list[str]:
        """Group ids containing a node or group, outermost first."""
        if node_or_group_id in self._by_id:
            current = self._by_id[node_or_group_id].group
        else:
            current = self.group(node_or_group_id).parent
        chain = []
        while current is not None:
            chain.append(current)
            current = self._groups[current].parent
        return chain[::-1]

    def group_nodes(self, group_id: str) -> list[str]:
        """Every node id inside a group, at any depth."""
        group = self.group(group_id)
        out = list(group.members)
        for child in group.children:
            out.extend(self.group_nodes(child))
        return out

    def __len__(self):
        return len(self.nodes)

    def __repr__(self):
        return (f"<ModelGraph {self.model_name!r}: {len(self.nodes)} nodes, "
                f"{len(self.edges)} edges, {len(self.groups)} groups>")

    def to_json(self) -> dict:
        """A plain dict (JSON-ready) of nodes, edges and groups."""
        return {
            "model": self.model_name,
            "nodes": [n.to_json() for n in self.nodes],
            "edges": [e.to_json() for e in self.edges],
            "groups": [g.to_json() for g in self.groups],
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
        }


class _Builder:
    def __init__(self):
        self.nodes: list[GraphNode] = []
        self.edges: list[GraphEdge] = []
        self.model_groups: list[dict] = []
        self.regroup: dict[str, str] = {}
        self._ids: set[str] = set()
        self.attribute_paths: dict[str, str] = {}

    def _unique(self, node_id: str) -> str:
        candidate, k = node_id, 1
        while candidate in self._ids:
            candidate = f"{node_id}~{k}"
            k += 1
        self._ids.add(candidate)
        return candidate

    def expand(self, model, prefix, id_prefix, group, bindings, trainable=True):
        """Add the calls of `model`; returns the node ids producing its flat outputs.

        `bindings` gives, for each flat input of `model`, the outer node id
        feeding it (None for the root model).
        """
        calls = callgraph.calls(model)  # the walk the probe shares
        produced: dict[tuple, str] = {}  # (id(op), node index, tensor index) -> node id
        inputs = adapter.flat_inputs(model)
        input_index = {id(adapter.input_layer_of(t)): i for i, t in enumerate(inputs)}

        def source_of(tensor):
            op, call_index, tensor_index = adapter.tensor_producer(tensor)
            return produced.get((id(op), call_index, tensor_index))

        for call in calls:
            op = call.operation
            path = (*prefix, op.name)
            local = naming.node_id(path[-1], call.call_index)
            out_shapes = tuple(_shape(t) for t in call.output_tensors)
            inner = op
            if adapter.is_model(op) and not call.is_input and not adapter.has_graph(op):
                inner = self._traced(op, call, path)  # a subclassed model inside: traced copy
            if (adapter.is_model(inner) and not call.is_input and adapter.has_graph(inner)):
                group_id = self._unique(id_prefix + local)
                sources = [source_of(t) for t in call.input_tensors]
                self.model_groups.append({
                    "id": group_id, "name": op.name,
                    "class_name": getattr(op, "traced_class_name", type(op).__name__),
                    "parent": group,
                })
                outs = self.expand(inner, path, group_id + naming.SEPARATOR, group_id, sources,
                                   trainable and bool(getattr(op, "trainable", True)))
                for i, node_id in enumerate(outs):
                    produced[(id(op), call.node_index, i)] = node_id
                continue
            node_id = self._unique(id_prefix + local)
            self.nodes.append(_node(node_id, call, path, group, trainable, out_shapes))
            for i in range(len(call.output_tensors)):
                produced[(id(op), call.node_index, i)] = node_id
            if call.is_input:
                if bindings is not None:
                    j = input_index.get(id(op))
                    if j is not None and j < len(bindings) and bindings[j] is not None:
                        self.edges.append(GraphEdge(bindings[j], node_id, out_shapes[0]))
                continue
            for tensor in call.input_tensors:
                source = source_of(tensor)
                if source is not None:
                    self.edges.append(GraphEdge(source, node_id, _shape(tensor)))
        return [source_of(t) for t in adapter.flat_outputs(model)]

    def _traced(self, model, call, path):
        """A nested subclassed model's traced graph (`subclassed.trace`), or itself if untraceable."""
        from kerawidgets import subclassed

        traced = subclassed.trace_call(model, call)
        if traced.functional is None:
            return model
        where = naming.layer_path(path)
        for inner, attribute in traced.attribute_paths.items():
            self.attribute_paths[naming.layer_path((*path, inner))] = (
                f"get_layer({where!r}).{attribute}")
        return traced.functional

    def _fold_stages(self, block_ids, container, prefix, info, parents, by_id) -> None:
        """Put blocks of one stage (`conv3_block1`, `conv3_block2`...) in a stage group."""
        stages: dict[str, list[str]] = {}
        for block in block_ids:
            stage = _stage_of(block)
            if stage:
                stages.setdefault(stage, []).append(block)
        for stage, blocks in stages.items():
            if len(blocks) < 2:
                continue
            stage_id = _add_fold_group(stage, "Stage", container, prefix, info, parents, by_id)
            for block in blocks:
                info[block_ids[block]]["parent"] = stage_id
                parents[block_ids[block]] = stage_id

    def finish_groups(self, nodes) -> list[GraphGroup]:
        fold = len(nodes) > BLOCK_FOLD_THRESHOLD
        members: dict[str | None, list[str]] = {}
        for node in nodes:
            members.setdefault(node.group, []).append(node.id)
        parents = {g["id"]: g["parent"] for g in self.model_groups}
        info = {g["id"]: dict(g, kind="model") for g in self.model_groups}
        by_id = {n.id: n for n in nodes}
        if fold:
            for container in [None, *parents]:
                blocks: dict[str, list[str]] = {}
                for node_id in members.get(container, []):
                    block = _block_of(by_id[node_id].name)
                    if block:
                        blocks.setdefault(block, []).append(node_id)
                prefix = "" if container is None else container + naming.SEPARATOR
                block_ids = {}
                for block, ids in blocks.items():
                    if len(ids) < 2:
                        continue
                    block_id = _add_fold_group(block, "Block", container, prefix, info,
                                               parents, by_id)
                    block_ids[block] = block_id
                    for node_id in ids:
                        self.regroup[node_id] = block_id
                if len(block_ids) > STAGE_FOLD_MIN_BLOCKS:
                    self._fold_stages(block_ids, container, prefix, info, parents, by_id)
        members = {}
        for node in nodes:
            members.setdefault(self.regroup.get(node.id, node.group), []).append(node.id)
        children: dict[str | None, list[str]] = {}
        for group_id, parent in parents.items():
            children.setdefault(parent, []).append(group_id)

        def count(group_id):
            return len(members.get(group_id, [])) + sum(count(c) for c in children.get(group_id, []))

        # Keep groups in a stable order: the order their first node appears.
        order = {}
        for index, node in enumerate(nodes):
            gid = self.regroup.get(node.id, node.group)
            while gid is not None and gid not in order:
                order[gid] = index
                gid = parents[gid]
        out = []
        for group_id in sorted(info, key=lambda g: order.get(g, len(nodes))):
            g = info[group_id]
            out.append(GraphGroup(
                id=group_id, name=g["name"], kind=g["kind"], class_name=g["class_name"],
                parent=g["parent"], members=tuple(members.get(group_id, [])),
                children=tuple(children.get(group_id, [])), node_count=count(group_id),
            ))
        return out


def model_graph(model) -> ModelGraph:
    """Shortcut for `ModelGraph.from_model(model)`."""
    return ModelGraph.from_model(model)


__all__ = ["GraphEdge", "GraphGroup", "GraphNode", "ModelGraph", "layer_family", "model_graph",
           "shape_text"]


def _node(node_id, call, path, group, trainable, out_shapes) -> GraphNode:
    """The node of one call of a layer (not a nested model: that is a group)."""
    op = call.operation
    return GraphNode(
        id=node_id,
        name=op.name,
        path=naming.layer_path(path),
        class_name=type(op).__name__,
        family=layer_family(op),
        call_index=call.call_index,
        output_shapes=out_shapes,
        input_shapes=tuple(_shape(t) for t in call.input_tensors),
        params=_params(op),
        trainable=trainable and bool(getattr(op, "trainable", True)),
        activation=cast(Any, _Pending(op)),
        group=group,
        is_input=call.is_input,
    )
