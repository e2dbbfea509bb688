"""Layer types a layer can be replaced with, or that can be inserted after it.

For the layer at a path, `replacement_choices` lists every known layer type
that can take the layer's input, each with a settings form prefilled from the
current layer (Dense ``units``, Conv ``filters`` / ``kernel_size`` /
``strides`` / ``padding``, pool sizes, Dropout ``rate``...) and a fit verdict.
Fit is checked symbolically: a fresh candidate layer computes its output spec
for the layer's input shape, and a changed output shape is carried through
the layers downstream, so a pooling layer whose smaller map a residual `Add`
could not take is not offered. No weight is built and no model is rebuilt,
so listing choices for a layer of ResNet50 takes a few tens of milliseconds.

>>> import keras
>>> from kerawidgets import catalog
>>> inp = keras.Input((8, 8, 3), name="image")
>>> x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inp)
>>> model = keras.Model(inp, keras.layers.GlobalAveragePooling2D(name="gap")(x))
>>> choices = {c.class_name: c for c in catalog.replacement_choices(model, "conv")}
>>> choices["SeparableConv2D"].verdict
'keeps shape (None, 8, 8, 4)'
>>> choices["SeparableConv2D"].defaults["kernel_size"]
(3, 3)
>>> choices["MaxPooling2D"].verdict
'changes output shape to (None, 4, 4, 3) (downstream layers would be re-initialised)'
>>> "LSTM" in choices  # needs a sequence input
False
>>> catalog.can_remove(model, "conv")
(False, "Removing 'conv' would feed (None, 8, 8, 3) to its consumers, which now get (None, 8, 8, 4).")
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import marshal
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import keras

from kerawidgets import _keras_adapter as adapter
from kerawidgets import activations, naming, targets
from kerawidgets.edits import RemoveLayer
from kerawidgets.errors import InvalidEditError, KerawidgetsError, keras_reason
from kerawidgets.naming import shape_text
from kerawidgets.plan import plan_edit

__all__ = [
    "Choice",
    "LayerType",
    "Setting",
    "can_remove",
    "changed_settings",
    "check_choice",
    "insert_choices",
    "layer_types",
    "register_layer_type",
    "replacement_choices",
    "settings_form",
    "unregister_layer_type",
]

KINDS = ("int", "float", "choice", "bool", "str", "tuple")
ACTIVATION_CHOICES = "activations"  # marker: the choices are `activations.available()`


# --- settings ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Setting:
    """One field of a layer type's settings form.

    `kind` is one of ``int``, ``float``, ``choice``, ``bool``, ``str`` or
    ``tuple`` (of ints, `length` of them). `parse` turns what a form sends
    into a checked value, or raises `InvalidEditError`.

    >>> Setting("kernel_size", "tuple", (3, 3), length=2).parse("5, 5")
    (5, 5)
    >>> Setting("rate", "float", 0.5, minimum=0.0, maximum=1.0).parse(0.2)
    0.2
    """

    name: str
    kind: str
    default: Any = None
    _: dataclasses.KW_ONLY  # the rest by name: a bare 0.0 is easy to put in the wrong field
    choices: tuple | str = ()  # or ACTIVATION_CHOICES
    minimum: float | None = None
    maximum: float | None = None
    length: int | None = None  # for tuples
    width: bool = False  # the output width (units, filters): prefilled from the current layer

    def __post_init__(self):
        if self.kind not in KINDS:
            raise InvalidEditError(f"Setting {self.name!r}: kind must be one of {KINDS}; got {self.kind!r}.")

    def with_default(self, value) -> Setting:
        return dataclasses.replace(self, default=value)

    def options(self) -> tuple:
        """The allowed values of a ``choice`` setting."""
        if self.choices == ACTIVATION_CHOICES:
            return tuple(activations.available())
        return tuple(self.choices)

    def parse(self, value: Any) -> Any:
        """`value` checked and converted to this setting's kind."""
        where = f"Setting {self.name!r}"
        out: Any
        try:
            if self.kind == "bool":
                if isinstance(value, str):
                    if value.lower() not in ("true", "false"):
                        raise ValueError(value)
                    return value.lower() == "true"
                return bool(value)
            if self.kind == "int":
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError(value)
                out = int(value)
            elif self.kind == "float":
                out = float(value)
            elif self.kind == "choice":
                if value not in self.options():
                    raise InvalidEditError(
                        f"{where} must be one of {', '.join(map(str, self.options()))}; got {value!r}.")
                return value
            elif self.kind == "str":
                return str(value)
            else:
                out = _parse_tuple(value)
                if self.length is not None and len(out) == 1 and self.length > 1:
                    out = out * self.length
                if self.length is not None and len(out) != self.length:
                    raise ValueError(value)
                if any(v < (self.minimum if self.minimum is not None else -1) for v in out):
                    raise ValueError(value)
                return out
        except InvalidEditError:
            raise
        except (TypeError, ValueError):
            size = f"{self.length} " if self.length else ""
            expected = {"int": "a whole number", "float": "a number", "bool": "true or false",
                        "tuple": f"{size}whole numbers separated by commas, like 3, 3"}[self.kind]
            raise InvalidEditError(f"{where} must be {expected}; got {value!r}.") from None
        if self.minimum is not None and out < self.minimum:
            raise InvalidEditError(f"{where} must be at least {self.minimum}; got {out}.")
        if self.maximum is not None and out > self.maximum:
            raise InvalidEditError(f"{where} must be at most {self.maximum}; got {out}.")
        return out


