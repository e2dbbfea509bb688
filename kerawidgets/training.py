"""Keras' own `evaluate` and `fit` around edited models: compare on a full dataset, fine-tune.

`evaluate_pair(original, current, data)` runs `Model.evaluate` on both
models (arrays, a `tf.data.Dataset`, a `keras.utils.PyDataset`, or a torch
`DataLoader` on the torch backend: whatever Keras accepts), and
`fine_tune(model, x, y)` trains a copy of a model with `Model.fit`, compiled
like the original (same loss and metrics, a fresh optimizer of the same kind),
stoppable after any batch. Both run under whatever distribution is active
(`keras.distribution.set_distribution`, a `tf.distribute` strategy scope):
they are Keras' own loops.

>>> import keras, numpy as np
>>> from kerawidgets.training import evaluate_pair, fine_tune
>>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
>>> model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
>>> x, y = np.ones((8, 4), "float32"), np.zeros(8, "int32")
>>> sorted(evaluate_pair(model, model, (x, y))["current"])
['accuracy', 'loss']
>>> tuned = fine_tune(model, x, y, epochs=1, batch_size=4)
>>> tuned.step.describe(), tuned.model is model, tuned.stopped
('Fine-tune 1 epoch on 8 samples', False, False)
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import keras

from kerawidgets import _keras_adapter as adapter
from kerawidgets import naming, targets
from kerawidgets.errors import InvalidEditError
from kerawidgets.rebuild import copy_model
from kerawidgets.report import LayerOutcome, RebuildReport

__all__ = ["FineTune", "FineTuneResult", "StopFlag", "evaluate", "evaluate_pair", "fine_tune",
           "in_background", "recovery"]


class NotCompiledError(InvalidEditError):
    """A model that has no loss to evaluate or train with."""


class StopFlag:
    """Ask a running `fine_tune` to stop after its current batch (thread-safe).

    >>> flag = StopFlag(); flag.requested
    False
    >>> flag.stop(); flag.requested
    True
    """

    def __init__(self):
        self._event = threading.Event()

    def stop(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    @property
    def requested(self) -> bool:
        return self._event.is_set()


class _Callback(keras.callbacks.Callback):
    """Reports each batch to `progress(done, total, logs)`; stops training when asked."""

    def __init__(self, progress=None, stop: StopFlag | None = None):
        super().__init__()
        self.progress = progress
        self.stop = stop
        self.batches = 0
        self.epochs_done = 0
        self.epoch_batches = 0
        self.stopped = False
        self.logs: list[dict] = []

    @property
    def total(self) -> int | None:
        """Batches Keras will run in all (None: a dataset of unknown length)."""
        steps = self.params.get("steps") if self.params else None
        epochs = (self.params or {}).get("epochs") or 1
        return None if steps is None else steps * epochs

    def _report(self, logs):
        self.batches += 1
        if self.progress is not None:
            self.progress(self.batches, self.total, dict(logs or {}))

    def on_test_batch_end(self, batch, logs=None):
        self._report(logs)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.epoch_batches += 1
        self.logs.append({k: float(v) for k, v in (logs or {}).items()})
        self._report(logs)
        if self.stop is not None and self.stop.requested:
            self.stopped = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        steps = (self.params or {}).get("steps")
        if (self.epoch_batches == steps) if steps else not self.stopped:  # Keras ends a stopped epoch too
            self.epochs_done += 1


def _check_compiled(model, what="evaluate"):
    if not getattr(model, "compiled", False) or getattr(model, "loss", None) is None:
        raise NotCompiledError(
            f"Model {model.name!r} is not compiled with a loss, so there is nothing to {what} "
            "with. Compile the original model first, e.g. model.compile(optimizer='adam', "
            "loss='sparse_categorical_crossentropy', metrics=['accuracy']); edited models "
            "inherit its loss and metrics.")


def _split(data, y):
    """(x, y) for Keras: a pair given as `data` is split, anything else is passed on."""
    if y is None and isinstance(data, tuple) and len(data) in (2, 3):
        return data[0], data[1]
    return data, y


def evaluate(model, data, y=None, *, batch_size=None, steps=None, progress=None) -> dict:
    """`model.evaluate(...)` as a dict of metrics ({"loss": ..., "accuracy": ...}).

    `data` is what Keras' evaluate takes as `x` (arrays, a dict, a
    `tf.data.Dataset`, a `keras.utils.PyDataset`, a torch DataLoader), or
    an ``(x, y)`` pair. `progress(done, total, logs)` is called after each batch.
    """
    _check_compiled(model)
    x, y = _split(data, y)
    callback = _Callback(progress)
    result = model.evaluate(x, y, batch_size=batch_size, steps=steps, verbose=0,
                            callbacks=[callback], return_dict=True)
    return {k: float(v) for k, v in result.items()}


def evaluate_pair(original, current, data, y=None, *, batch_size=None, steps=None,
                  progress=None) -> dict:
    """``{"original": metrics, "current": metrics}`` from Keras' evaluate on both models.

    `progress(done, total, text)` gets the batches of both runs (total = both);
    when `current` is `original`, it is evaluated once.
    """
    parts = [("original", original)] + ([] if current is original else [("current", current)])
    result, offset = {}, [0]

    def report(done, total, logs, name=None):
        if progress is not None:
            whole = None if total is None else total * len(parts)
            progress(offset[0] + done, whole, f"Evaluating the {name} model…")

    for name, model in parts:
        steps_of = [0]  # this part's step count, as its progress reports it

        def one(done, total, logs, name=name, steps_of=steps_of):
            report(done, total, logs, name)
            steps_of[0] = total

        result[name] = evaluate(model, data, y, batch_size=batch_size, steps=steps,
                                progress=one)
        offset[0] += steps_of[0] or 0
    result.setdefault("current", result["original"])
    return result


# --- fine-tuning ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)  # five counts: by name, never mixed up
class FineTune:
    """A history step that trained the model (not an edit: it replays no layer change)."""

    epochs: int
    batch_size: int | None
    samples: int | None  # samples of the data given (None: a dataset of unknown size)
    batches: int  # batches trained
    epochs_done: int
    stopped: bool = False
    total_batches: int | None = None  # batches the whole run would have had (None: unknown)

    def describe(self) -> str:
        on = (f"{self.samples} samples" if self.samples is not None
              else f"the dataset ({self.batches} batches)")
        plural = "epoch" if self.epochs == 1 else "epochs"
        if self.stopped:
            of = "" if self.total_batches is None else f" of {self.total_batches}"
            return (f"Fine-tune stopped after {self.batches}{of} batches "
                    f"({self.epochs_done} of {self.epochs} {plural} complete) on {on}")
        return f"Fine-tune {self.epochs} {plural} on {on}"

    def to_code(self, model_var="model") -> str:
        return (f"# {self.describe()}: {model_var}.fit(x, y, epochs={self.epochs}, "
                f"batch_size={self.batch_size}) on your data (this script does not hold it)")

    def to_data(self) -> dict:
        return {"type": "FineTune", **dataclasses.asdict(self)}

    def names(self) -> tuple[set, set]:
        """(layer classes, registered activation names) its code uses: none (it is a comment)."""
        return set(), set()

    @property
    def layer_name(self) -> str | None:
        """The layer it names for messages: none (it trains them all)."""
        return None

    def focus(self, report, before_model, before, after) -> tuple[str | None, str | None]:
        """The node the plots compare, as an edit's `focus`: the first layer the report marks
        edited (none: training edits no layer, so the plots show the model output)."""
        edited = [o.layer for o in report.outcomes if o.edited and o.layer in after]
        layer = edited[0] if edited else None
        return (layer if layer in before else None), layer

    def __str__(self):
        return self.describe()


@dataclasses.dataclass
class FineTuneResult:
    """The trained copy, its history step, report and Keras' per-epoch history."""

    model: Any
    step: FineTune
    report: RebuildReport
    history: dict
    batch_logs: list
    baseline: dict | None = None  # `recovery`'s numbers, when asked for

    @property
    def stopped(self) -> bool:
        return self.step.stopped


