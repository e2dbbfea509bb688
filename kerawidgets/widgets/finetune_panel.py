"""The editor's "Fine-tune" section: epochs, batch size and steps, Run, Stop, progress, a live curve.

Plain ipywidgets, filled and read by `ModelEditor` (no model logic here).
`ModelEditor` trains in a worker thread (`training.in_background`) so that
the kernel's thread stays free to receive the Stop click; the worker calls
`add_batch` after every batch, and the panel redraws its progress bar and
curve at most every `REDRAW_SECONDS` (and at the end), so a fast model does
not flood the browser with messages.

>>> panel = FineTunePanel()
>>> panel.set_available(True, "Fine-tunes on the 64 samples given to the editor.")
>>> panel.settings()
{'epochs': 1, 'batch_size': 32, 'steps': None, 'baseline': False}
>>> panel.start(); panel.add_batch(1, 4, {"loss": 0.9, "accuracy": 0.5}, now=0.0)
>>> panel.progress.value, panel.progress.max, "<polyline" in panel.curve.value
(1, 4, True)
"""

from __future__ import annotations

import html
import math
import time

import ipywidgets as w

from kerawidgets.errors import InvalidEditError

__all__ = ["FineTunePanel", "curve_svg"]

#: Least time between two redraws of the progress bar and the curve while training.
REDRAW_SECONDS = 0.25
_MAX_POINTS = 300
_WIDTH, _HEIGHT, _PAD, _TOP = 320, 120, 24, 18


def _points(values, top, bottom=0.0) -> str:
    """SVG polyline points of `values` over the plot area (at most `_MAX_POINTS`)."""
    n = len(values)
    stride = max(1, math.ceil(n / _MAX_POINTS))
    picked = list(range(0, n, stride))
    if picked[-1] != n - 1:
        picked.append(n - 1)
    span = (top - bottom) or 1.0
    width, height = _WIDTH - 2 * _PAD, _HEIGHT - _TOP - 8
    out = []
    for i in picked:
        x = _PAD + (width * i / max(1, n - 1))
        y = _TOP + height * (1 - (min(max(values[i], bottom), top) - bottom) / span)
        out.append(f"{x:.1f},{y:.1f}")
    return " ".join(out)


def curve_svg(logs: list[dict], total: int | None = None) -> str:
    """A small SVG of the running loss (left scale) and accuracy (0 to 1, right) per batch.

    >>> svg = curve_svg([{"loss": 1.0, "accuracy": 0.2}, {"loss": 0.5, "accuracy": 0.6}])
    >>> svg.count("<polyline"), 'data-batches="2"' in svg
    (2, True)
    """
    losses = [log["loss"] for log in logs if math.isfinite(log.get("loss", math.nan))]
    metric = next((k for k in ("accuracy", "sparse_categorical_accuracy",
                               "categorical_accuracy", "binary_accuracy") if k in (logs or [{}])[-1]),
                  None)
    parts = [f'<svg class="kwe-curve-svg" data-batches="{len(logs)}" width="{_WIDTH}" '
             f'height="{_HEIGHT}" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" '
             'aria-label="training loss and accuracy per batch" '
             'style="background: var(--jp-layout-color0, white); font: 10px sans-serif">',
             f'<rect x="{_PAD}" y="{_TOP}" width="{_WIDTH - 2 * _PAD}" height="{_HEIGHT - _TOP - 8}" '
             'fill="none" stroke="#ccc"/>']
    if losses:
        top = max(losses) * 1.05 or 1.0
        parts.append(f'<polyline class="kwe-curve-loss" fill="none" stroke="#1f77b4" '
                     f'stroke-width="1.5" points="{_points(losses, top)}"/>')
        parts.append(f'<text x="2" y="{_TOP + 6}" fill="#1f77b4">{top:.2g}</text>'
                     f'<text x="2" y="{_HEIGHT - 8}" fill="#1f77b4">0</text>')
    if metric is not None:
        values = [log.get(metric, math.nan) for log in logs]
        values = [v for v in values if math.isfinite(v)]
        if values:
            parts.append(f'<polyline class="kwe-curve-metric" fill="none" stroke="#ff7f0e" '
                         f'stroke-width="1.5" points="{_points(values, 1.0)}"/>')
            parts.append(f'<text x="{_WIDTH - _PAD + 2}" y="{_TOP + 6}" fill="#ff7f0e">1</text>'
                         f'<text x="{_WIDTH - _PAD + 2}" y="{_HEIGHT - 8}" fill="#ff7f0e">0</text>')
    of = "" if total is None else f" of {total}"
    label = "loss" + ("" if metric is None else f" · {html.escape(metric)}")
    parts.append(f'<text x="{_PAD}" y="12" fill="#555">{label} · batch '
                 f'{len(logs)}{of}</text></svg>')
    return "".join(parts)


def _whole(text_box, name, minimum, allow_zero=False) -> int | None:
    value = text_box.value
    if allow_zero and value == 0:
        return None
    if value < minimum:
        raise InvalidEditError(
            f"Fine-tune {name} must be at least {minimum}"
            + (" (0: every batch of the data)" if allow_zero else "") + f"; got {value}.")
    return int(value)


