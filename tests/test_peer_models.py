"""The peer tier: the model architectures Keras' own tests build, rebuilt faithfully.

Architectures copied (not imported) from keras/src/models/model_test.py,
functional_test.py, sequential_test.py, keras/src/saving/saving_lib_test.py,
and the Lambda and Masking layer tests, plus layers `from_config` cannot
re-create (issue 10). For each: an identity rebuild equal to the original
(outputs, bitwise weights, type, names, graph ids, no shared variable), the
original unchanged, an activation swap on every layer that has one, a Dense
replaced and a Dropout inserted, save and reload equal, impossible edits
refused with a `KerawidgetsError`.

`fidelity_table()` compares with `keras.models.clone_model`; the table in
docs/fidelity.md must equal it (`python -m tests.test_peer_models` prints it).
"""

import json

import keras
import numpy as np
import pytest
from keras import layers

from kerawidgets import ModelGraph, rebuild
from kerawidgets.edits import InsertLayer, ReplaceLayer, SetActivation
from kerawidgets.errors import KerawidgetsError, ShapeMismatchError
from kerawidgets.plan import supports_activation
from tests.models import NoKwargs, Scaled

PACKAGE = "kerawidgets_peer"


# --- layers, as in Keras' tests ------------------------------------------------


@keras.saving.register_keras_serializable(package=PACKAGE)
class MyDense(layers.Layer):
    """saving_lib_test.py: extra weights in a list and a dict, a nested Dense."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.nested_layer = layers.Dense(self.units, name="dense")

    def build(self, input_shape):
        self.additional_weights = [
            self.add_weight(shape=(), name="my_additional_weight", initializer="ones"),
            self.add_weight(shape=(), name="my_additional_weight_2", initializer="ones"),
        ]
        self.weights_in_dict = {
            "my_weight": self.add_weight(shape=(), name="my_dict_weight", initializer="ones"),
        }
        self.nested_layer.build(input_shape)

    def call(self, inputs):
        return self.nested_layer(inputs)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package=PACKAGE)
class CustomDense(layers.Layer):
    """model_test.py: a sub-layer made in __init__, built on first call (no build)."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dense = layers.Dense(units)

    def call(self, x):
        return self.dense(x)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package=PACKAGE)
class GrowthFactor:
    """saving_lib_test.py: a callable object as an activation."""

    def __init__(self, factor):
        self.factor = factor

    def __call__(self, inputs):
        return inputs * self.factor

    def get_config(self):
        return {"factor": self.factor}


@keras.saving.register_keras_serializable(package=PACKAGE)
class FactorLayer(layers.Layer):
    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ComplexModel(layers.Layer):
    """saving_lib_test.py: get_config returns layer objects."""

    def __init__(self, first_layer, second_layer=None, **kwargs):
        super().__init__(**kwargs)
        self.first_layer = first_layer
        self.second_layer = second_layer if second_layer is not None else layers.Dense(8)

    def get_config(self):
        return {**super().get_config(), "first_layer": self.first_layer,
                "second_layer": self.second_layer}

    @classmethod
    def from_config(cls, config):
        for key in ("first_layer", "second_layer"):
            if isinstance(config[key], dict):
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

    def call(self, inputs):
        return self.first_layer(self.second_layer(inputs))


