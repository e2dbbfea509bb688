"""static_view: the static copy a GraphView or ModelEditor output carries for readers
without a kernel (the browser test tests/ui/test_static_view.py opens it in Chromium)."""

import keras
import numpy as np

from kerawidgets import node_metrics
from kerawidgets.edits import SetActivation
from kerawidgets.widgets import GraphView, ModelEditor

VIEW = "application/vnd.jupyter.widget-view+json"


def _model():
    inp = keras.Input((6,), name="features")
    h = keras.layers.Dense(8, activation="relu", name="hidden")(inp)
    return keras.Model(inp, keras.layers.Dense(3, name="head")(h), name="small")


def _data(bundle):
    return bundle[0] if isinstance(bundle, tuple) else bundle


def test_graph_view_output_carries_its_drawing_as_it_is_when_shown():
    view = GraphView(_model())
    view.set_metrics({"dead": node_metrics.metric("dead", {"hidden": 0.5})}, color_by="dead")
    view.mark("head", "edited")
    data = _data(view._repr_mimebundle_())
    assert VIEW in data  # the live widget stays first for front ends that run it
    assert data["image/svg+xml"] == view.to_svg()
    assert "50% dead" in data["text/html"] and "coloured by dead" in data["text/html"]
    assert data["text/html"].count("<svg") == 1


def test_editor_output_carries_graph_edits_and_plots():
    x = np.random.default_rng(0).normal(size=(16, 6)).astype("float32")
    editor = ModelEditor(_model(), x)
    before = _data(editor._repr_mimebundle_())
    assert "no edit yet" in before["text/html"] and "data:image/png" not in before["text/html"]
    editor.apply(SetActivation("hidden", "tanh"))
    data = _data(editor._repr_mimebundle_())
    html = data["text/html"]
    assert VIEW in data and data["text/plain"] == repr(editor)
    assert "Set the activation of 'hidden' to 'tanh'" in html
    assert html.count("data:image/png;base64,") == 2  # the comparison and depth plots
    assert "colour: movement" in html  # the graph as coloured after the edit
