"""Built-in and registered activations, by name.

Every name here can be used in an edit (`SetActivation(layer, name)`), is
offered in the editor's dropdown, and survives a `.keras` save and reload.

>>> import keras
>>> from kerawidgets import activations
>>> "gelu" in activations.available()
True
>>> swish = activations.register_activation("my_swish", lambda x: x * keras.ops.sigmoid(x))
>>> activations.get("my_swish") is swish
True
"""

from __future__ import annotations

import functools
import json
import os
import zipfile
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from kerawidgets.errors import (
    InvalidEditError,
    UnknownActivationError,
    UnregisteredActivationError,
)

PACKAGE = "kerawidgets"

# Built-in activations that keep the shape of their input and take no
# required argument. `glu` halves the last axis and `threshold` needs
# settings, so they are left out of the menu (still usable via a layer).
_BUILTIN_CANDIDATES = (
    "linear", "relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "swish",
    "mish", "sigmoid", "hard_sigmoid", "hard_silu", "hard_swish", "log_sigmoid",
    "sparse_sigmoid", "tanh", "hard_tanh", "tanh_shrink", "hard_shrink", "soft_shrink",
    "softplus", "softsign", "sparse_plus", "squareplus", "exponential", "softmax",
    "log_softmax", "sparsemax",
)

_registered: dict[str, object] = {}
# What each registered activation was made from (fn, gradient, params), so code can repeat it.
_sources: dict[str, tuple] = {}


@functools.lru_cache(maxsize=1)
def builtin_names() -> tuple[str, ...]:
    """Names of Keras' built-in activations that keep their input's shape."""
    names = []
    probe = np.linspace(-2.0, 2.0, 8, dtype="float32").reshape(2, 4)
    for name in _BUILTIN_CANDIDATES:
        fn = getattr(keras.activations, name, None)
        if fn is None:
            continue
        try:
            out = keras.ops.convert_to_numpy(fn(probe))
        except Exception:  # an activation this Keras version cannot run plainly
            continue
        if out.shape == probe.shape:
            names.append(name)
    return tuple(names)


def registered_names() -> tuple[str, ...]:
    return tuple(_registered)


def available() -> list[str]:
    """Every activation name an edit may use: built-ins, then registered ones."""
    return list(builtin_names()) + [n for n in _registered if n not in builtin_names()]


def get(name_or_fn):
    """The activation callable for a name (built-in or registered) or a callable.

    Raises `UnknownActivationError` listing what exists.
    """
    if callable(name_or_fn):
        return name_or_fn
    name = str(name_or_fn)
    if name in _registered:
        return _registered[name]
    if name in builtin_names():
        return keras.activations.get(name)
    raise UnknownActivationError(name, available())


def name_of(activation) -> str | None:
    """The name under which `activation` is known (a string, or None for anonymous ones).

    >>> import keras
    >>> name_of(keras.activations.relu)
    'relu'
    """
    if activation is None:
        return None
    if isinstance(activation, str):
        return activation
    for name, fn in _registered.items():
        if fn is activation:
            return name
    own = getattr(activation, "__name__", None)
    if own and getattr(keras.activations, own, None) is activation:
        return own
    try:
        serialized = keras.activations.serialize(activation)
    except Exception:
        return own
    if isinstance(serialized, (str, dict)):
        return _config_name(serialized) or own
    return own


def _config_name(value) -> str | None:
    """The activation a layer config's entry names: ``"tanh"``, a serialised function
    (``{"class_name": "function", "config": "keras_hub>gelu_approximate"}`` is
    ``gelu_approximate``, not ``function``) or a serialised callable object."""
    if value is None:
        return "linear"
    if isinstance(value, str):
        return value.split(">")[-1]
    if not isinstance(value, dict):
        return None
    if value.get("class_name") == "function" and isinstance(value.get("config"), str):
        return value["config"].split(">")[-1]
    registered = value.get("registered_name") or value.get("class_name")
    return registered.split(">")[-1] if isinstance(registered, str) else None


#: Layers that *are* an activation, and the activation each applies with default settings.
ACTIVATION_LAYERS = {
    "ReLU": "relu", "LeakyReLU": "leaky_relu", "PReLU": "prelu", "ELU": "elu",
    "Softmax": "softmax",
}

