import keras
import pytest

from kerawidgets.errors import UnknownLayerError
from kerawidgets.graph import ModelGraph, layer_family
from tests._graph_models import branchy, mobilenet, nested_two_levels


def _edges(graph):
    """Edges with the auto-numbered op names ("add_3") renamed to their class."""
    rename = {n.id: n.class_name for n in graph.nodes if n.family == "op"}
    return {(rename.get(e.source, e.source), rename.get(e.target, e.target)) for e in graph.edges}


def _ids(graph):
    return [n.class_name if n.family == "op" else n.id for n in graph.nodes]


def test_every_call_is_a_node_with_naming_ids():
    graph = ModelGraph.from_model(branchy())
    assert _ids(graph) == [
        "x", "shared", "shared:1", "Add", "GetItem",
        "seq/seq_in", "seq/i1", "seq/i2",
        "seq:1/seq_in", "seq:1/i1", "seq:1/i2", "y", "cat",
    ]
    assert [n.id for n in graph.nodes_of_layer("shared")] == ["shared", "shared:1"]
    assert [n.id for n in graph.nodes_of_layer("seq/i1")] == ["seq/i1", "seq:1/i1"]
    assert graph.nodes[3].family == "op"
    assert graph.node("shared:1").call_index == 1
    assert graph.node("shared").params == 72
    assert graph.node("cat").input_shapes == ((None, 4), (None, 3))
    assert graph.node("cat").output_shapes == ((None, 7),)


def test_edges_follow_data_flow_through_shared_layers_ops_and_nested_models():
    graph = ModelGraph.from_model(branchy())
    assert _edges(graph) == {
        ("x", "shared"), ("shared", "shared:1"), ("shared", "Add"), ("shared:1", "Add"),
        ("Add", "GetItem"), ("GetItem", "seq/seq_in"),
        ("seq/seq_in", "seq/i1"), ("seq/i1", "seq/i2"),
        ("seq/i2", "seq:1/seq_in"),
        ("seq:1/seq_in", "seq:1/i1"), ("seq:1/i1", "seq:1/i2"),
        ("seq:1/i2", "cat"), ("y", "cat"),
    }
    assert set(graph.inputs) == {"x", "y"}
    assert graph.outputs == ("cat", "shared:1")
    assert graph.node("cat").is_output and graph.node("shared:1").is_output


def test_groups_for_nested_models_at_any_depth():
    graph = ModelGraph.from_model(nested_two_levels())
    groups = {g.id: g for g in graph.groups}
    assert set(groups) == {"mid", "mid/deep"}
    assert groups["mid"].parent is None and groups["mid/deep"].parent == "mid"
    assert groups["mid"].children == ("mid/deep",)
    assert groups["mid"].members == ("mid/mid_in", "mid/mid_add")
    assert groups["mid/deep"].members == ("mid/deep/deep_in", "mid/deep/deep_dense")
    assert groups["mid"].node_count == 4
    assert graph.ancestors("mid/deep/deep_dense") == ["mid", "mid/deep"]
    assert ("pre", "mid/mid_in") in _edges(graph)
    assert ("mid/mid_in", "mid/deep/deep_in") in _edges(graph)
    assert ("mid/deep/deep_dense", "mid/mid_add") in _edges(graph)
    assert ("mid/mid_add", "head") in _edges(graph)
    # A frozen nested model shows its layers as frozen.
    assert graph.node("mid/deep/deep_dense").trainable is False
    assert graph.node("pre").trainable is True
    assert graph.node("head").activation == "softmax"


def test_sequential_and_lookups():
    model = keras.Sequential([keras.Input((3,), name="in"), keras.layers.Dense(2, name="d")],
                             name="s")
    graph = ModelGraph.from_model(model)
    assert [n.id for n in graph.nodes] == ["in", "d"]
    assert graph.resolve("d")[0].id == "d"
    with pytest.raises(UnknownLayerError):
        graph.node("nope")
    data = graph.to_json()
    assert data["nodes"][1]["output_shapes"] == [[None, 2]]
    assert data["edges"] == [{"source": "in", "target": "d", "shape": [None, 3]}]


