"""The probe: per-layer summaries of a model on a small batch, kept small, recomputed little.

A `Probe` holds a small batch of inputs (yours, or synthetic ones matching the
model's inputs) and answers "what does every layer output on this batch?"
for any model with those inputs, as a `LayerSummary` per node: exact
statistics and a bounded sample of values, computed once per model and
layer. Full outputs are kept only at a few *checkpoints* chosen to fit the
memory budget; after an edit, only the calls downstream of the change are
summarised again, run from the nearest stored values upstream.

The jobs are split by module: `kerawidgets.probe_data` prepares the probe
data, `kerawidgets.probe_cache` holds what is kept per model and chooses
the checkpoints, `kerawidgets.probe_run` runs calls and plans a recompute,
and `kerawidgets.callgraph` is the graph walk they share with
`kerawidgets.graph`.

>>> import keras, numpy as np
>>> from kerawidgets.probe import Probe
>>> inp = keras.Input((4,), name="x")
>>> out = keras.layers.Dense(2, activation="sigmoid", name="head")(
...     keras.layers.Dense(3, name="hidden")(inp))
>>> model = keras.Model(inp, out)
>>> probe = Probe(model, np.zeros((5, 4), "float32"))
>>> run = probe.summaries(model)
>>> run.kind, {k: s.shape for k, s in run.summaries.items()}
('full', {'x': (5, 4), 'hidden': (5, 3), 'head': (5, 2)})
>>> probe.model_output(model).shape
(5, 2)
"""

from __future__ import annotations

import atexit
import dataclasses
import itertools
import threading
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from kerawidgets import _keras_adapter as adapter
from kerawidgets import arguments, naming
from kerawidgets.callgraph import CallGraph, node_ids
from kerawidgets.errors import KerawidgetsError
from kerawidgets.naming import shape_text
from kerawidgets.probe_cache import ByModel, Record, joined, plan_checkpoints, tensor_bytes
from kerawidgets.probe_data import ProbeDataError, input_entries, prepare
from kerawidgets.probe_run import Pass, _frozen, edit_region
from kerawidgets.statistics import SAMPLE_SIZE

if TYPE_CHECKING:
    import keras

__all__ = ["Probe", "ProbeDataError", "ProbeRun", "node_ids"]

_MAX_GRAPHS = 32
#: Every probe alive in this process, and a counter stamping each probe's latest run:
#: a probe that needs room takes it from the checkpoints of the others first (`_make_room`).
_PROBES: weakref.WeakSet = weakref.WeakSet()
_RUNS = itertools.count(1)
#: Bytes a summary is expected to take, to budget a run before it starts.
_SUMMARY_ESTIMATE = SAMPLE_SIZE * 4 + 2048


@dataclasses.dataclass
class ProbeRun:
    """What one probe call found and did.

    `summaries` maps every node id of the model (graph order) to its
    `LayerSummary`; `model_outputs` is the model's flat outputs. `kind` is
    "cached" (nothing run), "full" or "incremental"; `reason` says why;
    `recomputed` lists the node ids summarised by this call and `calls_run`
    the top-level calls it ran (per batch), upstream ones run only to feed
    them included. `full` holds every node's whole output, only for a run
    that was asked to keep them all (`Probe.outputs`).
    """

    summaries: dict
    model_outputs: list
    kind: str
    reason: str
    recomputed: list
    calls_run: list
    record: Record
    full: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def held(cls, record: Record) -> ProbeRun:
        """The run that answers from `record`, already held: nothing run."""
        return cls(record.summaries, record.model_outputs, "cached", "already probed", [], [],
                   record)

    @property
    def model_output(self):
        """The model's output (a list for several outputs)."""
        outs = self.model_outputs
        return outs[0] if len(outs) == 1 else list(outs)


