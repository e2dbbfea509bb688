"""`EditSession`: edit a model step by step, with undo, comparisons and code, and no widget.

A session holds the original model, the history of applied edits and the
probe that compares each step with the one before. `ModelEditor` is a
widget bound to one (`editor.session`); a notebook, a test or a server can
drive a session alone, without ipywidgets:

>>> import keras, numpy as np
>>> from kerawidgets.session import EditSession
>>> from kerawidgets.edits import SetActivation
>>> inp = keras.Input((4,), name="x")
>>> out = keras.layers.Dense(3, activation="softmax", name="head")(
...     keras.layers.Dense(8, activation="relu", name="hidden")(inp))
>>> session = EditSession(keras.Model(inp, out), np.random.default_rng(0).normal(size=(16, 4)))
>>> session.apply(SetActivation("hidden", "gelu"))["hidden"].status
'kept'
>>> session.compare()["layer"], session.edited
('hidden', {'hidden'})
>>> print(session.to_code().splitlines()[-1])
model = kerawidgets.replace_activation(model, 'hidden', 'gelu')
>>> session.undo(); session.model is session.original
True

Whatever shows the session (the editor's panel, a progress bar, a log)
subclasses `SessionObserver` and `watch`es it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import typing
import weakref

import keras
import numpy as np

from kerawidgets import _keras_adapter as adapter
from kerawidgets import activations, arguments, naming, plots, targets
from kerawidgets.edits import Edit, as_edit, script_header
from kerawidgets.errors import InvalidEditError, KerawidgetsError, SaveCheckError
from kerawidgets.history import History, Step
from kerawidgets.plan import supports_activation
from kerawidgets.probe import Probe
from kerawidgets.rebuild import REINITIALIZE_CHOICES, Rebuild, rebuild
from kerawidgets.report import RebuildReport
from kerawidgets.saving import save_verified
from kerawidgets.statistics import agreement, paired_summary_statistics, summary_movement
from kerawidgets.training import FineTune, StopFlag

__all__ = ["EditSession", "NothingToApply", "SaveCheckError", "SessionBusy", "SessionObserver"]

#: Largest |difference| allowed between the saved-and-reloaded model and the session's model.
SAVE_TOLERANCE = 1e-5
_PREVIEW_CACHE = 4
#: What the plots, the accuracy line and the graph's heat compare the current model with.
AGAINST = ("original", "previous")
_KEEP = object()  # `show`'s layer when not given


class NothingToApply(InvalidEditError):
    """The panel does not describe an edit yet (no layer, no choice, or no change)."""


class SessionBusy(KerawidgetsError):
    """An operation runs in another thread (a fine-tune in the background); wait for it."""


class SessionObserver:
    """What a view of an `EditSession` is told; each method does nothing unless overridden.

    >>> class Log(SessionObserver):
    ...     def settled(self, message, error):
    ...         print(message)
    >>> import keras
    >>> from kerawidgets.edits import SetActivation
    >>> session = EditSession(keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, name="d")]))
    >>> session.watch(Log())
    >>> session.apply(SetActivation("d", "tanh")) and None
    Applied: Set the activation of 'd' to 'tanh'.
    """

    def busy(self, active: bool, text: str = "", step: float = 0, steps: int = 0) -> None:
        """An operation runs (`active`), at `step` of `steps`, doing `text`; or it ended."""

    def moved(self) -> None:
        """The history moved (apply, undo, redo, reset, recover): the model changed."""

    def compared(self, comparison: _Comparison | None, error: Exception | None) -> None:
        """The current step's comparison (None at the original or when it failed: `error`)."""

    def settled(self, message: str, error: Exception | None) -> None:
        """The move is done: `message` says what happened, `error` why the plots are missing."""

    def failed(self, error: Exception, edit: Edit | None) -> None:
        """An operation refused or failed; nothing changed."""

    def notice(self, text: str) -> None:
        """A finished operation's one-line result (saved, evaluated)."""


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
    pngs: dict = dataclasses.field(default_factory=dict)  # (plot, display) -> PNG, once drawn

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