def _parse_tuple(value) -> tuple:
    if isinstance(value, str):
        parts = [p.strip() for p in value.strip().strip("()[]").split(",")]
        return tuple(int(p) for p in parts if p)
    if isinstance(value, (list, tuple)):
        return tuple(int(v) for v in value)
    return (int(value),)


# --- layer types ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LayerType:
    """A layer class the catalog offers, with its settings form.

    `fixed` config is passed as is; `ranks` are the input ranks (batch axis
    included) it takes (None: any); `many_inputs` for merge layers; `insert`
    says whether it is offered in "insert after"; `check(config, shape)`
    returns a reason the settings do not fit, or None.
    """

    cls: type[Any]  # a keras.layers.Layer subclass
    settings: tuple[Setting, ...] = ()
    fixed: dict[str, Any] = dataclasses.field(default_factory=dict)
    ranks: tuple[int, ...] | None = None
    many_inputs: bool = False
    insert: bool = False
    check: Callable[[dict[str, Any], Any], str | None] | None = None
    custom: bool = False

    @property
    def class_name(self) -> str:
        return self.cls.__name__

    @property
    def registered_name(self) -> str:
        return keras.saving.get_registered_name(self.cls)


@dataclasses.dataclass(frozen=True)
class Choice:
    """One layer type that fits where a layer sits, with prefilled settings.

    `verdict` says what choosing it does to shapes; `keeps_shape` is True
    when the output shape is the same as the current layer's.
    `config(values)` checks form values and returns the layer config;
    `spec(values)` the ``("ClassName", config)`` pair an edit takes.
    """

    layer_type: LayerType
    settings: tuple
    input_shape: Any
    output_shape: tuple
    current_shape: tuple
    keeps_shape: bool
    verdict: str

    @property
    def class_name(self) -> str:
        return self.layer_type.class_name

    @property
    def defaults(self) -> dict:
        """The prefilled value of each setting."""
        return {s.name: s.default for s in self.settings}

    def setting(self, name) -> Setting:
        for s in self.settings:
            if s.name == name:
                return s
        raise InvalidEditError(
            f"{self.class_name} has no setting {name!r}; settings: {', '.join(self.defaults)}.")

    def values(self, values=None) -> dict:
        """`values` (a dict of setting name to raw value) checked, missing ones defaulted."""
        values = dict(values or {})
        for name in values:
            self.setting(name)  # unknown names are refused
        return {s.name: s.parse(values.get(s.name, s.default)) for s in self.settings}

    def config(self, values=None) -> dict:
        config = dict(self.layer_type.fixed)
        for name, value in self.values(values).items():
            config[name] = list(value) if isinstance(value, tuple) else value
        return config

    def spec(self, values=None) -> tuple:
        """``(registered class name, config)``: what `ReplaceLayer` / `InsertLayer` take."""
        return (self.layer_type.registered_name, self.config(values))

    def layer(self, values=None):
        """A fresh, unbuilt layer with these settings."""
        return self.layer_type.cls.from_config(self.config(values))


_REGISTRY: dict[str, LayerType] = {}


def _activation(default="linear"):
    return Setting("activation", "choice", default, choices=ACTIVATION_CHOICES)


def _padding():
    return Setting("padding", "choice", "valid", choices=("valid", "same"))


def _group_check(config, shape):
    channels = shape[-1]
    groups = config.get("groups", 32)
    if channels is None or channels % groups:
        return f"{channels} channels cannot be split into {groups} groups"
    return None


def _reshape_check(config, shape):
    target = [d for d in config["target_shape"] if d != -1]
    known = [d for d in shape[1:] if d is not None]
    if len(known) != len(shape) - 1:
        return "the input has unknown dimensions"
    total = 1
    for d in known:
        total *= d
    size = 1
    for d in target:
        size *= d
    if (-1 in config["target_shape"] and total % size) or (
            -1 not in config["target_shape"] and size != total):
        return f"{total} values cannot be reshaped to {tuple(config['target_shape'])}"
    return None


def _builtin_types() -> list[LayerType]:
    """Every built-in layer type the catalog offers, in the order menus list them."""
    return [*_weighted_types(), *_pooling_types(), *_normalisation_types(), *_other_types()]


