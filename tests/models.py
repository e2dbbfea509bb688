"""Small real Keras models shared by the tests (32x32 inputs at most)."""

import keras
import numpy as np
from keras import layers


def sequential_sigmoid():
    return keras.Sequential(
        [keras.Input((8,)), layers.Dense(16, activation="sigmoid", name="dense_1"),
         layers.Dense(3, activation="softmax", name="out")],
        name="seq",
    )


def two_branches():
    inp = keras.Input((8,), name="features")
    a = layers.Dense(6, activation="relu", name="branch_a")(inp)
    b = layers.Dense(4, activation="tanh", name="branch_b")(inp)
    merged = layers.Concatenate(name="concat")([a, b])
    act = layers.Activation("sigmoid", name="gate")(merged)
    out = layers.Dense(2, name="out")(act)
    return keras.Model(inp, out, name="branches")


def mlp_64():
    inp = keras.Input((10,), name="x")
    h = layers.Dense(64, activation="relu", name="hidden")(inp)
    h = layers.Dense(64, activation="relu", name="middle")(h)
    out = layers.Dense(5, activation="softmax", name="head")(h)
    return keras.Model(inp, out, name="mlp")


def small_cnn():
    inp = keras.Input((16, 16, 3), name="image")
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2d")(inp)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.MaxPooling2D(name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(10, activation="softmax", name="dense")(x)
    return keras.Model(inp, x, name="cnn")


@keras.saving.register_keras_serializable(package="kerawidgets_tests")
class ScaledDense(layers.Layer):
    """A custom layer with an `activation` argument and its own get_config."""

    def __init__(self, units, activation=None, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.activation = keras.activations.get(activation)
        self.scale = scale

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")

    def call(self, x):
        return self.activation(self.scale * keras.ops.matmul(x, self.kernel))

    def get_config(self):
        return {**super().get_config(), "units": self.units, "scale": self.scale,
                "activation": keras.activations.serialize(self.activation)}


@keras.saving.register_keras_serializable(package="kerawidgets_tests")
class RMSNorm(layers.Layer):
    """A custom normalisation layer (no get_config override: Keras auto-config)."""

    def __init__(self, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        self.gamma = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="gamma")

    def call(self, x):
        rms = keras.ops.sqrt(keras.ops.mean(keras.ops.square(x), axis=-1, keepdims=True) + self.epsilon)
        return self.gamma * x / rms


def custom_activation_model():
    inp = keras.Input((6,))
    x = ScaledDense(8, activation="relu", scale=0.5, name="scaled")(inp)
    return keras.Model(inp, layers.Dense(2, name="out")(x), name="custom")


def data_for(model, n=8, seed=0):
    rng = np.random.default_rng(seed)

    def one(tensor):
        shape = (n, *tensor.shape[1:])
        if "int" in str(tensor.dtype):
            return rng.integers(0, 9, size=shape).astype(tensor.dtype)
        return rng.normal(size=shape).astype("float32")

    inputs = model.inputs[0] if isinstance(model, keras.Sequential) else model.input
    return keras.tree.map_structure(one, inputs)


def weights_of(model):
    return [np.array(v) for v in model.weights]


def config_of(model):
    import json

    return json.dumps(model.get_config(), sort_keys=True, default=str)


def numpy_of(value):
    """Tensors (a model's outputs, nested) as numpy arrays, on every backend: under torch a
    model's output requires grad, and numpy refuses to read it directly."""
    return keras.tree.map_structure(keras.ops.convert_to_numpy, value)


class Gated(layers.Layer):
    """A custom layer with an activation under its own name (`gate`) and a plain `activation`;
    at module level so a script can import it (`to_code`)."""

    def __init__(self, units=4, gate="sigmoid", activation="tanh", **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.gate = keras.activations.get(gate)
        self.activation = keras.activations.get(activation)
        self.value = layers.Dense(units, name="value")
        self.weight_gate = layers.Dense(units, name="weight_gate")

    def build(self, shape):
        self.value.build(shape)
        self.weight_gate.build(shape)

    def call(self, x):
        return self.activation(self.value(x)) * self.gate(self.weight_gate(x))

    def compute_output_shape(self, shape):
        return (*shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "gate": keras.activations.serialize(self.gate),
                "activation": keras.activations.serialize(self.activation)}


def scaled_swish(x, scale):
    """A parameterised activation a script can import (`register_activation(..., scale=...)`)."""
    return x * keras.ops.sigmoid(scale * x)


class NoKwargs(layers.Layer):
    """An __init__ without **kwargs: from_config(get_config()) fails."""

    def __init__(self, units):
        super().__init__()
        self.units = units

    def build(self, shape):
        self.w = self.add_weight(shape=(shape[-1], self.units), name="w")

    def call(self, x):
        return x @ self.w


class Scaled:
    """A callable-object activation that is not registered: clone_model cannot copy it."""

    def __init__(self, factor):
        self.factor = factor

    def __call__(self, x):
        return keras.ops.relu(x) * self.factor


class CountCalls:
    """Counts the layer calls the probe runs (the probe runs every call through `run_call`)."""

    def __init__(self, monkeypatch):
        from kerawidgets import _keras_adapter as adapter

        self.names = []
        real = adapter.run_call

        def counting(call, tensor_map, training=False):
            self.names.append(call.operation.name)
            return real(call, tensor_map, training=training)

        monkeypatch.setattr(adapter, "run_call", counting)


class ThreadCalls:
    """Counts the layer calls the probe runs with the name of the thread that ran each;
    `gate(call)`, if given, runs first in a run ahead's thread (to hold it there)."""

    def __init__(self, monkeypatch, gate=None):
        import threading

        from kerawidgets import _keras_adapter as adapter

        real = adapter.run_call
        self.calls = []

        def counting(call, tensor_map, training=False):
            thread = threading.current_thread().name
            if gate is not None and thread == "kerawidgets-probe-ahead":
                gate(call)
            self.calls.append((call.operation.name, thread))
            return real(call, tensor_map, training=training)

        monkeypatch.setattr(adapter, "run_call", counting)

    def of(self, thread):
        """The names of the calls run in thread `thread` (a name), in order."""
        return [name for name, ran_in in self.calls if ran_in == thread]
