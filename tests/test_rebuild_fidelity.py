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
from kerawidgets.edits import InsertLayer, SetActivation
from kerawidgets.errors import InvalidEditError, LayerRecreationError
from tests.models import NoKwargs, Scaled, data_for, weights_of


def outputs_of(model, x):
    return [keras.ops.convert_to_numpy(t) for t in keras.tree.flatten(model(x, training=False))]


def assert_faithful(original, copy, x=None):
    """Same outputs, bitwise weights, names, graph ids; no shared variable."""
    x = data_for(original) if x is None else x
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


# --- 4. a layer object in get_config is copied, not shared --------------------


class Holder(layers.Layer):
    def __init__(self, inner=None, **kwargs):
        super().__init__(**kwargs)
        self.inner = inner if inner is not None else layers.Dense(3)

    def call(self, x):
        return self.inner(x)

    def get_config(self):
        return {**super().get_config(), "inner": self.inner}


def test_layer_object_in_config_is_not_shared_with_the_original():
    inp = keras.Input((4,))
    model = keras.Model(inp, layers.Dense(2, name="head")(Holder(name="holder")(inp)))
    result = rebuild(model, [])
    assert result.model.get_layer("holder").inner is not model.get_layer("holder").inner
    assert_faithful(model, result.model)
    before = np.array(model.get_layer("holder").inner.kernel)
    copy_kernel = result.model.get_layer("holder").inner.kernel
    copy_kernel.assign(np.zeros(copy_kernel.shape, "float32"))
    np.testing.assert_array_equal(np.array(model.get_layer("holder").inner.kernel), before)


# --- 5. a layer that renames itself in __init__ ------------------------------


