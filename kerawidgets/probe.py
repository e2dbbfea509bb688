"""Probe data, every layer's output in one pass, and incremental recompute after an edit.

A `Probe` holds a small batch of inputs (yours, or synthetic ones matching the
model's inputs) and answers "what does every layer output on this batch?" for
any model with those inputs. Results are cached per model within a memory
budget, and after an edit only the part of the new model downstream of the
changed layers is run again, on the cached values that feed it.

>>> import keras, numpy as np
>>> from kerawidgets.probe import Probe
>>> inp = keras.Input((4,), name="x")
>>> out = keras.layers.Dense(2, activation="sigmoid", name="head")(
...     keras.layers.Dense(3, name="hidden")(inp))
>>> model = keras.Model(inp, out)
>>> probe = Probe(model, np.zeros((5, 4), "float32"))
>>> {k: v.shape for k, v in probe.outputs(model).items()}
{'x': (5, 4), 'hidden': (5, 3), 'head': (5, 2)}
>>> probe.model_output(model).shape
(5, 2)
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import weakref

import keras
import numpy as np

from kerawidgets import _keras_adapter as adapter
from kerawidgets import arguments, naming
from kerawidgets.errors import KerawidgetsError
from kerawidgets.naming import shape_text

__all__ = ["Probe", "ProbeDataError", "node_ids"]

#: Size given to unknown (None) non-batch dimensions of synthetic inputs.
SYNTHETIC_FREE_DIM = 8
#: Synthetic integer inputs are drawn from 0 .. SYNTHETIC_INT_HIGH - 1 (or less for a small Embedding).
SYNTHETIC_INT_HIGH = 10
_MAX_TAP_MODELS = 16


class ProbeDataError(KerawidgetsError, ValueError):
    """Probe data that does not fit the model's inputs (names expected vs got)."""


# --- the graph, with kerawidgets node ids ------------------------------------


@dataclasses.dataclass
class _Call:
    id: str  # local node id (without the nested-model prefix)
    call: adapter.GraphCall
    inputs: list  # producer ids of the call's input tensors (None for graph inputs)


class _Graph:
    """Calls of one model (top level only) with their node ids and producers.

    It refers to its model weakly, so caching it does not keep the model alive.
    """

    def __init__(self, model):
        self._model = weakref.ref(model)
        self.calls: list[_Call] = []
        self.producer: dict[int, tuple[str, int]] = {}  # id(tensor) -> (node id, tensor index)
        for call in adapter.graph_calls(model):
            local = naming.node_id(call.operation.name, call.call_index)
            inputs = [self.producer.get(id(t), (None, 0))[0] for t in call.input_tensors]
            self.calls.append(_Call(local, call, inputs))
            for index, tensor in enumerate(call.output_tensors):
                self.producer[id(tensor)] = (local, index)
        self.by_id = {c.id: c for c in self.calls}
        self.inputs = adapter.flat_inputs(model)
        self.outputs = adapter.flat_outputs(model)

    @property
    def model(self):
        return self._model()

    def nested(self, c: _Call) -> bool:
        return (not c.call.is_input and adapter.is_model(c.call.operation)
                and adapter.has_graph(c.call.operation))


def node_ids(model) -> list[str]:
    """Every node id `Probe.outputs` reports for `model`, in graph order.

    Nested models contribute their own id (their output) and their inner
    calls as ``"outer/inner"``.

    >>> import keras
    >>> inner = keras.Sequential([keras.Input((3,), name="i"), keras.layers.Dense(3, name="d")],
    ...                          name="inner")
    >>> inp = keras.Input((3,), name="x")
    >>> node_ids(keras.Model(inp, inner(inp)))
    ['x', 'inner', 'inner/i', 'inner/d']
    """
    out = []
    graph = _Graph(model)
    for c in graph.calls:
        out.append(c.id)
        if graph.nested(c):
            out.extend(c.id + naming.SEPARATOR + i for i in node_ids(c.call.operation))
    return out


# --- probe data -----------------------------------------------------------


def _input_entries(model):
    """(key, symbolic tensor) for each flat input; key = dict key or input name."""
    struct = adapter.inputs_struct(model)
    flat = adapter.flat_inputs(model)
    if isinstance(struct, dict):
        by_id = {id(t): k for k, t in struct.items()}
        return [(by_id.get(id(t), adapter.input_layer_of(t).name), t) for t in flat]
    return [(adapter.input_layer_of(t).name, t) for t in flat]


