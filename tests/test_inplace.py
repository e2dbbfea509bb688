"""The in-place activation tweak: recurrent cells, and all-or-nothing over many layers."""

import keras
import numpy as np
import pytest
from keras import layers

import kerawidgets
from kerawidgets.errors import InvalidEditError


class ReadOnlyActivation(layers.Layer):
    """A custom layer exposing its activation as a read-only property."""

    def __init__(self, activation="relu", **kwargs):
        super().__init__(**kwargs)
        self._fn = keras.activations.get(activation)

    @property
    def activation(self):
        return self._fn

    def call(self, x):
        return self._fn(x)


def recurrent_model():
    inp = keras.Input((5, 3))
    x = layers.LSTM(4, return_sequences=True, name="lstm")(inp)
    return keras.Model(inp, layers.GRU(2, name="gru")(x))


@pytest.mark.parametrize("layer, attribute", [
    ("lstm", "activation"), ("lstm", "recurrent_activation"),
    ("gru", "activation"), ("gru", "recurrent_activation"),
])
def test_recurrent_layers_change_on_their_cell_and_match_a_rebuild(layer, attribute):
    model = recurrent_model()
    x = np.random.default_rng(0).normal(size=(4, 5, 3)).astype("float32")
    before = model.predict(x, verbose=0)
    rebuilt = kerawidgets.replace_activation(model, layer, "relu", attribute=attribute)
    same = kerawidgets.replace_activation(model, layer, "relu", attribute=attribute, inplace=True)
    assert same is model
    assert getattr(model.get_layer(layer).cell, attribute) is keras.activations.relu
    assert model.get_layer(layer).get_config()[attribute] == "relu"
    after = model.predict(x, verbose=0)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, rebuilt.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_one_layer_that_cannot_change_leaves_every_layer_as_it_was():
    inp = keras.Input((4,))
    x = layers.Dense(4, activation="sigmoid", name="first")(inp)
    x = ReadOnlyActivation(name="fixed")(x)
    model = keras.Model(inp, layers.Dense(2, activation="sigmoid", name="last")(x))
    with pytest.raises(InvalidEditError, match="(?s)'fixed'.*read-only.*replace_activation"):
        kerawidgets.set_activation_inplace(model, lambda layer: hasattr(layer, "activation"), "tanh")
    assert model.get_layer("first").activation is keras.activations.sigmoid
    assert model.get_layer("last").activation is keras.activations.sigmoid


def test_layer_without_activation_is_refused_before_anything_changes():
    inp = keras.Input((4,))
    x = layers.Dense(4, activation="sigmoid", name="first")(inp)
    model = keras.Model(inp, layers.ReLU(name="r")(x))
    with pytest.raises(InvalidEditError, match="(?s)'r' \\(ReLU\\).*no 'activation'"):
        kerawidgets.set_activation_inplace(model, ["first", "r"], "tanh")
    assert model.get_layer("first").activation is keras.activations.sigmoid
