"""kerawidgets: see a Keras 3 model's graph, edit its layers, keep its weights.

>>> import keras, kerawidgets
>>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="sigmoid", name="d")])
>>> new = kerawidgets.replace_activation(model, "d", "tanh")
>>> new.get_layer("d").activation.__name__
'tanh'
"""

from kerawidgets.errors import (
    InvalidEditError,
    KerawidgetsError,
    LayerRecreationError,
    ShapeMismatchError,
    UnknownActivationError,
    UnknownLayerError,
    UnsupportedModelError,
)

__version__ = "0.1.0"

__all__ = [
    "InvalidEditError",
    "KerawidgetsError",
    "LayerRecreationError",
    "ShapeMismatchError",
    "UnknownActivationError",
    "UnknownLayerError",
    "UnsupportedModelError",
]
