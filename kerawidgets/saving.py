"""Saving a model to a `.keras` file that reloads to the same outputs, or to nothing.

`save_verified` writes to a temporary file next to the target, reloads it and
checks it; only a file that passed is moved into place. A model whose own
class cannot describe its edited graph (a keras-hub task re-creates itself
from its constructor arguments, so a changed activation inside its backbone
would reload as the original one) is saved as a plain Functional model of the
same graph instead, when Keras can reload that. When neither reloads,
`SaveCheckError` names the layer and says why; no file is left behind. A
subclassed model whose class's `get_config` cannot record an edit (its
`__init__` hard-codes the layer), on its own or nested in a functional model,
is refused before anything is written, saying what to change in the class
(`subclassed_rebuild.config_problem`).

>>> import os, tempfile, keras, numpy as np
>>> from kerawidgets.saving import save_verified
>>> inp = keras.Input((3,)); model = keras.Model(inp, keras.layers.Dense(2, name="d")(inp))
>>> x = np.ones((2, 3), "float32")
>>> path = os.path.join(tempfile.mkdtemp(), "m.keras")
>>> same = lambda reloaded: float(np.max(np.abs(model.predict(x, verbose=0) - reloaded.predict(x, verbose=0))))
>>> save_verified(model, path, same, 1e-5)
'reloaded; outputs match'
"""

from __future__ import annotations

import contextlib
import os
import tempfile

import keras

from kerawidgets import _keras_adapter as adapter
from kerawidgets import model_class
from kerawidgets.errors import SaveCheckError, keras_reason


def save_verified(model, path, worst_difference, tolerance) -> str:
    """Write `model` to `path` if its reload gives the same outputs; say how it was saved.

    `worst_difference(reloaded)` is the largest absolute difference between
    the reloaded model's outputs and `model`'s. Raises `SaveCheckError` (and
    leaves `path` as it was) when no way of saving reloads within `tolerance`.
    """
    from kerawidgets import subclassed, subclassed_rebuild

    own = subclassed.is_subclassed(model)
    unrecorded = (subclassed_rebuild.config_problem(model) if own
                  else subclassed_rebuild.nested_config_problem(model))
    if unrecorded:  # said before writing anything: what to change in the class
        raise SaveCheckError(f"{path!r} was not written: {unrecorded} Nothing was saved.")
    problem = _attempt(model, path, worst_difference, tolerance)
    if problem is None:
        return "reloaded; outputs match"
    if own:  # a subclassed model has no graph to save as a plain Functional model
        raise SaveCheckError(f"{path!r} was not written: {problem} Nothing was saved.")
    shared = shared_with_nested(model)
    if not model_class.has_own_classes(model):
        because = f" Because {shared}" if shared else ""
        raise SaveCheckError(f"{path!r} was not written: {problem}{because} Nothing was saved.")
    cls = type(model).__name__
    if shared:
        raise SaveCheckError(
            f"{path!r} was not written. Saved as {cls}, {problem} Saved as a plain Functional "
            f"model, it would not reload either: {shared} Nothing was saved. Save the weights "
            "(`model.save_weights('edited.weights.h5')`) and keep the edits as code "
            "(`ModelEditor.to_code()`) to apply them again to the original model."
        )
    with model_class.plain_classes():
        from kerawidgets.rebuild import copy_model

        plain = copy_model(model)
    second = _attempt(plain, path, worst_difference, tolerance)
    if second is not None:
        raise SaveCheckError(f"{path!r} was not written. Saved as {cls}, {problem} Saved as a "
                             f"plain Functional model: {second} Nothing was saved.")
    return (f"reloaded; outputs match; saved as a plain Functional model, since as {cls} {problem} "
            f"Load it with keras.saving.load_model; it has the same graph and weights but none of "
            f"{cls}'s methods and attributes")