def _samples(x) -> int | None:
    first = keras.tree.flatten(x)[0] if isinstance(x, (dict, list, tuple)) else x
    shape = getattr(first, "shape", None)
    if shape is None or len(shape) == 0 or hasattr(x, "element_spec"):
        return None
    return int(shape[0])


def _first(data, n):
    """The first `n` samples of arrays (a dict or list of them too); None stays None."""
    return None if data is None else keras.tree.map_structure(lambda a: a[:n], data)


def _report(model, step: FineTune) -> RebuildReport:
    """Every layer kept; the ones with trainable weights marked as changed by training."""
    outcomes = []
    walked = list(targets.walk_layers(model))
    holders = {path[:-1] for path, _ in walked}  # a subclassed model's blocks: their layers say it
    for path, layer in walked:
        if adapter.is_model(layer) or path in holders:
            continue
        trained = bool(layer.trainable_weights)
        outcomes.append(LayerOutcome(
            naming.layer_path(path), type(layer).__name__, "kept",
            "fine-tuned: weights updated by training" if trained else "no trainable weights",
            len(layer.weights), trained))
    return RebuildReport(outcomes, [f"{step.describe()}; optimizer state is not kept."])


def fine_tune(model, x, y=None, *, epochs=1, batch_size=32, steps=None, stop=None,
              progress=None, validation_data=None, shuffle=True) -> FineTuneResult:
    """Train a copy of `model` with Keras' own `fit`; `model` itself is never touched.

    The copy is compiled like `model` (same loss and metrics, a fresh
    optimizer of the same kind and settings). `steps` limits the batches per
    epoch; `stop` (a `StopFlag`) ends training cleanly after the current
    batch, keeping what was learned; `progress(done, total, logs)` is called
    after every batch (`logs` has the running loss and metrics); `shuffle`
    and `validation_data` are passed to `fit`.
    """
    _check_compiled(model, "fine-tune")
    if epochs < 1:
        raise InvalidEditError(f"epochs must be at least 1; got {epochs}.")
    x, y = _split(x, y)
    callback = _Callback(progress, stop)
    with adapter.strategy_scope(model):  # the copy is made like the model, and trains so
        copy = copy_model(model)  # compiled from model's compile config: a fresh optimizer
        _check_compiled(copy, "fine-tune")
        arrays = _samples(x) is not None  # a dataset brings its own batches and order
        if arrays and steps is not None:
            # Keras would go on through the arrays from epoch to epoch and run out of
            # them; every epoch trains on the same first `steps` batches instead.
            x, y = _first(x, int(steps) * int(batch_size)), _first(y, int(steps) * int(batch_size))
            steps = None
        history = copy.fit(x, y, epochs=epochs, batch_size=batch_size if arrays else None,
                           steps_per_epoch=steps, validation_data=validation_data,
                           shuffle=shuffle and arrays, verbose=0, callbacks=[callback])
    samples = _samples(x)
    if samples is not None and steps is not None and batch_size:
        samples = min(samples, int(steps) * int(batch_size))
    step = FineTune(epochs=int(epochs), batch_size=batch_size if arrays else None, samples=samples,
                    batches=callback.batches, epochs_done=callback.epochs_done,
                    stopped=callback.stopped, total_batches=callback.total)
    return FineTuneResult(copy, step, _report(copy, step), dict(history.history),
                          callback.logs)


