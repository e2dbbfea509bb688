"""The editor's own cost per Apply, Undo and Redo at 224x224: what the widgets do, not the probe.

For ResNet50, EfficientNetB0 and MobileNetV2 (`weights=None`) at 224x224 with
16 seeded random images, the editor is driven as a user drives it: the layer
is selected (so the panel is filled for it) and previewed (the dry run, cached
for Apply) before each Apply, then Undo and Redo. For each operation, the CPU
time of this process (`time.process_time`, every thread) is split by what the
session tells the editor (`SessionObserver`: `busy` (progress), `moved` (the
graph of the new model), `compared` (plots, heat, switch), `settled` (the
panel refilled for the selection)); the rest is the session's own work (the
rebuild, the probe). Each time is also a ratio of one plain `model(x)` (CPU,
warm, best of 3). The widget messages the operation sends to the page
(`Widget._send`, as a kernel would send them) are counted.

    TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/bench_editor_ui.py [--models ResNet50]

Not a test: nothing here asserts a time. The probe's worker thread is off
(`probe_run.BACKGROUND = False`) so each operation's CPU time is its own.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "agg")

import argparse  # noqa: E402
import collections  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import ipywidgets  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from kerawidgets import probe_run  # noqa: E402
from kerawidgets.edits import SetActivation  # noqa: E402
from kerawidgets.widgets import ModelEditor  # noqa: E402
from kerawidgets.widgets import editor as editor_module  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_editor_224 import IMAGES, MODELS, with_activation, work_shares  # noqa: E402

EVENTS = ("busy", "moved", "compared", "settled")


class Meter:
    """CPU time per observer event and widget messages sent, since `reset`."""

    def __init__(self):
        self.cpu: collections.Counter = collections.Counter()
        self.messages = 0
        for event in EVENTS:
            self._time(event)
        real_send = ipywidgets.Widget._send

        def counted(widget, msg, buffers=None):
            self.messages += 1
            return real_send(widget, msg, buffers=buffers)

        ipywidgets.Widget._send = counted

    def _time(self, event):
        real = getattr(editor_module._Binding, event)

        def timed(binding, *args, **kwargs):
            start = time.process_time()
            try:
                return real(binding, *args, **kwargs)
            finally:
                self.cpu[event] += time.process_time() - start

        setattr(editor_module._Binding, event, timed)

    def reset(self):
        self.cpu.clear()
        self.messages = 0


def forward_cpu(model, x) -> float:
    def once():
        start = time.process_time()
        model(x, training=False)
        return time.process_time() - start

    return min(once() for _ in range(3))


def measure(name, meter):
    keras.utils.set_random_seed(0)
    model = MODELS[name](input_shape=(224, 224, 3), weights=None)
    x = np.random.default_rng(0).standard_normal((IMAGES, 224, 224, 3)).astype("float32")
    model(x, training=False)
    unit = forward_cpu(model, x)
    editor = ModelEditor(model, x)
    editor.probe.summaries(model)
    names = with_activation(model)
    shares = work_shares(model)
    late = [n for n in names if shares[n] >= 0.75]
    rows = []

    def timed(label, action):
        meter.reset()
        start = time.process_time()
        action()
        total = time.process_time() - start
        rows.append((label, total / unit, sum(meter.cpu.values()) / unit,
                     {e: meter.cpu[e] / unit for e in EVENTS}, meter.messages))

    for i, layer in enumerate([late[0], late[1], names[0]]):
        editor.select(layer)  # the panel filled for it, as after a click
        edit = SetActivation(layer, "gelu")
        editor.session.dry_run(edit, None)  # the preview's dry run, before Apply
        label = "first activation" if layer == names[0] else f"last quarter #{i + 1}"
        timed(f"Apply, {label}", lambda edit=edit: editor.apply(edit))
        timed("Undo", editor.undo)
        timed("Redo", editor.redo)
        editor.undo()
    return unit, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    args = parser.parse_args()
    probe_run.BACKGROUND = False
    meter = Meter()
    for name in args.models:
        unit, rows = measure(name, meter)
        print(f"\n{name} 224x224, {IMAGES} images: model(x) CPU {unit:.3f} s; "
              "ratios of it (CPU)")
        print("| operation | total | editor's own | " + " | ".join(EVENTS) + " | messages |")
        print("|---|---:|---:|" + "---:|" * len(EVENTS) + "---:|")
        for label, total, own, events, messages in rows:
            print(f"| {label} | {total:.3f}x | {own:.3f}x | "
                  + " | ".join(f"{events[e]:.3f}x" for e in EVENTS) + f" | {messages} |")


if __name__ == "__main__":
    main()
