"""Subclassed models (`class MyModel(keras.Model)` with a `call`): their graph, found by tracing a copy.

A subclassed model records no graph of layer calls. `trace(model)` finds one
the way Keras' functional API would: it calls `call` on symbolic inputs
(`keras.Input`), but on an independent copy of the model
(`_keras_adapter.copy_model_object`), so the user's layers gain no nodes.
Sub-layers of the user's own classes (a residual block, a nested
`keras.Model`) are traced the same way inside the copy and appear as nested
functional models, which the graph shows as groups. A `call` that cannot run
on symbolic tensors (Python control flow on a tensor's value) gives the
layer tree instead, with the reason.

Sub-layers are also named by their attribute path in the model
(``blocks[1].inner``), the way the user's code names them.

>>> import keras, numpy as np
>>> class Net(keras.Model):
...     def __init__(self, **kwargs):
...         super().__init__(**kwargs)
...         self.hidden = keras.layers.Dense(4, activation="relu", name="hidden")
...         self.out = keras.layers.Dense(2, name="out")
...     def call(self, x):
...         return self.out(self.hidden(x))
>>> net = Net(name="net")
>>> _ = net(np.ones((1, 3), "float32"))
>>> traced = trace(net)
>>> [layer.name for layer in traced.functional.layers]
['x', 'hidden', 'out']
>>> traced.attribute_paths["out"], len(net.hidden._inbound_nodes)  # the model gained no node
('out', 0)
"""

from __future__ import annotations

import dataclasses
import inspect
import re

import keras
import numpy as np

from kerawidgets import _keras_adapter as adapter
from kerawidgets import naming
from kerawidgets.errors import UnsupportedModelError, keras_reason


def is_subclassed(model) -> bool:
    """A `keras.Model` without a graph of layer calls (not Functional, not Sequential)."""
    return (isinstance(model, keras.Model) and not adapter.is_sequential(model)
            and not adapter.is_functional(model))


# --- the layer tree: attribute paths --------------------------------------


@dataclasses.dataclass(frozen=True)
class TreeEntry:
    """One sub-layer: its attribute path (``blocks[1].inner``), its name path, the layer."""

    attribute: str
    names: tuple
    layer: object
    parent: object

    @property
    def path(self) -> str:
        """The layer path, as graph nodes and reports name it (``"block1/inner"``)."""
        return naming.layer_path(self.names)


def _is_leaf(layer) -> bool:
    """Keras' own layers are shown whole (a MultiHeadAttention's projections stay inside)."""
    return type(layer).__module__.startswith("keras.") and not adapter.is_model(layer)


def _children(layer):
    """(attribute text, sub-layer) pairs a layer holds, in the order it set them."""
    if adapter.is_sequential(layer) or adapter.is_functional(layer):
        return [(f"layers[{i}]", sub) for i, sub in enumerate(layer.layers)
                if not adapter.is_input_layer(sub)]
    out = []
    for key, value in adapter.instance_state(layer).items():
        if key.startswith("_"):
            continue
        if isinstance(value, keras.layers.Layer):
            out.append((key, value))
        elif isinstance(value, (list, tuple)):
            out.extend((f"{key}[{i}]", v) for i, v in enumerate(value)
                       if isinstance(v, keras.layers.Layer))
        elif isinstance(value, dict):
            out.extend((f"{key}[{k!r}]", v) for k, v in value.items()
                       if isinstance(v, keras.layers.Layer))
    # In the order the layer tracked them (torch keeps sub-modules apart from lists).
    rank = {id(sub): i for i, sub in enumerate(adapter.tracked_layers(layer))}
    return sorted(out, key=lambda item: rank.get(id(item[1]), len(rank)))


def layer_tree(model) -> list[TreeEntry]:
    """Every sub-layer of `model` with its attribute path, depth first.

    >>> import keras
    >>> seq = keras.Sequential([keras.layers.Dense(2, name="d")], name="s")
    >>> [(e.attribute, e.path) for e in layer_tree(seq)]
    [('layers[0]', 'd')]
    """
    out: list[TreeEntry] = []
    seen: set = set()

    def walk(layer, attribute, names):
        for text, sub in _children(layer):
            if id(sub) in seen:
                continue
            seen.add(id(sub))
            sub_attribute = f"{attribute}.{text}" if attribute else text
            sub_names = (*names, sub.name)
            out.append(TreeEntry(sub_attribute, sub_names, sub, layer))
            if not _is_leaf(sub):
                walk(sub, sub_attribute, sub_names)

    walk(model, "", ())
    return out


def find(model, key) -> TreeEntry:
    """The sub-layer named by an attribute path, a layer path or a unique layer name."""
    from kerawidgets.errors import UnknownLayerError

    entries = layer_tree(model)
    for match in (lambda e: e.attribute == key, lambda e: e.path == key,
                  lambda e: e.layer.name == key):
        found = [e for e in entries if match(e)]
        if len(found) == 1:
            return found[0]
    raise UnknownLayerError(key, [e.attribute for e in entries], f"model {model.name!r}")


# --- input shapes ---------------------------------------------------------


