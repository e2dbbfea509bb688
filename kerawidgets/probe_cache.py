"""What the probe keeps per model, and which full outputs it keeps at all.

A `Record` is one model's results on the probe data: a `LayerSummary` per
node (small: exact statistics and a bounded sample), the model's outputs
(small), and full outputs of a few tensors, the *checkpoints*, from which an
edit recomputes instead of from the model's input. `plan_checkpoints`
chooses them from the model's graph before it runs, so that they fit the
share of the memory budget they are given. `ByModel` holds records (and
graphs) by model identity without keeping any model alive.

>>> import keras
>>> from kerawidgets.callgraph import CallGraph
>>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8, name="a"),
...                           keras.layers.Dense(8, name="b"), keras.layers.Dense(2, name="c")])
>>> plan = plan_checkpoints(CallGraph(model), n=4, allotment=10_000)
>>> sorted(k[0] for k in plan.keep), plan.live_bytes
(['a', 'b'], 256)
>>> sorted(k[0] for k in plan_checkpoints(CallGraph(model), n=4, allotment=200).keep)
['b']
"""

from __future__ import annotations

import collections
import dataclasses
import weakref

import keras
import numpy as np

__all__ = ["ByModel", "CheckpointPlan", "Record", "plan_checkpoints", "tensor_bytes"]


class ByModel:
    """An LRU mapping keyed by model identity that never keeps a model alive.

    Each entry holds a weak reference to its model; when the model is
    collected (an edited model History no longer keeps, say), its entry goes
    with it.
    """

    def __init__(self):
        self._items: collections.OrderedDict[int, tuple] = collections.OrderedDict()

    def __len__(self):
        return len(self._items)

    def values(self):
        """The stored values, least recently used first."""
        return [value for _, value in self._items.values()]

    def get(self, model):
        """The value stored for `model` (marked most recently used), or None."""
        hit = self._items.get(id(model))
        if hit is None or hit[0]() is not model:
            return None
        self._items.move_to_end(id(model))
        return hit[1]

    def peek(self, model):
        hit = self._items.get(id(model))
        return hit[1] if hit is not None and hit[0]() is model else None

    def put(self, model, value) -> None:
        self.pop(model)
        key = id(model)
        items = self._items

        def collected(ref, key=key, items=items):
            hit = items.get(key)
            if hit is not None and hit[0] is ref:
                del items[key]

        items[key] = (weakref.ref(model, collected), value)

    def pop(self, model) -> None:
        self._items.pop(id(model), None)

    def pop_oldest(self) -> None:
        self._items.popitem(last=False)

    def remove_value(self, value) -> None:
        for key, (_, held) in list(self._items.items()):
            if held is value:
                del self._items[key]

    def clear(self) -> None:
        self._items.clear()


@dataclasses.dataclass
class Record:
    """One model's results on the probe data.

    `summaries` maps node ids to `LayerSummary`; `outputs` and `checkpoints`
    map tensor keys ``(node id, tensor index)`` to one read-only array per
    probe batch; `output_keys` lists the model's flat outputs in order.
    """

    summaries: dict
    output_keys: list
    outputs: dict
    checkpoints: dict = dataclasses.field(default_factory=dict)

    @property
    def model_outputs(self) -> list:
        """The model's flat outputs over the whole probe data."""
        return [joined(self.outputs[k]) for k in self.output_keys]

    def arrays(self):
        """Every array the record holds (shared ones once)."""
        seen = {}
        for parts in list(self.outputs.values()) + list(self.checkpoints.values()):
            for array in parts:
                seen[id(array)] = array
        return list(seen.values())

    @property
    def summary_bytes(self) -> int:
        return sum(s.nbytes for s in self.summaries.values())

    @property
    def checkpoint_bytes(self) -> int:
        return sum(int(a.nbytes) for parts in self.checkpoints.values() for a in parts)

    @property
    def nbytes(self) -> int:
        return self.summary_bytes + sum(int(a.nbytes) for a in self.arrays())

    def without_checkpoints(self) -> Record:
        """The same record keeping only summaries and model outputs (what History keeps)."""
        return Record(self.summaries, self.output_keys, self.outputs, {})


def joined(parts):
    """Batches of one value as one read-only array (a single batch as it is)."""
    if len(parts) == 1:
        return parts[0]
    joined = np.concatenate(parts)
    joined.flags.writeable = False
    return joined


