"""`ModelEditor`: click a layer, change it, rebuild with weights kept, see before and after.

The editor is the `GraphView` of the model beside a panel of controls, above
the before/after plots. Everything a button does is also a method, so
notebooks and tests can script it:

>>> import keras, numpy as np
>>> from kerawidgets.widgets import ModelEditor
>>> from kerawidgets.edits import SetActivation
>>> inp = keras.Input((4,), name="x")
>>> out = keras.layers.Dense(3, activation="softmax", name="head")(
...     keras.layers.Dense(8, activation="relu", name="hidden")(inp))
>>> editor = ModelEditor(keras.Model(inp, out), np.random.default_rng(0).normal(size=(16, 4)))
>>> report = editor.apply(SetActivation("hidden", "gelu"))
>>> editor.model.get_layer("hidden").activation.__name__, report["hidden"].status
('gelu', 'kept')
>>> sorted(editor.compare()["agreement"])[:3]
['kl_divergence', 'max_abs_diff', 'mean_abs_diff']
>>> print(editor.to_code().splitlines()[-1])
model = kerawidgets.replace_activation(model, 'hidden', 'gelu')
>>> editor.undo(); editor.model is editor.original
True
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import weakref

import ipywidgets as w
import keras
import numpy as np

from kerawidgets import _keras_adapter as adapter
from kerawidgets import activations, arguments, catalog, naming, node_metrics, plots, targets
from kerawidgets.edits import (
    Edit,
    InsertLayer,
    RemoveLayer,
    ReplaceLayer,
    SetActivation,
    as_edit,
    script_header,
)
from kerawidgets.errors import InvalidEditError, KerawidgetsError, SaveCheckError
from kerawidgets.graph import ModelGraph
from kerawidgets.plan import plan_edit, supports_activation
from kerawidgets.probe import Probe
from kerawidgets.rebuild import REINITIALIZE_CHOICES, rebuild
from kerawidgets.saving import save_verified
from kerawidgets.statistics import agreement, paired_summary_statistics, summary_movement
from kerawidgets.training import StopFlag
from kerawidgets.widgets import static_view
from kerawidgets.widgets.browser_writes import guard_tree
from kerawidgets.widgets.compare_panel import ComparePanel
from kerawidgets.widgets.editor_panel import (
    NO_ACTIVATION,
    NONE_CHOICE,
    REINITIALIZE_LABEL,
    EditorPanel,
    SettingsForm,
    gui_text,
)
from kerawidgets.widgets.graph_view import GraphView, check_view_arguments
from kerawidgets.widgets.history import History, Step

__all__ = ["ModelEditor", "SaveCheckError"]

#: Largest |difference| allowed between the saved-and-reloaded model and the editor's model.
SAVE_TOLERANCE = 1e-5
_PREVIEW_CACHE = 4
_PLOT_DPI = 80


class NothingToApply(InvalidEditError):
    """The panel does not describe an edit yet (no layer, no choice, or no change)."""


@dataclasses.dataclass
class _Comparison:
    """The numbers behind the plots of one before/after pair of models.

    It keeps only what the plots draw (the focus layer's summaries, the model
    outputs, statistics), never a layer's full output nor the models. The
    comparison of a step with the one before is kept on the `History` step,
    so undo and redo redraw it without probing.
    """

    focus_before: str | None
    focus_after: str | None
    layer_before: object
    layer_after: object
    order: list
    model_before: object
    model_after: object
    stats_before: dict
    stats_after: dict
    agreement: dict
    movement: dict
    recompute: str
    recomputed: list = dataclasses.field(default_factory=list)
    pngs: dict | None = None  # the drawn figures, once shown

    def to_data(self, edit, against) -> dict:
        def layer(stats, key):
            return stats.get(key) if key is not None else None

        return {
            "edit": None if edit is None else edit.describe(),
            "against": against,
            "layer": self.focus_after,
            "layer_before": self.focus_before,
            "layer_stats": {"before": layer(self.stats_before, self.focus_before),
                            "after": layer(self.stats_after, self.focus_after)},
            "per_layer": {"before": self.stats_before, "after": self.stats_after},
            "agreement": self.agreement,
            "movement": self.movement,
            "recompute": self.recompute,
            "recomputed": list(self.recomputed),
        }


class ModelEditor:
    """Edit a Keras model's layers from its graph and see what each edit changes.

    Args:
        model: a built Functional or Sequential model, or a subclassed model whose
            `call` can be traced (built, or given `x`); it is never modified.
        x: probe inputs (array, dict of arrays, list, or a `tf.data.Dataset`);
            None makes synthetic inputs (the panel says so).
        y: labels for the probe inputs (accuracy and loss before/after).
        memory_budget: bytes of cached layer outputs (see `Probe`).
        max_batches, batch_size, seed: passed to `Probe`.
        history_size: how many edited models undo/redo keep in memory.
        height: height of the graph.

    Display the editor by leaving it as a cell's value. The current model
    is `editor.model`; `editor.history` lists the applied edits.
    """

    #: Progress steps of the operations that move the history (apply, undo, redo, reset).
    MOVE_STEPS = 5

    def __init__(self, model, x=None, y=None, *, memory_budget=2**30, max_batches=4,
                 batch_size=16, seed=0, history_size=8, height="560px", theme="auto"):
        arguments.model(model)
        arguments.integer("history_size", history_size, minimum=1)
        check_view_arguments(model, None, height, theme)
        from kerawidgets import subclassed

        if subclassed.is_subclassed(model):  # traced on a copy: the graph the probe walks
            subclassed.open_for_editing(model, x=x)
        adapter.functional_view(model)  # refuses unbuilt models up front
        self.original = model
        self.probe = Probe(model, x, y, max_batches=max_batches, batch_size=batch_size,
                           memory_budget=memory_budget, seed=seed)
        self._history = History(model, max_models=history_size)
        self._preview: list = []  # (model, edit, reinitialize, Rebuild or error), newest last
        self._comparison: _Comparison | None = None
        self._edited_paths: list[set] = [set()]
        self._replace_choices: dict[str, catalog.Choice] = {}
        self._insert_choices: dict[str, catalog.Choice] = {}
        self._busy = False  # an operation is running (see `_working`)
        self._quiet = False  # the editor itself is changing the controls: ignore their events
        self._can_apply = False  # what the preview says about the Apply button
        self._listeners: list = []  # called after the history moved (see `on_change`)
        self._stop = StopFlag()  # asks a running `recover` to stop after its batch
        self.view = GraphView(model, height=height, theme=theme)
        self.panel = EditorPanel()
        self.compare_panel = ComparePanel()
        self.panel.widget.children = (*self.panel.widget.children, self.compare_panel.widget)
        self._compare_for = None  # (weak ref to the model, layer path) the results are about
        self.comparison_image = w.Image(format="png", layout=w.Layout(width="100%",
                                                                      max_width="1120px"))
        self.depth_image = w.Image(format="png", layout=w.Layout(width="100%", max_width="900px"))
        self.plots_note = w.HTML("<i>Apply an edit to see its effect on the probe data.</i>")
        self.comparison_image.add_class("kwe-plot-comparison")
        self.depth_image.add_class("kwe-plot-depth")
        self.plots = w.VBox([self.plots_note, self.comparison_image, self.depth_image,
                             self.compare_panel.image], layout=w.Layout(width="100%"))
        # GraphView's `layout` is its graph layout, so size it through a box around it.
        # Side by side when there is room, the panel under the graph when not.
        self.graph_box = w.Box([self.view], layout=w.Layout(flex="3 1 480px", overflow="hidden"))
        self.graph_box.add_class("kwe-graph-box")
        self.panel.widget.layout.flex = "2 1 340px"
        self.panel.widget.layout.max_width = "560px"
        self.widget = w.VBox([w.HBox([self.graph_box, self.panel.widget],
                                     layout=w.Layout(width="100%", align_items="flex-start",
                                                     flex_flow="row wrap")),
                              self.plots], layout=w.Layout(width="100%"))
        self.widget.add_class("kw-editor")
        guard_tree(self.widget)  # the browser writes only the controls' own values
        self._wire()
        self.panel.show_probe(self.probe.description, self.probe.synthetic)
        self._show_plots(None)
        self._refresh_buttons()
        self._on_select(self.view.selected, clear_status=False)

    # --- display ----------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs):
        # Beside the widget view: a static copy (graph SVG, plots) for GitHub, nbviewer, nbconvert.
        bundle = self.widget._repr_mimebundle_(**kwargs)
        return static_view.with_fallback(bundle, lambda: static_view.editor_bundle(self))

    def __repr__(self):
        return (f"<ModelEditor of {self.original.name!r}: {len(self.history)} edit(s); "
                f"{self.probe.description}>")

    # --- scripting API ------------------------------------------------------------

    @property
    def model(self):
        """The current model (the original until an edit is applied)."""
        return self._history.current.model

    @property
    def history(self) -> list[Edit]:
        """The edits applied to reach `model`, oldest first (a `recover` step is a `FineTune`)."""
        return self._history.edits

    @property
    def report(self):
        """The `RebuildReport` of the step that made the current model (None at the original)."""
        return self._history.current.report

    @property
    def selected(self) -> str | None:
        """The layer path of the selected node, or None."""
        return self.view.selected.get("layer")

    def select(self, layer_or_node_id) -> None:
        """Select a layer (name, path or node id) as if clicked in the graph."""
        self.view.select(layer_or_node_id)

    def on_change(self, callback) -> None:
        """Call `callback()` after every Apply, Undo, Redo and Reset (a live `to_code`, say)."""
        self._listeners.append(callback)

    def apply(self, edit, reinitialize=None):
        """Apply an edit to the current model; returns the rebuild's `RebuildReport`.

        Raises the `KerawidgetsError` the panel shows when the edit cannot
        work; the model and history are then unchanged.
        """
        edit = as_edit(edit)
        if reinitialize not in REINITIALIZE_CHOICES:
            raise InvalidEditError(f"reinitialize must be None or 'downstream'; got {reinitialize!r}.")
        with self._working(self.MOVE_STEPS) as progress:
            try:
                progress(1, "Rebuilding the model…")
                result = self._dry_run(edit, reinitialize)
                if isinstance(result, KerawidgetsError):
                    raise result
            except KerawidgetsError as error:
                self._show_error(error, edit)
                raise
            self._history.push(Step(edit, reinitialize, result.model, result.report))
            self._edited_paths[self._history.position:] = [
                self._edited_paths[self._history.position - 1] | _edited(result.report)]
            self._preview.clear()
            self._after_move(f"Applied: {edit.describe()}.", progress)
        return result.report

    def undo(self) -> None:
        """Go back one edit (instant while the previous model is kept)."""
        self._move(self._history.undo, "Going back one edit…", "Undone.")

    def redo(self) -> None:
        """Re-apply the edit undone last."""
        self._move(self._history.redo, "Re-applying the undone edit…", "Redone.")

    def reset(self) -> None:
        """Back to the original model; the edits stay available to `redo`."""
        self._move(self._history.reset, "Going back to the original model…",
                   "Reset to the original model.")

    def _move(self, step, doing, done):
        with self._working(self.MOVE_STEPS) as progress:
            progress(1, doing)  # History rebuilds a model it no longer keeps
            try:
                step()
            except KerawidgetsError as error:
                self._show_error(error, None)
                raise
            self._after_move(done, progress)

    def sweep(self, layer=None, candidates=(), *, reinitialize=None, progress=None, data=None):
        """Compare candidate edits of `layer` (default: the selected one) on the probe.

        `candidates` are activation names and/or edit values; each is
        rebuilt as a dry run, nothing is applied. Returns a
        `kerawidgets.sweep.SweepResult`; its ``apply(i)`` applies row `i`
        here (a history step, like `apply`). With `data=` (a full dataset)
        each candidate is also evaluated on it with Keras' evaluate and rows
        rank by that. See `kerawidgets.sweep.sweep`.
        """
        from kerawidgets.sweep import sweep

        layer = layer if layer is not None else self.selected
        if layer is None:
            raise NothingToApply("Select a layer in the graph first, or pass layer=.")
        candidates = [candidates] if isinstance(candidates, (str, Edit)) else list(candidates)
        with self._working(len(candidates) * (2 if data is not None else 1) + 1) as step:
            def report(i, n, text):
                step(i + 1, text)
                if progress is not None:
                    progress(i, n, text)

            return sweep(self.model, layer, candidates, probe=self.probe,
                         reinitialize=reinitialize, progress=report, data=data,
                         apply=lambda edit: self.apply(edit, reinitialize=reinitialize))

    def evaluate(self, data, y=None, *, batch_size=None, steps=None, progress=None) -> dict:
        """Keras' own `evaluate` on the original and the current model.

        `data`: arrays (with `y`), an ``(x, y)`` pair, a `tf.data.Dataset`, a
        `keras.utils.PyDataset` or a torch DataLoader (torch backend).
        Returns ``{"original": {metric: value}, "current": {...}}``; the
        models use the original's compile settings. Runs under the active
        distribution or strategy like any Keras evaluate.
        """
        from kerawidgets.training import evaluate_pair

        with self._working(100) as step:
            def report(done, total, text):
                if total:
                    step(max(1, round(100 * done / total)), text)
                if progress is not None:
                    progress(done, total, text)

            result = evaluate_pair(self.original, self.model, data, y, batch_size=batch_size,
                                   steps=steps, progress=report)
            self.panel.show_status(_evaluation_line(result), "ok")
        return result

    def recover(self, x, y=None, *, epochs=1, batch_size=32, steps=None, progress=None,
                validation_data=None):
        """Fine-tune the current model with Keras' `fit`, as a new history step.

        The current model is copied and the copy trained (compiled like the
        original: same loss and metrics, a fresh optimizer of the same kind);
        Undo returns to the weights before fine-tuning, and the original is
        never touched. `stop_training()` (the Stop button) ends it after the
        current batch, keeping what was learned. Returns a
        `kerawidgets.training.FineTuneResult` (`history`, `batch_logs`, `step`).
        """
        from kerawidgets.training import fine_tune

        self._stop.clear()
        with self._working(self.MOVE_STEPS) as step:
            step(1, "Fine-tuning…")
            try:
                result = fine_tune(self.model, x, y, epochs=epochs, batch_size=batch_size,
                                   steps=steps, stop=self._stop, progress=progress,
                                   validation_data=validation_data)
            except KerawidgetsError as error:
                self._show_error(error, None)
                raise
            self._history.push(Step(result.step, None, result.model, result.report, pinned=True))
            self._edited_paths[self._history.position:] = [
                self._edited_paths[self._history.position - 1] | _edited(result.report)]
            self._preview.clear()
            self._after_move(f"{result.step.describe()}.", step)
        return result

    def stop_training(self) -> None:
        """Ask a running `recover` to stop after its current batch."""
        self._stop.stop()

    def compare(self, against="previous") -> dict:
        """The numbers behind the plots, as plain data.

        `against="previous"` compares the current model with the one before
        the last edit (what the plots show); `"original"` with the original.
        Returns ``{"edit", "against", "layer", "layer_before", "layer_stats",
        "per_layer", "agreement", "movement", "recompute", "recomputed"}`` or,
        at the original model, the same keys with no numbers. `recompute` is
        how the after side was probed ("incremental", "full", or "cached":
        nothing ran) and `recomputed` the node ids it summarised.
        """
        if against not in ("previous", "original"):
            raise InvalidEditError(f"against must be 'previous' or 'original'; got {against!r}.")
        if self._history.position == 0:
            return {"edit": None, "against": against, "layer": None, "layer_before": None,
                    "layer_stats": None, "per_layer": None, "agreement": None,
                    "movement": None, "recompute": None, "recomputed": None}
        with self._working(1) as progress:
            probing = _probe_progress(progress, 0, "Probing the layer outputs…")
            if against == "previous":
                comparison = self._comparison or self._compute(self._history.position,
                                                               progress=probing)
            else:
                comparison = self._compute(self._history.position, base=0, progress=probing)
        return comparison.to_data(self._history.steps[self._history.position].edit, against)

    def figures(self) -> dict:
        """The current plots as matplotlib Figures: ``{"comparison": ..., "depth": ...}``."""
        if self._history.position == 0:
            return {}
        comparison = self._comparison or self._compute(self._history.position)
        return _figures(comparison, self.probe.y)

    def to_code(self, model_var="model") -> str:
        """A Python script that replays `history` on `model_var` with the public API:
        it imports every layer class it names and registers the custom activations
        it uses (`kerawidgets.edits.script_header`)."""
        steps = self._history.steps[1:self._history.position + 1]
        lines = [*script_header([step.edit for step in steps]), "",
                 f"# `{model_var}` is the original model, {self.original.name!r}; "
                 f"{len(self.history)} edit(s) follow."]
        for step in steps:
            code = step.edit.to_code(model_var)
            if step.reinitialize is not None:
                if not code.endswith(")"):
                    raise InvalidEditError(f"Cannot write {step.edit.describe()} as code.")
                code = f"{code[:-1]}, reinitialize={step.reinitialize!r})"
            lines.append(code)
        return "\n".join(lines) + "\n"

    def save(self, path) -> str:
        """Write the current model to a `.keras` file that reloads to the same model.

        The reloaded model must have the same layers and give the same
        outputs on the probe data (within `SAVE_TOLERANCE`); otherwise
        `SaveCheckError` names the layer and why, and no file is written
        (`saving.save_verified`). Returns the path.
        """
        path = os.fspath(path)
        if not path.endswith(".keras"):
            raise InvalidEditError(f"Save to a file ending in '.keras'; got {path!r}.")
        with self._working(2) as progress:
            progress(1, f"Writing {path}, reloading it and checking its outputs on the probe data…")
            expected = keras.tree.flatten(self._predict(self.model))

            def worst_difference(reloaded):
                got = keras.tree.flatten(self._predict(reloaded))
                if len(got) != len(expected) or any(a.shape != b.shape for a, b in zip(expected, got)):
                    return float("inf")
                return max(float(np.max(np.abs(a - b))) for a, b in zip(expected, got))

            try:
                how = save_verified(self.model, path, worst_difference, SAVE_TOLERANCE)
            except SaveCheckError as error:
                self._show_error(error, None)
                raise
            progress(2, "Saved.")
            self.panel.show_status(f"Saved to {path} ({how}).", "ok")
        return path

    def _predict(self, model):
        # keras.Model's own predict: a keras-hub task's would run its preprocessor first.
        outputs = keras.Model.predict(model, self.probe.x, batch_size=self.probe.batch_size, verbose=0)
        return [np.asarray(o) for o in keras.tree.flatten(outputs)]

    # --- rebuild, cached for preview then Apply -------------------------------------

    def _dry_run(self, edit, reinitialize):
        """The rebuild of `edit` on the current model (or its error), cached for Apply.

        Entries are matched by the model's identity and the edit's value
        (`==`), not its JSON: edits that have no JSON (a predicate
        selector) are cached too, and two sub-networks with the same name
        are never confused.
        """
        model = self.model
        for entry in self._preview:
            if entry[0] is model and entry[2] == reinitialize and _same_edit(entry[1], edit):
                return entry[3]
        try:
            with adapter.strategy_scope(model):  # mirrored like the original's variables
                result = rebuild(model, [edit], reinitialize=reinitialize)
        except KerawidgetsError as error:
            result = error
        self._preview.append((model, edit, reinitialize, result))
        del self._preview[:-_PREVIEW_CACHE]
        return result

    # --- comparisons ------------------------------------------------------------------

    def _compute(self, position, base=None, progress=None) -> _Comparison:
        """The comparison of step `position` with step `base` (default: the one before).

        Each side is the probe's summaries of that step's model: kept on the
        step once known (so a step whose model History dropped is never
        probed again), otherwise probed, the after side incrementally from
        the before side. `progress(done, total)` follows the probe's calls.
        """
        base = position - 1 if base is None else base
        steps = self._history.steps
        progress_before, progress_after = _two_runs(progress)
        before = self._record(base, progress_before)
        step = steps[position]
        kind, recomputed = "cached", []
        if step.record is not None:
            after = step.record
        else:
            after_model = self._history.at(position).model
            if base == position - 1:
                before_model = self._history.at(base).model
                if not self.probe.cached(before_model):  # rebuilt by History: same layers
                    self.probe.remember(before_model, before)
                run = self.probe.summaries_after_edit(before_model, after_model,
                                                      _changed(step.report, after_model),
                                                      progress_after)
            else:
                run = self.probe.summaries(after_model, progress_after)
            kind, recomputed = run.kind, run.recomputed
            after = step.record = run.record.without_checkpoints()
            self._history.trim()  # a model rebuilt only to probe from goes again
        b, a = before.summaries, after.summaries
        focus_before, focus_after = _focus(step.edit, step.report,
                                           lambda: self._history.at(base).model, b, a)
        stats_before, stats_after = paired_summary_statistics(b, a)
        out_before, out_after = _single(before.model_outputs), _single(after.model_outputs)
        order = naming.merged_order(b, a)  # a removed layer stays in place
        return _Comparison(
            focus_before, focus_after, b.get(focus_before) if focus_before else None,
            a.get(focus_after) if focus_after else None, order,
            out_before, out_after, stats_before, stats_after,
            agreement(out_before, out_after, self.probe.y), summary_movement(b, a), kind,
            recomputed)

    def _record(self, position, progress=None):
        """The summaries of step `position`'s model: from the step, or probed (one pass) and kept."""
        step = self._history.steps[position]
        if step.record is None:
            step.record = self.probe.summaries(self._history.at(position).model,
                                               progress).record.without_checkpoints()
        elif step.model is not None and not self.probe.cached(step.model):
            self.probe.remember(step.model, step.record)
        return step.record

    # --- reacting to the UI -----------------------------------------------------------

    def _wire(self):
        p = self.panel
        self.view.on_select(self._on_select)
        p.tabs.observe(lambda _c: self._update_preview(), names="selected_index")
        p.activation.observe(lambda _c: self._update_preview(), names="value")
        p.activation_setting.observe(lambda _c: self._on_activation_setting(), names="value")
        p.bulk.observe(lambda _c: self._update_preview(), names="value")
        p.reinitialize.observe(lambda _c: self._update_preview(), names="value")
        p.replace.observe(lambda c: self._on_choice("replace", c["new"]), names="value")
        p.insert.observe(lambda c: self._on_choice("insert", c["new"]), names="value")
        p.apply_button.on_click(lambda _b: self._guarded(self._apply_from_panel))
        p.undo_button.on_click(lambda _b: self._guarded(self.undo))
        p.redo_button.on_click(lambda _b: self._guarded(self.redo))
        p.reset_button.on_click(lambda _b: self._guarded(self.reset))
        self.compare_panel.run_button.on_click(lambda _b: self._guarded(self._sweep_from_panel))

    def _guarded(self, action):
        """Run a button's action; a KerawidgetsError is shown (not raised) and the editor stays usable."""
        if self._busy:
            return
        try:
            action()
        except KerawidgetsError as error:
            self.panel.show_status(str(error), "error")  # shown already, unless raised before work began
        except Exception as error:  # a bug or a Keras error we did not foresee: show it, stay usable
            self._show_error(error, None)

    def _apply_from_panel(self):
        edit = self.pending_edit()
        reinitialize = "downstream" if self.panel.reinitialize.value else None
        self.apply(edit, reinitialize=reinitialize)

    def _layer(self, path):
        (target,) = targets.resolve(self.model, path, allow_many=False)
        return target.layer

    def _on_select(self, selected, clear_status=True):
        if self._quiet:
            return
        with self._working(3) as progress:
            progress(1, "Reading the selected layer…")
            p = self.panel
            node_id = selected.get("id") if selected else None
            node = self.view.graph.node(node_id) if node_id else None
            editable = node is not None and not node.is_input and node.path in self._layer_paths()
            layer = self._layer(node.path) if editable else None
            config = _config_of(layer) if layer is not None else ({} if node is None else None)
            p.show_layer(node, config, activations.activation_settings(layer) if layer else None)
            progress(2, "Finding the layer types that fit here…")
            self._quiet = True
            try:
                self._fill_activation(layer)
                self._fill_choices(node.path if editable else None)
                self._fill_remove(node.path if editable else None, node)
                self._fill_compare(layer, node.path if editable else None)
            finally:
                self._quiet = False
            if node is not None and not editable:
                p.show_status("Inputs cannot be edited; select a layer." if node.is_input
                              else "This node is not a layer that can be edited.", "info")
            elif clear_status:
                p.show_status("")
            progress(3, "Checking the edit (dry-run rebuild)…")
            self._update_preview()

    def _layer_paths(self) -> set:
        return set(targets.layer_paths(self.model))

    def _on_activation_setting(self):
        """Another activation setting picked (LSTM's recurrent_activation...): show its value."""
        if self._quiet:
            return
        self._quiet = True
        try:
            self._fill_activation(self._layer(self.selected), self.panel.activation_setting.value)
        finally:
            self._quiet = False
        self._update_preview()

    def _fill_activation(self, layer, attribute=None):
        p = self.panel
        names = activations.available()
        settings = activations.activation_settings(layer) if layer is not None else {}
        if attribute is None:
            p.show_activation_settings(settings)
            attribute = p.activation_setting.value
        if layer is None or not supports_activation(layer, attribute):
            shown = NO_ACTIVATION if layer is not None else NONE_CHOICE  # never a stale "relu"
            p.activation.options = [shown]
            p.activation.value = shown
            p.activation.disabled = True
            p.bulk.disabled = True
            p.bulk.value = False
            p.activation_note.value = ("<i>This layer has no activation; replace it or insert "
                                       "an Activation after it.</i>" if layer is not None else "")
            return
        current = settings.get(attribute) or activations.layer_activation(layer)
        p.activation.options = names if current in names else [current, *names]
        p.activation.value = current
        p.activation.disabled = False
        similar = self._similar(layer, attribute)
        p.bulk.disabled = len(similar) < 2
        p.bulk.value = False
        p.bulk.description = (f"apply to all {len(similar)} {type(layer).__name__} layers "
                              f"with {attribute.replace('_', ' ')} {current!r}" if len(similar) > 1
                              else "apply to every layer like this (no other)")
        p.activation_note.value = ""

    def _similar(self, layer, attribute="activation") -> list[str]:
        """Paths of layers of the same class with the same value of activation setting
        `attribute` as `layer` (for LSTMs' recurrent_activation: the same gate)."""
        def value(other):
            return activations.activation_settings(other).get(attribute)

        want = (type(layer), value(layer))
        return [naming.layer_path(path) for path, other in targets.walk_layers(self.model)
                if type(other) is want[0] and value(other) == want[1]
                and supports_activation(other, attribute)]

    def _fill_choices(self, path):
        p = self.panel
        if path is None:
            self._replace_choices, self._insert_choices = {}, {}
        else:
            self._replace_choices = {c.class_name: c for c in catalog.replacement_choices(self.model, path)}
            self._insert_choices = {c.class_name: c for c in catalog.insert_choices(self.model, path)}
        for purpose, dropdown, choices in (("replace", p.replace, self._replace_choices),
                                           ("insert", p.insert, self._insert_choices)):
            # Class names only: the verdict under the dropdown says, for the settings as
            # they are now, whether the shape is kept (a label would go stale as you type).
            options = [(NONE_CHOICE, NONE_CHOICE)] + [(name, name) for name in choices]
            dropdown.options = options
            dropdown.value = NONE_CHOICE
            dropdown.disabled = path is None
            self._on_choice(purpose, NONE_CHOICE)

    def _on_choice(self, purpose, class_name):
        with self._working() as progress:
            progress(1, "Checking the edit (dry-run rebuild)…")
            p = self.panel
            choices = self._replace_choices if purpose == "replace" else self._insert_choices
            choice = choices.get(class_name)
            form = SettingsForm(choice, on_change=self._update_preview)
            p.set_form(purpose, form)
            guard_tree(form.box)
            p.show_verdict(p.replace_verdict if purpose == "replace" else p.insert_verdict, choice)
            if not self._quiet:
                self._update_preview()

    def _fill_compare(self, layer, path):
        """Offer the candidates that fit the selected layer in "Compare several"."""
        c = self.compare_panel
        about = self._compare_for
        if about is None or about[0]() is not self.model or about[1] != path:
            c.clear()
            self._compare_for = None
        if path is None:
            c.set_choices({}, False, "<i>Select a layer to compare candidates for it.</i>")
            return
        values = {}
        if supports_activation(layer):
            values.update({f"activation: {name}": name for name in activations.available()})
        values.update({f"replace with {name}": ("replace", name) for name in self._replace_choices})
        c.set_choices(values, bool(values),
                      f"Candidates for <b>{_escape(path)}</b>: pick several (Ctrl/Shift-click), "
                      "then Run. Nothing is applied until you press a candidate's Apply.")

    def _sweep_from_panel(self):
        path = self.selected
        candidates = []
        for value in self.compare_panel.candidates():
            if isinstance(value, tuple):  # a layer type from the catalog, with its defaults
                choice = self._replace_choices[value[1]]
                candidates.append(ReplaceLayer(path, choice.spec(dict(choice.defaults))))
            else:
                candidates.append(value)
        if not path or not candidates:
            raise NothingToApply("Pick at least one candidate to compare, then Run.")
        reinitialize = "downstream" if self.panel.reinitialize.value else None
        result = self.sweep(path, candidates, reinitialize=reinitialize)
        png = plots.figure_to_png(result.figure(), dpi=_PLOT_DPI)
        self.compare_panel.show_result(
            result, png, lambda i: self._guarded(lambda: result.apply(i)))
        self._compare_for = (weakref.ref(self.model), path)  # holds no model alive
        best = result.best()
        self.panel.show_status(
            f"Compared {len(result)} candidates for {path}"
            + (f"; best by {result.default_metric()}: {best.label}." if best else "."), "ok")

    def _fill_remove(self, path, node):
        p = self.panel
        if path is None:
            p.remove_note.value = "<i>Select a layer.</i>" if node is None else ""
            return
        ok, reason = catalog.can_remove(self.model, path)
        if ok:
            p.remove_note.value = f"Remove <b>{_escape(path)}</b>: its input flows on to its consumers."
        elif _removal_plans(self.model, path):  # only shapes change: the checkbox can allow it
            p.remove_note.value = (
                f"<span class='kwe-verdict-change'>{_escape(reason)} The layers after it whose "
                f"weights no longer fit need fresh weights: tick '{REINITIALIZE_LABEL}'.</span>")
        else:
            p.remove_note.value = (f"<span class='kwe-verdict-change'>Cannot remove: "
                                   f"{_escape(gui_text(reason))}</span>")

    def pending_edit(self) -> Edit:
        """The edit the panel's current tab and values describe (checked in the kernel)."""
        p = self.panel
        path = self.selected
        if not path or path not in self._layer_paths():
            raise NothingToApply("Select a layer in the graph first.")
        action = p.action
        if action == "activation":
            layer = self._layer(path)
            attribute = p.activation_setting.value or "activation"
            if not supports_activation(layer, attribute):
                raise NothingToApply(
                    f"Layer {path!r} ({type(layer).__name__}) has no activation; use Replace "
                    "or Insert after.")
            name = p.activation.value
            activations.get(name)  # only known activations
            current = activations.activation_settings(layer).get(attribute)
            if name == current and not p.bulk.value:
                raise NothingToApply(f"{path!r} already uses {name!r}: pick another activation.")
            if p.bulk.value:
                return SetActivation(self._bulk_target(layer, attribute), name, attribute=attribute)
            return SetActivation(path, name, attribute=attribute)
        if action in ("replace", "insert"):
            dropdown = p.replace if action == "replace" else p.insert
            if dropdown.value in (None, NONE_CHOICE):
                raise NothingToApply(f"Choose a layer type to {'replace with' if action == 'replace' else 'insert'}.")
            form = p.replace_settings if action == "replace" else p.insert_settings
            choice = catalog.check_choice(self.model, path, dropdown.value, form.values(),
                                          purpose=action)
            spec = choice.spec(dict(choice.defaults))
            return ReplaceLayer(path, spec) if action == "replace" else InsertLayer(path, spec)
        if not _removal_plans(self.model, path):  # the Remove tab says why
            raise NothingToApply(f"{path!r} cannot be removed (see above).")
        return RemoveLayer(path)  # the dry run says whether shapes downstream allow it

    def _bulk_target(self, layer, attribute="activation"):
        similar = self._similar(layer, attribute)
        cls = type(layer)
        every = [naming.layer_path(p) for p, other in targets.walk_layers(self.model)
                 if type(other) is cls]
        public = getattr(keras.layers, cls.__name__, None) is cls
        if sorted(similar) == sorted(every) and public:
            return cls
        return tuple(similar)

    def _update_preview(self):
        if self._quiet:
            return
        with self._working() as progress:
            progress(1, "Checking the edit (dry-run rebuild)…")
            self._can_apply = self._preview_pending()

    def _preview_pending(self) -> bool:
        """Fill the preview line from a dry run of the pending edit; whether Apply may run it."""
        p = self.panel
        try:
            edit = self.pending_edit()
        except NothingToApply as hint:
            p.show_preview(str(hint) if self.selected else "", hint=True)
            return False
        except KerawidgetsError as error:
            p.show_preview(str(error), bad=True)
            if p.action in ("replace", "insert"):
                self._show_form_verdict()
            return False
        self._show_form_verdict()
        reinitialize = "downstream" if p.reinitialize.value else None
        try:
            result = self._dry_run(edit, reinitialize)
        except Exception as error:  # a bug or a Keras error we did not foresee: say it here
            result = error
        if isinstance(result, Exception):
            reason = result if isinstance(result, KerawidgetsError) else (
                f"Unexpected {type(result).__name__}: {result}")
            p.show_preview(f"{edit.describe()}: cannot apply. {reason}", bad=True)
            return False
        p.show_preview(f"{edit.describe()}. Weights: {_weights_preview(result.report)}")
        return True

    def _show_form_verdict(self):
        p = self.panel
        for purpose, dropdown, form, target in (
                ("replace", p.replace, p.replace_settings, p.replace_verdict),
                ("insert", p.insert, p.insert_settings, p.insert_verdict)):
            if p.action != purpose or dropdown.value in (None, NONE_CHOICE) or not self.selected:
                continue
            try:
                choice = catalog.check_choice(self.model, self.selected, dropdown.value,
                                              form.values(), purpose=purpose)
            except KerawidgetsError as error:
                target.value = f"<span class='kwe-verdict-change'>{_escape(str(error))}</span>"
            else:
                p.show_verdict(target, choice)

    # --- after the model changed ----------------------------------------------------

    def _after_move(self, message, progress):
        """Show the model the history moved to: graph, report, plots, heat, panel.

        Runs inside the operation that moved (steps 2 to 5 of its progress).
        The move itself (a rebuilt model pushed, an undo...) has already
        happened and stays: an error while probing or plotting is shown in
        the status area and the plots' place, and the editor stays usable.
        """
        problem = None
        progress(2, "Updating the graph…")
        self._quiet = True
        try:
            self.view.set_model(self.model)
        finally:
            self._quiet = False
        self._comparison = None
        self._quiet = True
        try:  # each edit asks again before giving layers fresh weights
            self.panel.reinitialize.value = False
        finally:
            self._quiet = False
        self.panel.show_report(self.report)
        if self._history.position > 0:
            try:
                step = self._history.steps[self._history.position]
                if step.comparison is None:
                    doing = "Probing the layer outputs…"
                    progress(3, doing)
                    step.comparison = self._compute(self._history.position,
                                                    progress=_probe_progress(progress, 3, doing))
                else:
                    progress(3, "Kept from before: no probing needed.")
                self._comparison = step.comparison
                progress(4, "Drawing the plots…")
                self._show_plots(self._comparison)
            except Exception as error:  # the move stands; say why there are no plots
                problem = error
                self._show_plots(None, error)
        else:
            self._show_plots(None)
        self._show_graph_state()
        progress(5, "Refreshing the panel…")
        self._on_select(self.view.selected, clear_status=False)
        if problem is None:
            self.panel.show_status(message, "ok")
        else:
            self.panel.show_status(f"{message} {_plot_failure(problem)}", "error")
        for callback in self._listeners:
            callback()

    def _show_graph_state(self):
        graph = self.view.graph
        self.view.clear_marks()
        comparison = self._comparison
        self.view.set_heat({})
        if comparison is None:
            self.view.set_metrics({})
            return
        # Colour by: movement and the after-model's own statistics (no extra pass).
        self.view.set_metrics({name: {**spec, "values": {k: v for k, v in spec["values"].items()
                                                         if graph.has_node(k)}}
                               for name, spec in node_metrics.from_statistics(
                                   comparison.stats_after, comparison.movement).items()})
        for path in sorted(self._edited_paths[self._history.position]):
            for node in graph.nodes_of_layer(path):
                self.view.mark(node.id, "edited")

    def _show_plots(self, comparison, error=None):
        if comparison is None:
            self.plots_note.value = (
                "<i>Apply an edit to see its effect on the probe data.</i>" if error is None
                else f"<span class='kwe-status-error'>{_escape(_plot_failure(error))}</span>")
            self.comparison_image.value = b""
            self.depth_image.value = b""
            self.comparison_image.layout.display = "none"
            self.depth_image.layout.display = "none"
            return
        if comparison.pngs is None:  # drawn once per comparison: undo and redo reuse it
            figures = _figures(comparison, self.probe.y)
            comparison.pngs = {key: plots.figure_to_png(figures[key], dpi=_PLOT_DPI)
                               for key in ("comparison", "depth")}
        self.comparison_image.value = comparison.pngs["comparison"]
        self.depth_image.value = comparison.pngs["depth"]
        self.comparison_image.layout.display = None
        self.depth_image.layout.display = None
        a = comparison.agreement
        parts = [f"<b>{_escape(self._history.current.edit.describe())}</b>",
                 f"probe: {self.probe.n} samples" + (" (synthetic)" if self.probe.synthetic else ""),
                 f"recompute: {comparison.recompute}"]
        if a.get("top1_agreement") is not None:
            parts.append(f"top-1 agreement {a['top1_agreement']:.1%}")
        if a.get("accuracy_before") is not None:
            parts.append(f"accuracy {a['accuracy_before']:.1%} → {a['accuracy_after']:.1%}")
        self.plots_note.value = " · ".join(parts)

    @contextlib.contextmanager
    def _working(self, steps=1):
        """The busy state of one kernel-side operation; yields `progress(step, text)`.

        While it runs, Apply, Undo, Redo and Reset are disabled and the
        status line says what is happening, with a progress bar at step
        `step` of `steps` (an operation that moves the history has
        `MOVE_STEPS`: 1 rebuild or restore, 2 graph, 3 probe, 4 plots,
        5 panel; selecting a layer 3: 1 details, 2 choices, 3 preview). It is
        cleared however the operation ends. An operation started inside
        another one (the panel refresh after Apply) leaves the outer
        operation's progress as it is.
        """
        if self._busy:
            yield lambda step, text: None
            return
        self._busy = True
        try:
            yield lambda step, text: self.panel.set_busy(True, text, step, steps)
        finally:
            self._busy = False
            self.panel.set_busy(False)
            self._refresh_buttons()

    def _refresh_buttons(self):
        if self._busy:
            return
        p = self.panel
        p.apply_button.disabled = not self._can_apply
        p.undo_button.disabled = not self._history.can_undo
        p.redo_button.disabled = not self._history.can_redo
        p.reset_button.disabled = self._history.position == 0

    def _show_error(self, error, edit):
        self.panel.show_status(str(error), "error")
        where = getattr(error, "layer", None) or _edit_layer(edit)
        if isinstance(where, str):
            try:
                self.view.mark(where, "error")
            except KerawidgetsError:
                pass