class EditSession:
    """The state of editing one model: history, dry runs, comparisons, code and saving.

    Args:
        model: a built Functional or Sequential model; it is never modified.
        x, y: probe inputs and labels (see `Probe`); None makes synthetic inputs.
        memory_budget, max_batches, batch_size, seed, exact_statistics: passed to `Probe`.
        history_size: how many edited models undo/redo keep in memory.
    """

    #: Progress steps of the operations that move the history (apply, undo, redo, reset):
    #: 1 rebuild or restore, 2 graph, 3 probe, 4 plots, 5 panel.
    MOVE_STEPS = 5

    def __init__(self, model, x=None, y=None, *, memory_budget=2**30, max_batches=4,
                 batch_size=16, seed=0, history_size=8, exact_statistics=False):
        arguments.model(model)
        arguments.integer("history_size", history_size, minimum=1)
        from kerawidgets import subclassed

        if subclassed.is_subclassed(model):  # traced on a copy: the graph the probe walks
            subclassed.open_for_editing(model, x=x)
        adapter.functional_view(model)  # refuses unbuilt models up front
        self.original = model
        self.probe = Probe(model, x, y, max_batches=max_batches, batch_size=batch_size,
                           memory_budget=memory_budget, seed=seed,
                           exact_statistics=exact_statistics)
        self._history = History(model, max_models=history_size)
        self._preview: list = []  # (model, edit, reinitialize, Rebuild or error), newest last
        self._ready: tuple | None = None  # (weak ref to a model, key, `comparison_ahead`)
        self._edited_paths: list[set] = [set()]
        self._busy = False  # an operation is running (see `working`)
        self._busy_thread = None  # the thread running it (a background fine-tune's worker)
        self._busy_lock = threading.Lock()
        self._training = None  # the worker thread of `recover_in_background`
        self._observers: list[SessionObserver] = []
        self._listeners: list = []  # called after the history moved (see `on_change`)
        self._stop = StopFlag()  # asks a running `recover` to stop after its batch
        self._against = "original"  # what the plots compare with (see `show`)
        self._plotted: str | None = None  # the edited layer the layer plot shows (None: the edit's)

    def __repr__(self):
        return (f"<EditSession of {self.original.name!r}: {len(self.history)} edit(s); "
                f"{self.probe.description}>")

    # --- state ----------------------------------------------------------------------

    @property
    def model(self):
        """The current model (the original until an edit is applied)."""
        return self._history.current.model

    @property
    def history(self) -> list[Edit | FineTune]:
        """The edits applied to reach `model`, oldest first (a `recover` step is a `FineTune`)."""
        return self._history.edits

    @property
    def position(self) -> int:
        """How many edits of the history lead to `model` (0: the original)."""
        return self._history.position

    @property
    def report(self):
        """The `RebuildReport` of the step that made the current model (None at the original)."""
        return self._history.current.report

    @property
    def edit(self) -> Edit | FineTune | None:
        """The edit that made the current model (None at the original)."""
        return self._history.steps[self.position].edit

    @property
    def comparison(self) -> _Comparison | None:
        """What the plots show, if already computed: the current step against `against`,
        for `plotted_layer`."""
        if self.position == 0:
            return None
        return self._history.steps[self.position].comparisons.get(self._key(self._against))

    @property
    def against(self) -> str:
        """What the plots compare the current model with: "original" (the default) or
        "previous" (the model before the last edit). Change it with `show`."""
        return self._against

    @property
    def plotted_layer(self) -> str | None:
        """The edited layer the layer plot shows; None: the one the last edit names
        (its first edited layer). Change it with `show`; a move resets it."""
        return self._plotted

    def edited_layers(self, against=None) -> list[str]:
        """The layers the layer plot can show, in graph order: those the last edit changed
        (`against="previous"`) or every edit since the original (`"original"`, the default
        `against`), as the current model has them.

        >>> import keras
        >>> from kerawidgets.edits import SetActivation
        >>> session = EditSession(keras.Sequential([keras.Input((2,)),
        ...     keras.layers.Dense(2, name="a"), keras.layers.Dense(2, name="b")]))
        >>> session.apply(SetActivation("b", "tanh")) and session.apply(SetActivation("a", "elu"))
        <RebuildReport 2 kept>
        >>> session.edited_layers(), session.edited_layers("previous")
        (['a', 'b'], ['a'])
        """
        against = self._check_against(against)
        if self.position == 0:
            return []
        paths = (self.edited if against == "original"
                 else _edited(self._history.steps[self.position].report))
        return [path for path in targets.layer_paths(self.model) if path in paths]

    @property
    def edited(self) -> set:
        """Paths of the layers the history's edits changed, as the current model has them."""
        return set(self._edited_paths[self.position])

    @property
    def can_undo(self) -> bool:
        return self._history.can_undo

    @property
    def can_redo(self) -> bool:
        return self._history.can_redo

    @property
    def busy(self) -> bool:
        """Whether an operation runs now (see `working`)."""
        return self._busy

    # --- the current model's layers ------------------------------------------------------

    def layer(self, path):
        """The current model's layer at `path` (a name or a nested path)."""
        (target,) = targets.resolve(self.model, path, allow_many=False)
        return target.layer

    def layer_paths(self) -> set:
        """Paths of every layer of the current model, nested ones included."""
        return set(targets.layer_paths(self.model))

    def similar_layers(self, layer, attribute="activation") -> list[str]:
        """Paths of layers of the same class with the same value of activation setting
        `attribute` as `layer` (for LSTMs' recurrent_activation: the same gate)."""
        def value(other):
            return activations.activation_settings(other).get(attribute)

        want = (type(layer), value(layer))
        return [naming.layer_path(path) for path, other in targets.walk_layers(self.model)
                if type(other) is want[0] and value(other) == want[1]
                and supports_activation(other, attribute)]

    def bulk_target(self, layer, attribute="activation"):
        """What an edit of every layer like `layer` names: its class when that is every
        layer of the class (and Keras exports it), else the tuple of their paths."""
        similar = self.similar_layers(layer, attribute)
        cls = type(layer)
        every = [naming.layer_path(p) for p, other in targets.walk_layers(self.model)
                 if type(other) is cls]
        public = getattr(keras.layers, cls.__name__, None) is cls
        if sorted(similar) == sorted(every) and public:
            return cls
        return tuple(similar)

    # --- observers ----------------------------------------------------------------------

    def watch(self, observer: SessionObserver) -> None:
        """Tell `observer` (a `SessionObserver`) about every operation from now on."""
        self._observers.append(observer)

    def unwatch(self, observer: SessionObserver) -> None:
        """Tell `observer` nothing more (`watch` undone; not watching: nothing happens)."""
        if observer in self._observers:
            self._observers.remove(observer)

    def on_change(self, callback) -> None:
        """Call `callback()` after every Apply, Undo, Redo and Reset (a live `to_code`, say)."""
        self._listeners.append(callback)

    def _tell(self, event, *args):
        for observer in self._observers:
            getattr(observer, event)(*args)

    @contextlib.contextmanager
    def working(self, steps=1):
        """The busy state of one operation; yields `progress(step, text)`.

        Observers hear ``busy(True, text, step, steps)`` at each step and
        ``busy(False)`` however the operation ends. An operation started
        inside another one (the panel refresh after Apply) leaves the outer
        operation's progress as it is.

        >>> import keras
        >>> session = EditSession(keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)]))
        >>> with session.working(2) as progress:
        ...     progress(1, "Half way"); session.busy
        True
        >>> session.busy
        False
        """
        with self._busy_lock:
            nested = self._busy
            if nested and self._busy_thread is not threading.current_thread():
                raise SessionBusy(
                    "The editor is fine-tuning: press Stop in its Fine-tune section (or call "
                    "editor.stop_training()) and wait for it to end (editor.wait_fine_tune()), "
                    "then try again.")
            self._busy, self._busy_thread = True, threading.current_thread()
        if nested:
            yield lambda step, text: None
            return
        try:
            yield lambda step, text: self._tell("busy", True, text, step, steps)
        finally:
            self._busy, self._busy_thread = False, None
            self._tell("busy", False, "", 0, 0)

    def busy_elsewhere(self) -> bool:
        """Whether another thread (a background fine-tune's worker) runs an operation now."""
        return self._busy and self._busy_thread is not threading.current_thread()

    # --- moving along the history -------------------------------------------------------

    def apply(self, edit: Edit, *, reinitialize: str | None = None) -> RebuildReport:
        """Apply an edit to the current model; returns the rebuild's `RebuildReport`.

        Raises the `KerawidgetsError` that says why the edit cannot work; the
        model and history are then unchanged.
        """
        edit = as_edit(edit)
        if reinitialize not in REINITIALIZE_CHOICES:
            raise InvalidEditError(f"reinitialize must be None or 'downstream'; got {reinitialize!r}.")
        with self.working(self.MOVE_STEPS) as progress:
            try:
                progress(1, "Rebuilding the model…")
                result = self._dry_run(edit, reinitialize)
                if isinstance(result, KerawidgetsError):
                    raise result
                self.probe.cancel_edits_ahead(keep=result.model)  # a guess at another edit
            except KerawidgetsError as error:
                self._tell("failed", error, edit)
                raise
            self._push(Step(edit, reinitialize, result.model, result.report),
                       f"Applied: {edit.describe()}.", progress)
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
        self.probe.cancel_edits_ahead()  # the preview's guess is about a model left behind
        self._ready = None
        with self.working(self.MOVE_STEPS) as progress:
            progress(1, doing)  # History rebuilds a model it no longer keeps
            try:
                step()
            except KerawidgetsError as error:
                self._tell("failed", error, None)
                raise
            self._after_move(done, progress)

    def _key(self, against, layer=None) -> tuple:
        """Where a step keeps a comparison: (the step it is compared with, the layer plotted;
        None: the edit's own, also when the layer shown is not one `against` lists)."""
        base = 0 if against == "original" else self.position - 1
        if layer is None and self._plotted in self.edited_layers(against):
            layer = self._plotted
        return base, layer

    def _check_against(self, against) -> str:
        if against is None:
            return self._against
        if against not in AGAINST:
            raise InvalidEditError(f"against must be 'previous' or 'original'; got {against!r}.")
        return against

    def _push(self, step, message, progress):
        """Make `step` the current one (the redo steps go) and show it."""
        self._history.push(step)
        position = self.position
        self._edited_paths[position:] = [self._edited_paths[position - 1] | _edited(step.report)]
        self._preview.clear()
        self._after_move(message, progress)

    def _after_move(self, message, progress):
        """Tell the observers about the model the history moved to (steps 2 to 5 of `progress`).

        The move itself has already happened and stays: an error while
        probing or drawing is passed on as `error` and the session stays usable.
        No model changes meanwhile: lookups about one model are answered once
        (`targets.one_trace_each`; the graph, the plots and the panel ask about the
        new model's layers several times).
        """
        with targets.one_trace_each():
            progress(2, "Updating the graph…")
            self._plotted = None  # the new step's own edited layer
            self._tell("moved")
            problem = None
            if self.position > 0:
                try:
                    comparison = self._step_comparison(progress)
                    progress(4, "Drawing the plots…")
                    self._tell("compared", comparison, None)
                except Exception as error:  # the move stands; say why there are no plots
                    problem = error
                    self._tell("compared", None, error)
            else:
                self._tell("compared", None, None)
            progress(5, "Refreshing the panel…")
            self._tell("settled", message, problem)
        for callback in self._listeners:
            callback()

    def _step_comparison(self, progress, step_number=3) -> _Comparison:
        """What the plots show: kept on the step, or computed now (probing at most the
        calls the last edit changed) at `step_number` of `progress`."""
        step = self._history.steps[self.position]
        key = self._key(self._against)
        if key not in step.comparisons:
            doing = "Probing the layer outputs…"
            progress(step_number, doing)
            step.comparisons[key] = comparison = self._compute(
                self.position, key[0], layer=key[1],
                progress=_probe_progress(progress, step_number, doing))
            ready, self._ready = self._ready_for(step.model, key), None
            if ready is not None:
                comparison.pngs.update(ready.pngs)  # the figures drawn ahead of this Apply
        else:
            progress(step_number, "Kept from before: no probing needed.")
        return step.comparisons[key]

    def show(self, against=None, layer=_KEEP) -> None:
        """Choose what the plots, the accuracy line and the heat show (and `compare()`,
        `figures()` return): the current model against the "original" (the default) or
        the "previous" step, and which edited layer the layer plot shows: one of
        `edited_layers(against)`, or None for the one the last edit names; left out,
        the one shown stays if `against` still lists it.

        Undo and redo keep `against`; a comparison already made is kept per step,
        and one made from summaries already held runs no forward pass.
        """
        against = self._check_against(against)
        listed = self.edited_layers(against)
        if layer is _KEEP:
            layer = self._plotted if self._plotted in listed else None
        elif layer is not None and layer not in listed:
            raise InvalidEditError(
                f"{layer!r} is not an edited layer the plots can show against the {against} "
                f"model; pick one of: {', '.join(map(repr, listed)) or 'none yet'}.")
        with self.working(2) as progress:  # raises SessionBusy while a fine-tune runs
            self._against, self._plotted = against, layer
            if self.position == 0:
                return
            comparison = self._step_comparison(progress, step_number=1)
            progress(2, "Drawing the plots…")
            self._tell("compared", comparison, None)

    # --- sweeping, evaluating, training ---------------------------------------------------

    def sweep(self, layer, candidates=(), *, reinitialize=None, progress=None, data=None):
        """Compare candidate edits of `layer` on the probe (see `kerawidgets.sweep.sweep`).

        Nothing is applied; the result's ``apply(i)`` applies row `i` here.
        """
        from kerawidgets.sweep import sweep

        if layer is None:
            raise NothingToApply("Select a layer in the graph first, or pass layer=.")
        candidates = [candidates] if isinstance(candidates, (str, Edit)) else list(candidates)
        with self.working(len(candidates) * (2 if data is not None else 1) + 1) as step:
            def report(i, n, text):
                step(i + 1, text)
                if progress is not None:
                    progress(i, n, text)

            return sweep(self.model, layer, candidates, probe=self.probe,
                         reinitialize=reinitialize, progress=report, data=data,
                         apply=lambda edit: self.apply(edit, reinitialize=reinitialize))

    def evaluate(self, data, y=None, *, batch_size=None, steps=None, progress=None) -> dict:
        """Keras' own `evaluate` on the original and the current model (see `ModelEditor.evaluate`)."""
        from kerawidgets.training import evaluate_pair

        with self.working(100) as step:
            def report(done, total, text):
                if total:
                    step(max(1, round(100 * done / total)), text)
                if progress is not None:
                    progress(done, total, text)

            result = evaluate_pair(self.original, self.model, data, y, batch_size=batch_size,
                                   steps=steps, progress=report)
            self._tell("notice", _evaluation_line(result))
        return result

    def recover(self, x, y=None, *, epochs=1, batch_size=32, steps=None, progress=None,
                validation_data=None, baseline=False):
        """Fine-tune a copy of the current model as a new history step (see `ModelEditor.recover`).

        `baseline=True` also fine-tunes a copy of the original the same way
        (`training.recovery`): ``result.baseline`` and the status line say how
        much of the original's accuracy the edited model recovered."""
        from kerawidgets.training import fine_tune, recovery

        self._stop.clear()
        with self.working(self.MOVE_STEPS) as step:
            step(1, "Fine-tuning…")
            try:
                result = fine_tune(self.model, x, y, epochs=epochs, batch_size=batch_size,
                                   steps=steps, stop=self._stop, progress=progress,
                                   validation_data=validation_data)
                if baseline:
                    step(1, "Fine-tuning the original the same way (baseline)…")
                    result.baseline = recovery(self.original, result, x, y, epochs=epochs,
                                               batch_size=batch_size, steps=steps)
            except KerawidgetsError as error:
                self._tell("failed", error, None)
                raise
            message = result.step.describe() + (
                f"; {result.baseline['text']}" if result.baseline else "")
            self._push(Step(result.step, None, result.model, result.report, pinned=True),
                       f"{message}.", step)
        return result

    def stop_training(self) -> None:
        """Ask a running `recover` to stop after its current batch."""
        self._stop.stop()

    def recover_in_background(self, x, y=None, *, done=None, **settings):
        """`recover` in a worker thread (`training.in_background`); returns the thread.

        The calling thread stays free (in a kernel: to receive a Stop click,
        `stop_training`). While it runs, an operation from another thread
        raises `SessionBusy`. `done(result, error)` is called in the worker
        when it ends (`error` None, or the exception `recover` raised).
        `settings` are `recover`'s (epochs, batch_size, steps, progress...).
        """
        from kerawidgets.training import in_background

        if self.fine_tuning:
            raise SessionBusy("A fine-tune is already running: stop it or wait for it first.")

        def work():
            result = error = None
            try:
                result = self.recover(x, y, **settings)
            except Exception as raised:  # handed to `done`: the worker has no caller
                error = raised
            if done is not None:
                done(result, error)

        self._training = in_background(work)
        return self._training

    @property
    def fine_tuning(self) -> bool:
        """Whether a `recover_in_background` still runs."""
        return self._training is not None and self._training.is_alive()

    def wait_fine_tune(self, timeout=None) -> bool:
        """Wait for `recover_in_background` to end; False if it still runs after `timeout` s."""
        if self._training is not None:
            self._training.join(timeout)
        return not self.fine_tuning

    # --- results ------------------------------------------------------------------------

    def probe_ahead(self, done=None):
        """Probe the original model in a background thread; returns the thread, or None
        when its summaries are already known or on their way (`Probe.summaries_ahead`;
        `done()` is called in that thread once they are held).

        The first Apply compares against the original, so it needs one pass of
        it. `ModelEditor` starts it when shown, while the user picks a layer;
        an operation that needs the probe meanwhile waits for it (the progress
        bar follows it). The editor treats the original as fixed, so it
        should not be trained while the editor is open.

        >>> import keras
        >>> from kerawidgets.edits import SetActivation
        >>> session = EditSession(keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, name="d")]))
        >>> session.probe_ahead().join()
        >>> session.apply(SetActivation("d", "tanh")) and session.probe.summaries(session.original).kind
        'cached'
        """
        if self._history.steps[0].record is not None:
            return None
        return self.probe.summaries_ahead(self.original, done)

    def probe_edit_ahead(self, edit, reinitialize=None, done=None):
        """Probe the model `edit` would make, in a background thread, before it is applied;
        returns the thread, or None (the edit cannot apply, or its model's summaries are
        held or on their way). `done()` is called in that thread once they are held.

        The rebuild is the preview's (`dry_run`, cached); the probe recomputes only
        what the edit changes (`Probe.summaries_after_edit_ahead`). `apply` of the same
        edit then takes the result, or waits for it with its progress shown, instead
        of probing. It is a guess: a preview of another edit, `apply` of another edit,
        `undo`, `redo`, `reset` and any other use of the probe cancel it.
        `ModelEditor` starts it from its preview when shown in a notebook.

        >>> import keras
        >>> from kerawidgets.edits import SetActivation
        >>> inputs = keras.Input((2,), name="x")
        >>> session = EditSession(keras.Model(inputs, keras.layers.Dense(2, name="d")(inputs)))
        >>> session.probe_edit_ahead(SetActivation("d", "tanh")).join()
        >>> session.apply(SetActivation("d", "tanh")) and session.compare()["recompute"]
        'incremental'
        """
        result = self.dry_run(edit, reinitialize)
        if isinstance(result, KerawidgetsError):
            return None
        self.probe.cancel_edits_ahead(keep=result.model)  # a guess at the edit previewed before
        before, record = self.model, self._history.current.record
        if record is not None and not self.probe.cached(before):  # the probe let it go
            self.probe.remember(before, record)
        return self.probe.summaries_after_edit_ahead(before, result.model,
                                                     _changed(result.report, result.model), done)

    def comparison_ahead(self, edit, reinitialize=None) -> _Comparison | None:
        """The comparison that Apply of `edit` would show, when the probe already holds the
        summaries of the model it makes (its preview's guess ended, `probe_edit_ahead`);
        else None. Nothing is rebuilt or probed. That Apply keeps the figures drawn into
        this comparison's `pngs` meanwhile (the editor draws them on the kernel's idle
        loop), so it draws only what they lack.

        >>> import keras
        >>> from kerawidgets.edits import SetActivation
        >>> inputs = keras.Input((2,), name="x")
        >>> session = EditSession(keras.Model(inputs, keras.layers.Dense(2, name="d")(inputs)))
        >>> edit = SetActivation("d", "tanh")
        >>> session.comparison_ahead(edit) is None  # not previewed
        True
        >>> session.probe_edit_ahead(edit).join()
        >>> session.comparison_ahead(edit).focus_after
        'd'
        """
        result = self._cached_dry_run(edit, reinitialize)
        if result is None or isinstance(result, KerawidgetsError) or not self.probe.cached(
                result.model):
            return None
        key = (0 if self._against == "original" else self.position, None)
        ready = self._ready_for(result.model, key)
        if ready is not None:
            return ready
        after = self.probe.summaries(result.model).record  # held: read, not run
        comparison = self._compared(edit, result.report, key[0], self._record(key[0]), after,
                                    None, "incremental", [])
        self._ready = (weakref.ref(result.model), key, comparison)
        return comparison

    def _ready_for(self, model, key) -> _Comparison | None:
        """The `comparison_ahead` made for `model` against the step and layer `key`, or None."""
        ready = self._ready
        if ready is not None and ready[0]() is model and ready[1] == key:
            return ready[2]
        return None

    def unchanged_comparison(self) -> _Comparison:
        """The original against itself, focused on its last layer: what the plots of an edit
        that changed nothing would show. The editor draws it before the first Apply to lay
        its figures out (`ModelEditor._draw_ahead`); probes the original if needed.

        >>> import keras
        >>> inputs = keras.Input((2,), name="x")
        >>> session = EditSession(keras.Model(inputs, keras.layers.Dense(2, name="d")(inputs)))
        >>> c = session.unchanged_comparison()
        >>> c.focus_after, c.order, c.agreement["top1_agreement"], c.movement["d"]
        ('d', ['x', 'd'], 1.0, 0.0)
        """
        last = next(reversed(self._record(0).summaries))  # held on step 0 from now on
        return self._compute(0, 0, layer=last)

    def compare(self, against=None, layer=None) -> dict:
        """The numbers behind the plots, as plain data (see `ModelEditor.compare`).

        `against` ("original" or "previous") and `layer` (an edited layer) default
        to what the plots show (`show`); asking for others changes no plot.
        """
        against = self._check_against(against)
        if self.position == 0:
            return {"edit": None, "against": against, "layer": None, "layer_before": None,
                    "layer_stats": None, "per_layer": None, "agreement": None,
                    "movement": None, "recompute": None, "recomputed": None}
        if layer is not None and layer not in self.edited_layers(against):
            raise InvalidEditError(f"{layer!r} is not an edited layer; pick one of: "
                                   f"{', '.join(map(repr, self.edited_layers(against)))}.")
        with self.working(1) as progress:
            comparison = self._comparison(against, layer, progress)
        return comparison.to_data(self.edit, against)

    def figures(self, displays=None) -> dict:
        """The current plots as matplotlib Figures: ``{"comparison": ..., "depth": ...}``,
        laid out for `displays` (``{name: plots.Display}``; default: 900 px, light)."""
        if self.position == 0:
            return {}
        return figures_of(self._comparison(self._against), self.probe.y, displays)

    def _comparison(self, against, layer=None, progress=None) -> _Comparison:
        """The current step against `against` for `layer`: kept on the step, or made now."""
        step = self._history.steps[self.position]
        key = self._key(against, layer)
        if key not in step.comparisons:
            probing = (None if progress is None
                       else _probe_progress(progress, 0, "Probing the layer outputs…"))
            step.comparisons[key] = self._compute(self.position, key[0], layer=key[1],
                                                  progress=probing)
        return step.comparisons[key]

    def to_code(self, model_var="model") -> str:
        """A Python script that replays `history` on `model_var` with the public API:
        it imports every layer class it names and registers the custom activations
        it uses (`kerawidgets.edits.script_header`)."""
        steps = self._history.steps[1:self.position + 1]
        lines = [*script_header([step.edit for step in steps]), "",
                 f"# `{model_var}` is the original model, {self.original.name!r}; "
                 f"{len(self.history)} edit(s) follow."]
        for step in steps:
            code = step.change.to_code(model_var)
            if step.reinitialize is not None:
                if not code.endswith(")"):
                    raise InvalidEditError(f"Cannot write {step.change.describe()} as code.")
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
        with self.working(2) as progress:
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
                self._tell("failed", error, None)
                raise
            progress(2, "Saved.")
            self._tell("notice", f"Saved to {path} ({how}).")
        return path

    def _predict(self, model):
        # keras.Model's own predict: a keras-hub task's would run its preprocessor first.
        outputs = keras.Model.predict(model, self.probe.x, batch_size=self.probe.batch_size, verbose=0)
        return [np.asarray(o) for o in keras.tree.flatten(outputs)]

    # --- rebuild, cached for preview then Apply -------------------------------------------

    def dry_run(self, edit, reinitialize=None):
        """The rebuild of `edit` on the current model (a `Rebuild`) or the error it raises,
        returned, not raised; cached, so applying the same edit next rebuilds nothing.

        Entries are matched by the model's identity and the edit's value
        (`==`), not its JSON: edits that have no JSON (a predicate
        selector) are cached too, and two sub-networks with the same name
        are never confused. A rebuild (not cached) first cancels the probe's
        guess at another edit (`probe_edit_ahead`), which would run beside it.
        """
        cached = self._cached_dry_run(edit, reinitialize)
        if cached is not None:
            return cached
        model = self.model
        result: Rebuild | KerawidgetsError
        self.probe.cancel_edits_ahead()  # a guess at another edit: not beside this rebuild
        try:
            with adapter.strategy_scope(model):  # mirrored like the original's variables
                result = rebuild(model, [edit], reinitialize=reinitialize)
        except KerawidgetsError as error:
            result = error
        self._preview.append((model, edit, reinitialize, result))
        del self._preview[:-_PREVIEW_CACHE]
        return result

    _dry_run = dry_run

    def _cached_dry_run(self, edit, reinitialize=None):
        """`dry_run`'s cached result for `edit` on the current model, or None (not cached)."""
        model = self.model
        for entry in self._preview:
            if entry[0] is model and entry[2] == reinitialize and _same_edit(entry[1], edit):
                return entry[3]
        return None

    # --- comparisons ------------------------------------------------------------------------

    def _compute(self, position, base=None, progress=None, layer=None) -> _Comparison:
        """The comparison of step `position` with step `base` (default: the one before),
        plotting `layer` (default: the layer the step's edit names).

        Each side is the probe's summaries of that step's model: kept on the
        step once known (so a step whose model History dropped is never
        probed again), otherwise probed, the after side incrementally from
        the step before it. `progress(done, total)` follows the probe's calls.
        """
        base = position - 1 if base is None else base
        progress_before, progress_after = _two_runs(progress)
        step = self._history.steps[position]
        kind, recomputed = "cached", []
        if step.record is not None:
            after = step.record
        else:
            previous = self._record(position - 1, progress_before)
            run = self._probe_after(position, previous, progress_after)
            kind, recomputed = run.kind, run.recomputed
            after = step.record = run.record.without_checkpoints()
            self._history.trim()  # a model rebuilt only to probe from goes again
        before = self._record(base, progress_before)
        return self._compared(step.edit, step.report, base, before, after, layer, kind, recomputed)

    def _compared(self, edit, report, base, before, after, layer, kind, recomputed) -> _Comparison:
        """The comparison of the summaries `after` (of the model `edit` made, `report` its
        rebuild's) with step `base`'s, `before`, plotting `layer` (None: the edit's own)."""
        b, a = before.summaries, after.summaries
        if layer is None:
            focus_before, focus_after = _focus(edit, report,
                                               lambda: self._history.at(base).model, b, a)
        else:
            focus_before, focus_after = (layer if layer in b else None), layer
        stats_before, stats_after = paired_summary_statistics(b, a)
        out_before, out_after = _single(before.model_outputs), _single(after.model_outputs)
        order = naming.merged_order(b, a)  # a removed layer stays in place
        return _Comparison(
            focus_before, focus_after, b.get(focus_before) if focus_before else None,
            a.get(focus_after) if focus_after else None, order,
            out_before, out_after, stats_before, stats_after,
            agreement(out_before, out_after, self.probe.y), summary_movement(b, a), kind,
            recomputed)

    def _probe_after(self, position, previous, progress):
        """Probe step `position`'s model incrementally from the step before (`previous`:
        its record), running only the calls the step's edit changed and those downstream."""
        after_model = self._history.at(position).model
        before_model = self._history.at(position - 1).model
        if not self.probe.cached(before_model):  # rebuilt by History: same layers
            self.probe.remember(before_model, previous)
        report = self._history.steps[position].report
        return self.probe.summaries_after_edit(before_model, after_model,
                                               _changed(report, after_model), progress)

    def _record(self, position, progress=None):
        """The summaries of step `position`'s model: from the step, or probed (one pass) and kept."""
        step = self._history.steps[position]
        if step.record is None:
            step.record = self.probe.summaries(self._history.at(position).model,
                                               progress).record.without_checkpoints()
        elif step.model is not None and not self.probe.cached(step.model):
            self.probe.remember(step.model, step.record)
        return step.record