class FineTunePanel:
    """Every control of the "Fine-tune" section; `widget` is its (collapsed) accordion."""

    def __init__(self):
        style = {"description_width": "130px"}
        wide = w.Layout(width="96%")
        # IntText, not BoundedIntText: the browser may write an IntText's value only
        # (`browser_writes`); the kernel checks the numbers when Run is pressed.
        self.epochs = w.IntText(value=1, description="epochs", style=style, layout=wide)
        self.batch_size = w.IntText(value=32, description="batch size", style=style, layout=wide)
        self.steps = w.IntText(value=0, description="batches per epoch", style=style,
                               layout=wide)
        self.steps.description_tooltip = "0: every batch of the data"
        self.baseline = w.Checkbox(description="also fine-tune the original the same way "
                                   "(baseline)", indent=False, layout=wide)
        self.run_button = w.Button(description="Run", icon="play", disabled=True,
                                   layout=w.Layout(width="auto"))
        self.stop_button = w.Button(description="Stop", icon="stop", disabled=True,
                                    button_style="warning", layout=w.Layout(width="auto"))
        self.progress = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width="96%"))
        self.note = w.HTML("<i>Fine-tunes the current model on the editor's data.</i>")
        self.curve = w.HTML(layout=w.Layout(width="100%"))
        self.result = w.HTML(layout=w.Layout(width="100%"))
        body = w.VBox([self.note, self.epochs, self.batch_size, self.steps, self.baseline,
                       w.HBox([self.run_button, self.stop_button]), self.progress, self.curve,
                       self.result], layout=w.Layout(width="100%"))
        self.widget = w.Accordion(children=[body], selected_index=None,
                                  layout=w.Layout(width="100%"))
        self.widget.set_title(0, "Fine-tune")
        self.widget.add_class("kwe-finetune")
        for widget, name in ((self.epochs, "kwe-finetune-epochs"),
                             (self.batch_size, "kwe-finetune-batch-size"),
                             (self.steps, "kwe-finetune-steps"),
                             (self.baseline, "kwe-finetune-baseline"),
                             (self.run_button, "kwe-finetune-run"),
                             (self.stop_button, "kwe-finetune-stop"),
                             (self.progress, "kwe-finetune-progress"),
                             (self.curve, "kwe-finetune-curve"),
                             (self.result, "kwe-finetune-result"), (self.note, "kwe-finetune-note")):
            widget.add_class(name)
        self.available = False
        self.running = False
        self.logs: list[dict] = []
        self._total: int | None = None
        self._drawn = -math.inf

    def set_available(self, available: bool, note: str | None = None) -> None:
        """Whether Run can be pressed (the editor has labelled data and a compiled model)."""
        self.available = available
        if note is not None:
            self.note.value = note
        self.refresh(busy=False)

    def refresh(self, busy: bool) -> None:
        """Run only when available and nothing runs; Stop only while training runs."""
        self.run_button.disabled = busy or self.running or not self.available
        self.stop_button.disabled = not self.running
        for box in (self.epochs, self.batch_size, self.steps, self.baseline):
            box.disabled = self.running

    def settings(self) -> dict:
        """``{"epochs", "batch_size", "steps", "baseline"}`` from the controls, checked
        (steps 0: None)."""
        return {"epochs": _whole(self.epochs, "epochs", 1),
                "batch_size": _whole(self.batch_size, "batch size", 1),
                "steps": _whole(self.steps, "batches per epoch", 1, allow_zero=True),
                "baseline": bool(self.baseline.value)}

    # --- while training (called from the worker thread) ------------------------

    def start(self) -> None:
        self.running = True
        self.logs = []
        self._total = None
        self._drawn = -math.inf
        self.progress.value = 0
        self.progress.bar_style = ""
        self.result.value = ""
        self.curve.value = curve_svg([])
        self.refresh(busy=True)

    def add_batch(self, done: int, total: int | None, logs: dict, now: float | None = None) -> None:
        """Record a batch's running logs; redraw when `REDRAW_SECONDS` passed since the last."""
        self.logs.append({k: float(v) for k, v in logs.items()})
        self._total = total
        now = time.monotonic() if now is None else now
        if now - self._drawn >= REDRAW_SECONDS or done == total:
            self._drawn = now
            self._draw(done)

    def _draw(self, done: int) -> None:
        total = self._total
        self.progress.max = max(1, total if total is not None else done)
        self.progress.value = min(done, self.progress.max)
        self.curve.value = curve_svg(self.logs, total)

    def finish(self, text: str, ok: bool = True) -> None:
        """Training ended (or failed): the final curve and a line saying how it went."""
        self.running = False
        if self.logs:
            self._draw(len(self.logs))
        self.progress.bar_style = "success" if ok else "danger"
        kind = "ok" if ok else "error"
        self.result.value = f"<span class='kwe-status-{kind}'>{html.escape(text)}</span>"
        self.refresh(busy=False)
