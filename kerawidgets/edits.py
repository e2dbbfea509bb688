"""Edits as small immutable values: describe, validate, print as code, JSON round-trip.

An edit names its target layer and what to do; `kerawidgets.rebuild` applies
a list of them. The editor's history is a list of these values, so it can be
saved as JSON and replayed, or printed as Python.

>>> from kerawidgets.edits import SetActivation, from_json
>>> edit = SetActivation("dense_1", "gelu")
>>> edit.describe()
"Set the activation of 'dense_1' to 'gelu'"
>>> edit.to_code()
"model = kerawidgets.replace_activation(model, 'dense_1', 'gelu')"
>>> from_json(edit.to_json()) == edit
True
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import keyword
import re
from typing import Any, ClassVar

import keras

from kerawidgets import activations, targets
from kerawidgets import plan as planning
from kerawidgets.errors import InvalidEditError, SubnetworkNotStoredError, shorten
from kerawidgets.graph import ModelGraph
from kerawidgets.naming import shape_text

# Common activation settings; any setting holding an activation can be edited
# (`activations.activation_settings` says which a layer has).
ACTIVATION_ATTRIBUTES = ("activation", "recurrent_activation", "intermediate_activation")

# --- what a layer spec may be (name, layer, class, predicate, list) -------


def _find_layer_class(class_name: str):
    """A registered custom layer class or a `keras.layers` class by name, or None."""
    return keras.saving.get_registered_object(class_name) or getattr(keras.layers, class_name, None)


def _class_code(cls: type) -> str:
    """How code names a layer class: ``keras.layers.Dense``, or a custom class's own name
    (which `class_import` imports)."""
    if getattr(keras.layers, cls.__name__, None) is cls:
        return f"keras.layers.{cls.__name__}"
    return cls.__name__


def class_import(cls: type) -> str | None:
    """The line that makes `_class_code(cls)` name `cls` in a fresh script: the public
    module first (``from keras_hub.layers import TransformerEncoder``, not its ``src``
    module), then the defining one; a comment when it cannot be imported (a class
    defined in a notebook or inside a function); None for `keras.layers` classes.

    >>> import keras
    >>> class_import(keras.layers.Dense) is None
    True
    """
    if getattr(keras.layers, cls.__name__, None) is cls:
        return None
    module = cls.__module__ or ""
    top = module.split(".")[0]
    for candidate in dict.fromkeys((f"{top}.layers", f"{top}.models", top, module)):
        if candidate == "__main__" or not candidate:
            continue
        try:
            found = getattr(importlib.import_module(candidate), cls.__name__, None)
        except Exception:  # not a module of this package
            continue
        if found is cls:
            return f"from {candidate} import {cls.__name__}"
    where = "your notebook" if module == "__main__" else f"{module} (inside a function)"
    return (f"# {cls.__name__} is defined in {where} and cannot be imported: run its "
            "definition before this script.")


def _layer_spec_to_data(spec):
    if isinstance(spec, str):
        return spec
    if isinstance(spec, keras.layers.Layer):
        return spec.name
    if inspect.isclass(spec) and issubclass(spec, keras.layers.Layer):
        return {"class_name": keras.saving.get_registered_name(spec)}
    if isinstance(spec, (list, tuple)):
        return [_layer_spec_to_data(s) for s in spec]
    raise InvalidEditError(
        f"Cannot write the layer selector {shorten(spec)} as JSON or code (a predicate is Python "
        "code). Use layer names, a layer class, or resolve it first with "
        "`kerawidgets.targets.resolve(model, selector)`."
    )


def _layer_spec_from_data(data):
    if isinstance(data, dict) and "class_name" in data:
        cls = _find_layer_class(data["class_name"])
        if cls is None:
            raise InvalidEditError(f"Unknown layer class {shorten(data['class_name'])} in edit JSON.")
        return cls
    if isinstance(data, list):
        return tuple(_layer_spec_from_data(d) for d in data)
    return data


def _layer_spec_to_code(spec) -> str:
    if isinstance(spec, str):
        return repr(spec)
    if isinstance(spec, keras.layers.Layer):
        return repr(spec.name)
    if inspect.isclass(spec) and issubclass(spec, keras.layers.Layer):
        return _class_code(spec)
    if isinstance(spec, (list, tuple)):
        return "[" + ", ".join(_layer_spec_to_code(s) for s in spec) + "]"
    _layer_spec_to_data(spec)  # raises the clear error for predicates
    return repr(spec)


def _frozen_spec(spec):
    """A selector with lists turned into tuples, so edits compare equal after JSON and hash."""
    if isinstance(spec, (list, tuple)):
        return tuple(_frozen_spec(s) for s in spec)
    return spec


def _layer_spec_describe(spec) -> str:
    if isinstance(spec, str):
        return repr(spec)
    if isinstance(spec, keras.layers.Layer):
        return repr(spec.name)
    if inspect.isclass(spec):
        return f"every {spec.__name__} layer"
    if isinstance(spec, (list, tuple)):
        return ", ".join(_layer_spec_describe(s) for s in spec)
    return f"every layer matching {getattr(spec, '__name__', repr(spec))}"


def _check_layer_spec(spec, field="layer"):
    ok = (
        isinstance(spec, (str, keras.layers.Layer))
        or (inspect.isclass(spec) and issubclass(spec, keras.layers.Layer))
        or (isinstance(spec, (list, tuple)) and spec and all(_is_spec(s) for s in spec))
        or callable(spec)
    )
    if not ok or (isinstance(spec, str) and not spec):
        raise InvalidEditError(
            f"`{field}` must be a layer name, a layer object, a layer class, a predicate or a "
            f"list of these; got {shorten(spec)}."
        )


def _is_spec(spec):
    try:
        _check_layer_spec(spec)
        return True
    except InvalidEditError:
        return False


def _single_name(spec, field):
    if isinstance(spec, keras.layers.Layer):
        return spec.name
    if not isinstance(spec, str) or not spec:
        raise InvalidEditError(f"`{field}` must name one layer (a name or a layer object); got {shorten(spec)}.")
    return spec


# --- new layers: a layer, a class name with config, a model, or a list ----


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """A recipe for fresh layers: each `build()` returns a new, unbuilt object.

    Made from a Keras layer, a class name (``"Dropout"``), a pair
    ``("Dropout", {"rate": 0.2})``, a dict ``{"class_name": ..., "config": ...}``
    or a `keras.Model` used as a sub-network (its weights are kept).

    A sub-network is data from your session, not a recipe: `to_code()` names it
    by a variable (``mobilenetv2_1_00_224``) and JSON stores a reference to it
    (name, class, parameter count), not its layers and weights. Give it back
    when loading: ``from_json(text, subnetworks={"mobilenetv2_1.00_224": backbone})``.
    """

    class_name: str
    config: dict
    model: Any = None  # a keras.Model used as a sub-network (weights kept)
    # The class itself when made from a layer object: a custom class needs no registration
    # in this session (JSON stores only `class_name`, which must then be registered).
    layer_type: Any = dataclasses.field(default=None, repr=False)

    @classmethod
    def of(cls, value) -> LayerSpec:
        if isinstance(value, LayerSpec):
            return value
        if isinstance(value, keras.Model):
            return cls(type(value).__name__, {"name": value.name}, model=value)
        if isinstance(value, keras.layers.Layer):
            return cls(keras.saving.get_registered_name(type(value)), _plain_config(value),
                       layer_type=type(value))
        if isinstance(value, str):
            return cls(value, {})._checked()
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
            return cls(value[0], dict(value[1] or {}))._checked()
        if isinstance(value, dict) and "class_name" in value:
            return cls(value["class_name"], dict(value.get("config") or {}))._checked()
        raise InvalidEditError(
            f"Cannot make a layer from {shorten(value)}: give an unbuilt Keras layer, a class name "
            "like 'Dropout', a pair ('Dropout', {'rate': 0.2}), a keras.Model, or a list of these."
        )

    def _checked(self) -> LayerSpec:
        self.build()  # fail now, with a clear message, not during the rebuild
        return self

    def layer_class(self):
        if self.layer_type is not None:
            return self.layer_type
        cls = _find_layer_class(self.class_name)
        if cls is None:
            raise InvalidEditError(
                f"Unknown layer type {shorten(self.class_name)}. Use a class from keras.layers "
                "(like 'AveragePooling2D') or register yours with "
                "@keras.saving.register_keras_serializable()."
            )
        return cls

    def build(self, name=None):
        """A fresh, unbuilt layer (not for model specs: the rebuild copies those)."""
        if self.model is not None:
            raise InvalidEditError("Model sub-networks are copied by the rebuild, not built.")
        cls = self.layer_class()
        config = dict(self.config)
        if name is not None:
            config["name"] = name
        try:
            return cls.from_config(config)
        except Exception as error:
            raise InvalidEditError(
                f"Cannot create {self.class_name} from settings {config}: {error}"
            ) from error

    @property
    def name(self) -> str | None:
        return self.config.get("name")

    def to_data(self) -> dict:
        if self.model is not None:
            return {
                "class_name": "__model__",
                "name": self.model.name,
                "model_class": type(self.model).__name__,
                "params": _param_count(self.model),
                "stored": "reference only: layers and weights are not in the JSON",
            }
        return {"class_name": self.class_name, "config": self.config}

    @classmethod
    def from_data(cls, data, subnetworks=None, where="the replaced layer") -> LayerSpec:
        if data.get("class_name") == "__model__":
            return cls.of(_find_subnetwork(data, subnetworks or {}, where))
        return cls(data["class_name"], dict(data.get("config") or {}))

    @property
    def code_name(self) -> str:
        """The variable that stands for a sub-network in code (its name made an identifier)."""
        name = re.sub(r"\W", "_", self.model.name if self.model is not None else self.class_name)
        if not name.isidentifier() or keyword.iskeyword(name):
            name = f"subnet_{name}"
        return name

    def code_comment(self) -> str | None:
        """For a sub-network: a comment line saying which variable `to_code()` uses."""
        if self.model is None:
            return None
        return (
            f"# `{self.code_name}` is the keras.Model {self.model.name!r} "
            f"({type(self.model).__name__}, {_param_count(self.model)} parameters) used as a "
            "sub-network: define it before this line"
        )

    def to_code(self, keep_name=True) -> str:
        """Python that builds this layer. Its name is written when it is not the plain
        automatic one (``dropout``), so a replayed script names layers as the rebuild
        did (`keep_name=False` for a replacement's last layer, which takes the old name)."""
        if self.model is not None:
            return self.code_name
        cls = self.layer_class()
        args = {k: v for k, v in _non_default_config(cls, self.config).items() if k != "name"}
        name = self.config.get("name")
        if keep_name and name and name != _auto_name(cls):
            args["name"] = name
        inner = ", ".join(f"{k}={v!r}" for k, v in args.items())
        return f"{_class_code(cls)}({inner})"

    def names(self) -> tuple[set, set]:
        """(layer classes, registered activation names) its code uses."""
        if self.model is not None:
            return set(), set()
        return {self.layer_class()}, _registered_in(self.config)

    def describe(self) -> str:
        if self.model is not None:
            return f"sub-network {self.model.name!r} ({type(self.model).__name__})"
        args = _non_default_config(self.layer_class(), self.config)
        shown = ", ".join(f"{k}={v!r}" for k, v in args.items() if k != "name")
        return f"{self.class_name}({shown})"

    def __eq__(self, other):
        if not isinstance(other, LayerSpec):
            return NotImplemented
        if self.model is not None or other.model is not None:
            return self.model is other.model
        return self.class_name == other.class_name and _canonical(self.config) == _canonical(
            other.config
        )

    def __hash__(self):
        return hash((self.class_name, id(self.model)))


def _registered_in(value) -> set:
    """Names of kerawidgets-registered activations a config mentions (at any depth)."""
    if isinstance(value, dict):
        return set().union(*(_registered_in(v) for v in value.values()))
    if isinstance(value, (list, tuple)):
        return set().union(*(_registered_in(v) for v in value))
    if isinstance(value, str):
        name = value.split(">", 1)[1] if value.startswith(f"{activations.PACKAGE}>") else value
        return {name} if name in activations.registered_names() else set()
    return set()


def _param_count(model) -> int | None:
    try:
        return int(model.count_params())
    except Exception:  # an unbuilt model
        return None


def _find_subnetwork(data, subnetworks, where):
    name = data.get("name") or (data.get("config") or {}).get("config", {}).get("name")
    model = subnetworks.get(name)
    if model is None:
        raise SubnetworkNotStoredError(
            f"The edit of {where!r} uses the keras.Model sub-network {name!r} "
            f"({data.get('model_class', 'Model')}, {data.get('params')} parameters), whose "
            "layers and weights are not stored in edit JSON. Pass it when loading: "
            f"kerawidgets.edits.from_json(text, subnetworks={{{name!r}: your_model}}) (or "
            "history_from_json), with the model built as before (save it on its own with "
            "model.save('subnet.keras') and keras.saving.load_model to keep its weights)."
        )
    if not isinstance(model, keras.Model):
        raise SubnetworkNotStoredError(
            f"subnetworks[{name!r}] for the edit of {where!r} must be a keras.Model; got {shorten(model)}."
        )
    params = data.get("params")
    if params is not None and _param_count(model) not in (None, params):
        raise SubnetworkNotStoredError(
            f"The keras.Model given for sub-network {name!r} (edit of {where!r}) has "
            f"{_param_count(model)} parameters; the edit was recorded with {params}. Pass the "
            "same model (same architecture) as when the edit was made."
        )
    return model


def _plain_config(layer) -> dict:
    config = layer.get_config()
    return json.loads(json.dumps(config, default=_json_default))


def _json_default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {value!r}")


def _canonical(config):
    return json.dumps(config, sort_keys=True, default=_json_default)


_BASE_KEYS = {"name", "trainable", "dtype"}


def _auto_name(cls) -> str:
    """The name Keras gives the first unnamed layer of `cls` (``Conv2D`` is ``conv2d``)."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", re.sub(r"\W+", "", cls.__name__))
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _non_default_config(cls, config) -> dict:
    """The settings in `config` that differ from what `cls(required args)` would have."""
    try:
        parameters = inspect.signature(cls.__init__).parameters.values()
        required = {
            p.name: config[p.name]
            for p in parameters
            if p.default is inspect.Parameter.empty and p.name in config
        }
        defaults = _plain_config(cls(**required))
        defaults = {k: v for k, v in defaults.items() if k not in required}
    except Exception:
        defaults = {}
    return {
        key: value
        for key, value in config.items()
        if key not in _BASE_KEYS
        and (key not in defaults or _canonical(defaults[key]) != _canonical(value))
    } | ({"name": config["name"]} if "name" in config and "name" not in defaults else {})


def layer_specs(value) -> tuple[LayerSpec, ...]:
    """Normalise one layer-ish value or a list of them into a tuple of `LayerSpec`."""
    if isinstance(value, (list, tuple)) and not (
        isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)
        and isinstance(value[1], dict)
    ):
        if not value:
            raise InvalidEditError("Give at least one layer.")
        return tuple(LayerSpec.of(v) for v in value)
    return (LayerSpec.of(value),)


# --- the edits ------------------------------------------------------------

# Every edit class, by `kind` (its class name): filled by `Edit.__init_subclass__`, so
# defining a subclass is all it takes for JSON, the editor panel and the docs to know it.
EDIT_TYPES: dict[str, type[Edit]] = {}


class Edit:
    """Base class: every edit is a frozen dataclass with these methods.

    A subclass registers itself in `EDIT_TYPES` under its class name and says
    everything about its kind of edit: what it does to a model (`plan`), how
    it reads (`describe`), its code (`to_code`), its JSON (`to_data`, and
    `required` plus `from_fields` to read it back), what to do when shapes do
    not fit (`shape_hint`) and which node the editor compares (`focus`).
    `panel_tab` is its tab's label in the editor panel and `panel_action` the
    tab's key (None: no tab).

    >>> sorted(EDIT_TYPES)[:3]
    ['InsertLayer', 'RemoveLayer', 'ReplaceLayer']
    """

    kind: ClassVar[str] = "Edit"
    required: ClassVar[tuple[str, ...]] = ()  # keys `from_data` needs besides "type"
    panel_tab: ClassVar[str | None] = None
    panel_action: ClassVar[str | None] = None
    structural: ClassVar[bool] = True  # adds, removes or replaces layers (False: same layers)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.kind = cls.__name__
        EDIT_TYPES[cls.kind] = cls

    def describe(self) -> str:
        raise NotImplementedError

    def to_code(self, model_var: str = "model") -> str:
        raise NotImplementedError

    def to_data(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_fields(cls, data: dict, subnetworks=None) -> Edit:
        """The edit `to_data()` wrote (`data` has every `required` key)."""
        raise NotImplementedError

    def plan(self, model) -> planning.Plan:
        """The per-layer actions this edit means in `model`, refusing it if it cannot apply."""
        raise NotImplementedError

    @property
    def layer_name(self) -> str | None:
        """The one layer this edit names, if it names one by name (for messages)."""
        value = getattr(self, "layer", None)
        return value if isinstance(value, str) else None

    def names(self) -> tuple[set, set]:
        """(layer classes, registered activation names) that `to_code()` uses."""
        return set(), set()

    def shape_hint(self, kind: str, got) -> str:
        """What to do instead when a layer at this edit cannot take its new input.

        `kind` is what failed: a layer "inserted" by the edit, the "replaced"
        layer's replacement, or a "copy" of an original layer; `got` the shapes it got.
        """
        return "Keep the shape each layer was built for, or add a layer that restores it."

    def focus(self, report, before_model, before, after) -> tuple[str | None, str | None]:
        """(node in the old model, node in the new model) that stand for the edited layer.

        `before_model` is a function giving the old model; `before` and
        `after` hold the node ids of each side. By default the first edited layer.
        """
        edited = [o.layer for o in report.outcomes if o.edited and o.layer in after]
        layer = edited[0] if edited else None
        return (layer if layer in before else None), layer

    def to_json(self) -> str:
        return json.dumps(self.to_data(), default=_json_default)

    def __str__(self):
        return self.describe()


@dataclasses.dataclass(frozen=True, eq=True)
class SetActivation(Edit):
    """Set the activation of one layer, or of every layer a class or predicate selects.

    Works on layers with an `activation` setting (Dense, Conv*, custom ones),
    on `Activation` layers and on activation layers (ReLU, LeakyReLU, PReLU,
    ELU, Softmax: these become an `Activation` layer with the same name, unless
    they already apply that activation: ``ReLU(max_value=6)`` is ``relu6``).
    `attribute` names another setting that holds an activation:
    ``"recurrent_activation"`` (LSTM/GRU's recurrent gate),
    ``"intermediate_activation"`` (CLIP's encoder layers), a custom layer's
    ``"gate"``; `kerawidgets.activations.activation_settings(layer)` lists them.

    >>> import keras
    >>> SetActivation(keras.layers.ReLU, "gelu").describe()
    "Set the activation of every ReLU layer to 'gelu'"
    """

    layer: Any
    activation: Any
    _: dataclasses.KW_ONLY
    attribute: str = "activation"
    required: ClassVar[tuple[str, ...]] = ("layer", "activation")
    panel_tab: ClassVar[str | None] = "Activation"
    panel_action: ClassVar[str | None] = "activation"
    structural: ClassVar[bool] = False

    def __post_init__(self):
        _check_layer_spec(self.layer)
        object.__setattr__(self, "layer", _frozen_spec(self.layer))
        if not isinstance(self.attribute, str) or not self.attribute.isidentifier():
            raise InvalidEditError(
                f"SetActivation of {_layer_spec_describe(self.layer)}: `attribute` must name the "
                f"layer setting to change, like 'activation' (the default), "
                f"{', '.join(map(repr, ACTIVATION_ATTRIBUTES[1:]))} or a custom layer's own "
                f"(a Python identifier); got {shorten(self.attribute)}."
            )
        name = activations.name_of(self.activation)
        if name is None or (not callable(self.activation) and not isinstance(self.activation, str)):
            raise InvalidEditError(f"Activation {shorten(self.activation)} must be a name or a registered function.")
        activations.get(name)  # raises UnknownActivationError listing what exists
        object.__setattr__(self, "activation", name)

    def describe(self):
        which = self.attribute.replace("_", " ")
        return f"Set the {which} of {_layer_spec_describe(self.layer)} to {self.activation!r}"

    def to_code(self, model_var="model"):
        extra = (
            f", attribute={self.attribute!r}" if self.attribute != "activation" else ""
        )
        return (
            f"{model_var} = kerawidgets.replace_activation({model_var}, "
            f"{_layer_spec_to_code(self.layer)}, {self.activation!r}{extra})"
        )

    def to_data(self):
        return {"type": self.kind, "layer": _layer_spec_to_data(self.layer),
                "activation": self.activation, "attribute": self.attribute}

    @classmethod
    def from_fields(cls, data, subnetworks=None):
        return cls(_layer_spec_from_data(data["layer"]), data["activation"],
                   attribute=data.get("attribute", "activation"))

    def names(self):
        specs = self.layer if isinstance(self.layer, tuple) else (self.layer,)
        classes = {s for s in specs if inspect.isclass(s)}
        return classes, {self.activation} & set(activations.registered_names())

    def plan(self, model):
        """Every selected layer with this activation setting; a single named layer
        without it, or a selection where none has it, is refused."""
        plan = planning.Plan(self)
        bulk = not isinstance(self.layer, (str, keras.layers.Layer))
        found = targets.resolve(model, self.layer)
        usable = [t for t in found if planning.supports_activation(
            t.layer, self.attribute, where=t.path_str, strict=True)]
        if not bulk or not usable:
            for target in found:
                if all(target is not t for t in usable):
                    raise InvalidEditError(planning.no_activation_message(target, self.attribute))
        for target in usable:
            plan.add(target, planning.Action(self, activation=(self.attribute, self.activation)))
        return plan

    def shape_hint(self, kind, got):
        return "Pick an activation that keeps the shape of its input (any built-in one does)."


@dataclasses.dataclass(frozen=True, eq=True)
class ReplaceLayer(Edit):
    """Replace a layer by another layer, a list of layers, or a sub-network.

    The (last) new layer takes the old layer's name. `trainable=False`
    freezes the replacement (useful for a pretrained backbone).

    >>> import keras
    >>> ReplaceLayer("conv", keras.layers.AveragePooling2D(2, padding="same")).describe()
    "Replace 'conv' with AveragePooling2D(pool_size=[2, 2], padding='same')"
    """

    layer: Any
    replacement: Any
    _: dataclasses.KW_ONLY
    trainable: bool | None = None
    required: ClassVar[tuple[str, ...]] = ("layer", "replacement")
    panel_tab: ClassVar[str | None] = "Replace"
    panel_action: ClassVar[str | None] = "replace"

    def __post_init__(self):
        object.__setattr__(self, "layer", _single_name(self.layer, "layer"))
        object.__setattr__(self, "replacement", layer_specs(self.replacement))

    def describe(self):
        new = " -> ".join(spec.describe() for spec in self.replacement)
        frozen = " (frozen)" if self.trainable is False else ""
        return f"Replace {self.layer!r} with {new}{frozen}"

    def to_code(self, model_var="model"):
        new = _specs_to_code(self.replacement, last_named=False)
        extra = f", trainable={self.trainable!r}" if self.trainable is not None else ""
        return _with_comments(
            self.replacement,
            f"{model_var} = kerawidgets.replace_layer({model_var}, {self.layer!r}, {new}{extra})",
        )

    def to_data(self):
        return {"type": self.kind, "layer": self.layer,
                "replacement": [s.to_data() for s in self.replacement],
                "trainable": self.trainable}

    @classmethod
    def from_fields(cls, data, subnetworks=None):
        recipes = _recipe_list(data, "replacement")
        specs = [LayerSpec.from_data(d, subnetworks, data["layer"]) for d in recipes]
        return cls(data["layer"], specs, trainable=data.get("trainable"))

    def names(self):
        return _union(spec.names() for spec in self.replacement)

    def plan(self, model):
        plan = planning.Plan(self)
        plan.add(planning.one_target(model, self.layer), planning.Action(
            self, replacement=self.replacement, trainable=self.trainable))
        return plan

    def shape_hint(self, kind, got):
        if kind == "replaced":
            return (f"Pick a replacement that accepts{_fits(got)} and keeps the old output shape, "
                    "or add a layer after it that restores it (a Dense, Reshape or pooling layer).")
        return ("Pick a replacement that keeps the old output shape, or add a layer after it "
                "that restores it (a Dense, Reshape or pooling layer).")


@dataclasses.dataclass(frozen=True, eq=True)
class InsertLayer(Edit):
    """Insert one layer (or a list, applied in order) right after a layer.

    >>> import keras
    >>> InsertLayer(after="dense_1", layer=keras.layers.Dropout(0.2)).describe()
    "Insert Dropout(rate=0.2) after 'dense_1'"
    """

    after: Any
    layer: Any
    required: ClassVar[tuple[str, ...]] = ("after", "layer")
    panel_tab: ClassVar[str | None] = "Insert after"
    panel_action: ClassVar[str | None] = "insert"

    def __post_init__(self):
        object.__setattr__(self, "after", _single_name(self.after, "after"))
        object.__setattr__(self, "layer", layer_specs(self.layer))
        if any(spec.model is not None for spec in self.layer):
            raise InvalidEditError("Insert a sub-network with ReplaceLayer on an Identity layer, "
                                   "or insert plain layers here.")

    @property
    def layer_name(self):
        return self.after

    def describe(self):
        new = " -> ".join(spec.describe() for spec in self.layer)
        return f"Insert {new} after {self.after!r}"

    def to_code(self, model_var="model"):
        return (
            f"{model_var} = kerawidgets.insert_layer({model_var}, after={self.after!r}, "
            f"layer={_specs_to_code(self.layer)})"
        )

    def to_data(self):
        return {"type": self.kind, "after": self.after, "layer": [s.to_data() for s in self.layer]}

    @classmethod
    def from_fields(cls, data, subnetworks=None):
        return cls(data["after"], [LayerSpec.from_data(d) for d in _recipe_list(data, "layer")])

    def names(self):
        return _union(spec.names() for spec in self.layer)

    def plan(self, model):
        plan = planning.Plan(self)
        plan.add(planning.one_target(model, self.after), planning.Action(self, insert_after=self.layer))
        return plan

    def shape_hint(self, kind, got):
        return (f"Insert a layer that accepts{_fits(got)} and keeps that shape, or add a Reshape "
                "or Dense after it that restores the shape the next layer expects.")

    def focus(self, report, before_model, before, after):
        """The layer it follows, and the last layer inserted."""
        new = [o.layer for o in report.outcomes if o.status == "new"]
        return self.after, (new[-1] if new else self.after)


@dataclasses.dataclass(frozen=True, eq=True)
class RemoveLayer(Edit):
    """Remove a layer with one input; its input flows on to its consumers.

    >>> RemoveLayer("dropout").to_code()
    "model = kerawidgets.remove_layer(model, 'dropout')"
    """

    layer: Any
    required: ClassVar[tuple[str, ...]] = ("layer",)
    panel_tab: ClassVar[str | None] = "Remove"
    panel_action: ClassVar[str | None] = "remove"

    def __post_init__(self):
        object.__setattr__(self, "layer", _single_name(self.layer, "layer"))

    def describe(self):
        return f"Remove {self.layer!r}"

    def to_code(self, model_var="model"):
        return f"{model_var} = kerawidgets.remove_layer({model_var}, {self.layer!r})"

    def to_data(self):
        return {"type": self.kind, "layer": self.layer}

    @classmethod
    def from_fields(cls, data, subnetworks=None):
        return cls(data["layer"])

    def plan(self, model):
        plan = planning.Plan(self)
        target = planning.one_target(model, self.layer)
        planning.check_removable(model, target)
        plan.add(target, planning.Action(self, remove=True))
        return plan

    def shape_hint(self, kind, got):
        return ("The removed layer changed the shape; keep it, or replace it with a layer that "
                "gives the shape its consumers expect (ReplaceLayer).")

    def focus(self, report, before_model, before, after):
        """The removed layer, and the node that fed it (whose output now flows on)."""
        graph = ModelGraph.from_model(before_model())
        sources = [e.source for e in graph.edges if e.target == self.layer]
        return self.layer, (sources[0] if sources else None)


@dataclasses.dataclass(frozen=True, eq=True, init=False)
class SetSettings(Edit):
    """Change settings in one layer's config (a Dropout rate, a LeakyReLU slope, a
    convolution's padding, `use_bias`...), keeping the weights that still fit.

    The layer is re-created from its config with these keys changed, under its
    name. Its weights whose name and shape stay are kept; a weight the new
    settings add (``use_bias=True``) starts from its initializer and is reported
    as new; one they take away is dropped. When its output shape changes
    (``padding="same"``), layers downstream whose weights no longer fit are
    refused unless ``reinitialize="downstream"``, as for any edit.

    >>> edit = SetSettings("dropout", rate=0.3)
    >>> edit.describe()
    "Set rate=0.3 on 'dropout'"
    >>> edit.to_code()
    "model = kerawidgets.set_settings(model, 'dropout', rate=0.3)"
    >>> from_json(edit.to_json()) == edit
    True
    """

    layer: str
    changes: tuple  # ((config key, value), ...) sorted by key; lists frozen as tuples
    required: ClassVar[tuple[str, ...]] = ("layer", "settings")
    panel_tab: ClassVar[str | None] = "Settings"
    panel_action: ClassVar[str | None] = "settings"
    structural: ClassVar[bool] = False

    def __init__(self, layer, settings: dict | None = None, /, **more):
        object.__setattr__(self, "layer", _single_name(layer, "layer"))
        if settings is not None and not isinstance(settings, dict):
            raise InvalidEditError(f"SetSettings of {self.layer!r}: give the settings as keywords "
                                   f"(rate=0.2) or a dict; got {shorten(settings)}.")
        given = {**(settings or {}), **more}
        if not given:
            raise InvalidEditError(f"SetSettings of {self.layer!r} changes nothing: name a setting "
                                   "and its value, e.g. SetSettings('dropout', rate=0.2).")
        changes = tuple(sorted((_setting_key(self.layer, k), _setting_value(self.layer, k, v))
                               for k, v in given.items()))
        object.__setattr__(self, "changes", changes)

    @property
    def settings(self) -> dict:
        """The new values by config key (tuples where a list was given)."""
        return dict(self.changes)

    def _text(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.changes)

    def describe(self):
        return f"Set {self._text()} on {self.layer!r}"

    def to_code(self, model_var="model"):
        return f"{model_var} = kerawidgets.set_settings({model_var}, {self.layer!r}, {self._text()})"

    def to_data(self):
        return {"type": self.kind, "layer": self.layer, "settings": self.settings}

    @classmethod
    def from_fields(cls, data, subnetworks=None):
        if not isinstance(data["settings"], dict):
            raise InvalidEditError(f"The SetSettings edit data's 'settings' must be a dict of "
                                   f"config keys to values; got {shorten(data['settings'])}.")
        return cls(data["layer"], data["settings"])

    def plan(self, model):
        """The layer, once its config is known to have these keys and to take these values."""
        plan = planning.Plan(self)
        target = planning.one_target(model, self.layer)
        planning.check_settings(target, self.settings)
        plan.add(target, planning.Action(self, configure=self.changes))
        return plan

    def shape_hint(self, kind, got):
        return ("Keep the settings that give the output shape the next layers were built for "
                "(for example the padding or strides they had), or replace the layers after it.")


def _setting_key(layer, key) -> str:
    if not isinstance(key, str) or not key.isidentifier() or key == "name":
        raise InvalidEditError(
            f"SetSettings of {layer!r}: {shorten(key)} is not a setting to change (a config key "
            "such as 'rate', 'padding' or 'use_bias'; rename a layer with ReplaceLayer).")
    return key


def _setting_value(layer, key, value):
    """`value` as the edit stores it: plain JSON values, lists frozen as tuples."""
    if isinstance(value, (list, tuple)):
        return tuple(_setting_value(layer, key, v) for v in value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item") and getattr(value, "shape", None) == ():  # a numpy scalar
        return value.item()
    raise InvalidEditError(
        f"SetSettings of {layer!r}: {key}={shorten(value)} is not a plain value (a number, "
        "text, True/False, None or a list of these). Change a layer object, an initializer or "
        "a regularizer with ReplaceLayer.")


def _kinds_text() -> str:
    """The edit classes, as a sentence lists them: ``SetActivation, ... or RemoveLayer``."""
    kinds = list(EDIT_TYPES)
    return " or ".join(filter(None, (", ".join(kinds[:-1]), kinds[-1])))


def _fits(got) -> str:
    return f" input of shape {shape_text(got)}" if got else " its input"


def _recipe_list(data, key) -> list:
    if not isinstance(data[key], list) or not data[key]:
        raise InvalidEditError(f"The {data['type']} edit data's {key!r} must be a non-empty list "
                               f"of layer recipes; got {shorten(data[key])}.")
    return data[key]


def _union(pairs) -> tuple[set, set]:
    classes, names = set(), set()
    for more_classes, more_names in pairs:
        classes |= more_classes
        names |= more_names
    return classes, names


def script_header(edits) -> list[str]:
    """The lines a script replaying `edits` needs first: ``import keras``,
    ``import kerawidgets``, an import for every layer class it names (keras-hub's,
    your own module's) and a ``register_activation`` call for every registered
    activation it uses (a comment instead when that cannot be written as code).

    >>> script_header([SetActivation("dense", "gelu")])
    ['import keras', 'import kerawidgets']
    """
    classes, names = _union(edit.names() for edit in edits)
    imports: list[str] = []
    comments: list[str] = []
    registrations: list[str] = []
    for cls in sorted(classes, key=lambda c: (c.__module__, c.__name__)):
        line = class_import(cls)
        if line is None:
            continue
        (comments if line.startswith("#") else imports).append(line)
    for name in sorted(names):
        more, line = activations.registration_code(name)
        imports += more
        (comments if line.startswith("#") else registrations).append(line)
    lines = ["import keras", "import kerawidgets", *dict.fromkeys(imports)]
    return lines + ([""] if comments or registrations else []) + comments + registrations


def _with_comments(specs, line) -> str:
    """`line` preceded by a comment line for each sub-network it names."""
    comments = [c for c in (s.code_comment() for s in specs) if c]
    return "\n".join([*comments, line])


def _specs_to_code(specs, last_named=True) -> str:
    """Code for the new layers; `last_named=False` when the last one takes the old name."""
    codes = [s.to_code(keep_name=last_named or i < len(specs) - 1) for i, s in enumerate(specs)]
    return codes[0] if len(codes) == 1 else "[" + ", ".join(codes) + "]"


def from_data(data: dict, subnetworks=None) -> Edit:
    """Rebuild an edit from `edit.to_data()` (its class reads its own fields).

    `subnetworks` maps a sub-network's name to the `keras.Model` a
    `ReplaceLayer` used (JSON stores only a reference to it); without it such an
    edit raises `SubnetworkNotStoredError` saying what to pass.
    """
    if not isinstance(data, dict):
        raise InvalidEditError(f"An edit's data must be a dict (edit.to_data()); got "
                               f"{type(data).__name__} {shorten(data)}.")
    kind = data.get("type")
    cls = EDIT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise InvalidEditError(f"Unknown edit type {shorten(kind)}; known: {', '.join(EDIT_TYPES)}.")
    missing = [k for k in cls.required if k not in data]
    if missing:
        raise InvalidEditError(
            f"The {kind} edit data {shorten(data)} lacks {', '.join(map(repr, missing))}; it "
            f"takes the keys {', '.join(map(repr, ('type', *cls.required)))} "
            "(as edit.to_data() writes them)."
        )
    return cls.from_fields(data, subnetworks)


def from_json(text: str, subnetworks=None) -> Edit:
    return from_data(json.loads(text), subnetworks)


def history_to_json(edits) -> str:
    """A list of edits as one JSON document (the editor's saved history)."""
    return json.dumps([e.to_data() for e in edits], indent=1, default=_json_default)


def history_from_json(text: str, subnetworks=None) -> list[Edit]:
    return [from_data(d, subnetworks) for d in json.loads(text)]


def as_edit(value) -> Edit:
    if isinstance(value, Edit):
        return value
    if isinstance(value, dict):
        return from_data(value)
    raise InvalidEditError(
        f"{'None' if value is None else type(value).__name__ + ' ' + shorten(value)} is not an edit. Use "
        f"kerawidgets.edits.{_kinds_text()} (or their dict form, `edit.to_data()`)."
    )
