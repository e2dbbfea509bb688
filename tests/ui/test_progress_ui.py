"""The editor's progress bar in a real JupyterLab: visible, and moving while the probe runs.

Run: pytest -m ui tests/ui/test_progress_ui.py. The kernel's probe is held at
two chosen layer calls by a named pipe that the test writes to, so "during
a slow Apply" is a state the test waits for, not a duration. The probe held
is the one the preview starts ahead (`EditSession.probe_edit_ahead`): Apply
waits for it, and its bar follows that run's calls.
"""

import os

import pytest

from tests.ui.test_editor_ui import select_layer, wait_not_busy, wait_text

pytestmark = pytest.mark.ui

SETUP = [
    "import os\nos.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\nimport numpy as np, keras\n"
    "from kerawidgets.widgets import ModelEditor\n"
    "inp = keras.Input((16,), name='x')\n"
    "h = inp\n"
    "for i in range(8):\n"
    "    h = keras.layers.Dense(16, activation='relu', name=f'd{i}')(h)\n"
    "model = keras.Model(inp, keras.layers.Dense(4, activation='softmax', name='head')(h))\n"
    "x = np.random.default_rng(0).normal(size=(32, 16)).astype('float32')\n"
    "editor = ModelEditor(model, x, height='420px')\n"
    "editor",
]

#: Kernel code holding the probe before its 2nd and 7th layer call until the pipe is written.
GATE = """
from kerawidgets import _keras_adapter as _kw_adapter
_kw_real_run_call = _kw_adapter.run_call
import threading as _kw_threading
_kw_gate = {{"calls": 0, "threads": []}}
def _kw_gated(call, tensor_map, training=False):
    _kw_gate["calls"] += 1
    _kw_gate["threads"].append(_kw_threading.current_thread().name)
    if _kw_gate["calls"] in (2, 7):
        with open({fifo!r}) as pipe:
            pipe.read()
    return _kw_real_run_call(call, tensor_map, training=training)
_kw_adapter.run_call = _kw_gated
"""

#: Kernel expression: waits for the probe's runs ahead to end; the names of any still running.
AHEAD_DONE = ("[t.name for t in __import__('threading').enumerate() "
              "if t.name == 'kerawidgets-probe-ahead' and (t.join(120) or t.is_alive())]")

BAR_JS = """() => {
  const box = document.querySelector('.kw-editor .kwe-progress');
  if (!box) return null;
  const bar = box.querySelector('.progress-bar');
  const status = document.querySelector('.kw-editor .kwe-status');
  return {visible: getComputedStyle(box).visibility === 'visible',
          height: box.getBoundingClientRect().height,
          barHeight: bar ? bar.getBoundingClientRect().height : 0,
          percent: bar ? parseFloat(bar.style.width || bar.style.height || '0') : 0,
          status: status ? status.textContent : ''};
}"""


def release(fifo):
    with open(fifo, "w") as pipe:  # blocks until the kernel is reading: it is, held at a call
        pipe.write("go")


def test_progress_bar_is_visible_and_advances_during_a_slow_apply(notebook_page):
    nb = notebook_page(SETUP, name="progress_ui.ipynb", viewport=(1400, 1100))
    page = nb.page
    page.wait_for_selector(".kw-editor .kw-graph[data-painted]", timeout=120_000)
    select_layer(nb, "d0")
    # The original's probe, run ahead when the editor was shown, ends before the gate is set.
    assert nb.kernel_eval(AHEAD_DONE) == []
    fifo = str(nb.lab.root / "probe_gate")
    os.mkfifo(fifo)
    assert nb.kernel_eval(f"exec({GATE.format(fifo=fifo)!r}) or 0") == 0
    # The preview rebuilds the edit and starts probing it ahead, held at its 2nd call.
    page.locator(".kw-editor .kwe-activation select").select_option("gelu")
    wait_text(page, ".kw-editor .kwe-preview-line", "'gelu'")
    wait_not_busy(page)
    page.locator(".kw-editor button.kwe-apply").click()
    # Held before the probe's 2nd call: the bar shows the probe's first call done.
    page.wait_for_function(
        f"() => {{ const s = ({BAR_JS})(); return s && s.visible && s.percent > 60"
        " && s.status.includes('1 of'); }")
    first = page.evaluate(BAR_JS)
    assert first["height"] > 0 and first["barHeight"] > 0, first
    assert "Probing the layer outputs" in first["status"] and "layer calls (3/5)" in first["status"]
    nb.screenshot("editor_progress", page.locator(".kw-editor .kwe-panel").first)
    release(fifo)
    # Held before the 7th call: the bar has moved on, still inside the probing step. It moves
    # by at least `BAR_QUANTUM` of its length (about one call here), so the words show the
    # 6th call done or, when that moved the bar too little, the 5th.
    page.wait_for_function(
        f"(p) => {{ const s = ({BAR_JS})(); const done = /(\\d+) of/.exec(s ? s.status : '');"
        " return s && s.visible && s.percent > p && done && [5, 6].includes(+done[1]); }",
        arg=first["percent"])
    second = page.evaluate(BAR_JS)
    assert first["percent"] < second["percent"] < 80 and second["barHeight"] > 0, second
    release(fifo)
    wait_text(page, ".kw-editor .kwe-status", "Applied", timeout=120_000)
    done = page.evaluate(BAR_JS)
    assert not done["visible"]
    assert nb.kernel_eval("_kw_gate['calls']") >= 7
    # Every layer call ran in the run ahead's thread: Apply took its summaries.
    assert set(nb.kernel_eval("_kw_gate['threads']")) == {"kerawidgets-probe-ahead"}
