"""Edits at the edges of a model: the first layer of a Sequential, a model's outputs.

Removing the first layer of a Sequential (top level or nested) once crashed
while recording shape changes; inserting after an output layer once renamed
the model's output, so a loss dict keyed by output name stopped matching.
"""

import keras
import numpy as np
import pytest
from keras import layers

import kerawidgets
from kerawidgets import rebuild
from kerawidgets.edits import InsertLayer, RemoveLayer, ReplaceLayer, SetActivation
from kerawidgets.errors import ShapeMismatchError
from tests.models import config_of, numpy_of, weights_of


def first_dropout_sequential():
    return keras.Sequential(
        [keras.Input((6,)), layers.Dropout(0.2, name="drop"), layers.Dense(3, name="out")],
        name="seq")


def assert_untouched(model, config, weights):
    assert config_of(model) == config
    for w, before in zip(model.weights, weights):
        np.testing.assert_array_equal(np.array(w), before)


# --- item 1: the first layer of a Sequential ----------------------------------------


@pytest.mark.parametrize("reinitialize", [None, "downstream"])
def test_removing_the_first_layer_of_a_sequential(reinitialize):
    seq = first_dropout_sequential()
    config, weights = config_of(seq), weights_of(seq)
    result = rebuild(seq, [RemoveLayer("drop")], reinitialize=reinitialize)
    assert [lyr.name for lyr in result.model.layers] == ["out"]
    assert result.report.removed == ["drop"] and result.report["out"].status == "kept"
    x = np.ones((2, 6), "float32")
    np.testing.assert_array_equal(result.model.predict(x, verbose=0), seq.predict(x, verbose=0))
    assert_untouched(seq, config, weights)


def test_removing_a_shape_changing_first_layer_names_the_shapes():
    seq = keras.Sequential([keras.Input((6,)), layers.Dense(4, name="first"),
                            layers.Dense(3, name="out")], name="seq")
    with pytest.raises(ShapeMismatchError, match=r"first.*\(None, 4\) -> \(None, 6\)"):
        rebuild(seq, [RemoveLayer("first")])
    result = rebuild(seq, [RemoveLayer("first")], reinitialize="downstream")
    assert result.report["out"].status == "reinitialised"
    assert result.model.output_shape == (None, 3)


def test_removing_the_first_layer_of_a_nested_sequential():
    inp = keras.Input((6,), name="x")
    inner = keras.Sequential([keras.Input((6,)), layers.Dropout(0.1, name="inner_drop"),
                              layers.Dense(4, name="inner_dense")], name="block")
    model = keras.Model(inp, layers.Dense(2, name="head")(inner(inp)), name="outer")
    result = rebuild(model, [RemoveLayer("block/inner_drop")])
    assert [lyr.name for lyr in result.model.get_layer("block").layers] == ["inner_dense"]
    assert result.report.removed == ["block/inner_drop"]
    x = np.ones((2, 6), "float32")
    np.testing.assert_array_equal(result.model.predict(x, verbose=0), model.predict(x, verbose=0))


def test_editor_remove_tab_on_the_first_layer_of_a_sequential_previews_the_dry_run():
    from kerawidgets.widgets import ModelEditor

    editor = ModelEditor(first_dropout_sequential(), np.ones((4, 6), "float32"))
    editor.select("drop")
    editor.panel.tabs.selected_index = 3  # Remove
    preview = editor.panel.preview.value
    assert "Remove" in preview and "Weights" in preview and "cannot apply" not in preview
    assert not editor.panel.apply_button.disabled


def test_editor_preview_shows_an_unforeseen_error_instead_of_raising(monkeypatch):
    from kerawidgets import session as session_module
    from kerawidgets.widgets import ModelEditor

    editor = ModelEditor(first_dropout_sequential(), np.ones((4, 6), "float32"))
    editor.select("drop")

    def broken(*_args, **_kwargs):
        raise TypeError("'NoneType' object is not iterable")

    monkeypatch.setattr(session_module, "rebuild", broken)
    editor.panel.tabs.selected_index = 3
    preview = editor.panel.preview.value
    assert "cannot apply" in preview and "Unexpected TypeError" in preview
    assert editor.panel.apply_button.disabled


# --- item 2: a model's output names stay -----------------------------------------------


def two_heads(as_dict=False):
    inp = keras.Input((6,), name="x")
    h = layers.Dense(4, activation="relu", name="h")(inp)
    cls = layers.Dense(3, activation="softmax", name="cls")(h)
    reg = layers.Dense(1, name="reg")(h)
    outputs = {"cls": cls, "reg": reg} if as_dict else [cls, reg]
    model = keras.Model(inp, outputs, name="two_heads")
    model.compile(optimizer="adam", loss={"cls": "categorical_crossentropy", "reg": "mse"},
                  metrics={"cls": ["accuracy"]})
    return model


def fit_once(model):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 6)).astype("float32")
    y = {"cls": np.eye(3, dtype="float32")[rng.integers(0, 3, 8)],
         "reg": rng.normal(size=(8, 1)).astype("float32")}
    return model.fit(x, y, epochs=1, verbose=0).history


