"""Checks of the arguments of the public entry points, run before anything is changed.

Each check raises a `KerawidgetsError` (also a `TypeError` or `ValueError`)
whose message names the argument, what it got and what it takes; values
are shown shortened (`shorten`), so a million-character name does not make a
million-character message. `docs/bad_inputs.md` lists the bad inputs tried
and what each gets (written and checked by `tests/test_bad_inputs.py`).

>>> integer("history_size", 3, minimum=1)
3
>>> integer("history_size", "3", minimum=1)
Traceback (most recent call last):
...
kerawidgets.arguments.ArgumentError: history_size must be a whole number of at least 1; got str '3'.
>>> shorten("x" * 1000)
"'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…' (1000 characters)"
"""

from __future__ import annotations

import numbers

import keras
import numpy as np

from kerawidgets.errors import KerawidgetsError, UnsupportedModelError, shorten

__all__ = ["ArgumentError", "choice", "described", "edit_list", "integer", "labels", "model",
           "sequence", "shorten", "text"]


class ArgumentError(KerawidgetsError, TypeError, ValueError):
    """An argument of the wrong type or value, refused before anything changed."""


def described(value) -> str:
    """A value for a message: its type and its (shortened) repr."""
    if value is None:
        return "None"
    return f"{type(value).__name__} {shorten(value)}"


def model(value, argument: str = "model"):
    """`value` if it is a Keras model (whether kerawidgets can walk it is checked later)."""
    if not isinstance(value, keras.Model):
        raise UnsupportedModelError(
            f"{argument} must be a keras.Model (a Functional model or a built Sequential); "
            f"got {described(value)}."
        )
    return value


def integer(argument: str, value, *, minimum: int | None = None) -> int:
    """`value` as an int: a whole number (not a bool), at least `minimum`."""
    floor = "" if minimum is None else f" of at least {minimum}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentError(f"{argument} must be a whole number{floor}; got {described(value)}.")
    if minimum is not None and value < minimum:
        raise ArgumentError(f"{argument} must be a whole number{floor}; got {value}.")
    return int(value)


def choice(argument: str, value, choices):
    """`value` if it is one of `choices`."""
    if not any(value is c or (type(value) is type(c) and value == c) for c in choices):
        raise ArgumentError(
            f"{argument} must be one of {', '.join(repr(c) for c in choices)}; got {described(value)}."
        )
    return value


def text(argument: str, value, *, optional: bool = False, limit: int = 200) -> str | None:
    """`value` if it is a non-empty string of at most `limit` characters (or None if optional)."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        what = "a non-empty string" + (f" of at most {limit} characters" if limit else "")
        raise ArgumentError(f"{argument} must be {what}{' or None' if optional else ''}; "
                            f"got {described(value)}.")
    return value


def sequence(argument: str, value) -> list:
    """`value` as a list, if it is a list or tuple."""
    if not isinstance(value, (list, tuple)):
        raise ArgumentError(f"{argument} must be a list; got {described(value)}.")
    return list(value)


def edit_list(value) -> list:
    """The raw edits of `rebuild(model, edits)`: one edit or dict, or a list or tuple of them."""
    from kerawidgets.edits import EDIT_TYPES, Edit

    if isinstance(value, (Edit, dict)):
        return [value]
    if isinstance(value, (list, tuple)):
        return list(value)
    hint = ""
    if isinstance(value, str):
        hint = (f" To edit the layer {shorten(value)}, pass an edit naming it, such as "
                f"SetActivation({shorten(value)}, 'relu') or RemoveLayer({shorten(value)}).")
    raise ArgumentError(
        f"edits must be an edit (kerawidgets.edits.{', '.join(EDIT_TYPES)}), its dict form, or a list of them ([] for an exact copy); got "
        f"{described(value)}.{hint}"
    )


def labels(y, n: int, *, where: str = "y", error=None) -> np.ndarray | None:
    """Labels `y` for `n` samples as an array: one per sample, numbers (integer or one-hot).

    `error` is the class raised (default `ArgumentError`; the probe raises its
    `ProbeDataError`).
    """
    error = error or ArgumentError
    if y is None:
        return None
    if isinstance(y, (str, bytes)) or np.ndim(y) == 0:
        raise error(
            f"{where} must be one label per sample (an array of {n} integer or one-hot "
            f"labels); got {described(y)}."
        )
    try:
        array = np.asarray(y)
    except (TypeError, ValueError) as problem:
        raise error(f"{where} cannot be read as an array of labels ({problem}); "
                    f"give {n} integer or one-hot labels.") from problem
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise error(
            f"{where} must hold numbers (integer or one-hot labels); got an array of "
            f"{array.dtype} such as {shorten(array.ravel()[0] if array.size else None)}."
        )
    if array.shape[0] != n:
        raise error(
            f"{where} has {array.shape[0]} labels but the probe data has {n} samples: give "
            "exactly one label per sample."
        )
    return array