class Probe:
    """Probe inputs and per-layer summaries of models on them, with incremental recompute.

    Args:
        model: the model whose inputs the probe data must fit (any later model
            passed to the probe needs the same inputs).
        x: an array, a dict (keyed by input names) or list for several
            inputs, or a `tf.data.Dataset` / iterable of batches (elements
            `x` or `(x, y)`). None: synthetic data matching the inputs.
        y: labels (integer or one-hot), optional; taken from the dataset too.
        max_batches: at most this many batches of `batch_size` samples are used.
        batch_size: batch size of each forward pass (and of synthetic data).
        memory_budget: bytes the probe may hold: checkpoints, model outputs,
            summaries, and the values alive during a pass. Half of what a
            pass leaves free goes to the checkpoints of the model it runs
            (the other half to those of the model an edit started from).
            The checkpoints of other probes alive in the process count
            against it and give way first (see `_make_room`).
        seed: seed of the synthetic data.
        exact_statistics: read every value of every layer output for its mean,
            std, min, max and dead units. By default an output of more than
            `statistics.EXACT_VALUES` values is read at sampled positions
            (see `statistics.LayerSummary`): about as exact for a plot, and
            at 224x224 most of an Apply's time otherwise.

    >>> import keras
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
    >>> probe = Probe(model, batch_size=4)
    >>> probe.synthetic, probe.x.shape
    (True, (4, 3))
    >>> probe.outputs(model)["d"].shape
    (4, 2)
    """

    def __init__(self, model: keras.Model, x: Any = None, y: Any = None, *, max_batches: int = 4,
                 batch_size: int = 16, memory_budget: int = 2**30, seed: int = 0,
                 exact_statistics: bool = False):
        arguments.model(model)
        for argument, value, minimum in (("max_batches", max_batches, 1), ("batch_size", batch_size, 1),
                                         ("memory_budget", memory_budget, 0), ("seed", seed, 0)):
            arguments.integer(argument, value, minimum=minimum)
        adapter.functional_view(model)
        self.max_batches = int(max_batches)
        self.batch_size = int(batch_size)
        self.memory_budget = int(memory_budget)
        self.seed = seed
        self.exact_statistics = bool(exact_statistics)
        self._entries = input_entries(model)
        self._struct_kind = type(adapter.inputs_struct(model))
        data = prepare(model, x, y, self.max_batches, self.batch_size, seed)
        self._arrays = [_frozen(a) for a in data.arrays]
        self.y = None if data.y is None else _frozen(data.y)
        self.synthetic = data.synthetic
        self.description = data.description
        # Keyed by model identity through weak references: a model nobody
        # else holds is collected, and its entries with it.
        self._records = ByModel()  # model -> Record
        self._last_run = 0  # `_RUNS` at this probe's latest run (0: none yet)
        self._graphs = ByModel()  # model -> CallGraph
        self.peak_bytes = 0
        self._lock = threading.RLock()  # one run at a time: a run ahead waits, or is waited for
        self._aheads: list[_Ahead] = []  # runs ahead not yet ended, or whose result waits
        self._ahead_lock = threading.Lock()  # guards `_aheads` (the run lock may be held long)
        _PROBES.add(self)  # last: other probes may reach it from now on (`_make_room`)

    # --- data --------------------------------------------------------------

    @property
    def n(self) -> int:
        """Number of probe samples."""
        return int(self._arrays[0].shape[0])

    @property
    def x(self):
        """The probe inputs, structured like the model's inputs (array, list or dict)."""
        flat = self._arrays
        if issubclass(self._struct_kind, dict):
            return {k: a for (k, _), a in zip(self._entries, flat)}
        if issubclass(self._struct_kind, (list, tuple)):
            return list(flat)
        return flat[0]

    def __repr__(self):
        return (f"<Probe: {self.description}; holds {self.cache_bytes} of "
                f"{self.memory_budget} bytes>")

    # --- memory --------------------------------------------------------------

    @property
    def cache_bytes(self) -> int:
        """Bytes held now: summaries, model outputs and checkpoints of every cached model."""
        seen, total = set(), 0
        for record in self._records.values():
            total += record.summary_bytes
            for array in record.arrays():
                if id(array) not in seen:
                    seen.add(id(array))
                    total += int(array.nbytes)
        return total

    def reset_peak(self) -> None:
        """Start measuring `peak_bytes` (held + alive during passes) afresh."""
        self.peak_bytes = self.cache_bytes

    def clear(self) -> None:
        """Forget every cached summary, output and checkpoint."""
        self._settle_aheads(None)
        with self._lock:
            self._records.clear()
            self._graphs.clear()

    def cached(self, model) -> bool:
        """True when `model`'s summaries are held."""
        return self._records.peek(model) is not None

    def remember(self, model, record: Record) -> None:
        """Hold `record` (from an earlier run) as `model`'s, without its checkpoints.

        The editor uses this for a model its history rebuilt: same layers,
        new identity, summaries already known.
        """
        self._settle_aheads(model)
        with self._lock:
            self._records.put(model, record.without_checkpoints())

    def _make_room(self, needed: int, protect=None) -> None:
        """Drop checkpoints, then whole records, least recently used first, until `needed` fits.

        The checkpoints of the other probes alive in this process count against the
        budget too, and go first, the probe run least recently first. An editor opened
        again (a notebook cell run again) does not hold its checkpoints beside those of
        the editor it replaced, which its widgets keep alive until they are closed. A
        probe whose checkpoints went recomputes from further up, or from the input, on
        its next edit: slower, never wrong. Its summaries stay (they are small), and a
        probe running in another thread meanwhile keeps everything.
        """
        idle = []  # the other probes not running now, least recently run first
        try:
            for other in sorted((p for p in list(_PROBES) if p is not self),
                                key=lambda p: p._last_run):
                if other._lock.acquire(blocking=False):
                    idle.append(other)
            theirs = sum(r.checkpoint_bytes for p in idle for r in p._records.values())
            for other in idle:
                if self.cache_bytes + theirs + needed <= self.memory_budget:
                    break
                for record in other._records.values():
                    theirs -= record.checkpoint_bytes
                    record.checkpoints = {}
            for drop_whole in (False, True):
                for record in self._records.values():
                    if self.cache_bytes + theirs + needed <= self.memory_budget:
                        return
                    if record is protect:
                        continue
                    if drop_whole:
                        self._records.remove_value(record)
                    else:
                        record.checkpoints = {}
        finally:
            for other in idle:
                other._lock.release()

    # --- graphs ----------------------------------------------------------------

    def _graph(self, model) -> CallGraph:
        graph = self._graphs.get(model)
        if graph is None:
            graph = CallGraph(model)
            self._graphs.put(model, graph)
            while len(self._graphs) > _MAX_GRAPHS:
                self._graphs.pop_oldest()
        return graph

    def _node_ids(self, graph) -> list[str]:
        out = []
        for c in graph.calls:
            out.append(c.id)
            if graph.nested(c):
                inner = self._graph(graph.inner(c))
                out.extend(c.id + naming.SEPARATOR + i for i in self._node_ids(inner))
        return out

    def _check_inputs(self, model):
        entries = input_entries(model)
        ok = len(entries) == len(self._entries) and all(
            tuple(t.shape)[1:] == tuple(u.shape)[1:] for (_, t), (_, u) in zip(entries, self._entries))
        if not ok:
            raise ProbeDataError(
                f"Model {model.name!r} has inputs "
                f"{[(k, shape_text(t.shape)) for k, t in entries]} but this probe was made for "
                f"{[(k, shape_text(t.shape)) for k, t in self._entries]}. Make a new Probe for it."
            )

    # --- public API ----------------------------------------------------------

    def summaries(self, model, progress=None) -> ProbeRun:
        """Every node's `LayerSummary` of `model` on the probe data (one pass, then held).

        `progress(done, total)` is called as calls are run. While a run ahead
        (`summaries_ahead`, `summaries_after_edit_ahead`) probes `model`, this
        waits for it and `progress` follows its calls.
        """
        self._settle_aheads(model, progress)
        with self._lock:
            record = self._records.get(model)
            if record is not None:
                return ProbeRun.held(record)
            return self._full(model, "first probe of this model", progress)

    def summaries_ahead(self, model, done=None) -> threading.Thread | None:
        """Start `summaries(model)` in a background thread; None when they are held or on their way.

        The editor probes its original this way when it is shown, while the
        user picks a layer, so that the first Apply finds them ready. A call
        that needs this probe meanwhile waits for the run (`summaries(model)`
        follows its progress). An error is not raised in the thread: the
        caller's own `summaries(model)` meets it again and raises it.
        `done()` is called in the thread once the summaries are held.

        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
        >>> probe = Probe(model, np.ones((4, 3), "float32"))
        >>> probe.summaries_ahead(model).join()
        >>> probe.cached(model), probe.summaries(model).kind, probe.summaries_ahead(model)
        (True, 'cached', None)
        """
        def work(ahead):
            if self._records.peek(model) is None:
                self._full(model, "first probe of this model, ahead", ahead.report)

        return self._start_ahead(_Ahead(model), work, done)

    def summaries_after_edit_ahead(self, old_model, new_model, changed,
                                   done=None) -> threading.Thread | None:
        """Start `summaries_after_edit(old_model, new_model, changed)` in a background
        thread; None when `new_model`'s summaries are held or on their way.

        The editor starts it when its preview has rebuilt the pending edit, so
        that the recompute runs while the user reaches for Apply. The
        `summaries_after_edit` of the same models then takes its result (or
        waits for it, following its progress) instead of running again. A run
        ahead of an edit is a guess: a newer guess, any run of this probe about
        another model and `cancel_edits_ahead` cancel it, and it stops at its
        next layer call. `old_model` is probed first if it is not held.

        >>> import keras, numpy as np
        >>> old = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
        >>> new = keras.models.clone_model(old); new.set_weights(old.get_weights())
        >>> probe = Probe(old, np.ones((4, 3), "float32"))
        >>> probe.summaries_after_edit_ahead(old, new, ["d"]).join()
        >>> run = probe.summaries_after_edit(old, new, ["d"])
        >>> run.kind, run.calls_run, run.reason.endswith("ahead")
        ('incremental', ['d'], True)
        """
        def work(ahead):
            if self._records.peek(old_model) is None:
                self._full(old_model, "first probe of this model, ahead", ahead.report)
            run = self._summaries_after_edit(old_model, new_model, changed, ahead.report,
                                             ahead=True)
            ahead.made = (run.kind, run.reason, run.recomputed, run.calls_run)

        return self._start_ahead(_Ahead(new_model, old_model, guess=True), work, done)

    def cancel_edits_ahead(self, keep=None) -> None:
        """Stop every run ahead of an edit (`summaries_after_edit_ahead`) but the one of model
        `keep`; each ends at its next layer call, holding nothing for its model."""
        with self._ahead_lock:
            for ahead in self._aheads:
                if ahead.guess and not (keep is not None and ahead.concerns(keep)):
                    ahead.cancelled = True

    def _start_ahead(self, ahead, work, done) -> threading.Thread | None:
        """Run `work(ahead)` holding the run lock in a background thread (see `summaries_ahead`)."""
        model = ahead.model
        with self._ahead_lock:
            self._aheads = [a for a in self._aheads if not a.finished or a.made is not None
                            and a.alive()]
            if self._records.peek(model) is not None or any(
                    a.concerns(model, first=True) and not (a.finished or a.cancelled)
                    for a in self._aheads):
                return None
            if ahead.guess:  # one guess at a time: the newest preview's
                for other in self._aheads:
                    other.cancelled = other.cancelled or other.guess
            self._aheads.append(ahead)
        settings = adapter.thread_settings()

        def run():
            try:
                with settings, self._lock:
                    if ahead.cancelled:  # while it waited for the lock
                        raise _Cancelled
                    work(ahead)
            except Exception:  # _Cancelled, or an error the caller's own run will raise
                return
            finally:
                ahead.end()
            if done is not None:
                try:
                    done()
                except Exception:  # noqa: BLE001 - e.g. the kernel's event loop closed
                    pass

        thread = threading.Thread(target=run, name="kerawidgets-probe-ahead", daemon=True)
        ahead.thread = thread
        try:
            thread.start()
        except BaseException:  # no thread (Python is exiting): nobody may wait for it
            ahead.end()
            raise
        return thread

    def _settle_aheads(self, model, progress=None,
                       take=False) -> tuple[str, str, list, list] | None:
        """Before a run in the caller's thread: wait for the runs ahead of `model` (`progress`
        follows them), cancel the guesses about other models (`cancel_edits_ahead`); with
        `take`, returns what a run ahead of an edit made `model` (`_Ahead.made`), taken
        (None: none)."""
        with self._ahead_lock:
            aheads = list(self._aheads)
        found = None
        for ahead in aheads:
            if model is not None and ahead.concerns(model):
                ahead.wait(progress)
                if take and ahead.concerns(model, first=True) and ahead.made is not None:
                    found, ahead.made = ahead.made, None
            elif ahead.guess:
                ahead.cancelled = True
        return found

    def summaries_after_edit(self, old_model, new_model, changed, progress=None) -> ProbeRun:
        """`summaries(new_model)`, recomputing only what lies downstream of `changed`.

        `changed` names the node ids or layer paths whose layers differ in
        `new_model` (``"backbone/conv1"`` marks the whole nested call
        ``"backbone"``). Summaries upstream of the change are `old_model`'s;
        the calls that are changed, new or rewired and everything downstream
        are run, fed from `old_model`'s stored checkpoints (or, where none
        is stored, from the calls that produce their inputs). When that is
        not possible (the old model never probed, a changed layer missing
        from `new_model`...) it runs a full pass and says why.

        >>> import keras, numpy as np
        >>> inp = keras.Input((4,), name="x")
        >>> h = keras.layers.Dense(3, name="h")(inp)
        >>> old = keras.Model(inp, keras.layers.Dense(2, activation="relu", name="out")(h))
        >>> new = keras.models.clone_model(old); new.set_weights(old.get_weights())
        >>> new.get_layer("out").activation = keras.activations.tanh
        >>> probe = Probe(old, np.ones((3, 4), "float32"))
        >>> _ = probe.summaries(old)
        >>> run = probe.summaries_after_edit(old, new, ["out"])
        >>> run.kind, run.recomputed, run.calls_run
        ('incremental', ['out'], ['out'])
        """
        made = self._settle_aheads(new_model, progress, take=True)
        if made is not None:  # the run ahead's, if its record is still held
            with self._lock:
                record = self._records.get(new_model)
                if record is not None:
                    return ProbeRun(record.summaries, record.model_outputs, *made, record)
        return self._summaries_after_edit(old_model, new_model, changed, progress)

    def _summaries_after_edit(self, old_model, new_model, changed, progress, ahead=False):
        """`summaries_after_edit` in this thread (`ahead`: a run ahead, said in its reason)."""
        suffix = ", ahead" if ahead else ""
        with self._lock:
            changed = [changed] if isinstance(changed, str) else list(changed or [])
            record = self._records.get(new_model)
            if record is not None:
                return ProbeRun.held(record)
            old = self._records.get(old_model)
            if old is None:
                return self._full(new_model, "the old model was not probed (or was dropped)"
                                  + suffix, progress)
            try:
                self._check_inputs(new_model)
                region, reason = edit_region(self._graph(old_model), self._graph(new_model), changed)
            except KerawidgetsError as error:
                region, reason = None, str(error)
            if region is None:
                return self._full(new_model, reason + suffix, progress)
            graph = self._graph(new_model)
            stored = {**old.checkpoints, **old.outputs}
            available = {k: v for k, v in stored.items() if k[0] in graph.by_id and k[0] not in region}
            reused = {k: v for k, v in old.summaries.items()
                      if k.split(naming.SEPARATOR, 1)[0] not in region}
            return self._execute(new_model, region, available, reused, "incremental",
                                 reason + suffix,
                                 progress, protect=old)

    def outputs(self, model) -> dict[str, np.ndarray]:
        """The full output of every layer call of `model` on the probe data: {node id: array}.

        One forward pass that keeps everything (not held afterwards: only the
        summaries and checkpoints are). A call with several outputs reports
        its first; a nested model reports its output under its own id and
        its inner calls as ``"outer/inner"``. Arrays are read-only.
        """
        return self.outputs_and_model_output(model)[0]

    def outputs_and_model_output(self, model) -> tuple[dict[str, np.ndarray], Any]:
        """`outputs(model)` and the model's final output, both from the same single pass.

        The model output is read where that pass leaves it (the calls that
        produce the model's output tensors), so it needs no second pass even
        when the memory budget leaves no room to keep the pass's record.

        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
        >>> layers, output = Probe(model, np.ones((4, 3)), memory_budget=0).outputs_and_model_output(model)
        >>> bool(np.array_equal(layers["d"], output))
        True
        """
        self._settle_aheads(model)
        with self._lock:
            graph = self._graph(model)
            self._check_inputs(model)
            everything = {nid: (nid, 0) for nid in self._node_ids(graph)}
            run = self._execute(model, {c.id for c in graph.calls}, {}, {}, "full",
                                "outputs(model)", None, keep_all=everything)
            return run.full, run.model_output

    def model_output(self, model: keras.Model) -> Any:
        """The model's final output on the probe data (a list for several outputs)."""
        return self.summaries(model).model_output

    # --- running ---------------------------------------------------------------

    def _full(self, model, reason, progress) -> ProbeRun:
        adapter.functional_view(model)
        self._check_inputs(model)
        graph = self._graph(model)
        return self._execute(model, {c.id for c in graph.calls}, {}, {}, "full", reason, progress)

    def _execute(self, model, region, available, reused, kind, reason, progress,
                 protect=None, keep_all=None) -> ProbeRun:
        self._last_run = next(_RUNS)
        graph = self._graph(model)
        ids = self._node_ids(graph)
        estimate = _summary_bytes(graph, self.n) + (len(ids) - len(graph.calls)) * _SUMMARY_ESTIMATE
        live = plan_checkpoints(graph, self.n, 0).live_bytes
        allotment = max(0, self.memory_budget - live - estimate) // 2
        plan = plan_checkpoints(graph, self.n, allotment)
        self._make_room(allotment + live + estimate, protect)
        output_keys = [graph.key(t) for t in graph.outputs]
        keep = {k for k in plan.keep if k[0] in region} | set(output_keys)
        keep |= set((keep_all or {}).values())
        run = Pass(graph, region, available, keep - set(available), self.n, self._graph,
                   keep_inner=keep_all is not None, exact=self.exact_statistics)
        base = self.cache_bytes
        # what outputs waiting for their summary may hold: the budget less what is held,
        # the pass's live values, the summaries and every tensor this pass keeps
        room = self.memory_budget - base - live - estimate - sum(
            tensor_bytes(graph.by_id[k[0]].call.output_tensors[k[1]], self.n) or 0
            for k in run.keep if k[0] in graph.by_id)
        summaries: dict = {}
        parts: dict = {}
        batches = list(range(0, self.n, self.batch_size))
        total = max(1, run.units * len(batches))
        for b, start in enumerate(batches):
            batch = [a[start:start + self.batch_size] for a in self._arrays]
            stored = {k: v[b] for k, v in available.items()}
            earlier = sum(int(a.nbytes) for p in parts.values() for a in p)
            step = None if progress is None else (
                lambda k, b=b: progress(b * run.units + k, total))
            _, kept, _ = run.run(batch, start, summaries, stored, step,
                                 lambda held, earlier=earlier: self._note(base + earlier + held),
                                 room=room)
            for key, array in kept.items():
                parts.setdefault(key, []).append(array)
        record = self._record(ids, summaries, reused, output_keys, parts, available, plan.keep)
        self._make_room(record.nbytes, protect)
        self._records.put(model, record)
        self._note(self.cache_bytes)
        result = ProbeRun(record.summaries, record.model_outputs, kind, reason,
                          [i for i in ids if i in summaries], list(run.calls), record)
        if keep_all is not None:
            result.full = {nid: joined(parts[key]) for nid, key in keep_all.items()
                           if key in parts}
        return result

    def _record(self, ids, summaries, reused, output_keys, parts, available, chosen) -> Record:
        ordered = {}
        for nid in ids:
            summary = summaries.get(nid) or reused.get(nid)
            if summary is not None:
                ordered[nid] = summary
        outputs = {k: parts.get(k) or available[k] for k in output_keys}
        checkpoints = {k: parts.get(k) or available.get(k) for k in chosen
                       if parts.get(k) or k in available}
        return Record(ordered, output_keys, outputs, checkpoints)

    def _note(self, held: int) -> None:
        self.peak_bytes = max(self.peak_bytes, int(held))

    def cancel_ahead(self) -> None:
        """Stop every run ahead of this probe (`summaries_ahead`, `summaries_after_edit_ahead`)
        and wait for their threads to end (each at its next layer call); what they probed is
        not kept. Nothing runs ahead: nothing happens. A closed editor calls this, so that no
        thread runs its models on.

        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
        >>> probe = Probe(model, np.ones((4, 3), "float32"))
        >>> thread = probe.summaries_ahead(model); probe.cancel_ahead()
        >>> thread.is_alive()
        False
        """
        with self._ahead_lock:
            running = [ahead for ahead in self._aheads if not ahead.finished]
        for ahead in running:
            ahead.cancelled = True
        for ahead in running:
            if ahead.thread is not None and ahead.thread is not threading.current_thread():
                ahead.thread.join()


