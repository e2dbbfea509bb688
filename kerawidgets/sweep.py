"""Compare several candidate edits of one layer at once, on the probe data.

`sweep(model, layer, candidates, x=..., y=...)` rebuilds each candidate (an
activation name, or an edit value such as `ReplaceLayer(...)`) as a dry run
and measures it on the probe batch: top-1 agreement with the original, the
accuracy and loss when labels are given, max/mean |difference| of the model
output, and the edited layer's output statistics. Nothing is applied and
the model is never touched; `SweepResult.apply(i)` applies one candidate.

It is fast because upstream work is shared. The sweep cuts the model where
the edited layer's inputs come in, takes the values crossing the cut from the
probe (one pass, cached), copies only the layers downstream of the cut into a
"tail" model, and per candidate rebuilds and runs only that tail, with the
same `rebuild` an edit of the whole model uses. A candidate the tail cannot
represent (an edit of a layer upstream, say) is rebuilt on the whole model
instead; a candidate that cannot be built at all is a row with its error
message.

>>> import keras, numpy as np, kerawidgets
>>> inp = keras.Input((4,), name="x")
>>> h = keras.layers.Dense(8, activation="relu", name="hidden")(inp)
>>> model = keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="head")(h))
>>> x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
>>> result = kerawidgets.sweep(model, "hidden", ["relu", "tanh", "no_such"], x=x)
>>> [row.label for row in result.rows], result.rows[0].top1_agreement
(['relu', 'tanh', 'no_such'], 1.0)
>>> result.rows[2].error is not None
True
>>> new = result.apply(1).model  # a `Rebuild`: the model with tanh; `model` is unchanged
>>> new.get_layer("hidden").activation.__name__, model.get_layer("hidden").activation.__name__
('tanh', 'relu')
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from kerawidgets import _keras_adapter as adapter
from kerawidgets import naming, targets
from kerawidgets.edits import Edit, SetActivation, as_edit
from kerawidgets.errors import InvalidEditError, KerawidgetsError
from kerawidgets.probe import Probe
from kerawidgets.rebuild import REINITIALIZE_CHOICES, copy_model, rebuild
from kerawidgets.statistics import agreement, layer_statistics

__all__ = ["METRICS", "SweepResult", "SweepRow", "sweep"]

#: Row metrics and whether higher is better (what `SweepResult.ranked` sorts by).
METRICS = {
    "top1_agreement": True, "accuracy": True, "loss": False, "max_abs_diff": False,
    "mean_abs_diff": False, "mean": None, "std": None, "dead_fraction": False,
    "saturated_fraction": False,
}
#: Values of the edited layer kept per candidate for `SweepResult.figure` (a sample).
MAX_PLOT_VALUES = 20_000


@dataclasses.dataclass
class SweepRow:
    """One candidate's numbers (None where they do not apply), or its error.

    `edit` is the edit value (apply it with `ModelEditor.apply(row.edit)`);
    `layer` the node whose output the statistics describe; `route` how it
    was measured (``"tail"``: only the part downstream of the cut was
    rebuilt and run; ``"full"``: the whole model); `weights` what the
    rebuild did to the weights.
    """

    index: int
    label: str
    edit: Edit | None
    error: str | None = None
    top1_agreement: float | None = None
    accuracy: float | None = None
    loss: float | None = None
    max_abs_diff: float | None = None
    mean_abs_diff: float | None = None
    mean: float | None = None
    std: float | None = None
    dead_fraction: float | None = None
    saturated_fraction: float | None = None
    layer: str | None = None
    weights: str | None = None
    route: str | None = None
    evaluation: dict | None = None  # Keras' evaluate on `data=` (the full dataset), if given

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict:
        """The row as plain data; the edit as its description."""
        data = dataclasses.asdict(self)
        data["edit"] = None if self.edit is None else self.edit.describe()
        return data


class SweepResult:
    """The rows of a sweep (one per candidate, in order), the original's numbers, plots.

    `baseline` holds the original model's numbers on the same probe
    (accuracy and loss with labels, the edited layer's statistics).
    """

    def __init__(self, layer, rows, baseline, values, probe_description, apply=None):
        self.layer = layer
        self.rows: list[SweepRow] = list(rows)
        self.baseline: dict = baseline
        self.probe_description = probe_description
        self._values = values  # {"original" or row index: sample of the edited layer's values}
        self._apply = apply

    def __repr__(self):
        ok = sum(r.ok for r in self.rows)
        return (f"<SweepResult of {self.layer!r}: {len(self.rows)} candidates, {ok} built; "
                f"{self.probe_description}>")

    def __len__(self):
        return len(self.rows)

    def records(self) -> list[dict]:
        """One plain dict per candidate (`SweepRow.to_dict`)."""
        return [row.to_dict() for row in self.rows]

    def to_dataframe(self):
        """The records as a pandas DataFrame (pandas must be installed)."""
        try:
            import pandas as pd
        except ModuleNotFoundError as missing:
            raise ModuleNotFoundError(
                "SweepResult.to_dataframe needs pandas (`pip install pandas`); "
                "`records()` gives the same rows as plain dicts.") from missing
        return pd.DataFrame.from_records(self.records())

    def default_metric(self) -> str:
        """With `data=`: ``"evaluation.accuracy"`` (or the evaluation's loss); else
        ``"accuracy"`` when the probe has labels, else ``"top1_agreement"``."""
        evaluated = next((r.evaluation for r in self.rows if r.evaluation), None)
        if evaluated:
            return "evaluation.accuracy" if "accuracy" in evaluated else "evaluation.loss"
        if any(r.accuracy is not None for r in self.rows):
            return "accuracy"
        if any(r.top1_agreement is not None for r in self.rows):
            return "top1_agreement"
        return "mean_abs_diff"

    def ranked(self, metric=None) -> list[SweepRow]:
        """Rows with a value of `metric`, best first (failed candidates left out)."""
        metric = metric or self.default_metric()
        higher = _higher_is_better(metric)
        rows = [r for r in self.rows if r.ok and metric_value(r, metric) is not None]
        return sorted(rows, key=lambda r: metric_value(r, metric), reverse=higher)

    def best(self, metric=None) -> SweepRow | None:
        """The best row by `metric` (see `ranked`), or None when no candidate has a value."""
        ranked = self.ranked(metric)
        return ranked[0] if ranked else None

    def values(self, index) -> np.ndarray | None:
        """A sample of the edited layer's output values of row `index` (``"original"`` too)."""
        return self._values.get(index)

    def figure(self, metric=None, *, columns=4):
        """Small multiples of the edited layer's output distribution, and a leaderboard."""
        from kerawidgets.plots import sweep_figure

        metric = metric or self.default_metric()
        panels = [("original", self._values.get("original"))]
        panels += [(r.label, self._values.get(r.index)) for r in self.rows if r.ok]
        higher = _higher_is_better(metric)
        board = [(r.label, metric_value(r, metric) if r.ok else None, r.error) for r in self.rows]
        base = self.baseline
        baseline = (base.get("evaluation") or {}).get(metric.split(".", 1)[-1]) \
            if metric.startswith("evaluation.") else base.get(metric)
        return sweep_figure(panels, board, metric=metric, higher=higher, layer=self.layer,
                            baseline=baseline, columns=columns)

    def apply(self, index):
        """Apply row `index`'s edit: to the editor when the sweep came from one, else a `Rebuild`."""
        row = self.rows[index]
        if not row.ok:
            raise InvalidEditError(f"Candidate {index} ({row.label}) could not be built: {row.error}")
        if self._apply is None:
            raise InvalidEditError("This sweep result is not tied to a model; apply row.edit yourself.")
        return self._apply(row.edit)


def metric_value(row: SweepRow, metric: str):
    """A row's value of `metric`: a `METRICS` name or ``"evaluation.<keras metric>"``."""
    if metric.startswith("evaluation."):
        return (row.evaluation or {}).get(metric.split(".", 1)[1])
    if metric not in METRICS:
        raise InvalidEditError(
            f"Unknown sweep metric {metric!r}; choose from {sorted(METRICS)} or "
            "'evaluation.<metric>' (with data=).")
    return getattr(row, metric)


def _higher_is_better(metric: str) -> bool:
    if metric.startswith("evaluation."):
        return "loss" not in metric and "error" not in metric
    metric_value(SweepRow(0, "", None), metric)  # refuses an unknown metric
    return METRICS[metric] is not False


# --- candidates -------------------------------------------------------------


def _candidate(layer: str, value) -> tuple[str, Edit | None, str | None]:
    """(label, edit or None, error) of one candidate."""
    label = value if isinstance(value, str) else repr(value)
    try:  # an unknown activation, or a value that is no edit: its own row
        edit = SetActivation(layer, value) if isinstance(value, str) else as_edit(value)
    except Exception as error:
        return label, None, _message(error)
    return (label if isinstance(value, str) else edit.describe()), edit, None


def _message(error) -> str:
    return str(error) if isinstance(error, KerawidgetsError) else f"{type(error).__name__}: {error}"


# --- the tail: the part of the model downstream of the edited layer ---------------

#: Largest |difference| allowed between the tail's output and the model's on the probe.
TAIL_TOLERANCE = 1e-4


def _region(model, top: str):
    """(calls downstream of layer `top`, tensors crossing into them) of `model`'s graph."""
    calls = adapter.graph_calls(model)
    inside: set[int] = set()
    region = []
    for call in calls:
        if call.is_input:
            continue
        if call.operation.name == top or any(id(t) in inside for t in call.input_tensors):
            inside.update(id(t) for t in call.output_tensors)
            region.append(call)
    outputs = adapter.flat_outputs(model)
    if not region or any(id(t) not in inside for t in outputs):
        raise InvalidEditError(f"Not every model output lies downstream of {top!r}.")
    cut, seen = [], set()
    for call in region:
        for t in call.input_tensors:
            if id(t) not in inside and id(t) not in seen:
                seen.add(id(t))
                cut.append(t)
    return calls, region, cut, outputs


def _fresh(operation):
    """An unbuilt copy of a layer (a copy with its weights for a nested model)."""
    if adapter.is_model(operation):
        return copy_model(operation)
    return type(operation).from_config(operation.get_config())


def _tail_from_original(model, top, probe: Probe) -> tuple[keras.Model, list, Any]:
    """The tail as a new model of fresh copies of only the downstream layers, fed the
    probe's (cached) values of the tensors crossing the cut. Reads the original, never
    calls it (which would add graph nodes to its layers)."""
    calls, region, cut, outputs = _region(model, top)
    made = {id(t): (c, i) for c in calls for i, t in enumerate(c.output_tensors)}
    known, reference = probe.outputs_and_model_output(model)  # one pass of the model
    values = []
    for t in cut:
        call, index = made[id(t)]
        node = naming.node_id(call.operation.name, call.call_index)
        if index != 0 or node not in known:
            raise InvalidEditError(f"{node!r} output {index} is not in the probe's outputs.")
        values.append(known[node])
    tensors = {id(t): keras.Input(batch_shape=t.shape, dtype=t.dtype) for t in cut}
    inputs = [tensors[id(t)] for t in cut]
    fresh: dict[int, Any] = {}
    for call in region:
        layer = fresh.get(id(call.operation))
        if layer is None:
            layer = fresh[id(call.operation)] = _fresh(call.operation)
        args, kwargs = call.call_arguments(tensors)
        tensors.update(zip((id(t) for t in call.output_tensors), keras.tree.flatten(layer(*args, **kwargs))))
    for operation_id, layer in fresh.items():
        original = next(c.operation for c in region if id(c.operation) == operation_id)
        if not adapter.is_model(original):
            layer.set_weights(original.get_weights())
    tail = keras.Model(inputs, [tensors[id(t)] for t in outputs], name=f"{model.name}_tail")
    return tail, values, reference


def _tail_from_copy(model, top, probe: Probe) -> tuple[keras.Model, list, Any]:
    """The tail cut out of a whole copy of the model (any graph `rebuild` copies), fed by
    running the copy's upstream part ("head") on the probe once."""
    copy = copy_model(model)
    _, _, cut, outputs = _region(copy, top)
    tail = keras.Model(cut, outputs, name=f"{copy.name}_tail")  # adds nodes to the copy only
    head = keras.Model(adapter.inputs_struct(copy), cut, name=f"{copy.name}_head")
    return tail, _run(head, probe), probe.model_output(model)


class _Tail:
    """A model of the calls downstream of `top` (a top-level layer name) and its probe.

    Made of fresh copies of the downstream layers when it can (cheap for a
    layer near the output), else cut out of a copy of the whole model. Either
    way its output on the probe must match the model's, or it is not used.
    """

    def __init__(self, model, top: str, probe: Probe):
        try:
            self._setup(*_tail_from_original(model, top, probe), probe)
            self.kind = "layers"
        except Exception:
            self._setup(*_tail_from_copy(model, top, probe), probe)
            self.kind = "copy"

    def _setup(self, tail, values, reference, probe):
        self.model = tail
        self.probe = Probe(tail, values if len(values) > 1 else values[0],
                           batch_size=probe.batch_size,
                           max_batches=math.ceil(probe.n / probe.batch_size),
                           memory_budget=probe.memory_budget)
        self.reference = reference  # the model's own output on the probe
        self.outputs, self.output = self.probe.outputs_and_model_output(tail)
        for mine, theirs in zip(keras.tree.flatten(self.output), keras.tree.flatten(reference)):
            scale = 1.0 + float(np.max(np.abs(theirs))) if theirs.size else 1.0
            if mine.shape != theirs.shape or not (
                    float(np.max(np.abs(mine - theirs), initial=0.0)) <= TAIL_TOLERANCE * scale):
                raise InvalidEditError("The tail model does not reproduce the model's output.")

    def measure(self, edit, reinitialize):
        result = rebuild(self.model, [edit], reinitialize=reinitialize)
        after, output = self.probe.outputs_and_model_output(result.model)  # one tail pass
        return result, after, output, self.model


def _run(model, probe: Probe) -> list[np.ndarray]:
    """`model`'s outputs (a flat list) on the probe inputs, one probe batch at a time."""
    x, chunks = probe.x, []
    for start in range(0, probe.n, probe.batch_size):
        batch = keras.tree.map_structure(lambda a, s=start: a[s:s + probe.batch_size], x)
        out = model(batch, training=False)
        chunks.append([np.asarray(keras.ops.convert_to_numpy(o)) for o in keras.tree.flatten(out)])
    return [np.concatenate([c[i] for c in chunks]) for i in range(len(chunks[0]))]



def _full(model, probe: Probe, edit, reinitialize):
    """Rebuild the whole model and run it on the probe (the route when no tail fits)."""
    result = rebuild(model, [edit], reinitialize=reinitialize)
    after, output = probe.outputs_and_model_output(result.model)  # one pass
    return result, after, output, model


# --- measuring ------------------------------------------------------------------


def _focus(edit, report, before_graph_model, before, after) -> str | None:
    """The node whose output stands for "the edited layer" after `edit`, if it ran.

    Each edit type says which (`Edit.focus`, as the editor's plots use it), so a
    new type needs nothing here. `before` holds the node ids of the model the
    edit was measured on, where the sweep ran it (the tail), else none.
    """
    _, layer = edit.focus(report, lambda: before_graph_model, before, after)
    return layer if layer in after else None


def _sample(array) -> np.ndarray | None:
    if array is None:
        return None
    values = np.asarray(array, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size > MAX_PLOT_VALUES:
        values = values[np.random.default_rng(0).choice(values.size, MAX_PLOT_VALUES, replace=False)]
    return values


def _fill(row: SweepRow, base_out, new_out, layer_values, y) -> None:
    numbers = agreement(base_out, new_out, y)
    row.top1_agreement = numbers.get("top1_agreement")
    row.accuracy = numbers.get("accuracy_after")
    row.loss = numbers.get("loss_after")
    row.max_abs_diff = numbers.get("max_abs_diff")
    row.mean_abs_diff = numbers.get("mean_abs_diff")
    if layer_values is not None:
        stats = layer_statistics(layer_values)
        row.mean, row.std = stats["mean"], stats["std"]
        row.dead_fraction, row.saturated_fraction = stats["dead_fraction"], stats["saturation"]


def _baseline(layer_values, output, y) -> dict:
    numbers = agreement(output, output, y)
    base = {"accuracy": numbers.get("accuracy_before"), "loss": numbers.get("loss_before"),
            "top1_agreement": numbers.get("top1_agreement"), "max_abs_diff": 0.0,
            "mean_abs_diff": 0.0}
    if layer_values is not None:
        stats = layer_statistics(layer_values)
        base.update(mean=stats["mean"], std=stats["std"], dead_fraction=stats["dead_fraction"],
                    saturated_fraction=stats["saturation"])
    return base


# --- the sweep --------------------------------------------------------------------


def sweep(model: keras.Model, layer: Any, candidates: Any, x: Any = None, y: Any = None, *,
          probe: Probe | None = None, reinitialize: str | None = None,
          progress: Callable[[int, int, str], Any] | None = None,
          apply: Callable[[Edit], Any] | None = None, data: Any = None, batch_size: int = 16,
          max_batches: int = 4, seed: int = 0) -> SweepResult:
    """Measure each candidate edit of `layer` on probe data; apply none of them.

    Args:
        model: a Functional or Sequential model (left untouched).
        layer: the layer to vary (name or path, one layer).
        candidates: activation names (``"gelu"``) and/or edit values
            (`ReplaceLayer`, `InsertLayer`, `RemoveLayer`, `SetActivation`,
            `SetSettings`, any `Edit`; each row measures the node its `focus` names).
        x, y: probe inputs and labels (see `Probe`); or pass `probe=` instead.
        reinitialize: passed to each rebuild (``"downstream"`` lets a
            shape-changing candidate re-initialise the layers after it).
        progress: called as ``progress(step, steps, text)`` before each step.
        data: a full dataset (anything Keras' evaluate takes, or an ``(x, y)``
            pair): each candidate that builds is also rebuilt whole and
            evaluated on it with Keras' evaluate (`row.evaluation`, and the
            original's in ``baseline["evaluation"]``), and rows rank by it.
            The model must be compiled.
        apply: what `SweepResult.apply(i)` calls with the row's edit
            (default: `rebuild(model, [edit])`, returning the `Rebuild`).

    Returns a `SweepResult` with one `SweepRow` per candidate, in order.
    """
    if reinitialize not in REINITIALIZE_CHOICES:
        raise InvalidEditError(f"reinitialize must be None or 'downstream'; got {reinitialize!r}.")
    if isinstance(candidates, (str, Edit)):
        candidates = [candidates]
    candidates = list(candidates)
    if not candidates:
        raise InvalidEditError("Give at least one candidate: activation names or edit values.")
    (target,) = targets.resolve(model, layer, allow_many=False)
    path = target.path_str
    probe = probe or Probe(model, x, y, batch_size=batch_size, max_batches=max_batches, seed=seed)
    steps = len(candidates) * (2 if data is not None else 1) + 1
    report = progress or (lambda step, total, text: None)
    report(0, steps, "Running the layers upstream of the edit once…")
    try:
        tail = _Tail(model, target.path[0], probe)
    except Exception:  # a graph the tail cannot cut: every candidate on the whole model
        tail = None
    if tail is not None:
        base_outputs, base_output = tail.outputs, tail.output
    else:
        base_outputs, base_output = probe.outputs_and_model_output(model)
    focus = path if path in base_outputs else None
    values = {"original": _sample(base_outputs.get(focus)) if focus else None}
    baseline = _baseline(base_outputs.get(focus) if focus else None, base_output, probe.y)
    rows = []
    for index, value in enumerate(candidates):
        label, edit, error = _candidate(path, value)
        report(index + 1, steps, f"Candidate {index + 1} of {len(candidates)}: {label}")
        row = SweepRow(index, label, edit, error)
        rows.append(row)
        if edit is not None:
            _measure(row, model, probe, tail, reinitialize, base_output, values)
    if data is not None:
        _evaluate_rows(model, rows, data, reinitialize, baseline,
                       lambda i, text: report(len(candidates) + i, steps, text))
    if apply is None:
        def apply(edit):
            return rebuild(model, [edit], reinitialize=reinitialize)
    return SweepResult(path, rows, baseline, values, probe.description, apply)


def _measure(row, model, probe, tail, reinitialize, base_output, values) -> None:
    """Fill `row` from a dry-run rebuild of its edit (tail first, whole model as fallback)."""
    measured = None
    if tail is not None:
        try:
            measured = tail.measure(row.edit, reinitialize)
            row.route = "tail"
        except Exception:  # not representable in the tail: the whole model says why, or works
            measured = None
    if measured is None:
        try:
            measured = _full(model, probe, row.edit, reinitialize)
            row.route = "full"
        except Exception as error:
            row.error = _message(error)
            return
    result, after, output, graph_model = measured
    reference = tail.reference if tail is not None and row.route == "full" else base_output
    before = tail.outputs if row.route == "tail" else {}
    focus = _focus(row.edit, result.report, graph_model, before, after)
    row.layer = focus
    row.weights = result.report.summary()
    layer_values = after.get(focus) if focus else None
    _fill(row, reference, output, layer_values, probe.y)
    values[row.index] = _sample(layer_values)


def _evaluate_rows(model, rows, data, reinitialize, baseline, report) -> None:
    """Keras' evaluate on `data` for the original and each candidate that was built."""
    from kerawidgets.training import evaluate

    baseline["evaluation"] = evaluate(model, data)
    for row in rows:
        if not row.ok:
            continue
        report(row.index + 1, f"Evaluating {row.label} on the dataset…")
        with adapter.strategy_scope(model):
            new = rebuild(model, [row.edit], reinitialize=reinitialize).model
        row.evaluation = evaluate(new, data)
