"""Edits of a subclassed model: a copy of the same class with the edited sub-layer swapped in.

`rebuild(model, edits)` copies the model object (`adapter.copy_model_object`:
same class and attributes, every variable copied bit for bit, no compile
state), plans each edit as for any model (its targets found in the layer
tree: a name, a layer or attribute path, a class, a predicate), makes a
fresh sub-layer for each action (from the old one's config with the new
activation or settings, or the replacement; several replacement layers make
a `keras.Sequential` under the old name), builds it with the old one's
build shapes, copies the old weights into it when they fit, and puts it in
the old one's place (attribute, list item or dict value, and the parent's
tracked layers, so weights keep their order). The result is checked by
tracing it (`subclassed.trace`): an edit that changes a layer's output shape
is refused, naming the layer and both shapes. A compiled model is recompiled
from its compile config. `type(new) is type(model)`, so `fit`, a custom
`train_step` and the class's own methods keep working. `rebuild_nested` does
the same for a subclassed model nested in a functional one (the functional
rebuild walk calls it). Inserting or removing a layer would need a new
`call`: refused, with the `ReplaceLayer` that does the same.

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
from kerawidgets import activations, naming, subclassed
from kerawidgets.edits import InsertLayer, RemoveLayer
from kerawidgets.errors import InvalidEditError, KerawidgetsError, ShapeMismatchError, keras_reason
from kerawidgets.naming import shape_text
from kerawidgets.report import LayerOutcome, RebuildReport


def rebuild(model, edits):
    """Apply `edits` (SetActivation, SetSettings, ReplaceLayer) to a copy of the subclassed `model`."""
    from kerawidgets.rebuild import Rebuild

    def plans(new):  # each edit planned on the copy as the edits before it left it
        for edit in edits:
            _refuse_structural(new, edit)
            yield edit.plan(new)

    new, outcomes, before, after = _edited_copy(model, plans, ())
    if after is not None and adapter.graph_view(model) is not None:  # an editor's model
        adapter.match_raw_op_names(adapter.graph_view(model), after.functional)
        adapter.set_graph_view(new, after.functional)
    notes = [*([before.note] if before else []), *_compile(model, new),
             *save_notes(new, list(outcomes))]
    return Rebuild(new, RebuildReport(report_rows(new, outcomes, after, ()), notes), tuple(edits))


def rebuild_nested(model, plan, prefix, input_shape=None):
    """A copy of `model`, a subclassed model nested in a functional one at `prefix`, with the
    actions `plan` has for its sub-layers (``prefix + ("dense1",)``) applied.

    Returns (the copy, its report rows with outer paths, notes): the walk of the
    outer model calls the copy in the original's place (`rebuild._Walk`).
    """
    new, outcomes, _, after = _edited_copy(model, lambda new: [plan], prefix, input_shape)
    where = naming.layer_path(prefix)
    notes = [f"{where!r}: {note}" for note in save_notes(new, [naming.layer_path(
        naming.split_layer_path(path)[len(prefix):]) for path in outcomes])]
    return new, report_rows(new, outcomes, after, prefix), notes


def _edited_copy(model, plans, prefix, input_shape=None):
    """What `rebuild` and `rebuild_nested` both do: trace `model` (on `input_shape`, by
    default the shapes it was built with), copy it, apply the actions of each plan that
    `plans(copy)` yields under `prefix` (`apply_plan`), track the copy's new variables and
    check its `call` still runs (`_check_call`).

    Returns (the copy, its report rows by layer path, the trace before, the trace after).
    """
    before = _trace_or_none(model, input_shape)
    new = adapter.copy_model_object(model)
    outcomes: dict = {}
    for plan in plans(new):
        outcomes.update(apply_plan(model, new, plan, prefix, before))
    adapter.retrack_variables(new)
    return new, outcomes, before, _check_call(model, new, before)


def apply_plan(model, new, plan, prefix, before) -> dict:
    """Swap a fresh layer into `new` (a copy of `model`) for each action of `plan` under
    `prefix`; their report rows by layer path (with `prefix`)."""
    outcomes: dict = {}
    for path, call_index, action in plan.actions():
        if tuple(path[:len(prefix)]) != tuple(prefix) or len(path) == len(prefix):
            continue
        entry = _entry(new, tuple(path[len(prefix):]))
        if call_index is not None:
            raise InvalidEditError(
                f"{naming.layer_path(path)!r} is inside the subclassed {type(model).__name__}, "
                "whose layers are edited for every call: name the layer without ':k'.")
        if action.remove or action.insert_after:
            raise structural_refusal(type(model).__name__, action.edit, naming.layer_path(path),
                                     entry.layer)
        fresh, outcome = _fresh(entry, action, naming.layer_path(path))
        _check_output(model, entry, fresh, before)
        _swap(entry, fresh)
        outcomes[outcome.layer] = outcome
    return outcomes


def report_rows(new, outcomes, after, prefix) -> list:
    """One row per leaf layer of `new` (edited or untouched), in graph order when traced."""
    def edited_inside(names):  # a layer of a replacement (a Sequential): its row says it
        return any(naming.layer_path((*prefix, *names[:i])) in outcomes
                   for i in range(1, len(names)))

    rows = [outcomes.get(naming.layer_path((*prefix, *e.names)))
            or _untouched(e, prefix) for e in subclassed.layer_tree(new)
            if not edited_inside(e.names) and (
                naming.layer_path((*prefix, *e.names)) in outcomes or subclassed._is_leaf(e.layer))]
    if after is not None:  # in graph order, as a functional rebuild's report
        order: dict = {}
        for i, path in enumerate(_graph_paths(after.functional)):  # a group at its first node
            names = naming.split_layer_path(path)
            for k in range(1, len(names) + 1):
                order.setdefault(naming.layer_path((*prefix, *names[:k])), i)
        rows.sort(key=lambda row: order.get(row.layer, len(order)))
    return rows


def _entry(model, names) -> subclassed.TreeEntry:
    for entry in subclassed.layer_tree(model):
        if entry.names == names:
            return entry
    raise KerawidgetsError(f"{naming.layer_path(names)!r} is not a sub-layer of {model.name!r}.")


def _refuse_structural(model, edit) -> None:
    """Insert and Remove need a change of the class's `call`: refused, saying what works."""
    from kerawidgets import targets

    if not isinstance(edit, (InsertLayer, RemoveLayer)):
        return
    (target,) = targets.resolve(model, edit.layer_name or edit.layer, allow_many=False)
    raise structural_refusal(type(model).__name__, edit, target.path_str, target.layer)


