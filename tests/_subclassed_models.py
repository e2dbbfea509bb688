"""Subclassed Keras models written the way the Keras guides write them (issue 14).

Every builder returns a model built on seeded random data, small enough for
the default test tier. Classes are registered for saving so `.keras` files
reload them.
"""

import keras
import numpy as np
from keras import layers, ops

PACKAGE = "kerawidgets_subclassed_tests"


@keras.saving.register_keras_serializable(package=PACKAGE)
class MLP(keras.Model):
    """The guides' MLP: layers in `__init__`, used in `call`."""

    def __init__(self, hidden=16, classes=3, **kwargs):
        super().__init__(**kwargs)
        self.hidden, self.classes = hidden, classes
        self.dense1 = layers.Dense(hidden, activation="relu", name="dense1")
        self.dense2 = layers.Dense(hidden, activation="relu", name="dense2")
        self.head = layers.Dense(classes, activation="softmax", name="head")

    def call(self, inputs):
        return self.head(self.dense2(self.dense1(inputs)))

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden, "classes": self.classes}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ResidualBlock(layers.Layer):
    """Two Dense layers and a skip connection through an `Add` layer."""

    def __init__(self, units=8, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.inner = layers.Dense(units, activation="relu", name="inner")
        self.outer = layers.Dense(units, name="outer")
        self.add = layers.Add(name="add")

    def call(self, x):
        return self.add([x, self.outer(self.inner(x))])

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ResNetMLP(keras.Model):
    """A stem, a list of residual blocks, a raw op (`x * 0.5`) and a head."""

    def __init__(self, units=8, depth=2, **kwargs):
        super().__init__(**kwargs)
        self.units, self.depth = units, depth
        self.stem = layers.Dense(units, activation="tanh", name="stem")
        self.blocks = [ResidualBlock(units, name=f"block{i}") for i in range(depth)]
        self.head = layers.Dense(2, name="head")

    def call(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x * 0.5)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "depth": self.depth}


