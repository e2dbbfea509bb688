"""Faithful rebuilds of layers Keras runs but that are awkward to copy (issue 10).

Each test starts from a user's model that broke: lazily built sub-layers,
node ids, raw ops, shared sub-layer objects, self-renaming layers, layers
`from_config` cannot re-create, nested subclassed models, messages.
"""

import keras
import numpy as np
import pytest
from keras import layers

from kerawidgets import ModelGraph, rebuild
from kerawidgets.edits import SetActivation
from kerawidgets.errors import LayerRecreationError
from tests.models import data_for, weights_of


def outputs_of(model, x):
    return [keras.ops.convert_to_numpy(t) for t in keras.tree.flatten(model(x, training=False))]


def assert_faithful(original, copy):
    """Same outputs, bitwise weights, names, graph ids; no shared variable."""
    x = data_for(original)
    for a, b in zip(outputs_of(original, x), outputs_of(copy, x)):
        np.testing.assert_array_equal(a, b)
    assert [w.path for w in copy.weights] == [w.path for w in original.weights]
    for a, b in zip(weights_of(original), weights_of(copy)):
        np.testing.assert_array_equal(a, b)
    assert [layer.name for layer in copy.layers] == [layer.name for layer in original.layers]
    assert [n.id for n in ModelGraph.from_model(copy).nodes] == [
        n.id for n in ModelGraph.from_model(original).nodes]
    shared = {id(v) for v in original.variables} & {id(v) for v in copy.variables}
    assert not shared


# --- 1. sub-layers created in __init__, built on first call ----------------


class LazyBlock(layers.Layer):
    """keras-hub's FusedMBConvBlock pattern: `build` does nothing."""

    def __init__(self, units=4, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.inner = layers.Dense(units)

    def build(self, shape):
        pass

    def call(self, x):
        return self.inner(x)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class CustomDense(layers.Layer):
    """Keras' model_test.py CustomDense: no `build` at all."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dense = layers.Dense(units)

    def call(self, x):
        return self.dense(x)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def lazy_model(block_cls=LazyBlock):
    inp = keras.Input((4,))
    return keras.Model(inp, layers.Dense(2, name="head")(block_cls(4, name="block")(inp)))


@pytest.mark.parametrize("block_cls", [LazyBlock, CustomDense])
def test_lazily_built_sub_layers_keep_their_weights(block_cls):
    model = lazy_model(block_cls)
    before = weights_of(model)
    result = rebuild(model, [])
    assert result.report["block"].status == "kept"
    assert_faithful(model, result.model)
    for a, b in zip(before, weights_of(model)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("block_cls", [LazyBlock, CustomDense])
def test_layer_upstream_of_an_edit_is_never_reinitialised(block_cls):
    model = lazy_model(block_cls)
    result = rebuild(model, [SetActivation("head", "tanh")], reinitialize="downstream")
    assert result.report["block"].status == "kept"
    assert result.report["block"].reason == "untouched"
    for a, b in zip(model.get_layer("block").weights, result.model.get_layer("block").weights):
        np.testing.assert_array_equal(np.array(a), np.array(b))
    x = data_for(model)
    # the copy runs (under jax a weight made inside a trace would raise UnexpectedTracerError)
    np.testing.assert_allclose(
        outputs_of(result.model, x)[0],
        np.tanh(outputs_of(model, x)[0]), rtol=1e-5, atol=1e-6,
    )


def test_lazy_block_in_a_sequential_keeps_weights():
    model = keras.Sequential([keras.Input((4,)), LazyBlock(4, name="block"),
                              layers.Dense(2, name="head")])
    result = rebuild(model, [SetActivation("head", "relu")])
    assert result.report["block"].status == "kept"
    np.testing.assert_array_equal(np.array(model.get_layer("block").inner.kernel),
                                  np.array(result.model.get_layer("block").inner.kernel))


def test_untouched_layer_that_loses_weights_is_refused_not_reinitialised():
    class Forgetful(layers.Layer):
        """Makes a weight when its options say so; get_config forgets the options."""

        def __init__(self, options=None, **kwargs):
            super().__init__(**kwargs)
            self.options = options or {}

        def build(self, shape):
            if self.options.get("weight"):
                self.w = self.add_weight(shape=(shape[-1],), name="w")

        def call(self, x):
            return x * self.w if self.options.get("weight") else x

        def get_config(self):
            return {"name": self.name}

    inp = keras.Input((3,))
    model = keras.Model(inp, layers.Dense(2, name="head")(Forgetful({"weight": True, "tag": object()}, name="forgetful")(inp)))
    for reinitialize in (None, "downstream"):
        with pytest.raises(LayerRecreationError, match="(?s)'forgetful'.*untouched.*w"):
            rebuild(model, [SetActivation("head", "relu")], reinitialize=reinitialize)


# --- 2, 3. node ids count this model's calls; raw ops keep their names --------


def graph_ids(model):
    return [n.id for n in ModelGraph.from_model(model).nodes]


def test_ids_after_sequential_add_count_only_this_models_calls():
    model = keras.Sequential()
    model.add(keras.Input((3,)))
    model.add(layers.Dense(4, name="first"))
    model.add(layers.Dense(2, name="second"))
    assert graph_ids(model)[1:] == ["first", "second"]
    result = rebuild(model, [SetActivation(graph_ids(model)[1], "relu")])
    assert result.report["first"].status == "kept"
    assert graph_ids(result.model) == graph_ids(model)


def test_ids_of_a_model_built_from_intermediate_tensors():
    inp = keras.Input((3,))
    hidden = layers.Dense(4, name="hidden")(inp)
    out = layers.Dense(2, name="out")(hidden)
    keras.Model(inp, out)
    head = keras.Model(hidden, out)
    assert "out" in graph_ids(head)
    result = rebuild(head, [SetActivation("out", "tanh")])
    assert result.report["out"].status == "kept"
    assert graph_ids(result.model) == graph_ids(head)


def test_shared_layer_called_deeper_second_keeps_its_call_ids():
    x = keras.Input((4,))
    shared = layers.Dense(4, name="s")
    first = shared(layers.Dense(4, name="d1")(x))
    second = shared(x)  # call 1, but Keras lists it before call 0 (it is deeper)
    out = layers.Add(name="add")([first, layers.Dense(4, name="d3")(layers.Dense(4, name="d2")(second))])
    model = keras.Model(x, out)
    assert {"s", "s:1"} <= set(graph_ids(model))
    assert_faithful(model, rebuild(model, []).model)
    edited = rebuild(model, [SetActivation("s:1", "relu")]).model
    x_data = data_for(model)
    d1 = model.get_layer("d1")(x_data)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(edited.get_layer("s")(d1)),
        keras.ops.convert_to_numpy(model.get_layer("s")(d1)), rtol=1e-6)
    assert "s_call1" in graph_ids(edited)


def test_raw_op_ids_are_stable_on_rebuild():
    model = keras.Sequential([keras.Input((3, 2)), layers.Masking(0.0), layers.LSTM(1)])
    ids = graph_ids(model)
    assert any(not i.startswith(("input", "masking", "lstm")) for i in ids)  # mask ops shown
    assert graph_ids(rebuild(model, []).model) == ids
    inp = keras.Input((3,))
    functional = keras.Model(inp, layers.Dense(2, name="d")(inp * 2.0 + 1.0))
    assert graph_ids(rebuild(functional, []).model) == graph_ids(functional)
