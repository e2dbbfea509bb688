"""Property tests: random functional models (chains, branches, merges, shared layers,
nested models, several inputs and outputs) under random edits.

Checked for every example: the original is unchanged (after a refused edit
too); every untouched layer's weights are bitwise equal in the new model
(unless re-initialised downstream of a shape change, when asked); an identity
rebuild gives equal outputs; the edited model saves and reloads to equal
outputs. Each example applies one to three random edits in a row. The default tier
runs a few examples; the `slow` tier runs many.
"""

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from keras import layers

import kerawidgets
from kerawidgets import targets
from kerawidgets.edits import InsertLayer, RemoveLayer, ReplaceLayer, SetActivation
from kerawidgets.errors import KerawidgetsError
from tests.models import config_of, weights_of

WIDTH = 4
ACTIVATIONS = ["relu", "tanh", "sigmoid", "gelu", "elu", "linear"]


class ModelRecipe:
    """Draws a random functional model, layer by layer, from hypothesis data."""

    def __init__(self, data):
        self.data = data
        self.count = 0
        self.denses = []
        self.shareable = []  # outer-level Dense layers that take WIDTH inputs

    def name(self, prefix):
        self.count += 1
        return f"{prefix}{self.count}"

    def dense(self):
        activation = self.data.draw(st.sampled_from(ACTIVATIONS))
        layer = layers.Dense(WIDTH, activation=activation, name=self.name("dense"))
        self.denses.append(layer)
        return layer

    def nested(self):
        if self.data.draw(st.booleans()):
            return keras.Sequential([keras.Input((WIDTH,)), self.dense(), self.dense()], name=self.name("seq"))
        inp = keras.Input((WIDTH,))
        a, b = self.dense()(inp), self.dense()(inp)
        return keras.Model(inp, layers.Add(name=self.name("add"))([a, b]), name=self.name("sub"))

    def build(self):
        n_inputs = self.data.draw(st.integers(1, 2))
        inputs = [keras.Input((WIDTH,), name=f"in{i}") for i in range(n_inputs)]
        pool = list(inputs)
        nested_models = []
        for _ in range(self.data.draw(st.integers(2, 7))):
            kind = self.data.draw(st.sampled_from(
                ["dense", "dense", "shared", "add", "concat", "op", "nested", "bn", "dropout"]))
            x = self.data.draw(st.sampled_from(pool))
            y = self.data.draw(st.sampled_from(pool))
            if kind == "shared" and self.shareable:
                out = self.data.draw(st.sampled_from(self.shareable))(x)
            elif kind == "add":
                out = layers.Add(name=self.name("add"))([x, y])
            elif kind == "concat":
                out = self.dense()(layers.Concatenate(name=self.name("cat"))([x, y]))
            elif kind == "op":
                out = x * 0.5 + y
            elif kind == "nested":
                if nested_models and self.data.draw(st.booleans()):
                    out = nested_models[0](x)  # a shared nested model
                else:
                    nested_models.append(self.nested())
                    out = nested_models[-1](x)
            elif kind == "bn":
                out = layers.BatchNormalization(name=self.name("bn"))(x)
            elif kind == "dropout":
                out = layers.Dropout(0.3, name=self.name("dropout"))(x)
            else:
                layer = self.dense()
                self.shareable.append(layer)
                out = layer(x)
            pool.append(out)
        last = pool[-1]
        for extra in inputs:  # every input reaches an output
            last = layers.Add(name=self.name("join"))([last, extra])
        outputs = [layers.Dense(2, name="head")(last)]
        if self.data.draw(st.booleans()) and len(pool) > 2:
            outputs.append(layers.Dense(1, name="aux")(self.data.draw(st.sampled_from(pool[1:]))))
        return keras.Model(inputs, outputs, name="random")


