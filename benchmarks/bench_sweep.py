"""Sweep benchmark: 8 activations of one layer near ResNet50's output, compared on a probe.

`kerawidgets.sweep` (copies the model once, runs the layers upstream of the
edited layer once, rebuilds and runs only the downstream part per candidate)
against the obvious way: 8 independent `rebuild`s of the whole model, each
followed by a full forward pass of the probe (an eager call, the cheaper of
the two obvious passes; `predict`, which traces a function per new model, is
timed too). ResNet50 at 64x64, `weights=None`, probe of 16; the layer is
`conv5_block3_out` (the last ReLU, followed by pooling and the classifier).
Alternating runs in one process after a warm-up; medians.

    TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/bench_sweep.py [--repeat 3] [--write]

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

import kerawidgets  # noqa: E402
from kerawidgets.edits import SetActivation  # noqa: E402
from kerawidgets.statistics import agreement  # noqa: E402

LAYER = "conv5_block3_out"
ACTIVATIONS = ["relu", "gelu", "tanh", "sigmoid", "swish", "elu", "selu", "softplus"]
BATCH = 16


def obvious(model, x, use_predict=False):
    """8 whole rebuilds, each followed by a full forward pass; the model outputs."""
    outputs = []
    for name in ACTIVATIONS:
        new = kerawidgets.rebuild(model, [SetActivation(LAYER, name)]).model
        if use_predict:
            outputs.append(new.predict(x, batch_size=BATCH, verbose=0))
        else:
            outputs.append(np.asarray(new(x, training=False)))
    return outputs


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="append to benchmarks/RESULTS.md")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    model = keras.applications.ResNet50(input_shape=(64, 64, 3), weights=None, classes=10)
    x = np.random.default_rng(0).standard_normal((BATCH, 64, 64, 3)).astype("float32")
    original = np.asarray(model(x, training=False))
    kerawidgets.sweep(model, LAYER, ACTIVATIONS[:1], x=x, batch_size=BATCH)  # warm-up
    obvious(model, x[:2])
    sweep_s, eager_s, predict_s = [], [], []
    for _ in range(args.repeat):
        t, result = timed(lambda: kerawidgets.sweep(model, LAYER, ACTIVATIONS, x=x,
                                                    batch_size=BATCH))
        sweep_s.append(t)
        t, outputs = timed(lambda: obvious(model, x))
        eager_s.append(t)
        t, _ = timed(lambda: obvious(model, x, use_predict=True))
        predict_s.append(t)
        print(f"sweep {sweep_s[-1]:.2f} s, rebuild + call {eager_s[-1]:.2f} s, "
              f"rebuild + predict {predict_s[-1]:.2f} s", flush=True)
    # Same numbers both ways: max |diff| of the model output per candidate.
    worst = max(abs(row.max_abs_diff - agreement(original, out)["max_abs_diff"])
                for row, out in zip(result.rows, outputs))
    routes = sorted({row.route for row in result.rows})
    s, e, p = stats.median(sweep_s), stats.median(eager_s), stats.median(predict_s)
    text = (
        "| model | layer | candidates | sweep (s) | 8 x (rebuild + call) (s) | speed-up | "
        "8 x (rebuild + predict) (s) | speed-up | max diff of max abs diff |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|\n"
        f"| ResNet50 64x64 | {LAYER} | {len(ACTIVATIONS)} | {s:.2f} | {e:.2f} | {e / s:.1f}x | "
        f"{p:.2f} | {p / s:.1f}x | {worst:.1e} |")
    print()
    print(text)
    print(f"routes: {routes}")
    if args.write:
        section = (
            "\n## Sweep: 8 activations of one layer vs 8 rebuilds + forward passes\n\n"
            f"`.venv/bin/python benchmarks/bench_sweep.py --repeat {args.repeat} --write`: "
            f"`kerawidgets.sweep(model, {LAYER!r}, {ACTIVATIONS})` on a probe of {BATCH} "
            "(copy the model once, run the layers upstream of the cut once, rebuild and run "
            "only the downstream part per candidate, statistics included) against 8 independent "
            "`rebuild`s of the whole model each followed by a full forward pass (an eager call; "
            "`predict` also traces a function per model). Medians of "
            f"{args.repeat} alternating runs after a warm-up; keras {keras.__version__} "
            f"({keras.backend.backend()}), {platform.machine()}, {os.cpu_count()} shared cores. "
            "The last column compares the sweep's max |diff| of the model output with the "
            "obvious way's, per candidate. Target: at least 5x.\n\n" + text + "\n")
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(section)


if __name__ == "__main__":
    main()
