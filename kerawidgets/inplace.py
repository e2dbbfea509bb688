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

from kerawidgets import _keras_adapter as adapter
from kerawidgets import activations, targets
from kerawidgets.errors import InvalidEditError


def set_activation_inplace(model, layer, activation, *, attribute="activation"):
    """Set `attribute` of the selected layers of `model` itself; returns `model`.

    Refuses (before changing anything) layers that have no such attribute,
    such as `ReLU` layers: those need a rebuild.
    """
    fn = activations.get(activation)
    found = targets.resolve(model, layer)
    for target in found:
        if not hasattr(target.layer, attribute) or isinstance(getattr(target.layer, attribute), str):
            raise InvalidEditError(
                f"Layer {target.path_str!r} ({type(target.layer).__name__}) has no {attribute!r} "
                "attribute to change in place. Use a rebuild instead: "
                f"kerawidgets.replace_activation(model, {target.path_str!r}, {activations.name_of(fn)!r})."
            )
    for target in found:
        setattr(target.layer, attribute, fn)
        cell = getattr(target.layer, "cell", None)  # LSTM/GRU keep it on their cell
        if cell is not None and hasattr(cell, attribute):
            setattr(cell, attribute, fn)
    adapter.reset_compiled_functions(model)
    for _path, sub in targets.walk_layers(model):
        if adapter.is_model(sub):
            adapter.reset_compiled_functions(sub)
    return model
