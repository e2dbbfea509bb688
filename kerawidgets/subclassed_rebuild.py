"""Edits of a subclassed model: a copy of the same class with the edited sub-layer swapped in.

`rebuild(model, edits)` copies the model object (`adapter.copy_model_object`:
same class and attributes, every variable copied bit for bit, no compile
state), makes a fresh sub-layer for each edit (from the old one's config
with the new activation, or the replacement), builds it with the old one's
build shapes, copies the old weights into it when they fit, and puts it in
the old one's place (attribute, list item or dict value, and the parent's
tracked layers, so weights keep their order). The result is checked by
tracing it (`subclassed.trace`): an edit that changes a layer's output shape
is refused, naming the layer and both shapes. A compiled model is recompiled
from its compile config. `type(new) is type(model)`, so `fit`, a custom
`train_step` and the class's own methods keep working.

>>> import keras, numpy as np
>>> from kerawidgets.edits import SetActivation
>>> class Net(keras.Model):
...     def __init__(self, **kwargs):
...         super().__init__(**kwargs)
...         self.blocks = [keras.layers.Dense(4, activation="relu", name=f"b{i}") for i in range(2)]
...     def call(self, x):
...         return self.blocks[1](self.blocks[0](x))
>>> net = Net(name="net")
>>> _ = net(np.ones((1, 3), "float32"))
>>> result = rebuild(net, [SetActivation("blocks[1]", "gelu")])
>>> type(result.model) is Net, result.model.blocks[1].activation.__name__, net.blocks[1].activation.__name__
(True, 'gelu', 'relu')
>>> result.report["b1"].status, result.report["b1"].reason
('kept', 'activation relu -> gelu')
"""

from __future__ import annotations

import keras

from kerawidgets import _keras_adapter as adapter
from kerawidgets import activations, subclassed
from kerawidgets.edits import ReplaceLayer, SetActivation
from kerawidgets.errors import InvalidEditError, KerawidgetsError, ShapeMismatchError, keras_reason
from kerawidgets.naming import shape_text
from kerawidgets.report import LayerOutcome, RebuildReport


def rebuild(model, edits):
    """Apply `edits` (SetActivation, ReplaceLayer) to a copy of the subclassed `model`."""
    from kerawidgets.rebuild import Rebuild

    before = _trace_or_none(model)
    new = adapter.copy_model_object(model)
    outcomes: dict = {}
    for edit in edits:
        entry = _target(new, edit)
        fresh, outcome = _fresh(entry, edit)
        _check_output(model, entry, fresh, before)
        _swap(entry, fresh)
        outcomes[entry.path] = outcome
    adapter.retrack_variables(new)
    after = _check_call(model, new, before)
    if after is not None and adapter.graph_view(model) is not None:  # an editor's model
        adapter.match_raw_op_names(adapter.graph_view(model), after.functional)
        adapter.set_graph_view(new, after.functional)
    notes = [*([before.note] if before else []), *_compile(model, new),
             *save_notes(new, list(outcomes))]
    rows = [outcomes.get(e.path) or _untouched(e) for e in subclassed.layer_tree(new)
            if e.path in outcomes or subclassed._is_leaf(e.layer)]
    if after is not None:  # in graph order, as a functional rebuild's report
        order = {path: i for i, path in enumerate(_graph_paths(after.functional))}
        rows.sort(key=lambda row: order.get(row.layer, len(order)))
    return Rebuild(new, RebuildReport(rows, notes), tuple(edits))


def _target(model, edit) -> subclassed.TreeEntry:
    if not isinstance(edit, (SetActivation, ReplaceLayer)):
        raise InvalidEditError(
            f"{edit.describe()}: on a subclassed model ({type(model).__name__}) kerawidgets can "
            "set an activation (SetActivation) or replace a sub-layer (ReplaceLayer); insert or "
            "remove a layer by changing the class's `call`.")
    if not isinstance(edit.layer, str):
        raise InvalidEditError(
            f"{edit.describe()}: on a subclassed model ({type(model).__name__}), name one "
            "sub-layer by its name or attribute path, like 'blocks[1].inner'.")
    return subclassed.find(model, edit.layer)


