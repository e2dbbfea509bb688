"""ModelEditor driven from Python: every control, the scripting API, the error path."""

import asyncio
import dataclasses
import gc
import html
import threading
import weakref

import ipywidgets
import keras
import numpy as np
import pytest
from keras import layers

from kerawidgets import KerawidgetsError, ShapeMismatchError, catalog
from kerawidgets.edits import (
    EDIT_TYPES,
    InsertLayer,
    RemoveLayer,
    ReplaceLayer,
    SetActivation,
    SetSettings,
)
from kerawidgets.history import History, Step
from kerawidgets.probe import ProbeDataError
from kerawidgets.widgets import ModelEditor
from kerawidgets.widgets import editor as editor_module
from kerawidgets.widgets.editor import SaveCheckError
from kerawidgets.widgets.editor_panel import gui_text
from tests.models import CountCalls

PNG = b"\x89PNG\r\n\x1a\n"


def cnn():
    inp = keras.Input((8, 8, 1), name="image")
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_a")(inp)
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_b")(x)
    x = layers.MaxPooling2D(name="pool")(x)
    x = layers.Dropout(0.1, name="drop")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(16, name="hidden")(x)
    x = layers.ReLU(name="hidden_relu")(x)
    out = layers.Dense(10, activation="softmax", name="head")(x)
    return keras.Model(inp, out, name="digits_cnn")


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(24, 8, 8, 1)).astype("float32"), rng.integers(0, 10, size=24)


@pytest.fixture
def editor(data):
    x, y = data
    return ModelEditor(cnn(), x, y)


def weights_of(model):
    return [w.copy() for w in model.get_weights()]


