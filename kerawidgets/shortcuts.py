"""One-line edits that return the new model: the everyday API.

Each takes the same keyword options as `kerawidgets.rebuild`
(`reinitialize=`), leaves the original model untouched, and raises a
`KerawidgetsError` before anything changes when the edit cannot work.

>>> import keras, kerawidgets
>>> inp = keras.Input((4,))
>>> model = keras.Model(inp, keras.layers.Dense(2, activation="sigmoid", name="out")(inp))
>>> kerawidgets.replace_activation(model, "out", "tanh").get_layer("out").activation.__name__
'tanh'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from kerawidgets import arguments
from kerawidgets import inplace as inplace_mode
from kerawidgets.edits import InsertLayer, RemoveLayer, ReplaceLayer, SetActivation, SetSettings
from kerawidgets.rebuild import rebuild


def replace_activation(model: keras.Model, layer: Any, activation: str | Callable, *,
                       attribute: str = "activation", inplace: bool = False,
                       reinitialize: str | None = None) -> keras.Model:
    """A new model whose `layer` (a name, layer, class or predicate) uses `activation`.

    `inplace=True` changes the live layer of *this* model instead and returns
    it (`kerawidgets.set_activation_inplace`): the next `predict`/`fit` uses the
    new activation, LSTM/GRU change on their cell, and if any selected layer
    cannot be changed in place nothing is changed.

    Prefer a rebuild (`kerawidgets.replace_activation(model, ...)` without
    `inplace=True`) when you want to compare before and after, keep the original,
    save the model (the layer's config is also updated here, but a rebuild is the
    form Keras itself would produce), or change anything but a layer's
    `activation` setting (ReLU layers, layer types, shapes).
    """
    arguments.choice("inplace", inplace, (False, True))
    if inplace:
        return inplace_mode.set_activation_inplace(model, layer, activation, attribute=attribute)
    edit = SetActivation(layer, activation, attribute=attribute)
    return rebuild(model, [edit], reinitialize=reinitialize).model


def replace_layer(model: keras.Model, layer: Any, replacement: Any, *,
                  trainable: bool | None = None, reinitialize: str | None = None) -> keras.Model:
    """A new model with `layer` replaced by `replacement` (a layer, spec, list or model)."""
    edit = ReplaceLayer(layer, replacement, trainable=trainable)
    return rebuild(model, [edit], reinitialize=reinitialize).model


def insert_layer(model: keras.Model, *, after: Any, layer: Any,
                 reinitialize: str | None = None) -> keras.Model:
    """A new model with `layer` (or a list of layers) inserted right after `after`."""
    return rebuild(model, [InsertLayer(after, layer)], reinitialize=reinitialize).model


def remove_layer(model: keras.Model, layer: Any, *, reinitialize: str | None = None) -> keras.Model:
    """A new model without `layer`; its input flows on to its consumers."""
    return rebuild(model, [RemoveLayer(layer)], reinitialize=reinitialize).model


def set_settings(model: keras.Model, layer: Any, /, *, reinitialize: str | None = None,
                 **settings: Any) -> keras.Model:
    """A new model whose `layer` has these config `settings` (``rate=0.2``,
    ``padding="same"``, ``use_bias=True``...), keeping every weight that still fits.

    >>> import keras, kerawidgets
    >>> inp = keras.Input((4,))
    >>> model = keras.Model(inp, keras.layers.Dropout(0.5, name="drop")(inp))
    >>> kerawidgets.set_settings(model, "drop", rate=0.1).get_layer("drop").rate
    0.1
    """
    return rebuild(model, [SetSettings(layer, settings)], reinitialize=reinitialize).model
