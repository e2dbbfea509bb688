"""`rebuild(model, edits)`: a new model with the edits applied and every weight that fits kept.

The walk replays the original graph call by call, in topological order, on
fresh `keras.Input`s with fresh layers: the original model is never called,
so its graph, config and weights stay exactly as they were. Each fresh layer
is paired with its original, and builds its variables straight from the
original's values (no initializer runs for a kept weight). After the walk,
each pair is checked: weights that fit are kept bit for bit; a layer whose
weights no longer fit because an edit changed its input is refused (naming
it, with shapes) unless ``reinitialize="downstream"``.

>>> import keras, numpy as np
>>> from kerawidgets import rebuild
>>> from kerawidgets.edits import SetActivation
>>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="sigmoid", name="d")])
>>> result = rebuild(model, [SetActivation("d", "tanh")])
>>> result.report["d"].status
'kept'
>>> bool(np.array_equal(result.model.get_layer("d").kernel.numpy(), model.get_layer("d").kernel.numpy()))
True
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import inspect
from collections.abc import Sequence
from typing import Any

import keras

from kerawidgets import _keras_adapter as adapter
from kerawidgets import activations, arguments, model_class, naming
from kerawidgets.edits import Edit, LayerSpec, _non_default_config, as_edit
from kerawidgets.errors import (
    InvalidEditError,
    KerawidgetsError,
    LayerRecreationError,
    ShapeMismatchError,
    keras_reason,
)
from kerawidgets.naming import shape_text
from kerawidgets.plan import ACTIVATION_LAYER_CLASSES, Plan, plan_edit
from kerawidgets.report import LayerOutcome, RebuildReport

REINITIALIZE_CHOICES = (None, "downstream")


@dataclasses.dataclass(frozen=True)
class Rebuild:
    """The result of `rebuild`: the new model, the per-layer report, the edits applied."""

    model: keras.Model
    report: RebuildReport
    edits: tuple[Edit, ...] = ()

    def _repr_html_(self):
        return self.report._repr_html_()


def rebuild(model: keras.Model, edits: Edit | Sequence[Edit] = (), *,
            reinitialize: str | None = None) -> Rebuild:
    """Apply `edits` to a copy of `model`; return the copy and a per-layer report.

    Args:
        model: a Functional or built Sequential Keras model (left untouched).
        edits: an edit or a list of edits from `kerawidgets.edits`, applied in order.
        reinitialize: `None` (default) refuses an edit that makes a downstream
            layer's weights no longer fit; `"downstream"` re-initialises those
            layers instead and lists them in the report.

    With no edits, the result is an exact copy (same structure, names and
    bitwise-equal weights, no shared variables).
    """
    arguments.model(model)
    edits = arguments.edit_list(edits)
    if reinitialize not in REINITIALIZE_CHOICES:
        raise InvalidEditError(
            f"reinitialize must be None or 'downstream'; got {arguments.shorten(reinitialize)}."
        )
    edits = tuple(as_edit(e) for e in edits)
    from kerawidgets import subclassed, subclassed_rebuild

    if subclassed.is_subclassed(model):  # same class, edited sub-layers swapped in
        return subclassed_rebuild.rebuild(model, edits)
    adapter.functional_view(model)  # refuses unbuilt models up front
    if not edits:
        return _Walk(model, Plan(), reinitialize).run(())
    current, report = model, None
    for edit in edits:
        plan = plan_edit(current, edit)
        step = _Walk(current, plan, reinitialize).run((edit,))
        report = step.report if report is None else report.then(step.report)
        current = step.model
    assert report is not None  # `edits` is not empty
    return Rebuild(current, report, edits)


def copy_model(model: keras.Model, *, name: str | None = None) -> keras.Model:
    """An exact, independent copy of `model` (weights kept, no variable shared)."""
    arguments.model(model)
    arguments.text("name", name, optional=True)
    return _Walk(model, Plan(), None, name=name).run(()).model


@dataclasses.dataclass
class _Pair:
    """A fresh layer and the original it was made from: its weights are kept if they fit."""

    old: Any  # a keras Layer, or None for a new layer
    new: Any
    feed: adapter.WeightFeed | None
    path: tuple[str, ...]
    edited: bool  # False: an untouched copy; True: edited, same class (keep what fits)
    reason: str = ""
    in_report: bool = True
    same_inputs: bool = False  # called on inputs with exactly the original's specs
    by_name: bool = False  # keep each weight that fits on its own (new settings, same layer)
    weights_note: str = ""  # with `by_name`: the weights kept, added and dropped


@dataclasses.dataclass
class _NewLayer:
    """A layer with no original to take weights from (inserted, replaced by another class,
    a sub-network), or an original that is gone (removed): reported once it is built."""

    path: tuple[str, ...]
    layer: Any
    status: str  # "new", "removed", or "replaced" (by another class: "reinitialised" if it has weights)
    reason: str

    @property
    def final_status(self) -> str:
        if self.status == "replaced":
            return "reinitialised" if self.layer.weights else "new"
        return self.status


@dataclasses.dataclass
class _Reported:
    """A nested subclassed model edited inside (`_Walk.copy_subclassed`): its report rows,
    its weights already copied."""

    path: tuple[str, ...]
    rows: list


@dataclasses.dataclass
class _Place:
    """What stands at one call of an original layer under its action (`_Walk.place`):
    `layers` instead of it (none when removed), then `inserted` after it.
    `kind` says what the layers are: "copy" (the original re-created, maybe
    reconfigured), "replaced" (its replacement) or "removed"."""

    layers: list
    kind: str
    inserted: list


def _input_kwargs(spec: dict) -> dict:
    accepted = inspect.signature(keras.Input).parameters
    return {k: v for k, v in spec.items() if k in accepted}


def _variable_shapes(variables) -> str:
    return ", ".join(f"{v.name} {tuple(v.shape)}" for v in variables) or "no weights"


class _Walk:
    """One rebuild of one model under one plan."""

    def __init__(self, model, plan: Plan, reinitialize, name=None):
        self.model = model
        self.plan = plan
        self.reinitialize = reinitialize
        self.name = name
        self.entries: list[_Pair | _NewLayer | _Reported] = []  # every layer to report, in walk order
        self.outcomes: list[LayerOutcome] = []
        self.notes: list[str] = []
        self.cache: dict = {}
        self.shape_changes: list[tuple[str, str, str]] = []  # (path, old, new)
        self.renamed: dict[str, str] = {}  # new layer path -> old, for output names kept
        self.yield_names: dict[int, str] = {}  # id(shared layer) -> its new name (see below)
        self.split: dict[str, str] = {}  # new layer path -> the shared layer call it was split from
        self.current_outputs: list = []  # outputs of the model being walked
        self.current_calls: list = []  # calls of the functional model being walked
        self.feeder = adapter.WeightFeeder()
        self.pair_of: dict[int, _Pair] = {}  # id(new layer) -> its pair
        self.kept_classes: list = []  # model_class.KeptClass, completed after the walk

    # --- driver -----------------------------------------------------------

    def run(self, edits) -> Rebuild:
        with (self.feeder, _collection_paused(), adapter.cached_signatures(),
              adapter.attributes_fast()):
            self.feeder.make_ahead(self.model.weights)  # kept weights' copies, in one go
            new_model = self.copy_model(self.model, (), self.name or self.model.name)
        self.settle_weights()
        self.copy_compile_state(new_model)
        structural = self.plan.edit is not None and self.plan.edit.structural
        model_class.restore_attributes(self.kept_classes, self.cache, self.notes, structural)
        return Rebuild(new_model, RebuildReport(self.outcomes, self.notes), tuple(edits))

    def copy_model(self, model, prefix, name, in_report=True):
        if adapter.is_sequential(model):
            new_model = self.copy_sequential(model, prefix, name, in_report)
        else:
            new_model = self.copy_functional(model, prefix, name, in_report)
        if not model.trainable:
            new_model.trainable = False
        adapter.match_raw_op_names(model, new_model)
        return new_model

    # --- functional models --------------------------------------------------

    def copy_functional(self, model, prefix, name, in_report):
        tensor_map = {}
        new_inputs = []
        for tensor in adapter.flat_inputs(model):
            new = keras.Input(**_input_kwargs(adapter.input_spec_of(tensor)))
            tensor_map[id(tensor)] = new
            new_inputs.append(new)
        calls = adapter.graph_calls(model)
        names = {call.operation.name for call in calls}
        with self.walking(model, calls):
            if in_report:
                self.shared_output_renames(calls, prefix, names)
            for call in calls:
                if call.is_input:
                    continue
                if any(id(t) not in tensor_map for t in call.input_tensors):
                    continue  # not reachable from the inputs (Keras skips it too)
                outputs = self.replay(call, tensor_map, prefix, names, in_report)
                for old, new in zip(call.output_tensors, keras.tree.flatten(outputs)):
                    tensor_map[id(old)] = new
        inputs = keras.tree.pack_sequence_as(adapter.inputs_struct(model), new_inputs)
        outputs = keras.tree.pack_sequence_as(
            adapter.outputs_struct(model),
            [tensor_map[id(t)] for t in adapter.flat_outputs(model)],
        )
        with _global_dtype_policy(model.dtype_policy):  # Functional ignores dtype=
            return model_class.new_functional(model, inputs, outputs, name, self.kept_classes,
                                              self.notes)

    @contextlib.contextmanager
    def walking(self, model, calls):
        """`current_outputs` and `current_calls` are `model`'s while walking it, and the
        outer model's again afterwards (a nested model is walked inside its owner's walk),
        also when the walk fails."""
        outer = self.current_outputs, self.current_calls
        self.current_outputs, self.current_calls = adapter.flat_outputs(model), calls
        try:
            yield
        finally:
            self.current_outputs, self.current_calls = outer

    def replay(self, call, tensor_map, prefix, names, in_report):
        operation = call.operation
        path = (*prefix, operation.name)
        action = self.plan.action_for(path, call.call_index) if in_report else None
        args, kwargs = call.call_arguments(tensor_map)
        old_out_shape = [tuple(t.shape) for t in call.output_tensors]
        keep_output_name = self.keeps_output_name(call, action)
        specific = action is not None and action.call_specific
        copy_path = path
        if action is not None and action.remove:
            pass  # nothing is copied
        elif id(operation) in self.yield_names and not _splits(action):
            copy_path = (*prefix, self.yield_names[id(operation)])
            self.renamed[naming.layer_path(copy_path)] = naming.layer_path(path)
        elif keep_output_name and action is not None and action.insert_after and not specific:
            copy_path = self.renamed_output(path, names)
        place = self.place(operation, path, call.call_index, action, names, in_report,
                           copy_path=copy_path, own_name=keep_output_name and _splits(action),
                           insert_name=operation.name if keep_output_name else None)
        if not place.layers:  # removed: its input flows on
            outputs = keras.tree.flatten(args)[0]
            if keep_output_name:
                outputs = self.output_stand_in(operation, path, outputs)
        else:
            outputs = self.call_place(place, call, args, kwargs, tensor_map, path, action)
        if place.inserted:
            outputs = self.call_chain(place.inserted, (outputs,), {}, call, path, "inserted")
            self.note_output_moved(call, path, place.inserted, keep_output_name)
        new_out_shape = [tuple(t.shape) for t in keras.tree.flatten(outputs)]
        if action is not None and new_out_shape != old_out_shape:
            self.shape_changes.append(
                (naming.layer_path(path), shape_text(old_out_shape), shape_text(new_out_shape))
            )
        return outputs

    def call_place(self, place, call, args, kwargs, tensor_map, path, action):
        """Call the layers standing in for `call`: as recorded when nothing changed."""
        layers = place.layers
        like = self.unchanged_output(call, layers, action, tensor_map)
        outputs = None
        if like is not None:
            outputs = adapter.call_as_recorded(layers[0], call.operation, args, kwargs, like)
        if outputs is None:
            known = adapter.known_output_spec(layers[0], like) if like is not None else (
                contextlib.nullcontext()
            )
            with known:
                outputs = self.call_chain(layers, args, kwargs, call, path, place.kind)
        self.complete_state(layers, args, kwargs, place.kind, like is not None)
        return outputs

    def note_output_moved(self, call, path, inserted, keep_output_name) -> None:
        """A note when a model output now comes from an inserted layer of another name."""
        model_outputs = {id(t) for t in self.current_outputs}
        if not keep_output_name and any(id(t) in model_outputs for t in call.output_tensors):
            self.notes.append(
                f"{naming.layer_path(path)!r} was a model output; the output now comes from "
                f"{inserted[-1].name!r}, so Keras names it {inserted[-1].name!r}. Rename "
                "loss or metric keys that used the old name."
            )

    def keeps_output_name(self, call, action) -> bool:
        """Whether an insert after (or the removal of) this call must keep a model output's name.

        Keras names a Functional model's outputs after the layers that make
        them (`Functional.output_names`), and losses, metrics and `predict`
        dicts are keyed by those names. A layer called once whose output is
        a model output keeps the name there: the last layer inserted after
        it takes the name (the original becomes `<name>_pre`), a removed
        one leaves an `Identity` of that name.
        """
        if action is None:
            return False
        if action.call_specific:  # a shared layer's output call edited on its own
            return id(call.operation) in self.yield_names
        if not (action.remove or action.insert_after):
            return False
        model_outputs = {id(t) for t in self.current_outputs}
        if not any(id(t) in model_outputs for t in call.output_tensors):
            return False
        return sum(c.operation is call.operation for c in self.current_calls) == 1

    def shared_output_renames(self, calls, prefix, names) -> None:
        """Shared layers whose one output call is edited on its own: that call keeps the name.

        The edited call becomes a layer of its own (or an insert after it, or an
        `Identity` if removed) named as the shared layer, so the model output
        keeps its name; the shared layer is renamed `<name>_shared`.
        """
        model_outputs = {id(t) for t in self.current_outputs}
        output_calls: dict[int, list] = {}
        for call in calls:
            if not call.is_input and any(id(t) in model_outputs for t in call.output_tensors):
                output_calls.setdefault(id(call.operation), []).append(call)
        for call in calls:
            path = (*prefix, call.operation.name)
            action = None if call.is_input else self.plan.action_for(path, call.call_index)
            if action is None or not action.call_specific or output_calls.get(id(call.operation)) != [call]:
                continue
            if id(call.operation) not in self.yield_names:
                shared = self.unique_name(f"{call.operation.name}_shared", names)
                self.yield_names[id(call.operation)] = shared
                self.notes.append(_yield_note(path, call.call_index, action, shared))

    def renamed_output(self, path, names) -> tuple[str, ...]:
        """The path of an output layer renamed `<name>_pre`, giving its name to the insert."""
        new_path = (*path[:-1], self.unique_name(f"{path[-1]}_pre", names))
        self.renamed[naming.layer_path(new_path)] = naming.layer_path(path)
        self.notes.append(
            f"{naming.layer_path(path)!r} was a model output: the layer inserted after it takes "
            f"the name {path[-1]!r}, so the output keeps its name (loss, metric and predict keys "
            f"stay), and the original layer is now {new_path[-1]!r}."
        )
        return new_path

    def output_stand_in(self, operation, path, tensor):
        """An `Identity` named as the removed output layer, so the output keeps its name."""
        self.notes.append(
            f"{naming.layer_path(path)!r} was a model output: an Identity layer of that name "
            "stands in for it, so the output keeps its name (loss, metric and predict keys stay)."
        )
        return keras.layers.Identity(name=operation.name)(tensor)

    def unchanged_output(self, call, layers, action, tensor_map):
        """The original output, for an untouched layer fed exactly what it was before.

        Such a call needs no shape tracing: its output spec is the original's.
        """
        if action is not None or len(layers) != 1 or len(call.output_tensors) != 1:
            return None
        layer = layers[0]
        if not isinstance(layer, keras.layers.Layer) or adapter.is_model(layer):
            return None
        new_inputs = [tensor_map[id(t)] for t in call.input_tensors]
        if not adapter.same_specs(call.input_tensors, new_inputs):
            return None
        return call.output_tensors[0]

    def complete_state(self, layers, args, kwargs, kind, same_inputs):
        """Build what the first layer's `build` left for its first call (see
        `adapter.complete_state`), and note whether it saw its original input specs."""
        pair = self.pair_of.get(id(layers[0]))
        if pair is None:
            return
        pair.same_inputs = pair.same_inputs or same_inputs
        call_kwargs = _accepted_kwargs(layers[0], kwargs, verbatim=kind == "copy")
        adapter.complete_state(layers[0], pair.old, args, call_kwargs)

    def call_chain(self, layers, args, kwargs, call, path, kind):
        """Call `layers` one after another on the call's arguments (`kind` as in `_Place`,
        or "inserted"); a failure is a `layer_failed` error."""
        outputs = None
        for index, layer in enumerate(layers):
            if index == 0:
                call_kwargs = _accepted_kwargs(layer, kwargs, verbatim=kind == "copy")
                call_args = args
            else:
                call_args, call_kwargs = (outputs,), {}
            try:
                outputs = layer(*call_args, **call_kwargs)
            except KerawidgetsError:
                raise
            except Exception as error:
                got = [tuple(t.shape) for t in keras.tree.flatten(call_args) if hasattr(t, "shape")]
                before = call.output_tensors if kind == "inserted" else call.input_tensors
                raise self.layer_failed(
                    layer, kind, path, got, [tuple(t.shape) for t in before],
                    self.downstream_of(call), error,
                ) from error
        return outputs

    def downstream_of(self, call) -> list[str]:
        """Names of the layers that consume `call`'s outputs, directly or further down."""
        reached = {id(t) for t in call.output_tensors}
        names = []
        for later in self.current_calls:
            if later is call or later.is_input:
                continue
            if any(id(t) in reached for t in later.input_tensors):
                reached.update(id(t) for t in later.output_tensors)
                if later.operation.name not in names:
                    names.append(later.operation.name)
        return names

    def layer_failed(self, layer, kind, path, got, expected, downstream, error):
        """The one error for a layer that cannot take its input, in either walk.

        `kind` says what the failing layer is: "inserted" by the edit, the
        "replaced" layer's replacement, or a "copy" of an original layer
        (untouched, or with a new activation). `expected` is what reached this
        place before the edit: the original layer's input, or for an inserted
        layer the output of the layer it follows.
        """
        where = naming.layer_path(path)
        cls = type(layer).__name__
        changes = "; ".join(f"{p}: {o} -> {n}" for p, o, n in self.shape_changes)
        cause = f" The edit changed these output shapes: {changes}." if changes else ""
        if kind == "inserted":
            what = f"Layer {layer.name!r} ({cls}) inserted after {where!r}"
            built_for = ""
        elif kind == "replaced":
            what = f"The replacement {cls} {layer.name!r} for {where!r}"
            built_for = ""
        else:
            what = f"Layer {where!r} ({cls})"
            built_for = f" (it was built for {shape_text(expected)})"
        after = f" Layers downstream of it: {', '.join(downstream)}." if downstream else ""
        return ShapeMismatchError(
            f"{what} cannot take input of shape {shape_text(got)}{built_for}.{cause} "
            f"Keras says: {_sentence(error)}{after} Nothing was changed. "
            f"{self.shape_hint(kind, got)}",
            layer=where, expected=expected, got=got, downstream=downstream,
        )

    def shape_hint(self, kind, got) -> str:
        """What to do instead, from the edit whose shapes do not fit (`Edit.shape_hint`)."""
        if self.plan.edit is None:
            return "Keep the shape each layer was built for, or add a layer that restores it."
        return self.plan.edit.shape_hint(kind, got)

    # --- sequential models ----------------------------------------------

    def copy_sequential(self, model, prefix, name, in_report):
        calls = adapter.graph_calls(model)
        names = {call.operation.name for call in calls}  # input too
        new_layers = []
        steps = []  # (new layer or None if removed, kind, path, original layer)
        for layer in model.layers:
            path = (*prefix, layer.name)
            action = self.plan.action_for(path, 0) if in_report else None
            place = self.place(layer, path, 0, action, names, in_report)
            steps += [(lyr, place.kind, path, layer) for lyr in place.layers or [None]]
            steps += [(lyr, "inserted", path, layer) for lyr in place.inserted]
            new_layers += place.layers + place.inserted
        spec = adapter.input_spec_of(adapter.flat_inputs(model)[0])
        try:
            with _global_dtype_policy(model.dtype_policy):  # Sequential takes no dtype=
                new_model = keras.Sequential(
                    [keras.Input(**_input_kwargs(spec)), *new_layers], name=name
                )
        except KerawidgetsError:
            raise
        except Exception as error:
            raise self.sequential_failed(name, calls, steps, spec, error) from error
        self.mark_same_inputs(calls, new_model)
        if new_layers and self.plan and in_report:
            self.record_sequential_shape_changes(new_model, calls, steps)
        if new_layers and not adapter.has_graph(new_model):
            raise ShapeMismatchError(
                f"Sequential {name!r} could not be built after the edit (a layer cannot infer "
                "its output shape). Nothing was changed."
            )
        return new_model

    def mark_same_inputs(self, calls, new_model):
        """Note which fresh layers of a Sequential saw exactly their original input specs."""
        if not adapter.has_graph(new_model):
            return
        before = {id(c.operation): c.input_tensors for c in calls if not c.is_input}
        for call in adapter.graph_calls(new_model):
            pair = self.pair_of.get(id(call.operation))
            if pair is not None and id(pair.old) in before:
                pair.same_inputs = adapter.same_specs(before[id(pair.old)], call.input_tensors)

    def sequential_failed(self, name, calls, steps, spec, error):
        """Keras builds a Sequential in one go: find the layer that really fails by calling
        the new layers one at a time on a fresh input, and raise its `layer_failed` error."""
        inputs = {id(c.operation): [tuple(t.shape) for t in c.input_tensors] for c in calls}
        outputs = {id(c.operation): [tuple(t.shape) for t in c.output_tensors] for c in calls}
        x = keras.Input(**_input_kwargs(spec))
        for index, (layer, kind, path, original) in enumerate(steps):
            if layer is not None:
                try:
                    x = layer(x)
                except KerawidgetsError:
                    raise
                except Exception as failure:
                    downstream = [naming.layer_path((*p[:-1], later.name))
                                  for later, _, p, _ in steps[index + 1:] if later is not None]
                    before = (outputs if kind == "inserted" else inputs).get(id(original), [])
                    return self.layer_failed(layer, kind, path, [tuple(x.shape)], before,
                                             downstream, failure)
            self.note_shape_change(steps, index, outputs.get(id(original)), [tuple(x.shape)])
        return ShapeMismatchError(
            f"Sequential {name!r} could not be built after the edit. Keras says: "
            f"{_sentence(error)} Nothing was changed. {self.shape_hint('copy', None)}",
            layer=name,
        )

    def note_shape_change(self, steps, index, old, new):
        """Record an edited place's output change once its last new layer ran."""
        _layer, kind, path, _original = steps[index]
        if kind == "copy" and self.plan.action_for(path, 0) is None:
            return  # untouched
        if index + 1 < len(steps) and steps[index + 1][2] == path:
            return  # more layers of this place to come (a list, or inserts after it)
        if old is not None and new is not None and old != new:  # new: None when the first layer went
            self.shape_changes.append((naming.layer_path(path), shape_text(old), shape_text(new)))

    def record_sequential_shape_changes(self, new_model, calls, steps):
        """The output shapes the edit changed, for the downstream-weights message."""
        outputs = {id(c.operation): [tuple(t.shape) for t in c.output_tensors] for c in calls}
        new_outputs = {
            id(c.operation): [tuple(t.shape) for t in c.output_tensors]
            for c in adapter.graph_calls(new_model)
        }
        current = [tuple(t.shape) for t in adapter.flat_inputs(new_model)]  # a removed first layer
        for index, (layer, _kind, _path, original) in enumerate(steps):
            if layer is not None:
                current = new_outputs.get(id(layer), current)
            self.note_shape_change(steps, index, outputs.get(id(original)), current)

    # --- making fresh layers -----------------------------------------------

    def unique_name(self, wanted, names) -> str:
        name, k = wanted, 1
        while name in names:
            name = f"{wanted}_{k}"
            k += 1
        names.add(name)
        return name

    def place(self, operation, path, call_index, action, names, in_report, *, copy_path=None,
              own_name=False, insert_name=None) -> _Place:
        """What `action` means at one call of `operation`, the same in both walks: the
        layers standing in for it (none when removed) and the layers inserted after it.

        `copy_path` is where its copy goes when the walk renamed it (see `replay`),
        `insert_name` the name the last inserted layer takes (a model output's).
        """
        if action is not None and action.remove:
            if action.call_specific:  # the layer stays for its other calls
                self.record_removed_call(operation, path, call_index)
            else:
                self.record_removed(operation, path)
            layers, kind = [], "removed"
        else:
            layers = self.layers_for(operation, copy_path or path, call_index, action, names,
                                     in_report, own_name=own_name)
            kind = "replaced" if action is not None and action.replacement else "copy"
        specs = action.insert_after if action is not None else ()
        after = repr(naming.layer_path(path))
        if specs and action is not None and action.call_specific:
            after = f"call {call_index} of shared layer {after}"
        inserted = [self.new_inserted(spec, names, path, in_report, after,
                                      name=insert_name if i == len(specs) - 1 else None)
                    for i, spec in enumerate(specs)]
        return _Place(layers, kind, inserted)

    def layers_for(self, operation, path, call_index, action, names, in_report,
                   own_name=False) -> list:
        split = _splits(action)
        key = (id(operation), call_index if split else None)
        if key in self.cache:
            return self.cache[key]
        name = path[-1]  # operation.name, or `<name>_pre` for an output that gives its name away
        if split and own_name:
            name = operation.name  # a model output's name (`shared_output_renames`)
        elif split:
            name = self.unique_name(f"{operation.name}_call{call_index}", names)
            self.notes.append(
                f"Shared layer {naming.layer_path(path)!r}: call {call_index} was edited on its "
                f"own, so it is now a separate layer {name!r} (weights copied where they fit)."
            )
        first_entry = len(self.entries)
        layers = self.made_layers(operation, path, name, action, names, in_report)
        if split:
            self.split_off(first_entry, path, name, call_index)
        self.cache[key] = layers
        return layers

    def made_layers(self, operation, path, name, action, names, in_report) -> list:
        """The fresh layers for `operation` under `action`, named `name`."""
        if action is None or not (action.activation or action.replacement or action.configure):
            layers = [self.copy_operation(operation, path, name, in_report)]
        elif action.configure:
            layers = [self.with_settings(operation, path, name, action.configure)]
        elif action.activation:
            layers = [self.with_activation(operation, path, name, action)]
        else:
            layers = self.replacement_layers(operation, path, name, action, names)
        return layers

    def split_off(self, first_entry, path, name, call_index) -> None:
        """The row of a shared layer's call edited on its own (of the entries from
        `first_entry`) under the name of the layer it became (`<name>_call<k>`, or the
        shared layer's name when it is a model output), saying where it came from."""
        for entry in self.entries[first_entry:]:
            if entry.path == path:
                entry.path = (*path[:-1], name)
                self.split[naming.layer_path(entry.path)] = (
                    f"split off from call {call_index} of shared layer {naming.layer_path(path)!r}")

    def copy_operation(self, operation, path, name, in_report):
        if adapter.is_model(operation) and adapter.has_graph(operation):
            return self.copy_model(operation, path, name, in_report)
        if in_report and self.plan.touches_inside(path):  # inside a nested subclassed model
            return self.copy_subclassed(operation, path, name)
        if not isinstance(operation, keras.layers.Layer):
            return adapter.copy_operation(operation)
        layer = recreate_layer(operation, naming.layer_path(path), name)
        self.pair(operation, layer, path, False, "untouched", in_report)
        return layer

    def copy_subclassed(self, operation, path, name):
        """A copy of a nested subclassed model (same class) with the plan's edits of its
        sub-layers swapped in, every other weight copied (`subclassed_rebuild.rebuild_nested`)."""
        from kerawidgets import subclassed_rebuild

        model, rows, notes = subclassed_rebuild.rebuild_nested(operation, self.plan, path)
        model.name = name
        self.entries.append(_Reported(path, rows))
        self.notes.extend(notes)
        return model

    def with_settings(self, operation, path, name, changes):
        """The layer re-created from its config with `changes`; each weight that still fits
        is kept (`_settle_by_name`)."""
        where = naming.layer_path(path)
        config = _fresh_layer_values(_layer_config(operation, where), where)
        reason = apply_settings(config, changes)
        config["name"] = name
        layer = _named_like(_from_config(type(operation), config, where), operation, name)
        self.pair(operation, layer, path, True, reason, True, by_name=True)
        return layer

    def with_activation(self, operation, path, name, action):
        attribute, activation = action.activation
        where = naming.layer_path(path)
        if adapter.is_model(operation):
            raise InvalidEditError(f"{where!r} is a model; edit the layers inside it instead.")
        config = _fresh_layer_values(_layer_config(operation, where), where)
        if attribute in config and not isinstance(operation, ACTIVATION_LAYER_CLASSES):
            old_name = activations.activation_settings(operation).get(attribute)
            config[attribute] = activations.config_value(activation)
            config["name"] = name
            layer = _named_like(_from_config(type(operation), config, where), operation, name)
            reason = f"{attribute} {old_name or '?'} -> {activation}"
            self.pair(operation, layer, path, True, reason, True)
            return layer
        if isinstance(operation, ACTIVATION_LAYER_CLASSES):
            cls = type(operation).__name__
            settings = _activation_layer_settings(operation, config)
            shown = ", ".join(f"{k}={v!r}" for k, v in settings.items())
            if activations.layer_activation(operation) == activation:  # ReLU(max_value=6): relu6
                # Already this activation: keep the layer and its settings (an Activation
                # would silently reset them, e.g. LeakyReLU's slope or Softmax's axis).
                config["name"] = name
                layer = _named_like(_from_config(type(operation), config, where), operation, name)
                kept = f" with its settings ({shown})" if shown else ""
                self.pair(operation, layer, path, True,
                          f"already {activation!r}: {cls} kept{kept}, nothing changes", True)
                return layer
            layer = keras.layers.Activation(
                activations.get(activation), name=name, dtype=operation.dtype_policy
            )
            dropped = [f"settings {shown}"] if shown else []
            if operation.weights:
                dropped.append(_variable_shapes(operation.weights))
            extra = f"; its {' and '.join(dropped)} dropped" if dropped else ""
            self.pending_outcome(path, layer, "new",
                                 f"{cls} layer became Activation({activation!r}), same name{extra}")
            return layer
        raise InvalidEditError(f"Layer {where!r} has no {attribute!r} setting.")

    def replacement_layers(self, operation, path, name, action, names) -> list:
        specs: tuple[LayerSpec, ...] = action.replacement
        layers = []
        for index, spec in enumerate(specs):
            last = index == len(specs) - 1
            layer_name = name if last else self.unique_name(spec.name or spec.class_name.lower(), names)
            if spec.model is not None:
                layer = self.copy_model(spec.model, path, layer_name, in_report=False)
                self.pending_outcome(path if last else (*path[:-1], layer_name), layer,
                                     "new", f"{type(operation).__name__} replaced by sub-network "
                                     f"{spec.model.name!r} ({len(spec.model.layers)} layers, its "
                                     "own weights copied)")
            else:
                layer = spec.build(name=layer_name)
                if last and type(layer) is type(operation):
                    self.pair(operation, layer, path, True,
                              f"replaced by {spec.describe()}", True)
                else:
                    status = "replaced" if last else "new"
                    reason = (
                        f"{type(operation).__name__} replaced by {spec.describe()}"
                        + (f"; old {_variable_shapes(operation.weights)} not reused"
                           if last and operation.weights else "")
                    )
                    self.pending_outcome(path if last else (*path[:-1], layer_name), layer,
                                         status, reason)
            if action.trainable is not None:
                layer.trainable = action.trainable
            layers.append(layer)
        return layers

    def new_inserted(self, spec: LayerSpec, names, path, in_report, after, name=None):
        """A fresh layer of `spec` inserted after `path` (`after`: what the report says it follows)."""
        wanted = spec.name or spec.class_name.lower()
        layer = spec.build(name=name or self.unique_name(wanted, names))
        if in_report:
            took = f", named {name!r} to keep the model output's name" if name else ""
            self.pending_outcome((*path[:-1], layer.name), layer, "new",
                                 f"inserted after {after}{took}")
        return layer

    # --- weights --------------------------------------------------------

    def pair(self, old, new, path, edited, reason, in_report, by_name=False):
        feed = self.feeder.register(new, old)
        entry = _Pair(old, new, feed, path, edited, reason, in_report, by_name=by_name)
        self.entries.append(entry)
        self.pair_of[id(new)] = entry

    def pending_outcome(self, path, layer, status, reason):
        # Weight counts are known once the layer is built: settle_weights reports them.
        self.entries.append(_NewLayer(path, layer, status, reason))

    def outcome(self, path, layer, status, reason, edited):
        weights = len(layer.weights) if getattr(layer, "built", False) else 0
        renamed_from = self.renamed.get(naming.layer_path(path), "")
        if renamed_from:
            reason += f"; renamed from {renamed_from!r}, so a model output keeps that name"
        if naming.layer_path(path) in self.split:
            reason += f"; {self.split[naming.layer_path(path)]}"
        self.outcomes.append(
            LayerOutcome(naming.layer_path(path), type(layer).__name__, status, reason, weights, edited,
                         renamed_from=renamed_from)
        )

    def record_removed(self, layer, path):
        self.pending_outcome(path, layer, "removed", "removed by the edit" + (
            f"; its {_variable_shapes(layer.weights)} dropped" if layer.weights else ""))

    def record_removed_call(self, layer, path, call_index):
        """One call of a shared layer removed: its row is the call's (``dense:1``, also for
        call 0), since the layer stays, with its weights, for its other calls."""
        where = naming.layer_path(path)
        self.pending_outcome((*path[:-1], f"{path[-1]}{naming.CALL_SEPARATOR}{call_index}"),
                             layer, "removed", f"call {call_index} of shared layer {where!r} "
                             "removed by the edit; the layer and its weights stay for its other calls")

    def settle_weights(self):
        misfits = []
        for entry in self.entries:
            if isinstance(entry, _Reported):  # a nested subclassed model, settled already
                self.outcomes.extend(entry.rows)
                continue
            if isinstance(entry, _NewLayer):  # nothing to keep
                self.outcome(entry.path, entry.layer, entry.final_status, entry.reason, edited=True)
                continue
            fits, detail = _settle_by_name(entry) if entry.by_name else _settle_pair(entry)
            if fits:
                if entry.in_report:
                    self.outcome(entry.path, entry.new, "kept", _kept_reason(entry), entry.edited)
            elif entry.edited:
                self.outcome(entry.path, entry.new, "reinitialised",
                             f"{entry.reason}; {detail}", edited=True)
            elif entry.same_inputs:
                raise _lost_weights_error(entry, detail)
            else:
                misfits.append((entry, detail))
        if misfits and self.reinitialize != "downstream":
            raise self.downstream_error(misfits)
        for pair, detail in misfits:
            self.outcome(pair.path, pair.new, "reinitialised",
                         f"downstream of the edit, its input changed: {detail}", edited=False)
        order = {naming.layer_path(e.path): i for i, e in enumerate(self.entries)}
        for i, entry in enumerate(self.entries):
            if isinstance(entry, _Reported):
                order.update({row.layer: i for row in entry.rows})
        self.outcomes.sort(key=lambda o: order.get(o.layer, len(order)))

    def downstream_error(self, misfits):
        pair, detail = misfits[0]
        names = [naming.layer_path(p.path) for p, _ in misfits]
        changes = "; ".join(f"{p} output {o} -> {n}" for p, o, n in self.shape_changes)
        edited = ", ".join(repr(e) for e in self.plan.targets) or "(no layer)"
        return ShapeMismatchError(
            f"The edit of {edited} changes shapes downstream"
            f"{' (' + changes + ')' if changes else ''}, so the weights of "
            f"{naming.layer_path(pair.path)!r} ({type(pair.old).__name__}) no longer fit: "
            f"{detail}. Layers affected downstream: {', '.join(names)}. Nothing was changed. "
            "Pass reinitialize='downstream' to re-initialise them, or keep the edited layer's "
            "output shape (for example the same number of units or filters).",
            layer=naming.layer_path(pair.path),
            expected=[tuple(v.shape) for v in pair.old.weights],
            got=[tuple(v.shape) for v in pair.new.weights],
            downstream=names,
        )

    def copy_compile_state(self, new_model):
        if not getattr(self.model, "compiled", False):
            return
        try:
            config = self.model.get_compile_config()
            if config:
                new_model.compile_from_config(config)
                self.notes.append(
                    "Recompiled with the same loss and metrics and a fresh optimizer "
                    "(optimizer state is not copied)."
                )
        except Exception as error:  # a loss that cannot be serialised, say
            self.notes.append(f"Not compiled: the original's compile settings could not be copied ({error}).")


