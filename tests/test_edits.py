"""Edit values: immutable, described, printed as runnable code, JSON round-trip."""

import dataclasses

import keras
import numpy as np
import pytest
from keras import layers

import kerawidgets
from kerawidgets import edits
from kerawidgets.edits import InsertLayer, RemoveLayer, ReplaceLayer, SetActivation, SetSettings
from kerawidgets.errors import InvalidEditError, SubnetworkNotStoredError, UnknownActivationError
from tests import models

EXAMPLES = [
    SetActivation("dense_1", "tanh"),
    SetActivation(keras.layers.ReLU, "gelu"),
    SetActivation("lstm", "hard_sigmoid", attribute="recurrent_activation"),
    ReplaceLayer("middle", layers.Dense(128, activation="sigmoid")),
    ReplaceLayer("conv2d", ("AveragePooling2D", {"pool_size": 2, "padding": "same"})),
    ReplaceLayer("middle", [layers.Reshape((64, 1)), layers.Conv1D(4, 3), layers.Flatten()], trainable=False),
    InsertLayer(after="hidden", layer=layers.Dropout(0.2)),
    RemoveLayer("dropout"),
    SetActivation(["hidden", "middle"], "gelu"),
    SetSettings("dropout", rate=0.3),
    SetSettings("conv2d", {"padding": "same", "strides": [2, 2]}),
]


# Under torch, Keras keys each layer's torch parameters by variable path, and torch refuses a
# key with "." (KeyError 'parameter name can't contain "."' when a Sequential named "sub.net-1"
# builds: keras/src/backend/torch/layer.py `_track_variables`), so the name there has no dot.
ODD_NAME = "sub-net-1" if keras.backend.backend() == "torch" else "sub.net-1"


def subnetwork(name=ODD_NAME):
    return keras.Sequential([keras.Input((64,)), layers.Dense(64, name="inner")], name=name)


@pytest.mark.parametrize("edit", [*EXAMPLES, ReplaceLayer("middle", subnetwork(), trainable=False),
                                  ReplaceLayer("middle", [layers.Dense(64), subnetwork("class")])],
                         ids=lambda e: e.kind)
def test_every_to_code_is_valid_python(edit):
    compile(edit.to_code(), "<edit>", "exec")


@pytest.mark.parametrize("edit", EXAMPLES, ids=lambda e: e.kind)
def test_json_round_trip(edit):
    assert edits.from_json(edit.to_json()) == edit


@pytest.mark.parametrize("edit", EXAMPLES, ids=lambda e: e.kind)
def test_edits_are_immutable_and_describe_themselves(edit):
    with pytest.raises(dataclasses.FrozenInstanceError):
        edit.layer = "other"
    assert edit.describe() and str(edit) == edit.describe()


def test_history_round_trip():
    text = edits.history_to_json(EXAMPLES)
    assert edits.history_from_json(text) == EXAMPLES


def test_to_code_replays_the_edit():
    model = models.mlp_64()
    edit = ReplaceLayer("middle", layers.Dense(64, activation="tanh"))
    code = edit.to_code()
    assert code.startswith("model = kerawidgets.replace_layer(model, 'middle', keras.layers.Dense(")
    namespace = {"keras": keras, "kerawidgets": kerawidgets, "model": model}
    exec(code, namespace)
    replayed = namespace["model"]
    direct = kerawidgets.rebuild(model, [edit]).model
    assert replayed.get_layer("middle").get_config()["activation"] == "tanh"
    x = models.data_for(model)
    np.testing.assert_allclose(models.numpy_of(replayed(x)), models.numpy_of(direct(x)), rtol=1e-6)


def test_to_code_for_class_selector_and_insert():
    assert SetActivation(keras.layers.ReLU, "gelu").to_code() == (
        "model = kerawidgets.replace_activation(model, keras.layers.ReLU, 'gelu')")
    code = InsertLayer(after="hidden", layer=layers.Dropout(0.2, name="dropout")).to_code()
    assert code == "model = kerawidgets.insert_layer(model, after='hidden', layer=keras.layers.Dropout(rate=0.2))"


def test_registered_activation_function_is_stored_by_name():
    swish = kerawidgets.register_activation("edits_swish", lambda x: x * keras.ops.sigmoid(x))
    try:
        assert SetActivation("d", swish).activation == "edits_swish"
    finally:
        kerawidgets.unregister_activation("edits_swish")


def test_bad_edits_fail_at_construction():
    with pytest.raises(UnknownActivationError):
        SetActivation("d", "not_an_activation")
    with pytest.raises(InvalidEditError, match="attribute"):
        SetActivation("d", "relu", attribute="kernel init")  # any other setting: refused by the plan
    with pytest.raises(InvalidEditError, match="Unknown layer type"):
        ReplaceLayer("d", "NoSuchLayer")
    with pytest.raises(InvalidEditError, match="one layer"):
        RemoveLayer(keras.layers.Dense)
    with pytest.raises(InvalidEditError, match="predicate"):
        SetActivation(lambda layer: True, "relu").to_json()
    with pytest.raises(InvalidEditError, match="not an edit"):
        edits.as_edit("relu")


