"""Probe data: the inputs a `Probe` runs, from arrays, dicts, datasets or synthetic noise.

`prepare` turns what the user passed as `x` (and `y`) into a flat list of
numpy arrays in the model's input order, checked against the model's inputs,
with a one-line description for the panel.

>>> import keras, numpy as np
>>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
>>> data = prepare(model, None, None, max_batches=1, batch_size=4, seed=0)
>>> data.synthetic, data.arrays[0].shape
(True, (4, 3))
"""

from __future__ import annotations

import itertools

import keras
import numpy as np

from kerawidgets import _keras_adapter as adapter
from kerawidgets import arguments
from kerawidgets.errors import KerawidgetsError
from kerawidgets.naming import shape_text

__all__ = ["ProbeDataError", "input_entries", "prepare", "to_numpy"]

#: Size given to unknown (None) non-batch dimensions of synthetic inputs.
SYNTHETIC_FREE_DIM = 8
#: Synthetic integer inputs are drawn from 0 .. SYNTHETIC_INT_HIGH - 1 (or less for a small Embedding).
SYNTHETIC_INT_HIGH = 10


class ProbeDataError(KerawidgetsError, ValueError):
    """Probe data that does not fit the model's inputs (names expected vs got)."""


def input_entries(model):
    """(key, symbolic tensor) for each flat input; key = dict key or input name."""
    struct = adapter.inputs_struct(model)
    flat = adapter.flat_inputs(model)
    if isinstance(struct, dict):
        by_id = {id(t): k for k, t in struct.items()}
        return [(by_id.get(id(t), adapter.input_layer_of(t).name), t) for t in flat]
    return [(adapter.input_layer_of(t).name, t) for t in flat]


def to_numpy(value):
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
        return [to_numpy(x[k]) for k in keys]
    if isinstance(x, (list, tuple)) and len(entries) > 1:
        if len(x) != len(entries):
            raise ProbeDataError(
                f"Model {name!r} has {len(entries)} inputs {[k for k, _ in entries]}, but the "
                f"probe data is a {type(x).__name__} of {len(x)} arrays. Pass one array per "
                "input, in order, or a dict keyed by the input names."
            )
        return [to_numpy(a) for a in x]
    if len(entries) > 1:
        raise ProbeDataError(
            f"Model {name!r} has {len(entries)} inputs {[k for k, _ in entries]}, but the probe "
            f"data is a single array of shape {shape_text(np.shape(x))}. Pass a dict keyed by "
            "the input names (or a list in input order)."
        )
    if isinstance(x, (list, tuple)) and len(x) == 1 and hasattr(x[0], "shape"):
        x = x[0]
    return [to_numpy(x)]


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
            ys.append(to_numpy(by))
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


def prepare(model, x, y, max_batches, batch_size, seed):
    entries = input_entries(model)
    if x is None:
        arrays, description = _synthetic(model, entries, batch_size, seed)
        y = arguments.labels(y, int(arrays[0].shape[0]), error=ProbeDataError)
        return _Data(arrays, y, description, True)
    if _is_dataset(x):
        arrays, y_found, batches = _from_dataset(model, x, max_batches, entries)
        arrays = _validate(model, arrays, entries, "dataset")
        y = y_found if y is None else to_numpy(y)
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