def structural_refusal(cls, edit, where, layer) -> InvalidEditError:
    """Why an InsertLayer or RemoveLayer at `where` in a subclassed `cls` cannot apply, and
    the ReplaceLayer that does the same without changing `call`."""
    from kerawidgets.edits import LayerSpec

    why = (f"{cls} is a subclassed model: its `call` method decides which layers run and in "
           "which order, and kerawidgets does not change a class's code, only the layers it holds.")
    if isinstance(edit, RemoveLayer):
        return InvalidEditError(
            f"{edit.describe()}: {why} Replace it with a layer that passes its input on, "
            f"ReplaceLayer({where!r}, keras.layers.Identity()) (when its output has its input's "
            f"shape), or delete the line calling it in {cls}.call.")
    layers = ", ".join([LayerSpec.of(layer).to_code(keep_name=False),
                        *(spec.to_code() for spec in edit.layer)])
    return InvalidEditError(
        f"{edit.describe()}: {why} Replace {where!r} by itself followed by the new layers: "
        f"ReplaceLayer({where!r}, [{layers}]) puts a keras.Sequential of them under its name, "
        f"with its weights kept; or write the new layer into {cls}.__init__ and call it in "
        f"{cls}.call.")


def _fresh(entry, action, where):
    """A fresh layer for `action`, built like the old one, old weights copied if they fit."""
    old = entry.layer
    by_name = False
    if action.activation is not None:
        fresh, change = _with_activation(entry, *action.activation)
    elif action.configure:
        fresh, change = _with_settings(entry, action.configure)
        by_name = True
    else:
        fresh, change = _replacement(entry, action.replacement)
        if action.trainable is not None:
            fresh.trainable = action.trainable
    _build_like(entry, fresh, old, where)
    if by_name:
        from kerawidgets.rebuild import weights_by_name

        match = weights_by_name(old.weights, fresh.weights)
        kept = match is not None
        if match is not None:
            match.copy()
            change = "; ".join([change, *match.changes()])
    else:
        same = type(fresh) is type(old) or action.activation is not None
        kept = (same and _copy_weights(old, fresh)) or _copy_into_first(old, fresh)
    status = "kept" if kept else ("new" if type(fresh) is not type(old) else "reinitialised")
    reason = change if kept or not old.weights else f"{change}; old weights not reused"
    return fresh, LayerOutcome(where, type(fresh).__name__, status, reason, len(fresh.weights), True)


def _build_like(entry, fresh, old, where) -> None:
    build = old.get_build_config() if old.built else None
    if not build:
        return
    try:
        if adapter.is_sequential(fresh):
            fresh.build(build["input_shape"])
        else:
            fresh.build_from_config(build)
    except Exception as error:
        raise InvalidEditError(
            f"{where!r}: the new layer cannot take {entry.attribute!r}'s input "
            f"{build}: {keras_reason(error)}") from error


