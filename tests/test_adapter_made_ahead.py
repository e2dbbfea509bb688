"""`WeightFeeder.make_ahead`: kept weights' TensorFlow variables made before the walk.

On TensorFlow the rebuild makes the `tf.Variable` copies of the original's
weights in one go before it walks the graph, and a fresh layer's `add_weight`
takes its copy when it is exactly the variable Keras' own `Variable._initialize`
would have made there (`_keras_adapter._made_ahead_fits`). Every test here
compares a rebuild with the copies made ahead against one without them (Keras
making each variable while its layer builds): the models must be the same down
to each `tf.Variable`'s own attributes.
"""

import contextlib
import re

import keras
import numpy as np
import pytest
from keras import layers

from kerawidgets import _keras_adapter as adapter
from kerawidgets import rebuild
from kerawidgets.edits import InsertLayer, SetActivation
from tests.models import data_for
from tests.test_adapter_attributes import Holder, picture

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="TensorFlow variables only")
MADE_AHEAD = adapter._variables_made_ahead  # the adapter's own (the tests swap it)


class Summed(layers.Layer):
    """A weight with its own aggregation (summed across replicas), in float64."""

    def build(self, shape):
        self.total = self.add_weight(shape=(shape[-1],), initializer="ones", trainable=False,
                                     aggregation="sum", dtype="float64", name="total")

    def call(self, x):
        return x + keras.ops.cast(self.total, x.dtype)


def make_model():
    """Weights of many kinds: trainable and not (batch-norm statistics), a frozen layer,
    a mixed-precision layer, a summed float64 weight, recurrent and attention layers,
    sub-layers, a nested model."""
    inp = keras.Input((6, 4), name="x")
    h = layers.LSTM(5, return_sequences=True, name="lstm")(inp)
    h = layers.BatchNormalization(name="bn")(h)
    h = layers.MultiHeadAttention(2, 3, name="mha")(h, h)
    h = layers.GlobalAveragePooling1D(name="pool")(h)
    frozen = layers.Dense(3, name="frozen")
    frozen.trainable = False
    h = Holder(name="holder")(frozen(h))
    h = layers.Dense(3, dtype="mixed_float16", name="half")(h)
    inner = keras.Sequential([keras.Input((3,)), layers.Dense(4, name="in_d")], name="inner")
    h = Summed(name="summed")(inner(h))
    return keras.Model(inp, layers.Dense(2, activation="sigmoid", name="head")(h))


def tf_state(variable) -> tuple:
    """Everything a Keras variable's `tf.Variable` holds, TensorFlow's global counters cut."""
    from tensorflow.python.ops import resource_variable_ops

    value = variable.value
    state = []
    for name, item in sorted(vars(value).items()):
        if name == "_handle":
            handle_data = resource_variable_ops.get_eager_safe_handle_data(item)
            item = (item.dtype.name, item.device, str(handle_data))
        elif name in ("_unique_id", "_graph_key"):  # counters: `dense/kernel_12`, `graph-key-3/`
            item = re.sub(r"\d+", "<n>", item)
        else:
            item = repr(item)
        state.append((name, item))
    return (type(value).__name__, value.name, value.device, tuple(state),
            value.numpy().tobytes(), variable.path, variable.trainable)


def rebuilt_both_ways(model, edits, monkeypatch, make_ahead=None, **options):
    """`rebuild(model, edits)` from the same global state: with the copies made ahead (by
    `make_ahead`, the adapter's own by default), then with Keras making every variable."""
    made = []
    maker = make_ahead or MADE_AHEAD

    def recording(variables):
        ready = maker(variables)
        made.extend(ahead.variable for ahead in ready.values())
        return ready

    def rebuilt():
        keras.backend.clear_session()
        keras.utils.set_random_seed(0)
        return rebuild(model, edits, **options).model

    monkeypatch.setattr(adapter, "_variables_made_ahead", recording)
    ahead = rebuilt()
    monkeypatch.setattr(adapter, "_variables_made_ahead", lambda variables: {})
    plain = rebuilt()
    return ahead, plain, made


def assert_same(ahead, plain):
    assert picture(ahead) == picture(plain)
    assert [tf_state(v) for v in ahead.weights] == [tf_state(v) for v in plain.weights]


