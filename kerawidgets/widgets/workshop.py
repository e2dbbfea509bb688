"""Exercises a class can do with widgets only (in Voila too), and their checks.

A workshop notebook (notebooks/06_workshop.ipynb) pairs each code exercise
with an `Exercise`: a question answered with controls (or with the editor),
a **Check** button and feedback that says what to do next without giving
the answer. `check` is the assertion both kinds of check use;
`restore_button` puts the editor back on the workshop model and
`code_view` keeps `editor.to_code()` in view as edits are applied.

>>> import ipywidgets as w
>>> pick = w.Dropdown(options=["a", "b"], value="a")
>>> def is_b(choice):
...     check(choice == "b", "not this one: try the other.")
...     return "right"
>>> exercise = Exercise("Pick b", is_b, controls=[pick])
>>> exercise.run_check()
False
>>> "Not yet: not this one" in exercise.feedback.value
True
>>> pick.value = "b"; exercise.run_check()
True
"""

from __future__ import annotations

import html
import os
import re

import ipywidgets as w

from kerawidgets.widgets.export import code_text

__all__ = ["Exercise", "check", "code_view", "in_voila", "restore_button", "run_code_check"]

_STYLE = """<style>
.kw-exercise { border: 1px solid var(--jp-border-color2, #d0d7de); border-radius: 6px;
  padding: 6px 10px; margin: 4px 0; }
.kw-exercise-ok { color: #1e7b34; font-weight: 600; }
.kw-exercise-notyet { color: #b3261e; }
.kw-exercise-feedback { white-space: normal; }
</style>"""


def check(condition, hint: str) -> None:
    """Raise an AssertionError "Not yet: `hint`" when `condition` is false.

    >>> check(1 + 1 == 2, "arithmetic")
    """
    if not condition:
        raise AssertionError("Not yet: " + hint)


def in_voila() -> bool:
    """Whether this kernel runs under Voila (code hidden: checks go through widgets)."""
    return any(name in os.environ for name in ("VOILA_KERNEL_ID", "VOILA_BASE_URL",
                                               "VOILA_SERVER_URL"))


def run_code_check(check_function) -> str | None:
    """Run a code exercise's check and print its success message.

    In Voila the code cells hold the reference solution, not the student's
    work, so nothing is checked or printed there (the `Exercise` widgets are
    the exercises). A failed check raises its AssertionError ("Not yet: ...").
    """
    if in_voila():
        return None
    message = check_function()
    print(message)
    return message


class Exercise:
    """A question answered with widgets: `controls`, a Check button, feedback.

    Args:
        title: HTML shown above the controls (the task, never the answer).
        check_function: called with the controls' values, in order; raises
            AssertionError (see `check`) with a hint when the answer is not
            there yet, else returns the success message.
        controls: widgets whose `.value` is the answer (none when the answer
            is an edit made in the editor).
    """

    def __init__(self, title: str, check_function, controls=(), button="Check"):
        self.check_function = check_function
        self.controls = list(controls)
        self.button = w.Button(description=button, icon="check", button_style="info",
                               layout=w.Layout(width="auto"))
        self.button.add_class("kw-exercise-check")
        self.button.on_click(lambda _b: self.run_check())
        self.feedback = w.HTML()
        self.feedback.add_class("kw-exercise-feedback")
        self.widget = w.VBox([w.HTML(_STYLE + title),
                              w.HBox([*self.controls, self.button],
                                     layout=w.Layout(flex_flow="row wrap", align_items="center")),
                              self.feedback])
        self.widget.add_class("kw-exercise")

    def run_check(self) -> bool:
        """Check the current answer, show the feedback; True when it is right."""
        try:
            message = self.check_function(*(c.value for c in self.controls))
        except AssertionError as hint:
            self._show("kw-exercise-notyet", str(hint))
            return False
        except Exception as error:  # a check that could not run: say so, stay usable
            self._show("kw-exercise-notyet",
                       f"Not yet: the check could not run ({type(error).__name__}: {error}).")
            return False
        self._show("kw-exercise-ok", f"✅ {message}")
        return True

    def _show(self, cls, text):
        shown = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))  # `name` as code
        self.feedback.value = f"<span class='{cls}'>{shown}</span>"

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def restore_button(editor, description="Restore the workshop model") -> w.VBox:
    """A button that puts `editor` back on its original model, and says so.

    The edits stay available to Redo; `editor.original` was never changed.
    """
    button = w.Button(description=description, icon="history", layout=w.Layout(width="auto"))
    button.add_class("kw-restore")
    note = w.HTML()

    def restore(_button):
        if editor.model is not editor.original:
            editor.reset()
        note.value = "<i>The editor is back on the workshop model: no edits applied.</i>"

    button.on_click(restore)
    return w.VBox([button, note], layout=w.Layout(align_items="flex-start"))


def code_view(editor) -> w.HTML:
    """`editor.to_code()` in a box that follows every Apply, Undo, Redo and Reset."""
    view = w.HTML(layout=w.Layout(width="100%"))
    view.add_class("kw-code-view")

    def refresh():
        view.value = (f"<pre style='margin:0;white-space:pre-wrap'>"
                      f"{html.escape(code_text(editor))}</pre>")

    refresh()
    editor.on_change(refresh)
    return view
