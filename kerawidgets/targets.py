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

import dataclasses
import inspect
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
    """Every layer (not input layers) of `model` and its nested models, in graph order."""
    seen = set()
    for call in adapter.graph_calls(model):
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
        _refuse_inside_subclassed(text, path, layers)
        raise UnknownLayerError(text, known, f"model {model.name!r}")
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


def _refuse_inside_subclassed(text, path, layers) -> None:
    """Refuse, clearly, a path into a nested subclassed model (kept whole, like a custom layer)."""
    for found, layer in layers:
        inside = len(path) > len(found) and path[: len(found)] == found
        if inside and adapter.is_model(layer) and not adapter.has_graph(layer):
            where = naming.layer_path(found)
            raise InvalidEditError(
                f"{text!r} is inside {where!r}, a subclassed {type(layer).__name__} without a "
                "graph of layer calls: kerawidgets keeps it whole, like a custom layer, with its "
                f"weights. Edit {where!r} as one layer (ReplaceLayer, RemoveLayer, InsertLayer "
                "after it), or change the layers inside its call() in code."
            )


def call_count(model, path) -> int:
    """How many times the layer at `path` is called in its (nested) model's graph."""
    path = naming.split_layer_path(path) if isinstance(path, str) else tuple(path)
    parent = parent_model(model, path)
    return sum(1 for call in adapter.graph_calls(parent) if call.operation.name == path[-1])


def parent_model(model, path):
    """The (nested) model whose graph directly calls the layer at `path`."""
    current = model
    for name in path[:-1]:
        current = next(
            op for op in _operations(current) if op.name == name and adapter.is_model(op)
        )
    return current


def _operations(model):
    seen = set()
    for call in adapter.graph_calls(model):
        if id(call.operation) not in seen:
            seen.add(id(call.operation))
            yield call.operation
