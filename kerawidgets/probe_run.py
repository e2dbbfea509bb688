"""Running a model's calls one by one on the probe data: full passes and recomputes.

`edit_region` says which calls of an edited model differ from the model
before the edit (the changed layers, calls that are new or rewired, and all
their downstream calls). `Pass` runs a set of calls batch by batch:
what it needs from outside the set comes from stored arrays (the old
model's checkpoints) when they exist, and otherwise from the calls that
produce it, run too, back to the model's inputs at worst. It summarises
every output the caller asked for (`LayerSummary`), keeps the tensors asked
for in full, and drops every other value as soon as no later call needs it.
With exact statistics (every value read, `Pass(exact=True)`) the summaries
are taken on one worker thread (`Summariser`) while the next calls run, in
order, so they are the same as when taken in the caller; the outputs waiting
for them count in the probe's memory. Sampled summaries (the default for
large outputs) cost about a millisecond each, less than handing the output
to a thread and keeping it alive meanwhile: they are taken in the caller.

>>> import keras, numpy as np
>>> from kerawidgets.callgraph import CallGraph
>>> inp = keras.Input((4,), name="x")
>>> model = keras.Model(inp, keras.layers.Dense(2, name="d")(keras.layers.Dense(3, name="h")(inp)))
>>> run = Pass(CallGraph(model), region={"d"}, available={}, keep=set(), n=5)
>>> run.calls  # "h" is run too (nothing stored feeds "d"), but not summarised
['h', 'd']
>>> summaries, kept, done = run.run([np.ones((5, 4), "float32")], 0, {})
>>> sorted(summaries), summaries["d"].shape
(['d'], (5, 2))
"""

from __future__ import annotations

import collections
import math
import threading
import weakref

import keras
import numpy as np

from kerawidgets import _keras_adapter as adapter
from kerawidgets import naming
from kerawidgets.callgraph import CallGraph
from kerawidgets.statistics import LayerSummary

__all__ = ["BACKGROUND", "Pass", "Summariser", "edit_region"]

#: Summarise outputs on a worker thread while the next calls run (see `Summariser`)
#: when every value is read (`Pass(exact=True)`); never on torch, whose tensors other
#: code may write in place. A switch for benchmarks.
BACKGROUND = True


def edit_region(old: CallGraph, new: CallGraph, changed) -> tuple[set | None, str]:
    """Node ids of `new` to recompute after an edit of `changed`, or (None, why not).

    `changed` names node ids or layer paths of `new` whose layers differ
    (``"backbone/conv1"`` marks the whole nested call ``"backbone"``).
    """
    dirty: set[str] = set()
    for key in changed:
        hits = _resolve(new, key)
        if not hits:
            return None, f"changed node {key!r} is not in the new model"
        dirty.update(hits)
    for c in new.calls:
        before = old.by_id.get(c.id)
        if before is None:
            if c.is_input:
                return None, f"input {c.id!r} is new in the new model"
            dirty.add(c.id)
        elif (before.sources != c.sources
              or type(before.call.operation) is not type(c.call.operation)):
            dirty.add(c.id)
    region = set()
    for c in new.calls:
        if c.id in dirty or any(p in region for p in c.inputs if p is not None):
            region.add(c.id)
    if any(new.by_id[i].is_input for i in region):
        return None, "an input layer changed"
    return region, f"{len(region)} of {len(new.calls)} calls downstream of {sorted(changed)}"


def _resolve(graph: CallGraph, key) -> set[str]:
    """Top-level node ids of `graph` named by a node id or a layer path."""
    key = str(key)
    path, _ = naming.split_node_id(key)
    if not path:
        return set()
    top = path[0].split(naming.CALL_SEPARATOR)[0]
    if len(path) == 1 and key in graph.by_id:
        return {key}
    return {c.id for c in graph.calls if c.call.operation.name == top}


#: Bytes per value of each backend dtype seen (`_nbytes` runs for every output of a pass).
_ITEMSIZE: dict = {}


def _nbytes(value) -> int:
    """Bytes of a backend tensor's values (a shape's product: no numpy call per output).

    >>> _nbytes(np.zeros((2, 3), np.float32))
    24
    """
    itemsize = _ITEMSIZE.get(value.dtype)
    if itemsize is None:
        itemsize = _ITEMSIZE[value.dtype] = np.dtype(
            keras.backend.standardize_dtype(value.dtype)).itemsize
    return math.prod(int(d) for d in value.shape) * itemsize