# --- helpers ---------------------------------------------------------------------


def _escape(text) -> str:
    import html

    return html.escape(str(text))


def _config_of(layer) -> dict:
    try:
        return json.loads(json.dumps(layer.get_config(), default=str))
    except Exception:
        return {}


def _removal_plans(model, path) -> bool:
    """Whether removing `path` is a valid edit at all (shapes downstream aside)."""
    try:
        plan_edit(model, RemoveLayer(path))
    except KerawidgetsError:
        return False
    return True


def _plot_failure(error) -> str:
    """The status line for an edit that was applied but could not be probed or plotted."""
    what = str(error) if isinstance(error, KerawidgetsError) else f"{type(error).__name__}: {error}"
    return (f"The edit is kept, but its before/after plots could not be made ({what}). "
            "Undo it, or carry on editing.")


def _same_edit(a, b) -> bool:
    """Whether two edits are the same value (identity when they cannot be compared)."""
    if a is b:
        return True
    try:
        return bool(a == b)
    except Exception:  # a field whose == is not a plain bool (an array, say)
        return False


def _edit_layer(edit):
    if edit is None:
        return None
    value = getattr(edit, "layer", None) if not isinstance(edit, InsertLayer) else edit.after
    return value if isinstance(value, str) else None


def _edited(report) -> set:
    return {o.layer for o in report.outcomes if o.edited and o.status != "removed"}