def _weighted_types() -> list[LayerType]:
    L = keras.layers
    out = [
        LayerType(L.Dense, (Setting("units", "int", 32, minimum=1, width=True), _activation(),
                            Setting("use_bias", "bool", True)), ranks=None),
    ]
    for dims, cls in ((1, L.Conv1D), (2, L.Conv2D), (3, L.Conv3D)):
        out.append(LayerType(cls, (
            Setting("filters", "int", 32, minimum=1, width=True),
            Setting("kernel_size", "tuple", (3,) * dims, minimum=1, length=dims),
            Setting("strides", "tuple", (1,) * dims, minimum=1, length=dims),
            _padding(), _activation(), Setting("use_bias", "bool", True)), ranks=(dims + 2,)))
    out += [
        LayerType(L.SeparableConv2D, (
            Setting("filters", "int", 32, minimum=1, width=True),
            Setting("kernel_size", "tuple", (3, 3), minimum=1, length=2),
            Setting("strides", "tuple", (1, 1), minimum=1, length=2), _padding(),
            Setting("depth_multiplier", "int", 1, minimum=1), _activation()), ranks=(4,)),
        LayerType(L.DepthwiseConv2D, (
            Setting("kernel_size", "tuple", (3, 3), minimum=1, length=2),
            Setting("strides", "tuple", (1, 1), minimum=1, length=2), _padding(),
            Setting("depth_multiplier", "int", 1, minimum=1), _activation()), ranks=(4,)),
        LayerType(L.Conv2DTranspose, (
            Setting("filters", "int", 32, minimum=1, width=True),
            Setting("kernel_size", "tuple", (3, 3), minimum=1, length=2),
            Setting("strides", "tuple", (1, 1), minimum=1, length=2), _padding(),
            _activation()), ranks=(4,)),
    ]
    return out


def _pooling_types() -> list[LayerType]:
    L = keras.layers
    out = []
    for dims in (1, 2, 3):
        for kind in ("Max", "Average"):
            cls = getattr(L, f"{kind}Pooling{dims}D")
            out.append(LayerType(cls, (
                Setting("pool_size", "tuple", (2,) * dims, minimum=1, length=dims),
                _padding()), ranks=(dims + 2,)))
        for kind in ("Max", "Average"):
            cls = getattr(L, f"Global{kind}Pooling{dims}D")
            out.append(LayerType(cls, (Setting("keepdims", "bool", False),), ranks=(dims + 2,)))
    return out


def _normalisation_types() -> list[LayerType]:
    L = keras.layers
    out = [
        LayerType(L.BatchNormalization, (Setting("momentum", "float", 0.99, minimum=0.0, maximum=1.0),
                                         Setting("epsilon", "float", 1e-3, minimum=0.0),
                                         Setting("center", "bool", True),
                                         Setting("scale", "bool", True)), insert=True),
        LayerType(L.LayerNormalization, (Setting("epsilon", "float", 1e-3, minimum=0.0),
                                         Setting("center", "bool", True),
                                         Setting("scale", "bool", True)), insert=True),
        LayerType(L.GroupNormalization, (Setting("groups", "int", 8, minimum=1),
                                         Setting("epsilon", "float", 1e-3, minimum=0.0)),
                  insert=True, check=_group_check),
        LayerType(L.UnitNormalization, (), insert=True),
        LayerType(L.Dropout, (Setting("rate", "float", 0.2, minimum=0.0, maximum=0.99),),
                  insert=True),
    ]
    for dims in (1, 2, 3):
        out.append(LayerType(getattr(L, f"SpatialDropout{dims}D"),
                             (Setting("rate", "float", 0.2, minimum=0.0, maximum=0.99),),
                             ranks=(dims + 2,), insert=True))
    return out


def _other_types() -> list[LayerType]:
    """Noise, activation layers, reshaping, recurrent and merge layers."""
    L = keras.layers
    out = [
        LayerType(L.GaussianNoise, (Setting("stddev", "float", 0.1, minimum=0.0),), insert=True),
        LayerType(L.GaussianDropout, (Setting("rate", "float", 0.1, minimum=0.0, maximum=0.99),),
                  insert=True),
        LayerType(L.Activation, (_activation("relu"),), insert=True),
        LayerType(L.ReLU, (Setting("negative_slope", "float", 0.0, minimum=0.0),
                           Setting("threshold", "float", 0.0)), insert=True),
        LayerType(L.LeakyReLU, (Setting("negative_slope", "float", 0.3, minimum=0.0),),
                  insert=True),
        LayerType(L.ELU, (Setting("alpha", "float", 1.0),), insert=True),
        LayerType(L.PReLU, (), insert=True),
        LayerType(L.Softmax, (), insert=True),
        LayerType(L.Identity, ()),
        LayerType(L.Flatten, (), ranks=(3, 4, 5)),
        LayerType(L.Reshape, (Setting("target_shape", "tuple", (-1,), minimum=-1),),
                  check=_reshape_check),
    ]
    for cls in (L.SimpleRNN, L.GRU, L.LSTM):
        out.append(LayerType(cls, (Setting("units", "int", 32, minimum=1, width=True),
                                   _activation("tanh"),
                                   Setting("return_sequences", "bool", False)), ranks=(3,)))
    for name in ("Add", "Multiply", "Average", "Maximum", "Minimum", "Subtract"):
        out.append(LayerType(getattr(L, name), (), many_inputs=True))
    out.append(LayerType(L.Concatenate, (Setting("axis", "int", -1),), many_inputs=True))
    return out


for _type in _builtin_types():
    _REGISTRY[_type.class_name] = _type


def layer_types() -> list[LayerType]:
    """Every layer type the catalog knows (built-in first, then registered ones)."""
    return list(_REGISTRY.values())


