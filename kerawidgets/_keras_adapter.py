"""The only module that touches Keras private attributes.

Everything else in kerawidgets talks to models through these functions, so a
Keras upgrade that moves an internal breaks one file. Checked against
Keras 3.10 to 3.15.

>>> import keras
>>> from kerawidgets import _keras_adapter as adapter
>>> inp = keras.Input((3,), name="x")
>>> model = keras.Model(inp, keras.layers.Dense(2, name="d")(inp))
>>> [call.operation.name for call in adapter.graph_calls(model)]
['x', 'd']
"""

from __future__ import annotations

import dataclasses
import tempfile
import threading
from typing import Any

import keras
import numpy as np

from kerawidgets.errors import UnsupportedModelError

# --- model kinds ----------------------------------------------------------


def is_sequential(model) -> bool:
    return isinstance(model, keras.Sequential)


def is_functional(model) -> bool:
    """A model with a graph of layer calls (Functional, or a built Sequential)."""
    from keras.src.models.functional import Functional

    if is_sequential(model):
        return getattr(model, "_functional", None) is not None
    return isinstance(model, Functional)


def is_model(obj) -> bool:
    return isinstance(obj, keras.Model)


def is_input_layer(operation) -> bool:
    return isinstance(operation, keras.layers.InputLayer)


#: subclassed model -> the functional model of its traced copy (`set_graph_view`)
_GRAPH_VIEWS: Any = None


def set_graph_view(model, functional) -> None:
    """Let `functional_view(model)` of a subclassed model be its traced graph (the editor's)."""
    import weakref

    global _GRAPH_VIEWS
    if _GRAPH_VIEWS is None:
        _GRAPH_VIEWS = weakref.WeakKeyDictionary()
    _GRAPH_VIEWS[model] = functional


def graph_view(model):
    """The traced graph set for a subclassed model with `set_graph_view`, or None."""
    if _GRAPH_VIEWS is None or is_functional(model) or is_sequential(model):
        return None
    return _GRAPH_VIEWS.get(model)


def functional_view(model):
    """The Functional object holding the graph of `model` (itself, or a Sequential's).

    A subclassed model has one only when `set_graph_view` gave it its traced graph.
    """
    view = graph_view(model)
    if view is not None:
        return view
    if is_sequential(model):
        functional = getattr(model, "_functional", None)
        if functional is None:
            raise UnsupportedModelError(
                f"Sequential model {model.name!r} is not built, so it has no graph yet. "
                "Give it an input shape (`keras.Input(shape)` as its first layer) or call "
                "`model.build((None, ...))` before editing it."
            )
        return functional
    if not is_functional(model):
        raise UnsupportedModelError(
            f"Model {model.name!r} is a subclassed {type(model).__name__} without a graph of "
            "layer calls, so kerawidgets cannot see or rebuild it. Build it with the functional "
            "API (`keras.Model(inputs, outputs)`) or as a `keras.Sequential`, or edit the "
            "layers inside its `call` by hand."
        )
    return model


def has_graph(model) -> bool:
    """Whether kerawidgets can walk `model` (Functional, or a built Sequential)."""
    try:
        functional_view(model)
    except UnsupportedModelError:
        return False
    return True


def functional_subclass_can_be_reused(model) -> bool:
    """True when `type(model)(inputs, outputs, name=...)` is how Keras builds it."""
    from keras.src.models.functional import Functional

    return type(model) is Functional or (
        issubclass(type(model), Functional)
        and type(model).__init__ is Functional.__init__
    )


def functional_class():
    from keras.src.models.functional import Functional

    return Functional


def functional_of_class(cls, inputs, outputs, name):
    """An instance of the Functional subclass `cls` on this graph, without `cls.__init__`.

    `cls.__init__` (a keras-hub task, a user's subclass) builds its own
    graph; the rebuilt graph is given to `Functional.__init__` instead, as
    the subclass's own `super().__init__(inputs, outputs)` would have.
    """
    from keras.src.models.functional import Functional

    if not issubclass(cls, Functional):
        raise TypeError(f"{cls.__name__} no longer has Functional among its base classes")
    instance = cls.__new__(cls)
    Functional.__init__(instance, inputs, outputs, name=name)
    return instance


def copy_constructor_record(source, target) -> None:
    """Copy the constructor arguments Keras recorded (`get_config()` of a subclass uses them)."""
    for attr in ("_auto_config", "_auto_config_error_args"):
        if attr in vars(source):
            object.__setattr__(target, attr, vars(source)[attr])


def instance_state(obj) -> dict:
    """The attributes set on `obj` itself (torch keeps sub-modules apart from `__dict__`)."""
    state = dict(vars(obj))
    state.update(state.pop("_modules", None) or {})
    return state


def tracked_layers(model) -> list:
    """The layers `model` tracks directly, in the order its weights list them."""
    return list(model._layers)


def order_tracked_layers(model, order) -> None:
    """Put `model`'s tracked layers in the order of `order` (others after), so that
    `model.weights` and `get_weights()` list the weights as the original did."""
    rank = {id(layer): i for i, layer in enumerate(order) if layer is not None}
    model._layers[:] = sorted(model._layers, key=lambda layer: rank.get(id(layer), len(rank)))


def flat_layer_ids(model) -> set:
    """Ids of `model` and every layer it tracks (keras-hub's `_functional_layer_ids`)."""
    return {id(layer) for layer in model._flatten_layers()}


# --- the graph of calls ---------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GraphCall:
    """One call of an operation inside a functional graph (a Keras `Node`)."""

    node: Any
    operation: Any
    call_index: int  # which call of `operation` this is among this model's calls of it
    depth: int
    input_tensors: tuple
    output_tensors: tuple
    node_index: int = 0  # index in the operation's own list of every call (`_keras_history`)

    @property
    def is_input(self) -> bool:
        return bool(self.node.is_input)

    def call_arguments(self, tensor_map: dict) -> tuple[tuple, dict]:
        """The call's args and kwargs with every symbolic tensor replaced via `tensor_map`.

        `tensor_map` maps `id(old_tensor)` to the new tensor; every other
        argument (`training=`, slicing keys, constants) is replayed verbatim.
        """
        return self.node.arguments.fill_in(tensor_map)

    @property
    def kwargs(self) -> dict:
        return dict(self.node.arguments.kwargs)