def _to_numpy(value):
    if isinstance(value, np.ndarray):
        return value
    return np.asarray(keras.ops.convert_to_numpy(value))


def _is_dataset(x) -> bool:
    if isinstance(x, (np.ndarray, dict, list, tuple, str, bytes)):
        return False
    return hasattr(x, "element_spec") or (
        hasattr(x, "__iter__") and not hasattr(x, "shape") and not hasattr(x, "__array__"))


class _Data:
    """Flat list of input arrays (model's flat input order), labels, description."""

    def __init__(self, arrays, y, description, synthetic):
        self.arrays = arrays
        self.y = y
        self.description = description
        self.synthetic = synthetic
        self.n = int(arrays[0].shape[0]) if arrays else 0


def _flatten_x(model, x, entries):
    """Probe data `x` as a flat list of numpy arrays in the model's input order."""
    name = model.name
    if isinstance(x, dict):
        keys = [k for k, _ in entries]
        missing = [k for k in keys if k not in x]
        extra = [k for k in x if k not in keys]
        if missing or extra:
            raise ProbeDataError(
                f"Probe data for model {name!r} is a dict with keys {sorted(map(str, x))}, "
                f"but the model's inputs are named {keys}"
                + (f" (missing: {missing})" if missing else "")
                + (f" (unexpected: {extra})" if extra else "")
                + ". Pass one array per input, keyed by the input names."
            )
        return [_to_numpy(x[k]) for k in keys]
    if isinstance(x, (list, tuple)) and len(entries) > 1:
        if len(x) != len(entries):
            raise ProbeDataError(
                f"Model {name!r} has {len(entries)} inputs {[k for k, _ in entries]}, but the "
                f"probe data is a {type(x).__name__} of {len(x)} arrays. Pass one array per "
                "input, in order, or a dict keyed by the input names."
            )
        return [_to_numpy(a) for a in x]
    if len(entries) > 1:
        raise ProbeDataError(
            f"Model {name!r} has {len(entries)} inputs {[k for k, _ in entries]}, but the probe "
            f"data is a single array of shape {shape_text(np.shape(x))}. Pass a dict keyed by "
            "the input names (or a list in input order)."
        )
    if isinstance(x, (list, tuple)) and len(x) == 1 and hasattr(x[0], "shape"):
        x = x[0]
    return [_to_numpy(x)]


def _validate(model, arrays, entries, where="probe data"):
    batch = None
    out = []
    for (key, tensor), array in zip(entries, arrays):
        expected = tuple(tensor.shape)
        got = tuple(array.shape)
        fits = len(got) == len(expected) and all(
            e is None or e == g for e, g in zip(expected[1:], got[1:]))
        if not fits:
            hint = ""
            if len(got) == len(expected) - 1:
                hint = " It looks unbatched: add a batch axis (or `.batch(16)` a dataset)."
            raise ProbeDataError(
                f"The {where} for input {key!r} of model {model.name!r} has shape "
                f"{shape_text(got)}, but the model expects {shape_text(expected)} "
                f"(first axis = batch, None = any size).{hint} Pass arrays shaped like the "
                "model's inputs, or x=None for synthetic probe data."
            )
        if batch is not None and got[0] != batch:
            raise ProbeDataError(
                f"The {where} has {batch} samples for one input but {got[0]} for input {key!r} "
                f"of model {model.name!r}: every input needs the same number of samples."
            )
        batch = got[0]
        dtype = keras.backend.standardize_dtype(tensor.dtype)
        if array.dtype != dtype:
            try:
                array = array.astype(dtype)
            except (TypeError, ValueError) as error:
                raise ProbeDataError(
                    f"The {where} for input {key!r} of model {model.name!r} has dtype "
                    f"{array.dtype}, which cannot be converted to the input's {dtype}."
                ) from error
        out.append(array)
    if batch == 0:
        raise ProbeDataError(f"The {where} for model {model.name!r} has no samples.")
    return out


