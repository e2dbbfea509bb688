"""Plain-number summaries of layer outputs, and of how they change after an edit.

Every function returns plain Python data (floats, ints, lists, None):
JSON-ready for the front end and easy to assert on in tests.

>>> import numpy as np
>>> from kerawidgets.statistics import agreement, layer_statistics
>>> layer_statistics(np.array([[0.0, 1.0], [0.0, 3.0]]))["dead_fraction"]
0.5
>>> agreement(np.eye(3), np.eye(3))["top1_agreement"]
1.0
"""

from __future__ import annotations

import collections
import functools
import math
import weakref

import numpy as np

__all__ = [
    "LayerSummary", "agreement", "layer_statistics", "movement", "paired_statistics",
    "paired_summary_statistics", "statistics_by_node", "summarize", "summary_movement",
]

#: Candidate (low, high) output bounds of saturating activations, tightest first:
#: sigmoid / hard_sigmoid / softmax, tanh / softsign, relu6.
KNOWN_BOUNDS = ((0.0, 1.0), (-1.0, 1.0), (0.0, 6.0))
SATURATION_BAND = 0.01  # within 1% of the bounds' span
EPS = 1e-12


def _float(value):
    value = float(value)
    return value if math.isfinite(value) else None


def _as_array(array) -> np.ndarray:
    if not isinstance(array, np.ndarray):
        import keras

        array = keras.ops.convert_to_numpy(array)
    return np.asarray(array)


def detect_bounds(values: np.ndarray, bounds="auto"):
    """The (low, high) bounds `values` look saturated against, or None.

    With ``bounds="auto"`` the first pair of `KNOWN_BOUNDS` is used where every value
    lies inside it and the values reach its upper bound (or, for a pair with
    a negative low, its lower bound) within 1% of its span: so a sigmoid that
    hits 1 is detected, while a ReLU whose values stay below 1 is not.
    """
    if bounds is None:
        return None
    if bounds != "auto":
        low, high = bounds
        return float(low), float(high)
    if values.size == 0:
        return None
    vmin, vmax = float(values.min()), float(values.max())
    for low, high in KNOWN_BOUNDS:
        span = high - low
        tol = 1e-6 * span
        if vmin < low - tol or vmax > high + tol:
            continue
        reaches_high = vmax >= high - SATURATION_BAND * span
        reaches_low = low < 0 and vmin <= low + SATURATION_BAND * span
        if reaches_high or reaches_low:
            return low, high
    return None


def layer_statistics(array, *, bounds="auto") -> dict:
    """Summary numbers of one layer's output.

    Returns a dict with
    - ``mean``, ``std``, ``min``, ``max``: over every finite value;
    - ``zero_fraction``: share of values exactly 0;
    - ``dead_fraction``: share of units (entries of the last axis) that are
      0 for every sample and position ("dead ReLUs");
    - ``saturation``: share of values within 1% of the bounds' span of either
      bound, where the bounds are those of a saturating activation that the
      values look like (see `detect_bounds`: -1/1 for tanh, 0/1 for sigmoid,
      0/6 for relu6), or given as ``bounds=(low, high)``; 0.0 when no bounds
      apply (``bounds=None`` turns detection off);
    - ``saturation_bounds``: the bounds used, or None;
    - ``nonfinite_fraction``: share of NaN or infinite values;
    - ``shape`` and ``count``;
    - ``sampled``: False (every value read; see `LayerSummary` for the
      summaries of large outputs, where it is True).

    >>> stats = layer_statistics(np.tanh(np.array([[-9.0, 0.0], [9.0, 0.5]])))
    >>> stats["saturation"], stats["saturation_bounds"]
    (0.5, [-1.0, 1.0])
    """
    values = _as_array(array)
    shape = [int(d) for d in values.shape]
    if values.dtype == bool or not np.issubdtype(values.dtype, np.number):
        values = values.astype(np.float64)
    values = values.astype(np.float64, copy=False)
    finite_mask = np.isfinite(values)
    finite = values[finite_mask]
    count = int(values.size)
    if finite.size == 0:
        return {"shape": shape, "count": count, "mean": None, "std": None, "min": None,
                "max": None, "zero_fraction": 0.0, "dead_fraction": 0.0, "saturation": 0.0,
                "saturation_bounds": None,
                "nonfinite_fraction": 1.0 if count else 0.0, "sampled": False}
    units = values.reshape(-1, shape[-1]) if values.ndim >= 2 else values.reshape(-1, 1)
    dead = float(np.mean(np.all(units == 0, axis=0)))
    found = detect_bounds(finite, bounds)
    saturation = 0.0
    if found is not None:
        low, high = found
        band = SATURATION_BAND * (high - low)
        saturation = float(np.mean((finite <= low + band) | (finite >= high - band)))
    return {
        "shape": shape,
        "count": count,
        "mean": _float(finite.mean()),
        "std": _float(finite.std()),
        "min": _float(finite.min()),
        "max": _float(finite.max()),
        "zero_fraction": float(np.mean(values == 0)),
        "dead_fraction": dead,
        "saturation": saturation,
        "saturation_bounds": None if found is None else [float(found[0]), float(found[1])],
        "nonfinite_fraction": float(1.0 - finite_mask.mean()),
        "sampled": False,
    }


