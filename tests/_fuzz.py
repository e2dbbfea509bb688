"""A seeded fuzzer of random functional models and random edits, for `tests/test_fuzz.py`.

`random_model(seed)` draws a small functional model from its own generator
(a `numpy` RNG seeded by `seed`): chains and branches of Dense layers,
nested Sequentials and functional sub-models (one inside another at times),
shared layers and shared sub-models, a masked sequence branch (Embedding
with `mask_zero` or Masking, pooled with the mask), Lambda layers, raw ops
(`keras.ops` on symbolic tensors), one or two inputs and one to three
outputs. `random_edits(model, rng)` draws one to three edits: activation
changes (of a whole layer or one call of a shared one), replacements (same
width or wider), inserts (after outputs too) and removals (Dropouts, the
first or last layer of a nested model, a nested model's output layer, a
model output layer, a whole nested model).

`check(seed)` applies them and checks the invariants: the original is
unchanged; the rebuild either raises a `KerawidgetsError` or gives a model
that runs, keeps every weight its report calls kept bit for bit, keeps the
output names, and saves and reloads to equal outputs. It returns the problem
as text (or None). A failing seed is reproduced with::

    python -m tests._fuzz SEED
"""

from __future__ import annotations

import sys
import tempfile
import traceback
from pathlib import Path

import keras
import numpy as np
from keras import layers

import kerawidgets
from kerawidgets import targets
from kerawidgets.edits import InsertLayer, RemoveLayer, ReplaceLayer, SetActivation
from kerawidgets.errors import KerawidgetsError

WIDTH = 4
STEPS = 3  # sequence length of the masked branch
VOCAB = 6
ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "linear", "elu")


def doubled(t):
    """A Lambda's function (module level, so a saved model can load it)."""
    return t * 2.0


class _Builder:
    """One random model, drawn layer by layer."""

    def __init__(self, rng):
        self.rng = rng
        self.count = 0
        self.shared: list = []  # layers taking (None, WIDTH), safe to call again
        self.sub_models: list = []  # nested models taking (None, WIDTH)

    def pick(self, options):
        return options[int(self.rng.integers(len(options)))]

    def chance(self, p):
        return bool(self.rng.random() < p)

    def name(self, prefix):
        self.count += 1
        return f"{prefix}{self.count}"

    def dense(self, units=WIDTH):
        return layers.Dense(units, activation=self.pick(ACTIVATIONS), name=self.name("dense"))

    # --- nested models --------------------------------------------------------

    def sequential(self, depth):
        inner = [self.dense()]
        if self.chance(0.5):
            inner.insert(0, layers.Dropout(0.2, name=self.name("drop")))
        if self.chance(0.4):
            inner.append(layers.Activation(self.pick(ACTIVATIONS), name=self.name("act")))
        if depth < 1 and self.chance(0.3):
            inner.append(self.sub_model(depth + 1))
        inner.append(self.dense())
        return keras.Sequential([keras.Input((WIDTH,)), *inner], name=self.name("seq"))

    def functional(self, depth):
        inp = keras.Input((WIDTH,))
        a = self.dense()(inp)
        b = layers.Dropout(0.1, name=self.name("drop"))(inp) if self.chance(0.5) else inp
        if depth < 1 and self.chance(0.3):
            b = self.sub_model(depth + 1)(b)
        merged = self.pick([layers.Add, layers.Multiply, layers.Maximum])(name=self.name("merge"))([a, b])
        out = self.dense()(merged)
        return keras.Model(inp, out, name=self.name("sub"))

    def sub_model(self, depth=0):
        return self.sequential(depth) if self.chance(0.5) else self.functional(depth)

    # --- the outer graph ---------------------------------------------------------

    def masked_branch(self, int_input):
        """(None, WIDTH) from a masked sequence: Embedding(mask_zero) or Masking, then pooling."""
        if int_input is not None:
            x = layers.Embedding(VOCAB, WIDTH, mask_zero=True, name=self.name("embed"))(int_input)
        else:
            seq_in = self.float_sequence
            x = layers.Masking(0.0, name=self.name("mask"))(seq_in)
        if self.chance(0.5):
            x = layers.Dense(WIDTH, activation="tanh", name=self.name("tdense"))(x)
        return layers.GlobalAveragePooling1D(name=self.name("gap"))(x)

    def step(self, pool):
        kind = self.pick(["dense", "dense", "shared", "merge", "concat", "op", "nested",
                          "nested", "shared_model", "bn", "dropout", "lambda", "ln"])
        x, y = self.pick(pool), self.pick(pool)
        if kind == "shared" and self.shared:
            return self.pick(self.shared)(x)
        if kind == "shared_model" and self.sub_models:
            return self.pick(self.sub_models)(x)
        if kind == "merge":
            return self.pick([layers.Add, layers.Subtract, layers.Average])(name=self.name("merge"))([x, y])
        if kind == "concat":
            return self.dense()(layers.Concatenate(name=self.name("cat"))([x, y]))
        if kind == "op":
            return self.pick([lambda: keras.ops.tanh(x) + y, lambda: x * 0.5 - y,
                              lambda: keras.ops.maximum(x, y)])()
        if kind in ("nested", "shared_model"):
            model = self.sub_model()
            self.sub_models.append(model)
            return model(x)
        if kind == "bn":
            return layers.BatchNormalization(name=self.name("bn"))(x)
        if kind == "ln":
            return layers.LayerNormalization(name=self.name("ln"))(x)
        if kind == "dropout":
            return layers.Dropout(0.3, name=self.name("drop"))(x)
        if kind == "lambda":
            return layers.Lambda(doubled, name=self.name("lambda"))(x)
        layer = self.dense()
        self.shared.append(layer)
        return layer(x)

    def build(self):
        inputs = [keras.Input((WIDTH,), name="in0")]
        if self.chance(0.3):
            inputs.append(keras.Input((WIDTH,), name="in1"))
        pool = list(inputs)
        masked = self.pick(["none", "none", "embed", "masking"])
        self.float_sequence = None
        if masked == "embed":
            inputs.append(keras.Input((STEPS,), dtype="int32", name="tokens"))
            pool.append(self.masked_branch(inputs[-1]))
        elif masked == "masking":
            self.float_sequence = keras.Input((STEPS, WIDTH), name="sequence")
            inputs.append(self.float_sequence)
            pool.append(self.masked_branch(None))
        for _ in range(int(self.rng.integers(2, 8))):
            pool.append(self.step(pool))
        last = pool[-1]
        for extra in pool[:-1]:  # every input and branch reaches an output
            if extra is not last and not _feeds(extra, last):
                last = layers.Add(name=self.name("join"))([last, extra])
        outputs = [layers.Dense(2, activation="softmax", name="head")(last)]
        if self.chance(0.5):
            outputs.append(layers.Dense(1, name="aux")(self.pick(pool[1:])))
        if self.chance(0.25):
            outputs.append(last)  # an output that is also consumed by the head
        return keras.Model(inputs, outputs, name=f"fuzz{self.count}")


