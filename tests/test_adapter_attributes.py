"""`_keras_adapter.attributes_fast`: layers made with it are the layers Keras makes.

The rebuild skips Keras' and TensorFlow's attribute trackers for values they
do nothing with. Every layer made that way must be indistinguishable from
one made the ordinary way: the same attributes with the same values and
types (Keras' `TrackedList`s, TensorFlow's `ListWrapper`s), the same tracked
variables, sub-layers and seed generators, the same checkpoint dependencies.
`picture` turns a layer (or model) into plain nested data that says all of
that, and each test compares the two pictures.
"""

import contextlib
import inspect
import re
import types

import keras
import numpy as np
import pytest
from keras import layers

from kerawidgets import _keras_adapter as adapter
from kerawidgets import rebuild
from kerawidgets.edits import SetActivation
from tests.models import data_for

ON_TENSORFLOW = keras.backend.backend() == "tensorflow"
TF_NAMES = ("_name", "_shared_name")  # numbered by TensorFlow's own global counters


# --- a comparable picture of a layer's whole state ----------------------------


def picture(obj):
    """Plain nested data describing `obj` and everything it holds (cycles cut by memo)."""
    return _Picture().of(obj, 0)


class _Picture:
    def __init__(self):
        self.seen: dict[int, str] = {}
        self.open: set[int] = set()

    def of(self, value, depth):
        if value is None or isinstance(value, (bool, int, float, bytes)):
            return (type(value).__name__, value)
        if isinstance(value, str):  # a Functional's node keys hold object ids
            return ("str", re.sub(r"^\d+_ib-", "<id>_ib-", value))
        if isinstance(value, keras.Variable):
            return ("variable", value.path, tuple(value.shape), value.dtype, value.trainable,
                    keras.ops.convert_to_numpy(value).tobytes())
        if isinstance(value, keras.KerasTensor):  # automatic names differ between two builds
            return ("tensor", tuple(value.shape), value.dtype)
        if isinstance(value, (types.FunctionType, types.MethodType, types.BuiltinFunctionType)):
            return ("function", getattr(value, "__qualname__", repr(value)))
        if isinstance(value, types.ModuleType):
            return ("module", value.__name__)
        if isinstance(value, (inspect.Signature, np.ndarray, np.generic, type)):
            return (type(value).__name__, repr(value))
        if isinstance(value, (set, frozenset, dict, list, tuple)):
            return self.container(value, depth)
        return self.object(value, depth)

    def container(self, value, depth):
        if id(value) in self.open:  # a container holding itself
            return ("cycle", type(value).__name__)
        self.open.add(id(value))
        try:
            if isinstance(value, (set, frozenset)):
                items = sorted(repr(self.of(v, depth + 1)) for v in value)
            elif isinstance(value, dict):
                items = [(repr(self.of(k, depth + 1)), self.of(v, depth + 1))
                         for k, v in value.items()]
            else:
                items = [self.of(v, depth + 1) for v in value]
        finally:
            self.open.discard(id(value))
        return (type(value).__name__, items)

    def object(self, value, depth):
        if id(value) in self.seen:  # a cycle, or the same object held twice
            return ("same as", self.seen[id(value)])
        label = f"{type(value).__name__}#{len(self.seen)}"
        self.seen[id(value)] = label
        state = getattr(value, "__dict__", None)
        if state is None or depth > 12:
            return (label, type(value).__name__)
        attributes = sorted(adapter.instance_state(value).items())
        if type(value).__module__.startswith("tensorflow"):  # TensorFlow's global name counters
            attributes = [(name, re.sub(r"\d+$", "<n>", item) if name in TF_NAMES else item)
                          for name, item in attributes]
        return (label, type(value).__name__,
                [(name, self.stored_ids(value) if name == "stored_ids" else self.of(item, depth + 1))
                 for name, item in attributes])

    @staticmethod
    def stored_ids(tracker):
        """A Keras tracker's object ids, as whether each store's ids are its items' ids."""
        return [(store, ids == {id(item) for item in tracker.config[store][1]})
                for store, ids in tracker.stored_ids.items()]


def made_both_ways(make):
    """`make()` twice from a clean slate (same automatic names): Keras' path, then the fast one."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    plain = make()
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    with adapter.attributes_fast():
        fast = make()
    return plain, fast


# --- layers of every kind ------------------------------------------------------


class Holder(layers.Layer):
    """Sub-layers in a list, a dict and a tuple; plain values, a set, a nested list."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.blocks = [layers.Dense(3, name="b0"), layers.Dense(3, name="b1")]
        self.by_name = {"gate": layers.Dense(3, name="gate")}
        self.pair = (layers.Dense(3, name="p0"), "label")
        self.tags = {"a", "b"}
        self.nested = [[1, 2], {"k": None}]
        self.scale = 0.5
        self.function = keras.activations.relu

    def build(self, shape):
        for block in [*self.blocks, self.by_name["gate"], self.pair[0]]:
            block.build(shape)
        self.extra = self.add_weight(shape=(3,), initializer="ones", name="extra")
        self.seen_shapes = [shape]

    def call(self, x):
        for block in self.blocks:
            x = block(x)
        return self.by_name["gate"](x) * self.extra


def _built(layer, shape):
    layer.build(shape)
    return layer


def _called(layer, *shapes):
    layer(*[keras.Input(s) for s in shapes])
    return layer