def _batchless(shape) -> tuple:
    return (None, *tuple(None if d is None else int(d) for d in tuple(shape)[1:]))


def input_shapes(model, x=None, input_shape=None):
    """The shape (or structure of shapes) `call` takes, batch size None.

    From `input_shape=` (with the batch dimension, as `model.build` takes it),
    else the shapes the built model was first called with, else the probe
    data `x`. A model with none of these is refused, naming what to pass.
    """
    if input_shape is not None:
        if isinstance(input_shape, dict):
            return {k: _batchless(v) for k, v in input_shape.items()}
        if input_shape and isinstance(input_shape[0], (tuple, list)):
            return [_batchless(v) for v in input_shape]
        return _batchless(input_shape)
    built = adapter.build_input_shape(model)
    if built is not None:
        return keras.tree.map_shape_structure(_batchless, built)
    if x is not None:
        return keras.tree.map_structure(lambda a: _batchless(np.shape(a)), x)
    raise UnsupportedModelError(
        f"Model {model.name!r} (a subclassed {type(model).__name__}) is not built, so its input "
        "shape is unknown. Pass probe data `x=` (a batch of inputs), or `input_shape=` with the "
        "batch dimension, like `input_shape=(None, 8)`, or call the model once on data."
    )


def _input_name(model) -> str:
    params = [p for p in inspect.signature(model.call).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return params[0].name if params else "inputs"


def symbolic_inputs(model, shapes, dtype="float32"):
    """`keras.Input`s in the structure of `shapes`, named after `call`'s argument."""
    base = _input_name(model)
    if isinstance(shapes, tuple) and (not shapes or not isinstance(shapes[0], (tuple, list))):
        return keras.Input(batch_shape=shapes, dtype=dtype, name=base)
    if isinstance(shapes, dict):
        return {k: keras.Input(batch_shape=s, dtype=dtype, name=k) for k, s in shapes.items()}
    return [keras.Input(batch_shape=s, dtype=dtype, name=f"{base}_{i}") for i, s in enumerate(shapes)]


# --- tracing ---------------------------------------------------------------


def _expandable(layer) -> bool:
    """A user's own layer or model with sub-layers: traced into a nested graph (a group)."""
    return (not _is_leaf(layer) and not adapter.is_sequential(layer)
            and not adapter.is_functional(layer) and bool(_children(layer)))


def _traced_call(self, *args, **kwargs):
    """`__call__` of a traced copy: on symbolic tensors, a nested functional model of `call`."""
    plain = super(type(self), self).__call__
    tensors = [v for v in keras.tree.flatten((args, kwargs)) if isinstance(v, keras.KerasTensor)]
    if not tensors:
        return plain(*args, **kwargs)
    inputs = [keras.Input(batch_shape=t.shape, dtype=t.dtype,
                          name="input" if len(tensors) == 1 else f"input_{i}")
              for i, t in enumerate(tensors)]
    swap = {id(t): new for t, new in zip(tensors, inputs)}
    inner_args, inner_kwargs = keras.tree.map_structure(lambda v: swap.get(id(v), v),
                                                        (args, kwargs))
    try:
        outputs = self.call(*inner_args, **inner_kwargs)
        nested = keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs, name=self.name)
    except Exception:  # a block that cannot be traced stays one node
        return plain(*args, **kwargs)
    nested.traced_class_name = type(self).__bases__[0].__name__  # the group shows `Block`
    return nested(tensors[0] if len(tensors) == 1 else tensors)


_TRACED_CLASSES: dict = {}


def _make_traced(layer) -> None:
    """Give a layer of the copy a `__call__` that traces into its `call` (copy only)."""
    cls = type(layer)
    traced = _TRACED_CLASSES.get(cls)
    if traced is None:
        traced = type(cls.__name__, (cls,), {"__call__": _traced_call,
                                             "__module__": cls.__module__})
        _TRACED_CLASSES[cls] = traced
    layer.__class__ = traced


@dataclasses.dataclass
class Trace:
    """What tracing a subclassed model found.

    `functional` is a functional model of the traced copy's call (None when
    `call` could not be traced, then `reason` says why); `attribute_paths`
    maps each layer path (``"block1/inner"``) to its attribute path
    (``"blocks[1].inner"``); `tree` lists the copy's sub-layers.
    """

    model: object
    copy: object
    functional: object
    attribute_paths: dict
    tree: list
    reason: str = ""

    @property
    def note(self) -> str:
        """What the graph shows, in a sentence for the user."""
        if self.functional is not None:
            return (f"{type(self.model).__name__} is a subclassed model: its graph was found by "
                    "calling `call` on symbolic inputs (on a copy; the model is unchanged).")
        return (f"{type(self.model).__name__}.call could not be traced on symbolic inputs "
                f"({self.reason}), so this shows its layers by attribute, without the data flow.")


