"""The calls of a functional model in replay order, with kerawidgets node ids.

One walk over a model's graph, shared by the probe (which runs calls one by
one) and `kerawidgets.graph` (which draws them): each call gets its node id
(``name`` or ``name@k`` for the k-th call of a shared layer, see
`kerawidgets.naming.node_id`), and each symbolic tensor the call that
produced it.

>>> import keras
>>> inp = keras.Input((3,), name="x")
>>> graph = CallGraph(keras.Model(inp, keras.layers.Dense(2, name="d")(inp)))
>>> [(c.id, c.inputs) for c in graph.calls]
[('x', []), ('d', ['x'])]
"""

from __future__ import annotations

import dataclasses
import weakref

from kerawidgets import _keras_adapter as adapter
from kerawidgets import naming

__all__ = ["Call", "CallGraph", "calls", "node_ids"]


def calls(model) -> list:
    """`model`'s graph calls (`_keras_adapter.GraphCall`), inputs first, in replay order."""
    return adapter.graph_calls(model)


@dataclasses.dataclass
class Call:
    """One call: its local node id, the Keras call, and who produced each input."""

    id: str
    call: adapter.GraphCall
    inputs: list  # producer node id of each input tensor (None for a graph input)
    sources: list  # (producer node id, tensor index) of each input tensor, or None

    @property
    def is_input(self) -> bool:
        return self.call.is_input


class CallGraph:
    """The top-level calls of one model with their node ids and producers.

    It refers to its model weakly, so caching it does not keep the model alive.
    """

    def __init__(self, model):
        self._model = weakref.ref(model)
        self.calls: list[Call] = []
        self.producer: dict[int, tuple[str, int]] = {}  # id(tensor) -> (node id, tensor index)
        for call in calls(model):
            local = naming.node_id(call.operation.name, call.call_index)
            sources = [self.producer.get(id(t)) for t in call.input_tensors]
            inputs = [None if s is None else s[0] for s in sources]
            self.calls.append(Call(local, call, inputs, sources))
            for index, tensor in enumerate(call.output_tensors):
                self.producer[id(tensor)] = (local, index)
        self.by_id = {c.id: c for c in self.calls}
        self._inner: dict = {}  # call id -> the model its nested call runs (`inner`)
        self.inputs = adapter.flat_inputs(model)
        self.outputs = adapter.flat_outputs(model)

    @property
    def model(self):
        return self._model()

    def key(self, tensor):
        """(producer node id, tensor index) of a symbolic tensor of this graph, or None."""
        return self.producer.get(id(tensor))

    def nested(self, c: Call) -> bool:
        """Whether call `c` runs a nested model with a graph (whose inner calls get ids too):
        a functional or Sequential one, or a subclassed one whose `call` traces."""
        return not c.call.is_input and self.inner(c) is not None

    def inner(self, c: Call):
        """The model whose graph call `c` runs (`inner_model`), traced once per call graph:
        a new walk traces again, so it sees the model as it is then (weights trained or an
        activation set in place since)."""
        if c.id not in self._inner:
            self._inner[c.id] = inner_model(c.call)
        return self._inner[c.id]


def inner_model(call):
    """The model whose graph a nested call runs: a functional or Sequential model itself, a
    subclassed one its traced graph (`subclassed.trace_call`, on a copy with the model's
    weights as they are now, traced on this call's input shapes), else None."""
    from kerawidgets import subclassed

    op = call.operation
    if not adapter.is_model(op):
        return None
    if adapter.has_graph(op):
        return op
    if not subclassed.is_subclassed(op):
        return None
    try:
        traced = subclassed.trace_call(op, call)
    except Exception:  # shapes unknown: one node, as before
        return None
    return traced.functional


def node_ids(model) -> list[str]:
    """Every node id the probe reports for `model`, in graph order.

    Nested models contribute their own id (their output) and their inner
    calls as ``"outer/inner"``.

    >>> import keras
    >>> inner = keras.Sequential([keras.Input((3,), name="i"), keras.layers.Dense(3, name="d")],
    ...                          name="inner")
    >>> inp = keras.Input((3,), name="x")
    >>> node_ids(keras.Model(inp, inner(inp)))
    ['x', 'inner', 'inner/i', 'inner/d']
    """
    out = []
    graph = CallGraph(model)
    for c in graph.calls:
        out.append(c.id)
        if graph.nested(c):
            out.extend(c.id + naming.SEPARATOR + i for i in node_ids(graph.inner(c)))
    return out
