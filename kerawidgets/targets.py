"""Find the layers an edit names: by name, path, layer object, class or predicate.

Layers inside nested models are reached by path (``"backbone/conv1"``) or by
their plain name when it is unique in the whole model. A ``":k"`` suffix names
the k-th call of a shared layer.

>>> import keras
>>> from kerawidgets.targets import resolve
>>> inp = keras.Input((4,))
>>> model = keras.Model(inp, keras.layers.Dense(2, name="head")(keras.layers.ReLU(name="act")(inp)))
>>> [t.path_str for t in resolve(model, keras.layers.ReLU)]
['act']
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import inspect
import re
from collections.abc import Iterator

import keras

from kerawidgets import _keras_adapter as adapter
from kerawidgets import naming
from kerawidgets.errors import InvalidEditError, UnknownLayerError


@dataclasses.dataclass(frozen=True)
class Target:
    """A layer found in a model: where it sits and (optionally) which call of it."""

    path: tuple[str, ...]
    layer: keras.layers.Layer
    call_index: int | None = None  # None: every call of the layer

    @property
    def path_str(self) -> str:
        return naming.layer_path(self.path)

    @property
    def name(self) -> str:
        return self.path[-1]


def walk_layers(model, prefix=()) -> Iterator[tuple[tuple[str, ...], keras.layers.Layer]]:
    """Every layer (not input layers) of `model` and its nested models, in graph order.

    A subclassed model's sub-layers (its own, or those of one nested in a
    functional model) come from its layer tree (`subclassed.layer_tree`), so
    edits reach them by path (``"inner_mlp/dense1"``) like any nested layer.
    Within a `one_trace_each` block a model is walked once.

    >>> import keras
    >>> inp = keras.Input((3,))
    >>> model = keras.Model(inp, keras.layers.Dense(2, name="d")(inp))
    >>> [path for path, _ in walk_layers(model)]
    [('d',)]
    """
    if _TRACES.get() is None:
        return _walk(model, prefix)
    return iter(kept_per_block("walk", model, tuple(prefix),
                               lambda: list(_walk(model, prefix))))


def _walk(model, prefix) -> Iterator[tuple[tuple[str, ...], keras.layers.Layer]]:
    from kerawidgets import subclassed

    if subclassed.is_subclassed(model):
        yield from _subclassed_layers(model, prefix)
        return
    seen = set()
    for call in graph_calls(model):
        operation = call.operation
        if id(operation) in seen or adapter.is_input_layer(operation):
            continue
        if not isinstance(operation, keras.layers.Layer):
            continue
        seen.add(id(operation))
        path = (*prefix, operation.name)
        yield path, operation
        if adapter.is_model(operation) and adapter.is_functional(operation):
            yield from walk_layers(operation, path)
        elif subclassed.is_subclassed(operation):
            yield from _subclassed_layers(operation, path)


def _subclassed_layers(model, prefix):
    """A subclassed model's own sub-layers by layer path, in the order its traced graph
    (the editor's, when it has one) calls them, else in the order it set them."""
    from kerawidgets import subclassed

    entries = [((*prefix, *e.names), e.layer) for e in subclassed.layer_tree(model)]
    view = adapter.graph_view(model)
    if view is not None:
        order = {path: i for i, (path, _) in enumerate(walk_layers(view, prefix))}
        entries.sort(key=lambda item: order.get(item[0], len(order)))
    yield from entries


def layer_paths(model) -> list[str]:
    return [naming.layer_path(path) for path, _ in walk_layers(model)]


def _is_layer_class(spec) -> bool:
    return inspect.isclass(spec) and issubclass(spec, keras.layers.Layer)


def resolve(model, spec, *, allow_many=True) -> list[Target]:
    """The layers of `model` that `spec` names, in graph order.

    `spec` is a name or path (``"dense_1"``, ``"backbone/conv1"``,
    ``"dense:1"`` for one call), a layer object, a layer class (every
    instance), a predicate ``f(layer) -> bool`` or a list of these.
    Raises `UnknownLayerError` with close names when nothing matches.
    """
    layers = list(walk_layers(model))
    if isinstance(spec, (list, tuple)) and not isinstance(spec, str):
        found, seen = [], set()
        for item in spec:
            for target in resolve(model, item, allow_many=True):
                key = (target.path, target.call_index)
                if key not in seen:
                    seen.add(key)
                    found.append(target)
        return found
    if isinstance(spec, keras.layers.Layer):
        for path, layer in layers:
            if layer is spec:
                return [Target(path, layer)]
        raise UnknownLayerError(spec.name, [naming.layer_path(p) for p, _ in layers],
                                f"model {model.name!r} (that layer object is not part of it)")
    if _is_layer_class(spec):
        found = [Target(path, layer) for path, layer in layers if isinstance(layer, spec)]
        if not found:
            raise InvalidEditError(
                f"Model {model.name!r} has no {spec.__name__} layer. Layer classes in it: "
                f"{', '.join(sorted({type(lyr).__name__ for _, lyr in layers}))}."
            )
        return _check_many(found, spec, allow_many)
    if callable(spec) and not isinstance(spec, str):
        found = [Target(path, layer) for path, layer in layers if spec(layer)]
        if not found:
            raise InvalidEditError(
                f"No layer of model {model.name!r} matches the predicate {spec!r}."
            )
        return _check_many(found, spec, allow_many)
    if isinstance(spec, str):
        return [_resolve_name(model, spec, layers)]
    raise InvalidEditError(
        f"Cannot find a layer from {spec!r}: give a layer name, a path like 'outer/inner', "
        "a layer object, a layer class or a predicate."
    )


def _check_many(found, spec, allow_many):
    if len(found) > 1 and not allow_many:
        raise InvalidEditError(
            f"{spec!r} matches {len(found)} layers ({', '.join(t.path_str for t in found[:5])}"
            f"{', ...' if len(found) > 5 else ''}); this edit takes exactly one. Name one layer."
        )
    return found


def _resolve_name(model, text, layers) -> Target:
    path, call_index = naming.split_node_id(text)
    known = [naming.layer_path(p) for p, _ in layers]
    if not path:
        raise UnknownLayerError(text, known, f"model {model.name!r}")
    exact = [(p, layer) for p, layer in layers if p == path]
    if not exact and len(path) == 1:
        exact = [(p, layer) for p, layer in layers if p[-1] == path[0]]
        if len(exact) > 1:
            raise InvalidEditError(
                f"Layer name {text!r} is used in several nested models of {model.name!r}: "
                f"{', '.join(naming.layer_path(p) for p, _ in exact)}. Give the full path."
            )
    if not exact:
        exact = _by_attribute(model, text, layers)
    if not exact:
        raise UnknownLayerError(text, _attribute_paths(model, layers) + known,
                                f"model {model.name!r}")
    found_path, layer = exact[0]
    has_suffix = naming.CALL_SEPARATOR in text and text.rpartition(naming.CALL_SEPARATOR)[2].isdigit()
    if has_suffix:
        calls = call_count(model, found_path)
        if call_index >= calls:
            raise InvalidEditError(
                f"Layer {naming.layer_path(found_path)!r} is called {calls} time(s); "
                f"there is no call number {call_index}. Use 0..{calls - 1}."
            )
        return Target(found_path, layer, call_index)
    return Target(found_path, layer)


_GET_LAYER = re.compile(r"^get_layer\('([^']+)'\)\.(.+)$")


def _subclassed_holders(model, layers) -> dict:
    """Layer path -> subclassed model: `model` itself (path ()) and those nested in it."""
    from kerawidgets import subclassed

    holders = {(): model} if subclassed.is_subclassed(model) else {}
    holders.update({p: layer for p, layer in layers if subclassed.is_subclassed(layer)})
    return holders


def _attribute_paths(model, layers) -> list[str]:
    """The attribute paths that name layers inside subclassed models (``"inner/blocks[1].add"``)."""
    from kerawidgets import subclassed

    return [naming.layer_path((*prefix, entry.attribute))
            for prefix, holder in _subclassed_holders(model, layers).items()
            for entry in subclassed.layer_tree(holder) if "." in entry.attribute or
            "[" in entry.attribute]


def _by_attribute(model, text, layers) -> list:
    """The layer an attribute path names inside a subclassed model: ``"blocks[1].inner"``
    in the model itself, ``"inner_mlp/blocks[1].inner"`` or the graph panel's
    ``"get_layer('inner_mlp').blocks[1].inner"`` in one nested in a functional model."""
    from kerawidgets import subclassed

    match = _GET_LAYER.match(text)
    if match:
        prefix, attribute = naming.split_layer_path(match.group(1)), match.group(2)
    else:
        *head, attribute = naming.split_layer_path(text) or ("",)
        prefix = tuple(head)
    holder = _subclassed_holders(model, layers).get(prefix)
    if holder is None:
        return []
    found = [e for e in subclassed.layer_tree(holder) if e.attribute == attribute]
    if len(found) != 1:
        return []
    path = (*prefix, *found[0].names)
    return [(p, layer) for p, layer in layers if p == path]


def call_count(model, path) -> int:
    """How many times the layer at `path` is called in its (nested) model's graph."""
    path = naming.split_layer_path(path) if isinstance(path, str) else tuple(path)
    parent = parent_model(model, path)
    return sum(1 for call in graph_calls(parent) if call.operation.name == path[-1])


def parent_model(model, path):
    """The (nested) model whose graph directly calls the layer at `path`.

    Inside a subclassed model that is its traced graph (`subclassed.trace`,
    on a copy: match its calls to the layer by name, not identity).
    """
    current = _graph_of(model)
    for name in path[:-1]:
        current = _graph_of(next(
            op for op in _operations(current) if op.name == name and adapter.is_model(op)
        ))
    return current


# (kind, id(model), key) -> (model, what was found) while a `one_trace_each` block runs
# (`kept_per_block`), else None.
_TRACES: contextvars.ContextVar[dict | None] = contextvars.ContextVar("kerawidgets_traces",
                                                                      default=None)


@contextlib.contextmanager
def one_trace_each():
    """Within this block, what lookups find about a model is found once (`kept_per_block`):
    lookups (`parent_model`, `call_count`, `resolve` with a ``":k"``) trace each subclassed
    model nested in a functional one once and share that trace, a model's calls are
    listed once (`graph_calls`), its layers walked once (`walk_layers`), and the catalog
    finds where each layer sits once.

    All of it is forgotten when the block ends (a block inside another shares the
    outer one's), so a lookup after it sees the model as it is then: a trace is a copy,
    and would go stale after a sub-layer is set or an activation swapped in place. One
    plan (`plan.plan_edit`), one selection in the editor or what follows a move of the
    history (`EditSession._after_move`: graph, plots, panel) is one block; change no
    model inside one.

    >>> import keras
    >>> inp = keras.Input((3,))
    >>> model = keras.Model(inp, keras.layers.Dense(2, name="d")(inp))
    >>> with one_trace_each():
    ...     call_count(model, "d")
    1
    """
    if _TRACES.get() is not None:
        yield
        return
    token = _TRACES.set({})
    try:
        yield
    finally:
        _TRACES.reset(token)


def kept_per_block(kind: str, model, key, compute):
    """``compute()``, kept for `model` under (`kind`, `key`) until the `one_trace_each`
    block ends; computed on every call outside a block. The model is held with it, so
    its id is not reused meanwhile.

    >>> import keras
    >>> inp = keras.Input((3,))
    >>> model = keras.Model(inp, keras.layers.Dense(2, name="d")(inp))
    >>> with one_trace_each():
    ...     graph_calls(model) is graph_calls(model)
    True
    """
    kept = _TRACES.get()
    if kept is None:
        return compute()
    slot = (kind, id(model), key)
    if slot not in kept:
        kept[slot] = (model, compute())
    return kept[slot][1]


def _graph_of(model):
    """`model`, or for a subclassed model without a graph its traced graph (when it
    traces): traced once per `one_trace_each` block, else on every call."""
    from kerawidgets import subclassed

    if adapter.has_graph(model) or not subclassed.is_subclassed(model):
        return model

    def traced_graph():
        traced = subclassed.trace(model)
        return traced.functional if traced.functional is not None else model

    return kept_per_block("trace", model, None, traced_graph)


def graph_calls(model) -> list:
    """`adapter.graph_calls(model)`, listed once per `one_trace_each` block (the panel's
    lookups for one selection ask it about the same model several times). Do not change
    the list."""
    return kept_per_block("calls", model, None, lambda: adapter.graph_calls(model))


def _operations(model):
    seen = set()
    for call in graph_calls(model):
        if id(call.operation) not in seen:
            seen.add(id(call.operation))
            yield call.operation
