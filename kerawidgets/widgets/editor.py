"""`ModelEditor`: click a layer, change it, rebuild with weights kept, see before and after.

The editor is the `GraphView` of the model beside a panel of controls, above
the before/after plots. It is a view of an `EditSession` (`editor.session`),
which holds the model, the history, the dry runs and the comparisons; every
scripted call below goes to the session, and the widgets show what it tells
them. Everything a button does is also a method, so notebooks and tests can
script it:

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
import weakref
from typing import Any

import ipywidgets as w
import keras
import numpy as np

from kerawidgets import activations, catalog, node_metrics, plots, targets
from kerawidgets.edits import (
    EDIT_TYPES,
    Edit,
    RemoveLayer,
    ReplaceLayer,
)
from kerawidgets.errors import EditorClosedError, KerawidgetsError, SaveCheckError
from kerawidgets.plan import plan_edit, supports_activation
from kerawidgets.report import RebuildReport
from kerawidgets.session import (
    _KEEP,
    SAVE_TOLERANCE,
    EditSession,
    NothingToApply,
    SessionObserver,
    edit_layer,
    figure_inputs,
    plot_failure,
)
from kerawidgets.training import FineTune
from kerawidgets.widgets import idle_collection, static_view
from kerawidgets.widgets.browser_writes import guard_tree
from kerawidgets.widgets.closing import close_tree
from kerawidgets.widgets.compare_panel import ComparePanel
from kerawidgets.widgets.editor_panel import (
    NO_ACTIVATION,
    NONE_CHOICE,
    REINITIALIZE_LABEL,
    EditorPanel,
    SettingsForm,
    gui_text,
)
from kerawidgets.widgets.export import editor_export
from kerawidgets.widgets.finetune_panel import FineTunePanel
from kerawidgets.widgets.graph_view import GraphView, check_view_arguments
from kerawidgets.widgets.plot_controls import PlotControls
from kerawidgets.widgets.plot_image import PlotImage

__all__ = ["SAVE_TOLERANCE", "EditorClosedError", "ModelEditor", "NothingToApply", "SaveCheckError"]

_PLOT_DPI = 80
#: Widest each plot is drawn (CSS px): wider screens show it at this width, not stretched.
_PLOT_MAX_WIDTH = {"comparison": 1280, "depth": 1400}


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
        exact_statistics: read every value of every layer output for the
            statistics (see `Probe`); by default large outputs are read at
            sampled positions, which keeps Apply quick at 224x224.
        history_size: how many edited models undo/redo keep in memory.
        height: height of the graph.

    Display the editor by leaving it as a cell's value. The current model
    is `editor.model`; `editor.history` lists the applied edits;
    `editor.session` is the `EditSession` the widgets show. `close()` lets
    go of it all (also as ``with ModelEditor(...) as editor:``).
    """

    #: Progress steps of the operations that move the history (apply, undo, redo, reset).
    MOVE_STEPS = EditSession.MOVE_STEPS

    def __init__(self, model, x=None, y=None, *, memory_budget=2**30, max_batches=4,
                 batch_size=16, seed=0, history_size=8, height="560px", theme="auto",
                 exact_statistics=False):
        check_view_arguments(model, None, height, theme)
        self._session: EditSession | None = EditSession(
            model, x, y, memory_budget=memory_budget, max_batches=max_batches,
            batch_size=batch_size, seed=seed, history_size=history_size,
            exact_statistics=exact_statistics)
        self._name = model.name  # for the messages of a closed editor
        self._replace_choices: dict[str, catalog.Choice] = {}
        self._replace_waiting: str | None = None  # the layer whose replacements wait (`_fill_choices`)
        self._insert_choices: dict[str, catalog.Choice] = {}
        self._train_data = (x, y)  # what the panel's Fine-tune trains on
        self._quiet = False  # the editor itself is changing the controls: ignore their events
        self._checking_panel = False  # a check of the panel runs: the buttons keep their state
        self._finetune_locked = False  # the fine-tune controls are locked for the operation
        self._can_apply = False  # what the preview says about the Apply button
        self._compare_for = None  # (weak ref to the model, layer path) the results are about
        self._shown = False  # displayed: the plots are laid out ahead (`_prepare_first_apply`)
        self._build(height, theme)
        self._binding = _Binding(self)
        self.session.watch(self._binding)
        self._wire()
        self.panel.show_probe(self.probe.description, self.probe.synthetic)
        self._show_plots(None)
        self._refresh_buttons()
        self._offer_fine_tune()
        self._on_select(self.view.selected, clear_status=False)
        # Last in the panel: the figures as downloads, to_code() to copy (checks its own writes).
        self.export = editor_export(self)
        self.panel.widget.children = (*self.panel.widget.children, self.export)

    def _build(self, height, theme):
        """Make the widgets: graph and panel side by side (or stacked), plots under them."""
        self.view = GraphView(self.original, height=height, theme=theme)
        self.panel = EditorPanel()
        self.compare_panel = ComparePanel()
        self.finetune_panel = FineTunePanel()
        self.panel.widget.children = (*self.panel.widget.children, self.compare_panel.widget,
                                      self.finetune_panel.widget)
        # Each plot is drawn for the width, pixel ratio and theme its browser view reports.
        self.comparison_image = PlotImage(theme=theme, alt="Before and after the edit",
                                          layout=w.Layout(width="100%"))
        self.depth_image = PlotImage(theme=theme, alt="Layer statistics along depth",
                                     layout=w.Layout(width="100%"))
        # Both figures kept between Applies: each draws only what the new data changes.
        self._figures = plots.FigureCache()
        for name, image in (("comparison", self.comparison_image), ("depth", self.depth_image)):
            image.on_display(lambda _display, name=name: self._redraw_plot(name))
        self.plots_note = w.HTML("<i>Apply an edit to see its effect on the probe data.</i>")
        self.plots_note.add_class("kwe-plots-note")
        self.comparison_image.add_class("kwe-plot-comparison")
        self.depth_image.add_class("kwe-plot-depth")
        self.plot_controls = PlotControls()
        self.plots = w.VBox([self.plot_controls.widget, self.plots_note, self.comparison_image,
                             self.depth_image, self.compare_panel.image],
                            layout=w.Layout(width="100%"))
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

    # --- display ----------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs):
        self._prepare_first_apply()
        # Beside the widget view: a static copy (graph SVG, plots) for GitHub, nbviewer, nbconvert.
        bundle = self.widget._repr_mimebundle_(**kwargs)
        return static_view.with_fallback(bundle, lambda: static_view.editor_bundle(self))

    def _prepare_first_apply(self):
        """Shown: while the user picks a layer, probe the original in a background thread
        (`EditSession.probe_ahead`), then lay the figures out (`_draw_ahead`) on the
        kernel's event loop, in its thread, once it is idle. The first Apply compares
        against the original and would otherwise pay for both. Without a running
        event loop (a script) only the probe runs ahead. Returns the probe's thread (None:
        the original's summaries are known or on their way)."""
        loop = idle_collection.running_loop()
        self._shown = True
        return self.session.probe_ahead(
            None if loop is None else lambda: loop.call_soon_threadsafe(self._draw_ahead))

    def _draw_ahead(self, names=("comparison", "depth")):
        """Before the first Apply, draw plots `names` of the original against itself for
        where they are shown, so that the first Apply only puts its data into the kept
        figures (`plots.FigureCache`). Only a head start: on any error, or once the
        editor has moved on, it draws nothing (the Apply draws its plots itself)."""
        if self._session is None:  # closed meanwhile
            return
        session = self.session
        if session.position != 0 or session.busy or not self.probe.cached(self.original):
            return
        try:
            inputs = figure_inputs(session.unchanged_comparison(), self.probe.y)
            for name in names:
                self._figures.png(name, self._plot_display(name), **inputs[name])
        except Exception:  # noqa: BLE001 - a head start only; the Apply meets and says any error
            pass

    def __repr__(self):
        if self._session is None:
            return f"<ModelEditor of {self._name!r}: closed>"
        return (f"<ModelEditor of {self.original.name!r}: {len(self.history)} edit(s); "
                f"{self.probe.description}>")

    # --- scripting API: the session's, plus the selection ----------------------------

    @property
    def session(self) -> EditSession:
        """The `EditSession` the widgets show. Every scripted call goes through it, so once
        the editor is closed each raises `EditorClosedError`."""
        if self._session is None:
            raise EditorClosedError(self._name)
        return self._session

    def close(self) -> None:
        """Close the editor's widgets and let go of its history, probe and figures.

        A running fine-tune is stopped (after its current batch) and waited
        for, and the probe's runs ahead (the original's, the preview's guess)
        are stopped. Afterwards every operation raises `EditorClosedError`;
        closing again does nothing. The original model stays the caller's. Without `close` the
        widgets, which ipywidgets keeps until they are closed, keep the
        editor and its models for as long as the kernel runs, also once
        nothing else refers to it (a cell that makes an editor, run again).

        >>> import keras, numpy as np
        >>> from kerawidgets.edits import SetActivation
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")], name="m")
        >>> editor = ModelEditor(model, np.ones((4, 3), "float32"))
        >>> editor.apply(SetActivation("d", "tanh")) and None
        >>> editor.close(); editor.close(); editor
        <ModelEditor of 'm': closed>
        >>> editor.undo()  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        kerawidgets.errors.EditorClosedError: This ModelEditor of 'm' was closed (editor.close())...
        """
        session = self._session
        if session is None:
            return
        session.stop_training()
        session.wait_fine_tune()
        session.probe.cancel_ahead()
        session.unwatch(self._binding)  # a session still used elsewhere tells this one nothing
        self._session = None
        self.compare_panel.clear()  # its Apply buttons hold the last comparison's session
        self.panel.close()  # with its settings forms not shown
        close_tree(self.widget)
        self._figures = plots.FigureCache()  # the kept figures go (a few MB each)
        self._train_data = (None, None)

    def __enter__(self) -> ModelEditor:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def original(self):
        """The model the editor was made with (never modified)."""
        return self.session.original

    @property
    def probe(self):
        """The `Probe` whose data the plots compare on."""
        return self.session.probe

    @property
    def model(self):
        """The current model (the original until an edit is applied)."""
        return self.session.model

    @property
    def history(self) -> list[Edit | FineTune]:
        """The edits applied to reach `model`, oldest first (a `recover` step is a `FineTune`)."""
        return self.session.history

    @property
    def report(self):
        """The `RebuildReport` of the step that made the current model (None at the original)."""
        return self.session.report

    @property
    def selected(self) -> str | None:
        """The layer path of the selected node, or None."""
        return self.view.selected.get("layer")

    def select(self, layer_or_node_id) -> None:
        """Select a layer (name, path or node id) as if clicked in the graph."""
        if self._session is None:  # the graph is closed: no panel follows it
            raise EditorClosedError(self._name)
        self.view.select(layer_or_node_id)

    def on_change(self, callback) -> None:
        """Call `callback()` after every Apply, Undo, Redo and Reset (a live `to_code`, say),
        until the editor is closed."""
        def changed():
            if self._session is not None:
                callback()

        self.session.on_change(changed)

    def apply(self, edit: Edit, *, reinitialize: str | None = None) -> RebuildReport:
        """Apply an edit to the current model; returns the rebuild's `RebuildReport`.

        Raises the `KerawidgetsError` the panel shows when the edit cannot
        work; the model and history are then unchanged.
        """
        with idle_collection.deferred():
            return self.session.apply(edit, reinitialize=reinitialize)

    def undo(self) -> None:
        """Go back one edit (instant while the previous model is kept)."""
        with idle_collection.deferred():
            self.session.undo()

    def redo(self) -> None:
        """Re-apply the edit undone last."""
        with idle_collection.deferred():
            self.session.redo()

    def reset(self) -> None:
        """Back to the original model; the edits stay available to `redo`."""
        with idle_collection.deferred():
            self.session.reset()

    def sweep(self, layer=None, candidates=(), *, reinitialize=None, progress=None, data=None):
        """Compare candidate edits of `layer` (default: the selected one) on the probe.

        `candidates` are activation names and/or edit values; each is
        rebuilt as a dry run, nothing is applied. Returns a
        `kerawidgets.sweep.SweepResult`; its ``apply(i)`` applies row `i`
        here (a history step, like `apply`). With `data=` (a full dataset)
        each candidate is also evaluated on it with Keras' evaluate and rows
        rank by that. See `kerawidgets.sweep.sweep`.
        """
        return self.session.sweep(layer if layer is not None else self.selected, candidates,
                                  reinitialize=reinitialize, progress=progress, data=data)

    def evaluate(self, data, y=None, *, batch_size=None, steps=None, progress=None) -> dict:
        """Keras' own `evaluate` on the original and the current model.

        `data`: arrays (with `y`), an ``(x, y)`` pair, a `tf.data.Dataset`, a
        `keras.utils.PyDataset` or a torch DataLoader (torch backend).
        Returns ``{"original": {metric: value}, "current": {...}}``; the
        models use the original's compile settings. Runs under the active
        distribution or strategy like any Keras evaluate.
        """
        return self.session.evaluate(data, y, batch_size=batch_size, steps=steps,
                                     progress=progress)

    def recover(self, x, y=None, *, epochs=1, batch_size=32, steps=None, progress=None,
                validation_data=None, baseline=False):
        """Fine-tune the current model with Keras' `fit`, as a new history step.

        The current model is copied and the copy trained (compiled like the
        original: same loss and metrics, a fresh optimizer of the same kind);
        Undo returns to the weights before fine-tuning, and the original is
        never touched. `stop_training()` (the Stop button) ends it after the
        current batch, keeping what was learned. Returns a
        `kerawidgets.training.FineTuneResult` (`history`, `batch_logs`, `step`).
        `baseline=True` also fine-tunes a copy of the original the same way
        (`result.baseline`: "recovered to 97% of the original's accuracy").
        """
        return self.session.recover(x, y, epochs=epochs, batch_size=batch_size, steps=steps,
                                    progress=progress, validation_data=validation_data,
                                    baseline=baseline)

    def stop_training(self) -> None:
        """Ask a running `recover` to stop after its current batch."""
        self.session.stop_training()

    @property
    def fine_tuning(self) -> bool:
        """Whether a fine-tune started from the panel is still running (in its worker thread)."""
        return self.session.fine_tuning

    def wait_fine_tune(self, timeout=None) -> bool:
        """Wait for the panel's fine-tune to end; False if it still runs after `timeout` s."""
        return self.session.wait_fine_tune(timeout)

    def compare(self, against=None, layer=None) -> dict:
        """The numbers behind the plots, as plain data.

        By default, of what the plots show (`show`): the current model against
        the original (`against="original"`, the default of the switch above the
        plots) or against the one before the last edit (`"previous"`), for the
        edited layer plotted. Passing `against` or `layer` (one of
        `edited_layers(against)`) asks for another comparison without changing
        the plots. Returns ``{"edit", "against", "layer", "layer_before",
        "layer_stats", "per_layer", "agreement", "movement", "recompute",
        "recomputed"}`` or, at the original model, the same keys with no
        numbers. `recompute` is how the after side was probed ("incremental",
        "full", or "cached": nothing ran) and `recomputed` the node ids it summarised.
        """
        return self.session.compare(against, layer)

    def show(self, against=None, layer=_KEEP) -> None:
        """Choose what the plots, the accuracy line and the heat show, as the switch and the
        picker above the plots do: `against="original"` (the default: the model you
        started from) or `"previous"` (the model before the last edit), and `layer`, the
        edited layer the layer plot shows (one of `edited_layers()`; None: the one the
        last edit names). See `EditSession.show`."""
        with idle_collection.deferred():
            self.session.show(against, layer)

    def edited_layers(self, against=None) -> list[str]:
        """The edited layers the layer plot can show (see `EditSession.edited_layers`)."""
        return self.session.edited_layers(against)

    def figures(self) -> dict:
        """The current plots as matplotlib Figures: ``{"comparison": ..., "depth": ...}``
        (laid out for the width and theme they are shown at)."""
        return self.session.figures({"comparison": self.comparison_image.display(),
                                     "depth": self.depth_image.display()})

    def to_code(self, model_var="model") -> str:
        """A Python script that replays `history` on `model_var` with the public API:
        it imports every layer class it names and registers the custom activations
        it uses (`kerawidgets.edits.script_header`)."""
        return self.session.to_code(model_var)

    def save(self, path) -> str:
        """Write the current model to a `.keras` file that reloads to the same model.

        The reloaded model must have the same layers and give the same
        outputs on the probe data (within `SAVE_TOLERANCE`); otherwise
        `SaveCheckError` names the layer and why, and no file is written
        (`saving.save_verified`). Returns the path.
        """
        return self.session.save(path)

    @contextlib.contextmanager
    def _quietly(self):
        """The editor changes its own controls: their events must not start a preview."""
        quiet, self._quiet = self._quiet, True
        try:
            yield
        finally:
            self._quiet = quiet

    @contextlib.contextmanager
    def _checking(self, steps=1):
        """`session.working` for a check of the panel (reading the selected layer, the
        preview's dry run): the status line says what runs, the buttons keep their state.

        The kernel handles the page's messages one at a time, so a click sent during a
        check runs right after it; a button disabled for the check's moment would make
        the browser drop that click (it delivers none to a disabled button).
        """
        checking, self._checking_panel = self._checking_panel, True
        try:
            with idle_collection.deferred(), self.session.working(steps) as progress:
                yield progress
        finally:
            self._checking_panel = checking

    # --- reacting to the UI -----------------------------------------------------------

    def _wire(self):
        p = self.panel
        self.view.on_select(self._on_select)
        p.tabs.observe(lambda _c: self._on_tab(), names="selected_index")
        self.compare_panel.widget.observe(lambda c: c["new"] == 0 and self._on_replacements_wanted(),
                                          names="selected_index")
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
        self.finetune_panel.run_button.on_click(lambda _b: self._guarded(self._fine_tune_from_panel))
        self.finetune_panel.stop_button.on_click(lambda _b: self.stop_training())
        c = self.plot_controls
        c.against.observe(lambda ch: self._on_plot_choice(against=ch["new"]), names="value")
        c.layer.observe(lambda ch: self._on_plot_choice(layer=ch["new"]), names="value")

    def _on_plot_choice(self, **choice):
        """The switch or the layer picker above the plots changed: show that comparison."""
        if not self._quiet:
            self._guarded(lambda: self.show(**choice))

    def _guarded(self, action):
        """Run a button's action; a KerawidgetsError is shown (not raised) and the editor stays usable.

        A click that reached the kernel while a fine-tune runs (sent before the page
        showed the button disabled) is not run: the status line says why.
        """
        if self.session.busy_elsewhere():
            self.panel.show_status("Fine-tuning runs: press Stop in the Fine-tune section or "
                                   "wait for it to end, then press the button again.", "busy")
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

    def _on_select(self, selected, clear_status=True):
        if self._quiet or self.session.busy_elsewhere():  # fine-tuning: its end refreshes it
            return
        with self._checking(3) as progress:
            # One listing of the model's calls and one trace for every lookup here,
            # one lookup of the layer for all of the panel's questions.
            with targets.one_trace_each():
                progress(1, "Reading the selected layer…")
                p = self.panel
                node_id = selected.get("id") if selected else None
                node = self.view.graph.node(node_id) if node_id else None
                editable = node is not None and not node.is_input and node.path in self.session.layer_paths()
                path = node.path if node is not None and editable else None
                layer = self.session.layer(path) if path is not None else None
                config = _config_of(layer) if layer is not None else ({} if node is None else None)
                p.show_layer(node, config, activations.activation_settings(layer) if layer else None)
                progress(2, "Finding the layer types that fit here…")
                with self._quietly():
                    self._fill_activation(layer)
                    self._fill_choices(path)
                    self._fill_remove(path, node)
                    self._fill_settings(path)
                    self._fill_compare(layer, path)
                if node is not None and not editable:
                    p.show_status("Inputs cannot be edited; select a layer." if node.is_input
                                  else "This node is not a layer that can be edited.", "info")
                elif clear_status:
                    p.show_status("")
            progress(3, "Checking the edit (dry-run rebuild)…")
            self._update_preview()

    def _on_activation_setting(self):
        """Another activation setting picked (LSTM's recurrent_activation...): show its value."""
        if self._quiet:
            return
        with self._quietly():
            self._fill_activation(self.session.layer(self.selected), self.panel.activation_setting.value)
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
        similar = self.session.similar_layers(layer, attribute)
        p.bulk.disabled = len(similar) < 2
        p.bulk.value = False
        p.bulk.description = (f"apply to all {len(similar)} {type(layer).__name__} layers "
                              f"with {attribute.replace('_', ' ')} {current!r}" if len(similar) > 1
                              else "apply to every layer like this (no other)")
        p.activation_note.value = ""

    def _fill_choices(self, path):
        """The Insert after dropdown, and the Replace dropdown when it can be seen.

        Finding the replacements that fit asks every layer downstream whether it can take
        each shape-changing one (20-30 ms at the first layer of an ImageNet model, after
        every Apply): while neither the Replace tab nor "Compare several" is open, that
        waits until one is (`_on_replacements_wanted`).
        """
        self._insert_choices = ({} if path is None else
                                {c.class_name: c for c in catalog.insert_choices(self.model, path)})
        self._show_choices("insert", self._insert_choices, path)
        if path is None or self._replacements_in_view():
            self._fill_replacements(path)
        else:
            self._replace_choices, self._replace_waiting = {}, path
            self._show_choices("replace", {}, path)

    def _replacements_in_view(self) -> bool:
        return self.panel.action == "replace" or self.compare_panel.widget.selected_index == 0

    def _fill_replacements(self, path):
        self._replace_waiting = None
        self._replace_choices = ({} if path is None else
                                 {c.class_name: c for c in catalog.replacement_choices(self.model, path)})
        self._show_choices("replace", self._replace_choices, path)

    def _show_choices(self, purpose, choices, path):
        # Class names only: the verdict under the dropdown says, for the settings as
        # they are now, whether the shape is kept (a label would go stale as you type).
        dropdown = self.panel.replace if purpose == "replace" else self.panel.insert
        dropdown.options = [(NONE_CHOICE, NONE_CHOICE)] + [(name, name) for name in choices]
        dropdown.value = NONE_CHOICE
        dropdown.disabled = path is None
        self._on_choice(purpose, NONE_CHOICE)

    def _on_tab(self):
        if self.panel.action == "replace":
            self._on_replacements_wanted()
        self._update_preview()

    def _on_replacements_wanted(self):
        """The Replace tab or "Compare several" opened: the replacements that waited for it."""
        path = self._replace_waiting
        if path is None or self._quiet or self.session.busy_elsewhere():
            return  # none wait; or fine-tuning, whose end refills the panel
        with self._checking() as progress:
            progress(1, "Finding the layer types that fit here…")
            with self._quietly():
                self._fill_replacements(path)
                self._fill_compare(self.session.layer(path), path)

    def _fill_settings(self, path):
        """The Settings tab: the selected layer's settings, as they are (`catalog.settings_form`)."""
        p = self.panel
        try:
            fields = catalog.settings_form(self.model, path) if path else ()
        except KerawidgetsError:
            fields = ()
        self._show_form("settings", None, fields)
        p.settings_note.value = "" if fields or path is None else (
            "<span class='kwe-hint'>No settings form for this layer type: change its settings "
            "with <code>editor.apply(SetSettings(...))</code>.</span>")

    def _on_choice(self, purpose, class_name):
        with self._checking() as progress:
            progress(1, "Checking the edit (dry-run rebuild)…")
            p = self.panel
            choices = self._replace_choices if purpose == "replace" else self._insert_choices
            choice = choices.get(class_name)
            self._show_form(purpose, choice)
            p.show_verdict(p.replace_verdict if purpose == "replace" else p.insert_verdict, choice)
            if not self._quiet:
                self._update_preview()

    def _show_form(self, purpose, choice, settings=None):
        """The settings form of `purpose` for `choice` (or `settings`): the form shown,
        refilled, when it has the same fields (no new widgets on the page), else a new one."""
        shown = {"replace": self.panel.replace_settings, "insert": self.panel.insert_settings,
                 "settings": self.panel.layer_settings}[purpose]
        with self._quietly():  # one preview after the form is filled, not one per field
            if shown.refill(choice, settings):
                return
        form = SettingsForm(choice, on_change=self._update_preview, settings=settings)
        self.panel.set_form(purpose, form)
        guard_tree(form.box)

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
        values: dict[str, Any] = {}
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

    def _offer_fine_tune(self):
        """Enable the Fine-tune section when the editor has labelled data and a loss."""
        x, y = self._train_data
        labelled = x is not None and (y is not None or not isinstance(x, (np.ndarray, dict,
                                                                           list, tuple)))
        compiled = getattr(self.original, "compiled", False) and self.original.loss is not None
        shape = getattr(keras.tree.flatten(x)[0], "shape", None) if x is not None else None
        data = f"the {shape[0]} samples" if shape else "the data"
        if not labelled:
            note = ("<i>To fine-tune here, give the editor labelled data: "
                    "ModelEditor(model, x, y).</i>")
        elif not compiled:
            note = ("<i>To fine-tune here, compile the model with a loss first, e.g. "
                    "model.compile('adam', 'sparse_categorical_crossentropy', "
                    "metrics=['accuracy']).</i>")
        else:
            note = (f"Fine-tune the current model on {data} given to the editor, with the "
                    "original's loss and metrics and a fresh optimizer. Stop keeps what it "
                    "learned so far; Undo goes back to the weights before.")
        self.finetune_panel.set_available(labelled and compiled, note)

    def _fine_tune_from_panel(self):
        """Start `recover` in a worker thread (`EditSession.recover_in_background`): the
        kernel's thread stays free to receive the Stop click."""
        if self.fine_tuning:
            return
        settings = self.finetune_panel.settings()  # checked before anything starts
        x, y = self._train_data
        self.finetune_panel.start()
        self.session.recover_in_background(x, y, progress=self.finetune_panel.add_batch,
                                           done=self._fine_tune_done, **settings)

    def _fine_tune_done(self, result, error):
        """In the worker, when training ended: the section says how (errors in the status too)."""
        if error is None:
            baseline = f"; {result.baseline['text']}" if result.baseline else ""
            self.finetune_panel.finish(f"{result.step.describe()}{baseline}.", ok=True)
            return
        if isinstance(error, KerawidgetsError):
            text = str(error)
            self.panel.show_status(text, "error")
        else:  # a Keras error while training: shown, the editor stays usable
            text = f"{type(error).__name__}: {error}"
            self._show_error(error, None)
        self.finetune_panel.finish(text, ok=False)

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
        """The edit the panel's current tab and values describe (checked in the kernel).

        The tab's edit class comes from the registry (`edits.EDIT_TYPES`, by
        `panel_action`) and makes the edit from the tab's fields (`from_fields`,
        as from JSON); only reading a tab's controls is the editor's
        (`_TAB_FIELDS`: one reader per tab with controls).
        """
        path = self.selected
        if not path or path not in self.session.layer_paths():
            raise NothingToApply("Select a layer in the graph first.")
        action = self.panel.action
        cls = _tab_edit_class(action)
        read = _TAB_FIELDS.get(action)
        if read is None:  # a tab without controls (`editor_panel._script_only`)
            raise NothingToApply(f"The {cls.panel_tab} tab has no controls: make a {cls.kind} "
                                 "in code and apply it with editor.apply(edit).")
        return cls.from_fields({"type": cls.kind, **read(self, path)})

    def _activation_fields(self, path) -> dict:
        """The Activation tab: `SetActivation`'s fields (every layer like it, when ticked)."""
        p = self.panel
        layer = self.session.layer(path)
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
        target = self.session.bulk_target(layer, attribute) if p.bulk.value else path
        return {"layer": target, "activation": name, "attribute": attribute}

    def _new_layer_fields(self, path, purpose) -> dict:
        """The Replace or Insert after tab: the chosen layer type with its settings, as
        the recipe `ReplaceLayer` / `InsertLayer` read (``{"class_name", "config"}``)."""
        p = self.panel
        dropdown = p.replace if purpose == "replace" else p.insert
        if dropdown.value in (None, NONE_CHOICE):
            raise NothingToApply(
                f"Choose a layer type to {'replace with' if purpose == 'replace' else 'insert'}.")
        form = p.replace_settings if purpose == "replace" else p.insert_settings
        choice = catalog.check_choice(self.model, path, dropdown.value, form.values(),
                                      purpose=purpose)
        class_name, config = choice.spec(dict(choice.defaults))
        return {"class_name": class_name, "config": config}

    def _replace_fields(self, path) -> dict:
        return {"layer": path, "replacement": [self._new_layer_fields(path, "replace")]}

    def _insert_fields(self, path) -> dict:
        return {"after": path, "layer": [self._new_layer_fields(path, "insert")]}

    def _settings_fields(self, path) -> dict:
        """The Settings tab: the config keys changed from the layer's own values."""
        changes = catalog.changed_settings(self.model, path, self.panel.layer_settings.values())
        if not changes:
            raise NothingToApply(f"Change a setting of {path!r} above.")
        return {"layer": path, "settings": changes}

    def _remove_fields(self, path) -> dict:
        if not _removal_plans(self.model, path):  # the Remove tab says why
            raise NothingToApply(f"{path!r} cannot be removed (see above).")
        return {"layer": path}  # the dry run says whether shapes downstream allow it

    def _update_preview(self):
        if self._quiet:
            return
        with self._checking() as progress:
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
            result = self.session.dry_run(edit, reinitialize)
        except Exception as error:  # a bug or a Keras error we did not foresee: say it here
            result = error
        if isinstance(result, Exception):
            reason = result if isinstance(result, KerawidgetsError) else (
                f"Unexpected {type(result).__name__}: {result}")
            p.show_preview(f"{edit.describe()}: cannot apply. {reason}", bad=True)
            return False
        p.show_preview(f"{edit.describe()}. Weights: {_weights_preview(result.report)}")
        loop = idle_collection.running_loop()
        if self._shown and loop is not None:
            # While the user reaches for Apply: probe the edited model (a guess the next
            # preview, Undo or another edit cancels), then draw its plots when the kernel
            # is idle (`_draw_edit_ahead`). A script's apply() probes and draws itself.
            self.session.probe_edit_ahead(edit, reinitialize, lambda: loop.call_soon_threadsafe(
                self._draw_edit_ahead, edit, reinitialize))
        return True

    def _draw_edit_ahead(self, edit, reinitialize):
        """The preview's guess at `edit` ended: draw the plots its Apply would show, for where
        they are shown, into the comparison that Apply keeps (`session.comparison_ahead`),
        so that it draws nothing. Only a head start: closed, busy, or on any error it
        draws nothing (the Apply draws its plots itself)."""
        if self._session is None or self.session.busy:
            return
        try:
            comparison = self.session.comparison_ahead(edit, reinitialize)
            if comparison is not None:
                for name in ("comparison", "depth"):
                    self._png(name, comparison)
        except Exception:  # noqa: BLE001 - a head start only; the Apply meets and says any error
            pass

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

    # --- showing the session -------------------------------------------------------

    def _moved(self):
        """The history moved: show the new model's graph and report (step 2 of a move)."""
        with self._quietly():
            self.view.set_model(self.model)
            self.panel.reinitialize.value = False  # each edit asks again before fresh weights
        self.panel.show_report(self.report)

    def _show_comparison(self, comparison, error):
        """What the session compares now: the plots, the graph's colours and marks, the
        switch and the layer picker above the plots."""
        self._show_graph_state()
        with self._quietly():
            s = self.session
            self.plot_controls.show(
                s.against, s.edited_layers(),
                s.plotted_layer or (comparison.focus_after if comparison else None),
                active=s.position > 0)
        self._show_plots(comparison, error)

    def _settled(self, message, problem):
        """A move is done: the panel for the selection, the status line."""
        self._on_select(self.view.selected, clear_status=False)
        if problem is None:
            self.panel.show_status(message, "ok")
        else:
            self.panel.show_status(f"{message} {plot_failure(problem)}", "error")

    def _show_graph_state(self):
        graph = self.view.graph
        self.view.clear_marks()
        comparison = self.session.comparison
        self.view.set_heat({})
        if comparison is None:
            self.view.set_metrics({})
            return
        # Colour by: movement and the after-model's own statistics (no extra pass).
        self.view.set_metrics({name: {**spec, "values": {k: v for k, v in spec["values"].items()
                                                         if graph.has_node(k)}}
                               for name, spec in node_metrics.from_statistics(
                                   comparison.stats_after, comparison.movement).items()})
        # Every layer the edits changed (a bulk edit: all of them), in one update.
        self.view.marks = {node.id: "edited" for path in sorted(self.session.edited)
                           for node in graph.nodes_of_layer(path)}

    def _show_plots(self, comparison, error=None):
        if comparison is None:
            self.plots_note.value = (
                "<i>Apply an edit to see its effect on the probe data.</i>" if error is None
                else f"<span class='kwe-status-error'>{_escape(plot_failure(error))}</span>")
            # Empty, so nothing shows, but laid out: the browser reports the width, pixel
            # ratio and theme now, and the first plots are drawn for them at once.
            self.comparison_image.show(b"", 0)
            self.depth_image.show(b"", 0)
            return
        self._draw_plot("comparison", comparison)
        self._draw_plot("depth", comparison)
        a = comparison.agreement
        edit = self.session.edit
        n = self.session.position
        against = (f"against the original ({n} edit{'s' if n != 1 else ''})"
                   if self.session.against == "original" else "against the last step")
        parts = [f"<b>{_escape(edit.describe() if edit is not None else '')}</b>", against,
                 f"probe: {self.probe.n} samples" + (" (synthetic)" if self.probe.synthetic else ""),
                 f"recompute: {comparison.recompute}"]
        if a.get("top1_agreement") is not None:
            parts.append(f"top-1 agreement {a['top1_agreement']:.1%}")
        if a.get("accuracy_before") is not None:
            parts.append(f"accuracy {a['accuracy_before']:.1%} → {a['accuracy_after']:.1%}")
        self.plots_note.value = " · ".join(parts)

    def _draw_plot(self, name, comparison):
        """Show plot `name` of `comparison` drawn for where it is shown (kept: undo and redo reuse it)."""
        png, display = self._png(name, comparison)
        getattr(self, f"{name}_image").show(png, display.width)

    def _png(self, name, comparison) -> tuple[bytes, plots.Display]:
        """Plot `name` of `comparison` as PNG bytes drawn for where it is shown, kept in
        `comparison.pngs` (a few sizes and themes at most), and that `Display`."""
        display = self._plot_display(name)
        key = (name, display.key())
        if key not in comparison.pngs:
            inputs = figure_inputs(comparison, self.probe.y)[name]
            comparison.pngs[key] = self._figures.png(name, display, **inputs)
            for old in list(comparison.pngs)[:-4]:
                del comparison.pngs[old]
        return comparison.pngs[key], display

    def _plot_display(self, name) -> plots.Display:
        """Where plot `name` is shown, as it is drawn for it (its width capped)."""
        shown = getattr(self, f"{name}_image").display()
        return dataclasses.replace(shown, width=min(shown.width, _PLOT_MAX_WIDTH[name]))

    def _redraw_plot(self, name):
        """The browser reported a new width, pixel ratio or theme: draw the shown plot again
        (before the first Apply: lay it out again, `_draw_ahead`)."""
        comparison = self.session.comparison
        if comparison is None and self._shown:
            self._draw_ahead((name,))
        elif comparison is not None and not self.session.busy:
            try:
                self._draw_plot(name, comparison)
            except Exception as error:  # the plot stays as it was; say why
                self.panel.show_status(plot_failure(error), "error")

    def _show_busy(self, active, text, step, steps):
        if active:
            lock = not self._checking_panel  # a check's clicks run after it (`_checking`)
            self.panel.set_busy(True, text, step, steps, lock=lock)
            if lock and not self._finetune_locked:  # once per operation, not per layer call
                self._finetune_locked = True
                self.finetune_panel.refresh(busy=True)
        else:
            self._finetune_locked = False
            self.panel.set_busy(False)
            self._refresh_buttons()

    def _refresh_buttons(self):
        if self.session.busy:
            return
        p = self.panel
        p.apply_button.disabled = not self._can_apply
        p.undo_button.disabled = not self.session.can_undo
        p.redo_button.disabled = not self.session.can_redo
        p.reset_button.disabled = self.session.position == 0
        self.finetune_panel.refresh(busy=False)

    def _show_error(self, error, edit):
        self.panel.show_status(str(error), "error")
        where = getattr(error, "layer", None) or edit_layer(edit)
        if isinstance(where, str):
            try:
                self.view.mark(where, "error")
            except KerawidgetsError:
                pass