def _feeds(tensor, later) -> bool:
    """Whether `tensor` is upstream of `later` in the graph being built."""
    seen, stack = set(), [later]
    while stack:
        t = stack.pop()
        if t is tensor:
            return True
        if id(t) in seen:
            continue
        seen.add(id(t))
        history = getattr(t, "_keras_history", None)
        if history is None:
            continue
        operation, node_index, _ = history
        node = operation._inbound_nodes[node_index]
        stack.extend(node.input_tensors)
    return False


def random_model(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return _Builder(np.random.default_rng(seed)).build()


# --- edits -------------------------------------------------------------------------


def _layer(model, path):
    return targets.resolve(model, path)[0].layer


def random_edits(model, rng) -> list:
    """One to three edits drawn from what `model` holds (later ones may name what an
    earlier one removed: the rebuild must then refuse them)."""
    paths = targets.layer_paths(model)
    by_kind: dict[str, list[str]] = {}
    for path in paths:
        layer = _layer(model, path)
        by_kind.setdefault(type(layer).__name__, []).append(path)
        if isinstance(layer, keras.Model):
            by_kind.setdefault("model", []).append(path)
            inner = [p for p in paths if p.startswith(path + "/") and p.count("/") == path.count("/") + 1]
            if inner:
                by_kind.setdefault("boundary", []).extend([inner[0], inner[-1]])
    outputs = [p for p in ("head", "aux") if p in paths]
    dense = by_kind.get("Dense", [])
    edits = []
    for _ in range(int(rng.integers(1, 4))):
        kind = rng.choice(["activation", "activation_call", "replace", "widen", "insert",
                           "insert_output", "remove_dropout", "remove_boundary",
                           "remove_output", "remove_model"])
        activation = str(rng.choice(ACTIVATIONS))
        path = str(rng.choice(dense)) if dense else "head"
        if kind == "activation_call":
            calls = targets.call_count(model, path)
            edits.append(SetActivation(f"{path}:{int(rng.integers(calls))}" if calls > 1 else path,
                                       activation))
        elif kind == "replace":
            units = _layer(model, path).units
            edits.append(ReplaceLayer(path, layers.Dense(units, activation=activation)))
        elif kind == "widen":
            edits.append(ReplaceLayer(path, layers.Dense(_layer(model, path).units + 2)))
        elif kind in ("insert", "insert_output"):
            where = str(rng.choice(outputs)) if kind == "insert_output" else str(rng.choice(paths))
            new = rng.choice(["dropout", "identity", "relu", "ln"])
            layer = {"dropout": lambda: layers.Dropout(0.1), "identity": lambda: layers.Identity(),
                     "relu": lambda: layers.ReLU(), "ln": lambda: layers.LayerNormalization()}[new]()
            edits.append(InsertLayer(after=where, layer=layer))
        elif kind.startswith("remove"):
            pool = {"remove_dropout": by_kind.get("Dropout", []),
                    "remove_boundary": by_kind.get("boundary", []),
                    "remove_output": outputs, "remove_model": by_kind.get("model", [])}[kind]
            edits.append(RemoveLayer(str(rng.choice(pool))) if pool else SetActivation(path, activation))
        else:
            edits.append(SetActivation(path, activation))
    return edits


# --- the invariants ----------------------------------------------------------------------


def probe_inputs(model, seed=0):
    rng = np.random.default_rng(seed)
    data = []
    for tensor in model.inputs:
        shape = (3, *tensor.shape[1:])
        if "int" in str(tensor.dtype):
            data.append(rng.integers(0, VOCAB, size=shape).astype("int32"))
        else:
            values = rng.normal(size=shape).astype("float32")
            if len(shape) == 3:
                values[:, -1, :] = 0.0  # a masked step
            data.append(values)
    return data


def outputs_of(model, x):
    return [keras.ops.convert_to_numpy(o) for o in keras.tree.flatten(model(x, training=False))]


def weights_by_path(model) -> dict:
    return {"/".join(path): [keras.ops.convert_to_numpy(v) for v in layer.weights]
            for path, layer in targets.walk_layers(model)}


def _config(model):
    import json

    return json.dumps(model.get_config(), sort_keys=True, default=str)


def check(seed: int, tmp_dir=None) -> str | None:
    """Run one seed; the broken invariant as text, or None when every one holds."""
    return run(seed, tmp_dir)[0]


def run(seed: int, tmp_dir=None) -> tuple[str | None, str]:
    """(the broken invariant or None, what happened: "rebuilt" or "refused: <error class>")."""
    model = random_model(seed)
    edits = random_edits(model, np.random.default_rng(10_000 + seed))
    reinitialize = "downstream" if seed % 2 else None
    x = probe_inputs(model)
    config, weights = _config(model), weights_by_path(model)
    where = f"seed {seed}: edits {[e.describe() for e in edits]}, reinitialize={reinitialize!r}"
    try:
        result = kerawidgets.rebuild(model, edits, reinitialize=reinitialize)
        happened = "rebuilt"
    except KerawidgetsError as error:
        result, happened = None, f"refused: {type(error).__name__}"
    except Exception:
        return f"{where}: not a KerawidgetsError\n{_last_lines(traceback.format_exc())}", "crashed"
    if _config(model) != config or not _same(weights_by_path(model), weights):
        return f"{where}: the original model changed", happened
    if result is None:
        return None, happened
    try:
        return _check_result(model, result, weights, x, where, tmp_dir, reinitialize), happened
    except Exception:
        return f"{where}: the new model failed\n{_last_lines(traceback.format_exc())}", happened


def _last_lines(text, n=6) -> str:
    return "\n".join(text.rstrip().splitlines()[-n:])


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        len(a[k]) == len(b[k]) and all(np.array_equal(x, y) for x, y in zip(a[k], b[k])) for k in a)