def statistics_by_node(outputs: dict, *, bounds="auto") -> dict:
    """`layer_statistics` of every array in `outputs` ({node id: array}).

    >>> sorted(statistics_by_node({"a": np.ones((2, 2))})["a"])[:3]
    ['count', 'dead_fraction', 'max']
    """
    return {key: layer_statistics(value, bounds=bounds) for key, value in outputs.items()}


def paired_statistics(before_outputs: dict, after_outputs: dict) -> tuple[dict, dict]:
    """`layer_statistics` of both sides, comparing saturation like with like.

    Bounds are detected on each side; when one side has bounds and the
    other side's values lie inside them, both use them (a softmax that
    reaches 1 only after the edit counts as bounded by 0/1 on both sides).

    >>> b, a = paired_statistics({"s": np.array([0.5, 0.6])}, {"s": np.array([0.0, 1.0])})
    >>> b["s"]["saturation_bounds"] == a["s"]["saturation_bounds"] == [0.0, 1.0]
    True
    """
    return _paired(before_outputs, after_outputs, _remembered_statistics, _array_side)


def _array_side(array):
    """(bounds `array` looks saturated against, whether it lies inside given bounds)."""
    values = _finite(array)
    return detect_bounds(values), lambda bounds: _inside(values, bounds)


def _paired(before: dict, after: dict, statistics, side) -> tuple[dict, dict]:
    """The statistics of each key's two sides, bounds shared like with like (the rule of
    `paired_statistics`, for arrays and for `LayerSummary`s alike).

    `statistics(value, bounds)` is one side's dict and `side(value)` the bounds
    it looks saturated against with a test of whether it lies inside others. A
    value found on both sides (unchanged upstream of an edit: the probe reuses
    it) is read once.
    """
    stats_before, stats_after = {}, {}
    for key, b in before.items():
        a = after.get(key)
        if a is None:
            stats_before[key] = statistics(b, "auto")
        elif a is b:
            stats = statistics(b, "auto")
            stats_before[key], stats_after[key] = dict(stats), dict(stats)
        else:
            (found_b, b_inside), (found_a, a_inside) = side(b), side(a)
            stats_before[key] = statistics(b, found_b or (found_a if b_inside(found_a) else None))
            stats_after[key] = statistics(a, found_a or (found_b if a_inside(found_b) else None))
    for key, a in after.items():
        if key not in stats_after:
            stats_after[key] = statistics(a, "auto")
    return stats_before, stats_after


#: Statistics of read-only arrays (the probe's cached outputs), by identity:
#: {id(array): (weak reference to the array, {bounds: statistics})}. The memo
#: holds no array: an entry goes when its array is collected (evicted from the
#: probe's cache and no longer shown), so it adds nothing to the probe's
#: memory budget and an identity is never reused while remembered.
_MEMO: collections.OrderedDict[int, tuple[weakref.ref, dict]] = collections.OrderedDict()
_MEMO_SIZE = 4096