@contextlib.contextmanager
def _collection_paused():
    """Pause Python's cyclic garbage collector while the walk builds many small objects.

    Every fresh layer allocates hundreds of tracked objects, and the
    collector would otherwise sweep the growing young generation again and
    again during the walk; one pass afterwards costs less (about 5% of a
    rebuild of DenseNet121, that later pass included). Reference counting
    still frees what it frees; only cyclic garbage made during the walk
    waits for the first collection after it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _splits(action) -> bool:
    """Whether `action` makes its call of a shared layer a layer of its own: one that changes
    the layer at that call only (an activation, settings, a replacement). Removing one call,
    or inserting after it, changes only the graph around that call: the layer stays one,
    shared by its calls, its weights tied."""
    return (action is not None and action.call_specific
            and bool(action.activation or action.configure or action.replacement))


def _yield_note(path, call_index, action, shared) -> str:
    """The note for a shared layer giving its name to the edit of its output call."""
    where = naming.layer_path(path)
    if action.insert_after and not _splits(action):
        return (f"Shared layer {where!r}: the layer inserted after call {call_index}, a model "
                f"output, takes its name, so the output keeps the name {path[-1]!r}; the shared "
                f"layer (every call, weights tied) is now {shared!r}.")
    return (f"Shared layer {where!r}: call {call_index}, a model output, was edited on its own "
            f"and keeps the name {path[-1]!r}, so the output keeps its name; the layer its "
            f"other calls share is now {shared!r}.")


def _kept_reason(pair: _Pair) -> str:
    if not pair.edited:
        return "untouched" if pair.new.weights else "untouched (no weights)"
    if pair.weights_note:
        return f"{pair.reason}; {pair.weights_note}"
    return pair.reason + ("; weights fit and are kept" if pair.new.weights else "")


def _lost_weights_error(pair, detail) -> LayerRecreationError:
    """An untouched layer, fed exactly its original inputs, that did not get its weights back.

    Its input did not change, so it is not downstream of the edit: re-initialising
    it would lose trained weights for nothing. Refused, whatever `reinitialize` says.
    """
    where = naming.layer_path(pair.path)
    cls = type(pair.old).__name__
    return LayerRecreationError(
        f"Layer {where!r} ({cls}) is untouched and gets the same inputs, but its fresh copy "
        f"does not create the same weights: {detail}. Nothing was changed. Make {cls}.build() "
        "create every weight (build its sub-layers there), or make get_config() return every "
        "argument of __init__."
    )


def _sentence(error) -> str:
    """The reason in a Keras error (`keras_reason`), ending with a full stop."""
    text = keras_reason(error)
    return text if text.endswith((".", "!", "?")) else text + "."


@contextlib.contextmanager
def _global_dtype_policy(policy):
    previous = keras.config.dtype_policy()
    if policy.name == previous.name:
        yield
        return
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _accepted_kwargs(layer, kwargs, verbatim) -> dict:
    """The recorded call kwargs that `layer.call` accepts (all of them for an untouched copy)."""
    if verbatim and not isinstance(layer, keras.layers.Activation):
        return kwargs
    try:
        parameters = inspect.signature(layer.call).parameters
    except (TypeError, ValueError):
        return kwargs
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return kwargs
    return {k: v for k, v in kwargs.items() if k in parameters or k == "training"}


@dataclasses.dataclass
class WeightsByName:
    """A layer's weights matched to its old version's by name (`weights_by_name`)."""

    kept: list  # (old, new) weights of the same name and shape
    added: list  # new weights of a name the old layer has not
    dropped: list  # old weights of a name the new layer has not

    def copy(self, fed=None) -> None:
        """Copy each kept weight's old value (except where `fed`, a `WeightFeed.fed`, shows
        the new one was built from that very variable already)."""
        for old, new in self.kept:
            if fed is None or fed.get(id(new)) is not old:
                adapter.assign_copy(new, old)

    def changes(self) -> list[str]:
        """The weights added and dropped, in words (none when the names are the same)."""
        parts = []
        if self.added:
            parts.append(f"new weight {_variable_shapes(self.added)} (from its initializer)")
        if self.dropped:
            parts.append(f"{_variable_shapes(self.dropped)} dropped")
        return parts


def weights_by_name(old_vars, new_vars) -> WeightsByName | None:
    """Match each of `new_vars` (a layer made again with new settings) to the first of
    `old_vars` with its name: the rule by which SetSettings keeps weights, in a functional
    model (`_settle_by_name`) and in a subclassed one. None when a weight changed shape:
    the layer is then re-initialised.

    >>> old, new = keras.layers.Dense(2), keras.layers.Dense(2, use_bias=False)
    >>> old.build((None, 3)); new.build((None, 3))
    >>> match = weights_by_name(old.weights, new.weights)
    >>> [(o.name, n.name) for o, n in match.kept], match.changes()
    ([('kernel', 'kernel')], ['bias (2,) dropped'])
    """
    left = list(old_vars)
    kept, added = [], []
    for new in new_vars:
        old = next((v for v in left if v.name == new.name), None)  # in order, as fed
        if old is None:
            added.append(new)
            continue
        left.remove(old)
        if adapter.variable_shape(old) != adapter.variable_shape(new):
            return None
        kept.append((old, new))
    return WeightsByName(kept, added, left)


def _settle_by_name(pair: _Pair) -> tuple[bool, str]:
    """Keep each weight of `pair.new` whose original (same name) has its shape; report the
    weights the new settings add or drop. Not kept (False) when an original weight changed
    shape: the layer is then re-initialised as `_settle_pair` would."""
    match = weights_by_name(adapter.layer_variables(pair.old), adapter.layer_variables(pair.new))
    if match is None:
        return _settle_pair(pair)
    assert pair.feed is not None  # a pair with an original layer has a feed
    match.copy(pair.feed.fed)
    adapter.finalize_state(pair.new)
    changes = match.changes()
    if changes:
        kept = [f"{_variable_shapes([n for _, n in match.kept])} kept"] if match.kept else []
        pair.weights_note = "; ".join(kept + changes)
    return True, ""


def _settle_pair(pair: _Pair) -> tuple[bool, str]:
    """Give `pair.new` the old values where everything fits; say why not otherwise."""
    feed = pair.feed
    assert feed is not None  # a pair with an original layer has a feed
    old_vars = adapter.layer_variables(pair.old)
    new_vars = adapter.layer_variables(pair.new)
    old_shapes = [adapter.variable_shape(v) for v in old_vars]
    new_shapes = [adapter.variable_shape(v) for v in new_vars]
    if old_shapes == new_shapes:
        for old, new in zip(old_vars, new_vars):
            if feed.fed.get(id(new)) is not old:
                adapter.assign_copy(new, old)
        adapter.finalize_state(pair.new)
        if adapter.has_assets(pair.old):
            adapter.copy_assets(pair.old, pair.new)
        return True, ""
    for new in new_vars:
        if id(new) in feed.fed:
            adapter.reinitialize_variable(new, feed.initializers.get(id(new)))
    changed = [
        f"{o.name} {tuple(o.shape)} -> {tuple(n.shape)}"
        for o, n in zip(pair.old.weights, pair.new.weights)
        if tuple(o.shape) != tuple(n.shape)
    ]
    if len(pair.old.weights) != len(pair.new.weights):
        changed.append(
            f"{len(pair.old.weights)} weights ({_variable_shapes(pair.old.weights)}) -> "
            f"{len(pair.new.weights)} ({_variable_shapes(pair.new.weights)})"
        )
    return False, "; ".join(changed) or "weight shapes differ"


def _activation_layer_settings(layer, config) -> dict:
    """An activation layer's settings that differ from its defaults (LeakyReLU's slope...)."""
    return {k: v for k, v in _non_default_config(type(layer), config).items()
            if k not in ("name", "trainable", "dtype")}


def _layer_config(layer, where):
    try:
        return layer.get_config()
    except Exception as error:
        raise LayerRecreationError.get_config_failed(layer, where, error) from error


def _from_config(cls, config, where):
    try:
        return cls.from_config(config)
    except Exception as error:
        raise LayerRecreationError(_not_recreatable(cls, where, error)) from error


def _not_recreatable(cls, where, error) -> str:
    """The message for a layer `from_config` cannot re-create, with what to change."""
    return (
        f"Layer {where!r} ({cls.__name__}) cannot be re-created from its config: {error}. "
        f"Make {cls.__name__}.get_config() return every argument of __init__ "
        "(start from `config = super().get_config()` and add yours), or give it a "
        "from_config classmethod."
    )


def recreate_layer(layer, where: str, name: str | None = None):
    """A fresh copy of `layer` (unbuilt when it can be), named `name` or as the original.

    From its config first, as Keras would (Lambda: from its live function;
    a layer object in the config: a fresh copy of it, never the original,
    whose variables would be shared). When `from_config` cannot re-create
    it though Keras runs it (an `__init__` without `**kwargs`, an activation
    that is a callable object, a `get_config` that raises or adds keys):
    from the arguments Keras recorded at construction, then from its config
    with its live attribute values, then as a copy of the layer object.
    `LayerRecreationError` only when none of these works.
    """
    if isinstance(layer, keras.layers.Lambda):
        parts = adapter.lambda_parts(layer)
        return keras.layers.Lambda(
            parts["function"], output_shape=parts["output_shape"], mask=parts["mask"],
            arguments=parts["arguments"], name=name or layer.name, dtype=layer.dtype_policy,
            trainable=layer.trainable,
        )
    try:
        config = _fresh_layer_values(layer.get_config(), where)
        if name is not None:
            config["name"] = name
        fresh = type(layer).from_config(config)
    except Exception as error:
        fresh = _recreate_otherwise(layer, where, error)
    return _named_like(fresh, layer, name)


def apply_settings(config: dict, changes) -> str:
    """Set `changes` ((key, value) pairs of a `SetSettings`) in a layer's `config`, tuples
    as the lists a saved config holds; returns what changed, for the report.

    >>> config = {"rate": 0.5}
    >>> apply_settings(config, [("rate", 0.1)]), config
    ('rate 0.5 -> 0.1', {'rate': 0.1})
    """
    before = {k: config.get(k) for k, _ in changes}
    config.update({k: list(v) if isinstance(v, tuple) else v for k, v in changes})
    return ", ".join(f"{k} {before[k]!r} -> {v!r}" for k, v in changes)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _fresh_layer_values(config, where):
    """`config` with every layer object in it replaced by a fresh copy of that layer."""
    if type(config) in _SCALARS:  # most values of a config: nothing inside
        return config
    if isinstance(config, keras.layers.Layer):
        return recreate_layer(config, f"{where}/{config.name}")
    if isinstance(config, dict):
        return {k: _fresh_layer_values(v, where) for k, v in config.items()}
    if isinstance(config, (list, tuple)):
        return type(config)(_fresh_layer_values(v, where) for v in config)
    return config


def _recreate_otherwise(layer, where, error):
    """Re-create `layer` when `from_config(get_config())` fails (see `recreate_layer`)."""
    cls = type(layer)
    for attempt in (_from_recorded_args, _from_live_config, adapter.copy_layer_object):
        try:
            fresh = attempt(layer)
        except Exception:
            continue
        if fresh is not None:
            return fresh
    if _config_error(layer) is not None:
        raise LayerRecreationError.get_config_failed(layer, where, error) from error
    raise LayerRecreationError(_not_recreatable(cls, where, error)) from error


def _config_error(layer):
    try:
        layer.get_config()
    except Exception as error:
        return error
    return None


def _from_recorded_args(layer):
    args = adapter.recorded_init_args(layer)
    if args is None:
        return None
    fresh = type(layer)(**args)
    fresh.trainable = layer.trainable
    if fresh.dtype_policy.name != layer.dtype_policy.name:
        fresh.dtype_policy = layer.dtype_policy
    return fresh


def _from_live_config(layer):
    """From the config, with each callable setting (an activation object...) taken live."""
    config = layer.get_config()
    for key in config:
        value = getattr(layer, key, None)
        if callable(value) and not isinstance(value, (type, keras.layers.Layer)):
            config[key] = value
    return type(layer).from_config(config)


def _named_like(fresh, original, name=None):
    """`fresh` with the original's sub-layer names, and exactly `name` (or the original's)."""
    adapter.match_sub_layer_names(fresh, original)
    fresh.name = name or original.name
    return fresh