def _replacement(entry, specs):
    """The replacement of one layer; several become a `keras.Sequential` under the old name."""
    old = entry.layer
    if any(spec.model is not None for spec in specs):
        raise InvalidEditError(
            f"In the subclassed model, {entry.attribute!r} is replaced by layers, not by a "
            "sub-network model: give the replacement's layers as a list.")
    text = " -> ".join(spec.describe() for spec in specs)
    if len(specs) == 1:
        fresh = specs[0].build(name=old.name)
        change = f"replaced by {text}"
        return fresh, (f"{type(old).__name__} {change}" if type(fresh) is not type(old) else change)
    names: set = set()
    layers = []
    for index, spec in enumerate(specs):
        like_old = index == 0 and spec.class_name == type(old).__name__
        base = spec.name or (old.name if like_old else f"{old.name}_{spec.class_name.lower()}")
        name, k = base, 1
        while name in names:  # unique inside the Sequential
            name, k = f"{base}_{k}", k + 1
        names.add(name)
        layers.append(spec.build(name=name))
    return (keras.Sequential(layers, name=old.name),
            f"{type(old).__name__} replaced by Sequential({text})")


def _copy_into_first(old, fresh) -> bool:
    """A Sequential replacement whose first layer is like the old one takes its weights."""
    if not adapter.is_sequential(fresh) or not fresh.layers:
        return False
    first = fresh.layers[0]
    return type(first) is type(old) and bool(old.weights) and _copy_weights(old, first)


def _with_activation(entry, attribute, activation):
    from kerawidgets.plan import ACTIVATION_LAYER_CLASSES

    old = entry.layer
    current = activations.activation_settings(old).get(attribute)
    if isinstance(old, ACTIVATION_LAYER_CLASSES) and attribute == "activation":
        current = activations.layer_activation(old)
        fresh = keras.layers.Activation(activation, name=old.name)
    elif current is None:
        raise InvalidEditError(
            f"Layer {entry.attribute!r} ({type(old).__name__}) has no {attribute!r} "
            f"setting; its activation settings: {sorted(activations.activation_settings(old))}.")
    else:
        config = {**old.get_config(), attribute: activations.config_value(activation)}
        fresh = type(old).from_config(config)
    return fresh, f"{attribute} {current} -> {activation}"


def _with_settings(entry, changes):
    """The layer made again from its config with `changes` (a SetSettings edit)."""
    from kerawidgets.rebuild import apply_settings

    old = entry.layer
    config = old.get_config()
    change = apply_settings(config, changes)
    return type(old).from_config(config), change


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


def _untouched(entry, prefix=()) -> LayerOutcome:
    return LayerOutcome(naming.layer_path((*prefix, *entry.names)), type(entry.layer).__name__,
                        "kept", "untouched", len(entry.layer.weights), False)


def _trace_or_none(model, input_shape=None):
    """The traced original, or None when its input shapes are unknown (an unbuilt model)."""
    from kerawidgets.errors import UnsupportedModelError

    view = adapter.graph_view(model)
    if view is not None:  # the editor's model: its graph is traced already
        return subclassed.Trace(model, None, view, {}, [])
    try:
        traced = subclassed.trace(model, input_shape=input_shape)
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


def nested_config_problem(model) -> str:
    """`config_problem` of the first subclassed model nested in the functional `model` whose
    class cannot record its sub-layers' edits, with its path; empty when there is none."""
    from kerawidgets import targets

    outer: list = []
    for path, layer in targets.walk_layers(model):
        if not subclassed.is_subclassed(layer) or any(path[:len(p)] == p for p in outer):
            continue
        outer.append(path)
        problem = config_problem(layer, recreatable_only=True)
        if problem:
            return f"In {naming.layer_path(path)!r}, {problem}"
    return ""


def config_problem(model, paths=None, *, recreatable_only=False) -> str:
    """Why `type(model).from_config(model.get_config())` would not re-create these sub-layers.

    Empty when it would (each sub-layer at `paths`, every one if None, comes
    back with the same class and settings), and with `recreatable_only` when
    it cannot re-create the model at all (the reload check then says why).
    """
    cls = type(model).__name__
    try:
        twin = type(model).from_config(model.get_config())
    except Exception as error:
        if recreatable_only:
            return ""
        return (f"{cls} cannot be re-created from its config ({keras_reason(error)}), so a saved "
                f"file cannot be reloaded: give {cls} a get_config() returning its __init__ "
                "arguments.")
    fresh = {e.attribute: e.layer for e in subclassed.layer_tree(twin)}
    for entry in subclassed.layer_tree(model):
        leaf = subclassed._is_leaf(entry.layer)
        if (entry.path not in paths) if paths is not None else not leaf:
            continue
        other = fresh.get(entry.attribute)
        if other is None or type(other) is not type(entry.layer) or (
                leaf and _settings(other) != _settings(entry.layer)):
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