def _forget(ref, key):
    hit = _MEMO.get(key)
    if hit is not None and hit[0] is ref:
        del _MEMO[key]


def _remembered_statistics(array, bounds) -> dict:
    """`layer_statistics`, computed once per read-only array and bounds.

    The probe hands out read-only arrays and reuses them for every layer an
    edit did not reach, so after an edit near the output almost every
    layer's statistics are already known. Writable arrays are never
    remembered (their values could change under the same identity).
    """
    if not isinstance(array, np.ndarray) or array.flags.writeable:
        return layer_statistics(array, bounds=bounds)
    key = id(array)
    which = bounds if bounds in ("auto", None) else tuple(bounds)
    hit = _MEMO.get(key)
    if hit is None or hit[0]() is not array:
        hit = (weakref.ref(array, functools.partial(_forget, key=key)), {})
        _MEMO[key] = hit
        while len(_MEMO) > _MEMO_SIZE:
            _MEMO.popitem(last=False)
    else:
        _MEMO.move_to_end(key)
    stats = hit[1].get(which)
    if stats is None:
        stats = hit[1][which] = layer_statistics(array, bounds=bounds)
    return dict(stats)


def memo_arrays() -> list:
    """The arrays whose statistics are remembered and still alive (none is held by the memo)."""
    return [array for array in (ref() for ref, _ in list(_MEMO.values())) if array is not None]


def _finite(array) -> np.ndarray:
    values = _as_array(array).astype(np.float64).ravel()
    return values[np.isfinite(values)]


def _inside(values, bounds) -> bool:
    if bounds is None or values.size == 0:
        return False
    low, high = bounds
    tol = 1e-6 * (high - low)
    return bool(values.min() >= low - tol and values.max() <= high + tol)


def _is_distribution(p: np.ndarray, tol=1e-3) -> bool:
    if p.ndim < 1 or p.shape[-1] < 2 or p.size == 0 or not np.all(np.isfinite(p)):
        return False
    return bool(p.min() >= -1e-6 and np.allclose(p.sum(axis=-1), 1.0, atol=tol))


def _labels(y, output: np.ndarray):
    """Integer class labels from integer labels or one-hot `y`, or None if they do not fit."""
    y = _as_array(y)
    classes = output.shape[-1]
    if y.shape == output.shape and classes > 1:
        return np.argmax(y, axis=-1)
    if y.ndim == output.ndim and y.shape[-1] == 1 and classes > 1:
        y = y[..., 0]
    if y.shape == output.shape[:-1] or (classes == 1 and y.shape in (output.shape, output.shape[:-1])):
        return np.rint(y.reshape(output.shape[:-1])).astype(np.int64)
    return None


def _log_probs(output: np.ndarray) -> np.ndarray:
    """Log-probabilities of class-like outputs: taken as-is if a distribution, else softmax."""
    if _is_distribution(output):
        return np.log(np.clip(output, 1e-7, 1.0))
    shifted = output - output.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _accuracy_and_loss(output: np.ndarray, labels: np.ndarray):
    if output.shape[-1] == 1:  # binary: sigmoid probability (or logit)
        p = output[..., 0]
        if p.min() < 0 or p.max() > 1:
            p = 1.0 / (1.0 + np.exp(-p))
        p = np.clip(p, 1e-7, 1 - 1e-7)
        accuracy = np.mean((p > 0.5) == (labels > 0))
        loss = -np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))
        return _float(accuracy), _float(loss)
    if labels.min() < 0 or labels.max() >= output.shape[-1]:
        return None, None
    accuracy = np.mean(np.argmax(output, axis=-1) == labels)
    log_p = _log_probs(output)
    picked = np.take_along_axis(log_p, labels[..., None], axis=-1)[..., 0]
    return _float(accuracy), _float(-picked.mean())


