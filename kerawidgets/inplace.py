"""The quick in-place activation tweak, for experiments within one session.

`set_activation_inplace` changes the live layer of the model you pass, and
makes sure the next `predict`/`fit`/`evaluate` really uses the new activation:
Keras traces those into a function on first use, so assigning
`layer.activation = ...` on a model that already ran silently keeps the old one.

Prefer a rebuild (`kerawidgets.replace_activation(model, ...)` without
`inplace=True`) when you want to compare before and after, keep the original,
save the model (the layer's config is also updated here, but a rebuild is the
form Keras itself would produce), or change anything but a layer's
`activation` setting (ReLU layers, layer types, shapes).

>>> import keras, numpy as np
>>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="relu", name="d")])
>>> _ = model.predict(np.ones((1, 2)), verbose=0)
>>> _ = set_activation_inplace(model, "d", "tanh")
>>> model.get_layer("d").activation.__name__
'tanh'
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import keras

from kerawidgets import _keras_adapter as adapter
from kerawidgets import activations, arguments, targets
from kerawidgets.errors import InvalidEditError


def set_activation_inplace(model: keras.Model, layer: Any, activation: str | Callable, *,
                           attribute: str = "activation") -> keras.Model:
    """Set `attribute` of the selected layers of `model` itself; returns `model`.

    `layer` is a name, path, layer object, class, predicate or list, as in
    `SetActivation`. Recurrent layers (LSTM, GRU, SimpleRNN, ConvLSTM) get the
    new activation on their cell, where Keras keeps it; `attribute=
    "recurrent_activation"` changes the recurrent gate. Every selected layer is
    checked before any is changed: if one cannot be changed in place (a `ReLU`
    layer, a layer whose activation is read-only), an `InvalidEditError` names
    it and the model is left exactly as it was.

    Prefer a rebuild (`kerawidgets.replace_activation(model, ...)` without
    `inplace=True`) when you want to compare before and after, keep the original,
    save the model (the layer's config is also updated here, but a rebuild is the
    form Keras itself would produce), or change anything but a layer's
    `activation` setting (ReLU layers, layer types, shapes).
    """
    arguments.model(model)
    fn = activations.get(activation)
    name = activations.name_of(fn)
    found = targets.resolve(model, layer)
    writes = [(target, _holder(target, attribute, name)) for target in found]
    for target, holder in writes:
        setattr(holder, attribute, fn)
        if holder is target.layer:
            cell = getattr(target.layer, "cell", None)
            if cell is not None and _writable(cell, attribute):  # keep a cell in step
                setattr(cell, attribute, fn)
    adapter.reset_compiled_functions(model)
    for _path, sub in targets.walk_layers(model):
        if adapter.is_model(sub):
            adapter.reset_compiled_functions(sub)
    return model


def _writable(obj, attribute) -> bool:
    """Whether `obj.attribute` is an activation callable that assignment can replace."""
    if not callable(getattr(obj, attribute, None)):
        return False
    static = inspect.getattr_static(type(obj), attribute, None)
    return not (isinstance(static, property) and static.fset is None)


def _holder(target, attribute, activation_name):
    """The object whose `attribute` to set: the layer, or its cell (LSTM/GRU); refuses otherwise."""
    layer = target.layer
    if _writable(layer, attribute):
        return layer
    cell = getattr(layer, "cell", None)
    if cell is not None and _writable(cell, attribute):
        return cell
    where, cls = target.path_str, type(layer).__name__
    if callable(getattr(layer, attribute, None)):
        why = f"its {attribute!r} is read-only (a property without a setter)"
    else:
        why = f"it has no {attribute!r} function to change"
    extra = f", attribute={attribute!r}" if attribute != "activation" else ""
    raise InvalidEditError(
        f"Layer {where!r} ({cls}) cannot be changed in place: {why}. Nothing was changed "
        f"(the other selected layers included). Use a rebuild instead: "
        f"kerawidgets.replace_activation(model, {where!r}, {activation_name!r}{extra})."
    )