def same_weights(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


# --- selection and the panel ---------------------------------------------------------


def test_selecting_a_layer_fills_the_panel(editor):
    editor.select("conv_b")
    p = editor.panel
    assert "conv_b" in p.title.value and "Conv2D" in p.title.value
    assert "(None, 8, 8, 8)" in p.info.value and "relu" in p.info.value
    assert "&quot;filters&quot;: 8" in p.config.value
    assert p.activation.value == "relu" and not p.activation.disabled
    assert "all 2 Conv2D layers" in p.bulk.description
    assert "Dropout" in [v for _, v in p.insert.options]
    p.tabs.selected_index = p.actions.index("replace")
    replace = dict((v, k) for k, v in p.replace.options)
    assert "SeparableConv2D" in replace and "LSTM" not in replace
    assert replace["SeparableConv2D"] == "SeparableConv2D"  # the verdict line says the shape


def test_the_replacements_are_found_when_the_replace_tab_or_compare_is_opened(editor, monkeypatch):
    """Finding them checks each shape-changing one down the model: not while neither shows."""
    asked = []
    real = catalog.replacement_choices
    monkeypatch.setattr(catalog, "replacement_choices",
                        lambda model, path: asked.append(path) or real(model, path))
    p, compare = editor.panel, editor.compare_panel
    editor.select("conv_b")
    assert asked == [] and [v for _, v in p.replace.options] == [editor_module.NONE_CHOICE]
    assert "replace with SeparableConv2D" not in compare.choices.options
    compare.widget.selected_index = 0  # "Compare several" opened
    assert asked == ["conv_b"] and "replace with SeparableConv2D" in compare.choices.options
    p.tabs.selected_index = p.actions.index("replace")
    assert asked == ["conv_b"]  # found once for this layer
    assert "SeparableConv2D" in [v for _, v in p.replace.options]
    editor.select("conv_a")  # the Replace tab open: found at once
    assert asked == ["conv_b", "conv_a"]
    assert "SeparableConv2D" in [v for _, v in p.replace.options]
    p.tabs.selected_index = p.actions.index("activation")
    compare.widget.selected_index = None
    editor.apply(SetActivation("conv_a", "tanh"))  # the panel refilled: nothing shows them
    assert asked == ["conv_b", "conv_a"]
    assert "replace with SeparableConv2D" not in compare.choices.options
    p.tabs.selected_index = p.actions.index("replace")
    assert asked == ["conv_b", "conv_a", "conv_a"]
    p.replace.value = "SeparableConv2D"
    assert isinstance(editor.pending_edit(), ReplaceLayer)


def test_input_node_cannot_be_edited(editor):
    editor.select("image")
    assert "Inputs cannot be edited" in editor.panel.status.value
    assert editor.panel.apply_button.disabled


def test_front_end_cannot_select_unknown_layer(editor):
    editor.view.selected = {"id": "no_such_layer"}
    assert editor.view.selected == {}
    with pytest.raises(KerawidgetsError, match="Select a layer"):
        editor.pending_edit()


# --- activation ----------------------------------------------------------------------


def test_activation_swap_from_the_panel(editor):
    original_weights = weights_of(editor.original)
    editor.select("conv_a")
    editor.panel.activation.value = "gelu"
    assert "every existing weight is kept" in editor.panel.preview.value
    assert not editor.panel.apply_button.disabled
    editor.panel.apply_button.click()
    assert editor.model.get_layer("conv_a").activation.__name__ == "gelu"
    assert editor.original.get_layer("conv_a").activation.__name__ == "relu"
    assert same_weights(weights_of(editor.model), original_weights)
    assert same_weights(weights_of(editor.original), original_weights)
    assert editor.history == [SetActivation("conv_a", "gelu")]
    assert editor.report["conv_a"].status == "kept"
    assert "Last rebuild" in editor.panel.report.value
    assert bytes(editor.comparison_image.value).startswith(PNG)
    assert bytes(editor.depth_image.value).startswith(PNG)
    assert editor.view.marks == {"conv_a": "edited"}
    moved = editor.view.metrics["movement"]["values"]
    assert moved["conv_a"] > 0 and moved.get("image", 0) == 0
    assert {"dead", "saturation", "near_zero", "mean", "std"} <= set(editor.view.metrics)
    assert editor.view.active_coloring()[0] == "movement"
    assert "kwe-status-ok" in editor.panel.status.value


def test_bulk_activation_swap_uses_the_class(editor):
    editor.select("conv_a")
    editor.panel.bulk.value = True
    editor.panel.activation.value = "tanh"
    assert "Conv2D" in editor.panel.preview.value
    editor.panel.apply_button.click()
    assert [editor.model.get_layer(n).activation.__name__ for n in ("conv_a", "conv_b")] == [
        "tanh", "tanh"]
    assert editor.history[0].layer is layers.Conv2D
    assert set(editor.view.marks) == {"conv_a", "conv_b"}


def test_activation_layer_swap(editor):
    editor.select("hidden_relu")
    editor.panel.activation.value = "elu"
    editor.panel.apply_button.click()
    assert type(editor.model.get_layer("hidden_relu")).__name__ == "Activation"
    assert editor.model.get_layer("hidden_relu").activation.__name__ == "elu"


def test_relu6_layers_are_shown_as_relu6(data):
    """MobileNetV2's ReLU(max_value=6): relu6 is "already used", relu is a real change."""
    x, y = data
    inp = keras.Input((8, 8, 1), name="image")
    h = layers.Conv2D(4, 3, name="conv")(inp)
    h = layers.ReLU(6.0, name="relu_a")(h)
    h = layers.Conv2D(4, 3, name="conv2")(h)
    h = layers.ReLU(6.0, name="relu_b")(h)
    out = layers.Dense(10, activation="softmax", name="head")(layers.Flatten(name="flat")(h))
    editor = ModelEditor(keras.Model(inp, out), x, y)
    assert editor.view.graph.node("relu_a").activation == "relu6"
    editor.select("relu_a")
    p = editor.panel
    assert p.activation.value == "relu6" and "relu6" in p.info.value
    assert p.activation_setting.layout.display == "none"  # one plain `activation` setting
    assert p.apply_button.disabled
    with pytest.raises(KerawidgetsError, match="already uses 'relu6'"):
        editor.pending_edit()
    assert "with activation 'relu6'" in p.bulk.description
    p.activation.value = "relu"  # unbounded: a real change, not "already used"
    assert editor.pending_edit() == SetActivation("relu_a", "relu")
    assert not p.apply_button.disabled
    p.apply_button.click()
    assert type(editor.model.get_layer("relu_a")).__name__ == "Activation"
    assert "max_value=6" in editor.report["relu_a"].reason
    assert type(editor.model.get_layer("relu_b")) is layers.ReLU


def test_every_activation_setting_is_offered(data):
    x, y = data
    inp = keras.Input((8, 8), name="seq")
    h = layers.LSTM(6, return_sequences=True, name="lstm")(inp)
    h = layers.LSTM(6, return_sequences=True, activation="relu", name="lstm_b")(h)
    out = layers.Dense(10, activation="softmax", name="head")(layers.Flatten(name="flat")(h))
    editor = ModelEditor(keras.Model(inp, out), x[..., 0], y)
    editor.select("lstm")
    p = editor.panel
    assert list(p.activation_setting.options) == ["activation", "recurrent_activation"]
    assert p.activation_setting.layout.display is None and p.activation.value == "tanh"
    assert "recurrent_activation" in p.info.value and "sigmoid" in p.info.value
    assert p.bulk.disabled  # no other LSTM with activation tanh
    p.activation_setting.value = "recurrent_activation"
    assert p.activation.value == "sigmoid"
    # both LSTMs have the sigmoid gate (their `activation`s differ)
    assert not p.bulk.disabled and "2 LSTM layers with recurrent activation 'sigmoid'" in p.bulk.description
    p.activation.value = "hard_sigmoid"
    assert editor.pending_edit() == SetActivation("lstm", "hard_sigmoid", attribute="recurrent_activation")
    p.apply_button.click()
    assert editor.model.get_layer("lstm").cell.recurrent_activation.__name__ == "hard_sigmoid"
    assert editor.model.get_layer("lstm").cell.activation.__name__ == "tanh"
    assert "recurrent_activation sigmoid -> hard_sigmoid" in editor.report["lstm"].reason


def test_layer_without_activation_offers_none(editor):
    editor.select("pool")
    assert editor.panel.activation.disabled
    assert editor.panel.activation.value == "(no activation)"  # not a stale "relu"
    assert "no activation" in editor.panel.activation_note.value
    assert editor.panel.apply_button.disabled


# --- replace, insert, remove -------------------------------------------------------


def test_replace_with_form(editor):
    editor.select("conv_b")
    p = editor.panel
    p.tabs.selected_index = 1
    p.replace.value = "SeparableConv2D"
    form = p.replace_settings.widgets
    assert form["filters"].value == 8 and form["kernel_size"].value == "3, 3"
    assert form["padding"].value == "same" and form["activation"].value == "relu"
    assert "keeps shape" in p.replace_verdict.value
    form["kernel_size"].value = "5, 5"
    assert "SeparableConv2D" in p.preview.value and "reinitialised" in p.preview.value
    p.apply_button.click()
    new = editor.model.get_layer("conv_b")
    assert type(new).__name__ == "SeparableConv2D" and tuple(new.kernel_size) == (5, 5)
    assert editor.report["conv_b"].status == "reinitialised"
    np.testing.assert_array_equal(new(np.zeros((1, 8, 8, 8), "float32")).shape, (1, 8, 8, 8))


def test_malformed_form_value_is_refused(editor):
    editor.select("conv_b")
    p = editor.panel
    p.tabs.selected_index = 1
    p.replace.value = "Conv2D"
    p.replace_settings.widgets["kernel_size"].value = "__import__('os')"
    assert p.apply_button.disabled
    assert "whole numbers" in p.preview.value
    with pytest.raises(KerawidgetsError, match="kernel_size"):
        editor.pending_edit()


def test_impossible_replacement_shows_message_and_changes_nothing(editor):
    before = editor.model
    weights = weights_of(before)
    editor.select("conv_b")
    p = editor.panel
    p.tabs.selected_index = 1
    p.replace.value = "Conv2D"
    p.replace_settings.widgets["filters"].value = 4  # the next layers were built for 8 channels
    assert "cannot apply" in p.preview.value and p.apply_button.disabled
    with pytest.raises(ShapeMismatchError) as caught:
        editor.apply(editor.pending_edit())
    assert "hidden" in caught.value.downstream
    assert "kwe-status-error" in p.status.value and "hidden" in p.status.value
    # The script's message, worded for the panel: the checkbox instead of the argument.
    assert html.escape(gui_text(str(caught.value))) in p.status.value
    assert "Tick" in p.status.value and "Pass reinitialize" not in p.status.value
    assert editor.model is before and editor.history == []
    assert same_weights(weights_of(editor.model), weights)
    assert "error" in editor.view.marks.values()
    # Still usable: the same edit with re-initialisation allowed goes through.
    p.reinitialize.value = True
    assert not p.apply_button.disabled and "downstream affected" in p.preview.value
    p.apply_button.click()
    assert editor.model.get_layer("conv_b").filters == 4
    assert editor.report["hidden"].status == "reinitialised"
    assert editor.to_code().strip().endswith("reinitialize='downstream')")


def test_plot_failure_keeps_the_edit_and_the_editor_usable(editor, monkeypatch):
    from kerawidgets import plots

    def broken(*args, **kwargs):
        raise ValueError("no figure today")

    monkeypatch.setattr(plots.FigureCache, "png", broken)
    p = editor.panel
    editor.select("conv_a")
    p.activation.value = "gelu"
    p.apply_button.click()
    # The rebuild worked: the edit is kept, the failure is said inline, nothing stays busy.
    assert editor.model.get_layer("conv_a").activation.__name__ == "gelu"
    assert editor.history == [SetActivation("conv_a", "gelu")]
    assert "kwe-status-error" in p.status.value and "no figure today" in p.status.value
    assert "Applied" in p.status.value and "Probing" not in p.status.value
    assert p.progress.layout.visibility == "hidden" and not editor.session.busy
    assert "no figure today" in editor.plots_note.value
    assert editor.comparison_image.value == b"" and editor.depth_image.value == b""
    assert editor.view.marks == {"conv_a": "edited"} and not p.undo_button.disabled
    # A scripted apply returns its report too (the edit did apply).
    assert editor.apply(SetActivation("conv_b", "tanh"))["conv_b"].status == "kept"
    assert "no figure today" in p.status.value
    monkeypatch.undo()
    p.undo_button.click()
    assert "kwe-status-ok" in p.status.value and len(editor.history) == 1
    assert bytes(editor.comparison_image.value).startswith(PNG)


def test_layer_names_with_dollar_signs(data):
    name = "odd$\\foo{$"
    inp = keras.Input((4,), name="x")
    h = layers.Dense(8, activation="relu", name=name)(inp)
    model = keras.Model(inp, layers.Dense(3, activation="softmax", name="out$")(h))
    editor = ModelEditor(model, np.random.default_rng(0).normal(size=(16, 4)))
    editor.select(name)
    editor.panel.activation.value = "tanh"
    editor.panel.apply_button.click()
    assert editor.model.get_layer(name).activation.__name__ == "tanh"
    assert "kwe-status-ok" in editor.panel.status.value
    assert bytes(editor.comparison_image.value).startswith(PNG)
    assert bytes(editor.depth_image.value).startswith(PNG)


def test_button_error_is_shown_not_raised(editor):
    editor.select("conv_b")
    editor.panel.tabs.selected_index = 1
    editor.panel.replace.value = "Conv2D"
    editor.panel.replace_settings.widgets["filters"].value = 4
    editor.panel.apply_button.disabled = False  # a stale front end pressing Apply anyway
    editor.panel.apply_button.click()
    assert "kwe-status-error" in editor.panel.status.value
    assert editor.history == []


def test_insert_after(editor):
    editor.select("hidden")
    p = editor.panel
    p.tabs.selected_index = 2
    p.insert.value = "Dropout"
    p.insert_settings.widgets["rate"].value = 0.3
    p.apply_button.click()
    names = [layer.name for layer in editor.model.layers]
    assert names[names.index("hidden") + 1] == "dropout"
    assert editor.model.get_layer("dropout").rate == pytest.approx(0.3)
    assert editor.report.new == ["dropout"]
    assert editor.compare()["layer"] == "dropout" and editor.compare()["layer_before"] == "hidden"


def test_remove(editor):
    editor.select("conv_a")
    editor.panel.tabs.selected_index = 3
    p = editor.panel
    # 1 -> 8 channels: said once in the Remove tab, the preview says what Apply would need.
    assert "tick 'allow reinitialising downstream layers'" in p.remove_note.value
    assert p.apply_button.disabled
    assert html.escape("Tick 'allow reinitialising downstream layers'") in p.preview.value
    assert "Pass reinitialize" not in p.preview.value and "re-initialis" not in p.preview.value
    p.reinitialize.value = True  # the checkbox allows it: conv_b gets fresh weights
    assert not p.apply_button.disabled and "conv_b" in p.preview.value
    p.apply_button.click()
    assert editor.report["conv_b"].status == "reinitialised" and editor.report.removed == ["conv_a"]
    assert p.reinitialize.value is False  # unticked after Apply: the next edit asks again
    editor.reset()
    editor.select("drop")
    assert "flows on" in editor.panel.remove_note.value
    editor.panel.apply_button.click()
    assert "drop" not in [layer.name for layer in editor.model.layers]
    assert editor.report.removed == ["drop"]
    assert editor.compare()["layer"] == "pool"
    np.testing.assert_allclose(editor.probe.model_output(editor.model),
                               editor.probe.model_output(editor.original), atol=1e-6)


# --- undo, redo, reset -----------------------------------------------------------------


def test_undo_redo_reset_keep_models(editor):
    editor.apply(SetActivation("conv_a", "gelu"))
    first = editor.model
    editor.apply(SetActivation("head", "sigmoid"))
    second = editor.model
    p = editor.panel
    assert not p.undo_button.disabled and p.redo_button.disabled
    p.undo_button.click()
    assert editor.model is first and editor.history == [SetActivation("conv_a", "gelu")]
    assert editor.view.marks == {"conv_a": "edited"}
    p.redo_button.click()
    assert editor.model is second
    p.reset_button.click()
    assert editor.model is editor.original and editor.history == []
    assert editor.view.metrics == {} and editor.view.marks == {}
    # No plot, but laid out: the browser keeps reporting the width to draw the next for.
    assert editor.comparison_image.value == b"" and editor.comparison_image.layout.display is None
    p.redo_button.click()
    assert editor.model is first
    editor.apply(SetActivation("conv_b", "elu"))  # drops the redo step
    assert not editor.session._history.can_redo and len(editor.history) == 2


def test_history_drops_old_models_and_rebuilds_them():
    model = keras.Sequential([keras.Input((3,)), layers.Dense(2, name="d")])
    history = History(model, max_models=1)
    from kerawidgets.rebuild import rebuild

    current = model
    for name in ("tanh", "relu", "elu"):
        result = rebuild(current, [SetActivation("d", name)])
        history.push(Step(result.edits[0], None, result.model, result.report))
        current = result.model
    assert history.kept_models() == 2  # the original and the newest
    history.undo()
    assert history.current.model.get_layer("d").activation.__name__ == "relu"
    np.testing.assert_array_equal(history.current.model.get_layer("d").kernel.numpy(),
                                  model.get_layer("d").kernel.numpy())


def test_many_edits_free_old_models_and_stay_within_the_memory_budget(monkeypatch):
    from kerawidgets import plots

    monkeypatch.setattr(plots.FigureCache, "png", lambda *args, **inputs: PNG)  # speed: no rendering
    inp = keras.Input((6,), name="x")
    h = layers.Dense(32, activation="relu", name="h1")(inp)
    h = layers.Dense(32, activation="relu", name="h2")(h)
    model = keras.Model(inp, layers.Dense(4, activation="softmax", name="head")(h))
    x = np.random.default_rng(0).normal(size=(64, 6)).astype("float32")
    per_model = 64 * (6 + 32 + 32 + 4) * 4
    budget = int(2.5 * per_model) + 4 * 70_000  # two models' outputs and their summaries
    editor = ModelEditor(model, x, memory_budget=budget, history_size=2)
    editor.select("h2")
    refs = []
    for i in range(20):
        editor.apply(SetActivation("h2", ("tanh", "gelu", "elu", "selu")[i % 4]))
        refs.append(weakref.ref(editor.model))
        if i == 10:
            editor.undo()
            editor.redo()
    gc.collect()
    # History keeps the current and the previous model; every other edited
    # model is collected (no cache of the probe or the editor holds it).
    assert [i for i, ref in enumerate(refs) if ref() is not None] == [18, 19]
    assert len(editor.probe._graphs) <= 4
    assert editor.probe.cache_bytes <= budget and editor.probe.peak_bytes <= budget


def test_nothing_to_undo_is_a_message(editor):
    with pytest.raises(KerawidgetsError, match="Nothing to undo"):
        editor.undo()


# --- scripting API: to_code, save, compare --------------------------------------------------


def test_to_code_replays_the_edits(editor):
    editor.apply(SetActivation("conv_a", "gelu"))
    editor.apply(ReplaceLayer("pool", layers.AveragePooling2D(2)))
    editor.apply(InsertLayer("hidden", layers.LayerNormalization()))
    editor.apply(RemoveLayer("drop"))
    code = editor.to_code()
    assert code.startswith("import keras\nimport kerawidgets\n")
    namespace = {"model": editor.original}
    exec(code, namespace)
    replayed = namespace["model"]
    assert replayed is not editor.original
    x = editor.probe.x
    np.testing.assert_allclose(replayed.predict(x, verbose=0), editor.model.predict(x, verbose=0),
                               atol=1e-6)


def test_save_reloads_and_checks(editor, tmp_path):
    editor.apply(SetActivation("hidden_relu", "gelu"))
    path = editor.save(tmp_path / "edited.keras")
    assert path.endswith("edited.keras")
    reloaded = keras.saving.load_model(path)
    assert reloaded.get_layer("hidden_relu").activation.__name__ == "gelu"
    assert "outputs match" in editor.panel.status.value
    assert [p.name for p in tmp_path.iterdir()] == ["edited.keras"]
    with pytest.raises(KerawidgetsError, match=".keras"):
        editor.save(tmp_path / "edited.h5")


@keras.saving.register_keras_serializable(package="kerawidgets_test_editor")
class ForgetfulScale(layers.Layer):
    """Multiplies by a factor set after construction, which its config does not hold."""

    factor = 1.0

    def call(self, x):
        return x * self.factor


def test_save_check_catches_a_layer_that_does_not_round_trip(tmp_path):
    inp = keras.Input((4,), name="x")
    scale = ForgetfulScale(name="scale")
    scale.factor = 3.0
    model = keras.Model(inp, scale(layers.Dense(2, name="d")(inp)))
    editor = ModelEditor(model, np.ones((4, 4), "float32"))
    with pytest.raises(SaveCheckError, match="differ") as caught:
        editor.save(tmp_path / "bad.keras")
    assert "Nothing was saved" in str(caught.value)
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary one is left


def test_compare_numbers(editor):
    assert editor.compare()["agreement"] is None
    editor.apply(SetActivation("head", "sigmoid"))
    result = editor.compare()
    assert result["layer"] == "head" and result["against"] == "original"  # what the plots show
    assert set(result["agreement"]) >= {"max_abs_diff", "top1_agreement", "accuracy_before",
                                        "accuracy_after", "loss_before", "loss_after"}
    assert result["layer_stats"]["after"]["max"] <= 1.0
    assert result["movement"]["head"] > 0 and result["movement"]["conv_a"] == 0
    assert result["recompute"] == "incremental"
    editor.apply(SetActivation("conv_a", "tanh"))
    assert editor.compare("original")["movement"]["head"] > 0
    assert editor.compare("original")["movement"]["conv_a"] > 0
    assert set(editor.figures()) == {"comparison", "depth"}
    assert "accuracy" in editor.plots_note.value


def test_plots_compare_with_the_original_and_the_switch_shows_the_last_step(editor,
                                                                           monkeypatch):
    c = editor.plot_controls
    assert c.widget.layout.display == "none"  # nothing to compare yet
    editor.apply(SetActivation("conv_a", "tanh"))
    editor.apply(SetActivation("head", "sigmoid"))
    assert c.widget.layout.display is None and c.against.value == "original"
    assert "against the original (2 edits)" in editor.plots_note.value
    first_heat = dict(editor.view.metrics["movement"]["values"])
    assert first_heat["conv_a"] > 0  # the first edit moved it: the heat shows it
    original_png = editor.comparison_image.value
    calls = CountCalls(monkeypatch)
    c.against.set_state({"index": 1})  # the browser clicks "the last step"
    assert editor.session.against == "previous" and calls.names == []
    assert "against the last step" in editor.plots_note.value
    assert editor.comparison_image.value != original_png
    assert editor.view.metrics["movement"]["values"]["conv_a"] == 0
    assert editor.compare()["against"] == "previous"
    editor.undo()
    editor.redo()  # the choice stays; each step keeps its comparisons: nothing runs
    assert c.against.value == "previous" and calls.names == []
    editor.show("original")  # scripted, the switch follows
    assert c.against.value == "original" and editor.comparison_image.value == original_png
    c.against.set_state({"options": [("x", "x")], "index": "0"})  # refused, nothing changes
    assert [v for _, v in c.against.options] == ["original", "previous"]


def test_every_edited_layer_is_marked_and_can_be_plotted(editor, monkeypatch):
    editor.apply(SetActivation(layers.Conv2D, "elu"))  # a bulk edit: conv_a and conv_b
    assert set(editor.view.marks) == {"conv_a", "conv_b"}
    picker = editor.plot_controls.layer
    assert [v for _, v in picker.options] == ["conv_a", "conv_b"] and picker.value == "conv_a"
    assert not picker.disabled and editor.compare()["layer"] == "conv_a"
    shown = editor.comparison_image.value
    calls = CountCalls(monkeypatch)
    picker.set_state({"index": 1})
    assert editor.session.plotted_layer == "conv_b" and editor.compare()["layer"] == "conv_b"
    assert editor.comparison_image.value != shown and calls.names == []
    editor.show(layer="conv_a")  # scripted, the picker follows
    assert picker.value == "conv_a" and editor.edited_layers() == ["conv_a", "conv_b"]
    editor.apply(SetActivation("head", "sigmoid"))
    assert set(editor.view.marks) == {"conv_a", "conv_b", "head"}
    assert picker.value == "head" and [v for _, v in picker.options] == ["conv_a", "conv_b",
                                                                         "head"]


def test_incremental_recompute_after_edit_near_the_output(editor):
    editor.apply(SetActivation("head", "sigmoid"))
    numbers = editor.compare()
    assert numbers["recompute"] == "incremental" and numbers["recomputed"] == ["head"]



def test_apply_runs_at_most_one_pass_and_undo_redo_run_none(editor, monkeypatch):
    editor.probe.summaries(editor.original)  # what opening a plot did once
    calls = CountCalls(monkeypatch)
    batches = -(-editor.probe.n // editor.probe.batch_size)
    assert batches == 2
    editor.apply(SetActivation("conv_a", "gelu"))  # the first layer: everything after it
    names = [layer.name for layer in editor.original.layers][1:]
    assert calls.names == names * batches  # one pass of the edited model, batch by batch
    calls.names.clear()
    editor.apply(SetActivation("head", "sigmoid"))
    assert calls.names == ["head"] * batches
    shown = editor.comparison_image.value
    calls.names.clear()
    for move in (editor.undo, editor.redo, editor.undo, editor.undo, editor.redo, editor.redo):
        move()
    assert calls.names == []  # only redrawn
    assert editor.comparison_image.value == shown
    assert editor.compare()["recompute"] == "incremental"  # what made the plots, kept
    # A step whose model History dropped keeps its summaries: no pass after its rebuild.
    editor.session._history.max_models = 1
    editor.session._history._trim()
    editor.undo()
    assert calls.names == [] and editor.session._history.steps[1].model is not None
    assert editor.compare("original")["per_layer"]["after"]["conv_a"]["mean"] is not None
    assert calls.names == []
    # An edit from a rebuilt model: its kept summaries stand in (only the head is summarised
    # again); with no full output kept for it, its input is recomputed: one pass at most.
    editor.apply(SetActivation("head", "tanh"))
    numbers = editor.compare()
    assert numbers["recompute"] == "incremental" and numbers["recomputed"] == ["head"]
    assert calls.names == names * batches


def panel_state(editor):
    p = editor.panel
    return {"busy": editor.session.busy, "apply": p.apply_button.disabled, "undo": p.undo_button.disabled,
            "bar": p.progress.layout.visibility, "step": (p.progress.value, p.progress.max),
            "status": p.status.value}


def test_every_slow_step_shows_the_busy_state(editor, monkeypatch):
    import kerawidgets.history as history_module
    import kerawidgets.session as module
    from kerawidgets import catalog

    seen = []

    def spy(where, real):
        def run(*args, **kwargs):
            seen.append((where, panel_state(editor)))
            return real(*args, **kwargs)
        return run

    monkeypatch.setattr(module, "rebuild", spy("rebuild", module.rebuild))
    monkeypatch.setattr(catalog, "replacement_choices", spy("catalog", catalog.replacement_choices))
    p = editor.panel
    # Selecting a layer, with the Replace tab open: the catalog scan runs busy.
    p.tabs.selected_index = p.actions.index("replace")
    editor.select("conv_a")
    ((where, state),) = seen
    assert where == "catalog" and state["busy"] and state["bar"] == "visible"
    assert state["apply"] and state["step"] == (2, 3) and "layer types that fit" in state["status"]
    # Selecting another, then opening the Replace tab: its scan waited for that, and runs busy.
    p.tabs.selected_index = p.actions.index("activation")
    editor.select("conv_b")
    assert len(seen) == 1
    p.tabs.selected_index = p.actions.index("replace")
    where, state = seen[-1]
    assert where == "catalog" and state["busy"] and state["bar"] == "visible"
    assert state["step"] == (1, 1) and "layer types that fit" in state["status"]
    p.tabs.selected_index = p.actions.index("activation")
    editor.select("conv_a")
    # Each change of the panel: the dry-run rebuild of the preview runs busy, then Apply is enabled.
    p.activation.value = "gelu"
    where, state = seen[-1]
    assert where == "rebuild" and state["busy"] and state["apply"] and state["bar"] == "visible"
    assert "dry-run rebuild" in state["status"] and "kwe-status-busy" in state["status"]
    after = panel_state(editor)
    assert not after["busy"] and not after["apply"] and after["bar"] == "hidden"
    assert "Checking" not in after["status"]
    # Apply: five steps in order, each saying what it does, then cleared.
    steps, texts = [], []
    p.progress.observe(lambda c: steps.append((c["new"], p.progress.max)), names="value")
    p.status.observe(lambda c: texts.append(c["new"]), names="value")
    p.apply_button.click()
    assert [s for s in steps if s[0] == int(s[0]) and s[0]] == [(1, 5), (2, 5), (3, 5), (4, 5),
                                                                 (5, 5)]
    probing = [s[0] for s in steps if s[0] != int(s[0])]  # the probe moves the bar on
    assert probing and probing == sorted(probing) and all(3 < v < 4 for v in probing)
    busy = [t for t in texts if "kwe-status-busy" in t]
    words = ["Rebuilding", "graph", "Probing", "plots", "panel"]
    said = [next(word for word in words if word in text) for text in busy]
    assert [w for i, w in enumerate(said) if i == 0 or said[i - 1] != w] == words
    assert "layer calls (3/5)" in busy[said.index("Probing") + 1]  # real progress, in words too
    assert "Applied" in p.status.value and p.progress.layout.visibility == "hidden"
    assert not editor.session.busy and not p.undo_button.disabled and p.apply_button.disabled
    # Replace dropdown: the choice's check and dry run run busy too.
    seen.clear()
    p.tabs.selected_index = 1
    p.replace.value = "SeparableConv2D"
    where, state = seen[-1]
    assert where == "rebuild" and state["busy"] and state["apply"] and state["bar"] == "visible"
    assert not panel_state(editor)["busy"] and not p.apply_button.disabled
    # Undo rebuilding a model History no longer keeps: busy while it rebuilds.
    editor.session._history.max_models = 1
    editor.apply(SetActivation("conv_b", "tanh"))
    assert editor.session._history.steps[1].model is None
    monkeypatch.setattr(history_module, "rebuild", spy("history", history_module.rebuild))
    seen.clear()
    editor.undo()
    ((where, state), *_) = seen
    assert where == "history" and state["busy"] and state["undo"] and state["step"] == (1, 5)
    assert "Going back" in state["status"]
    assert "Undone" in p.status.value and p.progress.layout.visibility == "hidden"


def test_an_apply_locks_the_controls_once_not_at_every_layer_call(editor):
    p, finetune = editor.panel, editor.finetune_panel
    editor.select("conv_a")
    p.activation.value = "gelu"
    sets, locks, busy = [], [], []
    controls = {"apply": p.apply_button, "undo": p.undo_button, "redo": p.redo_button,
                "reset": p.reset_button}
    enabled = {name for name, control in controls.items() if not control.disabled}
    for name, control in controls.items():
        control.observe(lambda c, name=name: sets.append((name, c["new"])), names="disabled")
    refresh = finetune.refresh
    finetune.refresh = lambda busy: (locks.append(busy), refresh(busy))
    show = p.set_busy
    p.set_busy = lambda active, *args, **kwargs: (busy.append(active), show(active, *args, **kwargs))
    p.apply_button.click()
    assert busy.count(True) > 5  # a busy update per step and per layer call of the probe
    # The panel's buttons: locked at the first update, unlocked once it is done.
    locked = [name for name, disabled in sets if disabled]
    assert enabled == {"apply"} and locked == ["apply"] and sets[0] == ("apply", True)
    assert {name for name, disabled in sets[1:]} == {"undo", "reset"} and len(sets) == 3
    # The fine-tune controls: locked once (not at each layer call), unlocked once.
    assert locks[0] is True and locks[1:] == [False]
    assert not p.undo_button.disabled and not p.reset_button.disabled
    # The next operation locks them again.
    locks.clear()
    editor.undo()
    assert locks[0] is True and locks[1:] == [False]


def sent_updates(panel):
    """The progress bar's and the status line's messages to the page, as sent."""
    sent = {"bar": [], "status": []}
    panel.progress._send = lambda msg, buffers=None: sent["bar"].append(msg["state"])
    panel.status._send = lambda msg, buffers=None: sent["status"].append(msg["state"])
    return sent


def test_busy_updates_are_sent_when_the_bar_moves_visibly():
    from kerawidgets.widgets.editor_panel import BAR_QUANTUM, EditorPanel

    panel = EditorPanel()
    sent = sent_updates(panel)
    panel.set_busy(True, "Rebuilding…", 1, 5)
    panel.set_busy(True, "Probing…", 3, 5)
    calls = 600  # a large model: one report per layer call
    for done in range(1, calls + 1):
        panel.set_busy(True, f"Probing… {done} of {calls} layer calls", 3 + 0.99 * done / calls, 5)
    probing = [m["value"] for m in sent["bar"] if "value" in m and 3 < m["value"] < 4]
    # The bar still moves with the probe, to its last hundredth, in steps a page can show.
    most = 0.99 / (5 * BAR_QUANTUM)  # moves of the bar's quantum (a share of its 5 steps)
    assert probing == sorted(probing) and 0.9 * most <= len(probing) <= most + 1 < calls
    assert all(b - a >= 5 * BAR_QUANTUM for a, b in zip(probing, probing[1:]))
    assert probing[-1] > 3.99 - 5 * BAR_QUANTUM
    assert len(sent["status"]) == len(probing) + 2  # the words with the bar, not without
    # A new step is shown at once, however little the bar moves.
    panel.set_busy(True, "Drawing the plots…", 4, 5)
    assert sent["bar"][-1]["value"] == 4 and "Drawing" in sent["status"][-1]["value"]
    panel.set_busy(True, "Drawing the plots…", 4, 5)  # nothing new: nothing sent
    assert "Drawing" in sent["status"][-1]["value"] and sent["bar"][-1]["value"] == 4
    before = (len(sent["bar"]), len(sent["status"]))
    panel.set_busy(True, "Drawing the plots…", 4.001, 5)
    assert (len(sent["bar"]), len(sent["status"])) == before
    panel.set_busy(False)
    assert panel.progress.layout.visibility == "hidden" and not panel.busy
    # A small model: every layer call moves the bar visibly, so every one is shown.
    sent["bar"].clear()
    panel.set_busy(True, "Probing…", 3, 5)
    for done in range(1, 11):
        panel.set_busy(True, f"Probing… {done} of 10 layer calls", 3 + 0.99 * done / 10, 5)
    assert len([m for m in sent["bar"] if "value" in m]) == 11
    assert "10 of 10" in panel.status.value


def test_moves_refill_the_panel_in_its_widgets(editor):
    """After Apply, Undo and Redo the panel shows the selected layer again in the widgets it
    has (values sent, no new widgets); a form with other fields replaces the old, closed."""
    from ipywidgets.widgets.widget import _instances

    p = editor.panel
    editor.select("conv_a")
    form = p.layer_settings
    assert set(form.widgets) >= {"kernel_size", "padding"}
    form.widgets["kernel_size"].value = "5, 5"  # typed, never applied
    alive = len(_instances)
    editor.apply(SetActivation("conv_b", "gelu"))
    assert p.layer_settings is form and form.widgets["kernel_size"].value == "3, 3"
    editor.undo()
    editor.redo()
    assert len(_instances) == alive and p.layer_settings is form
    # The same fields a new form would have, with the same values.
    fresh = editor_module.SettingsForm(settings=form.settings)
    assert fresh.values() == form.values()
    fresh.close()
    # Another layer type: a new form, the old one closed (its widgets leave the page).
    editor.select("hidden")
    assert p.layer_settings is not form and form.box.comm is None
    assert all(widget.comm is None for widget in form.widgets.values())
    assert len(_instances) <= alive
    # Replace: a class's form, refilled when the same class is picked again.
    p.tabs.selected_index = 1
    p.replace.value = "Dense"
    replace_form = p.replace_settings
    p.replace.value = editor_module.NONE_CHOICE
    assert replace_form.box.comm is None
    p.replace.value = "Dense"
    assert set(p.replace_settings.widgets) == set(replace_form.widgets)


def test_busy_state_is_cleared_when_a_step_fails(editor, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("probe crashed")

    monkeypatch.setattr(editor.session, "_compute", broken)
    p = editor.panel
    editor.select("conv_a")
    p.activation.value = "gelu"
    p.apply_button.click()
    state = panel_state(editor)
    assert not state["busy"] and state["bar"] == "hidden" and not state["undo"]
    assert "Probing" not in state["status"] and "probe crashed" in state["status"]
    assert editor.model.get_layer("conv_a").activation.__name__ == "gelu"
    # A refused edit: the error stays, the busy state goes, the editor is usable.
    with pytest.raises(ShapeMismatchError) as caught:
        editor.apply(ReplaceLayer("conv_b", layers.Conv2D(4, 3, padding="same")))
    state = panel_state(editor)
    assert not state["busy"] and state["bar"] == "hidden" and "kwe-status-error" in state["status"]
    assert html.escape(gui_text(str(caught.value))) in state["status"]  # a script's, for the GUI
    assert "Rebuilding" not in state["status"] and "hidden" in state["status"]
    # A KerawidgetsError while probing is shown with its own message; the edit is kept.
    def refused(*args, **kwargs):
        raise ProbeDataError("Probe data for 'digits_cnn' no longer fits: make a new editor.")

    monkeypatch.setattr(editor.session, "_compute", refused)
    editor.apply(SetActivation("conv_b", "elu"))
    assert "no longer fits: make a new editor." in p.status.value and len(editor.history) == 2
    assert "kwe-status-error" in p.status.value and p.progress.layout.visibility == "hidden"
    p.undo_button.click()
    p.undo_button.click()
    assert editor.model is editor.original and "Undone" in p.status.value


def test_a_click_sent_while_a_preview_runs_is_run_after_it(editor, monkeypatch):
    """A hurried user ticks the checkbox and presses Reset at once: never a lost click.

    The kernel handles the page's messages one at a time, so a click sent while the
    tick's dry run runs is handled right after it; but a browser drops a click on a
    disabled button. So a check of the panel (a preview, reading a selection) leaves the
    buttons as they are: here the front end would press them mid-preview.
    """
    import kerawidgets.session as module

    p = editor.panel
    editor.apply(SetActivation("conv_b", "tanh"))
    editor.select("conv_a")
    p.activation.value = "gelu"
    buttons = {"apply": p.apply_button, "undo": p.undo_button, "reset": p.reset_button}
    assert not any(button.disabled for button in buttons.values())
    seen = []
    real = module.rebuild

    def rebuild(*args, **kwargs):  # mid-preview: what the page shows while the dry run runs
        seen.append(({name: button.disabled for name, button in buttons.items()},
                     p.status.value))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "rebuild", rebuild)
    p.reinitialize.value = True  # the tick: a dry run with fresh weights allowed
    ((disabled, status),) = seen
    assert "dry-run rebuild" in status  # the status says what runs...
    assert disabled == {"apply": False, "undo": False, "reset": False}  # ...and a click gets through
    p.reset_button.click()  # handled after the preview, as the kernel would
    assert "Reset to the original model" in p.status.value
    assert editor.model is editor.original and not p.reinitialize.value
    # Apply pressed while the preview of an edit that cannot apply runs: refused, said why.
    editor.redo()
    editor.select("conv_a")
    p.activation.value = "gelu"
    seen.clear()
    p.tabs.selected_index = p.actions.index("remove")  # conv_b needs 8 channels: cannot apply
    ((disabled, status),) = seen
    assert not disabled["apply"] and "dry-run rebuild" in status
    p.apply_button.click()
    assert "kwe-status-error" in p.status.value and "conv_b" in p.status.value
    assert len(editor.history) == 1 and p.apply_button.disabled


def test_a_click_while_a_fine_tune_runs_says_why_nothing_happens(editor):
    """A click that reached the kernel while another thread works (a fine-tune) is not run,
    and the status line says so (it used to be dropped without a word)."""
    p = editor.panel
    editor.apply(SetActivation("conv_b", "tanh"))
    started, release = threading.Event(), threading.Event()

    def fine_tune():  # held on `release`, as a long fine-tune in its worker
        with editor.session.working(editor.MOVE_STEPS) as progress:
            progress(1, "Fine-tuning…")
            started.set()
            release.wait()

    worker = threading.Thread(target=fine_tune)
    worker.start()
    try:
        assert started.wait(60)
        assert p.undo_button.disabled  # the page shows it disabled; this click slipped in before
        p.undo_button.click()
        assert "Fine-tuning runs" in p.status.value and "press the button again" in p.status.value
        assert len(editor.history) == 1 and editor.model is not editor.original
    finally:
        release.set()
        worker.join()
    p.undo_button.click()
    assert editor.model is editor.original and "Undone" in p.status.value


def test_scripted_predicate_edit(editor, monkeypatch):
    import kerawidgets.session as module

    convs = lambda layer: isinstance(layer, layers.Conv2D)  # noqa: E731
    report = editor.apply(SetActivation(convs, "tanh"))
    assert [editor.model.get_layer(n).activation.__name__ for n in ("conv_a", "conv_b")] == [
        "tanh", "tanh"]
    assert report["conv_a"].status == "kept" and editor.history[0].layer is convs
    assert set(editor.view.marks) == {"conv_a", "conv_b"}
    assert "kwe-status-ok" in editor.panel.status.value
    # Same-valued edits share the cached dry run; a different predicate does not.
    calls = []
    real = module.rebuild
    monkeypatch.setattr(module, "rebuild", lambda *a, **k: calls.append(1) or real(*a, **k))
    dense = lambda layer: isinstance(layer, layers.Dense)  # noqa: E731
    for edit in (SetActivation(convs, "gelu"), SetActivation(convs, "gelu"),
                 SetActivation(dense, "gelu")):
        editor.session.dry_run(edit, None)
    assert len(calls) == 2


def test_preview_rebuild_is_reused_by_apply(editor, monkeypatch):
    import kerawidgets.session as module

    editor.select("conv_a")
    editor.panel.activation.value = "gelu"
    calls = []
    real = module.rebuild
    monkeypatch.setattr(module, "rebuild", lambda *a, **k: calls.append(1) or real(*a, **k))
    editor.panel.apply_button.click()
    assert calls == [] and editor.model.get_layer("conv_a").activation.__name__ == "gelu"


# --- probe data ------------------------------------------------------------------------


def test_probe_with_dict_and_dataset_and_synthetic():
    import tensorflow as tf

    model = cnn()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 10, size=20)
    as_dict = ModelEditor(model, {"image": x})
    assert as_dict.probe.n == 20 and not as_dict.probe.synthetic
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    from_dataset = ModelEditor(model, dataset)
    assert from_dataset.probe.y is not None
    from_dataset.apply(SetActivation("head", "sigmoid"))
    assert "accuracy" in from_dataset.plots_note.value
    synthetic = ModelEditor(model)
    assert "Synthetic probe data" in synthetic.panel.probe.value
    synthetic.apply(SetActivation("conv_a", "elu"))
    assert "(synthetic)" in synthetic.plots_note.value
    assert "accuracy_before" not in synthetic.compare()["agreement"]


def test_sequential_and_nested_models():
    inner = keras.Sequential([keras.Input((6,), name="inner_in"),
                              layers.Dense(6, activation="relu", name="inner_dense")],
                             name="inner")
    inp = keras.Input((6,), name="x")
    out = layers.Dense(3, name="out")(inner(inp))
    editor = ModelEditor(keras.Model(inp, out))
    editor.select("inner/inner_dense")
    editor.panel.activation.value = "tanh"
    editor.panel.apply_button.click()
    assert editor.model.get_layer("inner").get_layer("inner_dense").activation.__name__ == "tanh"
    assert editor.view.marks == {"inner/inner_dense": "edited"}
    seq = keras.Sequential([keras.Input((5,)), layers.Dense(4, activation="relu", name="a"),
                            layers.Dense(2, name="b")])
    seq_editor = ModelEditor(seq)
    seq_editor.apply(InsertLayer("a", layers.BatchNormalization()))
    assert [type(layer).__name__ for layer in seq_editor.model.layers] == [
        "Dense", "BatchNormalization", "Dense"]


def test_editor_displays_as_one_widget(editor):
    bundle = editor._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == editor.widget.model_id


def test_showing_the_editor_probes_the_original_ahead_for_the_first_apply(monkeypatch):
    x = np.random.default_rng(0).standard_normal((8, 8, 8, 1)).astype("float32")
    model = cnn()
    scripted = ModelEditor(model, x)  # never shown: its first Apply probes the original
    scripted.apply(SetActivation("conv_b", "tanh"))
    shown = ModelEditor(model, x)
    calls = CountCalls(monkeypatch)
    shown._repr_mimebundle_()
    ahead = shown.probe._aheads[-1]
    ahead.thread.join(timeout=120)
    assert shown.probe.cached(model) and calls.names[0] == "conv_a"
    assert shown.session.probe_ahead() is None  # known: not probed again on a second display
    ran = len(calls.names)
    shown.apply(SetActivation("conv_b", "tanh"))
    assert calls.names[ran:] == ["conv_b", "pool", "drop", "flatten", "hidden", "hidden_relu",
                                 "head"]  # the original is not run again: only the edited part
    assert shown.compare()["per_layer"] == scripted.compare()["per_layer"]


def first_run(monkeypatch, name, result):
    """A future of the running event loop, set to `result(*arguments)` once
    `ModelEditor.<name>` (patched to tell) has first run with those arguments."""
    done = asyncio.get_running_loop().create_future()
    real = getattr(ModelEditor, name)

    def told(self, *arguments):
        real(self, *arguments)
        if not done.done():
            done.set_result(result(*arguments))

    monkeypatch.setattr(ModelEditor, name, told)
    return done


def test_shown_in_a_kernel_the_figures_are_laid_out_before_the_first_apply(monkeypatch):
    from kerawidgets import plots
    from tests.test_plots import _assert_same_pixels

    x = np.random.default_rng(0).standard_normal((8, 8, 8, 1)).astype("float32")
    model = cnn()
    scripted = ModelEditor(model, x)  # never shown: its first Apply builds both figures
    scripted.apply(SetActivation("conv_b", "tanh"))
    built = []
    for live in (plots._LiveComparison, plots._LiveDepth):
        monkeypatch.setattr(live, "__init__", lambda self, *a, real=live.__init__, **k: (
            built.append(self.__class__.__name__), real(self, *a, **k))[-1])
    shown = ModelEditor(model, x)

    async def in_a_kernel():  # a running event loop, as in ipykernel: draws on it, when idle
        drawn = first_run(monkeypatch, "_draw_ahead", lambda *names: threading.current_thread())
        shown._repr_mimebundle_()
        return await asyncio.wait_for(drawn, timeout=120)

    assert asyncio.run(in_a_kernel()) is threading.main_thread()
    assert built == ["_LiveComparison", "_LiveDepth"]  # for 900 px, the default
    shown.depth_image.set_state({"shown_width": 612})  # the browser reports where it is shown
    assert built[2:] == ["_LiveDepth"]
    shown.apply(SetActivation("conv_b", "tanh"))
    assert built[3:] == []  # the first Apply put its data into the figures laid out
    _assert_same_pixels(shown.comparison_image.value, scripted.comparison_image.value,
                        "comparison")
    assert shown.depth_image.drawn_width == 612
    scripted.depth_image.set_state({"shown_width": 612})
    _assert_same_pixels(shown.depth_image.value, scripted.depth_image.value, "depth")


def test_refuses_subclassed_model():
    class Net(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(KerawidgetsError):
        ModelEditor(Net())


def test_depth_summary_keeps_a_removed_layer_in_place(editor):
    editor.apply(RemoveLayer("drop"))
    order = editor.session.comparison.order
    assert order.index("pool") < order.index("drop") < order.index("flatten") < order.index("head")


def test_settings_tab_is_built_from_the_catalog_and_applies_set_settings(editor):
    p = editor.panel
    assert [p.tabs.get_title(i) for i in range(len(p.tabs.children))] == [
        "Activation", "Replace", "Insert after", "Remove", "Settings"]
    editor.select("drop")
    p.tabs.selected_index = 4
    assert p.action == "settings" and list(p.layer_settings.widgets) == ["rate"]
    assert p.layer_settings.widgets["rate"].value == pytest.approx(0.1)
    assert "Change a setting of &#x27;drop&#x27;" in p.preview.value and p.apply_button.disabled
    p.layer_settings.widgets["rate"].value = 0.4
    assert "Set rate=0.4 on &#x27;drop&#x27;" in p.preview.value and not p.apply_button.disabled
    before = weights_of(editor.model)
    p.apply_button.click()
    assert editor.model.get_layer("drop").rate == pytest.approx(0.4)
    assert editor.history == [SetSettings("drop", rate=0.4)]
    assert editor.report["drop"].status == "kept" and editor.report.reinitialised == []
    assert same_weights(before, weights_of(editor.model))


def test_each_tab_makes_its_registered_edit_class_from_its_fields(editor):
    p = editor.panel
    editor.select("conv_b")
    p.activation.value = "tanh"
    assert editor.pending_edit() == SetActivation("conv_b", "tanh")
    p.tabs.selected_index = 1
    p.replace.value = "SeparableConv2D"
    assert editor.pending_edit() == ReplaceLayer("conv_b", (
        "SeparableConv2D", p.replace_settings.choice.config(p.replace_settings.values())))
    p.tabs.selected_index = 2
    p.insert.value = "Dropout"
    p.insert_settings.widgets["rate"].value = 0.3
    edit = editor.pending_edit()
    assert edit == InsertLayer("conv_b", ("Dropout", edit.layer[0].config))
    assert edit.layer[0].config["rate"] == pytest.approx(0.3)
    p.tabs.selected_index = 3
    assert editor.pending_edit() == RemoveLayer("conv_b")
    p.tabs.selected_index = 4
    p.layer_settings.widgets["padding"].value = "valid"
    assert editor.pending_edit() == SetSettings("conv_b", padding="valid")


@pytest.fixture
def registry():
    """Edit classes a test defines are dropped from the registry afterwards."""
    saved = dict(EDIT_TYPES)
    yield EDIT_TYPES
    EDIT_TYPES.clear()
    EDIT_TYPES.update(saved)


def test_a_new_edit_type_gets_a_tab_and_its_edit_without_a_branch_in_the_editor(
        data, registry, monkeypatch):
    @dataclasses.dataclass(frozen=True, eq=True)
    class Drop(RemoveLayer):  # a new edit type with a tab of its own
        panel_tab = "Drop"
        panel_action = "drop"

    editor = ModelEditor(cnn(), *data)
    p = editor.panel
    assert p.tabs.get_title(5) == "Drop"
    editor.select("drop")
    p.tabs.selected_index = 5
    # No controls for it: the tab and the preview say to apply it in code.
    assert "editor.apply(edit)" in p.tabs.children[5].value
    assert "make a Drop in code" in p.preview.value and p.apply_button.disabled
    # Its reader of the tab's fields is all the editor needs to make it.
    monkeypatch.setitem(editor_module._TAB_FIELDS, "drop", lambda self, path: {"layer": path})
    assert editor.pending_edit() == Drop("drop")


def test_settings_tab_padding_change_needs_the_reinitialise_checkbox(editor):
    p = editor.panel
    editor.select("conv_b")
    p.tabs.selected_index = 4
    form = p.layer_settings.widgets
    assert list(form) == ["kernel_size", "strides", "padding", "use_bias"]  # no filters (width)
    assert form["padding"].value == "same"
    form["padding"].value = "valid"
    assert p.apply_button.disabled and "&#x27;hidden&#x27; (Dense)" in p.preview.value
    assert html.escape("Tick 'allow reinitialising downstream layers'") in p.preview.value
    p.reinitialize.value = True
    assert not p.apply_button.disabled
    p.apply_button.click()
    assert editor.model.get_layer("conv_b").padding == "valid"
    assert editor.report["conv_b"].status == "kept" and editor.report.reinitialised == ["hidden"]


def test_plots_are_redrawn_for_the_width_ratio_and_theme_the_browser_reports(editor, monkeypatch):
    import struct

    from kerawidgets import plots

    drawn = []
    real = plots.FigureCache.png
    monkeypatch.setattr(plots.FigureCache, "png",
                        lambda cache, plot, display, **inputs: drawn.append(
                            (display.width, display.pixel_ratio)) or real(cache, plot, display, **inputs))
    editor.apply(SetActivation("conv_b", "tanh"))
    assert sorted(drawn) == [(900, 1.0), (900, 1.0)]  # before the browser said anything
    drawn.clear()
    image = editor.comparison_image
    image.set_state({"shown_width": 612, "pixel_ratio": 2.0})  # as the browser writes it
    assert drawn == [(612, 2.0)] and image.drawn_width == 612  # that plot only, once
    assert struct.unpack(">I", bytes(image.value)[16:20])[0] == 1224
    image.set_state({"shown_width": 612, "pixel_ratio": 2.0, "_esm": "evil"})  # nothing new
    assert drawn == [(612, 2.0)]
    image.set_state({"dark": True})
    assert len(drawn) == 2 and editor.figures()["comparison"].get_facecolor()[0] < 0.1
    editor.depth_image.set_state({"shown_width": 5000})  # clamped, then drawn no wider than its cap
    assert drawn[-1] == (1400, 1.0) and editor.depth_image.drawn_width == 1400
    drawn.clear()
    editor.undo()
    editor.redo()  # the same sizes and theme: the kept PNGs, nothing drawn
    assert drawn == []


def test_plots_follow_an_explicit_theme(data):
    x, y = data
    editor = ModelEditor(cnn(), x, y, theme="light")
    editor.comparison_image.set_state({"dark": True})  # JupyterLab dark, editor asked for light
    assert editor.comparison_image.display().dark is False


# --- the preview's guess: the edited model probed while the user reaches for Apply -------


def test_a_shown_editor_probes_the_previewed_edit_ahead_and_apply_takes_it(data, monkeypatch):
    from tests.models import ThreadCalls

    x, y = data
    calls = ThreadCalls(monkeypatch)

    async def in_a_kernel():  # a running event loop, as in ipykernel
        editor = ModelEditor(cnn(), x, y)
        editor._repr_mimebundle_()  # shown: probes the original ahead
        editor.select("conv_b")
        editor.panel.activation.value = "elu"  # the preview rebuilds it, then probes it ahead
        for thread in threading.enumerate():
            if thread.name == "kerawidgets-probe-ahead":
                thread.join(timeout=120)
        ahead = calls.of("kerawidgets-probe-ahead")
        editor.panel.apply_button.click()
        return editor, ahead

    editor, ahead = asyncio.run(in_a_kernel())
    assert ahead[-7:] == ["conv_b", "pool", "drop", "flatten", "hidden", "hidden_relu", "head"]
    assert calls.of("MainThread") == []  # Apply took the run ahead's summaries
    assert editor.compare()["recompute"] == "incremental"
    assert editor.model.get_layer("conv_b").activation.__name__ == "elu"


def test_an_editor_in_a_script_probes_no_preview_ahead(editor, monkeypatch):
    from tests.models import ThreadCalls

    calls = ThreadCalls(monkeypatch)
    editor.select("conv_b")
    editor.panel.activation.value = "elu"
    assert "kerawidgets-probe-ahead" not in [t.name for t in threading.enumerate()]
    editor.panel.apply_button.click()
    assert calls.of("kerawidgets-probe-ahead") == [] and "conv_b" in calls.of("MainThread")


# --- closing ---------------------------------------------------------------------------

WAIT = 120  # seconds: a bound for a thread that should end, never a pass condition


def widget_ids():
    """The ids of every widget ipywidgets keeps, as it does until the widget is closed
    (`ipywidgets.Widget.widgets`, read without its deprecation warning)."""
    return set(ipywidgets.widgets.widget._instances)


def compare_from_the_panel(editor, layer, *candidates):
    editor.select(layer)
    compare = editor.compare_panel
    compare.choices.value = tuple(f"activation: {name}" for name in candidates)
    compare.run_button.click()
    assert len(compare.apply_buttons) == len(candidates), editor.panel.status.value
    return [button.model_id for button in compare.apply_buttons]


def test_close_lets_go_of_the_editor_its_models_and_its_probe(data):
    """Its widgets (kept by ipywidgets until closed) and their callbacks kept an editor a
    user dropped alive, with every model of its history, for as long as the kernel ran."""
    x, y = data
    model = cnn()
    editor = ModelEditor(model, x, y)
    editor._repr_mimebundle_()  # shown: the original probed ahead in a thread
    editor.apply(SetActivation("conv_b", "tanh"))
    refs = [weakref.ref(editor.model), weakref.ref(editor.probe), weakref.ref(editor.session)]
    editor.apply(SetActivation("conv_a", "elu"))
    shown = [weakref.ref(editor), weakref.ref(editor.model)]  # the graph shows this model
    compare_from_the_panel(editor, "conv_a", "gelu", "elu")
    compare_from_the_panel(editor, "conv_a", "gelu")  # its Apply buttons refer to the session
    editor.close()
    gc.collect()
    assert [ref() for ref in refs] == [None] * 3  # gone at close, the editor still named
    del editor
    gc.collect()
    assert [ref() for ref in shown] == [None] * 2
    assert model.get_layer("conv_b").activation.__name__ == "relu"  # the user's, unchanged


def test_close_closes_every_widget_the_editor_made(data):
    x, y = data
    before = widget_ids()
    editor = ModelEditor(cnn(), x, y)
    p = editor.panel
    editor.select("conv_b")
    p.tabs.selected_index = p.actions.index("replace")
    p.replace.value = "SeparableConv2D"  # a settings form, in place of the first one
    editor.apply(SetActivation("conv_b", "tanh"))
    first = compare_from_the_panel(editor, "conv_a", "gelu", "elu")
    shown = compare_from_the_panel(editor, "conv_a", "gelu")
    assert not set(first) & widget_ids()  # a new comparison closes the last one's buttons
    made = widget_ids() - before
    assert {editor.view.model_id, editor.export.model_id, editor.depth_image.model_id,
            editor.widget.model_id, p.replace_settings.box.model_id, *shown} <= made
    editor.close()
    assert widget_ids() - before == set()


def test_a_closed_editor_says_so_at_every_operation(editor, tmp_path):
    session = editor.session
    editor.apply(SetActivation("conv_b", "tanh"))
    editor.select("conv_b")
    code = editor.export.code
    editor.close()
    editor.close()  # again: nothing
    assert repr(editor) == "<ModelEditor of 'digits_cnn': closed>"
    x = np.zeros((4, 8, 8, 1), "float32")
    operations = {
        "apply": lambda: editor.apply(SetActivation("conv_a", "tanh")),
        "undo": editor.undo, "redo": editor.redo, "reset": editor.reset,
        "show": lambda: editor.show("previous"), "select": lambda: editor.select("conv_a"),
        "compare": editor.compare, "sweep": lambda: editor.sweep("conv_a", ["gelu"]),
        "figures": editor.figures, "to_code": editor.to_code,
        "save": lambda: editor.save(tmp_path / "m.keras"),
        "evaluate": lambda: editor.evaluate(x, np.zeros(4, "int64")),
        "recover": lambda: editor.recover(x, np.zeros(4, "int64")),
        "pending_edit": editor.pending_edit, "on_change": lambda: editor.on_change(print),
        "model": lambda: editor.model, "history": lambda: editor.history,
        "display": editor._repr_mimebundle_,
    }
    for name, operation in operations.items():
        with pytest.raises(editor_module.EditorClosedError) as raised:
            operation()
        message = str(raised.value)
        assert "ModelEditor of 'digits_cnn' was closed" in message, name
        assert "Make a new ModelEditor(model, x)" in message, name
    assert issubclass(editor_module.EditorClosedError, KerawidgetsError)
    assert editor._draw_ahead() is None  # a layout the event loop still had to run: none
    # The session, if kept elsewhere, works alone: it no longer reaches the editor.
    session.apply(SetActivation("conv_a", "tanh"))
    session.undo()
    assert session.history == [SetActivation("conv_b", "tanh")] and editor.export.code == code


def test_an_editor_in_a_with_block_is_closed_at_its_end(data):
    x, y = data
    with ModelEditor(cnn(), x, y) as editor:
        editor.apply(SetActivation("conv_b", "tanh"))
    assert repr(editor) == "<ModelEditor of 'digits_cnn': closed>"


def test_close_stops_a_background_fine_tune_first():
    from kerawidgets.training import FineTune
    from tests.test_finetune_panel import editor_with_data, watch_batches

    editor = editor_with_data()
    panel = editor.finetune_panel
    panel.epochs.value, panel.batch_size.value = 200, 16  # 1200 batches: far more than needed
    seen = watch_batches(editor, 3)
    panel.run_button.click()  # trains in a worker thread
    assert seen.wait(WAIT) and editor.fine_tuning
    session, worker = editor.session, editor.session._training
    editor.close()
    assert not worker.is_alive()
    step = session.history[-1]  # it stopped after its batch, as Stop does
    assert isinstance(step, FineTune) and step.stopped and 3 <= step.batches < 1200


def test_close_stops_the_probe_of_the_original_running_ahead(data, monkeypatch):
    """Shown, the editor probes its original in a thread; closed meanwhile, that thread
    stops at its next layer call and has ended when close returns."""
    from kerawidgets import probe as probe_module

    started, cancelled = threading.Event(), threading.Event()
    report = probe_module._Ahead.report

    def held_report(ahead, done, total):  # the run ahead waits at its first call until cancelled
        started.set()
        cancelled.wait(WAIT)
        report(ahead, done, total)

    monkeypatch.setattr(probe_module._Ahead, "report", held_report)
    monkeypatch.setattr(probe_module._Ahead, "cancelled", property(
        lambda ahead: cancelled.is_set(), lambda ahead, value: value and cancelled.set()),
        raising=False)
    x, y = data
    editor = ModelEditor(cnn(), x, y)
    editor._repr_mimebundle_()
    probe, original, ahead = editor.probe, editor.original, editor.probe._aheads[-1]
    assert started.wait(WAIT)
    editor.close()
    assert not ahead.thread.is_alive() and ahead.finished and not probe.cached(original)


def test_a_shown_editor_draws_the_previewed_edits_plots_ahead(monkeypatch):
    from kerawidgets import plots
    from tests.test_plots import _assert_same_pixels

    x = np.random.default_rng(0).standard_normal((8, 8, 8, 1)).astype("float32")
    model = cnn()
    scripted = ModelEditor(model, x)  # never shown: its Apply probes and draws itself
    scripted.apply(SetActivation("conv_b", "elu"))
    shown = ModelEditor(model, x)
    drawn_in_apply = []

    async def in_a_kernel():  # a running event loop, as in ipykernel: draws on it, when idle
        drawn = first_run(monkeypatch, "_draw_edit_ahead", lambda edit, reinitialize: edit)
        shown._repr_mimebundle_()
        shown.select("conv_b")
        shown.panel.activation.value = "elu"  # previewed: probed, then drawn, ahead
        edit = await asyncio.wait_for(drawn, timeout=120)
        real_png = plots.FigureCache.png
        monkeypatch.setattr(plots.FigureCache, "png", lambda cache, plot, *a, **k: (
            drawn_in_apply.append(plot), real_png(cache, plot, *a, **k))[-1])
        shown.panel.apply_button.click()
        return edit

    assert asyncio.run(in_a_kernel()) == SetActivation("conv_b", "elu")
    assert drawn_in_apply == []  # Apply showed the plots drawn ahead
    assert shown.compare()["recompute"] == "incremental"
    for name in ("comparison", "depth"):
        _assert_same_pixels(getattr(shown, f"{name}_image").value,
                            getattr(scripted, f"{name}_image").value, name)


def test_plots_drawn_ahead_for_another_edit_are_not_shown(data):
    x, y = data
    editor = ModelEditor(cnn(), x, y)
    guessed, applied = SetActivation("conv_b", "elu"), SetActivation("conv_b", "tanh")
    editor.session.probe_edit_ahead(guessed).join(timeout=120)
    ahead = editor.session.comparison_ahead(guessed)
    editor._png("comparison", ahead)
    editor.apply(applied)
    assert editor.model.get_layer("conv_b").activation.__name__ == "tanh"
    assert bytes(editor.comparison_image.value) != ahead.pngs[next(iter(ahead.pngs))]
    plain = ModelEditor(editor.original, x, y)
    plain.apply(applied)
    assert bytes(editor.comparison_image.value) == bytes(plain.comparison_image.value)