def agreement(before, after, y=None) -> dict:
    """How closely two outputs of the same inputs agree (model outputs before/after an edit).

    Returns ``max_abs_diff`` and ``mean_abs_diff``; for class-like outputs
    (last axis > 1) ``top1_agreement`` (share of samples whose arg-max
    class is unchanged); when both are probability distributions
    (non-negative, rows summing to 1 within 1e-3) ``kl_divergence``
    (mean KL(before || after), nats); with labels `y` (integers, or
    one-hot) ``accuracy_before/after`` and ``loss_before/after``
    (crossentropy; logits are soft-maxed). Lists of outputs (several model
    outputs) give the first output's numbers plus ``per_output``.

    >>> p = np.array([[0.9, 0.1], [0.2, 0.8]])
    >>> q = np.array([[0.6, 0.4], [0.7, 0.3]])
    >>> result = agreement(p, q, y=np.array([0, 1]))
    >>> result["top1_agreement"], result["accuracy_before"], result["accuracy_after"]
    (0.5, 1.0, 0.5)
    """
    if isinstance(before, (list, tuple)) or isinstance(after, (list, tuple)):
        before = list(before) if isinstance(before, (list, tuple)) else [before]
        after = list(after) if isinstance(after, (list, tuple)) else [after]
        parts = [agreement(b, a, y if i == 0 else None)
                 for i, (b, a) in enumerate(zip(before, after))]
        return {**parts[0], "per_output": parts}
    b = _as_array(before).astype(np.float64)
    a = _as_array(after).astype(np.float64)
    result: dict = {"shape_before": [int(d) for d in b.shape],
                    "shape_after": [int(d) for d in a.shape], "same_shape": b.shape == a.shape}
    if b.shape != a.shape:
        return result
    diff = np.abs(a - b)
    result["max_abs_diff"] = _float(diff.max()) if diff.size else 0.0
    result["mean_abs_diff"] = _float(diff.mean()) if diff.size else 0.0
    if b.ndim >= 1 and b.shape[-1] > 1 and b.size:
        result["top1_agreement"] = float(np.mean(b.argmax(-1) == a.argmax(-1)))
        if _is_distribution(b) and _is_distribution(a):
            p = np.clip(b, 1e-7, 1.0)
            q = np.clip(a, 1e-7, 1.0)
            result["kl_divergence"] = _float(np.mean(np.sum(p * np.log(p / q), axis=-1)))
    if y is not None and b.ndim >= 1 and b.size:
        labels = _labels(y, b)
        if labels is not None:
            result["accuracy_before"], result["loss_before"] = _accuracy_and_loss(b, labels)
            result["accuracy_after"], result["loss_after"] = _accuracy_and_loss(a, labels)
    return result


def movement(before_outputs: dict, after_outputs: dict, eps=1e-8) -> dict:
    """How far each node's output moved: mean |after - before| / (mean |before| + eps).

    Only ids present in both dicts are reported; a node whose output shape
    changed gets 1.0. 0.0 means unchanged; 1.0 a change as large as the
    output itself.

    >>> moved = movement({"a": np.ones(4), "b": np.ones(2)}, {"a": np.ones(4) * 1.5, "b": np.ones(3)})
    >>> {key: round(value, 3) for key, value in moved.items()}
    {'a': 0.5, 'b': 1.0}
    """
    out = {}
    for key, before in before_outputs.items():
        if key not in after_outputs:
            continue
        if after_outputs[key] is before:  # the same array: nothing moved
            out[key] = 0.0
            continue
        b = _as_array(before)
        a = _as_array(after_outputs[key])
        if b.shape != a.shape:
            out[key] = 1.0
            continue
        if b.size == 0:
            out[key] = 0.0
            continue
        b = b.astype(np.float64)
        a = a.astype(np.float64)
        value = np.mean(np.abs(a - b)) / (np.mean(np.abs(b)) + eps)
        out[key] = _float(value) if math.isfinite(value) else 1.0
    return out


# --- summaries: what the editor keeps of a layer's output ------------------------

#: Values a summary keeps as its sample (for histograms and movement); an output
#: with fewer values keeps all of them, so its histogram is exact.
SAMPLE_SIZE = 8192
#: Sampled statistics (histogram shares, movement) are checked against exact ones
#: in the tests within this tolerance (absolute, on shares and relative changes).
SAMPLE_TOLERANCE = 0.05
#: Outputs of more values than this are read at sampled positions only (see
#: `LayerSummary`), unless exact statistics are asked for: 1 MiB of float32.
EXACT_VALUES = 1 << 18
#: A large output's sampled positions: whole rows (every unit at one sample and
#: position), as many as make this many values, and at least `SAMPLED_ROWS`.
SAMPLED_VALUES = 1 << 16
SAMPLED_ROWS = 256


