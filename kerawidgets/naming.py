"""Stable names for layers and layer calls, and how shapes are written, shared by every module.

A *layer path* names a layer inside nested models: the names of the models
that contain it (outermost first, the root model left out) and then its own
name, joined with "/". A *node id* names one call of a layer: its layer path,
plus ``":k"`` for the k-th call of a shared layer (k > 0; the first call has
no suffix).

>>> node_id(("backbone", "conv1"), 0)
'backbone/conv1'
>>> node_id(("dense",), 2)
'dense:2'
>>> split_node_id("backbone/conv1:1")
(('backbone', 'conv1'), 1)
"""

from __future__ import annotations

SEPARATOR = "/"
CALL_SEPARATOR = ":"


def layer_path(path) -> str:
    """Join a tuple of names into a layer path string."""
    return SEPARATOR.join(path)


def split_layer_path(path: str) -> tuple[str, ...]:
    return tuple(part for part in str(path).split(SEPARATOR) if part)


def node_id(path, call_index: int = 0) -> str:
    """The id of call number `call_index` of the layer at `path`."""
    text = layer_path(path) if not isinstance(path, str) else path
    return text if call_index == 0 else f"{text}{CALL_SEPARATOR}{call_index}"


def split_node_id(identifier: str) -> tuple[tuple[str, ...], int]:
    """Inverse of `node_id`: (path tuple, call index)."""
    text, _, index = str(identifier).rpartition(CALL_SEPARATOR)
    if text and index.isdigit():
        return split_layer_path(text), int(index)
    return split_layer_path(identifier), 0


def shape_text(shape) -> str:
    """A shape as people read it, in Python's tuple style; a list of shapes joined.

    The one spelling of shapes in the graph, the panels and every error message.

    >>> shape_text((None, 32, 32, 3))
    '(None, 32, 32, 3)'
    >>> shape_text([(None, 4), (None,)])
    '(None, 4), (None,)'
    """
    if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple)):
        return ", ".join(shape_text(s) for s in shape)
    return str(tuple(None if d is None else int(d) for d in shape))


def merged_order(before, after) -> list:
    """Layer paths or node ids of two versions of a model, in graph order.

    `after`'s order, with each id only `before` has (a removed layer) put
    back right after the id that preceded it in `before`.

    >>> merged_order(["in", "a", "drop", "b"], ["in", "a", "b", "new"])
    ['in', 'a', 'drop', 'b', 'new']
    """
    before = list(before)
    order = list(after)
    present = set(order)
    for index, key in enumerate(before):
        if key in present:
            continue
        anchor = next((k for k in reversed(before[:index]) if k in present), None)
        order.insert(0 if anchor is None else order.index(anchor) + 1, key)
        present.add(key)
    return order