def _summary_bytes(graph, n) -> int:
    """Bytes the summaries of `graph`'s top-level calls will take (sample and per-unit arrays)."""
    total = 0
    for c in graph.calls:
        shape = tuple(c.call.output_tensors[0].shape)[1:]
        if any(d is None for d in shape):
            total += _SUMMARY_ESTIMATE
            continue
        values = n * int(np.prod(shape, dtype=np.int64))
        units = shape[-1] if shape else 1
        total += 4 * min(values, SAMPLE_SIZE) + 16 * units + 256
    return total


class _Cancelled(Exception):
    """A run ahead was asked to stop (a guess no longer needed, `Probe.cancel_ahead`, or the
    interpreter exiting)."""


class _Ahead:
    """A run ahead (`Probe.summaries_ahead`, `summaries_after_edit_ahead`): its progress, for
    a caller that waits for it, and its result. It holds its models only weakly."""

    def __init__(self, model, *others, guess=False):
        self.model = model  # until the run ends
        # the model it is about, then the one it starts from
        self._models = [weakref.ref(m) for m in (model, *others)]
        self.guess = guess  # a preview's guess: cancelled by any other run
        #: what a run ahead of an edit did (kind, reason, recomputed, calls run), until taken
        self.made: tuple[str, str, list, list] | None = None
        self.thread: threading.Thread | None = None
        self.finished = False
        self.cancelled = False
        self._progress = (0, 0)
        self._changed = threading.Condition()
        _RUNNING.add(self)

    def concerns(self, model, first=False) -> bool:
        """Whether this run probes `model` (`first`: as the model it is about)."""
        refs = self._models[:1] if first else self._models
        return any(ref() is model for ref in refs)

    def alive(self) -> bool:
        """Whether the model this run is about is still alive."""
        return self._models[0]() is not None

    def report(self, done, total) -> None:
        """The run's progress callback (in its thread); stops the run once cancelled."""
        if self.cancelled:
            raise _Cancelled
        with self._changed:
            self._progress = (done, total)
            self._changed.notify_all()

    def end(self) -> None:
        with self._changed:
            self.finished = True
            self.model = None  # the model is not held past the run
            self._changed.notify_all()
        _RUNNING.discard(self)

    def wait(self, progress=None) -> None:
        """Wait for the run to end, calling `progress(done, total)` (in this thread) as it moves."""
        shown = None
        while True:
            with self._changed:
                while not self.finished and self._progress == shown:
                    self._changed.wait()
                now, finished = self._progress, self.finished
            if progress is not None and now != shown and now[1]:
                progress(*now)
            shown = now
            if finished:
                return


#: Runs ahead not yet ended: stopped at exit, so no thread runs a model while Python shuts down.
_RUNNING: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _stop_runs_ahead() -> None:
    for ahead in list(_RUNNING):
        ahead.cancelled = True
        if ahead.thread is not None:
            ahead.thread.join(timeout=60)
