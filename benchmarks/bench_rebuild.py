"""Rebuild speed: swap one layer's activation vs the manual clone_model recipe.

For ResNet50, DenseNet121 and EfficientNetB0 (``weights=None``), in one
process, side by side:

- **kerawidgets**: ``kerawidgets.rebuild(model, [SetActivation(layer, "gelu")])``
- **recipe**: ``keras.models.clone_model(model, clone_function=...)`` that swaps
  the same layer's activation in its config, then
  ``clone.set_weights(model.get_weights())``.

Each is run ``--repeat`` times alternately; the median wall time of each, the
median of the per-pair ratios (each kerawidgets run over the recipe run right
after it, so slow drifts of a shared machine cancel out) and the peak Python
heap (tracemalloc, measured in a separate run so it does not slow the
timing) are reported. Target: kerawidgets at most 0.5x the recipe's time.

Run: ``python benchmarks/bench_rebuild.py [--repeat 3] [--cpu] [--write]``
(``--cpu`` times the process's CPU time instead of wall time: on a machine
shared with other jobs it is what the rebuild itself costs; ``--write``
appends the table to benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
import tracemalloc

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

import kerawidgets  # noqa: E402
from kerawidgets.edits import SetActivation  # noqa: E402

MODELS = {
    "ResNet50": (keras.applications.ResNet50, "conv5_block3_out"),
    "DenseNet121": (keras.applications.DenseNet121, "conv5_block16_1_relu"),
    "EfficientNetB0": (keras.applications.EfficientNetB0, "top_activation"),
}


def with_kerawidgets(model, layer):
    return kerawidgets.rebuild(model, [SetActivation(layer, "gelu")]).model


def with_recipe(model, layer):
    def clone_function(original):
        config = original.get_config()
        if original.name == layer:
            if "activation" in config:
                config["activation"] = "gelu"
                return original.__class__.from_config(config)
            return keras.layers.Activation("gelu", name=original.name)
        return original.__class__.from_config(config)

    clone = keras.models.clone_model(model, clone_function=clone_function)
    clone.set_weights(model.get_weights())
    return clone


CLOCK = time.perf_counter


def timed(fn, *args):
    gc.collect()
    start = CLOCK()
    result = fn(*args)
    elapsed = CLOCK() - start
    del result
    return elapsed


def peak_memory(fn, *args):
    gc.collect()
    tracemalloc.start()
    result = fn(*args)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del result
    return peak / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--cpu", action="store_true", help="time CPU, not wall, seconds")
    parser.add_argument("--write", action="store_true", help="append to benchmarks/RESULTS.md")
    args = parser.parse_args()
    global CLOCK
    if args.cpu:
        CLOCK = time.process_time

    rows = []
    for name in args.models:
        factory, layer = MODELS[name]
        keras.utils.set_random_seed(0)
        model = factory(weights=None)
        # warm-up: first calls pay one-off tracing and import costs for both
        with_kerawidgets(model, layer)
        with_recipe(model, layer)
        ours, theirs = [], []
        for _ in range(args.repeat):
            ours.append(timed(with_kerawidgets, model, layer))
            theirs.append(timed(with_recipe, model, layer))
        mem_ours = peak_memory(with_kerawidgets, model, layer)
        mem_theirs = peak_memory(with_recipe, model, layer)
        ratio = statistics.median(a / b for a, b in zip(ours, theirs))
        row = (name, len(model.layers), statistics.median(ours), statistics.median(theirs),
               ratio, min(a / b for a, b in zip(ours, theirs)),
               max(a / b for a, b in zip(ours, theirs)), mem_ours, mem_theirs)
        rows.append(row)
        print(f"{name}: kerawidgets {row[2]:.2f}s, recipe {row[3]:.2f}s, "
              f"ratio {ratio:.2f}x (pairs {row[5]:.2f}-{row[6]:.2f})", flush=True)

    lines = [
        "| model | layers | kerawidgets.rebuild (s) | clone_model + set_weights (s) | ratio "
        "(median of pairs) | range of pairs | peak heap ours / recipe (MiB) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, n, ours, theirs, ratio, low, high, mo, mt in rows:
        lines.append(f"| {name} | {n} | {ours:.2f} | {theirs:.2f} | {ratio:.2f}x | "
                     f"{low:.2f}-{high:.2f} | {mo:.0f} / {mt:.0f} |")
    table = "\n".join(lines)
    print()
    print(table)
    if args.write:
        header = (
            "\n## Rebuild: one activation swap vs clone_model + set_weights\n\n"
            f"`python benchmarks/bench_rebuild.py --repeat {args.repeat}`; median of "
            f"{args.repeat} alternating runs in one process after a warm-up; keras "
            f"{keras.__version__} ({keras.backend.backend()}), 2 CPU cores. Target: ratio <= 0.5x.\n\n"
        )
        path = os.path.join(os.path.dirname(__file__), "RESULTS.md")
        with open(path, "a") as handle:
            handle.write(header + table + "\n")


if __name__ == "__main__":
    main()