def test_variables_made_ahead_are_the_ones_keras_makes(monkeypatch):
    model = make_model()
    ahead, plain, made = rebuilt_both_ways(model, [SetActivation("head", "tanh")], monkeypatch)
    taken = {id(v.value) for v in ahead.weights}
    assert len(made) == len(model.weights)
    # all but the attention's: its sub-layers are made in its `build`, so unfed (settled after)
    assert sum(id(v) in taken for v in made) == len(made) - 8
    assert_same(ahead, plain)
    x = data_for(model)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(ahead(x)),
                                  keras.ops.convert_to_numpy(plain(x)))


def test_a_structural_edit_takes_what_fits_and_keras_makes_the_rest(monkeypatch):
    model = make_model()
    edits = [InsertLayer("pool", layers.Dense(8, name="wider"))]
    ahead, plain, made = rebuilt_both_ways(model, edits, monkeypatch,
                                           reinitialize="downstream")
    assert_same(ahead, plain)
    taken = {id(v.value) for v in ahead.weights}
    assert 0 < sum(id(v) in taken for v in made) < len(made)  # "frozen" no longer fits


def _without_name_scope(value, ahead):
    """A copy made where the rebuild starts (no name scope: a wrong TensorFlow name)."""
    import tensorflow as tf

    return tf.Variable(value.read_value(), trainable=value.trainable, name=ahead.name,
                       aggregation=value.aggregation, synchronization=value.synchronization)


def _with_default_aggregation(value, ahead):
    """A copy under the right name, with `tf.Variable`'s default aggregation (the v1 enum)."""
    import tensorflow as tf

    with tf.name_scope(ahead.scope):
        return tf.Variable(value.read_value(), trainable=value.trainable, name=ahead.name)


def _broken(make):
    def maker(variables):
        from tensorflow.python.eager import context

        ready = MADE_AHEAD(variables)
        for key, ahead in list(ready.items()):
            wrong = make(ahead.variable, ahead)
            ready[key] = adapter._MadeAhead(wrong, ahead.name, ahead.scope,
                                            context.context().device_name)
        return ready
    return maker


@pytest.mark.parametrize("make", [_without_name_scope, _with_default_aggregation])
def test_the_comparison_sees_a_wrongly_made_variable_and_the_check_refuses_it(monkeypatch, make):
    """Copies made wrongly: taken blindly, the rebuild differs from Keras' (so the
    comparison above can fail); with `_made_ahead_fits`, each is refused, so Keras
    makes those variables itself and the rebuild is Keras' again."""
    model = make_model()
    edits = [SetActivation("head", "tanh")]
    monkeypatch.setattr(adapter, "_made_ahead_fits", lambda ahead, variable: True)
    blind, plain, _ = rebuilt_both_ways(model, edits, monkeypatch, make_ahead=_broken(make))
    with pytest.raises(AssertionError):
        assert_same(blind, plain)
    monkeypatch.undo()
    checked, plain, _ = rebuilt_both_ways(model, edits, monkeypatch, make_ahead=_broken(make))
    assert_same(checked, plain)


def test_the_original_is_untouched_and_shares_no_buffer():
    model = make_model()
    before = [(v.value.numpy().tobytes(), v.value._variable_read) for v in model.weights]
    copy = rebuild(model, []).model
    for new, old in zip(copy.weights, model.weights):
        assert new.value is not old.value
        new.assign(keras.ops.ones(new.shape, new.dtype))
    assert [(v.value.numpy().tobytes(), False) for v in model.weights] == [
        (values, False) for values, _read in before]


def test_no_variable_is_made_ahead_under_a_variable_creator_scope():
    """`tf.Variable` calls a creator scope's functions (what `tf.distribute` uses), so the
    variables must be made by Keras inside it, as a rebuild without the shortcut would."""
    import tensorflow as tf

    model = make_model()
    seen = []

    def creator(next_creator, **kwargs):
        seen.append(kwargs.get("name"))
        return next_creator(**kwargs)

    with tf.variable_creator_scope(creator):
        assert adapter._variables_made_ahead(model.weights) == {}
        copy = rebuild(model, []).model
    assert sorted(v.name for v in copy.weights) == sorted(
        name for name in seen if name != "seed_generator_state")


def test_keras_own_initialisation_is_back_after_the_feeder_also_after_an_error():
    from keras.src.backend.tensorflow.core import Variable

    own = Variable._initialize_with_initializer
    feeder = adapter.WeightFeeder()
    with contextlib.suppress(RuntimeError), feeder, adapter.WeightFeeder():  # nested
        assert Variable._initialize_with_initializer is not own
        raise RuntimeError("inside")
    assert Variable._initialize_with_initializer is own
    assert feeder._ready == {}