def graph_calls(model) -> list[GraphCall]:
    """Every call in `model`'s graph, inputs first, in an order safe to replay.

    A call's `call_index` counts only the calls of its operation inside this
    model, in the order they were made: calls from outside (a layer first
    used in another model, a Sequential's earlier builds after `add`) do not
    count. Calls of one shared operation come in that order, so replaying
    them in list order gives a copy the same indices.

    >>> seq = keras.Sequential([keras.Input((3,))])
    >>> seq.add(keras.layers.Dense(4, name="a")); seq.add(keras.layers.Dense(2, name="b"))
    >>> [(c.operation.name, c.call_index) for c in graph_calls(seq)][1:]
    [('a', 0), ('b', 0)]
    """
    functional = functional_view(model)
    nodes_by_depth = functional._nodes_by_depth
    entries = []
    for depth in sorted(nodes_by_depth, reverse=True):
        for node in nodes_by_depth[depth]:
            inbound = getattr(node.operation, "_inbound_nodes", [])
            node_index = next((i for i, n in enumerate(inbound) if n is node), 0)
            entries.append((node, depth, node_index))
    ranks: dict[int, list[int]] = {}
    for node, _, node_index in entries:
        ranks.setdefault(id(node.operation), []).append(node_index)
    for indices in ranks.values():
        indices.sort()
    calls = [
        GraphCall(
            node=node,
            operation=node.operation,
            call_index=ranks[id(node.operation)].index(node_index),
            depth=depth,
            input_tensors=tuple(node.input_tensors),
            output_tensors=tuple(node.outputs),
            node_index=node_index,
        )
        for node, depth, node_index in entries
    ]
    return _shared_calls_in_order(calls)