def draw_edit(data, model):
    paths = targets.layer_paths(model)
    dense_paths = [p for p in paths if isinstance(targets.resolve(model, p)[0].layer, layers.Dense)]
    kind = data.draw(st.sampled_from(
        ["activation", "activation_call", "insert", "replace", "remove", "widen"]))
    path = data.draw(st.sampled_from(dense_paths))
    activation = data.draw(st.sampled_from(ACTIVATIONS))
    if kind == "activation_call":
        calls = targets.call_count(model, path)
        if calls > 1:
            return SetActivation(f"{path}:{data.draw(st.integers(0, calls - 1))}", activation)
        return SetActivation(path, activation)
    if kind == "insert":
        return InsertLayer(after=path, layer=layers.Dropout(0.1, name="inserted_drop"))
    if kind == "replace":
        return ReplaceLayer(path, layers.Dense(targets.resolve(model, path)[0].layer.units, activation=activation))
    if kind == "widen":  # changes shapes downstream: re-initialised there, or refused at a merge
        return ReplaceLayer(path, layers.Dense(targets.resolve(model, path)[0].layer.units + 2))
    dropouts = [p for p in paths if isinstance(targets.resolve(model, p)[0].layer, layers.Dropout)]
    if kind == "remove" and dropouts:
        return RemoveLayer(data.draw(st.sampled_from(dropouts)))
    return SetActivation(path, activation)


def probe_inputs(model, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(3, WIDTH)).astype("float32") for _ in model.inputs]


def outputs(model, x):
    return [keras.ops.convert_to_numpy(o) for o in keras.tree.flatten(model(x, training=False))]


def variables_by_path(model):
    found = {}
    for path, layer in targets.walk_layers(model):
        found["/".join(path)] = [np.array(v) for v in layer.weights]
    return found


def check_properties(data, tmp_path):
    keras.utils.set_random_seed(0)
    model = ModelRecipe(data).build()
    x = probe_inputs(model)
    config, weights = config_of(model), weights_of(model)
    before = outputs(model, x)

    identity = kerawidgets.rebuild(model, [])
    for a, b in zip(outputs(identity.model, x), before):
        np.testing.assert_array_equal(a, b)

    # One to three edits in a row; an edit that cannot work (a widened layer feeding a
    # merge, a later edit naming a layer an earlier one removed) must be refused with a
    # KerawidgetsError and leave the original exactly as it was.
    edits = [draw_edit(data, model) for _ in range(data.draw(st.integers(1, 3)))]
    reinitialize = data.draw(st.sampled_from([None, "downstream"]))
    try:
        result = kerawidgets.rebuild(model, edits, reinitialize=reinitialize)
    except KerawidgetsError as error:
        event(f"refused: {type(error).__name__}")
        result = None
    assert config_of(model) == config
    for w, b in zip(model.weights, weights):
        np.testing.assert_array_equal(np.array(w), b)
    for a, b in zip(outputs(model, x), before):
        np.testing.assert_array_equal(a, b)
    if result is None:
        return
    event(f"rebuilt: {len(edits)} edits")

    old_vars, new_vars = variables_by_path(model), variables_by_path(result.model)
    for outcome in result.report:
        if outcome.status == "kept" and outcome.layer in old_vars:
            for a, b in zip(old_vars[outcome.layer], new_vars[outcome.layer]):
                np.testing.assert_array_equal(a, b)
    for outcome in result.report:
        if not outcome.edited and outcome.layer in old_vars:
            # an untouched layer is kept, unless asked to re-initialise it downstream
            assert outcome.status == "kept" or (
                reinitialize == "downstream" and outcome.status == "reinitialised"
                and "downstream" in outcome.reason), outcome

    path = tmp_path / "edited.keras"
    result.model.save(path)
    loaded = keras.saving.load_model(path)
    for a, b in zip(outputs(loaded, x), outputs(result.model, x)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


COMMON = dict(deadline=None, derandomize=True, print_blob=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@settings(max_examples=12, **COMMON)
@given(data=st.data())
def test_random_models_and_edits(data, tmp_path):
    check_properties(data, tmp_path)


@pytest.mark.slow
@settings(max_examples=150, **COMMON)
@given(data=st.data())
def test_random_models_and_edits_long_run(data, tmp_path):
    check_properties(data, tmp_path)
