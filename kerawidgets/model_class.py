"""The model's own class through a rebuild: keras-hub tasks and backbones, user subclasses.

A Functional subclass with its own ``__init__`` (``GPT2CausalLM``,
``BertTextClassifier``, ``GPT2Backbone``, a user's ``class MyModel(keras.Model)``
that calls ``super().__init__(inputs, outputs)``) builds its graph in that
``__init__``, so it cannot be called with the rebuilt graph. The rebuild
instead makes an instance of the class without its ``__init__``, gives it the
rebuilt graph as ``super().__init__(inputs, outputs)`` would, and then copies
the attributes the class set on the original (`restore_attributes`):

- a layer of the graph (``backbone``, ``token_embedding``, a list of
  ``transformer_layers``) becomes its rebuilt copy;
- a layer outside the graph (a keras-hub ``preprocessor`` with its tokenizer)
  becomes a fresh copy from its config, with its variables and assets
  (vocabularies);
- a symbolic tensor of the graph (a keras-hub backbone's ``pyramid_outputs``)
  becomes the copy's tensor from the same call of the same layer;
- an object with a config (a keras-hub ``sampler``) a fresh copy from it;
- a method of the original becomes the copy's; another function bound to
  the original (a traced ``generate_function``) is dropped, so the class
  re-creates it for the copy;
- plain values are copied.

Whatever cannot be copied is said in the report's notes, in words.

>>> import keras
>>> from kerawidgets import rebuild
>>> class Doubler(keras.Model):
...     def __init__(self, units=2, **kwargs):
...         inputs = keras.Input((3,))
...         head = keras.layers.Dense(units, name="head")
...         super().__init__(inputs, head(inputs) * 2, **kwargs)
...         self.head, self.units = head, units
>>> model = Doubler(name="doubler")
>>> copy = rebuild(model, []).model
>>> type(copy).__name__, copy.units, copy.head is copy.get_layer("head")
('Doubler', 2, True)
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import types

import keras

from kerawidgets import _keras_adapter as adapter

# Set by Keras' Trainer (compile, fit); the rebuild's compile step owns them.
_TRAINER_STATE = frozenset({
    "optimizer", "compiled", "loss", "stop_training", "history", "steps_per_execution",
    "train_function", "test_function", "predict_function", "_compile_config",
    "_compiled_trainable_state", "_compile_loss", "_compile_metrics", "_loss_tracker",
    "_run_eagerly", "_jit_compile", "_auto_config", "_auto_config_error_args",
})
# Functions the class makes again when they are None (keras-hub's CausalLM and
# Seq2SeqLM trace `generate_function` on the first generate()).
_REMADE = frozenset({"generate_function"})
# Sets of `id()`s of the original's layers: computed again for the copy.
_LAYER_ID_SETS = frozenset({"_functional_layer_ids"})
_PLAIN = (type(None), bool, int, float, complex, str, bytes)


@dataclasses.dataclass
class KeptClass:
    """An original model and its rebuilt instance of the same class, to be completed."""

    old: keras.Model
    new: keras.Model
    baseline: frozenset  # attributes the new instance had right after Functional.__init__


_plain = [False]  # inside `plain_classes()`: every rebuilt model is a plain Functional


@contextlib.contextmanager
def plain_classes():
    """Rebuild every model as a plain Functional (for a file Keras reloads as a graph)."""
    _plain[0], before = True, _plain[0]
    try:
        yield
    finally:
        _plain[0] = before


def has_own_classes(model) -> bool:
    """Whether `model`, or a model nested in its graph, is of a class with its own `__init__`."""
    if not adapter.has_graph(model):
        return False
    return needs_own_class(model) or any(
        adapter.is_model(layer) and has_own_classes(layer) for layer in model.layers
    )


def needs_own_class(model) -> bool:
    """Whether `model`'s class has an `__init__` of its own (so `cls(inputs, outputs)` would not do)."""
    return not adapter.functional_subclass_can_be_reused(model)