# --- helpers ---------------------------------------------------------------------------


def plot_failure(error) -> str:
    """The status line for an edit that was applied but could not be probed or plotted."""
    what = str(error) if isinstance(error, KerawidgetsError) else f"{type(error).__name__}: {error}"
    return (f"The edit is kept, but its before/after plots could not be made ({what}). "
            "Undo it, or carry on editing.")


def edit_layer(edit):
    """The layer path an edit names (an insert: the layer it goes after), or None."""
    return None if edit is None else edit.layer_name


def _same_edit(a, b) -> bool:
    """Whether two edits are the same value (identity when they cannot be compared)."""
    if a is b:
        return True
    try:
        return bool(a == b)
    except Exception:  # a field whose == is not a plain bool (an array, say)
        return False


def _edited(report) -> set:
    return {o.layer for o in report.outcomes if o.edited and o.status != "removed"}


def _changed(report, model) -> list[str]:
    """Layer paths of `model` whose weights or config differ from the model before the edit."""
    present = set(targets.layer_paths(model))
    return [o.layer for o in report.outcomes
            if (o.edited or o.status in ("reinitialised", "new")) and o.layer in present]


def _focus(edit, report, before_model, before, after):
    """(node in the old model, node in the new model) whose outputs the histograms compare
    (`Edit.focus`); `before_model` is a function giving the old model."""
    return edit.focus(report, before_model, before, after)


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
    """A probe progress callback moving the bar from `step` towards `step + 1`.

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


def figures_of(comparison: _Comparison, y, displays=None) -> dict:
    """The figures of a comparison: ``{"comparison": before/after, "depth": change by depth}``,
    or those named in `displays` (``{name: plots.Display}``: the width and theme to draw for)."""
    displays = displays or {"comparison": None, "depth": None}
    inputs = figure_inputs(comparison, y)
    makers: dict[str, typing.Callable] = {"comparison": plots.comparison_figure,
                                          "depth": plots.depth_summary_figure}
    return {name: makers[name](**inputs[name], display=display)
            for name, display in displays.items()}


def figure_inputs(comparison: _Comparison, y) -> dict:
    """The arguments of each figure of a comparison (without `display`), by figure name: what
    `figures_of` draws, and what the editor gives its `plots.FigureCache`."""
    c = comparison
    layer_before, layer_after = c.layer_before, c.layer_after
    if layer_before is None:
        layer_before = layer_after
    name = c.focus_after or c.focus_before or "edited layer"
    if c.focus_before and c.focus_after and c.focus_before != c.focus_after:
        name = f"{c.focus_before} → {c.focus_after}"
    return {
        "comparison": {"layer_before": layer_before, "layer_after": layer_after,
                       "output_before": c.model_before, "output_after": c.model_after,
                       "agreement": c.agreement, "y": y, "layer_name": name},
        "depth": {"stats_before": c.stats_before, "stats_after": c.stats_after,
                  "order": c.order, "highlight": c.focus_after},
    }


def _evaluation_line(result) -> str:
    """One status line: each metric, original → current."""
    parts = [f"{name} {result['original'][name]:.4g} → {value:.4g}"
             for name, value in result["current"].items() if name in result["original"]]
    return "Evaluated: " + ", ".join(parts) + "."