@keras.saving.register_keras_serializable(package=PACKAGE)
class TransformerBlock(keras.Model):
    """The guides' Transformer block: attention + feed-forward + layer norms."""

    def __init__(self, dim=8, heads=2, ff=16, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.heads, self.ff = dim, heads, ff
        self.att = layers.MultiHeadAttention(num_heads=heads, key_dim=dim // heads, name="att")
        self.ffn = keras.Sequential(
            [layers.Dense(ff, activation="relu", name="ffn_in"), layers.Dense(dim, name="ffn_out")],
            name="ffn")
        self.norm1 = layers.LayerNormalization(name="norm1")
        self.norm2 = layers.LayerNormalization(name="norm2")
        self.pool = layers.GlobalAveragePooling1D(name="pool")
        self.out = layers.Dense(2, name="out")

    def call(self, x):
        x = self.norm1(x + self.att(x, x))
        x = self.norm2(x + self.ffn(x))
        return self.out(self.pool(x))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "heads": self.heads, "ff": self.ff}


@keras.saving.register_keras_serializable(package=PACKAGE)
class TrainingBranch(keras.Model):
    """Dropout and BatchNorm, whose calls depend on `training`."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = layers.Dense(8, activation="relu", name="dense")
        self.bn = layers.BatchNormalization(name="bn")
        self.drop = layers.Dropout(0.5, seed=1, name="drop")
        self.head = layers.Dense(2, name="head")

    def call(self, x, training=False):
        x = self.bn(self.dense(x), training=training)
        return self.head(self.drop(x, training=training))


@keras.saving.register_keras_serializable(package=PACKAGE)
class Sampling(layers.Layer):
    """The VAE guide's sampling layer: z = mean + exp(log_var / 2) * eps."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * eps


@keras.saving.register_keras_serializable(package=PACKAGE)
class Encoder(keras.Model):
    """The VAE guide's encoder: (z_mean, z_log_var, z)."""

    def __init__(self, latent=2, **kwargs):
        super().__init__(**kwargs)
        self.latent = latent
        self.hidden = layers.Dense(16, activation="relu", name="hidden")
        self.z_mean = layers.Dense(latent, name="z_mean")
        self.z_log_var = layers.Dense(latent, name="z_log_var")
        self.sampling = Sampling(name="sampling")

    def call(self, x):
        h = self.hidden(x)
        z_mean, z_log_var = self.z_mean(h), self.z_log_var(h)
        return z_mean, z_log_var, self.sampling([z_mean, z_log_var])

    def get_config(self):
        return {**super().get_config(), "latent": self.latent}


@keras.saving.register_keras_serializable(package=PACKAGE)
class VAE(keras.Model):
    """The VAE guide's model: encoder + decoder and a custom `train_step`."""

    def __init__(self, features=6, latent=2, **kwargs):
        super().__init__(**kwargs)
        self.features, self.latent = features, latent
        self.encoder = Encoder(latent, name="encoder")
        self.decoder = keras.Sequential(
            [layers.Dense(16, activation="relu", name="dec_hidden"),
             layers.Dense(features, activation="sigmoid", name="dec_out")], name="decoder")
        self.steps_run = 0

    def call(self, x):
        return self.decoder(self.encoder(x)[2])

    def train_step(self, *args):
        """Counts steps, then Keras' own step (jax passes its state first: hence `*args`)."""
        self.steps_run += 1
        return super().train_step(*args)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        z_mean, z_log_var, _ = self.encoder(x)
        reconstruction = ops.mean(ops.square(x - y_pred))
        kl = -0.5 * ops.mean(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
        return reconstruction + kl

    def get_config(self):
        return {**super().get_config(), "features": self.features, "latent": self.latent}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ValueBranch(keras.Model):
    """A `call` with Python control flow on a tensor's value (cannot be traced)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.small = layers.Dense(4, activation="relu", name="small")
        self.large = layers.Dense(4, activation="tanh", name="large")

    def build(self, input_shape):
        self.small.build(input_shape)
        self.large.build(input_shape)

    def call(self, x):
        if ops.convert_to_numpy(ops.sum(x)) > 0:
            return self.large(x)
        return self.small(x)


@keras.saving.register_keras_serializable(package=PACKAGE)
class HardCoded(keras.Model):
    """`__init__` hard-codes its layers and takes no settings (`get_config` cannot record an edit)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hidden = layers.Dense(8, activation="relu", name="hidden")
        self.out = layers.Dense(2, name="out")

    def call(self, x):
        return self.out(self.hidden(x))


def _built(model, shape, seed=0):
    keras.utils.set_random_seed(seed)
    model(np.random.default_rng(seed).normal(size=(2, *shape)).astype("float32"))
    return model


def data(shape, n=8, seed=0):
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype("float32")


def mlp():
    return _built(MLP(name="mlp"), (5,))


def resnet_mlp():
    return _built(ResNetMLP(name="resnet_mlp"), (8,))


def transformer():
    return _built(TransformerBlock(name="transformer"), (4, 8))


def training_branch():
    return _built(TrainingBranch(name="branchy"), (5,))


def vae():
    return _built(VAE(name="vae"), (6,))


def value_branch():
    return _built(ValueBranch(name="value_branch"), (3,))


def hard_coded():
    return _built(HardCoded(name="hard_coded"), (3,))


def nested_in_functional():
    """A subclassed MLP called inside a functional model."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((5,), name="features")
    x = layers.Dense(5, activation="relu", name="pre")(inp)
    out = MLP(name="inner_mlp")(x)
    return keras.Model(inp, out, name="outer")


#: name -> (builder, input shape without batch)
MODELS = {
    "mlp": (mlp, (5,)),
    "resnet_mlp": (resnet_mlp, (8,)),
    "transformer": (transformer, (4, 8)),
    "training_branch": (training_branch, (5,)),
    "vae": (vae, (6,)),
}


@keras.saving.register_keras_serializable(package=PACKAGE)
class Configurable(keras.Model):
    """A class whose config records its sub-layers, so an edited copy saves and reloads as edited."""

    def __init__(self, hidden=None, out=None, **kwargs):
        super().__init__(**kwargs)
        self.hidden = (keras.layers.deserialize(hidden) if isinstance(hidden, dict)
                       else hidden or layers.Dense(8, activation="relu", name="hidden"))
        self.out = (keras.layers.deserialize(out) if isinstance(out, dict)
                    else out or layers.Dense(2, name="out"))

    def call(self, x):
        return self.out(self.hidden(x))

    def get_config(self):
        return {**super().get_config(), "hidden": keras.layers.serialize(self.hidden),
                "out": keras.layers.serialize(self.out)}


def configurable():
    return _built(Configurable(name="configurable"), (3,))


def nested_resnet():
    """A ResNetMLP (a list of residual blocks) between two layers of a functional model."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((8,), name="features")
    x = layers.Dense(8, activation="relu", name="pre")(inp)
    return keras.Model(inp, ResNetMLP(name="body")(x), name="outer_resnet")


def nested(cls, name="inner"):
    """A `cls()` (input width 3) after a Dense layer in a functional model."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((3,), name="features")
    x = layers.Dense(3, activation="relu", name="pre")(inp)
    return keras.Model(inp, cls(name=name)(x), name=f"outer_{name}")