@pytest.mark.parametrize("as_dict", [False, True])
def test_insert_after_an_output_keeps_the_output_name_and_the_loss_dict(as_dict):
    model = two_heads(as_dict)
    config, weights = config_of(model), weights_of(model)
    result = rebuild(model, [InsertLayer(after="cls", layer=layers.Dropout(0.1, name="post"))])
    new = result.model
    assert new.output_names == model.output_names == ["cls", "reg"]
    assert type(new.get_layer("cls")) is layers.Dropout
    np.testing.assert_array_equal(new.get_layer("cls_pre").kernel.numpy(),
                                  model.get_layer("cls").kernel.numpy())
    renamed = result.report["cls_pre"]
    assert renamed.status == "kept" and renamed.renamed_from == "cls"
    assert renamed in result.report.changed
    assert result.report["cls"].status == "new"
    assert any("keeps its name" in note for note in result.report.notes)
    x = np.ones((2, 6), "float32")
    predicted = new.predict(x, verbose=0)
    if as_dict:
        assert set(predicted) == {"cls", "reg"}
    np.testing.assert_allclose(keras.tree.flatten(predicted)[0],
                               keras.tree.flatten(model.predict(x, verbose=0))[0], rtol=1e-6)
    history = fit_once(new)
    assert {"cls_loss", "reg_loss"} <= set(history)
    assert_untouched(model, config, weights)


def test_insert_a_list_after_an_output_the_last_takes_the_name(tmp_path):
    model = two_heads()
    new = kerawidgets.insert_layer(model, after="reg", layer=[
        layers.Dense(1, name="extra"), layers.Activation("linear", name="lin")])
    assert new.output_names == ["cls", "reg"]
    assert type(new.get_layer("reg")) is layers.Activation
    assert new.get_layer("extra").input is new.get_layer("reg_pre").output
    new.save(tmp_path / "m.keras")
    assert keras.saving.load_model(tmp_path / "m.keras").output_names == ["cls", "reg"]


def test_removing_an_output_layer_leaves_an_identity_of_its_name():
    model = two_heads()
    result = rebuild(model, [RemoveLayer("reg")])
    new = result.model
    assert new.output_names == ["cls", "reg"]
    assert type(new.get_layer("reg")) is layers.Identity
    assert result.report["reg"].status == "removed"
    history = fit_once_reg4(new)
    assert {"cls_loss", "reg_loss"} <= set(history)


def fit_once_reg4(model):
    """The output `reg` is now h's 4 features: fit with a target of that shape."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(8, 6)).astype("float32")
    y = {"cls": np.eye(3, dtype="float32")[rng.integers(0, 3, 8)],
         "reg": rng.normal(size=(8, 4)).astype("float32")}
    return model.fit(x, y, epochs=1, verbose=0).history


def test_output_of_a_nested_model_keeps_its_name_inside_it():
    inp = keras.Input((6,), name="x")
    sub_in = keras.Input((6,))
    sub = keras.Model(sub_in, layers.Dense(4, name="sub_out")(sub_in), name="sub")
    model = keras.Model(inp, layers.Dense(2, name="head")(sub(inp)), name="outer")
    new = kerawidgets.insert_layer(model, after="sub/sub_out", layer=layers.Dropout(0.1))
    assert new.get_layer("sub").output_names == ["sub_out"]
    assert new.output_names == ["head"]


def shared_output_model():
    """`shared` is called twice; its second call is a model output (fuzz seed 452)."""
    inp = keras.Input((4,), name="x")
    shared = layers.Dense(4, name="shared")
    a = shared(inp)
    return keras.Model(inp, [shared(a), layers.Dense(2, name="other")(a)], name="m")


@pytest.mark.parametrize("edit", [SetActivation("shared:1", "tanh"), RemoveLayer("shared:1"),
                                  InsertLayer(after="shared:1", layer=layers.Dropout(0.1))],
                         ids=["activation", "remove", "insert"])
def test_a_shared_layers_output_call_edited_alone_keeps_the_output_name(edit, tmp_path):
    model = shared_output_model()
    result = rebuild(model, [edit])
    new = result.model
    assert new.output_names == model.output_names == ["shared", "other"]
    assert result.report["shared_shared"].renamed_from == "shared"
    np.testing.assert_array_equal(new.get_layer("shared_shared").kernel.numpy(),
                                  model.get_layer("shared").kernel.numpy())
    assert any("keeps the name 'shared'" in note for note in result.report.notes)
    x = np.ones((2, 4), "float32")
    new.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.output_names == ["shared", "other"]
    for a, b in zip(loaded(x), new(x)):
        np.testing.assert_allclose(numpy_of(a), numpy_of(b), rtol=1e-6)


def test_reports_of_several_steps_follow_a_renamed_output():
    """Fuzz seeds 565 and 580: a layer renamed by a later step takes its earlier row."""
    model = two_heads()
    twice = rebuild(model, [InsertLayer(after="reg", layer=layers.Identity()),
                            InsertLayer(after="reg", layer=layers.Identity())])
    assert twice.model.output_names == ["cls", "reg"]
    assert twice.report["reg_pre"].renamed_from == "reg"
    assert twice.report["reg_pre"].status == "kept"
    inserted_first = twice.report["reg_pre_1"]
    assert inserted_first.status == "new" and inserted_first.renamed_from == ""
    replaced = rebuild(model, [ReplaceLayer("cls", layers.Dense(4)),
                               InsertLayer(after="cls", layer=layers.Dropout(0.1))],
                       reinitialize="downstream")
    row = replaced.report["cls_pre"]
    assert row.status != "kept" and row.renamed_from == "cls"
