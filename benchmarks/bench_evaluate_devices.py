"""`ModelEditor.evaluate` on 1, 2 and 4 simulated CPU devices, jax and tensorflow.

Each (backend, devices) runs in its own process, because the device count is
fixed before the backend starts: jax with
``XLA_FLAGS=--xla_force_host_platform_device_count=N`` and Keras'
`keras.distribution.DataParallel`; tensorflow with N logical CPU devices and a
`tf.distribute.MirroredStrategy` (one device: no distribution at all). The
model (a small CNN on 32x32x3, 1024 seeded random samples, batch 64) is built
and compiled under the distribution, edited in a `ModelEditor` (`gelu` in
one layer), and `editor.evaluate((x, y))` (Keras' evaluate on the original
and the edited model) is timed: one warm-up, then the median of `--repeat`.
The simulated devices share the machine's cores, so more devices bring no
compute, only splitting and gathering work: the numbers are not a speed-up
(on jax, several devices may keep more cores busy than one; see RESULTS.md).

    .venv/bin/python benchmarks/bench_evaluate_devices.py [--repeat 3] [--write]

`--write` appends the table to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEVICE_COUNTS = (1, 2, 4)
BACKENDS = ("jax", "tensorflow")
SAMPLES, BATCH = 512, 64


def child(devices: int, repeat: int) -> dict:
    """Runs in the child process: build under the distribution, time editor.evaluate."""
    backend = os.environ["KERAS_BACKEND"]
    if backend == "tensorflow":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(devices)])
    import contextlib
    import statistics

    import keras
    import numpy as np

    from kerawidgets.edits import SetActivation
    from kerawidgets.widgets import ModelEditor

    scope = contextlib.nullcontext()
    if devices > 1 and backend == "jax":
        found = keras.distribution.list_devices("cpu")
        assert len(found) == devices, found
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=found))
    elif devices > 1:
        found = [d.name for d in tf.config.list_logical_devices("CPU")]
        assert len(found) == devices, found
        scope = tf.distribute.MirroredStrategy(found).scope()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((SAMPLES, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, size=SAMPLES).astype("int32")
    with scope:
        inp = keras.Input((32, 32, 3), name="image")
        h = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv1")(inp)
        h = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="conv2")(h)
        h = keras.layers.MaxPooling2D(name="pool")(h)
        h = keras.layers.Flatten(name="flatten")(h)
        h = keras.layers.Dense(64, activation="relu", name="hidden")(h)
        out = keras.layers.Dense(10, activation="softmax", name="head")(h)
        model = keras.Model(inp, out, name="cnn")
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    editor = ModelEditor(model, x[:64], y[:64])
    editor.apply(SetActivation("conv2", "gelu"))
    times, result = [], None
    for i in range(repeat + 1):  # the first run traces and compiles: not counted
        start = time.perf_counter()
        result = editor.evaluate((x, y), batch_size=BATCH)
        if i:
            times.append(time.perf_counter() - start)
    return {"backend": backend, "devices": devices, "seconds": statistics.median(times),
            "loss": result["current"]["loss"], "accuracy": result["current"]["accuracy"],
            "original_loss": result["original"]["loss"], "keras": keras.__version__}


def run(backend: str, devices: int, repeat: int) -> dict:
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if backend == "jax":
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    done = subprocess.run([sys.executable, __file__, "--child", str(devices), "--repeat",
                           str(repeat)], env=env, capture_output=True, text=True, check=False)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode or not lines:
        raise SystemExit(f"{backend} on {devices} device(s) failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(lines[-1])


def table(rows) -> str:
    out = ["| backend | devices | `editor.evaluate` (s) | vs 1 device | loss (edited) | "
           "accuracy (edited) | loss (original) |", "|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        one = next(r for r in rows if r["backend"] == row["backend"] and r["devices"] == 1)
        out.append(f"| {row['backend']} | {row['devices']} | {row['seconds']:.2f} | "
                   f"{row['seconds'] / one['seconds']:.2f}x | {row['loss']:.6f} | "
                   f"{row['accuracy']:.4f} | {row['original_loss']:.6f} |")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="append to benchmarks/RESULTS.md")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.repeat)), flush=True)
        return
    rows = []
    for backend in BACKENDS:
        for devices in DEVICE_COUNTS:
            rows.append(run(backend, devices, args.repeat))
            print(json.dumps(rows[-1]), flush=True)
    text = table(rows)
    print(text)
    if args.write:
        section = (
            "\n## Evaluate on 1, 2 and 4 simulated devices\n\n"
            f"`.venv/bin/python benchmarks/bench_evaluate_devices.py --repeat {args.repeat} "
            "--write`: `editor.evaluate((x, y))` (Keras' evaluate on the original and the edited "
            f"model) of a small CNN on {SAMPLES} samples of 32x32x3, batch {BATCH}, built and "
            "compiled under the distribution (jax: `DataParallel` over "
            "`--xla_force_host_platform_device_count` CPU devices; tensorflow: "
            "`MirroredStrategy` over logical CPUs); median of the runs after a warm-up; keras "
            f"{rows[0]['keras']}, {platform.machine()}, {os.cpu_count()} shared cores.\n\n"
            f"{text}\n\n"
            "The simulated devices are slices of the same CPU cores, so these numbers are "
            "not a speed-up: more devices bring no compute, only splitting each batch, one "
            "program per device and gathering the metrics (on jax, several devices may keep "
            "more cores busy than one). The metrics agree across device counts within float "
            "tolerance, as tests/test_distribution.py checks.\n")
        with open(ROOT / "benchmarks" / "RESULTS.md", "a", encoding="utf-8") as handle:
            handle.write(section)


if __name__ == "__main__":
    main()
