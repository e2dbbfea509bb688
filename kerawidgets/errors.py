"""The one exception family of kerawidgets.

Every message names the layer, the shapes involved and what to do instead, so
the same text can be shown inline in the editor and raised from a script.

>>> from kerawidgets.errors import KerawidgetsError, UnknownLayerError
>>> issubclass(UnknownLayerError, KerawidgetsError)
True
"""

from __future__ import annotations

import difflib
import re


def close_names(name, known_names, n=3) -> list[str]:
    """Up to `n` known names close to `name`, ignoring case; a same-letters name first.

    >>> close_names("Gelu", ["elu", "gelu", "relu", "selu"])
    ['gelu', 'elu', 'selu']
    """
    if len(str(name)) > 200:  # no name is that long: nothing is close, and difflib would crawl
        return []
    known = list(known_names)
    by_lower: dict[str, list[str]] = {}
    for known_name in known:
        by_lower.setdefault(known_name.lower(), []).append(known_name)
    wanted = str(name).lower()
    if len(wanted) > 200:  # a pasted blob: nothing is close, and difflib would be slow
        return []
    close = [c for lower in difflib.get_close_matches(wanted, list(by_lower), n=n, cutoff=0.5)
             for c in by_lower[lower]]
    return close[:n]


class KerawidgetsError(Exception):
    """Base class of every error kerawidgets raises on purpose."""


SHOWN_CHARACTERS = 40


def shorten(value, limit: int = SHOWN_CHARACTERS) -> str:
    """`repr(value)` for a message, cut after `limit` characters of a long string.

    >>> shorten("dense")
    "'dense'"
    >>> shorten("a" * 100, limit=5)
    "'aaaaa…' (100 characters)"
    """
    if isinstance(value, str) and len(value) > limit:
        head = repr(value[:limit])
        return f"{head[:-1]}…{head[-1]} ({len(value)} characters)"
    text = repr(value)
    if len(text) > 2 * limit:
        return f"{text[:2 * limit]}… ({len(text)} characters)"
    return text


class UnknownLayerError(KerawidgetsError, KeyError):
    """An edit names a layer the model does not have."""

    def __init__(self, name, known_names, model_name="the model"):
        self.name = name
        close = close_names(name, known_names)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        message = (
            f"No layer named {shorten(name)} in {model_name}.{hint} "
            f"Use one of the names in `model.summary()` (nested layers as 'outer/inner')."
        )
        super().__init__(message)

    def __str__(self):  # KeyError would add quotes around the message
        return self.args[0]


class UnknownActivationError(KerawidgetsError, ValueError):
    """An activation name that is neither built in nor registered."""

    def __init__(self, name, known_names):
        self.name = name
        known = sorted(known_names)
        close = close_names(name, known)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        super().__init__(
            f"Unknown activation {shorten(name)}.{hint} Known activations: {', '.join(known)}. "
            "Register your own with kerawidgets.register_activation(name, fn)."
        )


class ShapeMismatchError(KerawidgetsError, ValueError):
    """An edit changes a shape so that a layer no longer fits."""

    def __init__(self, message, *, layer=None, expected=None, got=None, downstream=()):
        self.layer = layer
        self.expected = expected
        self.got = got
        self.downstream = list(downstream)
        super().__init__(message)


class InvalidEditError(KerawidgetsError, ValueError):
    """An edit that is not well formed or does not apply to its target."""


class UnsupportedModelError(KerawidgetsError, TypeError):
    """A model kerawidgets cannot walk: subclassed without a graph, or unbuilt."""


class LayerRecreationError(KerawidgetsError, TypeError):
    """A custom layer that cannot be re-created from its config."""

    @classmethod
    def get_config_failed(cls, layer, where, error) -> LayerRecreationError:
        """The error for a layer whose `get_config()` raised `error`."""
        name = type(layer).__name__
        return cls(
            f"Layer {where!r} ({name}) cannot be re-created: get_config() failed ({error}). "
            f"Give {name} a get_config() that returns every argument of its __init__ "
            "(start from `config = super().get_config()`), so kerawidgets can build a fresh copy."
        )


class SubnetworkNotStoredError(InvalidEditError):
    """Edit JSON refers to a `keras.Model` sub-network that it does not contain."""


class SaveCheckError(KerawidgetsError):
    """A model that cannot be saved to a `.keras` file that reloads to the same outputs."""


class UnregisteredActivationError(KerawidgetsError, ValueError):
    """A `.keras` file uses kerawidgets activations not registered in this process."""


class EditorClosedError(KerawidgetsError, RuntimeError):
    """An operation on a `ModelEditor` after its `close()`."""

    def __init__(self, model_name):
        super().__init__(
            f"This ModelEditor of {shorten(model_name)} was closed (editor.close()): its widgets, "
            "history and probe are gone. Make a new ModelEditor(model, x) to edit again.")


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_WRAPPER_LINE = re.compile(r"^(Exception encountered when calling|Exception encountered in)\b")


def keras_reason(error) -> str:
    """The reason in an error Keras raised, as one line.

    Keras wraps errors from `call` as "Exception encountered when calling
    X.call()." then the real reason, then "Arguments received by ...": keep
    the reason, not the wrapper.

    >>> keras_reason(ValueError("\\n".join([
    ...     "Exception encountered when calling Reshape.call().",
    ...     "total size of new array must be unchanged",
    ...     "Arguments received by Reshape.call(): ..."])))
    'total size of new array must be unchanged'
    """
    lines = [_ANSI.sub("", line).strip() for line in str(error).splitlines()]
    lines = [line for line in lines if line]
    useful = []
    for line in lines:
        if line.startswith("Arguments received by"):
            break
        if not _WRAPPER_LINE.match(line):
            useful.append(line)
    return (useful or lines or [type(error).__name__])[0]
