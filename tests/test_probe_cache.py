"""Tests of kerawidgets.probe_cache: which full outputs the probe keeps (checkpoints)."""

import keras
import pytest
from keras import layers

from kerawidgets.callgraph import CallGraph
from kerawidgets.probe_cache import _stand_ins, plan_checkpoints, tensor_bytes


def residual_stack(blocks=6, width=16, size=32):
    """Blocks of conv, batch norm, Add with the block's input, then a ReLU (ResNet's shape)."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((size, size, 3), name="image")
    x = layers.Conv2D(width, 3, padding="same", name="stem")(inp)
    for i in range(blocks):
        y = layers.Conv2D(width, 3, padding="same", name=f"b{i}_conv")(x)
        y = layers.BatchNormalization(name=f"b{i}_bn")(y)
        x = layers.Add(name=f"b{i}_add")([x, y])
        x = layers.ReLU(name=f"b{i}_out")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inp, layers.Dense(4, name="head")(x), name="residual")


def names(graph, keys):
    return {graph.by_id[k[0]].call.operation.name for k in keys}


def test_a_closing_activation_is_stood_in_for_by_the_add_before_it():
    graph = CallGraph(residual_stack())
    plan = plan_checkpoints(graph, 16, 0)
    stand_ins = _stand_ins(graph, plan.candidates)
    # only the weightless ReLU fed by the Add alone; not the pooling (smaller output than
    # its input), not the stem or the head (weights)
    assert {names(graph, [k]).pop(): names(graph, [v[1]]).pop()
            for k, v in stand_ins.items()} == {f"b{i}_out": f"b{i}_add" for i in range(6)}


def chosen(fraction):
    graph = CallGraph(residual_stack())
    candidates = plan_checkpoints(graph, 16, 0).candidates
    allotment = int(fraction * sum(size for _, _, size in candidates))
    keep = plan_checkpoints(graph, 16, allotment).keep
    assert keep and sum(tensor_bytes(graph.by_id[k[0]].call.output_tensors[k[1]], 16)
                        for k in keep) <= allotment
    return names(graph, keep), names(graph, [key for _, key, _ in candidates])


@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.75])
def test_checkpoints_fit_the_allotment_and_keep_adds_rather_than_their_activations(fraction):
    kept, _ = chosen(fraction)
    assert not any(name.endswith("_out") for name in kept)
    assert any(name.endswith("_add") for name in kept)


def test_every_candidate_is_kept_when_all_fit():
    kept, candidates = chosen(1.0)
    assert kept == candidates and {f"b{i}_out" for i in range(6)} <= kept