def register_layer_type(cls: type, *, defaults: dict[str, Any] | None = None,
                        settings: Sequence[Setting] | dict[str, str] | None = None,
                        insert: bool = False, ranks: tuple[int, ...] | None = None) -> LayerType:
    """Offer a custom layer class in "Replace with" (and "Insert after" with `insert=True`).

    `defaults` are constructor arguments (required ones must be there);
    `settings` are the form fields: a list of `Setting`, or a dict
    ``{name: kind}``, or None to make a field of each default. The class
    must be registered with ``@keras.saving.register_keras_serializable()``
    so edits, `.keras` files and `to_code` can name it.

    >>> import keras
    >>> @keras.saving.register_keras_serializable(package="doc")
    ... class Scale(keras.layers.Layer):
    ...     def __init__(self, factor=2.0, **kwargs):
    ...         super().__init__(**kwargs)
    ...         self.factor = factor
    ...     def call(self, x):
    ...         return x * self.factor
    ...     def get_config(self):
    ...         return {**super().get_config(), "factor": self.factor}
    >>> register_layer_type(Scale, defaults={"factor": 0.5}).settings[0]
    Setting(name='factor', kind='float', default=0.5, choices=(), minimum=None, maximum=None, length=None, width=False)
    >>> unregister_layer_type(Scale)
    """
    if not (inspect.isclass(cls) and issubclass(cls, keras.layers.Layer)):
        raise InvalidEditError(f"register_layer_type needs a keras.layers.Layer subclass; got {cls!r}.")
    name = keras.saving.get_registered_name(cls)
    if keras.saving.get_registered_object(name) is not cls and getattr(keras.layers, cls.__name__, None) is not cls:
        raise InvalidEditError(
            f"{cls.__name__} is not registered with Keras serialisation, so an edit could not "
            "name it and a saved model could not load it. Decorate the class with "
            "@keras.saving.register_keras_serializable(package='my_package') first.")
    defaults = dict(defaults or {})
    if settings is None:
        fields = tuple(_infer_setting(k, v) for k, v in defaults.items())
    elif isinstance(settings, dict):
        fields = tuple(Setting(k, kind, defaults.get(k)) for k, kind in settings.items())
    else:
        fields = tuple(settings)
    names = {s.name for s in fields}
    fixed = {k: v for k, v in defaults.items() if k not in names}
    layer_type = LayerType(cls, fields, fixed=fixed, ranks=ranks, insert=insert, custom=True)
    try:
        cls.from_config({**fixed, **{s.name: _config_value(s.default) for s in fields}})
    except Exception as error:
        raise InvalidEditError(
            f"Cannot create {cls.__name__} from the defaults {defaults}: {error}. Give every "
            "required constructor argument in `defaults`.") from error
    _REGISTRY[cls.__name__] = layer_type
    _OFFERED.clear()  # choices offered so far did not include it
    return layer_type


def unregister_layer_type(cls) -> None:
    """Forget a type added with `register_layer_type`."""
    name = cls if isinstance(cls, str) else cls.__name__
    if name in _REGISTRY and _REGISTRY[name].custom:
        del _REGISTRY[name]
        _OFFERED.clear()


def _infer_setting(name, value) -> Setting:
    if isinstance(value, bool):
        return Setting(name, "bool", value)
    if isinstance(value, int):
        return Setting(name, "int", value)
    if isinstance(value, float):
        return Setting(name, "float", value)
    if isinstance(value, (list, tuple)):
        return Setting(name, "tuple", tuple(value), length=len(value))
    return Setting(name, "str", "" if value is None else str(value))


def _config_value(value):
    return list(value) if isinstance(value, tuple) else value


# --- where a layer sits -------------------------------------------------------


