"""Subclassed models (issue 14): graphs found by tracing a copy, edits into the same class."""

import keras
import numpy as np
import pytest

from kerawidgets import subclassed
from kerawidgets.errors import UnsupportedModelError
from kerawidgets.graph import ModelGraph
from tests import _subclassed_models as sm


@pytest.fixture(autouse=True)
def _fresh_op_names():
    """Raw-op nodes take Keras' global auto-names ("add", "add_1"): start each test from a fresh
    counter so the expected ids do not depend on which tests ran before."""
    keras.backend.clear_session()


def snapshot(model):
    """What must not change on the user's model: config, weights, every layer's call count."""
    return {
        "config": model.get_config(),
        "weights": [np.array(w) for w in model.get_weights()],
        "nodes": {layer.name: (len(layer._inbound_nodes), len(layer._outbound_nodes))
                  for layer in model._flatten_layers()},
        "built": {layer.name: layer.built for layer in model._flatten_layers()},
    }


def assert_unchanged(model, before):
    after = snapshot(model)
    assert after["config"] == before["config"]
    assert after["nodes"] == before["nodes"]
    assert after["built"] == before["built"]
    assert len(after["weights"]) == len(before["weights"])
    for old, new in zip(before["weights"], after["weights"]):
        assert np.array_equal(old, new)


def edges(graph):
    return {(e.source, e.target) for e in graph.edges}


# --- graphs ------------------------------------------------------------------


def test_mlp_graph_nodes_edges_shapes_and_paths():
    model = sm.mlp()
    before = snapshot(model)
    graph = ModelGraph.from_model(model)
    assert [n.id for n in graph.nodes] == ["inputs", "dense1", "dense2", "head"]
    assert edges(graph) == {("inputs", "dense1"), ("dense1", "dense2"), ("dense2", "head")}
    assert graph.node("dense2").output_shapes == ((None, 16),)
    assert graph.node("head").output_shapes == ((None, 3),)
    assert graph.node("head").activation == "softmax"
    assert graph.outputs == ("head",)
    assert graph.attribute_path("dense1") == "dense1"
    assert graph.model_name == "mlp" and "subclassed" in graph.note
    assert_unchanged(model, before)


def test_residual_blocks_in_a_list_are_groups_with_their_skip_edge():
    model = sm.resnet_mlp()
    before = snapshot(model)
    graph = ModelGraph.from_model(model)
    assert {g.id for g in graph.groups} == {"block0", "block1"}
    assert graph.group("block1").members == (
        "block1/input", "block1/inner", "block1/outer", "block1/add")
    assert {("block1/input", "block1/add"), ("block1/outer", "block1/add"),
            ("block0/add", "block1/input"), ("block1/add", "multiply"),
            ("multiply", "head")} <= edges(graph)
    assert graph.node("multiply").family == "op"  # the raw `x * 0.5`
    assert graph.attribute_path("block1/inner") == "blocks[1].inner"
    assert graph.node("block1/add").output_shapes == ((None, 8),)
    assert_unchanged(model, before)


def test_transformer_block_attention_feed_forward_and_norms():
    model = sm.transformer()
    before = snapshot(model)
    graph = ModelGraph.from_model(model)
    ids = [n.id for n in graph.nodes]
    assert ids == ["x", "att", "add", "norm1", "ffn/input_layer", "ffn/ffn_in", "ffn/ffn_out",
                   "add_1", "norm2", "pool", "out"]
    assert graph.node("att").class_name == "MultiHeadAttention"
    assert graph.node("att").output_shapes == ((None, 4, 8),)
    assert {("x", "att"), ("x", "add"), ("att", "add"), ("norm1", "add_1"),
            ("ffn/ffn_out", "add_1")} <= edges(graph)
    assert graph.attribute_path("ffn/ffn_in") == "ffn.layers[0]"
    assert graph.group("ffn").kind == "model"
    assert_unchanged(model, before)