class LayerSummary:
    """What is kept of one layer's output: its statistics and a fixed sample of values.

    Built batch by batch with `add` (the probe runs the probe data in
    batches), so the full output never has to be held at once, and read
    with `statistics`.

    - Mean, std, min, max, the share of dead units (from each unit's largest
      and smallest values) and of non-finite values are read from every
      value of an output of at most `EXACT_VALUES` values, or with
      ``exact=True``. A larger output is read at sampled positions: a
      seeded, fixed choice of whole rows (every unit at one sample and
      position; `SAMPLED_VALUES` values, at least `SAMPLED_ROWS` rows), so
      reading a 16x112x112x64 output costs 0.2-1 ms instead of 12 ms.
      Its mean and std are then estimates (within `SAMPLE_TOLERANCE` of the
      std in the tests), its min and max those of the values read, and a
      unit counts as dead when it is 0 at every sampled row: a unit alive at
      more than 2% of the positions is missed with odds below 0.6%.
      ``statistics()["sampled"]`` says which.
    - The share of zeros, the saturation and histograms come from the kept
      sample: a seeded, fixed choice of at most `SAMPLE_SIZE` positions (of
      a large output, among its sampled rows, which are read anyway), the
      same positions for every output of the same shape, so two summaries
      of one layer before and after an edit compare value by value
      (`summary_movement`). An output of at most `SAMPLE_SIZE` values is
      sampled whole: everything is exact.

    >>> s = LayerSummary((4, 2))
    >>> s.add(np.array([[0.0, 1.0], [0.0, 3.0]]), 0)
    >>> s.add(np.array([[0.0, 1.0], [0.0, 3.0]]), 2)
    >>> stats = s.statistics()
    >>> stats["mean"], stats["dead_fraction"], stats["zero_fraction"], stats["shape"]
    (1.0, 0.5, 0.5, [4, 2])
    >>> LayerSummary((16, 112, 112, 64)).sampled, LayerSummary((16, 112, 112, 64), exact=True).sampled
    (True, False)
    """

    def __init__(self, shape, exact: bool = False):
        self.shape = tuple(int(d) for d in shape)
        self.count = 0  # values seen
        self.read = 0  # values the moments, extremes and dead units were read from
        self.finite = 0
        self.total = 0.0  # mean of the finite values so far
        self.squares = 0.0  # sum of their squared deviations from it
        self.min = math.inf
        self.max = -math.inf
        self.dead = None  # per entry of the last axis: 0 everywhere so far
        size = math.prod(self.shape)
        #: Whether the statistics are read at sampled rows (`_rows`) rather than everywhere.
        self.sampled = not exact and size > EXACT_VALUES
        self._rows = None
        if self.sampled:  # the kept sample: positions among the values read
            width = max(self.shape[-1] if len(self.shape) >= 2 else 1, 1)
            rows = size // width
            self._rows = sample_index(rows, min(rows, max(SAMPLED_ROWS, SAMPLED_VALUES // width)))
            size = len(self._rows) * width
        self._index = sample_index(size)
        self.sample = np.zeros(len(self._index), np.float32)
        self._read: dict = {}  # `statistics` per bounds, until more values are added

    @property
    def nbytes(self) -> int:
        units = 0 if self.dead is None else self.dead.nbytes
        return int(self.sample.nbytes + units + 256)

    @property
    def exact(self) -> bool:
        """Whether the sample is the whole output (so every statistic is exact)."""
        return self.sample.size == math.prod(self.shape)

    def add(self, values, start: int) -> None:
        """Take in one batch: `values` are samples `start ...` of the output."""
        self._read.clear()
        v = _as_array(values)
        kind = v.dtype.kind  # by kind: np.issubdtype costs more than a small output's summary
        if kind != "f":  # integers (and complex) as float64; bool, bfloat16, others as float32
            v = v.astype(np.float64 if kind in "iuc" else np.float32)
        per_sample = math.prod(v.shape[1:])
        flat = v.reshape(-1)
        self.count += int(v.size)
        if v.size == 0:
            return
        units = flat.reshape(-1, v.shape[-1] if v.ndim >= 2 else 1)
        first = start * per_sample  # position of `flat[0]` among the values sampled from
        if self._rows is not None:  # a large output: its sampled rows only
            offset = start * (per_sample // units.shape[1])
            lo, hi = np.searchsorted(self._rows, [offset, offset + units.shape[0]])
            units = units[self._rows[lo:hi] - offset]
            flat, first = units.reshape(-1), int(lo) * units.shape[1]
        self._take_sample(flat, first)
        self.read += int(flat.size)
        if flat.size == 0:
            return
        # One sweep, chunk by chunk: each unit's largest and smallest value (the dead
        # units and the extremes), the sum and the sum of squares.
        highest, lowest, total, squares = _sweep(units)
        vmin, vmax = float(lowest.min()), float(highest.max())
        if math.isfinite(vmin) and math.isfinite(vmax) and math.isfinite(total + squares):
            self._moments(flat, total, squares, vmin, vmax)
            dead = (highest == 0) & (lowest == 0)
        else:  # NaN or inf somewhere: moments of the finite values, dead units counted
            finite = flat[np.isfinite(flat)]
            if finite.size:
                self._moments(finite, float(finite.sum(dtype=np.float64)),
                              float(np.einsum("i,i->", finite, finite, dtype=np.float64)),
                              float(finite.min()), float(finite.max()))
            dead = np.count_nonzero(units, axis=0) == 0
        self.dead = dead if self.dead is None else (self.dead & dead)

    def _take_sample(self, flat, offset):
        index = self._index
        lo, hi = np.searchsorted(index, [offset, offset + flat.size])
        self.sample[lo:hi] = flat[index[lo:hi] - offset]

    def _moments(self, finite, total, squares, vmin, vmax):
        n = int(finite.size)
        mean = total / n
        m2 = squares - n * mean * mean
        if m2 < 1e-3 * squares:  # std much smaller than |mean| (a softmax): centre first
            centred = finite.astype(np.float64) - mean
            m2 = float(np.einsum("i,i->", centred, centred))
        # Chan et al.'s merge of (count, mean, sum of squared deviations) over batches
        delta, before = mean - self.total, self.finite
        self.finite += n
        self.total += delta * n / self.finite  # the running mean
        self.squares += m2 + delta * delta * before * n / self.finite
        self.min = min(self.min, vmin)
        self.max = max(self.max, vmax)

    # --- reading -------------------------------------------------------------

    def bounds(self):
        """The saturation bounds the values look like (see `detect_bounds`), or None."""
        if self.finite == 0:
            return None
        return _bounds_for_range(self.min, self.max)

    def statistics(self, bounds="auto") -> dict:
        """The `layer_statistics` dict of the whole output (``bounds`` "auto", None or a pair).

        Read once per `bounds` until `add` takes more values (the editor reads the
        original's summaries again at every Apply); each call returns its own dict.

        >>> s = summarize(np.array([0.0, 1.0]))
        >>> s.statistics()["max"], s.statistics() is s.statistics()
        (1.0, False)
        """
        key = bounds if bounds is None or isinstance(bounds, str) else tuple(map(float, bounds))
        read = self._read.get(key)
        if read is None:
            read = self._read[key] = self._statistics(bounds)
        found = read["saturation_bounds"]
        return {**read, "shape": list(read["shape"]),
                "saturation_bounds": None if found is None else list(found)}

    def _statistics(self, bounds) -> dict:
        shape, count = list(self.shape), self.count
        if self.finite == 0:
            return {"shape": shape, "count": count, "mean": None, "std": None, "min": None,
                    "max": None, "zero_fraction": 0.0, "dead_fraction": 0.0, "saturation": 0.0,
                    "saturation_bounds": None, "nonfinite_fraction": 1.0 if count else 0.0,
                    "sampled": self.sampled}
        mean = self.total
        variance = max(self.squares / self.finite, 0.0)
        found = self.bounds() if bounds == "auto" else (None if bounds is None else tuple(bounds))
        sample = self.sample.astype(np.float64)
        finite = sample[np.isfinite(sample)]
        saturation = 0.0
        if found is not None and finite.size:
            low, high = found
            band = SATURATION_BAND * (high - low)
            saturation = float(np.mean((finite <= low + band) | (finite >= high - band)))
        dead = self.dead if self.dead is not None else np.zeros(1, bool)
        return {
            "shape": shape, "count": count, "mean": _float(mean), "std": _float(math.sqrt(variance)),
            "min": _float(self.min), "max": _float(self.max),
            "zero_fraction": float(np.mean(sample == 0)) if sample.size else 0.0,
            "dead_fraction": float(np.mean(dead)),
            "saturation": saturation,
            "saturation_bounds": None if found is None else [float(found[0]), float(found[1])],
            "nonfinite_fraction": float(1.0 - self.finite / max(self.read, 1)),
            "sampled": self.sampled,
        }

    def __repr__(self):
        return f"<LayerSummary {self.shape}: {len(self.sample)} sampled values>"


#: Values per folded row of a per-unit reduction (see `_folded`).
_FOLD_COLUMNS = 2048


def _folded(units, fold):
    """`units` (rows x columns) as rows of `fold` rows side by side (`fold` lowered until
    it divides the rows).

    Few units (a conv's 16 or 32 channels) make numpy's reduction down the
    rows slow: it works on one short row at a time. Column reductions of the
    folded rows (about `_FOLD_COLUMNS` values each), then of their `fold`
    partial results, reduce the same values several times faster.

    >>> _folded(np.arange(12.0).reshape(6, 2), 3).max(axis=0).reshape(3, 2).max(axis=0).tolist()
    [10.0, 11.0]
    >>> _folded(np.arange(6).reshape(3, 2), 2).shape  # 2 does not divide 3 rows: 1
    (3, 2)
    """
    rows, columns = units.shape
    while rows % fold:
        fold -= 1
    return units.reshape(rows // fold, fold * columns)


#: Values `_sweep` reads at once: a chunk small enough to stay in a core's cache
#: (512 KiB of float32) while the four reductions read it.
_CHUNK_VALUES = 1 << 17


def _sweep(units) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Each column's largest and smallest value, the sum and the sum of squares of `units`.

    One sweep over the output chunk by chunk (rows x units, `_CHUNK_VALUES`
    values at a time), so memory is read once and the four reductions run
    on data in the cache: about 1.7x less CPU than four passes over a whole
    16x112x112x64 output, which does not fit in the cache. The sums are
    float32 per chunk (column sums of the folded rows, einsum's SIMD loop;
    not BLAS, whose threads stall on a busy machine; a float16 chunk is
    widened first), added up in float64.

    >>> high, low, total, squares = _sweep(np.arange(6.0).reshape(3, 2))
    >>> high.tolist(), low.tolist(), total, squares
    ([4.0, 5.0], [0.0, 1.0], 15.0, 55.0)
    """
    rows, columns = units.shape
    fold = max(1, min(rows, _FOLD_COLUMNS // max(columns, 1)))
    step = max(fold, _CHUNK_VALUES // max(columns, 1) // fold * fold)
    highest = np.full(columns, -np.inf, units.dtype)
    lowest = np.full(columns, np.inf, units.dtype)
    total = squares = 0.0
    for start in range(0, rows, step):
        part = units[start:start + step]
        if part.dtype.itemsize < 4:  # float16 (mixed precision): its sums would overflow
            part = part.astype(np.float32)
        wide = _folded(part, fold)
        np.maximum(highest, wide.max(axis=0).reshape(-1, columns).max(axis=0), out=highest)
        np.minimum(lowest, wide.min(axis=0).reshape(-1, columns).min(axis=0), out=lowest)
        flat = part.reshape(-1)
        # column sums of a few folded rows (a vectorised add of rows, faster than the
        # pairwise sum, which long columns need to stay precise in float32)
        column_sums = wide.shape[0] <= _FOLD_COLUMNS
        total += float(wide.sum(axis=0).sum(dtype=np.float64) if column_sums else flat.sum())
        squares += float(np.einsum("i,i->", flat, flat))
    return highest, lowest, total, squares


def summarize(array, exact: bool = False) -> LayerSummary:
    """The `LayerSummary` of one whole array (``exact``: read every value, however large).

    >>> summarize(np.arange(4.0)).statistics()["max"]
    3.0
    """
    values = _as_array(array)
    summary = LayerSummary(values.shape, exact=exact)
    summary.add(values, 0)
    return summary


_INDEX_CACHE: collections.OrderedDict = collections.OrderedDict()


def sample_index(size: int, sample_size: int | None = None) -> np.ndarray:
    """Sorted flat positions sampled from an output of `size` values (seeded by the size).

    >>> sample_index(5).tolist()
    [0, 1, 2, 3, 4]
    >>> len(sample_index(10**6, 100)), bool((sample_index(10**6, 100) == sample_index(10**6, 100)).all())
    (100, True)
    """
    k = SAMPLE_SIZE if sample_size is None else int(sample_size)
    key = (int(size), k)
    hit = _INDEX_CACHE.get(key)
    if hit is None:
        if size <= k:
            hit = np.arange(size, dtype=np.int64)
        else:
            rng = np.random.default_rng(size)
            hit = np.sort(rng.choice(size, k, replace=False)).astype(np.int64)
        hit.flags.writeable = False
        _INDEX_CACHE[key] = hit
        while len(_INDEX_CACHE) > 512:
            _INDEX_CACHE.popitem(last=False)
    return hit


def _bounds_for_range(vmin, vmax):
    for low, high in KNOWN_BOUNDS:
        span = high - low
        if not _range_inside(vmin, vmax, (low, high)):
            continue
        if vmax >= high - SATURATION_BAND * span or (low < 0 and vmin <= low + SATURATION_BAND * span):
            return low, high
    return None


def _range_inside(vmin, vmax, bounds) -> bool:
    if bounds is None:
        return False
    low, high = bounds
    tol = 1e-6 * (high - low)
    return vmin >= low - tol and vmax <= high + tol


def paired_summary_statistics(before: dict, after: dict) -> tuple[dict, dict]:
    """`paired_statistics` of `LayerSummary` dicts: bounds shared like with like.

    A summary object found on both sides (a layer the edit did not reach)
    is read once.

    >>> b, a = paired_summary_statistics({"s": summarize(np.array([0.5, 0.6]))},
    ...                                  {"s": summarize(np.array([0.0, 1.0]))})
    >>> b["s"]["saturation_bounds"] == a["s"]["saturation_bounds"] == [0.0, 1.0]
    True
    """
    return _paired(before, after, lambda summary, bounds: summary.statistics(bounds),
                   _summary_side)


def _summary_side(summary):
    """`_array_side` of a `LayerSummary`: from its range."""
    return summary.bounds(), lambda bounds: bool(summary.finite) and _range_inside(
        summary.min, summary.max, bounds)


def summary_movement(before: dict, after: dict, eps=1e-8) -> dict:
    """`movement` of `LayerSummary` dicts, estimated on their samples.

    The samples are the same positions of outputs of the same shape, so the
    estimate is ``mean |after - before| / (mean |before| + eps)`` over at most
    `SAMPLE_SIZE` positions (exact for smaller outputs). A summary found on
    both sides moved 0.0; a changed shape 1.0.

    >>> moved = summary_movement({"a": summarize(np.ones(4))}, {"a": summarize(np.ones(4) * 1.5)})
    >>> round(moved["a"], 3)
    0.5
    """
    out = {}
    for key, b in before.items():
        a = after.get(key)
        if a is None:
            continue
        if a is b:
            out[key] = 0.0
        elif a.shape != b.shape:
            out[key] = 1.0
        elif b.sample.size == 0:
            out[key] = 0.0
        else:
            x, y = b.sample.astype(np.float64), a.sample.astype(np.float64)
            value = np.mean(np.abs(y - x)) / (np.mean(np.abs(x)) + eps)
            out[key] = _float(value) if math.isfinite(value) else 1.0
    return out