class SelfNaming(layers.Layer):
    """keras-hub's DepthwiseConvBlock: `self.name = f"{name}_0"`."""

    def __init__(self, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.name = f"{name}_0"
        self.dense = layers.Dense(3, name=f"{name}_dense")

    def call(self, x):
        return self.dense(x)


def test_layer_renaming_itself_keeps_exactly_its_name():
    inp = keras.Input((4,))
    model = keras.Model(inp, layers.Dense(2, name="head")(SelfNaming(name="block_0")(inp)))
    assert model.layers[1].name == "block_0_0"
    result = rebuild(model, [SetActivation("head", "relu")])
    assert [layer.name for layer in result.model.layers] == [layer.name for layer in model.layers]
    assert result.report["block_0_0"].status == "kept"
    assert_faithful(model, rebuild(model, []).model)


# --- 6. layers from_config cannot re-create, though Keras runs them ----------




class BrokenConfig(layers.Layer):
    """keras-hub 0.32 LlamaTransformerDecoder: get_config reads a missing attribute."""

    def __init__(self, units, init=None, **kwargs):
        super().__init__(**kwargs)
        self.dense = layers.Dense(units, kernel_initializer=init or "glorot_uniform")

    def call(self, x):
        return self.dense(x)

    def get_config(self):
        return {**super().get_config(), "units": self.dense.units, "scale": self.scaling_factor}


class ExtraKeys(layers.Layer):
    """keras-hub 0.32 ViT patch embedding: get_config has keys __init__ does not take."""

    def __init__(self, units, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.dense = layers.Dense(units)
        self.activation = keras.activations.get(activation)

    def call(self, x):
        return self.activation(self.dense(x))

    def get_config(self):
        return {**super().get_config(), "units": self.dense.units, "num_patches": 4,
                "activation": keras.activations.serialize(self.activation)}


def awkward_model():
    inp = keras.Input((4,), name="x")
    x = NoKwargs(3)(inp)
    x = layers.Dense(4, activation=Scaled(0.5), name="scaled")(x)
    x = BrokenConfig(4, init=keras.initializers.Orthogonal(seed=1), name="broken")(x)
    x = ExtraKeys(4, name="extra")(x)
    return keras.Model(inp, layers.Dense(2, activation="sigmoid", name="head")(x))


def test_layers_from_config_cannot_recreate_never_block_a_rebuild():
    model = awkward_model()
    assert_faithful(model, rebuild(model, []).model)
    result = rebuild(model, [SetActivation("head", "tanh"),
                             InsertLayer(after="extra", layer=layers.Dropout(0.1))])
    for layer in model.layers[1:-1]:
        assert result.report[layer.name].status == "kept", layer.name
    x = data_for(model)
    features = x
    for layer in model.layers[1:-1]:
        features = layer(features)  # eager calls: no node added to the original
    head = model.get_layer("head")
    expected = np.tanh(keras.ops.convert_to_numpy(features @ head.kernel + head.bias))
    np.testing.assert_allclose(outputs_of(result.model, x)[0], expected, rtol=1e-5, atol=1e-6)


def test_edit_of_a_layer_from_config_cannot_recreate_is_refused_naming_it():
    model = awkward_model()
    with pytest.raises(LayerRecreationError, match="'broken'.*get_config"):
        rebuild(model, [SetActivation("broken", "relu")])
    with pytest.raises(LayerRecreationError, match="'extra'.*num_patches"):
        rebuild(model, [SetActivation("extra", "relu")])


def _hub_backbone(kind):
    keras_hub = pytest.importorskip("keras_hub")
    if kind == "llama":
        return keras_hub.models.LlamaBackbone(
            vocabulary_size=50, num_layers=1, num_query_heads=2, num_key_value_heads=1,
            hidden_dim=8, intermediate_dim=16)
    if kind == "vit":
        return keras_hub.models.ViTBackbone(
            image_shape=(8, 8, 3), patch_size=4, num_layers=1, num_heads=2, hidden_dim=8,
            mlp_dim=16)
    return keras_hub.models.DeiTBackbone(
        image_shape=(8, 8, 3), patch_size=4, num_layers=1, num_heads=2, hidden_dim=8,
        intermediate_dim=16)


@pytest.mark.parametrize("kind", ["llama", "vit", "deit"])
def test_keras_hub_layers_with_broken_get_config_are_kept(kind):
    model = _hub_backbone(kind)
    x = None
    if kind == "llama":
        x = {"token_ids": np.arange(10, dtype="int32").reshape(2, 5) % 50,
             "padding_mask": np.ones((2, 5), "int32")}
    assert_faithful(model, rebuild(model, []).model, x)
    with pytest.raises((AttributeError, TypeError)):  # README: clone_model fails on these
        keras.models.clone_model(model)


# --- 7. a subclassed model nested in a functional model -----------------------


class SubModel(keras.Model):
    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.inner = layers.Dense(units, activation="relu", name="inner")

    def call(self, x):
        return self.inner(x) * 2.0

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def nested_subclassed():
    inp = keras.Input((4,), name="x")
    return keras.Model(inp, layers.Dense(2, name="head")(SubModel(name="sub")(inp)))


def test_nested_subclassed_model_is_one_node_kept_with_its_weights():
    model = nested_subclassed()
    ids = graph_ids(model)  # the graph shows its traced inside as a group (issue 14)
    assert ids == ["x", "sub/x", "sub/inner", "sub/multiply", "head"]
    assert_faithful(model, rebuild(model, []).model)
    result = rebuild(model, [SetActivation("head", "tanh"),
                             InsertLayer(after="sub", layer=layers.Dropout(0.2))])
    assert result.report["sub"].status == "kept"
    np.testing.assert_array_equal(np.array(result.model.get_layer("sub").inner.kernel),
                                  np.array(model.get_layer("sub").inner.kernel))


def test_edit_inside_a_nested_subclassed_model_gives_the_same_class_edited():
    model = nested_subclassed()
    result = rebuild(model, [SetActivation("sub/inner", "tanh")])
    sub = result.model.get_layer("sub")
    assert type(sub) is SubModel and sub is not model.get_layer("sub")
    assert sub.inner.get_config()["activation"] == "tanh"
    assert model.get_layer("sub").inner.get_config()["activation"] == "relu"
    assert result.report["sub/inner"].status == "kept"
    np.testing.assert_array_equal(np.array(sub.inner.kernel),
                                  np.array(model.get_layer("sub").inner.kernel))


# --- 11. messages name the layer ---------------------------------------------


def test_missing_activation_setting_names_the_layer_and_what_it_has():
    inp = keras.Input((3, 2))
    model = keras.Model(inp, layers.LSTM(2, name="lstm")(layers.Dense(2, name="dense")(inp)))
    with pytest.raises(InvalidEditError, match="'dense'.*recurrent_activation.*settings are 'activation'"):
        rebuild(model, [SetActivation("dense", "tanh", attribute="recurrent_activation")])
    with pytest.raises(InvalidEditError, match="SetActivation of 'lstm': `attribute` must name"):
        SetActivation("lstm", "tanh", attribute="not a setting")
    with pytest.raises(InvalidEditError, match="'lstm'.*no 'kernel'.*'activation'.*'recurrent_activation'"):
        rebuild(model, [SetActivation("lstm", "tanh", attribute="kernel")])
