"""Jupyter widgets of kerawidgets (anywidget front ends, no JS build step).

>>> from kerawidgets.widgets import GraphView  # doctest: +SKIP
"""

from kerawidgets.widgets.editor import ModelEditor
from kerawidgets.widgets.graph_view import GraphView

__all__ = ["GraphView", "ModelEditor"]