def test_list_selector_is_a_tuple_hashable_and_survives_json():
    edit = SetActivation(["hidden", "middle"], "gelu")
    assert edit.layer == ("hidden", "middle")
    assert hash(edit) == hash(edits.from_json(edit.to_json()))
    assert {edit, edits.from_json(edit.to_json())} == {edit}
    new = kerawidgets.rebuild(models.mlp_64(), [edit]).model
    assert [new.get_layer(n).get_config()["activation"] for n in ("hidden", "middle")] == ["gelu"] * 2


def test_subnetwork_replacement_to_code_names_a_variable_and_replays():
    model = models.mlp_64()
    sub = subnetwork()
    edit = ReplaceLayer("middle", sub, trainable=False)
    code = edit.to_code()
    comment, call = code.splitlines()
    assert comment.startswith(f"# `sub_net_1` is the keras.Model {ODD_NAME!r}")
    assert call == "model = kerawidgets.replace_layer(model, 'middle', sub_net_1, trainable=False)"
    namespace = {"keras": keras, "kerawidgets": kerawidgets, "model": model, "sub_net_1": sub}
    exec(code, namespace)
    x = models.data_for(model)
    np.testing.assert_allclose(models.numpy_of(namespace["model"](x)),
                               models.numpy_of(kerawidgets.rebuild(model, [edit]).model(x)), rtol=1e-6)


def test_editor_to_code_with_a_subnetwork_is_valid_python():
    model = models.mlp_64()
    editor = kerawidgets.ModelEditor(model, models.data_for(model))
    editor.apply(ReplaceLayer("middle", subnetwork()), reinitialize="downstream")
    code = editor.to_code()
    compile(code, "<editor>", "exec")
    assert code.strip().endswith("sub_net_1, reinitialize='downstream')")


def test_subnetwork_json_is_a_reference_that_needs_the_model_back():
    sub = subnetwork()
    edit = ReplaceLayer("middle", [layers.Dense(64, name="pre"), sub])
    text = edit.to_json()
    assert "inner" not in text  # no layers or weights pretend to be stored
    with pytest.raises(SubnetworkNotStoredError, match=f"(?s)'middle'.*'{ODD_NAME}'.*subnetworks="):
        edits.from_json(text)
    assert edits.from_json(text, subnetworks={ODD_NAME: sub}) == edit
    assert edits.history_from_json(edits.history_to_json([edit]), subnetworks={ODD_NAME: sub}) == [edit]
    with pytest.raises(SubnetworkNotStoredError, match="parameters"):
        edits.from_json(text, subnetworks={ODD_NAME: keras.Sequential(
            [keras.Input((64,)), layers.Dense(3)], name=ODD_NAME)})


# --- to_code() that runs in a fresh namespace ----------------------------------------------


def test_editor_to_code_runs_in_a_fresh_namespace_and_gives_the_same_model():
    import keras_hub

    kerawidgets.register_activation("code_swish", models.scaled_swish, scale=1.5)
    try:
        inp = keras.Input((6, 8), name="tokens")
        x = layers.Dense(8, name="proj")(inp)
        x = layers.Dense(8, name="mid")(x)
        x = models.Gated(8, name="gated")(x)
        out = layers.Dense(3, name="head")(layers.Flatten(name="flat")(x))
        model = keras.Model(inp, out)
        data = np.random.default_rng(0).normal(size=(4, 6, 8)).astype("float32")
        editor = kerawidgets.ModelEditor(model, data)
        editor.apply(SetActivation("proj", "code_swish"))
        editor.apply(ReplaceLayer("mid", keras_hub.layers.TransformerEncoder(16, 2, name="enc")))
        editor.apply(SetActivation("gated", "relu", attribute="gate"))
        editor.apply(InsertLayer(after="gated", layer=models.Gated(8, gate="hard_sigmoid", name="gated_2")))
        code = editor.to_code()
        lines = code.splitlines()
        assert "from keras_hub.layers import TransformerEncoder" in lines
        assert "from tests.models import Gated" in lines
        assert "from tests.models import scaled_swish" in lines
        assert "kerawidgets.register_activation('code_swish', scaled_swish, scale=1.5)" in lines
        namespace = {"model": model}  # nothing else: the script imports what it names
        exec(compile(code, "<to_code>", "exec"), namespace)
        replayed = namespace["model"]
    finally:
        kerawidgets.unregister_activation("code_swish")
    expected = editor.model
    assert models.config_of(replayed) == models.config_of(expected)
    assert [v.path for v in replayed.weights] == [v.path for v in expected.weights]
    fresh = {"mid", "gated_2"}  # new layers start from their initialisers in both
    for layer in expected.layers:
        if layer.name not in fresh:
            for a, b in zip(layer.weights, replayed.get_layer(layer.name).weights):
                np.testing.assert_array_equal(models.numpy_of(a), models.numpy_of(b))
    replayed.set_weights(expected.get_weights())
    np.testing.assert_allclose(models.numpy_of(replayed(data)), models.numpy_of(expected(data)),
                               rtol=1e-5, atol=1e-6)