def _split_element(element, n_inputs, entries):
    """(x, y) from one dataset element: x alone, (x, y) or (x, y, sample_weight)."""
    if isinstance(element, tuple) and len(element) in (2, 3):
        if n_inputs > 1 and len(element) == n_inputs and all(
                np.ndim(e) == len(t.shape) for e, (_, t) in zip(element, entries)):
            if not (len(element) == 2 and isinstance(element[0], (dict, list, tuple))):
                return element, None
        return element[0], element[1]
    return element, None


def _from_dataset(model, x, max_batches, entries):
    xs, ys = [], []
    batches = x.take(max_batches) if hasattr(x, "take") else itertools.islice(iter(x), max_batches)
    for element in batches:
        bx, by = _split_element(element, len(entries), entries)
        xs.append(_flatten_x(model, bx, entries))
        if by is not None:
            ys.append(_to_numpy(by))
    if not xs:
        raise ProbeDataError(f"The dataset given as probe data for model {model.name!r} is empty.")
    arrays = [np.concatenate([b[i] for b in xs]) for i in range(len(entries))]
    y = np.concatenate(ys) if ys and len(ys) == len(xs) else None
    return arrays, y, len(xs)


def _embedding_limit(model, tensor):
    """Smallest `input_dim` of an Embedding reading the input `tensor` directly."""
    limit = None
    for call in adapter.graph_calls(model):
        if isinstance(call.operation, keras.layers.Embedding) and any(
                t is tensor for t in call.input_tensors):
            dim = int(call.operation.input_dim)
            limit = dim if limit is None else min(limit, dim)
    return limit


def _synthetic(model, entries, batch_size, seed):
    rng = np.random.default_rng(seed)
    arrays, parts = [], []
    for key, tensor in entries:
        shape = tuple(batch_size if i == 0 else (SYNTHETIC_FREE_DIM if d is None else int(d))
                      for i, d in enumerate(tensor.shape))
        dtype = keras.backend.standardize_dtype(tensor.dtype)
        if "int" in dtype:
            high = SYNTHETIC_INT_HIGH
            limit = _embedding_limit(model, tensor)
            if limit is not None:
                high = max(1, min(high, limit))
            arrays.append(rng.integers(0, high, size=shape).astype(dtype))
            parts.append(f"{key!r} {shape_text(shape)} integers 0..{high - 1}")
        elif dtype == "bool":
            arrays.append(rng.random(shape) < 0.5)
            parts.append(f"{key!r} {shape_text(shape)} random booleans")
        else:
            arrays.append(rng.standard_normal(shape).astype(dtype))
            parts.append(f"{key!r} {shape_text(shape)} standard-normal floats")
    description = (
        f"SYNTHETIC probe data (random, seed {seed}), not real samples: "
        + "; ".join(parts)
        + ". Statistics describe how the model responds to noise; pass x= for real data."
    )
    return arrays, description


def _prepare(model, x, y, max_batches, batch_size, seed):
    entries = _input_entries(model)
    if x is None:
        arrays, description = _synthetic(model, entries, batch_size, seed)
        y = arguments.labels(y, int(arrays[0].shape[0]), error=ProbeDataError)
        return _Data(arrays, y, description, True)
    if _is_dataset(x):
        arrays, y_found, batches = _from_dataset(model, x, max_batches, entries)
        arrays = _validate(model, arrays, entries, "dataset")
        y = y_found if y is None else _to_numpy(y)
        n = total = int(arrays[0].shape[0])
        description = f"{n} samples from the dataset (first {batches} batch(es))"
    else:
        arrays = _validate(model, _flatten_x(model, x, entries), entries)
        total = int(arrays[0].shape[0])
        limit = max_batches * batch_size
        arrays = [a[:limit] for a in arrays]
        n = int(arrays[0].shape[0])
        description = (f"{n} samples of the given data" if n == total
                       else f"first {n} of {total} samples of the given data "
                       f"(max_batches={max_batches} x batch_size={batch_size})")
    y = arguments.labels(y, total, error=ProbeDataError)  # one per sample given, then cut
    if y is not None:
        y = y[:n]
        description += ", with labels"
    return _Data(arrays, y, description, False)


# --- the caches -----------------------------------------------------------


