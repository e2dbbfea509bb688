"""The edit stack moved to `kerawidgets.history` (it holds no widget); this name stays for imports.

>>> from kerawidgets.widgets.history import History, Step
>>> import kerawidgets.history
>>> History is kerawidgets.history.History
True
"""

from kerawidgets.history import History, Step

__all__ = ["History", "Step"]