def _fresh(entry, edit):
    """A fresh layer for the edit, built like the old one, old weights copied if they fit."""
    old = entry.layer
    if isinstance(edit, SetActivation):
        fresh, change = _with_activation(entry, edit)
    else:
        if len(edit.replacement) != 1 or edit.replacement[0].model is not None:
            raise InvalidEditError(
                f"{edit.describe()}: in a subclassed model a sub-layer is replaced by one layer.")
        fresh = edit.replacement[0].build(name=old.name)
        change = f"replaced by {edit.replacement[0].describe()}"
        if type(fresh) is not type(old):
            change = f"{type(old).__name__} {change}"
        if edit.trainable is not None:
            fresh.trainable = edit.trainable
    build = old.get_build_config() if old.built else None
    if build:
        try:
            fresh.build_from_config(build)
        except Exception as error:
            raise InvalidEditError(
                f"{edit.describe()}: the new layer cannot take {entry.attribute!r}'s input "
                f"{build}: {keras_reason(error)}") from error
    kept = (type(fresh) is type(old) or isinstance(edit, SetActivation)) and _copy_weights(old, fresh)
    status = "kept" if kept else ("new" if type(fresh) is not type(old) else "reinitialised")
    reason = change if kept or not old.weights else f"{change}; old weights not reused"
    return fresh, LayerOutcome(entry.path, type(fresh).__name__, status, reason,
                               len(fresh.weights), True)


def _with_activation(entry, edit):
    from kerawidgets.plan import ACTIVATION_LAYER_CLASSES

    old = entry.layer
    current = activations.activation_settings(old).get(edit.attribute)
    if isinstance(old, ACTIVATION_LAYER_CLASSES) and edit.attribute == "activation":
        current = activations.layer_activation(old)
        fresh = keras.layers.Activation(edit.activation, name=old.name)
    elif current is None:
        raise InvalidEditError(
            f"Layer {entry.attribute!r} ({type(old).__name__}) has no {edit.attribute!r} "
            f"setting; its activation settings: {sorted(activations.activation_settings(old))}.")
    else:
        config = {**old.get_config(), edit.attribute: edit.activation}
        fresh = type(old).from_config(config)
    return fresh, f"{edit.attribute} {current} -> {edit.activation}"


def _copy_weights(old, fresh) -> bool:
    """Copy every variable of `old` into `fresh` if they match one for one in shape."""
    if not fresh.built and old.weights:
        return False
    if [tuple(v.shape) for v in old.weights] != [tuple(v.shape) for v in fresh.weights]:
        return False
    for target, source in zip(fresh.weights, old.weights):
        adapter.assign_copy(target, source)
    return True


def _swap(entry, fresh) -> None:
    adapter.replace_sub_layer(entry.parent, entry.layer, fresh)
    if adapter.is_sequential(entry.parent):
        adapter.rebuild_sequential(entry.parent)


def _graph_paths(functional) -> list:
    from kerawidgets.graph import ModelGraph

    return [node.path for node in ModelGraph.from_model(functional).nodes]


def _untouched(entry) -> LayerOutcome:
    return LayerOutcome(entry.path, type(entry.layer).__name__, "kept", "untouched",
                        len(entry.layer.weights), False)


def _trace_or_none(model):
    """The traced original, or None when its input shapes are unknown (an unbuilt model)."""
    from kerawidgets.errors import UnsupportedModelError

    view = adapter.graph_view(model)
    if view is not None:  # the editor's model: its graph is traced already
        return subclassed.Trace(model, None, view, {}, [])
    try:
        traced = subclassed.trace(model)
    except UnsupportedModelError:
        return None
    return traced if traced.functional is not None else None