@keras.saving.register_keras_serializable(package=PACKAGE)
class CustomModelX(keras.Model):
    """saving_lib_test.py: a subclassed model (here nested in a functional one)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.dense1 = MyDense(1, name="my_dense_1")
        self.dense2 = MyDense(1, name="my_dense_2")

    def call(self, inputs):
        return self.dense2(self.dense1(inputs))


@keras.saving.register_keras_serializable(package=PACKAGE)


# --- architectures -----------------------------------------------------------


def two_inputs_raw_add():  # model_test.py _get_model
    input_a = keras.Input(shape=(3,), batch_size=2, name="input_a")
    input_b = keras.Input(shape=(3,), batch_size=2, name="input_b")
    x = layers.Dense(5)(input_a + input_b)
    return keras.Model([input_a, input_b], layers.Dense(4)(x))


def multi_outputs_dict():  # model_test.py _get_model_multi_outputs_dict
    x = keras.Input(shape=(3,), name="input_a")
    return keras.Model(x, {"output_a": layers.Dense(1, name="output_a")(x),
                           "output_b": layers.Dense(1, name="output_b", activation="sigmoid")(x)})


def nested_output_struct():  # model_test.py _get_model_multi_outputs_struct
    x = keras.Input(shape=(3,), name="x")
    y1, y2, y3 = (layers.Dense(1, name=f"y{i}", activation="sigmoid")(x) for i in (1, 2, 3))
    return keras.Model(x, {"a": (y1, y2), "b": {"b1": y1, "b2": y2},
                           "c": {"c1": (y1, y2), "c2": y2}, "d": y3})


def custom_dense_functional():  # model_test.py CustomDense
    inputs = keras.Input((4,))
    return keras.Model(inputs, layers.Dense(2, name="head")(CustomDense(10)(inputs)))


def nested_functional_shared():  # functional_test.py: nested model, shared layer
    inner_in = keras.Input((4,), name="inner_in")
    inner = keras.Model(inner_in, layers.Dense(4, activation="relu", name="inner_dense")(inner_in),
                        name="inner")
    inp = keras.Input((4,), name="outer_in")
    shared = layers.Dense(4, name="shared")
    x = shared(inner(inp))
    x = shared(x)
    return keras.Model(inp, layers.Dense(2, name="out")(layers.Concatenate()([x, inp])))


def basic_sequential():  # saving_lib_test.py _get_basic_sequential_model
    return keras.Sequential([keras.Input((4,)), layers.Dense(1, name="dense_1"),
                             layers.Dense(1, name="dense_2")], name="sequential")


def sequential_added():  # sequential_test.py: layers added one by one
    model = keras.Sequential(name="seq")
    model.add(keras.Input((3,)))
    model.add(layers.Dense(4, activation="relu"))
    model.add(layers.Dropout(0.1))
    model.add(layers.Dense(2))
    return model


def custom_sequential():  # saving_lib_test.py _get_custom_sequential_model
    return keras.Sequential([keras.Input((4,)), MyDense(1), MyDense(1)], name="sequential")


def custom_functional():  # saving_lib_test.py _get_custom_functional_model
    inputs = keras.Input(shape=(4,), batch_size=2)
    return keras.Model(inputs, MyDense(1, name="second_dense")(MyDense(1, name="first_dense")(inputs)))


def growth_factor_activation():  # saving_lib_test.py test_custom_object_without_from_config
    inputs = keras.Input(shape=(4, 4))
    return keras.Model(inputs, layers.Dense(1, activation=GrowthFactor(0.5))(inputs))


def complex_layer():  # saving_lib_test.py ComplexModel
    inputs = keras.Input((4,))
    x = ComplexModel(first_layer=FactorLayer(0.5), name="complex")(inputs)
    return keras.Model(inputs, layers.Dense(2, name="head")(x))


def nested_subclassed():  # saving_lib_test.py CustomModelX, nested in a functional model
    inputs = keras.Input((4,))
    return keras.Model(inputs, layers.Dense(2, name="head")(CustomModelX(name="custom_model_x")(inputs)))


def lambda_layers():  # lambda_layer_test.py
    inputs = keras.Input((3,))
    x = layers.Lambda(lambda x: x**2)(inputs)
    x = layers.Lambda(lambda x: x**2, output_shape=lambda s: s)(x)
    return keras.Model(inputs, layers.Dense(2, name="head")(x))


def masking_lstm():  # masking_test.py test_masking_with_tensor
    return keras.Sequential([keras.Input((3, 2)), layers.Masking(mask_value=0.0), layers.LSTM(1)])


def no_kwargs_init():  # issue 10 item 6
    inputs = keras.Input((4,))
    return keras.Model(inputs, layers.Dense(2, name="head")(NoKwargs(3)(inputs)))


def callable_object_activation():  # issue 10 item 6
    inputs = keras.Input((4,))
    x = layers.Dense(3, activation=Scaled(0.5), name="scaled")(inputs)
    return keras.Model(inputs, layers.Dense(2, name="head")(x))


PEERS = {
    "model_test: two inputs, raw add": two_inputs_raw_add,
    "model_test: dict outputs": multi_outputs_dict,
    "model_test: nested output structure": nested_output_struct,
    "model_test: CustomDense (built on first call)": custom_dense_functional,
    "functional_test: nested model, shared layer": nested_functional_shared,
    "saving_lib_test: basic Sequential": basic_sequential,
    "sequential_test: Sequential.add": sequential_added,
    "saving_lib_test: custom Sequential (MyDense)": custom_sequential,
    "saving_lib_test: custom functional (MyDense)": custom_functional,
    "saving_lib_test: GrowthFactor activation": growth_factor_activation,
    "saving_lib_test: ComplexModel (layers in config)": complex_layer,
    "saving_lib_test: CustomModelX nested in functional": nested_subclassed,
    "lambda_layer_test: Lambda": lambda_layers,
    "masking_test: Masking + LSTM": masking_lstm,
    "__init__ without **kwargs": no_kwargs_init,
    "unregistered callable-object activation": callable_object_activation,
}
# Models whose custom objects are not registered, so Keras cannot reload them.
NOT_RELOADABLE = {"__init__ without **kwargs", "unregistered callable-object activation"}


# --- checks --------------------------------------------------------------------


def data_for(model, n=2):
    rng = np.random.default_rng(0)

    def one(tensor):
        shape = tuple(n if i == 0 else d for i, d in enumerate(tensor.shape))
        shape = tuple(n if d is None else d for d in shape)
        return rng.normal(size=shape).astype("float32")

    inputs = keras.tree.map_structure(one, model.inputs if len(model.inputs) > 1 else model.inputs[0])
    return inputs


def outputs_of(model, x):
    return [keras.ops.convert_to_numpy(t) for t in keras.tree.flatten(model(x, training=False))]


def weights_of(model):
    return [keras.ops.convert_to_numpy(v) for v in model.weights]


def graph_ids(model):
    return [n.id for n in ModelGraph.from_model(model).nodes]


def snapshot(model):
    try:
        config = json.dumps(model.get_config(), sort_keys=True, default=str)
    except TypeError:  # an unregistered activation object: Keras cannot serialise it
        config = [(layer.name, type(layer).__name__) for layer in model.layers]
    calls = [len(layer._inbound_nodes) for layer in model.layers]
    return (config, calls), weights_of(model)


def assert_equal_models(original, copy):
    x = data_for(original)
    for a, b in zip(outputs_of(original, x), outputs_of(copy, x), strict=True):
        np.testing.assert_array_equal(a, b)
    assert type(copy) is type(original)
    assert [w.path for w in copy.weights] == [w.path for w in original.weights]
    for a, b in zip(weights_of(original), weights_of(copy), strict=True):
        np.testing.assert_array_equal(a, b)
    assert [layer.name for layer in copy.layers] == [layer.name for layer in original.layers]
    assert graph_ids(copy) == graph_ids(original)
    assert not {id(v) for v in original.variables} & {id(v) for v in copy.variables}


def first_dense(model):
    """The first top-level Dense; else the first layer with weights (a custom one)."""
    candidates = [layer for layer in model.layers if type(layer) is layers.Dense] or [
        layer for layer in model.layers if layer.weights]
    return candidates[0]


# Where a wider replacement must be refused: a layer with weights consumes its output.
WIDENED = {
    "model_test: two inputs, raw add": None,
    "functional_test: nested model, shared layer": "shared",
    "saving_lib_test: basic Sequential": "dense_1",
    "sequential_test: Sequential.add": None,  # the first Dense, named by Keras
    "saving_lib_test: custom functional (MyDense)": None,
    "unregistered callable-object activation": "scaled",
}


@pytest.mark.parametrize("name", list(PEERS))
def test_peer_identity_rebuild_is_equal_and_independent(name):
    model = PEERS[name]()
    config, weights = snapshot(model)
    result = rebuild(model, [])
    assert_equal_models(model, result.model)
    assert {o.status for o in result.report.outcomes} <= {"kept"}
    for variable in result.model.trainable_variables:  # training the copy...
        variable.assign(np.zeros(variable.shape, variable.dtype))
    after_config, after_weights = snapshot(model)  # ...leaves the original as it was
    assert after_config == config
    for a, b in zip(weights, after_weights, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PEERS))
def test_peer_activation_swap_on_every_layer_that_has_one(name):
    model = PEERS[name]()
    x = data_for(model)
    for layer in model.layers:
        if isinstance(layer, keras.Model) or not supports_activation(layer):
            continue
        result = rebuild(model, [SetActivation(layer.name, "tanh")])
        assert result.report[layer.name].status == "kept"
        assert all(np.isfinite(o).all() for o in outputs_of(result.model, x))


@pytest.mark.parametrize("name", list(PEERS))
def test_peer_dense_replaced_and_dropout_inserted(name):
    model = PEERS[name]()
    dense = first_dense(model)
    units = keras.tree.flatten(model.layers[model.layers.index(dense)].output)[0].shape[-1]
    edits = [InsertLayer(after=dense.name, layer=layers.Dropout(0.5, name="inserted_dropout"))]
    if type(dense) is layers.Dense:  # else a custom layer or LSTM: only the Dropout
        edits.insert(0, ReplaceLayer(dense.name, layers.Dense(units, activation="relu")))
    result = rebuild(model, edits)
    # After an output layer the Dropout takes the output's name, so losses and predict
    # keys keep working; the layer before it becomes "<name>_pre" (issue 15).
    is_output = dense.name in _output_names(model)
    dropout = dense.name if is_output else "inserted_dropout"
    assert result.report[dropout].status == "new"
    assert _output_names(result.model) == _output_names(model)
    edited = {dense.name, f"{dense.name}_pre"}
    kept = [o for o in result.report.outcomes if o.layer not in edited and o.status != "new"]
    assert all(o.status == "kept" for o in kept), result.report
    x = data_for(model)
    assert [o.shape for o in outputs_of(result.model, x)] == [o.shape for o in outputs_of(model, x)]


def _output_names(model) -> list[str]:
    """What Keras keys a Functional model's losses and predict dicts by: the output layers'
    names. A Sequential has one unnamed output (no `output_names`): none to keep."""
    if isinstance(model, keras.Sequential):
        return []
    return list(model.output_names)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in PEERS if n not in NOT_RELOADABLE])
def test_peer_save_and_reload_equal(name, tmp_path):
    model = PEERS[name]()
    dense = next((layer for layer in model.layers if supports_activation(layer)), None)
    edits = [SetActivation(dense.name, "relu")] if dense is not None else []
    copy = rebuild(model, edits).model
    path = tmp_path / "peer.keras"
    copy.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=False)
    x = data_for(model)
    for a, b in zip(outputs_of(copy, x), outputs_of(reloaded, x), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", list(PEERS))
def test_peer_impossible_edits_are_refused(name):
    model = PEERS[name]()
    config, weights = snapshot(model)
    with pytest.raises(KerawidgetsError):
        rebuild(model, [SetActivation("no_such_layer", "relu")])
    if name in WIDENED:
        widened = WIDENED[name] or first_dense(model).name
        with pytest.raises(ShapeMismatchError, match=widened):
            rebuild(model, [ReplaceLayer(widened, layers.Dense(17))])
    assert snapshot(model)[0] == config


# --- comparison with keras.models.clone_model ------------------------------------


def _clone_model_result(model) -> str:
    try:
        clone = keras.models.clone_model(model)
        clone.set_weights(model.get_weights())
        x = data_for(model)
        same = all(np.array_equal(a, b) for a, b in zip(outputs_of(model, x), outputs_of(clone, x)))
        shared = {id(v) for v in model.variables} & {id(v) for v in clone.variables}
    except Exception as error:
        return f"fails ({type(error).__name__})"
    if shared:
        return "shares variables"
    return "works" if same else "different outputs"


def _kerawidgets_result(model) -> str:
    try:
        assert_equal_models(model, rebuild(model, []).model)
    except KerawidgetsError as error:
        return f"refused ({type(error).__name__})"
    except AssertionError:
        return "differs"
    return "works"


def fidelity_table() -> str:
    rows = ["| model (from Keras' tests) | `clone_model` + `set_weights` | `kerawidgets.rebuild` |",
            "|---|---|---|"]
    for name, make in PEERS.items():
        model = make()
        rows.append(f"| {name} | {_clone_model_result(model)} | {_kerawidgets_result(model)} |")
    return "\n".join(rows)


def test_fidelity_table_in_docs_is_current():
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "fidelity.md").read_text()
    assert fidelity_table() in text, "docs/fidelity.md is stale: run python -m tests.test_peer_models"


if __name__ == "__main__":
    print(fidelity_table())