LAYERS = {
    "dense": lambda: _built(layers.Dense(4, activation="relu", name="d"), (None, 3)),
    "conv": lambda: _built(layers.Conv2D(2, 3, name="c"), (None, 8, 8, 3)),
    "batchnorm": lambda: _built(layers.BatchNormalization(name="bn"), (None, 5)),
    "dropout": lambda: layers.Dropout(0.5, seed=1, name="drop"),
    "lstm": lambda: _called(layers.LSTM(3, name="lstm"), (5, 2)),
    "bidirectional": lambda: _called(layers.Bidirectional(layers.GRU(2), name="bi"), (4, 3)),
    "attention": lambda: _called(layers.MultiHeadAttention(2, 4, name="mha"), (5, 8), (5, 8)),
    "embedding": lambda: _built(layers.Embedding(10, 4, name="emb"), (None, 6)),
    "lookup": lambda: layers.StringLookup(vocabulary=["a", "b", "c"], name="lookup"),
    "holder": lambda: _built(Holder(name="holder"), (None, 3)),
    "model": lambda: keras.Sequential([keras.Input((3,)), layers.Dense(2, name="s")], name="seq"),
}


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_a_layer_made_with_the_fast_path_is_the_layer_keras_makes(kind):
    plain, fast = made_both_ways(LAYERS[kind])
    assert picture(fast) == picture(plain)


def test_a_rebuilt_model_is_the_same_with_and_without_the_fast_path(monkeypatch):
    def make():
        inp = keras.Input((6, 4), name="x")
        h = layers.LSTM(5, return_sequences=True, name="lstm")(inp)
        h = layers.LayerNormalization(name="norm")(h)
        h = layers.MultiHeadAttention(2, 3, name="mha")(h, h)
        h = layers.GlobalAveragePooling1D(name="pool")(h)
        h = Holder(name="holder")(layers.Dense(3, name="to3")(h))
        h = layers.Dropout(0.2, seed=3, name="drop")(h)
        return keras.Model(inp, layers.Dense(2, activation="sigmoid", name="head")(h))

    def rebuilt():  # from the same global state: automatic names, initializer seeds
        keras.backend.clear_session()
        keras.utils.set_random_seed(0)
        return rebuild(model, [SetActivation("head", "tanh")]).model

    keras.utils.set_random_seed(0)
    model = make()
    fast = rebuilt()
    monkeypatch.setattr(adapter, "attributes_fast", contextlib.nullcontext)
    plain = rebuilt()
    assert picture(fast) == picture(plain)
    x = data_for(model)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(fast(x)),
                                  keras.ops.convert_to_numpy(plain(x)))


@pytest.mark.skipif(not ON_TENSORFLOW, reason="only TensorFlow's trackers are skipped")
def test_keras_own_setattr_is_back_after_the_context_also_after_an_error():
    own = layers.Layer.__setattr__
    with adapter.attributes_fast(), adapter.attributes_fast():  # re-entrant
        assert layers.Layer.__setattr__ is not own
    assert layers.Layer.__setattr__ is own
    with pytest.raises(RuntimeError), adapter.attributes_fast():
        raise RuntimeError("inside")
    assert layers.Layer.__setattr__ is own


@pytest.mark.skipif(ON_TENSORFLOW, reason="other backends keep Keras' own setattr")
def test_other_backends_keep_keras_own_setattr():
    own = layers.Layer.__setattr__
    with adapter.attributes_fast():
        assert layers.Layer.__setattr__ is own


class Hooked(layers.Layer):
    """A layer with its own `_setattr_hook`: every assignment must still reach it."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.plain = 1

    def _setattr_hook(self, name, value):
        self.__dict__.setdefault("hooked", []).append(name)
        return name, value


def test_a_layer_class_with_its_own_hook_takes_keras_own_path():
    with adapter.attributes_fast():
        layer = Hooked(name="hooked")
    assert "plain" in layer.hooked and "built" in layer.hooked


@pytest.mark.skipif(not ON_TENSORFLOW, reason="TensorFlow's checkpoint dependencies")
def test_tensorflow_checkpoints_of_both_layers_hold_the_same_variables(tmp_path):
    import tensorflow as tf

    plain, fast = made_both_ways(LAYERS["holder"])
    assert sorted(fast._trackable_children()) == sorted(plain._trackable_children())
    listed = [tf.train.list_variables(tf.train.Checkpoint(layer=layer).save(str(tmp_path / name)))
              for name, layer in (("plain", plain), ("fast", fast))]
    assert listed[0] == listed[1]


@pytest.mark.skipif(not ON_TENSORFLOW, reason="only TensorFlow's trackers are skipped")
def test_a_layer_made_on_another_thread_during_a_rebuild_takes_keras_own_path(monkeypatch):
    """The shortcut is the rebuilding thread's only: a layer another thread makes meanwhile
    has every assignment go through Keras' trackers (`KerasAutoTrackable.__setattr__`
    sees them all), while the rebuilding thread's own layer skips them for plain values."""
    import threading

    from keras.src.backend.tensorflow.trackable import KerasAutoTrackable

    own = KerasAutoTrackable.__setattr__
    seen: list = []

    def noting(self, name, value):
        seen.append((id(self), name))
        return own(self, name, value)

    monkeypatch.setattr(KerasAutoTrackable, "__setattr__", noting)
    made = {}
    with adapter.attributes_fast():
        worker = threading.Thread(target=lambda: made.update(other=layers.Dense(3, name="o")))
        worker.start()
        worker.join()
        mine = layers.Dense(3, name="m")
    other = made["other"]
    assert (id(other), "units") in seen and (id(other), "built") in seen
    assert (id(mine), "units") not in seen  # this thread did take the shortcut
    plain = layers.Dense(3, name="p")  # after the context: Keras' path again
    assert (id(plain), "units") in seen