# Settings of activation layers as the built-in activation of the same name has them:
# `keras.activations.leaky_relu` has negative_slope=0.2 where the LeakyReLU layer has 0.3.
_ACTIVATION_DEFAULTS: dict[str, dict[str, Any]] = {
    "relu": {"negative_slope": 0.0, "max_value": None, "threshold": 0.0},
    "leaky_relu": {"negative_slope": 0.2},
    "elu": {"alpha": 1.0},
    "softmax": {"axis": -1},
}


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else repr(value)


def _activation_layer_name(layer, config) -> str:
    """What an activation layer applies, faithfully: ``ReLU(max_value=6)`` is ``relu6``,
    ``LeakyReLU()`` (slope 0.3) is ``leaky_relu(negative_slope=0.3)``, a built-in name
    when the settings are exactly that activation's, else the name with its settings."""
    base = ACTIVATION_LAYERS[type(layer).__name__]
    defaults = _ACTIVATION_DEFAULTS.get(base, {})
    settings = {k: config.get(k, v) for k, v in defaults.items()}
    if isinstance(settings.get("axis"), (list, tuple)) and len(settings["axis"]) == 1:
        settings["axis"] = settings["axis"][0]
    changed = {k: v for k, v in settings.items() if v != defaults[k]}
    if base == "relu" and not changed.keys() - {"max_value"} and changed.get("max_value") == 6:
        return "relu6"
    if base == "relu" and changed.keys() == {"negative_slope"} and changed["negative_slope"] == 0.2:
        return "leaky_relu"
    if not changed:
        return base
    return f"{base}({', '.join(f'{k}={_number(v)}' for k, v in changed.items())})"


def _live(layer, key):
    try:
        return getattr(layer, key, None)
    except Exception:  # a property that cannot be read here
        return None


def _is_function(value) -> bool:
    """A callable that can be an activation (a function or callable object, not a layer or class)."""
    return (callable(value) and not isinstance(value, (keras.layers.Layer, type))
            and not isinstance(value, keras.Operation))


def _is_activation_function(value, config_value) -> bool:
    """Whether a setting whose name does not say "activation" holds one (a custom gate)."""
    if not _is_function(value):
        return False
    if any(fn is value for fn in _registered.values()):
        return True
    name = getattr(value, "__name__", None)
    if name and getattr(keras.activations, name, None) is value:
        return True
    return isinstance(config_value, dict) and config_value.get("class_name") == "function"


def activation_settings(layer) -> dict[str, str]:
    """Every setting of `layer` that holds an activation, with the activation's name.

    ``activation`` (Dense, Conv, Activation and activation layers such as ReLU),
    ``recurrent_activation`` (LSTM/GRU), any other config key ending in
    ``_activation`` (CLIP's ``intermediate_activation``), and custom keys whose
    value is an activation function (a custom layer's ``gate``). Each can be
    edited with ``SetActivation(layer, name, attribute=key)``.

    >>> import keras
    >>> activation_settings(keras.layers.LSTM(2))
    {'activation': 'tanh', 'recurrent_activation': 'sigmoid'}
    >>> activation_settings(keras.layers.ReLU(max_value=6.0)), activation_settings(keras.layers.Flatten())
    ({'activation': 'relu6'}, {})
    """
    if isinstance(layer, keras.layers.Lambda) or isinstance(layer, keras.Model):
        return {}
    try:
        config = layer.get_config()
    except Exception:  # cannot be re-created; still say what it applies
        fn = _live(layer, "activation")
        name = name_of(fn) if _is_function(fn) else None
        return {"activation": name} if name else {}
    if getattr(keras.layers, type(layer).__name__, None) is type(layer) and (
            type(layer).__name__ in ACTIVATION_LAYERS):
        return {"activation": _activation_layer_name(layer, config)}
    found = {}
    for key, value in config.items():
        if key in ("name", "trainable", "dtype") or not (value is None or isinstance(value, (str, dict))):
            continue
        live = _live(layer, key)
        if key == "activation" or key.endswith("_activation"):
            if isinstance(value, dict) and "class_name" not in value:
                continue
            name = name_of(live) if _is_function(live) else _config_name(value)
        elif _is_activation_function(live, value):
            name = name_of(live)
        else:
            continue
        if name:
            found[key] = name
    return found


def layer_activation(layer) -> str | None:
    """The activation `layer` applies, by name: its `activation` setting (else its first
    other activation setting), or what an activation layer (ReLU, Softmax...) applies,
    settings included; None for layers without one.

    >>> import keras
    >>> layer_activation(keras.layers.Dense(2, activation="tanh")), layer_activation(keras.layers.ReLU())
    ('tanh', 'relu')
    >>> layer_activation(keras.layers.ReLU(max_value=6)), layer_activation(keras.layers.LeakyReLU())
    ('relu6', 'leaky_relu(negative_slope=0.3)')
    """
    settings = activation_settings(layer)
    return settings.get("activation") or next(iter(settings.values()), None)