class Pass:
    """A planned run of part of one model's graph (see the module docstring).

    Args:
        graph: the model's `CallGraph`.
        region: node ids whose first output is summarised (all ids for a full pass).
        available: keys of the tensors stored for this model (their arrays go to `run`).
        keep: tensor keys to keep in full (checkpoints and model outputs).
        keep_inner: keep a nested model's inner first outputs in full too.
        n: samples in the probe data (over every batch).
        graphs: a function giving the `CallGraph` of a nested model (cached by the probe).
        exact: read every value of a large output for its statistics (see `LayerSummary`).
    """

    def __init__(self, graph: CallGraph, region, available, keep, n, graphs=CallGraph,
                 keep_inner=False, exact=False):
        self.graph = graph
        self.exact = bool(exact)
        self.n = int(n)
        self.region = set(region)
        self.available = set(available)
        self.keep = set(keep)
        self.graphs = graphs
        self.keep_inner = keep_inner
        needed = {i for i in self.region if not graph.by_id[i].is_input}
        wanted = [c.sources for c in graph.calls if c.id in needed]
        wanted.append([k for k in self.keep if k not in available and k[0] in graph.by_id])
        stack = [s for sources in wanted for s in sources]
        while stack:
            source = stack.pop()
            if source is None or source in available or source[0] in needed:
                continue
            producer = graph.by_id[source[0]]
            if producer.is_input:
                continue
            needed.add(source[0])
            stack.extend(producer.sources)
        self.order = [c for c in graph.calls if c.id in needed]
        self.calls = [c.id for c in self.order]
        self.units = len(self.order) + sum(
            _units(self.graphs(graph.inner(c)), self.graphs)
            for c in self.order if c.id in self.region and graph.nested(c))

    def run(self, batch, start, summaries, stored=None, progress=None, live=None, room=0,
            summariser=None):
        """Run the calls on one batch (flat input arrays; samples `start ...`).

        `stored` maps the available keys to this batch's arrays. Adds to
        `summaries` ({node id: LayerSummary}, created as needed) and returns
        ``(summaries, {key: array kept}, units done)``, every add done.
        `progress(k)` is called after each call with the units done (the
        last once every summary is done); `live(bytes)` with the bytes of
        computed values held (kept ones and those waiting for their summary
        included) after each call.
        `room`: bytes that outputs waiting for their summary may hold beyond
        the pass's own values (0: each is summarised before the next call,
        in this thread); `summariser`: a `Summariser` shared with an outer
        pass (then left open).
        """
        own = summariser is None
        if progress is not None:
            progress = _Progress(progress, self.units if own else None)
        if own:
            background = BACKGROUND and self.exact and keras.backend.backend() != "torch"
            summariser = Summariser(room if background else 0)
        try:
            done, kept = self._calls(batch, start, summaries, stored or {}, progress, live,
                                     summariser)
            if own:
                summariser.close()
                if progress is not None:
                    progress.last(done)
        finally:
            if own:
                summariser.abort()
        return summaries, kept, done

    def _calls(self, batch, start, summaries, stored, progress, live, summariser):
        graph = self.graph
        inputs = {id(t): a for t, a in zip(graph.inputs, batch)}
        uses = collections.Counter(id(t) for c in self.order for t in c.call.input_tensors)
        values: dict[int, object] = {}
        sizes: dict[int, int] = {}
        kept: dict = {}
        held = kept_bytes = 0
        for c in graph.calls:  # inputs: from the batch
            if c.is_input:
                value = inputs[id(c.call.output_tensors[0])]
                if c.id in self.region:
                    summariser.add(self._summary(summaries, c.id, value.shape), value, start,
                                   0, None)
                if (c.id, 0) in self.keep:
                    kept[(c.id, 0)] = value
        done = 0
        for c in self.order:
            for t in c.call.input_tensors:
                if id(t) not in values:
                    values[id(t)] = (inputs[id(t)] if id(t) in inputs
                                     else _fed(stored[graph.key(t)]))
            results = adapter.run_call(c.call, values, training=False)
            loose = 0  # bytes of outputs neither held for later calls nor kept
            for index, (t, v) in enumerate(zip(c.call.output_tensors, results)):
                key = (c.id, index)
                if key in self.keep:  # the kept array is the value's own buffer
                    kept[key] = _kept_view(v)
                    kept_bytes += kept[key].nbytes
                if uses[id(t)]:
                    values[id(t)] = v
                    sizes[id(t)] = 0 if key in self.keep else _nbytes(v)
                    held += sizes[id(t)]
                elif key not in self.keep:
                    loose += _nbytes(v)
            if c.id in self.region:
                # the worker holds `first`, a view of the backend's buffer, until its summary
                # is done: bytes the pass no longer holds then count as waiting
                first = adapter.to_numpy_view(results[0])
                cost = 0 if (c.id, 0) in self.keep else _nbytes(results[0])
                summariser.add(self._summary(summaries, c.id, first.shape), first, start,
                               cost, id(c.call.output_tensors[0]))
            if live is not None:
                mine = id(c.call.output_tensors[0])  # counted above, held or loose
                live(held + kept_bytes + loose + summariser.waiting(
                    lambda tag, mine=mine: tag != mine and tag not in sizes))
            del results
            if c.id in self.region and graph.nested(c):
                done += self._inner(c, values, start, summaries, progress, done, kept,
                                    summariser)
            for t in c.call.input_tensors:
                uses[id(t)] -= 1
                if uses[id(t)] == 0:
                    values.pop(id(t), None)
                    held -= sizes.pop(id(t), 0)
            done += 1
            if progress is not None:
                progress(done)
        return done, kept

    def _summary(self, summaries, node, shape) -> LayerSummary:
        hit = summaries.get(node)
        if hit is None:
            hit = summaries[node] = LayerSummary((self.n, *tuple(shape)[1:]), exact=self.exact)
        return hit

    def _inner(self, c, values, start, summaries, progress, done, kept, summariser):
        """Summaries of a nested model's inner calls (``"outer/inner"``), run on its input."""
        inner_model = self.graph.inner(c)
        args, _ = c.call.call_arguments(values)
        flat = [adapter.to_numpy_view(v) for v in keras.tree.flatten(args[0] if args else None)]
        inner = self.graphs(inner_model)
        keep = {(x.id, 0) for x in inner.calls} if self.keep_inner else set()
        sub = Pass(inner, {x.id for x in inner.calls}, {}, keep, self.n, self.graphs,
                   self.keep_inner, self.exact)
        prefix = c.id + naming.SEPARATOR
        mine = {k[len(prefix):]: v for k, v in summaries.items() if k.startswith(prefix)}
        step = None if progress is None else (lambda k: progress(done + k))
        _, inner_kept, inner_done = sub.run(flat, start, mine, progress=step,
                                            summariser=summariser)
        summaries.update({prefix + k: v for k, v in mine.items()})
        kept.update({(prefix + k[0], k[1]): v for k, v in inner_kept.items()})
        return inner_done