def _shared_calls_in_order(calls: list[GraphCall]) -> list[GraphCall]:
    """`calls` (topologically ordered) with each operation's calls by `call_index`.

    Keras orders calls by depth; a shared layer's later call can come first.
    Reordered (a topological sort keeping the depth order where it can) only
    when that happens: the original calls were made in an order that is
    both topological and by call index, so such an order exists.
    """
    seen: dict[int, int] = {}
    in_order = True
    for call in calls:
        if call.call_index != seen.get(id(call.operation), -1) + 1:
            in_order = False
            break
        seen[id(call.operation)] = call.call_index
    if in_order:
        return calls
    import heapq

    producer = {id(t): i for i, c in enumerate(calls) for t in c.output_tensors}
    by_op = {(id(c.operation), c.call_index): i for i, c in enumerate(calls)}
    needs: list[set] = []
    for c in calls:
        before = {producer[id(t)] for t in c.input_tensors if id(t) in producer}
        if c.call_index:
            before.add(by_op[(id(c.operation), c.call_index - 1)])
        needs.append(before)
    waiting = {i: len(n) for i, n in enumerate(needs)}
    users: dict[int, list[int]] = {}
    for i, n in enumerate(needs):
        for j in n:
            users.setdefault(j, []).append(i)
    ready = [i for i, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(calls[i])
        for k in users.get(i, []):
            waiting[k] -= 1
            if waiting[k] == 0:
                heapq.heappush(ready, k)
    return order if len(order) == len(calls) else calls


def inbound_call_count(operation) -> int:
    return len(getattr(operation, "_inbound_nodes", []))


def inputs_struct(model):
    """The model's inputs with their structure (dict, list or single tensor)."""
    return functional_view(model)._inputs_struct


def outputs_struct(model):
    return functional_view(model)._outputs_struct


def flat_inputs(model) -> list:
    return list(functional_view(model).inputs)


def flat_outputs(model) -> list:
    return list(functional_view(model).outputs)


def tensor_producer(tensor):
    """(operation, call_index, output_index) of a symbolic tensor."""
    history = tensor._keras_history
    return history.operation, history.node_index, history.tensor_index


def input_layer_of(tensor):
    operation, _, _ = tensor_producer(tensor)
    return operation


def input_spec_of(tensor) -> dict:
    """Arguments for `keras.Input` that recreate the input behind `tensor`."""
    layer = input_layer_of(tensor)
    spec = {
        "batch_shape": tuple(tensor.shape),
        "dtype": tensor.dtype,
        "sparse": bool(getattr(tensor, "sparse", False)),
        "name": layer.name if is_input_layer(layer) else tensor.name,
    }
    if getattr(tensor, "ragged", False):
        spec["ragged"] = True
    if getattr(layer, "optional", False):
        spec["optional"] = True
    return spec


def sub_layers(layer) -> list[Any]:
    """`layer` and every layer tracked inside it, depth first."""
    return list(layer._flatten_layers(include_self=True, recursive=True))


# --- layers ---------------------------------------------------------------


def lambda_parts(layer) -> dict:
    """Constructor arguments of a `Lambda` layer, with the live Python function."""
    return {
        "function": layer.function,
        "output_shape": layer._output_shape,
        "mask": layer.mask,
        "arguments": dict(layer.arguments or {}),
    }


def recorded_init_args(layer) -> dict | None:
    """The arguments `layer` was constructed with, as Keras recorded them (or None).

    Keras keeps them when every value is a plain str, number, bool or None.
    """
    recorded = getattr(layer, "_auto_config", None)
    return None if recorded is None else dict(recorded.config)


def copy_layer_object(layer, extra_memo=None):
    """An independent copy of a built `layer` object: same attributes, copied variables.

    For a layer that neither its config nor Keras' recorded arguments can
    re-create (a `get_config` that raises). Sub-layers are copied the same
    way, the variables get their own values, the call history is left
    behind (the copy has no graph nodes), and methods Keras wrapped for the
    original (`build`) are wrapped for the copy. A Sequential among them gets
    its graph made again on its copied layers (`rebuild_sequential`): its
    graph (`_functional`) is no tracked layer, and copying it would go through
    Keras' pickling (a save and load), giving the copy a graph that runs other
    layer objects than the ones it holds and trains.

    >>> old = keras.layers.Dense(2, name="d")
    >>> _ = old(keras.Input((3,)))
    >>> new = copy_layer_object(old)
    >>> new.name, new.built, new.kernel is old.kernel, len(new._inbound_nodes)
    ('d', True, False, 0)
    """
    import copy
    import sys
    import types

    originals = sub_layers(layer)
    # Modules are shared, never copied (a SeedGenerator holds the backend module).
    memo: dict = {id(module): module for module in list(sys.modules.values())}
    memo.update(extra_memo or {})
    sequentials = [sub for sub in originals
                   if is_sequential(sub) and getattr(sub, "_functional", None) is not None]
    for sub in sequentials:  # not copied: made again on the copied layers below
        memo[id(sub._functional)] = None
    shells = []
    for sub in originals:
        cls: Any = type(sub)
        shell = cls.__new__(cls)  # Keras wraps `build` for the new object here
        memo[id(sub)] = shell
        shells.append(shell)
        for attribute in ("_inbound_nodes", "_outbound_nodes"):
            history = sub.__dict__.get(attribute)
            if history is not None:
                memo[id(history)] = []
    # Tracked containers re-add their items while copied: a locked tracker (a
    # built layer's) would refuse. Unlocked only for the copy, then as before.
    trackers = [sub.__dict__.get("_tracker") for sub in originals]
    locks = [getattr(t, "locked", False) for t in trackers]
    try:
        for tracker in trackers:
            if tracker is not None:
                tracker.locked = False
        for sub, shell in zip(originals, shells):
            wrapped = dict(shell.__dict__)
            for key, value in sub.__dict__.items():
                if isinstance(value, types.FunctionType) and key in wrapped:
                    continue  # a method Keras wrapped for `sub`: keep the shell's own
                shell.__dict__[key] = copy.deepcopy(value, memo)
    finally:
        for tracker, locked in zip(trackers, locks):
            if tracker is not None:
                tracker.locked = locked
    for shell, locked in zip(shells, locks):
        if shell.__dict__.get("_tracker") is not None:
            shell._tracker.locked = locked
    for sub in sequentials:
        rebuild_sequential(memo[id(sub)])
    return memo[id(layer)]


#: A model's compile and fit state: not copied with the model (recompiled from its config).
_COMPILE_STATE = (
    "optimizer", "_compile_loss", "_compile_metrics", "_loss_tracker", "train_function",
    "test_function", "predict_function", "history", "_compiled_trainable_state",
    "_eval_epoch_iterator", "_jax_state",
)


def copy_model_object(model):
    """An independent copy of a built `model` object of its own class, without compile state.

    Same class, same attributes and sub-layers (copied), variables with the
    same values in buffers of their own, no call history; the optimizer,
    compiled loss and metrics and traced functions are left behind (the
    caller recompiles from `model.get_compile_config()`).

    >>> class Net(keras.Model):
    ...     def __init__(self, **kwargs):
    ...         super().__init__(**kwargs)
    ...         self.d = keras.layers.Dense(2, name="d")
    ...     def call(self, x):
    ...         return self.d(x)
    >>> net = Net(name="net")
    >>> _ = net(np.ones((1, 3), "float32"))
    >>> twin = copy_model_object(net)
    >>> type(twin) is Net, twin.d is net.d, twin.compiled, tuple(twin.d.kernel.shape)
    (True, False, False, (3, 2))
    """
    state = vars(model)
    extra = {id(state[key]): None for key in _COMPILE_STATE if state.get(key) is not None}
    twin = copy_layer_object(model, extra_memo=extra)  # a Sequential's graph made again
    for key in _COMPILE_STATE:
        if key in vars(twin):
            object.__setattr__(twin, key, None)
    object.__setattr__(twin, "compiled", False)
    return twin


def build_input_shape(model):
    """The input shape(s) `model` was built with (its first call's), or None if unknown."""
    shapes = getattr(model, "_build_shapes_dict", None)
    if not shapes:
        return None
    if len(shapes) == 1:
        return next(iter(shapes.values()))
    return dict(shapes)


def replace_sub_layer(parent, old, new) -> None:
    """Put `new` wherever `parent` holds `old` (an attribute, a list item, a dict value).

    `new` takes `old`'s place in the parent's tracked layers too, so the
    model's weights keep their order; `old` is no longer tracked.
    """
    state = vars(parent)
    holders = [state, state.get("_modules") or {}]
    for holder in holders:
        for key, value in list(holder.items()):
            if value is old:
                holder[key] = new
            elif isinstance(value, list):  # user lists, TF's checkpoint dependencies
                for i, item in enumerate(value):
                    if item is old:
                        list.__setitem__(value, i, new)
                    elif getattr(item, "ref", None) is old and hasattr(item, "name"):
                        list.__setitem__(value, i, type(item)(item.name, new))
            elif isinstance(value, dict):  # user dicts, TF's dependency names
                for k, item in list(value.items()):
                    if item is old:
                        dict.__setitem__(value, k, new)
    layers = parent._layers
    for i in [i for i, layer in enumerate(layers) if layer is old]:
        list.__setitem__(layers, i, new)


def rebuild_sequential(model) -> None:
    """Make a built Sequential's graph again after one of its layers was replaced.

    Its input layer is made anew too: a copied one has no call history, so
    no output for the new graph to start from.
    """
    first = model._layers[0]
    if is_input_layer(first):
        model._layers[0] = keras.layers.InputLayer(
            batch_shape=first.batch_shape, dtype=first.dtype, name=first.name)
    model._maybe_rebuild()


def retrack_variables(model) -> None:
    """Let torch re-list a model's parameters after a sub-layer was replaced."""
    for layer in model._flatten_layers():
        if "_torch_params" in vars(layer) or "_torch_params" in (vars(layer).get("_modules") or {}):
            layer._track_variables()


def has_assets(layer) -> bool:
    return hasattr(layer, "save_assets") and hasattr(layer, "load_assets")


def copy_assets(source, target) -> None:
    """Copy lookup tables and other non-variable state saved as assets."""
    with tempfile.TemporaryDirectory() as folder:
        source.save_assets(folder)
        target.load_assets(folder)


def finalize_state(layer) -> None:
    """Let a layer recompute derived state after its variables were assigned."""
    for sub in sub_layers(layer):
        finalize = getattr(sub, "finalize_state", None)
        if callable(finalize) and sub.built:
            finalize()


def reset_compiled_functions(model) -> None:
    """Forget traced predict/train/test functions so the next call retraces.

    Changing `layer.activation` on a model that already ran `predict` or `fit`
    otherwise silently keeps using the traced graph with the old activation.
    """
    for attr in ("train_function", "test_function", "predict_function"):
        if hasattr(model, attr):
            setattr(model, attr, None)


def copy_operation(operation):
    """A fresh copy of a non-layer operation (`x + y`, slicing...) for a new graph.

    Re-created from its config when possible; otherwise a shallow copy with
    no call history, so calling it never adds nodes to the original.
    """
    import copy

    try:
        fresh = type(operation).from_config(operation.get_config())
    except Exception:
        fresh = copy.copy(operation)
        fresh._inbound_nodes = []
        fresh._outbound_nodes = []
    fresh.name = operation.name  # not a new automatic name: node ids stay the same
    return fresh


def match_raw_op_names(old_model, new_model) -> None:
    """Give the raw ops (`x + y`, masks' `not_equal`...) of `new_model` the names in `old_model`.

    Keras names each new op automatically (`not_equal_1`), and ops made
    inside a layer's call (a `Masking` layer's mask) are made again by
    Keras, not copied. Ops of one class are matched in graph order, when
    both models have the same number of them.

    >>> seq = keras.Sequential([keras.layers.Masking(0.0), keras.layers.LSTM(1)])
    >>> seq.build((None, 3, 2))
    >>> other = keras.Sequential([keras.layers.Masking(0.0), keras.layers.LSTM(1)])
    >>> other.build((None, 3, 2))
    >>> match_raw_op_names(seq, other)
    >>> def ops(m):
    ...     return [c.operation.name for c in graph_calls(m)
    ...             if not isinstance(c.operation, keras.layers.Layer)]
    >>> ops(other) == ops(seq)
    True
    """
    def raw_ops(model):
        by_class: dict[type, list] = {}
        for call in graph_calls(model):
            op = call.operation
            if not isinstance(op, keras.layers.Layer) and op not in by_class.get(type(op), []):
                by_class.setdefault(type(op), []).append(op)
        return by_class

    old_ops = raw_ops(old_model)
    if not old_ops:
        return
    for cls, fresh in raw_ops(new_model).items():
        original = old_ops.get(cls, [])
        if len(original) == len(fresh):
            for new_op, old_op in zip(fresh, original):
                new_op.name = old_op.name


# --- weight feeding: create variables from kept values --------------------


@dataclasses.dataclass
class WeightFeed:
    """Values offered to the variables a new layer creates while it builds.

    A variable asking for (name, shape, dtype) that matches an offered old
    variable is created straight from its value, so its initializer never
    runs (about half of a naive clone's time). `fed` records what was used.
    """

    old_variables: list
    used: set = dataclasses.field(default_factory=set)
    fed: dict = dataclasses.field(default_factory=dict)  # id(new var) -> old var
    initializers: dict = dataclasses.field(default_factory=dict)  # id(new var) -> initializer
    ready: dict = dataclasses.field(default_factory=dict)  # the feeder's `make_ahead` variables

    def take(self, name, shape, dtype):
        shape = tuple(int(s) for s in shape)
        for index, old in enumerate(self.old_variables):
            if index in self.used:
                continue
            if old.name == name and variable_shape(old) == shape and (
                dtype is None or keras.backend.standardize_dtype(dtype) == old.dtype
            ):
                self.used.add(index)
                return old
        return None


_active_feeds: dict[int, WeightFeed] = {}


class WeightFeeder:
    """Context in which registered new layers build their variables from old values.

    >>> feeder = WeightFeeder()
    >>> with feeder:
    ...     layer = keras.layers.Dense(2)
    ...     old = keras.layers.Dense(2); old.build((None, 3))
    ...     feed = feeder.register(layer, old)
    ...     layer.build((None, 3))
    >>> bool((layer.kernel.numpy() == old.kernel.numpy()).all())
    True
    """

    def __init__(self):
        self._registered: list[int] = []
        self._original = None
        self._original_initialize: Any = None
        self._ready: dict = {}  # id(old keras variable) -> its copy, made ahead (`make_ahead`)

    def make_ahead(self, variables) -> None:
        """Make the copies of `variables` (a model's weights) in one go, before the walk.

        TensorFlow only (see `_variables_made_ahead`); a fresh layer's
        `add_weight` fed one of them takes its copy when it is the variable
        Keras would make there (`_made_ahead_fits`), and makes its own otherwise.
        """
        self._ready.update(_variables_made_ahead(variables))

    def register(self, new_layer, old_layer) -> WeightFeed:
        """Offer `old_layer`'s variables to `new_layer` (and its sub-layers) when it builds."""
        feed = WeightFeed(layer_variables(old_layer), ready=self._ready)
        for sub in sub_layers(new_layer):
            _active_feeds[id(sub)] = feed
            self._registered.append(id(sub))
        return feed

    def __enter__(self):
        from keras.src.layers.layer import Layer

        original = Layer.add_weight
        if getattr(original, "_kerawidgets_feeding", False):
            return self  # an outer feeder already patched it
        self._original = original

        def add_weight(self, shape=None, initializer=None, dtype=None, *args, **kwargs):
            feed = _active_feeds.get(id(self))
            if feed is None or args:
                return original(self, shape, initializer, dtype, *args, **kwargs)
            wanted_dtype = dtype if dtype is not None else self.variable_dtype
            old = feed.take(kwargs.get("name"), () if shape is None else shape, wanted_dtype)
            if old is None:
                return original(self, shape, initializer, dtype, **kwargs)
            def from_old_value(shape, dtype=None, old=old):
                # Read when the variable initialises, not now: a layer built while
                # Keras traces its owner's call (jax's `eval_shape`) creates variables
                # whose initialisation waits until the trace ends; a copy made here
                # would be a tracer, and leak into the copy's weights.
                return independent_value(old)

            # Its copy made ahead, if any: taken when it fits (`_install_made_ahead`).
            from_old_value._kerawidgets_ahead = feed.ready.pop(id(old), None)  # type: ignore[attr-defined]
            variable = original(self, shape, from_old_value, dtype, **kwargs)
            feed.fed[id(variable)] = old
            feed.initializers[id(variable)] = initializer
            return variable

        add_weight._kerawidgets_feeding = True  # type: ignore[attr-defined]
        Layer.add_weight = add_weight
        self._original_initialize = _install_made_ahead()
        return self

    def __exit__(self, *exc):
        from keras.src.layers.layer import Layer

        for key in self._registered:
            _active_feeds.pop(key, None)
        self._registered.clear()
        self._ready.clear()  # copies no fresh layer took
        if self._original is not None:
            Layer.add_weight = self._original
            self._original = None
        if self._original_initialize is not None:
            _tensorflow_variable_class()._initialize_with_initializer = self._original_initialize
            self._original_initialize = None
        return False


# --- TensorFlow variables made ahead -----------------------------------------


@dataclasses.dataclass(frozen=True)
class _MadeAhead:
    """A `tf.Variable` holding a copy of an original weight, made before the walk, and
    the TensorFlow context it was made in (`_made_ahead_fits` compares them)."""

    variable: Any  # tf.Variable
    name: str  # the Keras variable name it was made under
    scope: str  # TensorFlow's eager name scope it was made in
    device: Any  # TensorFlow's current device then


def _tensorflow_variable_class():
    from keras.src.backend.tensorflow.core import Variable

    return Variable


def _plain_tensorflow_context() -> bool:
    """Eager, no `tf.distribute` strategy, no variable creator scope: `tf.Variable(...)`
    makes a plain `ResourceVariable` here, whoever calls it."""
    import tensorflow as tf
    from tensorflow.python.framework import ops

    return (tf.executing_eagerly() and not tf.distribute.has_strategy()
            and not ops.get_default_graph()._variable_creator_stack)


def _variables_made_ahead(variables) -> dict:
    """TensorFlow: a fresh `tf.Variable` with a copy of each of `variables`' values, made in
    one tight loop, keyed by `id(keras variable)`; an empty dict on other backends.

    Each is made as Keras' `Variable._initialize` makes a fed weight's variable
    (`tf.Variable(value, dtype, trainable, name, aggregation, synchronization)`),
    with the original's flags (TensorFlow keeps the `trainable` it was made with;
    Keras' own flag may have changed since), under the original's TensorFlow name
    scope. Made one after another, away from the layer code of the walk, a
    variable costs about half as much process CPU as when each is made while its
    layer builds (DenseNet121: 606 variables, about 0.09 s instead of 0.18 s; the
    same TensorFlow code, it just stays hot in the processor's caches).
    The value is read with TensorFlow's raw `ReadVariableOp`: the original is
    not marked as read, and no gradient tape watches it.
    """
    if keras.backend.backend() != "tensorflow" or not _plain_tensorflow_context():
        return {}
    import tensorflow as tf
    from tensorflow.python.eager import context
    from tensorflow.python.ops import gen_resource_variable_ops, resource_variable_ops

    ready = {}
    device = context.context().device_name
    for variable in variables:
        value: Any = getattr(variable, "_value", None)
        if (type(value) is not resource_variable_ops.ResourceVariable
                or value.dtype in (tf.variant, tf.resource)):
            continue
        scope_of, _, name = value.name.rpartition("/")
        if name != f"{variable.name}:0":
            continue
        try:
            with tf.name_scope(scope_of + "/" if scope_of else ""):  # absolute, or the root
                scope = context.context().scope_name
                copy = tf.Variable(
                    gen_resource_variable_ops.read_variable_op(value.handle, value.dtype),
                    dtype=value.dtype, trainable=value.trainable, name=variable.name,
                    aggregation=value.aggregation, synchronization=value.synchronization,
                )
        except Exception:  # made the usual way when its layer builds
            continue
        ready[id(variable)] = _MadeAhead(copy, variable.name, scope, device)
    return ready


def _made_ahead_fits(ahead: _MadeAhead, variable) -> bool:
    """Whether `ahead.variable` is exactly the `tf.Variable` Keras' `_initialize` would make
    for the Keras `variable` being initialised here: same name under the same name
    scope (so the same TensorFlow name), device, dtype, shape, trainable flag,
    aggregation and synchronization, in a plain eager context."""
    from tensorflow.python.eager import context

    made, ctx = ahead.variable, context.context()
    return (
        _plain_tensorflow_context()
        and type(variable)._initialize is _tensorflow_variable_class()._initialize
        and variable.name == ahead.name and ctx.scope_name == ahead.scope
        and made.name == f"{ctx.scope_name}{variable.name}:0"  # TensorFlow's eager naming
        and ctx.device_name == ahead.device
        and made.dtype.name == variable._dtype
        and tuple(made.shape) == tuple(variable._shape)
        and made.trainable is bool(variable.trainable)
        # `is`: TensorFlow's two aggregation enums compare equal, but are kept as given
        and made.aggregation is variable._map_aggregation(variable.aggregation)
        and made.synchronization is variable._map_synchronization(variable.synchronization)
    )


def _install_made_ahead():
    """TensorFlow: let Keras' `Variable._initialize_with_initializer` take a fed weight's
    copy made ahead (`WeightFeeder.make_ahead`) when it fits; returns the method
    replaced (None when nothing was patched). Any other initializer, or a copy that
    does not fit, takes Keras' own path: Keras then makes the variable from the
    original's value itself, as it would without the copies made ahead."""
    if keras.backend.backend() != "tensorflow":
        return None
    import types

    cls = _tensorflow_variable_class()
    original = cls._initialize_with_initializer
    if getattr(original, "_kerawidgets_ahead", False):
        return None  # an outer feeder patched it

    def _initialize_with_initializer(self, initializer):
        ahead = None
        if type(initializer) is types.FunctionType:  # the feeder's `from_old_value`
            ahead = getattr(initializer, "_kerawidgets_ahead", None)
        if ahead is not None:
            initializer._kerawidgets_ahead = None  # taken at most once
            if _made_ahead_fits(ahead, self):
                return self._initialize(ahead.variable)  # Keras keeps a tf.Variable as is
        return original(self, initializer)

    _initialize_with_initializer._kerawidgets_ahead = True  # type: ignore[attr-defined]
    cls._initialize_with_initializer = _initialize_with_initializer
    return original


def independent_value(variable):
    """The variable's value in a buffer the new variable may own.

    TensorFlow copies on variable creation and assignment; jax and torch
    would share the array, and jax's `fit` donates (deletes) state buffers,
    which would break the original model.
    """
    value = variable.value
    if keras.backend.backend() == "tensorflow":
        return value
    return keras.ops.copy(value)


def assign_copy(target, source) -> None:
    target.assign(independent_value(source))


def reinitialize_variable(variable, initializer) -> None:
    """Give a variable that was fed an old value its own fresh initial value."""
    init = keras.initializers.get(
        initializer
        if initializer is not None
        else ("glorot_uniform" if "float" in variable.dtype else "zeros")
    )
    variable.assign(init(tuple(variable.shape), dtype=variable.dtype))


def layer_variables(layer) -> list:
    """All state of a layer, in Keras' own stable order (weights, then seeds)."""
    return list(layer.variables)


def variable_shape(variable) -> tuple:
    """A Keras variable's shape as a tuple of ints, read without building a shape object.

    Keras 3 (3.10 to 3.15) keeps it as a tuple in `_shape`; TensorFlow's
    `Variable.shape` wraps that in a new `tf.TensorShape` at every read
    (about 5 us, three reads per kept weight in a rebuild). Falls back to
    `tuple(variable.shape)` for anything else.

    >>> layer = keras.layers.Dense(3); layer.build((None, 2))
    >>> variable_shape(layer.kernel)
    (2, 3)
    """
    shape = getattr(variable, "_shape", None)
    if type(shape) is tuple:
        return shape
    return tuple(variable.shape)


class known_output_spec:
    """While active, `layer` answers shape inference with a known output spec.

    A fresh copy of an untouched layer, called on inputs with exactly the
    specs of the original call, produces exactly the original call's output
    spec; Keras would otherwise trace the layer's `call` in a scratch graph to
    find it out (about half of a symbolic call's time). Build, masks and the
    graph node are still done by Keras' own `Layer.__call__`.

    >>> layer = keras.layers.Dense(3)
    >>> with known_output_spec(layer, keras.KerasTensor((None, 3))):
    ...     out = layer(keras.Input((4,)))
    >>> out.shape
    (None, 3)
    """

    def __init__(self, layer, like):
        self.layer = layer
        self.like = like

    def _spec(self, *args, **kwargs):
        return _spec_like(self.like)

    def __enter__(self):
        object.__setattr__(self.layer, "compute_output_spec", self._spec)
        return self

    def __exit__(self, *exc):
        self.layer.__dict__.pop("compute_output_spec", None)
        return False


def _spec_like(like):
    return keras.KerasTensor(
        like.shape, dtype=like.dtype, sparse=bool(getattr(like, "sparse", False)),
        ragged=bool(getattr(like, "ragged", False)),
    )


def call_as_recorded(layer, original, args, kwargs, like):
    """Add a call of `layer` to the new graph, with the output spec `like`, cheaply.

    For a fresh copy of an untouched `original`, called on inputs with exactly
    the specs of the original call: build it as the original was built, then
    record the graph node, which is all a symbolic `Layer.__call__` does here.
    That skips Keras' per-call argument binding and checks (about a third of
    a rebuild's time on a model of many small layers). Returns `None`, having
    changed nothing but perhaps built the layer, when the call needs the full
    `Layer.__call__`: masks, a custom `__call__`, a layer Keras builds by
    tracing its `call`, or an active distribution.

    >>> old = keras.layers.Dense(3)
    >>> old_out = old(keras.Input((4,)))
    >>> new = keras.layers.Dense(3)
    >>> inp = keras.Input((4,))
    >>> out = call_as_recorded(new, old, (inp,), {}, old_out)
    >>> out.shape, tuple(new.kernel.shape), len(new._inbound_nodes)
    ((None, 3), (4, 3), 1)
    """
    from keras.src.backend.common.masking import get_keras_mask
    from keras.src.layers.layer import Layer
    from keras.src.ops.node import Node
    from keras.src.utils.python_utils import is_default

    if type(layer).__call__ is not Layer.__call__ or keras.distribution.distribution() is not None:
        return None
    tensors = [t for t in keras.tree.flatten((args, kwargs)) if isinstance(t, keras.KerasTensor)]
    if get_keras_mask(like) is not None or any(get_keras_mask(t) is not None for t in tensors):
        return None
    if not layer.built:
        shapes = getattr(original, "_build_shapes_dict", None)
        if shapes is None or is_default(layer.build):
            return None
        layer.build(**shapes)
    layer._called = True
    output = _spec_like(like)
    Node(operation=layer, call_args=args, call_kwargs=kwargs, outputs=output)
    return output


def complete_state(layer, original, args, kwargs) -> None:
    """Build the sub-layers of `layer` that its `build` left for the first call.

    A layer that creates sub-layers in `__init__` and builds them only when
    called (a `build` that does nothing, as keras-hub's `FusedMBConvBlock`)
    has fewer variables than `original` after `build` alone. Keras builds
    such state by tracing `call` on symbolic inputs; this does the same, so
    the sub-layers create their variables while the rebuild can still feed
    them the original values.

    >>> class Block(keras.layers.Layer):
    ...     def __init__(self, **kw):
    ...         super().__init__(**kw)
    ...         self.inner = keras.layers.Dense(2)
    ...     def build(self, shape):
    ...         pass
    ...     def call(self, x):
    ...         return self.inner(x)
    >>> old, new = Block(), Block()
    >>> _ = old(keras.Input((3,)))
    >>> new.build((None, 3))
    >>> complete_state(new, old, (keras.Input((3,)),), {})
    >>> len(new.variables)
    2
    """
    if not isinstance(layer, keras.layers.Layer) or not layer.built or not layer._layers:
        return  # without sub-layers, `build` made all there is (state locks after it)
    if len(layer.variables) >= len(original.variables):
        return
    from keras.src import backend

    with layer._open_name_scope():  # variable paths as Keras' own first call gives them
        backend.compute_output_spec(layer.call, *args, **kwargs)


def match_sub_layer_names(new, old) -> None:
    """Give `new`'s sub-layers the names of `old`'s (same structure, same classes).

    A sub-layer created in `__init__` without a name gets Keras' next free
    automatic name (`dense_7`), so a fresh copy would differ from the
    original in layer names and weight paths. Also undoes a layer renaming
    itself in `__init__` (keras-hub's `DepthwiseConvBlock` appends "_0").

    >>> class Wrap(keras.layers.Layer):
    ...     def __init__(self, **kw):
    ...         super().__init__(**kw)
    ...         self.inner = keras.layers.Dense(2)
    >>> old, new = Wrap(name="w"), Wrap(name="w")
    >>> match_sub_layer_names(new, old)
    >>> new.inner.name == old.inner.name
    True
    """
    if not old._layers and not new._layers:
        return
    new_subs, old_subs = sub_layers(new), sub_layers(old)
    if len(new_subs) != len(old_subs) or any(
        type(a) is not type(b) for a, b in zip(new_subs, old_subs)
    ):
        return
    for fresh, original in zip(new_subs, old_subs):
        if fresh.name != original.name:
            fresh.name = original.name


def same_specs(old_tensors, new_tensors) -> bool:
    """Whether two lists of symbolic tensors have equal shapes, dtypes and sparsity."""
    if len(old_tensors) != len(new_tensors):
        return False
    return all(
        tuple(a.shape) == tuple(b.shape)
        and a.dtype == b.dtype
        and bool(getattr(a, "sparse", False)) == bool(getattr(b, "sparse", False))
        for a, b in zip(old_tensors, new_tensors)
    )


def symbolic_output_spec(layer, input_shapes, dtype="float32"):
    """Output shape(s) of `layer` for `input_shapes`, computed without building weights."""
    if isinstance(input_shapes, list):
        inputs = [keras.KerasTensor(tuple(s), dtype=dtype) for s in input_shapes]
    else:
        inputs = keras.KerasTensor(tuple(input_shapes), dtype=dtype)
    return layer.compute_output_spec(inputs)


def fresh_output_spec(operation, args, kwargs):
    """Output spec of a fresh, unbuilt copy of `operation` called on `args`, no weight built.

    Raises what Keras raises when the copy cannot take these inputs. Returns
    None when that cannot be told without building weights: a layer with
    weights and no `compute_output_shape` (Keras would trace its `call`,
    which needs them), a nested model, or a layer that cannot be re-created
    from its config.

    >>> spec = fresh_output_spec(keras.layers.Dense(3), (keras.KerasTensor((None, 5)),), {})
    >>> spec.shape
    (None, 3)
    """
    from keras.src.utils.python_utils import is_default

    if not isinstance(operation, keras.layers.Layer):
        return operation.compute_output_spec(*args, **kwargs)  # a stateless op (x + y, slicing)
    if is_model(operation):
        return None
    if is_default(operation.compute_output_shape) and operation.weights:
        return None
    try:
        fresh = type(operation).from_config(operation.get_config())
    except Exception:
        return None
    return fresh.compute_output_spec(*args, **kwargs)


# --- running part of a graph (kerawidgets.probe) ----------------------------


def run_call(call: GraphCall, tensor_map: dict, training=False):
    """Run one graph call eagerly on concrete values, as a Functional model would.

    `tensor_map` maps `id(symbolic tensor)` to its value; the call's recorded
    arguments (`mask=`, constants...) are replayed and `training` is injected
    where the operation accepts it (Keras' own `operation_fn` does the same).
    Returns the call's outputs as a flat list, in `call.output_tensors` order.
    Running a call this way adds no node to the operation (unlike building a
    `keras.Model` on intermediate tensors, which clones the nodes it reuses).
    """
    args, kwargs = call.call_arguments(tensor_map)
    context = getattr(call.operation, "_call_context_args", None)
    if context is None:
        context = {"training"} if getattr(call.operation, "_call_has_training_arg", False) else ()
    if training is not None and "training" in context:
        kwargs["training"] = training
    outputs = call.operation(*args, **kwargs)
    return keras.tree.flatten(outputs)


def to_numpy_view(value):
    """`value` as a numpy array without copying where the backend allows (CPU tensors).

    TensorFlow and JAX hand out their buffer (read-only); a torch CPU tensor is
    detached and shares its buffer (`_torch_view`). `keras.ops.convert_to_numpy`
    copies on TensorFlow and torch, which for a probe over every layer of a
    large model is most of the time spent.
    """
    if isinstance(value, np.ndarray):
        return value
    if keras.backend.backend() == "torch":
        return _torch_view(value)
    try:
        return np.asarray(value)
    except Exception:  # a backend value numpy cannot read directly
        return np.asarray(keras.ops.convert_to_numpy(value))


def value_to_feed(value):
    """A layer call's output as a later call may be fed it: the value itself, except a torch
    tensor, detached (same buffer) so that holding it does not hold the autograd graph
    that made it, and every activation saved in that graph with it.

    >>> tuple(value_to_feed(keras.ops.ones((2,))).shape)
    (2,)
    """
    if keras.backend.backend() == "torch" and hasattr(value, "detach"):
        return value.detach()
    return value


def _torch_view(value):
    """A torch tensor as a numpy array sharing its buffer where torch allows it (a CPU
    tensor of a numpy dtype), else Keras' copy. Keras' `convert_to_numpy` copies every
    tensor (`np.array(tensor)`): at 224x224 that copy cost as much as the summary."""
    import torch

    if (isinstance(value, torch.Tensor) and value.device.type == "cpu"
            and value.dtype is not torch.bfloat16):
        try:
            return value.detach().numpy()
        except (RuntimeError, TypeError):  # a conjugate or negative view, say
            pass
    return np.asarray(keras.ops.convert_to_numpy(value))


def strategy_scope(model):
    """The `tf.distribute` strategy `model`'s variables were made under, entered when no
    strategy is active; a context that does nothing otherwise (and on other backends).

    A model built inside ``strategy.scope()`` and edited later, outside it, gets its
    rebuilt variables (and its fresh optimizer's) mirrored like the original's, and
    the rebuilt model trains under that strategy (Keras records the strategy active
    when a model is made). On jax, Keras' global distribution
    (`keras.distribution.set_distribution`) applies to every variable by itself.
    """
    import contextlib

    if keras.backend.backend() != "tensorflow" or not model.weights:
        return contextlib.nullcontext()
    import tensorflow as tf

    if tf.distribute.has_strategy():
        return contextlib.nullcontext()
    value = getattr(model.weights[0], "value", None)
    if isinstance(value, tf.distribute.DistributedValues):
        return value.distribute_strategy.scope()
    return contextlib.nullcontext()


# --- Keras settings across threads --------------------------------------------------

#: Keras' per-thread settings a worker thread takes from the thread that starts it.
_THREAD_SETTINGS = ("distribution", "dtype_policy", "global_random_seed",
                    "global_seed_generator", "custom_objects_scope_dict", "torch_device",
                    "nnx_enabled", "object_name_uids")


def thread_settings():
    """The calling thread's Keras settings, as a context that installs them in another thread.

    Keras keeps its global settings per thread (`keras.src.backend.common.
    global_state`): a fresh thread sees no distribution
    (`keras.distribution.set_distribution`), no dtype policy, no random seed.
    A worker that trains on behalf of the kernel's thread enters this context
    first, so it trains as the kernel's thread would (layer-name counters
    are shared, so names stay unique). Call stacks (name scopes, the current
    call) are not carried over.

    >>> import threading, keras
    >>> keras.config.set_dtype_policy("float32"); settings = thread_settings()
    >>> seen = []
    >>> def work():
    ...     with settings:
    ...         seen.append(keras.config.dtype_policy().name)
    >>> t = threading.Thread(target=work); t.start(); t.join(); seen
    ['float32']
    """
    import contextlib

    from keras.src.backend.common import global_state

    state = global_state.GLOBAL_STATE_TRACKER
    values = {name: getattr(state, name) for name in _THREAD_SETTINGS
              if getattr(state, name, None) is not None}

    @contextlib.contextmanager
    def installed():
        tracker = global_state.GLOBAL_STATE_TRACKER
        before = {name: getattr(tracker, name, None) for name in values}
        for name, value in values.items():
            setattr(tracker, name, value)
        try:
            yield
        finally:
            for name, value in before.items():
                setattr(tracker, name, value)

    return installed()


# --- speed ----------------------------------------------------------------


class _SignatureCache:
    """Stands in for the `inspect` module inside Keras' layer modules: each function's
    signature (and argspec) is read once, not once per layer made or built.

    A `Signature` is immutable and depends only on the function (and whether it
    is bound), so the cached one is the one `inspect` would give. Anything
    else, and any callable that cannot be a dict key, goes to `inspect` itself.
    """

    def __init__(self, inspect_module):
        self._inspect = inspect_module
        self._signatures: dict = {}
        self._argspecs: dict = {}

    def __getattr__(self, name):
        return getattr(self._inspect, name)

    def signature(self, fn, *args, **kwargs):
        if args or kwargs:
            return self._inspect.signature(fn, *args, **kwargs)
        key = (getattr(fn, "__func__", fn), type(fn))
        try:
            return self._signatures[key]
        except KeyError:
            found = self._signatures[key] = self._inspect.signature(fn)
            return found
        except TypeError:  # not hashable
            return self._inspect.signature(fn)

    def getfullargspec(self, fn):
        try:
            return self._argspecs[fn]
        except KeyError:
            found = self._argspecs[fn] = self._inspect.getfullargspec(fn)
            return found
        except TypeError:
            return self._inspect.getfullargspec(fn)


class cached_signatures:
    """While active, Keras reads each layer class's `__init__`, `call` and `build`
    signatures once, not for every layer it makes and builds (about 5% of a
    rebuild of DenseNet121's 429 small layers). Re-entrant; restores Keras'
    own `inspect` on exit.

    >>> with cached_signatures():
    ...     a, b = keras.layers.Dense(2), keras.layers.Dense(3)
    >>> a._call_signature is b._call_signature
    True
    """

    _depth = 0

    def __enter__(self):
        import inspect

        from keras.src.layers import layer
        from keras.src.ops import operation

        cls = type(self)
        if cls._depth == 0:
            cache = _SignatureCache(inspect)
            operation.inspect = cache
            layer.inspect = cache
        cls._depth += 1
        return self

    def __exit__(self, *exc):
        import inspect

        from keras.src.layers import layer
        from keras.src.ops import operation

        cls = type(self)
        cls._depth -= 1
        if cls._depth == 0:
            operation.inspect = inspect
            layer.inspect = inspect
        return False


class attributes_fast:
    """While active, a layer's attribute assignments skip the trackers that do nothing for them.

    On TensorFlow, every `self.x = value` in a layer's `__init__` and `build`
    passes through three trackers: Keras' (`Layer.__setattr__`: files
    variables, layers, metrics and seed generators; wraps lists, dicts and
    sets in `TrackedList`...), then `KerasAutoTrackable.__setattr__` and
    TensorFlow's `AutoTrackable.__setattr__` (checkpoint dependencies of
    trackable values, TensorFlow's own list and dict wrappers). A rebuild of
    DenseNet121 makes about 36 000 such assignments, at about 5 us each.

    - A *plain* value (a bool, a string, None, a function, an initializer, a
      dtype policy...: a type none of the three tracks or wraps; three
      quarters of them) ends in `object.__setattr__` after the check that
      skips `self.x = self.x`: done directly.
    - A list, dict or set (a fifth of them) is wrapped by Keras' own tracker
      (which files the layers and variables inside it), as before; the
      wrapper is then only noted in the layer's `_tracked` names by
      `KerasAutoTrackable` and left alone by TensorFlow: done directly. While
      both Keras' and TensorFlow's tracking are off (Keras'
      `_initialize_tracker` making a layer's stores) no tracker touches it.

    Everything else (variables, layers, tuples, any trackable, a bare list
    while only Keras' tracking is off) and any layer class whose attribute
    path is not exactly Keras 3.15's on TensorFlow (its own `__setattr__` in
    the chain, its own tracker or `_setattr_hook`) takes Keras' own path.
    The resulting attributes, tracked state and checkpoint dependencies are
    the ones Keras' own path makes (`tests/test_adapter_attributes.py`
    compares them attribute by attribute). Relies on Keras 3.15's
    `Layer.__setattr__`, `Layer._initialize_tracker`,
    `Operation._setattr_hook`, `keras.src.utils.tracking` and
    `keras.src.backend.tensorflow.trackable`, and TensorFlow's
    `AutoTrackable`; does nothing on other backends or when any of them is
    missing (Keras' own `__setattr__` stays). Re-entrant.

    Only the thread that entered it takes the shortcuts: the patched
    `Layer.__setattr__` is installed for the whole process while any thread is
    inside, but a layer made on another thread meanwhile goes through Keras'
    own `__setattr__` (a per-thread flag, `_active`). Several threads may be
    inside at once; Keras' own method is put back when the last one leaves.

    >>> with attributes_fast():
    ...     layer = keras.layers.Dense(2, name="d")
    >>> layer.name, layer.units, layer.built, type(layer._losses).__name__
    ('d', 2, False, 'TrackedList')
    """

    _depth = 0  # contexts open, all threads together
    _lock = threading.Lock()
    _active = threading.local()  # `.depth`: contexts open in this thread
    _original: Any = None
    _eligible: dict = {}  # layer class -> whether its attribute path is the known one
    _kinds: dict = {}  # value type -> "plain", "container" or "" (Keras' own path)

    def __enter__(self):
        cls = type(self)
        with cls._lock:
            if cls._depth == 0:
                cls._install()
            cls._depth += 1
        cls._active.depth = getattr(cls._active, "depth", 0) + 1
        return self

    def __exit__(self, *exc):
        cls = type(self)
        cls._active.depth -= 1
        with cls._lock:
            cls._depth -= 1
            if cls._depth == 0 and cls._original is not None:
                from keras.src.layers.layer import Layer

                Layer.__setattr__ = cls._original
                cls._original = None
                cls._eligible.clear()  # no class kept alive by the caches after the rebuild
                cls._kinds.clear()
        return False

    @classmethod
    def _install(cls) -> None:
        if keras.backend.backend() != "tensorflow":
            return
        parts = _tensorflow_setattr_parts()
        if parts is None:
            return
        cls._original = parts.original
        parts.layer.__setattr__ = _fast_setattr(parts, cls._eligible, cls._kinds, cls._active)


@dataclasses.dataclass(frozen=True)
class _SetattrParts:
    """What `attributes_fast` needs from Keras and TensorFlow (`_tensorflow_setattr_parts`)."""

    layer: Any  # keras.src.layers.layer.Layer
    original: Any  # its own __setattr__
    after_layer: Any  # KerasAutoTrackable.__setattr__: what Layer.__setattr__ calls next
    class_is_known: Any  # layer class -> bool
    kind_of: Any  # value type -> "plain", "container" or ""
    tracked_types: tuple  # Keras' TrackedList, TrackedDict, TrackedOrderedDict, TrackedSet
    tracking_enabled: Any  # keras.src.utils.tracking.is_tracking_enabled


def _fast_setattr(parts: _SetattrParts, eligible: dict, kinds: dict, active):
    """`Layer.__setattr__` with the shortcuts `attributes_fast` describes, for the threads
    whose `active.depth` is set (Keras' own `__setattr__` for any other thread)."""
    original, after_layer, tracked_types = parts.original, parts.after_layer, parts.tracked_types
    tracking_enabled, setter = parts.tracking_enabled, object.__setattr__

    def __setattr__(self, name, value):
        if not getattr(active, "depth", 0):  # a thread not rebuilding: Keras' own path
            return original(self, name, value)
        cls, value_type = type(self), type(value)
        known = eligible.get(cls)
        if known is None:
            known = eligible[cls] = parts.class_is_known(cls)
        kind = kinds.get(value_type)
        if kind is None:
            kind = kinds[value_type] = parts.kind_of(value_type)
        if not (known and kind):
            return original(self, name, value)
        if name != "_tracker" and "_tracker" not in self.__dict__:  # the layer's first attribute
            if kind != "plain":
                return original(self, name, value)
            if not hasattr(self, "_tracker"):
                self._initialize_tracker()  # as Keras' setattr does first
        wrapped = False
        if kind == "container":
            if name == "_tracker":
                return original(self, name, value)
            if tracking_enabled():
                value = self._tracker.track(value)  # Keras' own wrapper, its items filed
                if type(value) not in tracked_types:
                    return after_layer(self, name, value)
                wrapped = True
            elif getattr(self, "_self_setattr_tracking", True):
                return original(self, name, value)  # TensorFlow would wrap the bare list
            # else (Keras' `_initialize_tracker`): no tracker touches it
        try:
            if getattr(self, name) is value:  # `self.x = self.x`: the trackers stop here
                return
        except AttributeError:
            pass
        if wrapped and getattr(self, "_self_setattr_tracking", True) and hasattr(self, "_tracked"):
            self._tracked.append(name)  # as KerasAutoTrackable notes a tracked wrapper
        setter(self, name, value)

    return __setattr__


def _tensorflow_setattr_parts() -> _SetattrParts | None:
    """The pieces of Keras and TensorFlow `attributes_fast` relies on, or None when
    they are not the known ones (then Keras' own `Layer.__setattr__` stays)."""
    try:
        from collections import OrderedDict

        from keras.src import backend
        from keras.src.backend.tensorflow.trackable import KerasAutoTrackable
        from keras.src.layers.layer import Layer
        from keras.src.metrics.metric import Metric
        from keras.src.ops.operation import Operation
        from keras.src.random.seed_generator import SeedGenerator
        from keras.src.utils import tracking
        from tensorflow.python.trackable import autotrackable, base, data_structures
    except ImportError:
        return None
    original = Layer.__setattr__
    if getattr(original, "__module__", "") != Layer.__module__:
        return None  # someone else's patch: leave it alone
    chain = [KerasAutoTrackable, autotrackable.AutoTrackable, object]
    tracked_types = (tracking.TrackedList, tracking.TrackedDict, tracking.TrackedOrderedDict,
                     tracking.TrackedSet)
    containers = (list, dict, set, OrderedDict, *tracked_types)
    # What any of the three trackers files, wraps or tracks.
    tracked = (backend.Variable, Layer, Metric, SeedGenerator, base.Trackable,
               data_structures.NoDependency, list, tuple, dict, set)
    if any(type(kind) is not type for kind in tracked):
        return None  # a metaclass could make isinstance differ from issubclass

    def class_is_known(cls) -> bool:
        mro = cls.__mro__
        if Layer not in mro:
            return False
        after = [k for k in mro[mro.index(Layer) + 1:] if "__setattr__" in vars(k)]
        return (after == chain and cls._setattr_hook is Operation._setattr_hook
                and cls._initialize_tracker is Layer._initialize_tracker)

    def kind_of(value_type) -> str:
        if any("__class__" in vars(k) for k in value_type.__mro__[:-1]):
            return ""  # a proxy: isinstance may see another class
        if value_type in containers:
            return "container"
        return "" if issubclass(value_type, tracked) else "plain"

    return _SetattrParts(Layer, original, KerasAutoTrackable.__setattr__, class_is_known,
                         kind_of, tracked_types, tracking.is_tracking_enabled)
