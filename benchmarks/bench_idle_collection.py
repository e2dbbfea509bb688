"""Editor operations in a kernel's event loop: garbage collection as Python does it, or
deferred to the loop's idle time (`kerawidgets.widgets.idle_collection`).

In one process, an asyncio loop stands in for the kernel's: each operation (Apply at a
layer in the last eighth of the work, Undo, Redo, selecting a layer, with the loop given
an idle turn after each, as between two clicks) is timed from its call to its return.
Blocks of `--ops` operations alternate between the two modes (ABBA), on MobileNetV2 or
another `keras.applications` model at 224x224 (`weights=None`), 16 seeded images.
Reported per mode and kind of operation: the median and the slowest, as ratios of one
plain `model(x)`; the full collections that ran during operations; and the idle time
spent collecting after them.

    TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/bench_idle_collection.py [--write]

Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "agg")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import gc  # noqa: E402
import platform  # noqa: E402
import statistics as stats  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
from bench_editor_224 import MODELS, forward, seconds, with_activation, work_shares  # noqa: E402

from kerawidgets.edits import SetActivation  # noqa: E402
from kerawidgets.widgets import ModelEditor, idle_collection  # noqa: E402

ACTIVATIONS = ("gelu", "elu", "silu")
KINDS = ("Apply", "Undo", "Redo", "click")


class FullCollections:
    """Counts Python's full collections that start while `during` is set."""

    def __init__(self):
        self.during, self.count = False, 0
        gc.callbacks.append(self)

    def __call__(self, phase, info):
        if phase == "start" and info["generation"] == 2 and self.during:
            self.count += 1


def operations(editor, layers):
    """The operations of one round: an Apply in the last eighth, Undo, Redo, Undo, and a
    click on another layer."""
    layer, other = layers
    for activation in ACTIVATIONS:
        yield "Apply", lambda a=activation: editor.apply(SetActivation(layer, a))
        yield "Undo", editor.undo
        yield "Redo", editor.redo
        yield "Undo", editor.undo
        yield "click", lambda: editor.select(other)
        yield "click", lambda: editor.select(layer)


async def block(editor, layers, deferred, full):
    """Times of one block of operations (and the idle time spent after them)."""
    idle_collection.deferred = deferred
    times, idle = [], 0.0
    for kind, action in operations(editor, layers):
        full.during = True
        start = time.perf_counter()
        action()
        times.append((kind, time.perf_counter() - start))
        full.during = False
        start = time.perf_counter()
        await asyncio.sleep(0)  # the loop's idle turn: the deferred collection, if any
        idle += time.perf_counter() - start
    return times, idle


def measure(name, rounds):
    keras.utils.set_random_seed(0)
    model = MODELS[name](input_shape=(224, 224, 3), weights=None)
    x = np.random.default_rng(0).standard_normal((16, 224, 224, 3)).astype("float32")
    forward(model, x)  # warm-up
    plain = stats.median(seconds(lambda: forward(model, x)) for _ in range(3))
    names, shares = with_activation(model), work_shares(model)
    layers = ([n for n in names if shares[n] >= 0.875][0], names[len(names) // 2])
    real = idle_collection.deferred
    modes = {"as Python does": contextlib.nullcontext, "deferred to idle": real}
    full = FullCollections()
    results = {mode: {"times": [], "idle": 0.0, "full": 0} for mode in modes}

    async def run():
        editor = ModelEditor(model, x)
        editor.probe.summaries(model)
        editor.select(layers[0])
        await block(editor, layers, real, full)  # warm-up: every model and figure made once
        order = list(modes) + list(modes)[::-1]
        for _ in range(rounds):
            for mode in order:
                before = full.count
                times, idle = await block(editor, layers, modes[mode], full)
                results[mode]["times"] += times
                results[mode]["idle"] += idle
                results[mode]["full"] += full.count - before
        idle_collection.deferred = real

    asyncio.run(run())
    return {"model": f"{name} 224x224", "forward": plain, "layers": layers, "results": results}


def table(rows) -> str:
    out = ["| model | `model(x)` (s) | garbage collection | operations | "
           + " | ".join(f"{k}: median / slowest" for k in KINDS)
           + " | full collections during operations | idle time collecting after them "
           "(per operation) |",
           "|---|---:|---|---:|" + "---:|" * len(KINDS) + "---:|---:|"]
    for r in rows:
        f = r["forward"]
        for mode, m in r["results"].items():
            kinds = {}
            for kind, took in m["times"]:
                kinds.setdefault(kind, []).append(took)
            cells = " | ".join(f"{stats.median(kinds[k]) / f:.3f}x / {max(kinds[k]) / f:.3f}x"
                               for k in KINDS)
            out.append(f"| {r['model']} | {f:.2f} | {mode} | {len(m['times'])} | {cells} "
                       f"| {m['full']} | {1000 * m['idle'] / len(m['times']):.1f} ms |")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["MobileNetV2"], choices=list(MODELS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    rows = [measure(name, args.rounds) for name in args.models]
    text = table(rows)
    print(text)
    for r in rows:
        print(f"{r['model']}: Apply at {r['layers'][0]}, other click {r['layers'][1]}")
    if args.write:
        header = (f"\n\n### bench_idle_collection.py ({time.strftime('%Y-%m-%d')}, "
                  f"{platform.processor() or platform.machine()}, keras {keras.__version__} "
                  f"{keras.backend.backend()})\n\n")
        with open(Path(__file__).with_name("RESULTS.md"), "a") as f:
            f.write(header + text + "\n")


if __name__ == "__main__":
    main()