def new_functional(model, inputs, outputs, name, kept: list, notes: list) -> keras.Model:
    """The rebuilt graph as an instance of `type(model)`; attributes come later.

    Falls back to a plain Functional (saying so in `notes`) if the class
    cannot be instantiated that way.
    """
    cls = type(model)
    if _plain[0]:
        return adapter.functional_class()(inputs, outputs, name=name)
    if not needs_own_class(model):
        return cls(inputs, outputs, name=name)
    try:
        new = adapter.functional_of_class(cls, inputs, outputs, name)
    except Exception as error:
        notes.append(
            f"{cls.__name__} {model.name!r} could not be re-created as its own class "
            f"({type(error).__name__}: {error}); rebuilt as a plain Functional model with the "
            f"same graph, without {cls.__name__}'s methods and attributes."
        )
        return adapter.functional_class()(inputs, outputs, name=name)
    adapter.copy_constructor_record(model, new)
    kept.append(KeptClass(model, new, frozenset(adapter.instance_state(new))))
    return new


def restore_attributes(kept: list, cache: dict, notes: list, structural: bool) -> None:
    """Give each kept instance the attributes its class set on the original.

    `cache` is the rebuild's map from `(id(original operation), None)` to its
    new layers; `structural` says whether an edit inserted, removed or
    replaced layers (which a class's own methods may not see).
    """
    layer_map = {key[0]: layers[-1] for key, layers in cache.items()
                 if key[1] is None and layers}
    for entry in kept:
        layer_map[id(entry.old)] = entry.new
    for entry in kept:  # nested models come first: the walk finishes them first
        _restore_one(entry, layer_map, notes, structural)


def _restore_one(entry: KeptClass, layer_map: dict, notes: list, structural: bool) -> None:
    copier = _Copier(entry.old, entry.new, layer_map)
    for key, value in adapter.instance_state(entry.old).items():
        if key in entry.baseline or key in _TRAINER_STATE:
            continue
        if key in _LAYER_ID_SETS:
            value = adapter.flat_layer_ids(entry.new)
        else:
            value = copier.copy(value, key)
        try:
            setattr(entry.new, key, value)
        except Exception as error:  # a read-only property, say
            copier.problems.append(f"{key!r} could not be set ({type(error).__name__}: {error})")
    adapter.order_tracked_layers(entry.new, [
        layer_map.get(id(layer), copier.copies.get(id(layer)))
        for layer in adapter.tracked_layers(entry.old)
    ])
    cls = type(entry.old).__name__
    if copier.problems:
        notes.append(f"{cls} {entry.old.name!r} kept as its own class, but: "
                     + "; ".join(copier.problems) + ".")
    if structural and copier.layer_attributes:
        notes.append(
            f"{cls} {entry.old.name!r} kept as its own class; its own methods reach layers "
            f"through {', '.join(repr(a) for a in copier.layer_attributes)}, not through the "
            "graph, so they do not see layers this edit inserted or removed (the model's "
            "call and predict() do)."
        )


