"""Summaries on a worker thread or in the caller: paired A/B in one process.

For ResNet50, EfficientNetB0 and MobileNetV2 (`weights=None`) at 224x224 with
16 seeded random images (the setup of `bench_editor_224.py`), alternates
`probe_run.BACKGROUND` on and off (ABBA within each round) and times, wall
clock and this process's CPU time (every thread):

- one plain `model(x)` (warm; the unit of every ratio, once per round);
- the first probe (`Probe(model, x).summaries(model)`: one full pass);
- Apply at the first activation in a `ModelEditor` (after its preview's
  cached dry run, to updated plots, heat and panel), then Undo.

    TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/bench_probe_overlap.py [--rounds 4]

Prints one row per model and mode: medians over the rounds, the median of the
per-round paired ratios (worker / caller), and the load average seen. Not a
test: nothing here asserts a time.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "agg")

import argparse  # noqa: E402
import statistics as stats  # noqa: E402
import time  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
from bench_editor_224 import IMAGES, MODELS, timed_apply, with_activation  # noqa: E402

from kerawidgets import probe_run  # noqa: E402
from kerawidgets.edits import SetActivation  # noqa: E402
from kerawidgets.probe import Probe  # noqa: E402
from kerawidgets.widgets import ModelEditor  # noqa: E402


def clocked(action):
    """(wall seconds, process CPU seconds) of `action()`."""
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(name, rounds, size=224):
    keras.utils.set_random_seed(0)
    model = MODELS[name](input_shape=(size, size, 3), weights=None)
    x = np.random.default_rng(0).standard_normal((IMAGES, size, size, 3)).astype("float32")
    model(x, training=False)  # warm-up
    editor = ModelEditor(model, x)
    editor.probe.summaries(model)
    edit = SetActivation(with_activation(model)[0], "gelu")
    timed_apply(editor, edit)  # warm-up of the editor's path
    editor.undo()
    times: dict = {(part, mode): [] for part in ("probe", "apply") for mode in (True, False)}
    forward, loads = [], []
    for r in range(rounds):
        loads.append(os.getloadavg()[0])
        forward.append(clocked(lambda: model(x, training=False)))
        for mode in (True, False, False, True) if r % 2 == 0 else (False, True, True, False):
            probe_run.BACKGROUND = mode
            times["probe", mode].append(clocked(lambda: Probe(model, x).summaries(model)))
            wall, _, cpu = timed_apply(editor, edit)
            times["apply", mode].append((wall, cpu))
            editor.undo()
    probe_run.BACKGROUND = True
    return {"forward": forward, "times": times, "loads": loads, "layer": edit.layer}


def pairs(on, off, i):
    """Ratios worker / caller of measure `i` (0 wall, 1 CPU), runs of the same round paired."""
    return [a[i] / b[i] for a, b in zip(on, off)]


def rows(name, result) -> list[str]:
    wall = stats.median(f[0] for f in result["forward"])
    cpu = stats.median(f[1] for f in result["forward"])
    out = []
    for part, label in (("probe", "first probe"), ("apply", f"Apply `{result['layer']}`")):
        on, off = result["times"][part, True], result["times"][part, False]
        cells = []
        for values in (on, off):
            cells.append(f"{stats.median(v[0] for v in values) / wall:.2f}x, CPU "
                         f"{stats.median(v[1] for v in values) / cpu:.2f}x")
        out.append(
            f"| {name} | {label} | {wall:.2f} s / {cpu:.2f} s | {cells[1]} | {cells[0]} | "
            f"{stats.median(pairs(on, off, 0)):.2f} ({min(pairs(on, off, 0)):.2f}-"
            f"{max(pairs(on, off, 0)):.2f}) | {stats.median(pairs(on, off, 1)):.2f} | "
            f"{min(result['loads']):.1f}-{max(result['loads']):.1f} |")
    return out


HEADER = [
    "| model | step | `model(x)` wall / CPU | in the caller (wall, CPU) | on the worker "
    "(wall, CPU) | paired wall ratio worker / caller (range) | paired CPU ratio | load |",
    "|---|---|---:|---:|---:|---:|---:|---:|",
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    lines = list(HEADER)
    for name in args.models:
        lines += rows(f"{name} 224x224", measure(name, args.rounds))
        print("\n".join(lines[-2:]), flush=True)
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
