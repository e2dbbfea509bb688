"""The editor's side panel: plain ipywidgets, filled and read by `ModelEditor`.

The panel holds no model logic. It shows what it is given (layer details,
choices, previews, reports) and hands raw control values back; the editor
checks every value in the kernel (`kerawidgets.catalog.Setting.parse`,
`kerawidgets.activations`) before any edit is built.

>>> panel = EditorPanel()
>>> panel.show_status("Nothing selected", "info")
>>> "Nothing selected" in panel.status.value
True
"""

from __future__ import annotations

import html
import json
import math
import re

import ipywidgets as w

from kerawidgets.edits import EDIT_TYPES
from kerawidgets.widgets.closing import close_tree

__all__ = ["ACTIONS", "EditorPanel", "SettingsForm", "gui_text"]



def panel_tabs() -> list[tuple[str, str]]:
    """(action, title) of each tab: one per edit class with a `panel_action`, in the
    order the classes were defined (`kerawidgets.edits.EDIT_TYPES`).

    >>> panel_tabs()[:2]
    [('activation', 'Activation'), ('replace', 'Replace')]
    """
    return [(cls.panel_action, cls.panel_tab) for cls in EDIT_TYPES.values()
            if cls.panel_action and cls.panel_tab]


#: The tabs of the panel, in order: the selected one is what Apply applies.
ACTIONS = tuple(action for action, _ in panel_tabs())
TAB_TITLES = tuple(title for _, title in panel_tabs())
NONE_CHOICE = "(choose)"
#: What the disabled Activation dropdown shows for a layer without an activation.
NO_ACTIVATION = "(no activation)"
#: The checkbox that allows an edit to give downstream layers fresh weights.
REINITIALIZE_LABEL = "allow reinitialising downstream layers"

# Library messages speak to code ("Pass reinitialize='downstream'"); the panel says
# what to do in the panel, and spells "reinitialised" one way (as the report does).
_GUI_WORDING = (
    ("Pass reinitialize='downstream' to re-initialise them",
     f"Tick '{REINITIALIZE_LABEL}' to give them fresh weights"),
    ("reinitialize='downstream'", f"'{REINITIALIZE_LABEL}' ticked"),
    ("re-initialis", "reinitialis"),
    ("Re-initialis", "Reinitialis"),
)


def gui_text(text: str) -> str:
    """A library message worded for the panel: the checkbox, not the argument.

    >>> gui_text("Nothing was changed. Pass reinitialize='downstream' to re-initialise them.")
    "Nothing was changed. Tick 'allow reinitialising downstream layers' to give them fresh weights."
    """
    for old, new in _GUI_WORDING:
        text = text.replace(old, new)
    return text

_STYLE = """
<style>
.kwe-panel { font-size: 13px; }
.kwe-panel .kwe-info table { border-collapse: collapse; width: 100%; }
.kwe-panel .kwe-info td { padding: 1px 6px 1px 0; vertical-align: top; }
.kwe-panel .kwe-info td:first-child { color: var(--jp-ui-font-color2, #666); white-space: nowrap; }
.kwe-panel .kwe-mono { font-family: var(--jp-code-font-family, monospace); font-size: 12px; }
.kwe-status-info { color: var(--jp-ui-font-color1, #333); }
.kwe-status-busy { color: #8a6d00; font-weight: 600; }
.kwe-status-ok { color: #1e7b34; }
.kwe-status-error { color: #b3261e; background: rgba(179, 38, 30, 0.08);
  border-left: 3px solid #b3261e; padding: 4px 6px; display: block; white-space: normal; }
.kwe-preview { border-left: 3px solid #4C72B0; padding: 2px 6px; display: block; }
.kwe-preview-bad { border-left-color: #b3261e; }
.kwe-hint { color: var(--jp-ui-font-color2, #666); font-style: italic; }
.kwe-report table { font-size: 12px; }
.kwe-report td, .kwe-report th { border-bottom: 1px solid rgba(128,128,128,0.2); }
.kwe-report summary { cursor: pointer; }
.kwe-report tr.kw-reinitialised td { color: #b35c00; }
.kwe-report tr.kw-new td { color: #1e7b34; }
.kwe-report tr.kw-removed td { color: #888; text-decoration: line-through; }
.kwe-config pre { max-height: 180px; overflow: auto; }
/* The graph fills its side of the editor (Voila left a gap beside a narrower graph). */
.kwe-graph-box > * { flex: 1 1 auto; width: 100%; min-width: 0; }
.kwe-synthetic { color: #b35c00; font-weight: 600; }
/* One tab per edit type: each tab as wide as its title (not a fixed 144px), so five fit
   the panel without cutting a title short. */
.kwe-panel .jupyter-widgets.kwe-tabs > .lm-TabBar .lm-TabBar-tab { flex: 0 1 auto; padding: 0 7px; }
.kwe-verdict-keep { color: #1e7b34; }
.kwe-verdict-change { color: #b35c00; }
</style>
"""