class Summariser:
    """Adds outputs to their `LayerSummary`s on one worker thread while the caller runs on.

    A backend's forward pass leaves part of the cores idle, and numpy's
    reductions release the GIL: the summary of one call's output is taken
    while the next calls run. One worker takes the adds in the order they
    came, so every summary sees its batches in order and ends bitwise the
    same as when summarised in the caller. An output waiting for its summary
    keeps the backend's buffer alive (the worker holds its numpy view):
    `add` waits for the worker while the bytes waiting would exceed `room`,
    and an output larger than `room` alone is summarised in the caller once
    the worker is idle (``room=0``: everything in the caller, in order, no
    thread). An exception in the worker is raised in the caller at the next
    `add` or at `close`; `close` waits for every add, `abort` drops those
    not started; after either no thread is left.

    >>> import numpy as np
    >>> from kerawidgets.statistics import LayerSummary
    >>> worker, summary = Summariser(room=2**20), LayerSummary((4, 2))
    >>> worker.add(summary, np.ones((2, 2), "float32"), 0, 16)
    >>> worker.add(summary, np.zeros((2, 2), "float32"), 2, 16)
    >>> worker.close()
    >>> summary.statistics()["mean"], worker.pending_bytes
    (0.5, 0)
    """

    def __init__(self, room: int):
        self.room = int(room)
        self.pending_bytes = 0
        self._queue: collections.deque = collections.deque()  # (summary, array, start, cost, tag)
        self._changed = threading.Condition()
        self._error: BaseException | None = None
        self._closing = False
        self._thread: threading.Thread | None = None

    def add(self, summary, array, start: int, cost: int, tag=None) -> None:
        """`summary.add(array, start)`, now or on the worker; `cost`: bytes `array` holds
        that nothing else does, `tag`: what `waiting` sees of it."""
        with self._changed:
            self._raise()
            while self._queue and self.pending_bytes + cost > self.room:
                self._changed.wait()
                self._raise()
            inline = cost > self.room or self.room <= 0
            if not inline:
                self._queue.append((summary, array, start, cost, tag))
                self.pending_bytes += cost
                self._changed.notify_all()
        if inline:
            summary.add(array, start)
        elif self._thread is None:
            self._thread = threading.Thread(target=self._work, name="kerawidgets-summaries",
                                            daemon=True)
            self._thread.start()

    def waiting(self, counts=lambda tag: True) -> int:
        """Bytes of the outputs waiting for their summary whose `tag` `counts`."""
        with self._changed:
            return sum(item[3] for item in self._queue if counts(item[4]))

    def close(self) -> None:
        """Wait until every add is done (raising the worker's exception, if any)."""
        self._stop(drop=False)
        self._raise()

    def abort(self) -> None:
        """Drop the adds not started, wait for the one running; no exception."""
        self._stop(drop=True)

    def _stop(self, drop):
        with self._changed:
            self._closing = True
            if drop:
                self._queue.clear()
                self.pending_bytes = 0
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _raise(self):
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _work(self):
        while True:
            with self._changed:
                while not self._queue and not self._closing:
                    self._changed.wait()
                if not self._queue:
                    return
                summary, array, start, cost, _ = self._queue[0]
            try:
                summary.add(array, start)
            except BaseException as error:  # raised in the caller
                with self._changed:
                    self._error = error
                    self._queue.clear()
                    self.pending_bytes = 0
                    self._changed.notify_all()
                return
            del summary, array
            with self._changed:
                if self._queue:
                    self._queue.popleft()
                    self.pending_bytes -= cost
                self._changed.notify_all()


