"""A rebuild keeps the model's own class and attributes (`kerawidgets.model_class`)."""

import keras
import numpy as np

from kerawidgets import rebuild
from kerawidgets.edits import InsertLayer, LayerSpec, SetActivation


class Scorer(keras.Model):
    """A user's functional subclass: its own __init__, attributes, methods."""

    def __init__(self, units=3, **kwargs):
        inputs = keras.Input((4,), name="features")
        hidden = keras.layers.Dense(units, activation="relu", name="hidden")
        head = keras.layers.Dense(2, name="head")
        super().__init__(inputs, head(hidden(inputs)), **kwargs)
        # Set after super().__init__: the torch backend refuses a layer attribute before it.
        self.hidden, self.head = hidden, head
        self.units = units
        self.labels = ["no", "yes"]
        self.blocks = [self.hidden, self.head]
        self.describe = self.summary_line
        self.notes = Notes({"hidden": hidden}, "kept")

    def summary_line(self):
        return f"{self.name}: {self.units} units"

    def label(self, x):
        return [self.labels[i] for i in np.argmax(self.predict(x, verbose=0), axis=-1)]

    def get_config(self):
        return {"units": self.units, "name": self.name}


class Notes:
    """A plain object that holds a layer of the graph."""

    def __init__(self, layers, text):
        self.layers, self.text = layers, text


class NeedsArgumentToExist(keras.Model):
    """A class that refuses to be allocated without its constructor's arguments
    (once Keras has injected Functional into its bases, which allocates one bare)."""

    made = 0

    def __new__(cls, *args, **kwargs):
        if not args and not kwargs and cls.made:
            raise TypeError("NeedsArgumentToExist needs its size")
        return super().__new__(cls, *args, **kwargs)

    def __init__(self, size, **kwargs):
        inputs = keras.Input((size,))
        super().__init__(inputs, keras.layers.Dense(2, name="d")(inputs), **kwargs)
        type(self).made += 1


def _weights(model):
    return [np.asarray(w) for w in model.get_weights()]


def test_user_subclass_identity_rebuild_keeps_class_attributes_and_methods():
    model = Scorer(name="scorer")
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    result = rebuild(model, [])
    copy = result.model
    assert type(copy) is Scorer
    assert copy.units == 3 and copy.labels == ["no", "yes"]
    assert copy.labels is not model.labels  # a copy, not the original's list
    assert copy.hidden is copy.get_layer("hidden") and copy.head is copy.get_layer("head")
    assert copy.hidden is not model.hidden
    assert [b.name for b in copy.blocks] == ["hidden", "head"]
    assert all(b is copy.get_layer(b.name) for b in copy.blocks)
    assert copy.describe() == "scorer: 3 units" and copy.describe.__self__ is copy
    assert copy.notes is not model.notes and copy.notes.text == "kept"
    assert copy.notes.layers["hidden"] is copy.hidden  # the copy's layer, not a deep copy
    assert copy.label(x) == model.label(x)
    assert all(np.array_equal(a, b) for a, b in zip(_weights(model), _weights(copy)))
    assert not {id(v) for v in model.weights} & {id(v) for v in copy.weights}
    assert len(copy.weights) == len(model.weights)
    assert copy.get_config() == model.get_config()
    assert not [n for n in result.report.notes if "Scorer" in n]


def test_user_subclass_keeps_class_after_an_activation_edit_and_copy_is_independent():
    model = Scorer(name="scorer")
    copy = rebuild(model, [SetActivation("hidden", "tanh")]).model
    assert type(copy) is Scorer
    assert copy.hidden.activation is keras.activations.tanh
    assert model.hidden.activation is keras.activations.relu
    copy.hidden.kernel.assign(np.zeros((4, 3), "float32"))
    assert np.any(np.asarray(model.hidden.kernel) != 0)


def test_structural_edit_says_the_class_methods_reach_layers_by_attribute():
    model = Scorer(name="scorer")
    result = rebuild(model, [InsertLayer("hidden", LayerSpec("Dropout", {"rate": 0.1}))])
    assert type(result.model) is Scorer
    note = next(n for n in result.report.notes if "Scorer 'scorer' kept as its own class" in n)
    assert "'hidden'" in note and "inserted or removed" in note


def test_class_that_cannot_be_allocated_falls_back_to_functional_and_says_so():
    model = NeedsArgumentToExist(3, name="odd")
    result = rebuild(model, [])
    assert type(result.model).__name__ == "Functional"
    note = next(n for n in result.report.notes if "NeedsArgumentToExist 'odd'" in n)
    assert "could not be re-created as its own class" in note
    assert "needs its size" in note
    assert "plain Functional" in note


def test_plain_functional_stays_plain():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    assert type(rebuild(model, []).model) is type(model)