def test_mask_ops_are_nodes():
    inp = keras.Input((5,), dtype="int32", name="tokens")
    emb = keras.layers.Embedding(10, 4, mask_zero=True, name="emb")(inp)
    out = keras.layers.LSTM(3, name="lstm")(emb)
    graph = ModelGraph.from_model(keras.Model(inp, out))
    assert graph.node("lstm").family == "recurrent"
    assert {n.id for n in graph.nodes} >= {"tokens", "emb", "lstm"}
    assert ("emb", "lstm") in _edges(graph)


def test_does_not_mutate_the_model():
    model = branchy()
    before = [(layer.name, len(layer._inbound_nodes)) for layer in model.layers]
    weights = [w.numpy().copy() for w in model.weights]
    ModelGraph.from_model(model)
    assert [(layer.name, len(layer._inbound_nodes)) for layer in model.layers] == before
    assert all((a == w.numpy()).all() for a, w in zip(weights, model.weights))


def test_long_models_fold_blocks():
    model = mobilenet()
    graph = ModelGraph.from_model(model)
    assert len(graph.nodes) == len(model.layers)
    names = {g.id for g in graph.groups}
    assert {"block_1", "block_16"} <= names
    assert all(g.kind == "block" for g in graph.groups)
    assert graph.node("block_1_expand").group == "block_1"
    assert graph.node("Conv1").group is None
    # Every node is in exactly one place.
    counted = sum(len(g.members) for g in graph.groups)
    counted += sum(1 for n in graph.nodes if n.group is None)
    assert counted == len(graph.nodes)


def test_families():
    assert layer_family(keras.layers.BatchNormalization()) == "norm"
    assert layer_family(keras.layers.MaxPooling2D()) == "pool"
    assert layer_family(keras.layers.Add()) == "merge"
    assert layer_family(keras.layers.Flatten()) == "reshape"
    assert layer_family(keras.layers.ReLU()) == "activation"
    assert layer_family(keras.layers.Dense(1)) == "dense"


def test_many_blocks_fold_into_stages_that_hold_their_blocks():
    model = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(32, 32, 3))
    graph = ModelGraph.from_model(model)
    top = {g.id for g in graph.groups if g.parent is None}
    assert top == {"conv2", "conv3", "conv4", "conv5"}
    conv3 = graph.group("conv3")
    assert conv3.class_name == "Stage"
    assert set(conv3.children) == {f"conv3_block{i}" for i in range(1, 5)}
    assert graph.group("conv3_block2").parent == "conv3"
    assert graph.node("conv3_block2_1_conv").group == "conv3_block2"
    assert graph.ancestors("conv3_block2_1_conv")[:2] in (["conv3_block2", "conv3"], ["conv3", "conv3_block2"])


def test_activations_are_read_from_the_layers_when_asked(monkeypatch):
    """Building the graph reads no layer's activation (a get_config each); drawing reads
    only the nodes drawn; every node, when asked, says what a fresh read says, once."""
    from kerawidgets import activations
    from kerawidgets.layout import default_open_groups, layout

    model = mobilenet()
    read = []
    real = activations.layer_activation
    monkeypatch.setattr(activations, "layer_activation", lambda layer: read.append(layer.name) or real(layer))
    graph = ModelGraph.from_model(model)
    assert read == []
    drawn = layout(graph, default_open_groups(graph))
    drawn.scene()
    shown = {box.id for box in drawn.boxes.values() if box.kind == "node"}
    assert read and set(read) == {graph.node(i).name for i in shown}  # blocks closed: not read
    for node in graph.nodes:
        layer = None if node.family == "op" else model.get_layer(node.name)
        assert node.activation == (real(layer) if layer is not None else node.activation)
    assert sorted(read) == sorted({n.name for n in graph.nodes if n.family != "op"})  # once each
    assert graph.node("Conv1_relu").activation == "relu6"
    assert graph.node("Conv1_relu").to_json()["activation"] == "relu6"


def test_a_graph_keeps_the_activation_it_read_and_a_new_graph_reads_again():
    import dataclasses

    from kerawidgets.inplace import set_activation_inplace

    inp = keras.Input((4,), name="x")
    model = keras.Model(inp, keras.layers.Dense(2, activation="tanh", name="head")(inp))
    graph = ModelGraph.from_model(model)
    assert graph.node("head").activation == "tanh"
    set_activation_inplace(model, "head", "gelu")
    assert graph.node("head").activation == "tanh"  # read once: the graph as it was drawn
    again = ModelGraph.from_model(model)
    assert again.node("head").activation == "gelu"
    assert dataclasses.replace(again.node("head"), group="g").activation == "gelu"
