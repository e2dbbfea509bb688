"""Slow tier: every keras.applications architecture rebuilds exactly and takes an edit.

Each model is built with ``weights=None`` (nothing is downloaded) and without
its classifier top at a small input size, so the whole tier fits in CI; the
graph (every block, branch and skip connection) is the full architecture.
"""

import keras
import numpy as np
import pytest

import kerawidgets
from kerawidgets import targets
from kerawidgets.edits import SetActivation
from kerawidgets.plan import supports_activation

pytestmark = pytest.mark.slow

ARCHITECTURES = sorted(
    name for name in dir(keras.applications)
    if name[0].isupper() and callable(getattr(keras.applications, name))
)
# Smallest input each family accepts without its top.
INPUT_SIZE = {"InceptionV3": 75, "InceptionResNetV2": 75, "Xception": 71, "NASNetLarge": 64,
              "NASNetMobile": 64}


def build(name):
    keras.utils.set_random_seed(0)
    size = INPUT_SIZE.get(name, 64)
    return keras.applications.__dict__[name](
        weights=None, include_top=False, input_shape=(size, size, 3))


def last_activation_layer(model):
    for path, layer in reversed(list(targets.walk_layers(model))):
        if supports_activation(layer) and not isinstance(layer, keras.Model):
            return "/".join(path)
    raise AssertionError(f"{model.name} has no layer with an activation")


def test_every_architecture_is_covered():
    assert len(ARCHITECTURES) >= 35
    assert {"ResNet50", "MobileNetV2", "EfficientNetB7", "ConvNeXtTiny", "NASNetMobile"} <= set(ARCHITECTURES)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_identity_rebuild_and_activation_swap(name):
    model = build(name)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=(2, *model.input_shape[1:])).astype("float32")
    before = keras.ops.convert_to_numpy(model(x, training=False))

    identity = kerawidgets.rebuild(model, [])
    assert type(identity.model) is type(model)
    assert [layer.name for layer in identity.model.layers] == [layer.name for layer in model.layers]
    assert identity.model.get_config() == model.get_config()
    assert len(identity.model.weights) == len(model.weights)
    for a, b in zip(model.weights, identity.model.weights):
        np.testing.assert_array_equal(np.array(a), np.array(b))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(identity.model(x, training=False)), before, rtol=1e-5, atol=1e-5)
    del identity

    layer = last_activation_layer(model)
    swapped = kerawidgets.rebuild(model, [SetActivation(layer, "gelu")])
    assert swapped.report[layer].edited
    assert all(o.status == "kept" for o in swapped.report if o.layer != layer)
    out = keras.ops.convert_to_numpy(swapped.model(x, training=False))
    assert out.shape == before.shape
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x, training=False)), before)