def _changed(report, model) -> list[str]:
    """Layer paths of `model` whose weights or config differ from the model before the edit."""
    present = set(targets.layer_paths(model))
    return [o.layer for o in report.outcomes
            if (o.edited or o.status in ("reinitialised", "new")) and o.layer in present]


def _focus(edit, report, before_model, before, after):
    """(node in the old model, node in the new model) whose outputs the histograms compare.

    `before_model` is a function giving the old model (only a removal needs it).
    """
    if isinstance(edit, InsertLayer):
        new = [o.layer for o in report.outcomes if o.status == "new"]
        return edit.after, (new[-1] if new else edit.after)
    if isinstance(edit, RemoveLayer):
        graph = ModelGraph.from_model(before_model())
        sources = [e.source for e in graph.edges if e.target == edit.layer]
        return edit.layer, (sources[0] if sources else None)
    edited = [o.layer for o in report.outcomes if o.edited and o.layer in after]
    layer = edited[0] if edited else None
    return (layer if layer in before else None), layer


def _single(outputs):
    return outputs[0] if len(outputs) == 1 else list(outputs)


def _two_runs(progress):
    """Progress callbacks for probing the before side, then the after side, on one bar.

    The after side is at most a pass like the before side's, so the before
    side fills up to half the bar; the after side then counts on from there.
    """
    if progress is None:
        return None, None
    first = [0]

    def before(done, total):
        first[0] = total
        progress(done, 2 * total)

    def after(done, total):
        progress(first[0] + done, first[0] + total)

    return before, after


