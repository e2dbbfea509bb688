"""The editor's two figures per Apply: fresh figures (before `FigureCache`) against kept ones.

Builds a real editor on ResNet50 (`weights=None`) at 224x224 with 16 seeded
random images, applies two activation edits, and takes the comparisons of the
three steps the plots can show (against the original, against the last step,
after an undo): 177 layers on the depth plot, LayerSummary histograms, real
agreement numbers. Then, for each display the issue names (900 and 468 CSS px,
pixel ratio 1 and 2, light and dark), it measures the CPU time
(`time.process_time`) of drawing both figures of one Apply to PNG bytes, two ways,
in alternating pairs in this one process:

- *fresh*: what the editor did before: `session.figures_of` (new figures), then each
  drawn by Agg and encoded by Pillow at compress level 3 (the old `figure_to_png`);
- *kept*: `plots.FigureCache.png` for both plots, the steps in turn (each call has
  other data than the one before, as successive Applies do). The three steps' texts
  come back every third call, so their stamps (`plots._StampedText`) are reused; a
  real Apply's new numbers (the legends' means and stds, the table) are rendered once
  each: a few ms more per Apply (about 3 ms per new legend label at a pixel ratio of
  1, measured with new numbers on every call).

    TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/bench_plots.py [--pairs 5] [--write]

`--write` appends the table to benchmarks/RESULTS.md. Not a test: nothing here
asserts a time.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "agg")

import argparse  # noqa: E402
import datetime  # noqa: E402
import io  # noqa: E402
import platform  # noqa: E402
import statistics as stats  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402
import PIL.Image  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402

from kerawidgets import plots  # noqa: E402
from kerawidgets.edits import SetActivation  # noqa: E402
from kerawidgets.session import figure_inputs, figures_of  # noqa: E402
from kerawidgets.widgets import ModelEditor  # noqa: E402

DISPLAYS = [plots.Display(width, ratio, dark)
            for width in (900, 468) for ratio in (1.0, 2.0) for dark in (False, True)]


def resnet50_comparisons():
    """[(comparison, y)] of three steps of a real ResNet50 224x224 editor."""
    keras.utils.set_random_seed(0)
    model = keras.applications.ResNet50(weights=None, input_shape=(224, 224, 3))
    x = np.random.default_rng(0).random((16, 224, 224, 3)).astype("float32")
    editor = ModelEditor(model, x=x)
    editor.apply(SetActivation("conv4_block6_out", "gelu"))
    editor.apply(SetActivation("conv5_block1_out", "gelu"))
    session = editor.session
    steps = []
    for against in ("original", "previous"):
        session.show(against=against)
        steps.append(session.comparison)
    editor.undo()
    steps.append(session.comparison)
    return [(step, editor.probe.y) for step in steps]


def old_png(fig, pixel_ratio) -> bytes:
    """The PNG the editor made before `FigureCache`: Agg, then Pillow at compress level 3."""
    fig.dpi = plots.DPI * pixel_ratio
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    buffer = io.BytesIO()
    PIL.Image.fromarray(rgba[..., :3]).save(buffer, format="png", compress_level=3)
    return buffer.getvalue()


def cpu(action, *args) -> float:
    start = time.process_time()
    action(*args)
    return time.process_time() - start


def measure(steps, display, pairs):
    """Median CPU seconds of both figures of one Apply: (fresh, kept), and their ranges."""
    cache = plots.FigureCache()
    names = {"comparison": display, "depth": display}

    def fresh(step):
        for figure in figures_of(*step, names).values():
            old_png(figure, display.pixel_ratio)

    def kept(step):
        inputs = figure_inputs(*step)
        for name in names:
            cache.png(name, display, **inputs[name])

    kept(steps[-1])  # the first Apply at a display lays its figures out: paid once
    fresh_times, kept_times = [], []
    for i in range(pairs):
        step = steps[i % len(steps)]
        fresh_times.append(cpu(fresh, step))
        kept_times.append(cpu(kept, step))
    cache = plots.FigureCache()
    first = cpu(kept, steps[0])  # a new cache: the figures laid out, then drawn
    return fresh_times, kept_times, first


def row(display, fresh, kept, first) -> str:
    return (f"| {display.width} | {display.pixel_ratio:g} | {'dark' if display.dark else 'light'} "
            f"| {stats.median(fresh) * 1000:.0f} ({min(fresh) * 1000:.0f}-{max(fresh) * 1000:.0f}) "
            f"| {stats.median(kept) * 1000:.0f} ({min(kept) * 1000:.0f}-{max(kept) * 1000:.0f}) "
            f"| {stats.median(kept) / stats.median(fresh):.2f} | {first * 1000:.0f} |")


HEADER = ["| width (CSS px) | pixel ratio | theme | fresh, ms CPU (range) | kept, ms CPU (range) "
          "| kept / fresh | first draw at a display, kept, ms |",
          "|---:|---:|---|---:|---:|---:|---:|"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=6, help="alternating fresh/kept pairs per display")
    parser.add_argument("--write", action="store_true", help="append to benchmarks/RESULTS.md")
    args = parser.parse_args()
    steps = resnet50_comparisons()
    load = os.getloadavg()
    rows = []
    for display in DISPLAYS:
        rows.append(row(display, *measure(steps, display, args.pairs)))
        print(rows[-1], flush=True)
    load_after = os.getloadavg()
    text = "\n".join(HEADER + rows)
    print(f"\nload average (1 min) {load[0]:.1f} at the start, {load_after[0]:.1f} at the end")
    if args.write:
        section = (
            f"\n## The editor's two figures per Apply, kept between Applies ({datetime.date.today()})\n\n"
            f"`.venv/bin/python benchmarks/bench_plots.py --pairs {args.pairs} --write`: the "
            "comparison and depth figures of one Apply drawn to PNG, from the comparisons of a "
            f"ResNet50 224x224 editor ({len(steps[0][0].order)} layers, 16 images), matplotlib "
            f"{matplotlib.__version__}, {platform.machine()}, {os.cpu_count()} shared cores; "
            f"load average {load[0]:.1f} at the start, {load_after[0]:.1f} at the end. "
            "*Fresh*: new figures, Agg, Pillow (the editor before `FigureCache`); *kept*: "
            "`FigureCache.png`, each call with another step's data; alternating pairs, "
            "median and range of process CPU time.\n\n" + text + "\n")
        with open(Path(__file__).resolve().parent / "RESULTS.md", "a", encoding="utf-8") as out:
            out.write(section)


if __name__ == "__main__":
    main()
