"""Closing widgets so that nothing keeps them, or what their callbacks hold, alive.

ipywidgets keeps every widget in its registry (`ipywidgets.Widget.widgets`)
until the widget is closed, and a widget's callbacks (observers, `on_click`,
`on_msg`) keep what they refer to. `close_tree` closes a whole tree of
widgets: children, layouts, styles. A `ModelEditor` closes its tree this
way (`ModelEditor.close`).

anywidget connects every instance of a class whose `_esm` or `_css` is a
file to that file's watcher, which the class keeps, and never disconnects
it, closed or not (manzt/anywidget#929): such a widget is never freed. The
kerawidgets anywidgets give anywidget the files' text instead
(`static_text`), which it connects nothing to.

>>> import gc, weakref, ipywidgets as w
>>> box = w.VBox([w.Button(description="Run"), w.HTML("note")])
>>> ids = [child.model_id for child in box.children] + [box.model_id, box.layout.model_id]
>>> close_tree(box)
>>> [i for i in ids if i in w.widgets.widget._instances]
[]
>>> from kerawidgets.widgets.plot_image import PlotImage
>>> image = PlotImage()
>>> close_tree(image); freed = weakref.ref(image); del image; _ = gc.collect()
>>> freed() is None
True
"""

from __future__ import annotations

import pathlib

from kerawidgets.widgets.browser_writes import widget_tree

__all__ = ["STATIC", "close_tree", "static_text"]

#: The widgets' ES modules and style sheets.
STATIC = pathlib.Path(__file__).parent / "static"


def static_text(name: str) -> str:
    """The text of `STATIC / name`, for an anywidget's `_esm` or `_css` (see the module
    docstring: given a path, anywidget would keep every instance alive)."""
    return (STATIC / name).read_text(encoding="utf-8")


def close_tree(root) -> None:
    """Close `root` and every widget under it: its children, layouts and styles (every
    widget a synced trait holds, `browser_writes.widget_tree`). Closing a closed widget
    does nothing."""
    for widget in widget_tree(root):
        widget.close()
