"""ExportBox: the editor's figures as PNG/SVG downloads and its to_code() to copy."""

import base64
import xml.etree.ElementTree as ET

import keras
import numpy as np
import pytest
from keras import layers

from kerawidgets.edits import SetActivation
from kerawidgets.widgets import ModelEditor
from kerawidgets.widgets.export import editor_export, figure_files, file_stem

PNG = b"\x89PNG\r\n\x1a\n"


def small_model():
    inp = keras.Input((6,), name="features")
    x = layers.Dense(8, activation="relu", name="hidden")(inp)
    return keras.Model(inp, layers.Dense(3, activation="softmax", name="head")(x), name="tiny")


@pytest.fixture
def editor():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    return ModelEditor(small_model(), rng.normal(size=(16, 6)).astype("float32"),
                       rng.integers(0, 3, size=16))


def press_figures(box):
    box._on_message(box, {"event": "figures"}, [])


def test_the_box_follows_the_editor_and_draws_both_figures_in_both_formats(editor):
    box = editor.export
    assert box in editor.panel.widget.children
    assert box.code == editor.to_code() and not box.can_draw and box.files == []
    press_figures(box)  # nothing to draw yet: the button is disabled, a message does nothing
    assert box.files == []

    editor.apply(SetActivation("hidden", "tanh"))
    assert box.code == editor.to_code()
    assert "replace_activation(model, 'hidden', 'tanh')" in box.code
    assert box.can_draw
    press_figures(box)
    names = [f["name"] for f in box.files]
    assert names == ["tiny_step1_comparison.png", "tiny_step1_comparison.svg",
                     "tiny_step1_depth.png", "tiny_step1_depth.svg"]
    for file in box.files:
        data = base64.b64decode(file["data"])
        assert file["size"] == len(data) > 1000
        if file["name"].endswith(".png"):
            assert data.startswith(PNG) and file["mime"] == "image/png"
        else:
            assert ET.fromstring(data).tag.endswith("svg") and file["mime"] == "image/svg+xml"
    assert "4 files of the plots shown now" in box.note

    editor.undo()  # the links were of step 1: taken away, and the box says why
    assert box.files == [] and not box.can_draw
    assert "press Figures again" in box.note
    assert box.code == editor.to_code() and "0 edit(s)" in box.code


def test_the_browser_writes_nothing_and_only_the_figures_request_is_heard(editor):
    editor.apply(SetActivation("hidden", "tanh"))
    box = editor.export
    code = box.code
    box.set_state({"code": "import os; os.remove('x')", "can_draw": True,
                   "files": [{"name": "evil.html"}], "_esm": "alert(1)"})
    assert box.code == code and box.files == [] and "alert" not in str(box._esm)
    box._on_message(box, {"event": "figures", "extra": 1}, [])
    box._on_message(box, "figures", [])
    assert box.files == []
    press_figures(box)
    assert len(box.files) == 4


def test_a_figure_that_cannot_be_drawn_is_said_in_the_box(editor):
    editor.apply(SetActivation("hidden", "tanh"))
    def broken():
        raise ValueError("no figures today")

    fake = type("Fake", (), {"figures": staticmethod(broken), "to_code": editor.to_code,
                             "history": editor.history, "original": editor.original,
                             "on_change": lambda self, callback: None})()
    box = editor_export(fake)
    box.can_draw = True
    press_figures(box)
    assert box.files == [] and "Could not draw the figures (ValueError: no figures today)" in box.note


def test_file_names_are_safe_and_formats_checked():
    assert file_stem("a/../b c", 3) == "a_.._b_c_step3"
    import matplotlib.figure
    figure = matplotlib.figure.Figure(figsize=(1, 1))
    with pytest.raises(ValueError, match="Export formats are"):
        figure_files({"x": figure}, "stem", formats=("pdf",))
