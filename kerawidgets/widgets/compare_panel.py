"""The editor's "Compare several" section: pick candidates for the selected layer, Run, pick one.

Plain ipywidgets, filled and read by `ModelEditor` (no model logic here): a
multiple-choice list of candidates (activations, and layer types that fit
where the layer sits), a Run button, the leaderboard as a table with an
Apply button per candidate that could be built, and the sweep figure (which
the editor places under the graph, with the other plots).

>>> panel = ComparePanel()
>>> panel.set_choices({"activation: tanh": "tanh", "activation: gelu": "gelu"}, enabled=True)
>>> panel.choices.value = ("activation: gelu",)
>>> panel.selected_keys()
['activation: gelu']
"""

from __future__ import annotations

import html

import ipywidgets as w

from kerawidgets.widgets.closing import close_tree

__all__ = ["ComparePanel"]

_COLUMNS = (("top1_agreement", "top-1"), ("accuracy", "acc."), ("loss", "loss"),
            ("mean_abs_diff", "|diff|"), ("dead_fraction", "dead"),
            ("saturated_fraction", "sat."))


def _fmt(value) -> str:
    if value is None:
        return "–"
    return f"{value:.3g}" if isinstance(value, float) else html.escape(str(value))


class ComparePanel:
    """Every control of the "Compare several" section; `widget` is its (collapsed) accordion."""

    def __init__(self):
        self.choices = w.SelectMultiple(options=[], rows=8, layout=w.Layout(width="96%"))
        self.run_button = w.Button(description="Run", icon="play", disabled=True,
                                   layout=w.Layout(width="auto"))
        self.note = w.HTML("<i>Select a layer, pick several candidates, then Run.</i>")
        self.table = w.HTML(layout=w.Layout(width="100%", overflow="auto"))
        self.rows = w.VBox(layout=w.Layout(width="100%"))
        # The figure is wide: the editor shows it under the graph, with the other plots.
        self.image = w.Image(format="png", layout=w.Layout(width="100%", max_width="1120px",
                                                           display="none"))
        body = w.VBox([self.note, self.choices, self.run_button, self.table, self.rows],
                      layout=w.Layout(width="100%"))
        self.widget = w.Accordion(children=[body], selected_index=None,
                                  layout=w.Layout(width="100%"))
        self.widget.set_title(0, "Compare several")
        self.widget.add_class("kwe-compare")
        for widget, name in ((self.choices, "kwe-compare-choices"),
                             (self.run_button, "kwe-compare-run"),
                             (self.table, "kwe-compare-table"),
                             (self.image, "kwe-compare-figure"), (self.note, "kwe-compare-note")):
            widget.add_class(name)
        self._values: dict[str, object] = {}
        self.apply_buttons: list[w.Button] = []

    def set_choices(self, values: dict, enabled: bool, note: str | None = None) -> None:
        """Offer `values` ({label: candidate}); keep the picked labels still offered."""
        keep = tuple(k for k in self.choices.value if k in values)
        self._values = dict(values)
        self.choices.options = list(values)
        self.choices.value = keep
        self.choices.disabled = not enabled
        self.run_button.disabled = not enabled
        if note is not None:
            self.note.value = note

    def selected_keys(self) -> list[str]:
        return list(self.choices.value)

    def candidates(self) -> list:
        """The picked candidates, in the order offered."""
        return [self._values[k] for k in self.choices.options if k in self.choices.value]

    def show_result(self, result, png: bytes, on_apply) -> None:
        """The leaderboard (best first) and figure; `on_apply(index)` for a row's button."""
        metric = result.default_metric()
        ranked = result.ranked(metric)
        order = ranked + [r for r in result.rows if r not in ranked]
        head = "".join(f"<th style='padding: 1px 3px'>{label}</th>" for _, label in _COLUMNS)
        body = []
        for row in order:
            cells = ("".join(f"<td style='padding: 1px 3px'>{_fmt(getattr(row, key))}</td>"
                             for key, _ in _COLUMNS)
                     if row.ok else f"<td colspan='{len(_COLUMNS)}'>{_fmt(row.error)}</td>")
            body.append(f"<tr class='{'kwe-ok' if row.ok else 'kwe-failed'}'>"
                        f"<td>{_fmt(row.label)}</td>{cells}</tr>")
        base = result.baseline
        original = "".join(f"<td style='padding: 1px 3px'>{_fmt(base.get(key))}</td>"
                           for key, _ in _COLUMNS)
        self.table.value = (
            "<div class='kwe-report' style='max-width: 100%'>"
            "<div style='white-space: normal; line-height: 1.3'>"
            f"<b>{_fmt(result.layer)}</b>: ranked by {metric} (top-1: agreement with the "
            "original; |diff|: mean absolute difference of the output; dead / sat.: shares "
            "at the layer)</div><div style='overflow-x: auto'>"
            "<table style='font-size: 11px'><tr><th>candidate</th>" + head + "</tr>"
            f"<tr class='kwe-original'><td><i>original</i></td>{original}</tr>"
            + "".join(body) + "</table></div></div>")
        self._close_rows()
        for row in order:
            if not row.ok:
                continue
            button = w.Button(description=f"Apply {row.label}"[:40], icon="check",
                              layout=w.Layout(width="auto"))
            button.add_class("kwe-compare-apply")
            button.on_click(lambda _b, i=row.index: on_apply(i))
            self.apply_buttons.append(button)
        self.rows.children = [w.HBox(self.apply_buttons, layout=w.Layout(flex_flow="row wrap"))]
        self.image.value = png
        self.image.layout.display = None

    def clear(self) -> None:
        self.table.value = ""
        self._close_rows()
        self.image.value = b""
        self.image.layout.display = "none"

    def _close_rows(self) -> None:
        """Take the last result's Apply buttons away and close them: their callbacks hold
        the result (and through it the editor's session) as long as ipywidgets keeps them."""
        rows, self.rows.children, self.apply_buttons = self.rows.children, [], []
        for row in rows:
            close_tree(row)