class _Copier:
    """Copies one original's attribute values for its rebuilt instance."""

    def __init__(self, old, new, layer_map):
        self.old = old
        self.new = new
        self.layer_map = layer_map
        self.graph_ids = _graph_layer_ids(old)
        self.copies: dict = {}  # id(original layer outside the graph) -> its copy
        self.places = None  # id(tensor) -> (tensor, (layer path, call index, output index))
        self.new_tensors: dict = {}
        self.problems: list[str] = []
        self.layer_attributes: list[str] = []

    def copy(self, value, key, depth=0):
        if isinstance(value, _PLAIN) or isinstance(value, type):
            return value
        if id(value) in self.layer_map:
            if key not in self.layer_attributes and value is not self.old:
                self.layer_attributes.append(key)
            return self.layer_map[id(value)]
        if isinstance(value, keras.KerasTensor):
            return self.tensor(value, key)
        if isinstance(value, keras.layers.Layer):
            return self.outside_layer(value, key)
        if isinstance(value, (list, tuple)) and depth < 4:
            items = [self.copy(v, key, depth + 1) for v in value]
            return tuple(items) if isinstance(value, tuple) else items
        if isinstance(value, dict) and depth < 4:
            return {k: self.copy(v, key, depth + 1) for k, v in value.items()}
        if isinstance(value, types.MethodType) and value.__self__ is self.old:
            return types.MethodType(value.__func__, self.new)
        if callable(value) and _refers_to(value, self.old):
            if key in _REMADE:
                return None
            self.problems.append(f"{key!r} was bound to the original, so it is reset to None "
                                 "(the class makes it again when needed)")
            return None
        return self.other(value, key)

    def tensor(self, tensor, key):
        """A symbolic tensor of the original's graph (keras-hub's `pyramid_outputs`):
        the copy's tensor from the same call of the same layer."""
        if self.places is None:
            self.places = _tensor_places(self.old)
            self.new_tensors = {place: t for t, place in _tensor_places(self.new).values()}
        _, place = self.places.get(id(tensor), (None, None))
        found = self.new_tensors.get(place)
        if found is None:
            self.problems.append(f"{key!r} held a tensor that is not in the rebuilt graph "
                                 f"({tensor.name!r}); it is None on the copy")
        return found

    def outside_layer(self, layer, key):
        """A layer that is not in the graph (a preprocessor): a fresh copy with its state."""
        if id(layer) in self.graph_ids:  # a layer of the original graph the edit removed
            self.problems.append(f"{key!r} held layer {layer.name!r}, which the edit removed; "
                                 "it is None on the copy")
            return None
        try:
            fresh = keras.layers.deserialize(keras.layers.serialize(layer))
            _copy_layer_state(layer, fresh)
        except Exception as error:
            self.problems.append(
                f"{key!r} ({type(layer).__name__} {layer.name!r}, outside the graph) could not "
                f"be copied ({type(error).__name__}: {error}), so the copy shares it with the "
                "original")
            return layer
        self.copies[id(layer)] = fresh
        return fresh

    def other(self, value, key):
        get_config = getattr(value, "get_config", None)
        from_config = getattr(type(value), "from_config", None)
        try:
            if callable(get_config) and callable(from_config):
                return from_config(get_config())
            # Layers of the graph met inside the value become their copies, not deep copies.
            return copy.deepcopy(value, dict(self.layer_map))
        except Exception as error:
            self.problems.append(f"{key!r} ({type(value).__name__}) could not be copied "
                                 f"({type(error).__name__}: {error}), so the copy shares it "
                                 "with the original")
            return value


def _tensor_places(model, prefix=()) -> dict:
    """Every output tensor of `model`'s graph (nested graphs too), by where it comes from."""
    places = {}
    for call in adapter.graph_calls(model):
        path = (*prefix, call.operation.name)
        for index, tensor in enumerate(call.output_tensors):
            places[id(tensor)] = (tensor, (path, call.call_index, index))
        if (not call.is_input and adapter.is_model(call.operation)
                and adapter.has_graph(call.operation) and call.call_index == 0):
            places.update(_tensor_places(call.operation, path))
    return places


def _graph_layer_ids(model) -> set:
    """Ids of the layers called in `model`'s graph, nested models' graphs included."""
    ids = set()
    for layer in model.layers:
        ids.add(id(layer))
        if adapter.is_model(layer) and adapter.has_graph(layer):
            ids |= _graph_layer_ids(layer)
    return ids


def _copy_layer_state(source, target) -> None:
    """Variables and assets of `source` and the layers inside it, into the fresh `target`."""
    old_layers = adapter.sub_layers(source)
    new_layers = adapter.sub_layers(target)
    if len(old_layers) != len(new_layers):
        raise ValueError(f"{len(new_layers)} layers inside the copy, {len(old_layers)} in the original")
    for old, new in zip(old_layers, new_layers):
        if adapter.has_assets(old):
            adapter.copy_assets(old, new)
    if source.weights:
        if not target.built:
            raise ValueError("it holds weights but its config does not build it")
        target.set_weights(source.get_weights())


def _refers_to(function, obj, depth=0) -> bool:
    """Whether `function` (a bound method, a closure, a traced function) holds `obj`."""
    if function is obj:
        return True
    if depth > 4 or isinstance(function, type):
        return False
    if getattr(function, "__self__", None) is obj:
        return True
    inner = [getattr(function, name, None) for name in ("python_function", "__wrapped__", "__func__")]
    closure = getattr(function, "__closure__", None) or ()
    for cell in closure:
        try:
            inner.append(cell.cell_contents)
        except ValueError:  # an empty cell
            continue
    return any(
        item is obj or (isinstance(item, (types.FunctionType, types.MethodType)) or
                        hasattr(item, "python_function") or hasattr(item, "__wrapped__"))
        and _refers_to(item, obj, depth + 1)
        for item in inner if item is not None
    )