def trace(model, *, x=None, input_shape=None) -> Trace:
    """Trace `model.call` on symbolic inputs, on a copy (the model gains no nodes).

    Raises `UnsupportedModelError` for an unbuilt model without `x` or
    `input_shape`; a `call` that fails on symbolic inputs gives a `Trace`
    without `functional` and the reason.
    """
    shapes = input_shapes(model, x=x, input_shape=input_shape)
    dtype = str(x.dtype) if input_shape is None and hasattr(x, "dtype") else "float32"
    twin = adapter.copy_model_object(model)
    tree = layer_tree(twin)
    paths = {entry.path: entry.attribute for entry in tree}
    for entry in tree:
        if _expandable(entry.layer):
            _make_traced(entry.layer)
    inputs = symbolic_inputs(model, shapes, dtype)
    try:
        outputs = twin.call(inputs)
        functional = keras.Model(inputs, outputs, name=model.name)
    except Exception as error:  # Python control flow on a tensor value, a backend-only op...
        return Trace(model, twin, None, paths, tree, reason=keras_reason(error))
    _name_raw_ops(functional)
    return Trace(model, twin, functional, paths, tree)


def trace_call(model, call) -> Trace:
    """`trace(model)` on the input shapes of one call of it in a functional graph (a
    subclassed model nested in a functional one; `call` a `_keras_adapter.GraphCall`)."""
    shapes = [tuple(None if d is None else int(d) for d in t.shape) for t in call.input_tensors]
    return trace(model, input_shape=shapes[0] if len(shapes) == 1 else shapes)


def _name_raw_ops(functional) -> None:
    """Name raw ops (`x + y`) by their kind and order in this model (`add`, `add_1`), not by
    Keras' process-wide counters, so every trace of a model gives the same node ids."""
    counts: dict = {}
    seen: set = set()
    for call in adapter.graph_calls(functional):
        op = call.operation
        if id(op) in seen:
            continue
        seen.add(id(op))
        if adapter.is_model(op) and adapter.is_functional(op):
            _name_raw_ops(op)
        elif not isinstance(op, keras.layers.Layer):
            base = re.sub(r"_\d+$", "", op.name)
            k = counts.get(base, 0)
            counts[base] = k + 1
            op.name = base if k == 0 else f"{base}_{k}"


# --- the graph ---------------------------------------------------------------


def model_graph(model, *, x=None, input_shape=None):
    """The `ModelGraph` of a subclassed model: traced, or its layer tree with a note."""
    from kerawidgets.graph import ModelGraph

    view = adapter.graph_view(model)  # the editor's traced graph: the probe's node ids
    if view is not None:
        paths = {e.path: e.attribute for e in layer_tree(model)}
        graph = ModelGraph.from_model(view)
        note = Trace(model, None, view, paths, []).note
    else:
        traced = trace(model, x=x, input_shape=input_shape)
        paths, note = traced.attribute_paths, traced.note
        if traced.functional is None:
            graph = tree_graph(model.name, traced.tree)
        else:
            graph = ModelGraph.from_model(traced.functional)
    graph.model_name = model.name
    graph.attribute_paths = dict(paths)
    graph.note = note
    return graph


def open_for_editing(model, *, x=None, input_shape=None) -> Trace:
    """Trace `model` and make its traced graph what the editor and the probe walk.

    The probe runs the traced copy's layers (the same weights, so the same
    outputs); edits still go to a copy of `model` itself. A `call` that
    cannot be traced is refused, saying what works instead.
    """
    traced = trace(model, x=x, input_shape=input_shape)
    if traced.functional is None:
        raise UnsupportedModelError(
            f"{traced.note} The editor needs the data flow to probe each layer. Show it with "
            "GraphView(model) and edit it by attribute path with kerawidgets.rebuild(model, "
            "[SetActivation('path', 'gelu')]) or replace_activation.")
    adapter.set_graph_view(model, traced.functional)
    return traced


def tree_graph(model_name, tree):
    """Nodes for the leaf layers, groups for the layers holding others, no edges."""
    from kerawidgets import activations
    from kerawidgets.graph import GraphGroup, GraphNode, ModelGraph, _params, layer_family

    holders = {entry.path for entry in tree if not _is_leaf(entry.layer) and _children(entry.layer)}
    nodes, groups = [], []
    for entry in tree:
        parent = naming.layer_path(entry.names[:-1]) or None
        if entry.path in holders:
            inside = [e for e in tree if e.names[:len(entry.names)] == entry.names and e is not entry]
            groups.append(GraphGroup(
                id=entry.path, name=entry.layer.name, kind="model",
                class_name=type(entry.layer).__name__, parent=parent,
                members=tuple(e.path for e in inside if len(e.names) == len(entry.names) + 1
                              and e.path not in holders),
                children=tuple(e.path for e in inside if len(e.names) == len(entry.names) + 1
                               and e.path in holders),
                node_count=sum(1 for e in inside if e.path not in holders)))
            continue
        nodes.append(GraphNode(
            id=entry.path, name=entry.layer.name, path=entry.path,
            class_name=type(entry.layer).__name__, family=layer_family(entry.layer),
            call_index=0, output_shapes=(), input_shapes=(), params=_params(entry.layer),
            trainable=bool(entry.layer.trainable),
            activation=activations.layer_activation(entry.layer), group=parent))
    return ModelGraph(nodes, [], groups, model_name=model_name)
