"""Per-layer actions: the few things the rebuild walk knows how to do at one layer.

An edit plans itself (`Edit.plan`, one method per edit class in
`kerawidgets.edits`) into a `Plan`: actions keyed by layer path, each one of
these meanings, the same in the Functional and the Sequential walk:

- `configure`: re-create the layer with some config keys changed (an
  activation, a Dropout rate, a padding), keeping the weights that still fit;
- `activation`: set an activation (on an activation layer such as ReLU this
  may turn it into an `Activation` layer of the same name);
- `replacement`: new layers instead of it (the last takes its name);
- `remove`: no layer; its input flows on;
- `insert_after`: new layers after it.

Building a plan resolves every target, so an unknown layer or an edit that
cannot apply is refused before any new layer exists.

>>> import keras
>>> from kerawidgets.edits import SetActivation
>>> inp = keras.Input((4,))
>>> model = keras.Model(inp, keras.layers.Dense(2, activation="relu", name="d")(inp))
>>> plan = plan_edit(model, SetActivation("d", "tanh"))
>>> plan.action_for(("d",), 0).activation
('activation', 'tanh')
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import keras

from kerawidgets import _keras_adapter as adapter
from kerawidgets import activations, targets
from kerawidgets.errors import InvalidEditError, LayerRecreationError, keras_reason

if TYPE_CHECKING:
    from kerawidgets.edits import Edit

# Layers that *are* an activation: an activation edit turns them into an
# `Activation` layer with the same name.
ACTIVATION_LAYER_CLASSES = tuple(
    cls
    for cls in (getattr(keras.layers, name, None) for name in activations.ACTIVATION_LAYERS)
    if cls is not None
)


@dataclasses.dataclass(frozen=True)
class Action:
    """What to do at one layer (or one call of a shared layer)."""

    edit: Edit
    activation: tuple[str, str] | None = None  # (attribute, activation name)
    configure: tuple = ()  # ((config key, new value), ...): re-create with these settings
    replacement: tuple = ()  # LayerSpecs
    trainable: bool | None = None
    remove: bool = False
    insert_after: tuple = ()  # LayerSpecs
    call_specific: bool = False  # applies to one call of a shared layer only


class Plan:
    """Actions keyed by layer path, optionally narrowed to one call index."""

    def __init__(self, edit: Edit | None = None):
        self.edit = edit
        self._by_layer: dict[tuple[str, ...], Action] = {}
        self._by_call: dict[tuple[tuple[str, ...], int], Action] = {}

    def add(self, target: targets.Target, action: Action) -> None:
        if target.call_index is None:
            self._by_layer[target.path] = action
        else:
            self._by_call[(target.path, target.call_index)] = dataclasses.replace(
                action, call_specific=True
            )

    def action_for(self, path, call_index: int) -> Action | None:
        return self._by_call.get((tuple(path), call_index)) or self._by_layer.get(tuple(path))

    def touches_inside(self, path) -> bool:
        """True when some action targets a layer nested under `path`."""
        path = tuple(path)
        keys = list(self._by_layer) + [p for p, _ in self._by_call]
        return any(len(k) > len(path) and k[: len(path)] == path for k in keys)

    def actions(self) -> list[tuple[tuple[str, ...], int | None, Action]]:
        """(layer path, call index or None for every call, action), in the order added."""
        return ([(path, None, action) for path, action in self._by_layer.items()]
                + [(path, index, action) for (path, index), action in self._by_call.items()])

    @property
    def targets(self) -> list[str]:
        keys = list(self._by_layer) + [p for p, _ in self._by_call]
        return ["/".join(k) for k in keys]

    def __bool__(self):
        return bool(self._by_layer or self._by_call)


def supports_activation(layer, attribute="activation", *, where=None, strict=False) -> bool:
    """Whether an activation edit applies to `layer`.

    A layer whose `get_config()` fails cannot be re-created, so no edit of it
    can work: with `strict=True` (what planning an edit uses) that raises
    `LayerRecreationError` naming `where` (the layer's path) and saying how to
    fix `get_config`; without it (a panel asking what to offer) the answer is
    False.
    """
    if attribute == "activation" and isinstance(layer, ACTIVATION_LAYER_CLASSES):
        return True
    try:
        layer.get_config()
    except Exception as error:
        if strict:
            raise LayerRecreationError.get_config_failed(layer, where or layer.name, error) from error
        return False
    return attribute in activations.activation_settings(layer)


def plan_edit(model, edit: Edit) -> Plan:
    """Resolve `edit` against `model` into a `Plan`, refusing edits that cannot apply
    (each edit class plans itself: `Edit.plan`)."""
    from kerawidgets.edits import Edit

    if not isinstance(edit, Edit):
        raise InvalidEditError(f"Unknown edit {edit!r}.")
    with targets.one_trace_each():  # its lookups share one trace of a nested subclassed model
        return edit.plan(model)


def one_target(model, spec) -> targets.Target:
    """The one layer `spec` names in `model` (refused when it names several)."""
    (target,) = targets.resolve(model, spec, allow_many=False)
    return target


def no_activation_message(target, attribute) -> str:
    layer = target.layer
    has = activations.activation_settings(layer) if not adapter.is_model(layer) else {}
    if has:
        settings = ", ".join(f"{k!r} ({v})" for k, v in has.items())
        return (
            f"Layer {target.path_str!r} ({type(layer).__name__}) has no {attribute!r} activation "
            f"setting; its activation settings are {settings}. Pass one of them as attribute=, "
            f"e.g. SetActivation({target.path_str!r}, 'gelu', attribute={next(iter(has))!r})."
        )
    return (
        f"Layer {target.path_str!r} ({type(layer).__name__}) has no {attribute!r} setting (it has "
        "no activation setting at all), so its activation cannot be changed. Pick a layer with an "
        "activation (Dense, Conv2D, an Activation or ReLU layer...), or add one after it: "
        f"InsertLayer(after={target.path_str!r}, layer=keras.layers.Activation('gelu'))."
    )


def check_settings(target: targets.Target, settings: dict) -> None:
    """Refuse settings `target`'s layer has not, or that its class cannot be made with,
    before the rebuild (a `SetSettings` edit)."""
    layer = target.layer
    if adapter.is_model(layer):
        raise InvalidEditError(f"{target.path_str!r} is a model; change the settings of the "
                               "layers inside it instead.")
    try:
        config = layer.get_config()
    except Exception as error:
        raise LayerRecreationError.get_config_failed(layer, target.path_str, error) from error
    unknown = [k for k in settings if k not in config]
    cls = type(layer).__name__
    if unknown:
        known = ", ".join(k for k in config if k not in ("name", "trainable", "dtype"))
        raise InvalidEditError(
            f"Layer {target.path_str!r} ({cls}) has no setting {', '.join(map(repr, unknown))}; "
            f"its settings are {known or 'none'}.")
    new = {**config, **{k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}}
    try:
        type(layer).from_config(new)
    except Exception as error:
        shown = ", ".join(f"{k}={v!r}" for k, v in settings.items())
        raise InvalidEditError(
            f"Layer {target.path_str!r} ({cls}) cannot be made with {shown}: "
            f"{_from_config_reason(error)} Nothing was changed; pick a value its class accepts."
        ) from error


def _from_config_reason(error) -> str:
    """Why `from_config` failed, without the config Keras' deserializer prints first."""
    text = str(error)
    marker = "Exception encountered:"
    reason = text.split(marker, 1)[1].strip() if marker in text else keras_reason(error)
    return reason if reason.endswith((".", "!", "?")) else reason + "."


def check_removable(model, target) -> None:
    parent = targets.parent_model(model, target.path)
    for call in targets.graph_calls(parent):
        if call.operation is not target.layer:
            continue
        if len(call.input_tensors) != 1 or len(call.output_tensors) != 1:
            raise InvalidEditError(
                f"Layer {target.path_str!r} ({type(target.layer).__name__}) takes "
                f"{len(call.input_tensors)} inputs and gives {len(call.output_tensors)} outputs; "
                "only a layer with one input and one output can be removed (its input then "
                "flows to its consumers). Replace it instead, e.g. with a merge layer."
            )
        inputs = adapter.flat_inputs(parent)
        if any(t is call.output_tensors[0] for t in adapter.flat_outputs(parent)) and any(
            t is call.input_tensors[0] for t in inputs
        ):
            raise InvalidEditError(
                f"Removing {target.path_str!r} would connect an input straight to an output; "
                "replace it with keras.layers.Identity() instead."
            )