def _check_result(model, result, weights, x, where, tmp_dir, reinitialize):
    new = result.model
    after = outputs_of(new, x)
    if new.output_names != model.output_names:
        return f"{where}: output names {model.output_names} became {new.output_names}"
    new_weights = weights_by_path(new)
    for outcome in result.report:
        untouched_reset = not outcome.edited and outcome.status == "reinitialised" and not (
            reinitialize == "downstream" and "downstream" in outcome.reason)
        if untouched_reset:
            return f"{where}: untouched {outcome.layer!r} re-initialised: {outcome.reason}"
        old_path = getattr(outcome, "renamed_from", "") or outcome.layer
        if outcome.status != "kept" or old_path not in weights or outcome.layer not in new_weights:
            continue
        if not all(np.array_equal(a, b) for a, b in zip(weights[old_path], new_weights[outcome.layer])):
            return f"{where}: {outcome.layer!r} reported kept but its weights differ"
    with tempfile.TemporaryDirectory(dir=tmp_dir) as folder:
        path = Path(folder) / "fuzz.keras"
        new.save(path)
        loaded = keras.saving.load_model(path, custom_objects={"doubled": doubled},
                                         safe_mode=False)  # Lambda layers
    reloaded = outputs_of(loaded, x)
    for a, b in zip(reloaded, after):
        if a.shape != b.shape or not np.allclose(a, b, rtol=1e-5, atol=1e-6):
            return f"{where}: save/reload changed the outputs"
    return None


if __name__ == "__main__":  # python -m tests._fuzz SEED [SEED...]
    for arg in sys.argv[1:]:
        seed = int(arg)
        model = random_model(seed)
        model.summary(expand_nested=True)
        print([e.to_code() for e in random_edits(model, np.random.default_rng(10_000 + seed))])
        print(check(seed) or f"seed {seed}: every invariant holds")
