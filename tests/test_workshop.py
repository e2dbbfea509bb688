"""kerawidgets.widgets.workshop: exercises checked with widgets, restore, live code, Voila."""

import ipywidgets as w
import keras
import numpy as np
import pytest

from kerawidgets.edits import SetActivation
from kerawidgets.widgets import ModelEditor
from kerawidgets.widgets.workshop import (
    Exercise,
    check,
    code_view,
    in_voila,
    restore_button,
    run_code_check,
)


@pytest.fixture
def editor():
    keras.utils.set_random_seed(0)
    inp = keras.Input((4,), name="x")
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inp)
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="head")(hidden))
    return ModelEditor(model, np.random.default_rng(0).normal(size=(16, 4)).astype("float32"))


def uses_gelu(editor):
    def check_it():
        used = editor.model.get_layer("hidden").activation.__name__
        check(used == "gelu", f"`hidden` uses {used!r}: pick the activation and press Apply.")
        return "done"
    return check_it


def test_exercise_checks_the_editor_and_says_what_next(editor):
    exercise = Exercise("Give hidden gelu", uses_gelu(editor))
    exercise.button.click()
    assert "kw-exercise-notyet" in exercise.feedback.value
    assert ("Not yet: <code>hidden</code> uses &#x27;relu&#x27;: pick the activation"
            in exercise.feedback.value)
    editor.apply(SetActivation("hidden", "gelu"))
    exercise.button.click()
    assert "kw-exercise-ok" in exercise.feedback.value and "✅ done" in exercise.feedback.value


def test_exercise_reads_its_controls_and_survives_a_broken_check():
    pick = w.Dropdown(options=["a", "b"], value="a")
    seen = []

    def broken(choice):
        seen.append(choice)
        raise ZeroDivisionError("oops")

    exercise = Exercise("Pick", broken, controls=[pick])
    assert exercise.run_check() is False
    assert seen == ["a"] and "could not run (ZeroDivisionError: oops)" in exercise.feedback.value


def test_restore_button_and_live_code(editor):
    code = code_view(editor)
    assert "0 edit(s)" in code.value
    editor.apply(SetActivation("hidden", "gelu"))
    assert "1 edit(s)" in code.value and "gelu" in code.value  # follows Apply
    box = restore_button(editor)
    button = box.children[0]
    button.click()
    assert editor.model is editor.original and "0 edit(s)" in code.value
    assert "back on the workshop model" in box.children[1].value
    editor.redo()  # the edits stay available
    assert "1 edit(s)" in code.value


def test_code_checks_are_silent_in_voila(monkeypatch, capsys):
    for name in ("VOILA_KERNEL_ID", "VOILA_BASE_URL", "VOILA_SERVER_URL"):
        monkeypatch.delenv(name, raising=False)
    assert not in_voila()
    assert run_code_check(lambda: "✅ fine") == "✅ fine"
    assert "✅ fine" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="Not yet: hint"):
        run_code_check(lambda: check(False, "hint"))
    monkeypatch.setenv("VOILA_KERNEL_ID", "abc")
    assert in_voila()
    assert run_code_check(lambda: check(False, "hint")) is None  # not the student's code
    assert capsys.readouterr().out == ""