def test_to_code_says_what_it_cannot_import():
    kerawidgets.register_activation("code_lambda", lambda x: x * 0.5)

    @keras.saving.register_keras_serializable(package="tests_local")
    class Local(layers.Layer):
        def call(self, x):
            return x

    try:
        header = edits.script_header([SetActivation("d", "code_lambda"),
                                      InsertLayer(after="d", layer=Local(name="local"))])
    finally:
        kerawidgets.unregister_activation("code_lambda")
    comments = [line for line in header if line.startswith("#")]
    assert any("'code_lambda'" in c and "cannot be imported" in c
               and "kerawidgets.register_activation('code_lambda', fn)" in c for c in comments)
    assert any(c.startswith("# Local is defined in") and "cannot be imported" in c for c in comments)
    compile("\n".join(header), "<header>", "exec")


def test_an_edit_class_registers_itself_and_round_trips():
    """Adding an edit type is one class: subclassing registers it for JSON and the panel."""

    @dataclasses.dataclass(frozen=True)
    class Rename(edits.Edit):
        layer: str
        name: str
        required = ("layer", "name")

        def describe(self):
            return f"Rename {self.layer!r} to {self.name!r}"

        def to_data(self):
            return {"type": self.kind, "layer": self.layer, "name": self.name}

        @classmethod
        def from_fields(cls, data, subnetworks=None):
            return cls(data["layer"], data["name"])

    try:
        assert edits.EDIT_TYPES["Rename"] is Rename
        edit = Rename("dense", "first")
        assert edits.from_json(edit.to_json()) == edit
        assert edit.layer_name == "dense"
        with pytest.raises(InvalidEditError, match=r"lacks 'name'; it takes the keys 'type', 'layer', 'name'"):
            edits.from_data({"type": "Rename", "layer": "dense"})
    finally:
        del edits.EDIT_TYPES["Rename"]
    with pytest.raises(InvalidEditError, match="Unknown edit type 'Rename'"):
        edits.from_data({"type": "Rename", "layer": "dense", "name": "x"})


@pytest.mark.parametrize("edit", EXAMPLES, ids=lambda e: e.kind)
def test_every_example_is_registered_under_its_kind(edit):
    assert edits.EDIT_TYPES[edit.kind] is type(edit)


def test_set_settings_is_a_value_with_its_settings_as_keywords_or_a_dict():
    edit = SetSettings("conv2d", padding="same", strides=[2, 2])
    assert edit == SetSettings("conv2d", {"strides": (2, 2), "padding": "same"})
    assert hash(edit) == hash(SetSettings("conv2d", {"strides": (2, 2), "padding": "same"}))
    assert edit.settings == {"padding": "same", "strides": (2, 2)}
    assert edit.describe() == "Set padding='same', strides=(2, 2) on 'conv2d'"
    assert edit.to_code() == (
        "model = kerawidgets.set_settings(model, 'conv2d', padding='same', strides=(2, 2))")
    assert edit.to_data() == {"type": "SetSettings", "layer": "conv2d",
                              "settings": {"padding": "same", "strides": (2, 2)}}
    assert edits.from_json(edit.to_json()) == edit


@pytest.mark.parametrize("args, kwargs, message", [
    (("dropout",), {}, r"changes nothing: name a setting"),
    (("dropout",), {"name": "x"}, r"'name' is not a setting to change .*ReplaceLayer"),
    (("dropout", {"rate": layers.Dense(2)}), {}, r"rate=.* is not a plain value"),
    (("dropout", 0.2), {}, r"give the settings as keywords"),
    ((lambda layer: True,), {"rate": 0.1}, r"`layer` must name one layer"),
])
def test_bad_set_settings_fail_at_construction(args, kwargs, message):
    with pytest.raises(InvalidEditError, match=message):
        SetSettings(*args, **kwargs)


def test_set_settings_to_code_replays_the_edit():
    inp = keras.Input((6,))
    model = keras.Model(inp, layers.Dense(2, name="out")(layers.Dropout(0.5, name="drop")(inp)))
    namespace = {"keras": keras, "kerawidgets": kerawidgets, "model": model}
    exec(SetSettings("drop", rate=0.25).to_code(), namespace)
    assert namespace["model"].get_layer("drop").rate == 0.25
    assert model.get_layer("drop").rate == 0.5