def _attempt(model, path, worst_difference, tolerance) -> str | None:
    """Save, reload and compare through a temporary file; None if it passed (file moved)."""
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(suffix=".keras", prefix=".kerawidgets-", dir=directory)
    os.close(handle)
    try:
        try:
            model.save(temporary)
        except Exception as error:
            return f"Keras cannot write it ({keras_reason(error)})."
        try:
            reloaded = keras.saving.load_model(temporary)
        except Exception as error:
            return f"Keras cannot load the file back ({keras_reason(error)})."
        where = first_difference(model, reloaded)
        if where:  # outputs of small random weights can agree though the layers do not
            why = (f": {type(model).__name__} re-creates its layers from its constructor "
                   "arguments (its get_config()), which cannot express the edit"
                   if model_class.has_own_classes(model) else "")
            return f"it would reload differently{where}{why}."
        worst = worst_difference(reloaded)
        if not worst <= tolerance:
            return (f"the reloaded model's outputs differ by up to {worst:.3g} on the probe data "
                    f"(tolerance {tolerance}).")
        os.replace(temporary, path)
        return None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)


def shared_with_nested(model) -> str:
    """Layers called both by a Functional graph and inside a model nested in it, in words.

    Keras stores a nested model's layers inside that model's config, so on
    reload the outer graph's call gets a second, separate layer that the one
    saved weight cannot fill.
    """
    found = []
    for outer, inner, layer in _shared_layers(model):
        found.append(f"layer {layer.name!r} ({type(layer).__name__}) is called both inside "
                     f"{inner.name!r} and by {outer.name!r} itself, and Keras would load two "
                     "separate copies of it, only one with its weights")
    return "; ".join(found) + ("." if found else "")


def _shared_layers(model):
    if not adapter.has_graph(model):
        return
    own = model.layers
    for nested in own:
        if adapter.is_model(nested) and adapter.has_graph(nested):
            inside = {id(layer) for layer in _all_graph_layers(nested)}
            for layer in own:
                if layer is not nested and id(layer) in inside:
                    yield model, nested, layer
            yield from _shared_layers(nested)


def _all_graph_layers(model):
    for layer in model.layers:
        yield layer
        if adapter.is_model(layer) and adapter.has_graph(layer):
            yield from _all_graph_layers(layer)


def first_difference(model, reloaded) -> str:
    """Where `reloaded` first differs from `model`, layer by layer (path, class, config)."""
    old, new = dict(_configs(model, ())), dict(_configs(reloaded, ()))
    for path, (cls, config) in old.items():
        if path not in new:
            return f"; layer {path!r} ({cls}) is missing from the reloaded model"
        new_cls, new_config = new[path]
        if new_cls != cls:
            return f"; layer {path!r} reloads as a {new_cls}, not a {cls}"
        changed = [k for k in config if k in new_config and _differs(config[k], new_config[k])]
        if changed:
            key = changed[0]
            return (f"; layer {path!r} ({cls}) reloads with {key}={_shown(new_config[key])} "
                    f"instead of {_shown(config[key])}")
    extra = [p for p in new if p not in old]
    return f"; the reloaded model has a layer {extra[0]!r} the model does not" if extra else ""


def _shown(value) -> str:
    """A config value as a user knows it (a serialized function by its name)."""
    if isinstance(value, dict) and value.get("class_name") == "function":
        value = value.get("config")
    return repr(value)


def _differs(a, b) -> bool:
    """Two config values that differ (values printed with a memory address are not compared;
    a tuple and the list JSON reloads it as are the same)."""
    a, b = str(_lists(a)), str(_lists(b))
    return a != b and " at 0x" not in a + b


def _lists(value):
    """`value` with every tuple in it as a list (as a saved config reloads it)."""
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    return value


def _configs(model, prefix):
    for layer in model.layers:
        path = "/".join((*prefix, layer.name))
        if adapter.is_model(layer) and adapter.has_graph(layer):
            yield from _configs(layer, (*prefix, layer.name))
            continue
        try:
            config = layer.get_config()
        except Exception:  # a broken get_config: compare the class only
            config = {}
        config.pop("name", None)
        yield path, (type(layer).__name__, config)