@dataclasses.dataclass
class _Site:
    target: targets.Target
    calls: list  # adapter.GraphCall of the layer in its parent model
    parent: Any
    insert: bool = False  # a layer inserted after this one: its input is the layer's output
    _parent_calls: list | None = None
    _problems: dict = dataclasses.field(default_factory=dict)  # new output shapes -> problem
    _layer_keys: dict = dataclasses.field(default_factory=dict)  # `_downstream_spec`'s, per layer
    _config: Any = dataclasses.field(default=None, repr=False)  # `config()`, read once

    @property
    def layer(self):
        return self.target.layer

    def config(self) -> dict | None:
        """The layer's `get_config()`, read once per site (the prefilled values of every
        candidate and the key of the choices read it); None when it raises."""
        if self._config is None:
            try:
                self._config = (self.layer.get_config(),)
            except Exception:
                self._config = (None,)
        return self._config[0]

    @property
    def input_shapes(self) -> list:
        """Per call: one shape, or a list of shapes for several inputs."""
        if self.insert:
            return self.output_shapes
        out = []
        for call in self.calls:
            shapes = [tuple(t.shape) for t in call.input_tensors]
            out.append(shapes[0] if len(shapes) == 1 else shapes)
        return out

    @property
    def output_shapes(self) -> list:
        return [tuple(call.output_tensors[0].shape) for call in self.calls]

    @property
    def dtype(self) -> str:
        tensors = self.calls[0].input_tensors
        return keras.backend.standardize_dtype(tensors[0].dtype) if tensors else "float32"

    def parent_calls(self) -> list:
        """Every call of the model the layer sits in (computed once per site)."""
        if self._parent_calls is None:
            self._parent_calls = targets.graph_calls(self.parent)
        return self._parent_calls

    def consumers(self) -> int:
        outputs = {id(t) for call in self.calls for t in call.output_tensors}
        return sum(1 for call in self.parent_calls()
                   if any(id(t) in outputs for t in call.input_tensors))


    def downstream_problem(self, new_shapes) -> str | None:
        """Why the layers after this one cannot take its new output shapes, or None.

        The new shapes are carried through the calls downstream, each asking a
        fresh copy of its layer for its output spec (no weights built; a layer
        whose weights no longer fit would be re-initialised, so that is not a
        problem). A merge with a branch that kept its shape, or a Reshape whose
        sizes no longer add up, is. None also when a layer cannot say without
        building weights: the preview's dry run then tells.
        """
        key = tuple(new_shapes)
        if key not in self._problems:
            self._problems[key] = self._carry_down(new_shapes)
        return self._problems[key]

    def _carry_down(self, new_shapes) -> str | None:
        changed = {}
        for call, shape in zip(self.calls, new_shapes):
            old = call.output_tensors[0]
            changed[id(old)] = keras.KerasTensor(shape, dtype=old.dtype)
        edited = {id(call.node) for call in self.calls}
        for call in self.parent_calls():
            if call.is_input or id(call.node) in edited:
                continue
            if not any(id(t) in changed for t in call.input_tensors):
                continue
            tensors = {id(t): changed.get(id(t), t) for t in call.input_tensors}
            args, kwargs = call.call_arguments(tensors)
            spec = _downstream_spec(call.operation, args, kwargs, self._layer_keys)
            if isinstance(spec, _Refused):
                got = [tuple(tensors[id(t)].shape) for t in call.input_tensors]
                return (f"{call.operation.name!r} ({type(call.operation).__name__}) further down "
                        f"cannot take {shape_text(got[0] if len(got) == 1 else got)}: "
                        f"{spec.reason}")
            if spec is None:
                return None
            for old, new in zip(call.output_tensors, keras.tree.flatten(spec)):
                if tuple(new.shape) != tuple(old.shape):
                    changed[id(old)] = new
        return None


@dataclasses.dataclass(frozen=True)
class _Refused:
    reason: str  # why a layer downstream cannot take its new input (`keras_reason`)


def _downstream_spec(operation, args, kwargs, layer_keys: dict):
    """`adapter.fresh_output_spec` of a call downstream, or `_Refused`; kept per layer
    class, config, weights or none, and inputs (`_DOWNSTREAM_SPECS`): the same site asked
    about again (after Apply, Undo or Redo) makes no fresh layers. `layer_keys` keeps
    each layer's part of the key for the site's other shape changes."""
    def now():
        try:
            return adapter.fresh_output_spec(operation, args, kwargs)
        except Exception as error:
            return _Refused(keras_reason(error))

    if not isinstance(operation, keras.layers.Layer):
        return now()  # a stateless op: no layer to make
    if id(operation) not in layer_keys:
        try:
            layer_keys[id(operation)] = _Frozen(_key(
                (operation.get_config(), bool(operation.weights))))
        except Exception:  # no config, or one not comparable by value
            layer_keys[id(operation)] = None
    layer_key = layer_keys[id(operation)]
    if layer_key is None:
        return now()
    return _memo(_DOWNSTREAM_SPECS, (type(operation), layer_key, args, kwargs), now)


# --- answers kept: the same question gives the same answer ----------------------------

#: How many answers each memo keeps (oldest dropped first).
_MEMO_SIZE = 4096
#: (candidate class, config, input shape, dtype) -> output shape or reason (`_fit`).
_CANDIDATE_OUTPUTS: dict = {}
#: (layer class, config, has weights, arguments) -> output spec, None or `_Refused`.
_DOWNSTREAM_SPECS: dict = {}
#: model (weakly) -> {`_offered_key`: choices} (`_choices`).
_OFFERED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclasses.dataclass(frozen=True)
class _Frozen:
    """A part of a key `_frozen` already made (kept by the caller), passed through as is."""

    key: Any


class _Unkeyable(Exception):
    """A value `_frozen` cannot compare by value (an object in a config): not kept."""


def _frozen(value):
    """`value` as a hashable key equal exactly when the values are (types included, so
    ``True``, ``1`` and ``1.0`` differ); KerasTensors by shape, dtype and sparseness.

    >>> _frozen({"units": 4, "use_bias": True}) == _frozen({"use_bias": True, "units": 4})
    True
    >>> _frozen([1]) == _frozen((1,)), _frozen(1) == _frozen(True)
    (False, False)
    """
    if isinstance(value, _Frozen):
        return value.key
    if value is None or isinstance(value, (str, int, float, bool)):
        return type(value), value
    if isinstance(value, (list, tuple)):
        return type(value), tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return dict, tuple(sorted((str(k), _frozen(v)) for k, v in value.items()))
    if isinstance(value, keras.KerasTensor):
        return (keras.KerasTensor, tuple(value.shape), value.dtype, bool(value.sparse),
                bool(getattr(value, "ragged", False)))
    raise _Unkeyable(type(value).__name__)