class _ByModel:
    """An LRU mapping keyed by model identity that never keeps a model alive.

    Each entry holds a weak reference to its model; when the model is
    collected (an edited model History no longer keeps, say), its entry goes
    with it, so cached outputs, graphs and tap models of dropped models
    are freed at once instead of waiting for eviction.
    """

    def __init__(self):
        self._items: collections.OrderedDict[int, tuple] = collections.OrderedDict()

    def __len__(self):
        return len(self._items)

    def values(self):
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

    def clear(self) -> None:
        self._items.clear()


@dataclasses.dataclass
class _Entry:
    outputs: dict
    model_outputs: list
    nbytes: int


def _nbytes(outputs: dict, model_outputs: list) -> int:
    seen, total = set(), 0
    for array in itertools.chain(outputs.values(), model_outputs):
        if id(array) not in seen:
            seen.add(id(array))
            total += int(array.nbytes)
    return total


def _frozen(array):
    array = np.asarray(array)
    array.flags.writeable = False
    return array


# --- the probe --------------------------------------------------------------


class Probe:
    """Probe inputs and the output of every layer call, cached, with incremental recompute.

    Args:
        model: the model whose inputs the probe data must fit (any later model
            passed to `outputs` needs the same inputs).
        x: an array, a dict (keyed by input names) or list for several
            inputs, or a `tf.data.Dataset` / iterable of batches (elements
            `x` or `(x, y)`). None: synthetic data matching the inputs.
        y: labels (integer or one-hot), optional; taken from the dataset too.
        max_batches: at most this many batches of `batch_size` samples are used.
        batch_size: batch size of each forward pass (and of synthetic data).
        memory_budget: bytes of cached layer outputs kept (LRU over models).
        seed: seed of the synthetic data.

    >>> import keras
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
    >>> probe = Probe(model, batch_size=4)
    >>> probe.synthetic, probe.x.shape
    (True, (4, 3))
    >>> probe.outputs(model)["d"].shape
    (4, 2)
    """

    def __init__(self, model, x=None, y=None, *, max_batches=4, batch_size=16,
                 memory_budget=2**30, seed=0):
        arguments.model(model)
        for argument, value, minimum in (("max_batches", max_batches, 1), ("batch_size", batch_size, 1),
                                         ("memory_budget", memory_budget, 0), ("seed", seed, 0)):
            arguments.integer(argument, value, minimum=minimum)
        adapter.functional_view(model)
        self.max_batches = int(max_batches)
        self.batch_size = int(batch_size)
        self.memory_budget = int(memory_budget)
        self.seed = seed
        self._entries = _input_entries(model)
        self._struct_kind = type(adapter.inputs_struct(model))
        data = _prepare(model, x, y, self.max_batches, self.batch_size, seed)
        self._arrays = [_frozen(a) for a in data.arrays]
        self.y = None if data.y is None else _frozen(data.y)
        self.synthetic = data.synthetic
        self.description = data.description
        # Every cache is keyed by model identity through weak references: a
        # model nobody else holds is collected, and its entries with it.
        self._cache = _ByModel()  # model -> _Entry, within memory_budget
        self._taps = _ByModel()  # model -> (tap model, tensors), at most _MAX_TAP_MODELS
        self._graphs = _ByModel()  # model -> _Graph, at most 2 * _MAX_TAP_MODELS
        self.last_run: str | None = None
        self.last_reason: str = ""
        self.last_recomputed: list[str] = []

    # --- data --------------------------------------------------------------

    @property
    def n(self) -> int:
        """Number of probe samples."""
        return int(self._arrays[0].shape[0])

    @property
    def x(self):
        """The probe inputs, structured like the model's inputs (array, list or dict)."""
        return self._structure(self._arrays)

    def _structure(self, flat):
        if issubclass(self._struct_kind, dict):
            return {k: a for (k, _), a in zip(self._entries, flat)}
        if issubclass(self._struct_kind, (list, tuple)):
            return list(flat)
        return flat[0]

    def __repr__(self):
        return f"<Probe: {self.description}; cache {self.cache_bytes} of {self.memory_budget} bytes>"

    # --- cache -------------------------------------------------------------

    @property
    def cache_bytes(self) -> int:
        """Bytes of layer outputs held in the cache (never above `memory_budget`)."""
        return sum(e.nbytes for e in self._cache.values())

    def clear(self) -> None:
        """Forget every cached output and tap model."""
        self._cache.clear()
        self._taps.clear()
        self._graphs.clear()

    def cached(self, model) -> bool:
        """True when `model`'s outputs are in the cache."""
        return self._cache.peek(model) is not None

    def _lookup(self, model):
        return self._cache.get(model)

    def _store(self, model, outputs, model_outputs) -> _Entry:
        outputs = {k: _frozen(v) for k, v in outputs.items()}
        graph = self._graph(model)
        shared = []
        for tensor, value in zip(graph.outputs, model_outputs):
            producer, index = graph.producer.get(id(tensor), (None, 0))
            same = producer in outputs and index == 0
            shared.append(outputs[producer] if same else _frozen(value))
        model_outputs = shared
        entry = _Entry(outputs, model_outputs, _nbytes(outputs, model_outputs))
        self._cache.pop(model)
        if entry.nbytes <= self.memory_budget:
            while len(self._cache) and self.cache_bytes + entry.nbytes > self.memory_budget:
                self._cache.pop_oldest()
            self._cache.put(model, entry)
        return entry

    def _graph(self, model) -> _Graph:
        graph = self._graphs.get(model)
        if graph is not None:
            return graph
        graph = _Graph(model)
        self._graphs.put(model, graph)
        while len(self._graphs) > 2 * _MAX_TAP_MODELS:
            self._graphs.pop_oldest()
        return graph

    def _tap(self, model):
        """A model from `model`'s inputs to every call's first output (built once)."""
        hit = self._taps.get(model)
        if hit is not None:
            return hit
        graph = self._graph(model)
        tensors, seen = [], set()

        def want(tensor):
            if id(tensor) not in seen:
                seen.add(id(tensor))
                tensors.append(tensor)

        for c in graph.calls:
            if c.call.is_input:
                continue
            want(c.call.output_tensors[0])
            if graph.nested(c):
                for t in c.call.input_tensors:
                    if not adapter.is_input_layer(adapter.input_layer_of(t)):
                        want(t)
        for t in graph.outputs:
            want(t)
        tensors = [t for t in tensors if not adapter.is_input_layer(adapter.input_layer_of(t))]
        tap = keras.Model(adapter.inputs_struct(model), tensors, name=f"{model.name}_taps") if tensors else None
        self._taps.put(model, (tap, tensors))
        while len(self._taps) > _MAX_TAP_MODELS:
            self._taps.pop_oldest()
        return tap, tensors

    # --- running -------------------------------------------------------------

    def _batches(self):
        for start in range(0, self.n, self.batch_size):
            yield [a[start:start + self.batch_size] for a in self._arrays]

    def _full_values(self, model, inputs_struct_value, prefix=""):
        """Run `model` once (one batch): {node id: first output}, {id(tensor): value}."""
        graph = self._graph(model)
        tap, tensors = self._tap(model)
        values: dict[int, object] = {}
        for t, v in zip(adapter.flat_inputs(model), keras.tree.flatten(inputs_struct_value)):
            values[id(t)] = v
        if tap is not None:
            results = tap(inputs_struct_value, training=False)
            results = results if isinstance(results, (list, tuple)) else [results]
            for t, v in zip(tensors, results):
                values[id(t)] = v
        nodes = {}
        for c in graph.calls:
            first = c.call.output_tensors[0]
            nodes[prefix + c.id] = _to_numpy(values[id(first)])
            if graph.nested(c):
                inner = self._nested_input(c, values)
                nodes.update(self._full_values(c.call.operation, inner,
                                               prefix + c.id + naming.SEPARATOR)[0])
        return nodes, values

    @staticmethod
    def _nested_input(c, values):
        args, _ = c.call.call_arguments(values)
        return args[0] if args else None

    def _run_full(self, model):
        chunks, outs = [], []
        for batch in self._batches():
            struct = self._structure_for(model, batch)
            nodes, values = self._full_values(model, struct)
            chunks.append(nodes)
            outs.append([_to_numpy(values[id(t)]) for t in adapter.flat_outputs(model)])
        outputs = _concat(chunks)
        model_outputs = [np.concatenate([o[i] for o in outs]) for i in range(len(outs[0]))]
        return outputs, model_outputs

    def _structure_for(self, model, flat):
        self._check_inputs(model)
        struct = adapter.inputs_struct(model)
        if isinstance(struct, dict):
            keys = [k for k, _ in _input_entries(model)]
            return dict(zip(keys, flat))
        if isinstance(struct, (list, tuple)):
            return list(flat)
        return flat[0]

    def _check_inputs(self, model):
        entries = _input_entries(model)
        ok = len(entries) == len(self._entries) and all(
            tuple(t.shape)[1:] == tuple(u.shape)[1:] for (_, t), (_, u) in zip(entries, self._entries))
        if not ok:
            raise ProbeDataError(
                f"Model {model.name!r} has inputs "
                f"{[(k, shape_text(t.shape)) for k, t in entries]} but this probe was made for "
                f"{[(k, shape_text(t.shape)) for k, t in self._entries]}. Make a new Probe for it."
            )

    def _entry(self, model) -> _Entry:
        entry = self._lookup(model)
        if entry is None:
            adapter.functional_view(model)
            outputs, model_outputs = self._run_full(model)
            entry = self._store(model, outputs, model_outputs)
        return entry

    # --- public API ----------------------------------------------------------

    def outputs(self, model) -> dict[str, np.ndarray]:
        """The output of every layer call of `model` on the probe data: {node id: array}.

        One forward pass (cached). A call with several outputs reports its
        first; a nested model reports its output under its own id and its
        inner calls as ``"outer/inner"``. Arrays are read-only.
        """
        hit = self._lookup(model) is not None
        entry = self._entry(model)
        if not hit:
            self.last_run, self.last_reason = "full", "outputs(model)"
            self.last_recomputed = list(entry.outputs)
        return dict(entry.outputs)

    def model_output(self, model):
        """The model's final output on the probe data (a list for several outputs)."""
        entry = self._entry(model)
        return entry.model_outputs[0] if len(entry.model_outputs) == 1 else list(entry.model_outputs)

    def outputs_after_edit(self, old_model, new_model, changed) -> dict[str, np.ndarray]:
        """`outputs(new_model)`, recomputing only what lies downstream of `changed`.

        `changed` names the node ids or layer paths whose layers differ in
        `new_model` (``"backbone/conv1"`` marks the whole nested call
        ``"backbone"``). Values upstream of the change are taken from
        `old_model`'s cached outputs; calls that are new or rewired in
        `new_model` are recomputed too. When that is not possible (old
        outputs evicted, a changed layer missing from `new_model`...) it runs
        a full pass. `last_run` says which ("incremental" / "full"),
        `last_reason` why, `last_recomputed` which node ids were run.

        >>> import keras, numpy as np
        >>> inp = keras.Input((4,), name="x")
        >>> h = keras.layers.Dense(3, name="h")(inp)
        >>> old = keras.Model(inp, keras.layers.Dense(2, activation="relu", name="out")(h))
        >>> new = keras.models.clone_model(old); new.set_weights(old.get_weights())
        >>> new.get_layer("out").activation = keras.activations.tanh
        >>> probe = Probe(old, np.ones((3, 4), "float32"))
        >>> _ = probe.outputs(old)
        >>> after = probe.outputs_after_edit(old, new, ["out"])
        >>> probe.last_run, probe.last_recomputed
        ('incremental', ['out'])
        """
        if isinstance(changed, str):
            changed = [changed]
        changed = list(changed or [])
        cached = self._lookup(new_model)
        if cached is not None:
            self.last_run, self.last_reason, self.last_recomputed = "cached", "already cached", []
            return dict(cached.outputs)
        plan, reason = self._plan(old_model, new_model, changed)
        if plan is None:
            outputs, model_outputs = self._run_full(new_model)
            self._store(new_model, outputs, model_outputs)
            self.last_run, self.last_reason = "full", reason
            self.last_recomputed = list(outputs)
            return dict(outputs)
        outputs, model_outputs, recomputed = self._run_incremental(plan)
        self._store(new_model, outputs, model_outputs)
        self.last_run, self.last_reason, self.last_recomputed = "incremental", reason, recomputed
        return dict(outputs)

    # --- incremental ---------------------------------------------------------

    def _plan(self, old_model, new_model, changed):
        old_entry = self._lookup(old_model)
        if old_entry is None:
            return None, "the old model's outputs are not cached (never computed or evicted)"
        try:
            self._check_inputs(new_model)
            new = self._graph(new_model)
            old = self._graph(old_model)
        except KerawidgetsError as error:
            return None, str(error)
        dirty: set[str] = set()
        for key in changed:
            hits = _resolve(new, key)
            if not hits:
                return None, f"changed node {key!r} is not in the new model"
            dirty.update(hits)
        for c in new.calls:
            before = old.by_id.get(c.id)
            if before is None:
                if c.call.is_input:
                    return None, f"input {c.id!r} is new in the new model"
                dirty.add(c.id)
            elif (before.inputs != c.inputs
                  or type(before.call.operation) is not type(c.call.operation)):
                dirty.add(c.id)
        while True:
            region = set()
            for c in new.calls:
                if c.id in dirty or any(p in region for p in c.inputs if p is not None):
                    region.add(c.id)
            widened = False
            needed = [t for c in new.calls if c.id in region for t in c.call.input_tensors]
            needed += new.outputs
            for t in needed:
                producer, index = new.producer.get(id(t), (None, 0))
                if producer is not None and producer not in region and index != 0:
                    dirty.add(producer)
                    widened = True
            if not widened:
                break
        if any(new.by_id[i].call.is_input for i in region):
            return None, "an input layer changed"
        reason = f"{len(region)} of {len(new.calls)} calls downstream of {sorted(changed)}"
        return (new, old_entry, region), reason

    def _run_incremental(self, plan):
        new, old_entry, region = plan
        old_outputs = old_entry.outputs
        input_ids = {id(t): i for i, t in enumerate(adapter.flat_inputs(new.model))}
        chunks, outs = [], []
        for start in range(0, self.n, self.batch_size):
            stop = start + self.batch_size
            batch = [a[start:stop] for a in self._arrays]
            values: dict[int, object] = {}

            def value_of(tensor, batch=batch, start=start, stop=stop, values=values):
                if id(tensor) in values:
                    return values[id(tensor)]
                if id(tensor) in input_ids:
                    return batch[input_ids[id(tensor)]]
                producer, _ = new.producer[id(tensor)]
                return old_outputs[producer][start:stop]

            nodes = {}
            for c in new.calls:
                if c.id not in region:
                    continue
                for t in c.call.input_tensors:
                    values[id(t)] = value_of(t)
                results = adapter.run_call(c.call, values, training=False)
                for t, v in zip(c.call.output_tensors, results):
                    values[id(t)] = v
                nodes[c.id] = _to_numpy(results[0])
                if new.nested(c):
                    inner = self._nested_input(c, values)
                    nodes.update(self._full_values(c.call.operation, inner,
                                                   c.id + naming.SEPARATOR)[0])
            chunks.append(nodes)
            outs.append([_to_numpy(value_of(t)) for t in new.outputs])
        fresh = _concat(chunks)
        outputs = {}
        all_ids = node_ids_from_graph(new, self)
        for node in all_ids:
            top = node.split(naming.SEPARATOR, 1)[0]
            outputs[node] = fresh[node] if top in region else old_outputs[node]
        model_outputs = [np.concatenate([o[i] for o in outs]) for i in range(len(outs[0]))]
        return outputs, model_outputs, [k for k in all_ids if k in fresh]


def node_ids_from_graph(graph: _Graph, probe: Probe) -> list[str]:
    out = []
    for c in graph.calls:
        out.append(c.id)
        if graph.nested(c):
            inner = probe._graph(c.call.operation)
            out.extend(c.id + naming.SEPARATOR + i for i in node_ids_from_graph(inner, probe))
    return out


def _resolve(graph: _Graph, key) -> set[str]:
    """Top-level node ids of `graph` named by a node id or a layer path."""
    key = str(key)
    path, index = naming.split_node_id(key)
    if not path:
        return set()
    top = path[0].split(naming.CALL_SEPARATOR)[0]
    if len(path) > 1:  # inside a nested model: the nested model's calls change
        return {c.id for c in graph.calls if c.call.operation.name == top}
    if key in graph.by_id:
        return {key}
    return {c.id for c in graph.calls if c.call.operation.name == top}


def _concat(chunks: list[dict]) -> dict:
    if len(chunks) == 1:
        return chunks[0]
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
