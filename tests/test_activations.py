"""Built-in and registered activations: plain, parameterised, custom gradient, save/reload."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import layers

import kerawidgets
from kerawidgets import activations
from kerawidgets.errors import InvalidEditError, UnknownActivationError


@pytest.fixture
def registered():
    names = []

    def register(name, fn, gradient=None, **params):
        names.append(name)
        return kerawidgets.register_activation(name, fn, gradient=gradient, **params)

    yield register
    for name in names:
        kerawidgets.unregister_activation(name)


def test_every_builtin_keeps_shape_and_is_usable_in_an_edit():
    names = activations.builtin_names()
    assert {"relu", "gelu", "tanh", "sigmoid", "silu", "softmax", "relu6", "elu"} <= set(names)
    assert "glu" not in names  # halves the last axis
    model = keras.Sequential([keras.Input((4,)), layers.Dense(4, name="d")])
    x = np.linspace(-2, 2, 8, dtype="float32").reshape(2, 4)
    for name in names:
        new = kerawidgets.replace_activation(model, "d", name)
        assert new(x).shape == (2, 4)


def test_unknown_activation_lists_choices():
    with pytest.raises(UnknownActivationError) as info:
        activations.get("gleu")
    assert "'gelu'" in str(info.value)


def test_plain_parameterised_and_custom_gradient_activations(registered, tmp_path):
    swish = registered("hand_swish", lambda x: x * keras.ops.sigmoid(x))
    leaky = registered("leaky_02", lambda x, slope: keras.ops.where(x > 0, x, slope * x), slope=0.2)
    clipped = registered(
        "straight_through_sign",
        lambda x: keras.ops.sign(x),
        gradient=lambda x, upstream: upstream,  # straight-through estimator
    )
    assert {"hand_swish", "leaky_02", "straight_through_sign"} <= set(activations.available())
    x = keras.ops.convert_to_tensor(np.array([-2.0, 0.5], "float32"))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(leaky(x)), [-0.4, 0.5], rtol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(swish(x)),
                               keras.ops.convert_to_numpy(keras.activations.silu(x)), rtol=1e-6)

    model = keras.Sequential([keras.Input((3,)), layers.Dense(3, name="a"), layers.Dense(3, name="b"),
                              layers.Dense(3, name="c")])
    new = kerawidgets.rebuild(model, [
        kerawidgets.edits.SetActivation("a", "hand_swish"),
        kerawidgets.edits.SetActivation("b", "leaky_02"),
        kerawidgets.edits.SetActivation("c", clipped),
    ]).model
    path = tmp_path / "custom.keras"
    new.save(path)
    loaded = keras.saving.load_model(path)  # no custom_objects needed
    data = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    np.testing.assert_allclose(loaded(data), new(data), rtol=1e-6)
    assert loaded.get_layer("b").activation is leaky


def test_custom_gradient_is_used_in_training(registered):
    sign = registered("ste_sign", lambda x: keras.ops.sign(x), gradient=lambda x, upstream: upstream * 3.0)
    value = np.array([[0.5, -1.5]], "float32")
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        v = tf.Variable(value)
        with tf.GradientTape() as tape:
            y = keras.ops.sum(sign(v))
        grad = tape.gradient(y, v).numpy()
    elif keras.backend.backend() == "jax":
        import jax

        grad = np.asarray(jax.grad(lambda t: keras.ops.sum(sign(t)))(value))
    else:
        pytest.skip("backend without a gradient helper in this test")
    np.testing.assert_allclose(grad, [[3.0, 3.0]])


def test_register_refuses_a_gradient_that_is_not_a_function(registered):
    with pytest.raises(InvalidEditError, match="(?s)'ste'.*gradient must be a function.*0.5"):
        kerawidgets.register_activation("ste", lambda x: keras.ops.sign(x), gradient=0.5)
    assert "ste" not in activations.available()


# The same code registers the activations when saving and, in a fresh process, before loading.
REGISTER = """
import keras, kerawidgets
kerawidgets.register_activation("fresh_swish", lambda x: x * keras.ops.sigmoid(x))
kerawidgets.register_activation(
    "fresh_leaky", lambda x, slope: keras.ops.where(x > 0, x, slope * x), slope=0.1)
"""

LOAD_IN_FRESH_PROCESS = """
import sys
import numpy as np
import kerawidgets
from kerawidgets.errors import UnregisteredActivationError

path = sys.argv[1]
try:
    kerawidgets.load_model(path)
except UnregisteredActivationError as error:
    print("REFUSED:", error)
else:
    print("LOADED WITHOUT REGISTERING")
exec(sys.argv[2])  # register, as when saving
loaded = kerawidgets.load_model(path)
x = np.load(path + ".x.npy")
np.testing.assert_allclose(loaded.predict(x, verbose=0), np.load(path + ".y.npy"), rtol=1e-6)
print("LOADED AND EQUAL")
"""


def test_load_model_in_a_fresh_process_names_unregistered_activations(tmp_path):
    namespace = {}
    exec(REGISTER, namespace)
    try:
        model = keras.Sequential([keras.Input((3,)), layers.Dense(4, name="a"),
                                  layers.Dense(2, name="b")], name="saved")
        model = kerawidgets.rebuild(model, [kerawidgets.edits.SetActivation("a", "fresh_swish"),
                                            kerawidgets.edits.SetActivation("b", "fresh_leaky")]).model
        path = str(tmp_path / "registered.keras")
        model.save(path)
        x = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
        np.save(path + ".x.npy", x)
        np.save(path + ".y.npy", model.predict(x, verbose=0))
    finally:
        kerawidgets.unregister_activation("fresh_swish")
        kerawidgets.unregister_activation("fresh_leaky")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend(), "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(LOAD_IN_FRESH_PROCESS), path, REGISTER],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    refused = next(line for line in done.stdout.splitlines() if line.startswith("REFUSED:"))
    assert "'fresh_swish' (layer 'a')" in refused and "'fresh_leaky' (layer 'b')" in refused
    assert "register_activation('fresh_swish', fn) (the same code as when you saved" in refused
    assert "LOADED AND EQUAL" in done.stdout


def test_register_refuses_bad_names(registered):
    with pytest.raises(InvalidEditError, match="built-in"):
        kerawidgets.register_activation("relu", lambda x: x)
    with pytest.raises(InvalidEditError, match="identifier"):
        kerawidgets.register_activation("not a name", lambda x: x)


def test_name_of():
    assert activations.name_of(keras.activations.gelu) == "gelu"
    assert activations.name_of(None) is None
    assert activations.name_of("tanh") == "tanh"