#: The exact types `_key` writes with `marshal` (anything else goes through `_frozen`).
_PLAIN_LEAVES = frozenset({type(None), bool, int, float, str})


def _plain(value) -> bool:
    """Whether `value` is made only of None, bool, int, float and str (those exact types,
    no subclass), lists, tuples and dicts with str keys: what `marshal` writes exactly."""
    kind = type(value)
    if kind in _PLAIN_LEAVES:
        return True
    if kind is list or kind is tuple:
        return all(_plain(v) for v in value)
    if kind is dict:
        return all(type(k) is str and _plain(v) for k, v in value.items())
    return False


def _key(value):
    """An exact key of `value`, like `_frozen` but faster for plain data (a layer config):
    `marshal` bytes (version 2: no references, so the bytes depend only on the values and
    their types), after `_plain` checked that every part is of a type marshal tells apart
    (it writes any buffer, such as a numpy scalar, as plain bytes). Equal keys mean equal
    values of the same types; equal dicts in another key order only miss.

    >>> _key({"units": 4, "use_bias": True}) == _key({"units": 4, "use_bias": True})
    True
    >>> _key([1]) == _key((1,)), _key({"a": 1}) == _key({"a": True}), _key(1.0) == _key(1)
    (False, False, False)
    """
    if _plain(value):
        return marshal.dumps(value, 2)
    return _frozen(value)


def _keras_settings() -> tuple:
    """Keras' global settings a fresh layer reads when made (data format, dtypes)."""
    return (keras.backend.backend(), keras.config.image_data_format(), keras.config.floatx(),
            keras.config.dtype_policy().name)


def _memo(memo: dict, key, compute):
    """``compute()``, kept in `memo` under `key` (with Keras' global settings); computed
    every time when the key holds a value `_key` cannot compare."""
    try:
        key = (_key(key[1:]), key[0], _keras_settings())
    except _Unkeyable:
        return compute()
    if key not in memo:
        memo[key] = compute()
        while len(memo) > _MEMO_SIZE:
            del memo[next(iter(memo))]
    return memo[key]


def _site(model, layer_path) -> _Site:
    """Where `layer_path` sits in `model` (`_find_site`), once per `targets.one_trace_each`
    block: the choices, the settings form, `can_remove` and `check_choice` asked inside
    one (the editor fills its panel for a selection in one) share its calls, its config
    and the keys of the layers after it."""
    if not isinstance(layer_path, str):
        return _find_site(model, layer_path)
    return targets.kept_per_block("site", model, layer_path,
                                  lambda: _find_site(model, layer_path))


def _find_site(model, layer_path) -> _Site:
    (target,) = targets.resolve(model, layer_path, allow_many=False)
    parent = targets.parent_model(model, target.path)
    every = targets.graph_calls(parent)
    calls = [c for c in every if c.operation is target.layer] or [
        c for c in every  # a subclassed model's traced copy
        if not c.is_input and c.operation.name == target.path[-1]]
    if target.call_index is not None:
        calls = [c for c in calls if c.call_index == target.call_index]
    if not calls or calls[0].is_input:
        raise InvalidEditError(f"{target.path_str!r} is an input of the model; it has no layer to edit.")
    return _Site(target, calls, parent, _parent_calls=every)


def _current_value(layer, setting: Setting, site: _Site):
    """The current layer's value for `setting`, or None when it has none."""
    config = site.config() or {}
    if setting.name == "activation":
        if isinstance(layer, (keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU,
                              keras.layers.Softmax)):
            return {"ReLU": "relu", "LeakyReLU": "leaky_relu", "ELU": "elu",
                    "Softmax": "softmax"}[type(layer).__name__]
        name = activations.name_of(getattr(layer, "activation", None))
        return name if name in activations.available() else None
    if setting.name in config:
        return config[setting.name]
    if setting.width:
        width = site.output_shapes[0][-1] if site.output_shapes[0] else None
        return width
    if setting.name == "return_sequences":
        return len(site.output_shapes[0]) == 3
    if setting.name == "target_shape":
        shape = site.output_shapes[0][1:]
        return shape if all(d is not None for d in shape) else None
    return None


def _prefilled(layer_type: LayerType, site: _Site) -> tuple:
    settings = []
    for setting in layer_type.settings:
        value = _current_value(site.layer, setting, site)
        if value is not None:
            if setting.kind == "tuple" and isinstance(value, (list, tuple)) and setting.length \
                    and len(value) != setting.length and len(value) > 0:
                value = (value[0],) * setting.length
            try:
                value = setting.parse(value)
            except InvalidEditError:
                value = None
        if setting.name == "groups" and value is None:
            channels = site.output_shapes[0][-1] or 1
            value = max(g for g in (1, 2, 4, 8, 16, 32) if channels % g == 0)
        settings.append(setting if value is None else setting.with_default(value))
    return tuple(settings)