def _units(graph, graphs) -> int:
    """Calls a full pass of `graph` runs, nested models' inner calls included (inputs not)."""
    return sum(1 + (_units(graphs(graph.inner(c)), graphs) if graph.nested(c) else 0)
               for c in graph.calls if not c.is_input)


class _Progress:
    """`progress`, called only when its value changes; below `total` until `last`."""

    def __init__(self, progress, total=None):
        self.progress, self.total, self.value = progress, total, None

    def __call__(self, k):
        if self.total:
            k = min(k, self.total - 1)  # the last unit: once its summaries are done too
        if k != self.value:
            self.value = k
            self.progress(k)

    def last(self, k):
        self.total = None
        self(k)


#: The backend value each array a pass kept is a view of, by the array's id while the array
#: lives (`_kept_view`, `_fed`).
_SOURCES: dict[int, tuple] = {}


def _kept_view(value):
    """`value` (a backend tensor) as the read-only array a pass keeps: a view of its buffer
    where the backend allows (`adapter.to_numpy_view`).

    The value itself (torch's detached: `adapter.value_to_feed`) is remembered for as long
    as the array lives. A later pass fed this array (a checkpoint) is fed the value
    instead (`_fed`): TensorFlow and JAX would copy it back from the array, 10-100 ms for
    a 16x112x112x32 checkpoint, as much as the layer call it feeds.

    >>> array = _kept_view(keras.ops.ones((2, 3)))
    >>> _fed(array) is _SOURCES[id(array)][1], _fed(np.ones(3)).shape
    (True, (3,))
    """
    array = _frozen(adapter.to_numpy_view(value))
    if array is not value:
        key = id(array)

        def forget(_ref):
            _SOURCES.pop(key, None)

        _SOURCES[key] = (weakref.ref(array, forget), adapter.value_to_feed(value))
    return array


def _fed(array):
    """What a pass feeds for a stored `array`: the backend value it views, when a pass kept
    it (`_kept_view`), else the array."""
    source = _SOURCES.get(id(array))
    if source is not None and source[0]() is array:
        return source[1]
    return array


def _frozen(array):
    array = np.asarray(array)
    if array.flags.writeable:
        array.flags.writeable = False
    return array
