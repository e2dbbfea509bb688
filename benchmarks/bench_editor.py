"""Editor benchmark: from Apply to the updated plot, and incremental vs full recompute.

For a small CNN trained on scikit-learn's digits, MobileNetV2 (alpha 0.35,
96x96, weights=None) and ResNet50 (64x64, weights=None), with a probe batch of
16, times `ModelEditor.apply` of an edit near the output (the last Dense
layer's activation -> sigmoid): rebuild (the preview's dry run, then reused),
probe, statistics, both PNG figures, graph update. Then the same Apply with the
probe forced to a full pass over the edited model instead of the incremental
recompute downstream of the edit.

    TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/bench_editor.py [--write]

`--write` appends the table to benchmarks/RESULTS.md (one append).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "agg")

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics as stats  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_probe import BATCH, digits_cnn, mobilenet  # noqa: E402

from kerawidgets.edits import SetActivation  # noqa: E402
from kerawidgets.widgets import ModelEditor  # noqa: E402

REPEATS = 3


def resnet():
    model = keras.applications.ResNet50(input_shape=(64, 64, 3), weights=None, classes=10)
    return model, np.random.default_rng(0).standard_normal((BATCH, 64, 64, 3)).astype("float32")


def last_dense(model):
    return [layer.name for layer in model.layers if isinstance(layer, keras.layers.Dense)][-1]


def time_apply(editor, edit, full):
    probe = editor.probe
    real = probe.summaries_after_edit
    if full:
        probe.summaries_after_edit = (
            lambda old, new, changed, progress=None: probe.summaries(new, progress))
    try:
        start = time.perf_counter()
        editor.apply(edit)
        total = time.perf_counter() - start
    finally:
        probe.summaries_after_edit = real
    run = editor.compare()["recompute"]
    editor.undo()
    return total, run


def measure(name, make):
    model, x = make()
    keras.utils.set_random_seed(0)
    editor = ModelEditor(model, x)
    editor.probe.summaries(model)  # the original's summaries are held once the editor has plotted
    edit = SetActivation(last_dense(model), "sigmoid")
    time_apply(editor, edit, full=False)  # warm-up: traces functions once
    rebuild_times, inc, full = [], [], []
    for _ in range(REPEATS):
        start = time.perf_counter()
        editor.session.dry_run(edit, None)  # what the preview does
        rebuild_times.append(time.perf_counter() - start)
        editor.session._preview.clear()
        t, run = time_apply(editor, edit, full=False)
        assert run == "incremental", run
        inc.append(t)
        t, run = time_apply(editor, edit, full=True)
        assert run == "full", run
        full.append(t)
    calls = len(editor.view.graph.nodes)
    inc_m, full_m, rb = stats.median(inc), stats.median(full), stats.median(rebuild_times)
    return (name, calls, rb, inc_m, full_m, full_m / inc_m,
            (full_m - rb) / max(inc_m - rb, 1e-9))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    rows = [measure("digits CNN (trained, 8x8)", digits_cnn),
            measure("MobileNetV2 a=0.35 96x96", mobilenet),
            measure("ResNet50 64x64", resnet)]
    lines = [
        "",
        "## Editor: Apply to updated plot",
        "",
        f"`.venv/bin/python benchmarks/bench_editor.py --write`: `ModelEditor.apply` of an edit "
        "near the output (last Dense activation -> sigmoid), probe batch of 16, median of "
        f"{REPEATS}; keras {keras.__version__} ({keras.backend.backend()}), {platform.machine()}, "
        "2 shared cores. *Apply* is everything from the click to the updated panel: rebuild, "
        "probe, statistics, both PNG figures (comparison + depth summary), graph heat and "
        "marks. *Rebuild* is the dry run alone (the preview runs it before Apply, and Apply "
        "reuses it, so a previewed Apply is about *Apply - rebuild*). *Full* forces the probe "
        "to run the whole edited model instead of only the calls downstream of the edit.",
        "",
        "| model | graph nodes | rebuild (s) | Apply, incremental (s) | Apply, full recompute (s) "
        "| Apply speed-up | speed-up after the rebuild |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, calls, rb, inc, full, speed, after in rows:
        lines.append(f"| {name} | {calls} | {rb:.3f} | {inc:.3f} | {full:.3f} | {speed:.1f}x "
                     f"| {after:.1f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        with open(Path(__file__).resolve().parent / "RESULTS.md", "a", encoding="utf-8") as out:
            out.write(text)


if __name__ == "__main__":
    main()
