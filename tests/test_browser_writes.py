"""Writes from the browser, sent the way the front end sends them (a comm "update" message).

Only `GraphView.selected` / `open_groups` and the editor controls' own values
may be written; everything else (the widget's code, model and view names,
DOM traits, other traits of a control) is refused and reverted, and a write
of the wrong type is refused quietly instead of raising out of `set_state`.
"""

import ipywidgets as w
import keras
import numpy as np
import pytest

from kerawidgets.widgets import GraphView, ModelEditor
from kerawidgets.widgets.browser_writes import guard_tree, writable


def small_model():
    inp = keras.Input((4,), name="x")
    h = keras.layers.Dense(3, activation="relu", name="hidden")(inp)
    return keras.Model(inp, keras.layers.Dense(2, name="head")(h), name="small")


class Sent:
    """The messages a widget sends to the front end."""

    def __init__(self, widget):
        self.messages = []
        widget._send = lambda msg, buffers=None: self.messages.append(msg)

    def last(self, key):
        values = [m["state"][key] for m in self.messages if key in m.get("state", {})]
        return values[-1] if values else None


def from_browser(widget, state):
    """Deliver `state` as the front end does: Widget._handle_msg with an update message."""
    widget._handle_msg({"content": {"data": {"method": "update", "state": state,
                                              "buffer_paths": []}}, "buffers": []})


HOSTILE_WRITES = {
    "_esm": "export default { render() { fetch('https://evil.example') } }",
    "_css": "body { display: none }",
    "_model_name": "EvilModel",
    "_model_module": "evil",
    "_view_name": "EvilView",
    "_view_module": "evil",
    "_view_module_version": "9.9.9",
    "_anywidget_id": "evil.Widget",
    "_dom_classes": ["evil"],
    "tooltip": "<img src=x onerror=alert(1)>",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_WRITES))
def test_graph_view_refuses_and_reverts_writes_to_its_code_and_names(name):
    view = GraphView(small_model())
    if name not in view.keys:
        pytest.skip(f"{name} is not a synced trait of this anywidget version")
    before = getattr(view, name)
    sent = Sent(view)
    from_browser(view, {name: HOSTILE_WRITES[name]})
    assert getattr(view, name) == before
    assert sent.last(name) == before  # the browser is sent the kernel's value back


def test_graph_view_still_takes_selected_and_open_groups_in_the_same_message():
    view = GraphView(small_model())
    esm = view._esm
    from_browser(view, {"selected": {"id": "hidden", "layer": "hidden"}, "_esm": "evil"})
    assert view.selected == {"id": "hidden", "layer": "hidden"}
    assert view._esm == esm


@pytest.mark.parametrize("value", ["yes", [1], {"a": 1}, None])
def test_a_wrong_typed_write_to_a_dom_trait_is_refused_quietly(value):
    view = GraphView(small_model())
    sent = Sent(view)
    from_browser(view, {"tabbable": value})  # no TraitError out of the handler
    assert view.tabbable is None
    assert "tabbable" in {k for m in sent.messages for k in m.get("state", {})}


def test_a_wrong_typed_open_groups_write_is_refused():
    view = GraphView(small_model())
    from_browser(view, {"open_groups": "not a list"})
    assert view.open_groups == []


# --- the editor's own controls ---------------------------------------------------------


def controls_of(root):
    stack, found = [root], []
    while stack:
        widget = stack.pop()
        found.append(widget)
        stack.extend(getattr(widget, "children", ()))
    return found


@pytest.fixture
def editor():
    return ModelEditor(small_model(), np.ones((8, 4), "float32"))


def test_every_editor_control_refuses_writes_beyond_its_value(editor):
    for widget in controls_of(editor.widget):
        if isinstance(widget, GraphView):
            continue
        allowed = set(writable(widget))
        for name in ("_model_name", "_view_module", "_dom_classes", "layout", "disabled",
                     "description", "options", "_options_labels"):
            if name in widget.keys and name not in allowed:
                before = getattr(widget, name)
                sent = Sent(widget)
                from_browser(widget, {name: "IPY_MODEL_evil" if name == "layout" else "evil"})
                assert getattr(widget, name) == before, (type(widget).__name__, name)
                assert name in {k for m in sent.messages for k in m.get("state", {})}


def test_tab_and_dropdown_writes_still_work_and_wrong_values_are_refused(editor):
    editor.select("hidden")
    p = editor.panel
    from_browser(p.tabs, {"selected_index": 0})
    from_browser(p.activation, {"index": p.activation.options.index("tanh")})
    assert p.activation.value == "tanh"
    assert "tanh" in p.preview.value
    sent = Sent(p.activation)
    from_browser(p.activation, {"index": "tanh"})  # wrong type
    from_browser(p.activation, {"index": 10_000})  # out of range
    assert p.activation.value == "tanh"
    assert sent.last("index") == p.activation.options.index("tanh")
    from_browser(p.reinitialize, {"value": "yes please"})  # a checkbox takes a bool only
    assert p.reinitialize.value is False


def test_a_settings_form_made_later_is_guarded_too(editor):
    editor.select("hidden")
    p = editor.panel
    p.tabs.selected_index = 2  # Insert after
    p.insert.value = "Dropout"
    rate = p.insert_settings.widgets["rate"]
    from_browser(rate, {"value": 0.25, "_view_name": "Evil"})
    assert rate.value == pytest.approx(0.25) and rate._view_name == "FloatTextView"


def test_guard_tree_is_idempotent_and_leaves_buttons_write_free():
    button = w.Button(description="Apply")
    box = w.VBox([button])
    guard_tree(box)
    guard_tree(box)
    from_browser(button, {"description": "Delete everything", "disabled": True})
    assert button.description == "Apply" and not button.disabled
