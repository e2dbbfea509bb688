"""What the browser may write to the editor's ipywidgets controls; everything else is refused.

A widget's state can be written from the front end (a comm "update"
message, handled by `Widget.set_state`). The editor's controls need only
their own value: a dropdown, toggle buttons or a multiple choice its `index`, a checkbox or text box its
`value`, tabs their `selected_index`. `guard_tree` makes every control in a
tree of widgets accept just that: writes to anything else (`_model_name`,
`_view_module`, `layout`, `description`, `disabled`, `_dom_classes`...)
and writes of the wrong type are refused quietly and the kernel's value is
sent back. Buttons report clicks as custom messages, not writes, so a
button accepts no write at all. `GraphView` checks its own writes
(`GraphView.set_state`) and is left alone here.

>>> import ipywidgets as w
>>> box = w.VBox([w.Checkbox(value=False), w.Dropdown(options=["a", "b"])])
>>> guard_tree(box)
>>> check, drop = box.children
>>> check.set_state({"value": True, "disabled": True, "_view_module": "evil"})
>>> check.value, check.disabled, check._view_module
(True, False, '@jupyter-widgets/controls')
>>> drop.set_state({"index": "not a number"})  # wrong type: refused, no TraitError
>>> drop.index
0
"""

from __future__ import annotations

import ipywidgets as w
import traitlets

__all__ = ["BROWSER_WRITABLE", "guard", "guard_tree", "widget_tree", "writable"]

#: Control type -> the traits the browser may write to it (checked in this order: subclass first).
BROWSER_WRITABLE: tuple[tuple[type, tuple[str, ...]], ...] = (
    (w.Dropdown, ("index",)),
    (w.SelectMultiple, ("index",)),  # "Compare several": the picked candidates
    (w.ToggleButtons, ("index",)),  # the plots' "Compare with" switch
    (w.Checkbox, ("value",)),
    (w.FloatText, ("value",)),
    (w.IntText, ("value",)),
    (w.Text, ("value",)),
    (w.Textarea, ("value",)),
    (w.Tab, ("selected_index",)),
    (w.Accordion, ("selected_index",)),
)

_GUARDED = "_kerawidgets_browser_guard"


def writable(widget) -> tuple[str, ...]:
    """The traits the browser may write to `widget` (none for anything not listed)."""
    for cls, names in BROWSER_WRITABLE:
        if isinstance(widget, cls):
            return names
    return ()


def guard(widget, allowed=None) -> None:
    """Let the browser write only `allowed` (default: `writable(widget)`) to `widget`."""
    if getattr(widget, _GUARDED, False):
        return
    allowed = frozenset(writable(widget) if allowed is None else allowed)
    unchecked = widget.set_state

    def set_state(sync_data):
        accepted = {k: v for k, v in sync_data.items() if k in allowed}
        refused = [k for k in sync_data if k not in allowed]
        if accepted:
            try:
                unchecked(accepted)
            except (traitlets.TraitError, TypeError, ValueError):
                refused += list(accepted)  # a wrong type or value: the old one stays
        known = [k for k in refused if k in widget.keys]
        if known:
            widget.send_state(known)  # the browser shows the kernel's value again

    widget.set_state = set_state
    setattr(widget, _GUARDED, True)


def widget_tree(root):
    """`root` and every widget under it, once each: its children, layouts and styles (every
    widget a synced trait holds). A widget's own widgets are read before it is yielded,
    so the caller may close it."""
    stack = [root]
    seen = set()
    while stack:
        widget = stack.pop()
        if id(widget) in seen:
            continue
        seen.add(id(widget))
        for name in widget.keys:
            value = getattr(widget, name, None)
            values = value if isinstance(value, (list, tuple)) else (value,)
            stack.extend(v for v in values if isinstance(v, w.Widget))
        yield widget


def guard_tree(root) -> None:
    """`guard` every widget in `root`'s tree (children, layouts, styles), except those
    that check their own writes (a class with its own `set_state`, like `GraphView`)."""
    for widget in widget_tree(root):
        if type(widget).set_state is w.Widget.set_state:
            guard(widget)