def _probe_progress(progress, step, text):
    """A probe progress callback moving the editor's bar from `step` towards `step + 1`.

    The bar stops just short of `step + 1`, which the next step reaches.
    """
    shown = [-1]

    def report(done, total):
        percent = int(100 * done / max(total, 1))
        if percent != shown[0]:  # at most 100 updates of the bar
            shown[0] = percent
            progress(step + 0.99 * done / max(total, 1),
                     f"{text} {done} of {total} layer calls")
    return report


def _figures(comparison: _Comparison, y) -> dict:
    c = comparison
    layer_before, layer_after = c.layer_before, c.layer_after
    if layer_before is None:
        layer_before = layer_after
    name = c.focus_after or c.focus_before or "edited layer"
    if c.focus_before and c.focus_after and c.focus_before != c.focus_after:
        name = f"{c.focus_before} → {c.focus_after}"
    comparison = plots.comparison_figure(layer_before, layer_after, c.model_before,
                                         c.model_after, agreement=c.agreement, y=y,
                                         layer_name=name)
    depth = plots.depth_summary_figure(c.stats_before, c.stats_after, order=c.order,
                                       highlight=c.focus_after)
    return {"comparison": comparison, "depth": depth}


def _evaluation_line(result) -> str:
    """One status line: each metric, original → current."""
    parts = [f"{name} {result['original'][name]:.4g} → {value:.4g}"
             for name, value in result["current"].items() if name in result["original"]]
    return "Evaluated: " + ", ".join(parts) + "."


def _weights_preview(report) -> str:
    """One line: what Apply will do to weights."""
    parts = [report.summary()]
    reinit = [o for o in report.outcomes if o.status == "reinitialised"]
    downstream = [o.layer for o in reinit if not o.edited]
    edited_reinit = [o.layer for o in reinit if o.edited]
    if edited_reinit:
        parts.append(f"reinitialised: {', '.join(edited_reinit)}")
    if downstream:
        parts.append(f"downstream affected (reinitialised): {', '.join(downstream)}")
    if not reinit:
        parts.append("every existing weight is kept")
    return "; ".join(parts) + "."
