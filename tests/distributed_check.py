"""Run in its own process by tests/test_distribution.py (the device count is set before import).

    XLA_FLAGS=--xla_force_host_platform_device_count=4 KERAS_BACKEND=jax python distributed_check.py
    KERAS_BACKEND=tensorflow python distributed_check.py

Builds a small classifier, then under Keras' own data parallelism on 4 CPU
devices (jax: `keras.distribution.DataParallel`; tensorflow: a
`tf.distribute.MirroredStrategy` over 4 logical CPUs) checks that
- every variable of a rebuilt model (kept weights included) is laid out like
  the same variable of the original built under the distribution;
- `evaluate_pair` gives the single-device numbers (within float tolerance);
- `fine_tune` runs data-parallel and ends with the single-device weights.
Prints one line per check and exits non-zero on the first failure.
"""

import os
import sys

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
DEVICES = 4

if BACKEND == "tensorflow":
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(DEVICES)])

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kerawidgets import rebuild  # noqa: E402
from kerawidgets.edits import SetActivation  # noqa: E402
from kerawidgets.training import evaluate_pair, fine_tune  # noqa: E402

TOL = 1e-5


def data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n).astype("int32")
    centres = rng.normal(scale=3.0, size=(3, 6))
    return (centres[y] + rng.normal(size=(n, 6))).astype("float32"), y


def classifier(weights=None):
    inp = keras.Input((6,), name="x")
    h = keras.layers.Dense(16, activation="relu", name="hidden")(inp)
    bn = keras.layers.BatchNormalization(name="bn")
    bn.trainable = False  # inference mode in fit: per-replica batch statistics would differ
    h = bn(h)
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="head")(h),
                        name="clf")
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    if weights is not None:
        model.set_weights(weights)
    return model


def check(name, ok, detail=""):
    print(f"{'ok' if ok else 'FAILED'}: {name} {detail}", flush=True)
    if not ok:
        sys.exit(1)


def close(a, b):
    return all(abs(a[k] - b[k]) <= TOL * (1 + abs(b[k])) for k in b) and set(a) == set(b)


def single_device_reference(x, y):
    keras.utils.set_random_seed(0)
    model = classifier()
    weights = model.get_weights()
    edit = SetActivation("hidden", "gelu")
    edited = rebuild(model, [edit]).model
    evaluated = evaluate_pair(model, edited, (x, y), batch_size=16)
    tuned = fine_tune(edited, x, y, epochs=1, batch_size=16, shuffle=False)
    return weights, edit, evaluated, [np.asarray(w) for w in tuned.model.get_weights()]


def layout(variable):
    """What says where a variable lives: jax sharding spec and devices; tf replica devices."""
    value = variable.value
    if BACKEND == "jax":
        sharding = value.sharding
        return (str(getattr(sharding, "spec", None)),
                tuple(sorted(str(d) for d in sharding.device_set)))
    inner = getattr(value, "values", None)
    return (type(value).__name__, tuple(sorted(v.device for v in inner)) if inner else (value.device,))


def main():
    x, y = data()
    weights, edit, reference, tuned_reference = single_device_reference(x, y)
    if BACKEND == "jax":
        devices = keras.distribution.list_devices("cpu")
        check("four jax devices", len(devices) == DEVICES, str(devices))
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        scope = _null()
    else:
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        check("four logical CPUs", len(devices) == DEVICES, str(devices))
        strategy = tf.distribute.MirroredStrategy(devices)
        scope = strategy.scope()
    with scope:
        model = classifier(weights)
        edited = rebuild(model, [edit]).model
        for old, new in zip(model.weights, edited.weights):
            check(f"layout of {new.path}", layout(old) == layout(new) and len(layout(new)[1]) == DEVICES,
                  f"{layout(old)} vs {layout(new)}")
        for variable in edited.optimizer.variables:
            check(f"optimizer variable {variable.path} distributed",
                  len(layout(variable)[1]) == DEVICES, str(layout(variable)))
        result = evaluate_pair(model, edited, (x, y), batch_size=16)
        check("evaluate equals single-device", close(result["original"], reference["original"])
              and close(result["current"], reference["current"]), f"{result} vs {reference}")
        if BACKEND == "tensorflow":
            check("rebuilt model trains under the strategy",
                  edited.distribute_strategy.num_replicas_in_sync == DEVICES)
        tuned = fine_tune(edited, x, y, epochs=1, batch_size=16, shuffle=False)
        for w in tuned.model.weights:
            check(f"fine-tuned {w.path} laid out like the original",
                  len(layout(w)[1]) == DEVICES, str(layout(w)))
        got = [np.asarray(w) for w in tuned.model.get_weights()]
        worst = max(float(np.max(np.abs(a - b))) for a, b in zip(got, tuned_reference))
        check("fine-tune data-parallel ends at the single-device weights", worst <= 1e-4,
              f"max |diff| {worst:.2e}")
    if BACKEND == "tensorflow":  # outside the scope: the editor uses the original's strategy
        from kerawidgets.widgets import ModelEditor

        editor = ModelEditor(model, x[:16], y[:16], history_size=1)
        editor.apply(edit)
        check("an editor's rebuild outside the scope mirrors like the original",
              all(layout(o) == layout(n) for o, n in zip(model.weights, editor.model.weights)),
              str(layout(editor.model.weights[0])))
        tuned = editor.recover(x, y, epochs=1, batch_size=16)
        check("recover outside the scope trains under the original's strategy",
              tuned.model.distribute_strategy is strategy
              and all(len(layout(w)[1]) == DEVICES for w in tuned.model.weights))
        editor.undo()  # history_size=1: the edited model was dropped, and is rebuilt now
        check("a model rebuilt by undo is mirrored like the original",
              all(layout(o) == layout(n) for o, n in zip(model.weights, editor.model.weights)))
    print("all distribution checks passed")


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


if __name__ == "__main__":
    main()
