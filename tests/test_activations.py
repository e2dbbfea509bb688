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
from tests.models import Gated, numpy_of


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
    np.testing.assert_allclose(numpy_of(loaded(data)), numpy_of(new(data)), rtol=1e-6)
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
        import torch

        t = torch.tensor(value, requires_grad=True)
        keras.ops.sum(sign(t)).backward()
        grad = t.grad.numpy()
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


# --- activation settings under any name, read faithfully ---------------------------------


@pytest.mark.parametrize("make, name", [
    (lambda: layers.ReLU(), "relu"),
    (lambda: layers.ReLU(max_value=6.0), "relu6"),  # MobileNetV2's ReLU(6.)
    (lambda: layers.ReLU(max_value=4.0), "relu(max_value=4)"),
    (lambda: layers.ReLU(negative_slope=0.2), "leaky_relu"),
    (lambda: layers.ReLU(threshold=0.5), "relu(threshold=0.5)"),
    (lambda: layers.ReLU(negative_slope=0.1, max_value=6.0), "relu(negative_slope=0.1, max_value=6)"),
    (lambda: layers.LeakyReLU(), "leaky_relu(negative_slope=0.3)"),  # the layer's default is 0.3
    (lambda: layers.LeakyReLU(negative_slope=0.2), "leaky_relu"),
    (lambda: layers.ELU(), "elu"),
    (lambda: layers.ELU(alpha=0.5), "elu(alpha=0.5)"),
    (lambda: layers.Softmax(), "softmax"),
    (lambda: layers.Softmax(axis=1), "softmax(axis=1)"),
    (lambda: layers.PReLU(), "prelu"),
    (lambda: layers.Activation("relu6"), "relu6"),
])
def test_activation_layers_are_read_with_their_settings(make, name):
    layer = make()
    assert activations.layer_activation(layer) == name
    base = name.split("(")[0]
    if base == name and name in activations.builtin_names():  # exactly that built-in activation
        x = np.linspace(-9, 9, 24, dtype="float32").reshape(2, 3, 4)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)),
                                   keras.ops.convert_to_numpy(keras.activations.get(name)(x)),
                                   rtol=1e-6, atol=1e-7)


def test_activation_settings_under_any_name():
    from keras_hub.src.models.clip.clip_layers import CLIPEncoderLayer
    from keras_hub.src.utils.keras_utils import gelu_approximate

    assert activations.activation_settings(Gated()) == {"gate": "sigmoid", "activation": "tanh"}
    assert activations.activation_settings(CLIPEncoderLayer(8, 2, 16)) == {
        "intermediate_activation": "quick_gelu"}
    assert activations.layer_activation(CLIPEncoderLayer(8, 2, 16)) == "quick_gelu"
    assert activations.activation_settings(layers.GRU(2))["recurrent_activation"] == "sigmoid"
    for layer in (layers.Dense(2, kernel_initializer="zeros"), layers.Lambda(keras.activations.relu),
                  layers.Conv2D(2, 3, kernel_regularizer="l2").__class__(2, 3), layers.Resizing(2, 2)):
        assert set(activations.activation_settings(layer)) <= {"activation"}, layer
    assert activations.activation_settings(layers.Resizing(2, 2)) == {}
    # keras-hub's gelu_approximate is registered as "keras_hub>gelu_approximate": its real
    # name, not Keras' serialisation tag "function"
    assert activations.name_of(gelu_approximate) == "gelu_approximate"
    assert activations.layer_activation(layers.Dense(2, activation=gelu_approximate)) == "gelu_approximate"
    # ... in the graph and in the report too
    inp = keras.Input((3,))
    model = keras.Model(inp, layers.Dense(2, activation=gelu_approximate, name="d")(inp))
    assert kerawidgets.graph.ModelGraph.from_model(model).node("d").activation == "gelu_approximate"
    result = kerawidgets.rebuild(model, [kerawidgets.edits.SetActivation("d", "relu")])
    assert "activation gelu_approximate -> relu" in result.report["d"].reason


def test_an_activation_under_another_name_is_edited_and_reported():
    from keras_hub.src.models.clip.clip_layers import CLIPEncoderLayer

    inp = keras.Input((5, 8))
    x = CLIPEncoderLayer(8, 2, 16, name="clip_layer")(inp)
    out = Gated(8, name="gated")(x)
    model = keras.Model(inp, out)
    data = np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")
    result = kerawidgets.rebuild(model, [
        kerawidgets.edits.SetActivation("gated", "relu", attribute="gate"),
        kerawidgets.edits.SetActivation("clip_layer", "gelu", attribute="intermediate_activation"),
    ])
    new = result.model
    assert activations.activation_settings(new.get_layer("gated")) == {"gate": "relu", "activation": "tanh"}
    assert new.get_layer("clip_layer").get_config()["intermediate_activation"] == "gelu"
    assert result.report["gated"].status == "kept" and "gate sigmoid -> relu" in result.report["gated"].reason
    assert "intermediate_activation quick_gelu -> gelu" in result.report["clip_layer"].reason
    for old, fresh in zip(model.weights, new.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(old), keras.ops.convert_to_numpy(fresh))
    # the outputs are what the new activations give, computed by hand for the gate
    gated = new.get_layer("gated")
    hidden = keras.Model(new.inputs, new.get_layer("clip_layer").output)(data)
    expected = np.tanh(keras.ops.convert_to_numpy(gated.value(hidden))) * np.maximum(
        keras.ops.convert_to_numpy(gated.weight_gate(hidden)), 0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(new(data)), expected, rtol=1e-5, atol=1e-5)
    assert activations.activation_settings(model.get_layer("gated"))["gate"] == "sigmoid"  # untouched


def test_a_missing_activation_setting_names_those_the_layer_has():
    inp = keras.Input((3, 2))
    model = keras.Model(inp, layers.LSTM(2, name="lstm")(inp))
    with pytest.raises(InvalidEditError, match="(?s)'lstm' \\(LSTM\\).*'gate'.*'activation' \\(tanh\\), "
                                               "'recurrent_activation' \\(sigmoid\\)"):
        kerawidgets.rebuild(model, [kerawidgets.edits.SetActivation("lstm", "relu", attribute="gate")])
    with pytest.raises(InvalidEditError, match="'dense'.*`attribute` must name the layer setting"):
        kerawidgets.edits.SetActivation("dense", "relu", attribute="not a name")


def test_registration_code_imports_a_keras_function_from_the_public_api():
    activations.register_activation("public_silu", keras.activations.silu)
    try:
        imports, call = activations.registration_code("public_silu")
    finally:
        activations.unregister_activation("public_silu")
    assert imports == ["from keras.activations import silu"]  # not keras.src.activations...
    assert call == "kerawidgets.register_activation('public_silu', silu)"
