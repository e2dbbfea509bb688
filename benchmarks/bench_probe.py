"""Probe benchmark: from an edit near the output to updated outputs of every layer.

Compares `Probe.summaries_after_edit` (incremental: only the calls downstream of
the edit run, on cached upstream values) with a full pass over the edited
model, for a small CNN trained on scikit-learn's digits, MobileNetV2
(alpha 0.35, 96x96, weights=None) and ResNet50 (64x64, weights=None), with a
probe batch of 16. The edit swaps the activation of the last Dense layer.

    TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/bench_probe.py [--write]

`--write` appends the table to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "agg")

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics as stats  # noqa: E402
import time  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kerawidgets import replace_activation  # noqa: E402
from kerawidgets.probe import Probe  # noqa: E402

REPEATS = 3
BATCH = 16


def digits_cnn():
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images[..., None] / 16.0).astype("float32")
    y = digits.target
    inp = keras.Input((8, 8, 1), name="digits")
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(inp)
    h = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(h)
    h = keras.layers.MaxPooling2D(name="pool")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    h = keras.layers.Dense(64, activation="relu", name="dense_1")(h)
    out = keras.layers.Dense(10, activation="softmax", name="predictions")(h)
    model = keras.Model(inp, out, name="digits_cnn")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:1500], y[:1500], epochs=5, batch_size=64, verbose=0)
    return model, x[1500:1500 + BATCH]


def mobilenet():
    model = keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35,
                                           weights=None, classes=10)
    return model, np.random.default_rng(0).standard_normal((BATCH, 96, 96, 3)).astype("float32")


def resnet():
    model = keras.applications.ResNet50(input_shape=(64, 64, 3), weights=None, classes=10)
    return model, np.random.default_rng(0).standard_normal((BATCH, 64, 64, 3)).astype("float32")


def bench(name, make):
    keras.utils.set_random_seed(0)
    model, x = make()
    edited = replace_activation(model, "predictions", "sigmoid")
    full_times, inc_times = [], []
    for _ in range(REPEATS):
        probe = Probe(model, x, batch_size=BATCH)
        probe.summaries(model)  # "before", as the editor has it when Apply is pressed
        start = time.perf_counter()
        incremental = probe.summaries_after_edit(model, edited, ["predictions"])
        inc_times.append(time.perf_counter() - start)
        assert incremental.kind == "incremental", incremental.reason
        recomputed = len(incremental.recomputed)

        probe = Probe(model, x, batch_size=BATCH)
        probe.summaries(model)
        start = time.perf_counter()
        full = probe.summaries(edited)
        full_times.append(time.perf_counter() - start)
    worst = max(float(np.max(np.abs(incremental.summaries[k].sample - s.sample)))
                for k, s in full.summaries.items())
    full_s, inc_s = stats.median(full_times), stats.median(inc_times)
    return {
        "model": name, "calls": len(full.summaries), "recomputed": recomputed,
        "full_s": full_s, "incremental_s": inc_s, "speedup": full_s / inc_s,
        "max_abs_diff": worst,
    }


def table(rows) -> str:
    lines = [
        "| model | layer calls | recomputed | full pass (s) | incremental (s) | speed-up | max abs diff inc vs full |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['calls']} | {r['recomputed']} | {r['full_s']:.3f} | "
            f"{r['incremental_s']:.4f} | {r['speedup']:.0f}x | {r['max_abs_diff']:.1e} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="append to benchmarks/RESULTS.md")
    args = parser.parse_args()
    rows = []
    for name, make in (("digits CNN (trained, 8x8)", digits_cnn),
                       ("MobileNetV2 a=0.35 96x96", mobilenet),
                       ("ResNet50 64x64", resnet)):
        rows.append(bench(name, make))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    text = table(rows)
    print()
    print(text)
    if args.write:
        section = (
            "\n## Probe: incremental vs full recompute\n\n"
            f"Edit: last Dense activation softmax -> sigmoid; probe batch {BATCH}; median of "
            f"{REPEATS} runs; keras {keras.__version__} ({keras.backend.backend()}), "
            f"{platform.machine()}, {os.cpu_count()} cores shared. Full pass = "
            "`Probe.summaries(edited)` (runs and summarises every call); incremental = "
            "`Probe.summaries_after_edit(model, edited, ['predictions'])` (reuses the "
            "summaries upstream, runs only the calls downstream of the edit from the "
            "nearest checkpoint). Max abs diff: between the sampled values of both. "
            "`python benchmarks/bench_probe.py --write`.\n\n" + text + "\n")
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")
        with open(path, "a", encoding="utf-8") as handle:  # one atomic append
            handle.write(section)


if __name__ == "__main__":
    main()