def tensor_bytes(tensor, n: int) -> int | None:
    """Bytes of a symbolic tensor's value over `n` samples (None when a dimension is unknown)."""
    dims = tuple(tensor.shape)[1:]
    if any(d is None for d in dims):
        return None
    itemsize = np.dtype(keras.backend.standardize_dtype(tensor.dtype)).itemsize
    return int(np.prod(dims, dtype=np.int64)) * n * itemsize


@dataclasses.dataclass
class CheckpointPlan:
    """Tensors to keep in full (`keep`, keys), and the peak bytes of a pass's live values."""

    keep: set
    live_bytes: int
    candidates: list


def plan_checkpoints(graph, n: int, allotment: int) -> CheckpointPlan:
    """Choose the checkpoints of `graph`'s model for `n` samples within `allotment` bytes.

    Candidates are the tensors that alone carry everything from one part of
    the graph to the next (after the call producing them, no other computed
    value is still needed): a residual block's output, every layer of a
    plain stack. They are taken evenly spaced along the graph, as densely
    as the allotment allows, so that an edit anywhere recomputes from a
    stored input a few calls upstream; a residual block's closing activation
    is stood in for by the Add before it (`_stand_ins`). The model's outputs
    are kept apart (`Record.outputs`).
    """
    consumers: dict = collections.Counter()
    for c in graph.calls:
        for source in c.sources:
            if source is not None:
                consumers[source] += 1
    sizes = {}
    for c in graph.calls:
        for index, tensor in enumerate(c.call.output_tensors):
            sizes[(c.id, index)] = tensor_bytes(tensor, n)
    live: dict = {}
    peak, candidates = 0, []
    for position, c in enumerate(graph.calls):
        if c.is_input:
            continue
        loose = 0  # outputs nobody consumes, alive while the call returns
        for index in range(len(c.call.output_tensors)):
            key = (c.id, index)
            if consumers.get(key):
                live[key] = sizes[key] or 0
            else:
                loose += sizes[key] or 0
        peak = max(peak, sum(live.values()) + loose)
        for source in c.sources:
            if source in live:
                consumers[source] -= 1
                if consumers[source] == 0:
                    del live[source]
        if len(live) == 1:
            (key,) = live
            if key[0] == c.id and sizes[key] is not None:
                candidates.append((position, key, sizes[key]))
    return CheckpointPlan(_spaced(candidates, allotment, _stand_ins(graph, candidates)),
                          int(peak), candidates)


def _stand_ins(graph, candidates) -> dict:
    """{candidate key: (position, key, size) of the candidate to store instead}.

    When the call making a candidate has no weights and takes only the
    candidate right before it (a residual block's closing activation after
    its Add), that earlier tensor is stored in its place: no larger, it lets
    an edit of that call (an activation swap) recompute from right before
    it rather than from the checkpoint before the block, and costs any
    other edit downstream one weightless call more.
    """
    before_at = {position: (position, key, size) for position, key, size in candidates}
    out = {}
    for position, key, size in candidates:
        before = before_at.get(position - 1)
        c = graph.calls[position]
        if (before is not None and before[2] <= size and list(c.sources) == [before[1]]
                and not getattr(c.call.operation, "weights", None)):
            out[key] = before
    return out


def _spaced(candidates, allotment, stand_ins=None) -> set:
    """Candidates at least `gap` calls apart from the output back, with the smallest gap
    that fits; a candidate with a stand-in (`_stand_ins`) is replaced by it, unless every
    candidate fits (gap 1), when both are kept."""
    if not candidates or allotment <= 0:
        return set()
    stand_ins = stand_ins or {}

    def pick(gap):
        chosen, last, total = [], None, 0
        for position, key, size in reversed(candidates):
            if last is None or last - position >= gap:
                if gap > 1:  # (at 1 the candidate before is taken too)
                    position, key, size = stand_ins.get(key, (position, key, size))
                chosen.append(key)
                total += size
                last = position
        return chosen, total

    span = candidates[-1][0] + 1
    for gap in range(1, span + 1):
        chosen, total = pick(gap)
        if total <= allotment:
            return set(chosen)
    small = [c for c in candidates if c[2] <= allotment]
    return {max(small, key=lambda c: c[0])[1]} if small else set()