class _Binding(SessionObserver):
    """What the session tells the editor, passed on to its widgets (until `close()`
    unwatches it)."""

    def __init__(self, editor: ModelEditor):
        self.editor = weakref.proxy(editor)

    def busy(self, active, text="", step=0, steps=0):
        self.editor._show_busy(active, text, step, steps)

    def moved(self):
        self.editor._moved()

    def compared(self, comparison, error):
        self.editor._show_comparison(comparison, error)

    def settled(self, message, error):
        self.editor._settled(message, error)

    def failed(self, error, edit):
        self.editor._show_error(error, edit)

    def notice(self, text):
        self.editor.panel.show_status(text, "ok")

# --- helpers ---------------------------------------------------------------------


def _escape(text) -> str:
    import html

    return html.escape(str(text))


def _config_of(layer) -> dict:
    try:
        return json.loads(json.dumps(layer.get_config(), default=str))
    except Exception:
        return {}


#: How the editor reads each panel tab with controls into its edit class's fields
#: (`Edit.from_fields`), by the class's `panel_action`. A new edit type with a tab adds
#: its controls to `EditorPanel` and its reader here; one without a reader gets a tab
#: saying to apply it in code.
_TAB_FIELDS = {
    "activation": ModelEditor._activation_fields,
    "replace": ModelEditor._replace_fields,
    "insert": ModelEditor._insert_fields,
    "settings": ModelEditor._settings_fields,
    "remove": ModelEditor._remove_fields,
}


def _tab_edit_class(action) -> type[Edit]:
    """The edit class (of `edits.EDIT_TYPES`) whose panel tab is `action`."""
    return next(cls for cls in EDIT_TYPES.values() if cls.panel_action == action)


def _removal_plans(model, path) -> bool:
    """Whether removing `path` is a valid edit at all (shapes downstream aside)."""
    try:
        plan_edit(model, RemoveLayer(path))
    except KerawidgetsError:
        return False
    return True



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