def _cell(text) -> str:
    return html.escape(str(text))


class SettingsForm:
    """Widgets for settings (a `catalog.Choice`'s, or `settings` given as a tuple of
    `catalog.Setting`), prefilled with their defaults."""

    def __init__(self, choice=None, on_change=None, settings=None):
        self.choice = choice
        self.widgets: dict[str, w.Widget] = {}
        rows = []
        self.settings = tuple(_form_settings(choice, settings))
        for setting in self.settings:
            widget = _setting_widget(setting)
            if on_change is not None:
                widget.observe(lambda _change: on_change(), names="value")
            widget.add_class(f"kwe-setting-{setting.name}")
            self.widgets[setting.name] = widget
            rows.append(widget)
        self.box = w.VBox(rows, layout=w.Layout(padding="0 0 0 8px"))

    def values(self) -> dict:
        """Raw values from the widgets (the catalog parses and checks them)."""
        return {name: widget.value for name, widget in self.widgets.items()}

    def refill(self, choice=None, settings=None) -> bool:
        """Show the form `SettingsForm(choice, settings=settings)` would show, in these
        widgets, when it has the same fields: each value back to its setting's default
        (what was typed goes, as in a new form). False when the fields differ (make a
        new form). The page is sent only the values that change, no new widgets."""
        if choice != self.choice or tuple(_form_settings(choice, settings)) != self.settings:
            return False
        for setting in self.settings:
            self.widgets[setting.name].value = _widget_value(setting)
        return True

    def close(self) -> None:
        """Close the form's widgets (with their layouts and styles) once it is replaced."""
        for widget in (*self.widgets.values(), self.box):
            for part in (getattr(widget, "layout", None), getattr(widget, "style", None), widget):
                if isinstance(part, w.Widget):
                    part.close()


def _form_settings(choice, settings) -> tuple:
    if settings is None:
        return choice.settings if choice is not None else ()
    return tuple(settings)


def _widget_value(setting):
    """The value a fresh widget of `setting` holds (`_setting_widget`)."""
    if setting.kind == "int":
        return int(setting.default)
    if setting.kind == "float":
        return float(setting.default)
    if setting.kind == "bool":
        return bool(setting.default)
    if setting.kind == "choice":
        options = list(setting.options())
        return setting.default if setting.default in options else options[0]
    if setting.kind == "tuple":
        return ", ".join(str(v) for v in setting.default)
    return str(setting.default)


def _setting_widget(setting) -> w.Widget:
    style = {"description_width": "120px"}
    layout = w.Layout(width="96%")
    common = {"description": setting.name, "style": style, "layout": layout}
    value = _widget_value(setting)
    if setting.kind == "int":
        return w.IntText(value=value, **common)
    if setting.kind == "float":
        return w.FloatText(value=value, **common)
    if setting.kind == "bool":
        return w.Checkbox(value=value, indent=False, description=setting.name, layout=layout)
    if setting.kind == "choice":
        return w.Dropdown(options=list(setting.options()), value=value, **common)
    return w.Text(value=value, **common)