def config_value(name: str):
    """What to put in a layer config's `activation` entry for this name."""
    if name in _registered:
        return keras.saving.serialize_keras_object(_registered[name])
    get(name)  # raises for unknown names
    return name


def register_activation(name: str, fn: Callable, *, gradient: Callable | None = None,
                        **params: Any) -> Callable:
    """Register a custom activation under `name` and return the callable.

    - `fn(x)` a plain function (a hand-written swish), or
    - `fn(x, **params)` a parameterised one (leaky relu with `negative_slope=0.2`):
      the registered activation calls it with the given `params`;
    - `gradient(x, upstream)` optional: returns the gradient with respect to
      `x`, built on `keras.ops.custom_gradient`.

    The activation is registered with Keras' serialisation under
    ``"kerawidgets>name"`` so a model using it saves to `.keras` and loads
    back with no `custom_objects`. The file stores the name only, not your
    code: in a new Python process, run ``register_activation('name', fn)``
    (the same code as when you saved) before loading. Load with
    `kerawidgets.load_model(path)`: when an activation is missing it says
    which, instead of Keras' "could not be deserialized properly".

    >>> import keras
    >>> leaky = register_activation(
    ...     "leaky02", lambda x, slope: keras.ops.where(x > 0, x, slope * x), slope=0.2)
    >>> round(float(leaky(keras.ops.convert_to_tensor(-1.0))), 4)
    -0.2
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise InvalidEditError(
            f"Activation name {name!r} must be a Python identifier, like 'my_swish'."
        )
    if name in builtin_names():
        raise InvalidEditError(
            f"{name!r} is a built-in Keras activation; pick another name for your own."
        )
    if not callable(fn):
        raise InvalidEditError(f"register_activation({name!r}, fn): fn must be callable.")
    if gradient is not None and not callable(gradient):
        raise InvalidEditError(
            f"register_activation({name!r}, fn, gradient=...): gradient must be a function "
            f"gradient(x, upstream) returning the gradient with respect to x; got {gradient!r}. "
            "Leave it out to use the automatic gradient of fn."
        )

    if gradient is None:

        def activation(x):
            return fn(x, **params)

    else:

        @keras.ops.custom_gradient
        def with_gradient(x):
            y = fn(x, **params)

            def grad(*args, upstream=None):
                if upstream is None:
                    (upstream,) = args
                return gradient(x, upstream)

            return y, grad

        # A plain function around it: TensorFlow's custom_gradient returns a
        # decorator object that Keras cannot serialise by name.
        def activation(x):
            return with_gradient(x)

    activation.__name__ = name
    activation.__qualname__ = name
    activation.__doc__ = f"Activation {name!r} registered with kerawidgets."
    registered = keras.saving.register_keras_serializable(package=PACKAGE, name=name)(activation)
    _registered[name] = registered
    _sources[name] = (fn, gradient, dict(params))
    return registered


def _import_of(fn) -> tuple[str, str] | None:
    """(module, name) from which `fn` can be imported as itself, or None (a lambda, a
    function defined in a notebook or inside another function)."""
    import importlib

    module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or module == "__main__" or not name.isidentifier():
        return None
    for candidate in _public_modules(module):
        try:
            found = getattr(importlib.import_module(candidate), name, None)
        except Exception:  # a module that cannot be imported again
            continue
        if found is fn:
            return candidate, name
    return None


def _public_modules(module: str) -> list[str]:
    """Where to import from, public API first: ``keras.src.activations.activations`` is
    tried as ``keras.activations``, then ``keras``, then itself.

    >>> _public_modules("keras.src.activations.activations")
    ['keras.activations', 'keras', 'keras.src.activations.activations']
    >>> _public_modules("math")
    ['math']
    """
    parts = module.split(".")
    if "src" not in parts[1:]:
        return [module]
    after = parts[parts.index("src", 1) + 1:]
    public = [f"{parts[0]}.{after[0]}"] if after else []
    return list(dict.fromkeys([*public, parts[0], module]))


def registration_code(name: str) -> tuple[list[str], str]:
    """How a script registers activation `name` as this session did: the import lines
    and a ``kerawidgets.register_activation(...)`` call, or a comment saying what to
    run when the function cannot be imported (a lambda, a function in a notebook).

    >>> import math
    >>> _ = register_activation("code_sin", math.sin)
    >>> registration_code("code_sin")
    (['from math import sin'], "kerawidgets.register_activation('code_sin', sin)")
    >>> unregister_activation("code_sin")
    """
    fn, gradient, params = _sources[name]
    found = [_import_of(fn)] + ([_import_of(gradient)] if gradient is not None else [])
    parts = [part for part in found if part is not None]
    literal = all(_is_literal(v) for v in params.values())
    if len(parts) < len(found) or not literal:
        what = [f for f, part in zip(("fn", "gradient"), found) if part is None]
        why = (f"its {' and '.join(what)} cannot be imported (a lambda, or defined in a notebook "
               "or inside a function)" if what else "its parameters are not plain values")
        return [], (f"# The activation {name!r} was registered in your session; {why}. Run "
                    f"kerawidgets.register_activation({name!r}, fn{', gradient=...' * (gradient is not None)}"
                    f"{''.join(f', {k}=...' for k in params)}) with the same code before this script.")
    imports = [f"from {module} import {attr}" for module, attr in parts]
    args = [repr(name), parts[0][1]] + ([f"gradient={parts[1][1]}"] if gradient is not None else [])
    args += [f"{k}={v!r}" for k, v in params.items()]
    return imports, f"kerawidgets.register_activation({', '.join(args)})"


def _is_literal(value) -> bool:
    import ast

    try:
        return ast.literal_eval(repr(value)) == value
    except (ValueError, SyntaxError):
        return False


def unregister_activation(name: str) -> None:
    """Forget a registered activation (mainly for tests and notebooks re-running cells)."""
    fn = _registered.pop(name, None)
    _sources.pop(name, None)
    if fn is not None:
        keras.saving.get_custom_objects().pop(f"{PACKAGE}>{name}", None)


def load_model(path: str | os.PathLike, **kwargs: Any) -> keras.Model:
    """`keras.saving.load_model(path, **kwargs)`, saying which registered activations are missing.

    A `.keras` file records a registered activation by name
    (``"kerawidgets>my_swish"``), not its code. In a Python process that has not
    registered it, Keras fails with an opaque "could not be deserialized
    properly"; this raises `UnregisteredActivationError` naming the activations
    and the layers that use them, so you can run ``register_activation('name',
    fn)`` (the same code as when you saved) and load again.

    >>> import keras, kerawidgets, tempfile, os
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="relu")])
    >>> path = os.path.join(tempfile.mkdtemp(), "m.keras")
    >>> model.save(path)
    >>> kerawidgets.load_model(path).layers[0].activation.__name__
    'relu'
    """
    missing = _missing_activations(path, kwargs.get("custom_objects") or {})
    if missing:
        uses = "; ".join(
            f"{name!r} (layer{'s' if len(layers) > 1 else ''} {', '.join(map(repr, layers))})"
            for name, layers in missing.items()
        )
        first = next(iter(missing))
        raise UnregisteredActivationError(
            f"{os.fspath(path)!r} uses activations registered with kerawidgets that this Python "
            f"process does not know: {uses}. The file stores their names, not their code. Run "
            f"kerawidgets.register_activation({first!r}, fn) (the same code as when you saved, "
            "with the same parameters) for each of them before loading."
        )
    return keras.saving.load_model(path, **kwargs)


def _missing_activations(path, custom_objects) -> dict[str, list[str]]:
    """Registered-activation names a `.keras` file uses that are not known here, with their layers."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return {}  # not a .keras archive: let Keras say what it is
    known = set(keras.saving.get_custom_objects()) | set(custom_objects)
    prefix = f"{PACKAGE}>"
    missing: dict[str, list[str]] = {}

    def visit(value, layer):
        if isinstance(value, dict):
            inner = value.get("config")
            if "class_name" in value and isinstance(inner, dict) and isinstance(inner.get("name"), str):
                layer = f"{layer}/{inner['name']}" if layer else inner["name"]
            for item in value.values():
                visit(item, layer)
        elif isinstance(value, list):
            for item in value:
                visit(item, layer)
        elif isinstance(value, str) and value.startswith(prefix):
            name = value[len(prefix):]
            if value not in known and name not in known:
                users = missing.setdefault(name, [])
                if layer and layer not in users:
                    users.append(layer)

    visit(config.get("config", {}), "")
    return missing