def _fit(layer_type: LayerType, settings, config_values, site: _Site, shape_changes: bool):
    """(output shape, keeps_shape, verdict) or a reason string when it does not fit."""
    config = dict(layer_type.fixed)
    config.update({k: _config_value(v) for k, v in config_values.items()})
    outputs = []
    for shape in site.input_shapes:
        many = isinstance(shape, list)
        if many != layer_type.many_inputs:
            return "it takes " + ("several inputs" if layer_type.many_inputs else "one input")
        if layer_type.ranks is not None and (many or len(shape) not in layer_type.ranks):
            ranks = " or ".join(str(r - 1) for r in layer_type.ranks)
            return f"it needs inputs with {ranks} non-batch axes"
        if not many and len(shape) < 2:
            return "the input has no feature axis"
        if layer_type.check is not None:
            problem = layer_type.check(config, shape)
            if problem:
                return problem
        output = _memo(_CANDIDATE_OUTPUTS, (layer_type.cls, config, shape, site.dtype),
                       functools.partial(_candidate_output, layer_type.cls, config, shape,
                                         site.dtype))
        if isinstance(output, str):
            return output
        outputs.append(output)
    current = site.output_shapes
    keeps = outputs == current
    shape = outputs[0]
    if keeps:
        verdict = f"keeps shape {shape_text(shape)}"
    elif not shape_changes:
        return f"it changes the output shape to {shape_text(shape)}"
    elif (problem := site.downstream_problem(outputs)) is not None:
        return f"it changes the output shape to {shape_text(shape)}, and {problem}"
    elif site.consumers() == 0:
        verdict = f"changes the model's output shape to {shape_text(shape)}"
    else:
        verdict = (f"changes output shape to {shape_text(shape)} "
                   "(downstream layers would be re-initialised)")
    return shape, keeps, verdict


def _candidate_output(cls, config, shape, dtype) -> tuple | str:
    """The output shape of a fresh `cls` layer from `config` on `shape`, or why it cannot
    take that input (a pure function of its arguments: `_fit` keeps its answers)."""
    try:
        layer = cls.from_config(dict(config))
        spec = adapter.symbolic_output_spec(layer, shape, dtype)
    except Exception as error:  # the candidate cannot take this input
        return keras_reason(error)
    flat = keras.tree.flatten(spec)
    if len(flat) != 1:
        return "it gives several outputs"
    return tuple(flat[0].shape)


def _choices(model, layer_path, purpose):
    """The site of `layer_path` and the choices offered there, asked once per model, layer,
    purpose and the layer's own settings (`_OFFERED`, forgotten when the registry changes):
    Undo and Redo come back to a model already asked about, and the form's checks ask
    again as you type."""
    site = _site(model, layer_path)
    if purpose == "insert":
        if len(site.calls[0].output_tensors) != 1:
            return site, []
        site = dataclasses.replace(site, insert=True)
    key = _offered_key(site, purpose)
    offered = _OFFERED.get(model)
    if key is not None and offered is not None and key in offered:
        return site, list(offered[key])
    out = _choices_now(site, purpose)
    if key is not None:
        offered = _OFFERED.setdefault(model, {})
        offered[key] = tuple(out)
        while len(offered) > _MEMO_SIZE:
            del offered[next(iter(offered))]
    return site, out


def _offered_key(site, purpose):
    """What the choices at `site` depend on besides the model's graph (fixed once built):
    the layer's settings and activation (prefilled values) and Keras' global settings. None when the layer's config cannot be told apart."""
    layer = site.layer
    if site.config() is None:  # get_config raised
        return None
    try:
        config = _key(site.config())
    except _Unkeyable:
        return None
    return (site.target.path_str, site.target.call_index, purpose, type(layer), config,
            activations.name_of(getattr(layer, "activation", None)), _keras_settings())


def _choices_now(site, purpose) -> list[Choice]:
    out = []
    for layer_type in _REGISTRY.values():
        if purpose == "insert" and not layer_type.insert:
            continue
        settings = _prefilled(layer_type, site)
        try:
            values = {s.name: s.parse(s.default) for s in settings}
        except InvalidEditError:
            continue
        fit = _fit(layer_type, settings, values, site, shape_changes=purpose == "replace")
        if isinstance(fit, str):
            continue
        shape, keeps, verdict = fit
        out.append(Choice(layer_type, settings, site.input_shapes[0], shape,
                          site.output_shapes[0], keeps, verdict))
    return out


def replacement_choices(model, layer_path) -> list[Choice]:
    """Layer types that can take the input of the layer at `layer_path`, best fit first.

    Each `Choice` has its settings prefilled from the current layer and a
    verdict: "keeps shape (...)" or "changes output shape to (...)
    (downstream layers would be re-initialised)". Types that cannot take the
    input at all are left out. Shape-keeping choices come first.
    """
    _, out = _choices(model, layer_path, "replace")
    return sorted(out, key=lambda c: not c.keeps_shape)


def insert_choices(model, layer_path) -> list[Choice]:
    """Layer types that can be inserted right after `layer_path` (all keep its output shape).

    >>> import keras
    >>> inp = keras.Input((8,), name="x")
    >>> model = keras.Model(inp, keras.layers.Dense(4, name="d")(inp))
    >>> [c.class_name for c in insert_choices(model, "d")][:4]
    ['BatchNormalization', 'LayerNormalization', 'GroupNormalization', 'UnitNormalization']
    """
    _, out = _choices(model, layer_path, "insert")
    return out