def test_training_dependent_branch_traces_inference_graph():
    model = sm.training_branch()
    before = snapshot(model)
    graph = ModelGraph.from_model(model)
    assert [n.id for n in graph.nodes] == ["x", "dense", "bn", "drop", "head"]
    assert edges(graph) == {("x", "dense"), ("dense", "bn"), ("bn", "drop"), ("drop", "head")}
    assert_unchanged(model, before)


def test_vae_encoder_with_sampling_layer_and_decoder_are_groups():
    model = sm.vae()
    before = snapshot(model)
    graph = ModelGraph.from_model(model)
    assert {g.id for g in graph.groups} == {"encoder", "decoder"}
    assert {("encoder/z_mean", "encoder/sampling"), ("encoder/z_log_var", "encoder/sampling"),
            ("encoder/hidden", "encoder/z_mean")} <= edges(graph)
    sampler = [e for e in graph.edges if e.source == "encoder/sampling"]
    assert [graph.node(e.target).group for e in sampler] == ["decoder"]
    assert graph.node("encoder/sampling").output_shapes == ((None, 2),)
    assert graph.attribute_path("encoder/z_log_var") == "encoder.z_log_var"
    assert graph.attribute_path("decoder/dec_out") == "decoder.layers[1]"
    assert_unchanged(model, before)


def test_subclassed_model_nested_in_a_functional_model_is_a_group():
    model = sm.nested_in_functional()
    inner = model.get_layer("inner_mlp")
    before, inner_before = snapshot(model), snapshot(inner)
    graph = ModelGraph.from_model(model)
    assert graph.group("inner_mlp").members == (
        "inner_mlp/inputs", "inner_mlp/dense1", "inner_mlp/dense2", "inner_mlp/head")
    assert {("pre", "inner_mlp/inputs"), ("inner_mlp/dense2", "inner_mlp/head")} <= edges(graph)
    assert graph.outputs == ("inner_mlp/head",)
    assert graph.attribute_path("inner_mlp/head") == "get_layer('inner_mlp').head"
    assert_unchanged(model, before)
    assert_unchanged(inner, inner_before)


def test_value_dependent_call_falls_back_to_the_layer_tree_with_the_reason():
    model = sm.value_branch()
    before = snapshot(model)
    graph = ModelGraph.from_model(model, x=sm.data((3,)))
    assert [n.id for n in graph.nodes] == ["small", "large"]
    assert graph.edges == []
    assert "could not be traced" in graph.note and "symbolic" in graph.note
    assert_unchanged(model, before)


def test_unbuilt_model_without_shapes_is_refused_naming_what_to_pass():
    model = sm.MLP(name="fresh")
    with pytest.raises(UnsupportedModelError, match=r"x=.*input_shape="):
        ModelGraph.from_model(model)
    assert not model.built


@pytest.mark.parametrize("how", ["x", "input_shape"])
def test_unbuilt_model_with_x_or_input_shape_is_traced_and_stays_unbuilt(how):
    model = sm.MLP(name="fresh")
    given = {"x": sm.data((7,))} if how == "x" else {"input_shape": (None, 7)}
    graph = ModelGraph.from_model(model, **given)
    assert graph.node("dense1").input_shapes == ((None, 7),)
    assert not model.built and not model.dense1.built


def test_layer_tree_names_attribute_paths():
    model = sm.vae()
    tree = subclassed.layer_tree(model)
    assert [(e.attribute, e.path) for e in tree][:2] == [
        ("encoder", "encoder"), ("encoder.hidden", "encoder/hidden")]
    assert subclassed.find(model, "encoder.sampling").layer is model.encoder.sampling
    assert subclassed.find(model, "z_mean").layer is model.encoder.z_mean
    assert subclassed.find(model, "decoder/dec_out").layer is model.decoder.layers[1]


def test_graph_view_takes_a_subclassed_model():
    from kerawidgets.widgets.graph_view import GraphView

    model = sm.resnet_mlp()
    before = snapshot(model)
    view = GraphView(model)
    ids = {n["id"] for n in view.scene["nodes"]}
    assert "head" in ids
    assert_unchanged(model, before)