def recovery(original, result: FineTuneResult, x, y=None, *, epochs=1, batch_size=32,
             steps=None) -> dict:
    """The baseline of a fine-tune: the same training on a copy of `original`, both evaluated.

    A copy of `original` is fine-tuned with the same settings for exactly
    as many batches as `result` trained (fewer when it was stopped); both
    trained models are then evaluated on ``(x, y)`` with Keras' evaluate.
    Returns ``{"recovered": metrics, "baseline": metrics, "share": the
    recovered accuracy over the baseline's (None without an accuracy metric),
    "text": one line saying it, "batches": the baseline's batches}``.
    `original` is never trained.
    """
    stop = StopFlag()

    def progress(done, total, logs):
        if done >= result.step.batches:
            stop.stop()

    base = fine_tune(original, x, y, epochs=epochs, batch_size=batch_size, steps=steps,
                     stop=stop, progress=progress)
    arrays = _samples(_split(x, y)[0]) is not None
    size = batch_size if arrays else None
    recovered = evaluate(result.model, x, y, batch_size=size)
    baseline = evaluate(base.model, x, y, batch_size=size)
    key = next((k for k in recovered if "accuracy" in k), None)
    share = None
    if key is not None and baseline.get(key):
        share = recovered[key] / baseline[key]
        text = (f"recovered to {share:.0%} of the original's {key} fine-tuned the same way "
                f"({recovered[key]:.1%} vs {baseline[key]:.1%} on the training data)")
    else:
        text = (f"loss {recovered['loss']:.4g} against {baseline['loss']:.4g} for the original "
                "fine-tuned the same way")
    return {"recovered": recovered, "baseline": baseline, "share": share, "text": text,
            "batches": base.step.batches}


def in_background(work, *, name="kerawidgets-fine-tune") -> threading.Thread:
    """Start `work()` in a daemon thread that has this thread's Keras settings; returns it.

    Training in the kernel's own thread would hold the thread that handles
    widget messages, so a Stop click could only arrive after training ended.
    Keras' `fit` runs in any thread on every backend (tensorflow, jax,
    torch); Keras keeps its settings (distribution, dtype policy, seed) per
    thread, so the worker gets the starting thread's
    (`_keras_adapter.thread_settings`). `work` handles its own errors.

    >>> seen = []
    >>> in_background(lambda: seen.append(1)).join(); seen
    [1]
    """
    settings = adapter.thread_settings()

    def run():
        with settings:
            work()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread
