"""Editor at ImageNet size: Apply, Undo and Redo as ratios of one plain forward pass.

For ResNet50, EfficientNetB0 and MobileNetV2 (`weights=None`) at 224x224 (and
64x64), with a probe of 16 seeded random images, times in one process:

- `model(x)`: one plain forward pass of the probe (warm; the unit of every ratio);
- opening: the first probe of the original (what the first Apply of an editor never
  shown pays once; a shown editor takes it in a background thread while the user picks);
- Apply of an activation edit in the last quarter of the model, with the
  layer selected (the panel filled for it, as after a click) and after its
  preview (the dry-run rebuild the panel runs first, cached for Apply), to
  updated plots, heat and panel; "last quarter" three times: the first
  swappable layer at 75% of the model's layers (the editor's first Apply,
  which also lays its figures out), the first after 75% of its work
  (multiply-adds estimated from the layers' shapes: the start of the last
  quarter, where the recompute alone is a quarter of a pass) and the first
  after 87.5% of its work (the middle of the last quarter);
- the editor's first Apply again, in new editors shown as in a notebook (the original
  probed and the figures laid out ahead, `shown_first_apply`; the median of `REPEAT`);
- Apply of an edit at the first activation (one pass of the edited model), and
  the edited model's own plain `model(x)` (its new activation may cost more or
  less than the one it replaces: the floor of that Apply);
- Undo and Redo (redraw only);
- the same three Applies (75% and 87.5% of the work, the first activation) as a shown
  editor runs them: its preview probes the edited model ahead, in a background thread
  (`EditSession.probe_edit_ahead`), then draws its plots when the kernel is idle
  (`ModelEditor._draw_edit_ahead`), and Apply is pressed once both are done; with the
  time they took (the pause before Apply finds them done);
- each Apply after the editor's first, and Undo and Redo, `REPEAT` times: the
  median, and in brackets the slowest;
- the probe's peak memory (`Probe.peak_bytes`: what it holds plus the values
  alive during a pass) against its budget, at the default budget and at 256 MiB.

Every operation runs as in a kernel: in an asyncio event loop, which gets an idle turn
(untimed) after each, where the editor's deferred garbage collection runs
(`kerawidgets.widgets.idle_collection`).

    TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/bench_editor_224.py [--write]

`--write` appends the table to benchmarks/RESULTS.md (one append). Not a test:
nothing here asserts a time.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "agg")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import gc  # noqa: E402
import platform  # noqa: E402
import statistics as stats  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kerawidgets.edits import SetActivation  # noqa: E402
from kerawidgets.plan import supports_activation  # noqa: E402
from kerawidgets.widgets import ModelEditor, idle_collection  # noqa: E402

IMAGES = 16
MODELS = {
    "ResNet50": keras.applications.ResNet50,
    "EfficientNetB0": keras.applications.EfficientNetB0,
    "MobileNetV2": keras.applications.MobileNetV2,
}


def with_activation(model):
    """Names of the layers whose activation can be swapped, in graph order."""
    def swappable(layer):
        if isinstance(layer, (keras.layers.ReLU, keras.layers.Activation)):
            return True  # MobileNetV2's ReLU(6.0) layers, EfficientNet's Activation layers
        return (supports_activation(layer) and getattr(layer, "activation", None) is not None
                and getattr(layer.activation, "__name__", "") != "linear")

    return [layer.name for layer in model.layers if swappable(layer)]


def work_shares(model):
    """{layer name: share of the model's multiply-adds done up to and including it}."""
    costs = []
    for layer in model.layers:
        out = layer.output.shape if hasattr(layer, "output") else ()
        size = int(np.prod([d for d in out[1:] if d is not None])) if out else 0
        kernel = getattr(layer, "kernel_size", None)
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            size *= int(np.prod(kernel))
        elif kernel is not None:  # a convolution: a kernel window over every input channel
            size *= int(np.prod(kernel)) * int(layer.input.shape[-1])
        elif isinstance(layer, keras.layers.Dense):
            size *= int(layer.input.shape[-1])
        costs.append(size)
    done = np.cumsum(costs) / max(sum(costs), 1)
    return {layer.name: float(d) for layer, d in zip(model.layers, done)}


def forward(model, x):
    """One plain `model(x)`, waited for: JAX dispatches asynchronously and returns before its
    values are computed (the probe reads every output, so it always waits)."""
    out = model(x, training=False)
    if keras.backend.backend() == "jax":
        import jax

        jax.block_until_ready(out)
    return out


def seconds(action):
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def cpu_seconds(action):
    """CPU time of this process (every thread) during `action`: less moved by other load."""
    start = time.process_time()
    action()
    return time.process_time() - start


def timed_apply(editor, edit, ahead=False):
    """Wall time of `editor.apply(edit)`, what the probe recomputed, its CPU time, and with
    `ahead` the time the preview's run ahead took before it (else None)."""
    editor.select(edit.layer)  # clicked: the panel filled for it (and refilled after Apply)
    editor.session.dry_run(edit, None)  # the panel's preview, before Apply is pressed
    guess = None
    if ahead:  # as a shown editor's preview: the edited model probed, then its plots drawn
        # (on the kernel's idle loop), while the user reaches for Apply
        guess = seconds(lambda: (editor.session.probe_edit_ahead(edit, None).join(),
                                 editor._draw_edit_ahead(edit, None)))
    idle_collection.collect_when_idle()  # the kernel idle between those clicks and Apply's
    editor.probe.reset_peak()
    cpu = []
    took = seconds(lambda: cpu.append(cpu_seconds(lambda: editor.apply(edit))))
    return took, editor.compare()["recompute"], cpu[0], guess


#: Each Apply after the editor's first is timed this many times (a different activation
#: each time, undone after): the table gives the median and, in brackets, the slowest.
REPEAT = 3
ACTIVATIONS = ("gelu", "elu", "silu")


def new_editor(model, x, budget):
    """A `ModelEditor` of `model` on `x` with a memory budget of `budget` bytes (None: the
    default)."""
    return ModelEditor(model, x, **({} if budget is None else {"memory_budget": budget}))


async def shown_first_apply(model, x, layer, budget):
    """The first Apply of an editor shown in a notebook: when it is shown it probes the
    original in a background thread, then lays its figures out on the kernel's event loop
    (`ModelEditor._prepare_first_apply`, what `_repr_mimebundle_` runs); the user then picks
    the layer. Wall time of the Apply, the layer selected and previewed as in `timed_apply`."""
    editor = new_editor(model, x, budget)
    thread = editor._prepare_first_apply()
    await asyncio.get_running_loop().run_in_executor(None, thread.join)
    await idle()  # the loop runs the layout the probe's thread scheduled
    took = timed_apply(editor, SetActivation(layer, "gelu"))[0]
    await idle()
    return took


async def idle():
    """The event loop's idle turn after a click, as in a kernel: what it has to do then (the
    garbage collection `kerawidgets.widgets.idle_collection` defers, a layout scheduled
    ahead) runs, untimed."""
    await asyncio.sleep(0)


async def repeated_apply(editor, layer, peaks, x=None):
    """Median wall and CPU time of `REPEAT` Applies at `layer` (each undone), the slowest
    wall time, what the probe recomputed, and with `x` the median time of the edited
    model's own plain forward pass (warm; else None)."""
    walls, cpus, own, kind = [], [], [], None
    for activation in ACTIVATIONS[:REPEAT]:
        wall, kind, cpu, _ = timed_apply(editor, SetActivation(layer, activation))
        await idle()
        peaks.append(editor.probe.peak_bytes)
        if x is not None:
            forward(editor.model, x)  # warm-up
            own.append(seconds(lambda: forward(editor.model, x)))
        editor.undo()
        await idle()
        walls.append(wall)
        cpus.append(cpu)
    return stats.median(walls), max(walls), kind, stats.median(cpus), (
        stats.median(own) if own else None)


async def apply_after_ahead(editor, layer):
    """As a shown editor: median wall time of `REPEAT` Applies at `layer` (each undone), each
    after its preview's run ahead ended (the user took that long to press Apply), the
    slowest, and the median time of the run ahead (from the preview to the summaries held)."""
    walls, guesses = [], []
    for activation in ACTIVATIONS[:REPEAT]:
        wall, _, _, guess = timed_apply(editor, SetActivation(layer, activation), ahead=True)
        await idle()
        editor.undo()
        await idle()
        walls.append(wall)
        guesses.append(guess)
    return stats.median(walls), max(walls), stats.median(guesses)


def measure(name, size, budget):
    """One row, every operation run as in a kernel (`measure_in_loop`)."""
    return asyncio.run(measure_in_loop(name, size, budget))


async def measure_in_loop(name, size, budget):
    gc.collect()  # the earlier rows' editors: their garbage is not this row's to collect
    load = os.getloadavg()[0]
    keras.utils.set_random_seed(0)
    model = MODELS[name](input_shape=(size, size, 3), weights=None)
    x = np.random.default_rng(0).standard_normal((IMAGES, size, size, 3)).astype("float32")
    forward(model, x)  # warm-up
    plain = stats.median(seconds(lambda: forward(model, x)) for _ in range(3))
    plain_cpu = stats.median(cpu_seconds(lambda: forward(model, x)) for _ in range(3))
    editor = new_editor(model, x, budget)
    editor.probe.reset_peak()
    opening = seconds(lambda: editor.probe.summaries(model))
    names = with_activation(model)
    quarter = [n for n in names if model.layers.index(model.get_layer(n)) >= 0.75 * len(model.layers)]
    shares = work_shares(model)
    by_work = [n for n in names if shares[n] >= 0.75]
    middle = [n for n in names if shares[n] >= 0.875]
    late, late_kind, late_cpu, _ = timed_apply(editor, SetActivation(quarter[0], "gelu"))
    await idle()
    peaks = [editor.probe.peak_bytes]
    undos, redos = [], []
    for _ in range(REPEAT):
        undos.append(seconds(editor.undo))
        await idle()
        redos.append(seconds(editor.redo))
        await idle()
    editor.undo()
    await idle()
    work, work_max, work_kind, work_cpu, _ = await repeated_apply(editor, by_work[0], peaks)
    mid, mid_max, mid_kind, mid_cpu, _ = await repeated_apply(editor, middle[0], peaks)
    first, first_max, first_kind, first_cpu, edited = await repeated_apply(
        editor, names[0], peaks, x)
    ahead = {key: await apply_after_ahead(editor, layer) for key, layer in
             (("work", by_work[0]), ("mid", middle[0]), ("first", names[0]))}
    # Last: the probes of these new editors take their room from this editor's checkpoints
    # (one budget for every probe alive, `Probe._make_room`), as a cell run again would.
    shown = stats.median([await shown_first_apply(model, x, quarter[0], budget)
                          for _ in range(REPEAT)])
    return {
        "model": f"{name} {size}x{size}", "layers": len(model.layers),
        "budget": editor.probe.memory_budget, "forward": plain, "opening": opening,
        "late_layer": quarter[0], "late": late, "late_kind": late_kind,
        "late_share": 1 - shares[quarter[0]], "shown": shown, "work_layer": by_work[0], "work": work,
        "work_max": work_max, "work_kind": work_kind, "work_share": 1 - shares[by_work[0]],
        "mid_layer": middle[0], "mid": mid, "mid_max": mid_max, "mid_kind": mid_kind,
        "mid_cpu": mid_cpu, "mid_share": 1 - shares[middle[0]],
        "first_layer": names[0], "first": first, "first_max": first_max,
        "first_kind": first_kind, "first_edited": edited,
        "undo": stats.median(undos), "redo": stats.median(redos),
        "undo_max": max(undos + redos), "peak": max(peaks), "load": load,
        "forward_cpu": plain_cpu, "late_cpu": late_cpu, "work_cpu": work_cpu,
        "first_cpu": first_cpu, "ahead": ahead,
    }


def row(r) -> str:
    f, c = r["forward"], r["forward_cpu"]
    return (f"| {r['model']} | {r['budget'] / 2**20:.0f} | {f:.2f} | {r['opening'] / f:.2f}x | "
            f"`{r['late_layer']}` {r['late'] / f:.2f}x, CPU {r['late_cpu'] / c:.2f}x "
            f"({r['late_kind']}; {r['late_share']:.0%} of the work after it) | "
            f"{r['shown'] / f:.2f}x | "
            f"`{r['work_layer']}` {r['work'] / f:.2f}x [{r['work_max'] / f:.2f}x], "
            f"CPU {r['work_cpu'] / c:.2f}x ({r['work_kind']}; {r['work_share']:.0%} after it) | "
            f"`{r['mid_layer']}` {r['mid'] / f:.2f}x [{r['mid_max'] / f:.2f}x], "
            f"CPU {r['mid_cpu'] / c:.2f}x ({r['mid_kind']}; {r['mid_share']:.0%} after it) | "
            f"`{r['first_layer']}` {r['first'] / f:.2f}x [{r['first_max'] / f:.2f}x], "
            f"CPU {r['first_cpu'] / c:.2f}x ({r['first_kind']}; the edited model's own "
            f"`model(x)` {r['first_edited'] / f:.2f}x) | "
            f"{r['undo'] / f:.3f}x / {r['redo'] / f:.3f}x [{r['undo_max'] / f:.3f}x] | "
            f"{r['peak'] / 2**20:.0f} | {r['load']:.1f} |")


def ahead_row(r) -> str:
    f = r["forward"]
    cells = []
    for key in ("work", "mid", "first"):
        wall, slowest, guess = r["ahead"][key]
        cells.append(f"`{r[key + '_layer']}` {wall / f:.2f}x [{slowest / f:.2f}x] "
                     f"(run ahead {guess / f:.2f}x)")
    return f"| {r['model']} | {r['budget'] / 2**20:.0f} | {f:.2f} | " + " | ".join(cells) + " |"


AHEAD_HEADER = [
    "| model | budget (MiB) | `model(x)` (s) "
    "| Apply at 75% of the work, probed ahead (target <= 0.25x) "
    "| Apply at 87.5% of the work, probed ahead (target <= 0.25x) "
    "| Apply, first activation, probed ahead (target <= 1.2x) |",
    "|---|---:|---:|---|---|---|",
]

HEADER = [
    "| model | budget (MiB) | `model(x)` (s) | first probe "
    "| Apply, last quarter of layers (the editor's first Apply; target <= 0.25x) "
    "| the same, the editor shown (probe and figures ahead) "
    "| Apply at 75% of the work (target <= 0.25x) "
    "| Apply at 87.5% of the work (target <= 0.25x) "
    "| Apply, first activation (target <= 1.2x) | Undo / Redo (target <= 0.1x) "
    "| peak probe memory (MiB) | load |",
    "|---|---:|---:|---:|---|---:|---|---|---|---|---:|---:|",
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="append to benchmarks/RESULTS.md")
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--sizes", nargs="*", default=["224", "224/256", "64"],
                        help="rows: size, or size/budget in MiB")
    args = parser.parse_args()
    rows = []
    for name in args.models:
        for spec in args.sizes:
            size, _, mib = spec.partition("/")
            size, budget = int(size), (int(mib) * 2**20 if mib else None)
            rows.append(measure(name, size, budget))
            print(row(rows[-1]), flush=True)
            print(ahead_row(rows[-1]), flush=True)
    text = "\n".join(HEADER + [row(r) for r in rows])
    ahead_text = "\n".join(AHEAD_HEADER + [ahead_row(r) for r in rows])
    print()
    print(text)
    print()
    print(ahead_text)
    if args.write:
        section = (
            "\n## Editor at 224x224: Apply, Undo, Redo against one forward pass\n\n"
            f"`.venv/bin/python benchmarks/bench_editor_224.py --write`: {IMAGES} seeded random "
            f"images, `weights=None`; keras {keras.__version__} ({keras.backend.backend()}), "
            f"{platform.machine()}, {os.cpu_count()} shared cores. Every time is divided by one "
            "plain `model(x)` of the same probe in the same run (median of 3, warm); *CPU*: the "
            "same ratio of this process's CPU time (all threads), which other load moves less. *Load*: the "
            "machine's 1-minute load average when the row started (2 cores). *First "
            "probe*: the original's summaries, paid once when the editor first plots (by an "
            "editor never shown: a shown one takes them in a background thread, then lays "
            "its figures out, while the user picks; *shown*: that editor's first Apply, the "
            f"median of {REPEAT} editors). "
            "*Apply*: "
            "from `apply()`, with the layer selected and after the preview's cached dry run, "
            "to updated plots, heat and panel; after the editor's first Apply, the median of "
            f"{REPEAT} (each undone) and [the slowest]; Undo / Redo likewise. Each operation runs in "
            "an asyncio event loop, as in a kernel, which gets an idle turn (untimed) after it. *Peak*: `Probe.peak_bytes` during the run (held + alive in a pass; the probe "
            "data itself not counted). Budget 1024 MiB is the default.\n\n" + text + "\n\n"
            "*Probed ahead*: the same Applies in an editor shown in a notebook, whose preview "
            "probes the edited model in a background thread (`EditSession.probe_edit_ahead`) "
            "and then draws its plots on the kernel's idle loop, while the user reaches for "
            "Apply; each Apply pressed after both. *Run ahead*: from the preview to the "
            "summaries held and the plots drawn, the pause after which Apply finds them "
            "(pressed sooner, it waits for the rest of the run, its bar following).\n\n"
            + ahead_text + "\n")
        with open(Path(__file__).resolve().parent / "RESULTS.md", "a", encoding="utf-8") as out:
            out.write(section)


if __name__ == "__main__":
    main()
