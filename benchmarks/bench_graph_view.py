"""Time from display to first painted GraphView in headless Chromium (not a test).

Starts its own JupyterLab (127.0.0.1, no token) with the fixtures of
``tests/ui/conftest.py``, builds each model once in the kernel, then for each
model runs a cell ``GraphView(model)`` and measures the wall time from
pressing Shift+Enter to the widget reporting its first painted frame. The
kernel-side part (graph + layout + scene) is timed separately. Where pydot and
Graphviz are available, `keras.utils.plot_model` is timed for comparison.

    .venv/bin/python benchmarks/bench_graph_view.py [--repeat 3] [--models ResNet50,...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tests.ui.conftest import launch_chromium, notebook_factory, start_lab  # noqa: E402

MODELS = ["MobileNetV2", "ResNet50", "DenseNet121", "EfficientNetB7"]


def plot_model_seconds(names):
    """Seconds `keras.utils.plot_model` takes per model, or the reason it cannot run."""
    try:
        import pydot  # noqa: F401
    except ImportError:
        return "skipped: pydot is not installed"
    import shutil

    if shutil.which("dot") is None:
        return "skipped: Graphviz (dot) is not installed"
    import keras

    out = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            model = getattr(keras.applications, name)(weights=None)
            start = time.perf_counter()
            try:
                keras.utils.plot_model(model, to_file=os.path.join(folder, f"{name}.png"),
                                       show_shapes=True)
            except Exception as error:  # Graphviz aborts on some architectures
                last = [line for line in str(error).splitlines() if line.strip()][-1]
                out[name] = f"crashed after {time.perf_counter() - start:.1f} s ({last.strip()[:60]})"
                continue
            out[name] = time.perf_counter() - start
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    names = [n for n in args.models.split(",") if n]

    setup = (
        "import os, time\nos.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\nimport keras\n"
        "from kerawidgets.widgets import GraphView\nfrom kerawidgets.graph import ModelGraph\n"
        "from kerawidgets.layout import layout\n"
        f"models = {{n: getattr(keras.applications, n)(weights=None) for n in {names!r}}}\n"
        "def kernel_side(name):\n"
        "    t = time.perf_counter()\n"
        "    g = ModelGraph.from_model(models[name])\n"
        "    s = layout(g).scene()\n"
        "    return round(time.perf_counter() - t, 4), len(g.nodes)\n"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root, home = Path(tmp, "root"), Path(tmp, "home")
        root.mkdir()
        home.mkdir()
        with start_lab(root, home) as lab, launch_chromium() as browser:
            contexts = []
            open_notebook = notebook_factory(lab, browser, contexts)
            nb = open_notebook([setup], name="bench_graph_view.ipynb", viewport=(1400, 1000))
            # Warm up the widget machinery (first anywidget load, JS module compile).
            nb.run_cell("GraphView(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))")
            for name in names:
                kernel_times, browser_times, count = [], [], 0
                for _ in range(args.repeat):
                    page = nb.page
                    before = page.locator(".kw-graph[data-painted]").count()
                    kernel, count = nb.eval(f"kernel_side({name!r})")
                    kernel_times.append(kernel)
                    cells = nb.cells()
                    n = cells.count()
                    page.evaluate("() => document.activeElement && document.activeElement.blur()")
                    cells.nth(n - 1).locator(".jp-InputArea-prompt").click()
                    page.keyboard.press("Escape")
                    page.keyboard.press("b")
                    cells.nth(n).wait_for()
                    cells.nth(n).locator(".cm-content").click()
                    page.keyboard.insert_text(f"GraphView(models[{name!r}])")
                    start = time.perf_counter()
                    page.keyboard.press("Shift+Enter")
                    page.wait_for_function(
                        "(k) => document.querySelectorAll('.kw-graph[data-painted]').length > k",
                        arg=before, timeout=120_000, polling="raf")
                    browser_times.append(time.perf_counter() - start)
                    nb.wait_idle()
                    nb.screenshot(f"bench_{name}", page.locator(".kw-graph").last)
                rows.append((name, count, statistics.median(kernel_times),
                             statistics.median(browser_times)))
                print(f"{name}: {statistics.median(browser_times):.3f} s", flush=True)
            for context in contexts:
                context.close()

    plot = plot_model_seconds(names)
    print()
    print("| model | layers | kernel: graph + layout (s) | display to first paint (s) |"
          " plot_model (s) | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, count, kernel, paint in rows:
        if isinstance(plot, dict) and isinstance(plot[name], float):
            ref = f"{plot[name]:.2f}"
            ratio = f"{paint / plot[name]:.2f}x"
        elif isinstance(plot, dict):
            ref, ratio = plot[name], "n/a"
        else:
            ref, ratio = "n/a", "n/a"
        print(f"| {name} | {count} | {kernel:.3f} | {paint:.3f} | {ref} | {ratio} |")
    if not isinstance(plot, dict):
        print(f"\nkeras.utils.plot_model {plot}.")


if __name__ == "__main__":
    main()
