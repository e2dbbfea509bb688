"""`save_verified`: a `.keras` file that reloads to the same model, or no file and a clear error."""

import os

import keras
import numpy as np
import pytest

from kerawidgets import rebuild
from kerawidgets.edits import SetActivation
from kerawidgets.errors import KerawidgetsError, SaveCheckError
from kerawidgets.saving import first_difference, save_verified, shared_with_nested

X = np.random.default_rng(0).normal(size=(3, 4)).astype("float32")


@keras.saving.register_keras_serializable(package="kerawidgets_test_saving")
class Scorer(keras.Model):
    """A functional subclass that re-creates itself from its constructor arguments."""

    def __init__(self, units=3, **kwargs):
        inputs = keras.Input((4,), name="features")
        hidden = keras.layers.Dense(units, activation="relu", name="hidden")(inputs)
        super().__init__(inputs, keras.layers.Dense(2, name="head")(hidden), **kwargs)
        self.units = units

    def get_config(self):
        return {"units": self.units, "name": self.name}


def difference_from(model):
    expected = model.predict(X, verbose=0)
    return lambda reloaded: float(np.max(np.abs(reloaded.predict(X, verbose=0) - expected)))


def shared_across_nesting():
    """A Dense called inside a nested model and again by the outer graph."""
    shared = keras.layers.Dense(4, name="shared")
    inner_input = keras.Input((4,))
    inner = keras.Model(inner_input, shared(inner_input), name="inner")
    outer_input = keras.Input((4,))
    return keras.Model(outer_input, shared(inner(outer_input)), name="outer")


def test_own_class_saved_as_itself_when_its_config_describes_it(tmp_path):
    model = rebuild(Scorer(name="scorer"), []).model
    path = str(tmp_path / "scorer.keras")
    assert save_verified(model, path, difference_from(model), 1e-6) == "reloaded; outputs match"
    assert type(keras.saving.load_model(path)) is Scorer
    assert os.listdir(tmp_path) == ["scorer.keras"]


def test_edit_the_class_cannot_express_is_saved_as_a_plain_functional_graph(tmp_path):
    model = rebuild(Scorer(name="scorer"), [SetActivation("hidden", "tanh")]).model
    assert type(model) is Scorer
    path = str(tmp_path / "edited.keras")
    how = save_verified(model, path, difference_from(model), 1e-6)
    assert "saved as a plain Functional model" in how
    assert "'hidden'" in how and "tanh" in how and "Scorer re-creates its layers" in how
    reloaded = keras.saving.load_model(path)
    assert type(reloaded) is not Scorer
    assert reloaded.get_layer("hidden").activation is keras.activations.tanh
    assert os.listdir(tmp_path) == ["edited.keras"]


def test_layer_shared_with_a_nested_model_is_refused_naming_it_and_leaves_no_file(tmp_path):
    model = shared_across_nesting()
    assert "'shared' (Dense) is called both inside 'inner' and by 'outer'" in shared_with_nested(model)
    path = tmp_path / "outer.keras"
    path.write_bytes(b"the user's earlier file")
    with pytest.raises(SaveCheckError) as caught:
        save_verified(model, str(path), difference_from(model), 1e-6)
    message = str(caught.value)
    assert isinstance(caught.value, KerawidgetsError)
    assert "'shared'" in message and "'inner'" in message and "Nothing was saved" in message
    assert os.listdir(tmp_path) == ["outer.keras"]
    assert path.read_bytes() == b"the user's earlier file"  # an existing file is not replaced


def test_first_difference_names_the_layer_and_setting():
    inputs = keras.Input((4,), name="x")
    a = keras.Model(inputs, keras.layers.Dense(2, activation="relu", name="d")(inputs))
    inputs = keras.Input((4,), name="x")
    b = keras.Model(inputs, keras.layers.Dense(2, activation="tanh", name="d")(inputs))
    assert first_difference(a, b) == "; layer 'd' (Dense) reloads with activation='tanh' instead of 'relu'"
    assert first_difference(a, a) == ""