def _check_output(model, entry, fresh, before) -> None:
    """Refuse a new layer whose output shape differs from the old one's where `call` uses it."""
    if before is None:
        return
    from kerawidgets.graph import ModelGraph

    graph = ModelGraph.from_model(before.functional)
    for node in graph.nodes_of_layer(entry.path):
        inputs = [keras.KerasTensor(shape) for shape in node.input_shapes]
        try:
            spec = fresh.compute_output_spec(inputs[0] if len(inputs) == 1 else inputs)
        except Exception:  # a layer taking several arguments: the trace after the swap checks it
            continue
        got = tuple(tuple(t.shape) for t in keras.tree.flatten(spec))
        if got != node.output_shapes:
            raise ShapeMismatchError(
                f"Replacing {entry.attribute!r} ({entry.path!r}) changes its output from "
                f"{shape_text(node.output_shapes[0])} to {shape_text(got[0])}; the layers after "
                f"it in {type(model).__name__}.call expect the old shape. Choose a replacement "
                "with the same output shape.", layer=entry.path,
                expected=node.output_shapes, got=got)


def _check_call(model, new, before):
    """Refuse edits after which `call` no longer runs on the original's input shapes."""
    if before is None:
        return None
    shapes = keras.tree.map_structure(lambda t: tuple(t.shape), before.functional.input)
    after = subclassed.trace(new, input_shape=shapes)
    if after.functional is None:
        raise KerawidgetsError(
            f"After the edit, {type(model).__name__}.call no longer runs on its inputs: "
            f"{after.reason}. Choose a replacement that takes and returns the same shapes.")
    return after


def _compile(model, new) -> list[str]:
    adapter.reset_compiled_functions(new)
    if not model.compiled:
        return []
    config = model.get_compile_config()
    if config is None:
        return ["The model was compiled; call compile() on the new model before fit()."]
    try:
        new.compile_from_config(config)
    except Exception as error:
        return [f"The model was compiled, but recompiling the copy failed ({keras_reason(error)}); "
                "call compile() on the new model before fit()."]
    return ["Recompiled with the original's compile settings (fresh optimizer state)."]


def save_notes(model, edited) -> list[str]:
    """What a `.keras` file of `model` would lose: edited layers its class's config cannot record."""
    problem = config_problem(model, edited)
    return [problem] if problem else []


def config_problem(model, paths=None) -> str:
    """Why `type(model).from_config(model.get_config())` would not re-create these sub-layers.

    Empty when it would (each sub-layer at `paths`, every one if None, comes
    back with the same class and settings).
    """
    cls = type(model).__name__
    try:
        twin = type(model).from_config(model.get_config())
    except Exception as error:
        return (f"{cls} cannot be re-created from its config ({keras_reason(error)}), so a saved "
                f"file cannot be reloaded: give {cls} a get_config() returning its __init__ "
                "arguments.")
    fresh = {e.attribute: e.layer for e in subclassed.layer_tree(twin)}
    for entry in subclassed.layer_tree(model):
        if (paths is not None and entry.path not in paths) or not subclassed._is_leaf(entry.layer):
            continue
        other = fresh.get(entry.attribute)
        if other is None or type(other) is not type(entry.layer) or (
                _settings(other) != _settings(entry.layer)):
            made, wanted = _difference(other, entry.layer)
            return (f"{cls}'s config cannot record the edit of {entry.attribute!r}: "
                    f"{cls}.__init__ makes {made} there, not {wanted}, so a saved file "
                    f"would come back without the edit. Take that setting as an argument of "
                    f"{cls}.__init__, use it when making the layer, and return it from "
                    "get_config().")
    return ""


def _difference(made, layer) -> tuple[str, str]:
    """The two layers in words, by class or by the settings that differ (`Dense(activation='relu')`)."""
    if made is None:
        return "nothing", type(layer).__name__
    if type(made) is not type(layer):
        return type(made).__name__, type(layer).__name__
    a, b = _settings(made), _settings(layer)
    keys = [k for k in b if a.get(k) != b[k]] or list(b)[:1]

    def words(settings):
        return f"{type(layer).__name__}({', '.join(f'{k}={settings.get(k)!r}' for k in keys)})"

    return words(a), words(b)


def _settings(layer) -> dict:
    config = layer.get_config()
    return {k: v for k, v in config.items() if k not in ("name", "dtype", "trainable")}