class EditorPanel:
    """Every control of the side panel, laid out; `widget` is the panel's box."""

    def __init__(self):
        self.style = w.HTML(_STYLE)
        self.title = w.HTML("<b>Click a layer in the graph</b>")
        self.info = w.HTML(layout=w.Layout(width="100%"))
        self.info.add_class("kwe-info")
        self.config = w.HTML()
        self.config.add_class("kwe-config")  # scrolls inside a short box: Apply stays in view
        self.config_box = w.Accordion(children=[self.config], selected_index=None,
                                      layout=w.Layout(width="auto"))
        self.config_box.set_title(0, "Layer config")

        wide = w.Layout(width="96%")
        self.tabs = self._make_tabs(wide)
        self.reinitialize = w.Checkbox(description=REINITIALIZE_LABEL, indent=False, layout=wide)
        self.reinitialize.description_tooltip = (
            "When an edit changes a layer's output shape, the layers after it whose weights no "
            "longer fit get fresh weights instead of refusing the edit.")
        self.preview = w.HTML(layout=w.Layout(width="100%"))
        self.apply_button = w.Button(description="Apply", button_style="primary", icon="check",
                                     disabled=True, layout=w.Layout(width="auto"))
        self.undo_button = w.Button(description="Undo", icon="undo", disabled=True,
                                    layout=w.Layout(width="auto"))
        self.redo_button = w.Button(description="Redo", icon="repeat", disabled=True,
                                    layout=w.Layout(width="auto"))
        self.reset_button = w.Button(description="Reset", icon="history", disabled=True,
                                     layout=w.Layout(width="auto"))
        self.buttons = w.HBox([self.apply_button, self.undo_button, self.redo_button,
                               self.reset_button], layout=w.Layout(flex_flow="row wrap"))
        self.progress = w.FloatProgress(value=0, min=0, max=1, layout=w.Layout(
            width="96%", visibility="hidden"))
        self.progress.add_class("kwe-progress")
        self.status = w.HTML(layout=w.Layout(width="100%"))
        self.report = w.HTML(layout=w.Layout(width="100%", max_height="360px", overflow="auto"))
        self.report.add_class("kwe-report")
        self.probe = w.HTML(layout=w.Layout(width="100%"))
        self.widget = w.VBox(
            [self.style, self.title, self.info, self.config_box, self.tabs, self.reinitialize,
             self.preview, self.buttons, self.progress, self.status, self.report, self.probe],
            layout=w.Layout(padding="0 8px 0 12px", overflow="hidden"),
        )
        self.widget.add_class("kwe-panel")
        # Stable hooks for styling and browser tests.
        for widget, name in ((self.activation, "kwe-activation"), (self.bulk, "kwe-bulk"),
                             (self.activation_setting, "kwe-activation-setting"),
                             (self.replace, "kwe-replace"), (self.insert, "kwe-insert"),
                             (self.tabs, "kwe-tabs"), (self.reinitialize, "kwe-reinitialize"),
                             (self.preview, "kwe-preview-line"), (self.apply_button, "kwe-apply"),
                             (self.undo_button, "kwe-undo"), (self.redo_button, "kwe-redo"),
                             (self.reset_button, "kwe-reset"), (self.status, "kwe-status"),
                             (self.title, "kwe-title")):
            widget.add_class(name)
        self.replace_settings = SettingsForm()
        self.insert_settings = SettingsForm()
        self.layer_settings = SettingsForm()
        self._status_after: str | None = None  # the status to show when the work ends
        self._shown_stage: tuple | None = None  # the busy step and words shown (`_stage`)

    def _make_tabs(self, wide) -> w.Tab:
        """One tab per edit class that has one (`panel_tabs`), with its controls."""
        label_style = {"description_width": "120px"}
        # Activation tab. `activation_setting` picks which setting holds the activation
        # (LSTM's recurrent_activation, CLIP's intermediate_activation, a custom gate);
        # shown only for layers with another than a plain `activation`.
        self.activation_setting = w.Dropdown(description="setting", options=["activation"],
                                             style=label_style, layout=w.Layout(
                                                 width="96%", display="none"))
        self.activation = w.Dropdown(description="activation", options=[], style=label_style,
                                     layout=wide)
        self.bulk = w.Checkbox(description="apply to every layer like this", indent=False,
                               layout=wide)
        self.activation_note = w.HTML()
        activation_tab = w.VBox([self.activation_setting, self.activation, self.bulk,
                                 self.activation_note])
        # Replace tab
        self.replace = w.Dropdown(description="replace with", options=[NONE_CHOICE],
                                  style=label_style, layout=wide)
        self.replace_form = w.VBox()
        self.replace_verdict = w.HTML()
        replace_tab = w.VBox([self.replace, self.replace_verdict, self.replace_form])
        # Insert tab
        self.insert = w.Dropdown(description="insert after", options=[NONE_CHOICE],
                                 style=label_style, layout=wide)
        self.insert_form = w.VBox()
        self.insert_verdict = w.HTML()
        insert_tab = w.VBox([self.insert, self.insert_verdict, self.insert_form])
        # Remove tab
        self.remove_note = w.HTML()
        remove_tab = w.VBox([self.remove_note])
        # Settings tab: the selected layer's settings (`catalog.settings_form`)
        self.settings_form = w.VBox()
        self.settings_note = w.HTML()
        settings_tab = w.VBox([self.settings_note, self.settings_form])

        # One tab per edit class that has one, in the registry's order.
        boxes = {"activation": activation_tab, "replace": replace_tab, "insert": insert_tab,
                 "remove": remove_tab, "settings": settings_tab}
        tabs = panel_tabs()
        self.actions = tuple(action for action, _ in tabs)
        # width "auto", not 100%: with the widgets' margins 100% ran past the panel's edge.
        tabs_widget = w.Tab(children=[boxes.get(a) or _script_only(a) for a in self.actions],
                            layout=w.Layout(width="auto"))
        for index, (_action, title) in enumerate(tabs):
            tabs_widget.set_title(index, title)
        return tabs_widget

    # --- what is shown -------------------------------------------------------

    @property
    def action(self) -> str:
        return self.actions[self.tabs.selected_index or 0]

    def show_activation_settings(self, settings: dict) -> None:
        """The settings that hold an activation (``{"activation": "tanh", "gate": ...}``):
        the setting dropdown is shown when there is a choice or the one setting has another name."""
        names = list(settings) or ["activation"]
        self.activation_setting.options = names
        self.activation_setting.value = names[0]
        self.activation_setting.layout.display = None if names != ["activation"] else "none"

    def show_layer(self, node, config, settings=None) -> None:
        """Fill the details of a `kerawidgets.graph.GraphNode` and its config dict;
        `settings` (every activation setting, by name) adds a row for each beyond the first."""
        if node is None:
            self.title.value = "<b>Click a layer in the graph</b>"
            self.info.value = ""
            self.config.value = ""
            return
        self.title.value = (f"<b>{_cell(node.name)}</b> "
                            f"<span style='opacity:0.7'>{_cell(node.class_name)}</span>")
        shapes_in = ", ".join(_shape(s) for s in node.input_shapes) or "-"
        shapes_out = ", ".join(_shape(s) for s in node.output_shapes) or "-"
        rows = [
            ("class", node.class_name),
            ("path", node.path + (f" (call {node.call_index})" if node.call_index else "")),
            ("input shape", shapes_in),
            ("output shape", shapes_out),
            ("parameters", f"{node.params:,}"),
            ("trainable", "yes" if node.trainable else "no (frozen)"),
            ("activation", node.activation or "-"),
        ]
        rows += [(key, value) for key, value in list((settings or {}).items())[1:]]
        self.info.value = "<table>" + "".join(
            f"<tr><td>{_cell(k)}</td><td class='kwe-mono'>{_cell(v)}</td></tr>" for k, v in rows
        ) + "</table>"
        text = json.dumps(config, indent=1, default=str) if config else "(no config)"
        self.config.value = f"<pre class='kwe-mono' style='margin:0'>{_cell(text)}</pre>"

    def show_status(self, text: str, kind: str = "info") -> None:
        """`kind`: ``info``, ``busy``, ``ok`` or ``error``.

        While the panel is busy the status line says what the kernel is doing;
        any other status given meanwhile is shown when the work ends.
        """
        value = f"<span class='kwe-status-{kind}'>{_cell(gui_text(text))}</span>" if text else ""
        if self.busy and kind != "busy":
            self._status_after = value
            return
        self.status.value = value

    def show_preview(self, text: str, bad: bool = False, hint: bool = False) -> None:
        cls = "kwe-preview kwe-preview-bad" if bad else ("kwe-hint" if hint else "kwe-preview")
        self.preview.value = f"<span class='{cls}'>{_cell(gui_text(text))}</span>" if text else ""

    def show_verdict(self, target: w.HTML, choice) -> None:
        if choice is None:
            target.value = ""
            return
        cls = "kwe-verdict-keep" if choice.keeps_shape else "kwe-verdict-change"
        target.value = f"<span class='{cls}'>{_cell(gui_text(choice.verdict))}</span>"

    def set_form(self, purpose: str, form: SettingsForm) -> None:
        """Show `form` in the tab of `purpose`: "replace", "insert" or "settings"; the form
        it replaces is closed."""
        if purpose == "replace":
            old, self.replace_settings = self.replace_settings, form
            self.replace_form.children = [form.box]
        elif purpose == "settings":
            old, self.layer_settings = self.layer_settings, form
            self.settings_form.children = [form.box]
        else:
            old, self.insert_settings = self.insert_settings, form
            self.insert_form.children = [form.box]
        if old is not form:
            old.close()

    def close(self) -> None:
        """Close every widget of the panel: its tree and the three settings forms (a form
        never shown, the first of each, is not in the tree)."""
        for form in (self.replace_settings, self.insert_settings, self.layer_settings):
            form.close()
        close_tree(self.widget)

    def show_probe(self, description: str, synthetic: bool) -> None:
        if synthetic:
            self.probe.value = ("<span class='kwe-synthetic'>Synthetic probe data</span>: "
                                f"{_cell(description)}")
        else:
            self.probe.value = f"<b>Probe:</b> {_cell(description)}"

    def show_report(self, report) -> None:
        """The last rebuild's outcomes, identical ones grouped (`RebuildReport.html`)."""
        self.report.value = "" if report is None else report.html(css_class="kwe-report-table", title="Last rebuild")

    @property
    def busy(self) -> bool:
        return self._status_after is not None

    def set_busy(self, busy: bool, text: str = "", step: int = 1, steps: int = 1,
                 lock: bool = True) -> None:
        """While the kernel works: `text` and step `step` of `steps` shown, and with `lock`
        (a move, a sweep) Apply, Undo, Redo and Reset disabled; a quick check of the panel
        passes `lock=False`, as a click sent meanwhile runs after it.

        `step` may be fractional: the probe moves the bar on between two
        steps as it runs layer calls. The first call with `busy=True` remembers the status line; later ones
        move the progress bar on, each sent when it starts a step or moves the bar by at least
        `BAR_QUANTUM` of its length (`_moves_visibly`). `busy=False` hides the bar and shows the
        remembered status (or one given while busy). The editor re-enables
        the buttons that apply when it is done.
        """
        if busy:
            if lock:  # each set is validated and observed: only the controls still enabled
                for control in (self.apply_button, self.undo_button, self.redo_button,
                                self.reset_button):
                    if not control.disabled:
                        control.disabled = True
            if self._status_after is None:
                self._status_after = self.status.value
            elif not self._moves_visibly(text, step, steps):
                return  # the bar would move by less than `BAR_QUANTUM` of its length
            self.progress.max = max(1, int(steps))
            self.progress.value = min(max(0.0, float(step)), self.progress.max)
            self._shown_stage = _stage(text, step, steps)
            self.progress.layout.visibility = "visible"
            suffix = f" ({math.floor(step)}/{steps})" if steps > 1 else ""
            self.status.value = f"<span class='kwe-status-busy'>{_cell(text + suffix)}</span>"
            return
        after, self._status_after = self._status_after, None
        self._shown_stage = None
        self.progress.layout.visibility = "hidden"
        self.progress.value = 0
        if after is not None:
            self.status.value = after

    def _moves_visibly(self, text, step, steps) -> bool:
        """Whether a busy update within one operation is worth sending to the page: a new
        step or stage (its words, numbers aside), or the bar moved on by at least
        `BAR_QUANTUM` of its length (the probe reports every layer call: hundreds on a large
        model; each update is two widget messages)."""
        if _stage(text, step, steps) != self._shown_stage:
            return True
        return abs(float(step) - self.progress.value) >= BAR_QUANTUM * self.progress.max


#: The smallest move of the progress bar sent within one step, as a share of its length (a
#: pixel or two: a probe of a few layer calls still shows each one, in words too).
BAR_QUANTUM = 0.005


def _stage(text, step, steps) -> tuple:
    """A busy update's step and words, its counts left out ("3 of 60 layer calls")."""
    return math.floor(step), int(steps), re.sub(r"\d+", "#", text)


def _script_only(action) -> w.HTML:
    """The tab of an edit class the panel has no controls for: how to apply it in code."""
    return w.HTML(f"<span class='kwe-hint'>No controls for {_cell(action)} edits here: apply "
                  "one with <code>editor.apply(edit)</code>.</span>")


def _shape(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"