def check_choice(model, layer_path, class_name, values=None, *, purpose="replace") -> Choice:
    """The `Choice` of `class_name` at `layer_path` with the form's `values`, fit re-checked.

    Raises `InvalidEditError` when the class is not offered there, a value
    is malformed, or the settings make the layer unable to take its input
    (the message says why).

    >>> import keras
    >>> inp = keras.Input((8, 8, 3), name="image")
    >>> model = keras.Model(inp, keras.layers.Conv2D(4, 3, name="conv")(inp))
    >>> print(check_choice(model, "conv", "Conv2D", {"filters": 8}).verdict)
    changes the model's output shape to (None, 6, 6, 8)
    """
    if purpose not in ("replace", "insert"):
        raise InvalidEditError(f"purpose must be 'replace' or 'insert'; got {purpose!r}.")
    site, offered = _choices(model, layer_path, purpose)
    choice = next((c for c in offered if c.class_name == class_name), None)
    if choice is None:
        where = naming.layer_path(site.target.path)
        raise InvalidEditError(
            f"{class_name!r} is not a {'replacement' if purpose == 'replace' else 'layer to insert'} "
            f"that fits {where!r} (input {shape_text(site.input_shapes[0])}). Choose one of: "
            f"{', '.join(c.class_name for c in offered) or 'none'}.")
    checked = choice.values(values)
    fit = _fit(choice.layer_type, choice.settings, checked, site, purpose == "replace")
    if isinstance(fit, str):
        where = naming.layer_path(site.target.path)
        raise InvalidEditError(
            f"{class_name} with {_settings_text(checked)} does not fit {where!r} "
            f"(input {shape_text(site.input_shapes[0])}): {fit}. Change the settings.")
    shape, keeps, verdict = fit
    settings = tuple(s.with_default(checked[s.name]) for s in choice.settings)
    return dataclasses.replace(choice, settings=settings, output_shape=shape,
                               keeps_shape=keeps, verdict=verdict)


def _settings_text(values) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in values.items()) or "its defaults"


def can_remove(model, layer_path) -> tuple[bool, str]:
    """Whether removing the layer keeps every shape: ``(True, "")`` or ``(False, reason)``."""
    try:
        site = _site(model, layer_path)
        plan_edit(model, RemoveLayer(naming.layer_path(site.target.path)))
    except KerawidgetsError as error:
        return False, str(error)
    where = naming.layer_path(site.target.path)
    for call in site.calls:
        got = tuple(call.input_tensors[0].shape)
        now = tuple(call.output_tensors[0].shape)
        if got != now:
            return False, (f"Removing {where!r} would feed {shape_text(got)} to its consumers, "
                           f"which now get {shape_text(now)}.")
    return True, ""


# --- the settings of a layer as it is (SetSettings) -------------------------------


def settings_form(model: keras.Model, layer_path: str) -> tuple[Setting, ...]:
    """The fields a settings form offers for the layer at `layer_path` (a `SetSettings`
    edit): its catalog type's settings that are in its config, prefilled with its current
    values. The width (units, filters) changes its weights' shapes and the activation has
    its own tab, so they are left out; a class the catalog does not know has none.

    >>> import keras
    >>> inp = keras.Input((8, 8, 3))
    >>> model = keras.Model(inp, keras.layers.Conv2D(4, 3, name="conv")(inp))
    >>> [(s.name, s.default) for s in settings_form(model, "conv")]
    [('kernel_size', (3, 3)), ('strides', (1, 1)), ('padding', 'valid'), ('use_bias', True)]
    """
    site = _site(model, layer_path)
    layer_type = next((t for t in _REGISTRY.values() if t.cls is type(site.layer)), None)
    config = site.config()
    if config is None:  # a layer that cannot say its config cannot be re-made with new settings
        return ()
    if layer_type is None:
        return ()
    return tuple(s for s in _prefilled(layer_type, site)
                 if not s.width and s.name != "activation" and s.name in config)


def changed_settings(model: keras.Model, layer_path: str, values: dict) -> dict:
    """The form's `values` (setting name to raw value) parsed, keeping those that differ
    from the layer's current config: what a `SetSettings` edit takes.

    >>> import keras
    >>> inp = keras.Input((4,))
    >>> model = keras.Model(inp, keras.layers.Dropout(0.5, name="drop")(inp))
    >>> changed_settings(model, "drop", {"rate": "0.5"}), changed_settings(model, "drop", {"rate": 0.2})
    ({}, {'rate': 0.2})
    """
    fields = {s.name: s for s in settings_form(model, layer_path)}
    unknown = [k for k in values if k not in fields]
    if unknown:
        raise InvalidEditError(f"{naming.layer_path(_site(model, layer_path).target.path)!r} has "
                               f"no setting {', '.join(map(repr, unknown))} in its form; "
                               f"settings: {', '.join(fields) or 'none'}.")
    parsed = {name: fields[name].parse(value) for name, value in values.items()}
    return {name: value for name, value in parsed.items()
            if _config_value(value) != _config_value(fields[name].default)}
