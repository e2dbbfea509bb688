"""Subclassed models (issue 14): graphs found by tracing a copy, edits into the same class."""

import keras
import numpy as np
import pytest

from kerawidgets import naming, subclassed, targets
from kerawidgets.edits import InsertLayer, RemoveLayer, ReplaceLayer, SetActivation, SetSettings
from kerawidgets.errors import (
    InvalidEditError,
    SaveCheckError,
    ShapeMismatchError,
    UnknownLayerError,
    UnsupportedModelError,
)
from kerawidgets.graph import ModelGraph
from kerawidgets.rebuild import rebuild
from kerawidgets.saving import save_verified
from tests import _subclassed_models as sm
from tests.models import numpy_of


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
    assert graph.group("block0").class_name == "ResidualBlock"  # the user's class, as traced
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
    assert ids[4].startswith("ffn/input_layer")  # Keras numbers a Sequential's input per process
    assert ids[:4] + ids[5:] == ["x", "att", "add", "norm1", "ffn/ffn_in", "ffn/ffn_out",
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
    graph = ModelGraph.from_model(model)  # shapes from its build
    assert [n.id for n in graph.nodes] == ["small", "large"]
    assert graph.node("large").params == 16
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


# --- edits -------------------------------------------------------------------

#: name -> (builder, input shape, activation target, replacement target, replacement)
EDIT_CASES = {
    "mlp": (sm.mlp, (5,), "dense1", "head", lambda: keras.layers.Dense(3, activation="sigmoid")),
    "resnet_mlp": (sm.resnet_mlp, (8,), "blocks[1].inner", "blocks[0].add",
                   lambda: keras.layers.Average()),
    "transformer": (sm.transformer, (4, 8), "ffn.layers[0]", "norm2",
                    lambda: keras.layers.BatchNormalization()),
    "training_branch": (sm.training_branch, (5,), "dense", "drop",
                        lambda: keras.layers.GaussianDropout(0.2, seed=3)),
    "vae": (sm.vae, (6,), "encoder.hidden", "decoder.layers[1]",
            lambda: keras.layers.Dense(6, activation="tanh")),
    "value_branch": (sm.value_branch, (3,), "large", "small",
                     lambda: keras.layers.Dense(4, activation="sigmoid")),
}


def weights_by_attribute(model):
    return {e.attribute: [np.array(w) for w in e.layer.get_weights()]
            for e in subclassed.layer_tree(model) if subclassed._is_leaf(e.layer)}


def assert_kept_except(old, new, edited, *, kept_too=()):
    before, after = weights_by_attribute(old), weights_by_attribute(new)
    assert set(before) == set(after)
    for attribute, values in before.items():
        if attribute == edited and attribute not in kept_too:
            continue
        assert len(values) == len(after[attribute]), attribute
        for a, b in zip(values, after[attribute]):
            assert a.dtype == b.dtype and np.array_equal(a, b), attribute


def fit_one_step(model, shape):
    """One step of `fit`; every trainable weight moves (the copy calls the layers it trains)."""
    x = sm.data(shape, n=8, seed=5)
    start = [np.array(w) for w in model.trainable_weights]
    if isinstance(model, sm.VAE):
        model.compile(optimizer="adam", run_eagerly=True)  # so train_step counts each step
        steps = model.steps_run
        history = model.fit(x, epochs=1, batch_size=8, verbose=0)
        assert model.steps_run == steps + 1  # the class's own train_step ran
    elif isinstance(model, sm.ValueBranch) and keras.backend.backend() != "tensorflow":
        # jax's and torch's fit build the compiled loss by calling the model on symbolic
        # inputs, which a value-dependent call cannot take (the original fails the same way)
        return
    else:
        y = np.zeros_like(numpy_of(model(x)))
        # Python control flow on a tensor's value only runs eagerly
        model.compile(optimizer="adam", loss="mse", run_eagerly=isinstance(model, sm.ValueBranch))
        history = model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    if not isinstance(model, sm.ValueBranch):  # only the branch taken trains
        moved = [not np.array_equal(a, np.array(w)) for a, w in zip(start, model.trainable_weights)]
        assert all(moved), [w.path for w, m in zip(model.trainable_weights, moved) if not m]


@pytest.mark.parametrize("case", sorted(EDIT_CASES))
def test_activation_swap_keeps_class_weights_and_original(case):
    builder, shape, target, _, _ = EDIT_CASES[case]
    model = builder()
    before = snapshot(model)
    result = rebuild(model, [SetActivation(target, "gelu")])
    new = result.model
    assert type(new) is type(model)
    entry = subclassed.find(new, target)
    assert entry.layer.get_config()["activation"] == "gelu"
    assert subclassed.find(model, target).layer.get_config()["activation"] != "gelu"
    assert result.report[entry.path].status == "kept"
    assert result.report[entry.path].edited
    assert_kept_except(model, new, target, kept_too=(target,))
    assert_unchanged(model, before)
    fit_one_step(new, shape)
    assert_unchanged(model, before)


@pytest.mark.parametrize("case", sorted(EDIT_CASES))
def test_layer_replacement_keeps_class_weights_and_original(case):
    builder, shape, _, target, make = EDIT_CASES[case]
    model = builder()
    x = sm.data(shape, n=4, seed=2)
    expected = numpy_of(model(x)).shape
    before = snapshot(model)
    result = rebuild(model, [ReplaceLayer(target, make())])
    new = result.model
    assert type(new) is type(model)
    old_layer, new_layer = subclassed.find(model, target).layer, subclassed.find(new, target).layer
    assert new_layer.name == old_layer.name and new_layer is not old_layer
    assert type(new_layer) is type(make())
    assert result.report[subclassed.find(new, target).path].edited
    assert_kept_except(model, new, target)
    assert numpy_of(new(x)).shape == expected
    assert_unchanged(model, before)
    fit_one_step(new, shape)
    assert_unchanged(model, before)


def test_replacement_weights_are_kept_when_the_same_class_fits():
    model = sm.mlp()
    result = rebuild(model, [ReplaceLayer("head", keras.layers.Dense(3, activation="sigmoid"))])
    assert result.report["head"].status == "kept"
    assert_kept_except(model, result.model, "head", kept_too=("head",))


@pytest.mark.parametrize("build, target", [(sm.mlp, "dense1"),
                                            (sm.nested_in_functional, "inner_mlp/dense1")])
def test_replacement_that_changes_the_output_shape_is_refused_with_both_shapes(build, target):
    model = build()
    before = snapshot(model)
    with pytest.raises(ShapeMismatchError, match=r"'dense1'.*\(None, 16\).*\(None, 4\)"):
        rebuild(model, [ReplaceLayer(target, keras.layers.Dense(4))])
    assert_unchanged(model, before)


def test_unknown_sub_layer_is_refused_listing_attribute_paths():
    with pytest.raises(UnknownLayerError, match=r"blocks\[1\]\.inner"):
        rebuild(sm.resnet_mlp(), [SetActivation("blocks[7].inner", "gelu")])


def test_compiled_model_is_recompiled_and_report_says_so():
    model = sm.mlp()
    model.compile(optimizer="sgd", loss="mse")
    result = rebuild(model, [SetActivation("dense2", "tanh")])
    assert result.model.compiled and result.model.loss == "mse"
    assert type(result.model.optimizer) is type(model.optimizer)
    assert result.model.optimizer is not model.optimizer
    assert any("Recompiled" in note for note in result.report.notes)


def test_report_lists_every_layer_like_a_functional_rebuild():
    model = sm.resnet_mlp()
    result = rebuild(model, [SetActivation("blocks[0].inner", "gelu")])
    assert result.report.kept == ["stem", "block0/inner", "block0/outer", "block0/add",
                                  "block1/inner", "block1/outer", "block1/add", "head"]
    assert [o.layer for o in result.report.changed] == ["block0/inner"]
    assert "block0/inner: activation relu -> gelu" in str(result.report.groups()[0].describe())


# --- saving ------------------------------------------------------------------


def _outputs_match(model, x):
    expected = numpy_of(model(x))
    return lambda reloaded: float(np.max(np.abs(numpy_of(reloaded(x)) - expected)))


def test_edit_a_hard_coded_class_cannot_record_is_refused_at_save_saying_what_to_change(tmp_path):
    model = sm.hard_coded()
    result = rebuild(model, [SetActivation("hidden", "gelu")])
    assert any("cannot record the edit of 'hidden'" in note for note in result.report.notes)
    path = tmp_path / "edited.keras"
    with pytest.raises(SaveCheckError, match=r"'hidden'.*HardCoded.__init__ makes "
                       r"Dense\(activation='relu'\) there, not Dense\(activation='gelu'\)"
                       r".*argument of HardCoded.__init__.*get_config"):
        save_verified(result.model, str(path), _outputs_match(result.model, sm.data((3,))), 1e-5)
    assert not path.exists() and not list(tmp_path.iterdir())


def test_edit_a_class_config_records_saves_and_reloads_as_edited(tmp_path):
    model = sm.configurable()
    result = rebuild(model, [SetActivation("hidden", "tanh")])
    assert not any("cannot record" in note for note in result.report.notes)
    path = tmp_path / "edited.keras"
    x = sm.data((3,))
    how = save_verified(result.model, str(path), _outputs_match(result.model, x), 1e-5)
    assert how == "reloaded; outputs match"
    reloaded = keras.saving.load_model(str(path))
    assert type(reloaded) is sm.Configurable
    assert reloaded.hidden.get_config()["activation"] == "tanh"
    assert np.allclose(numpy_of(reloaded(x)), numpy_of(result.model(x)), atol=1e-6)


# --- the editor ----------------------------------------------------------------


def test_editor_selects_applies_plots_and_undoes_on_a_subclassed_model():
    from kerawidgets.widgets.editor import ModelEditor

    model = sm.resnet_mlp()
    before = snapshot(model)
    editor = ModelEditor(model, x=sm.data((8,), n=16))
    assert "subclassed" in editor.view.graph.note
    ids = [n.id for n in editor.view.graph.nodes]
    editor.select("block1/inner")
    assert editor.selected == "block1/inner" and editor.panel.activation.value == "relu"
    report = editor.apply(SetActivation("block1/inner", "gelu"))
    assert type(editor.model) is sm.ResNetMLP
    assert report["block1/inner"].status == "kept"
    assert editor.model.blocks[1].inner.get_config()["activation"] == "gelu"
    assert editor.comparison_image.value[:4] == b"\x89PNG"
    assert "gelu" in editor.to_code()
    editor.apply(ReplaceLayer("blocks[0].add", keras.layers.Average()))
    assert type(editor.model.blocks[0].add) is keras.layers.Average
    assert [n.id for n in editor.view.graph.nodes] == ids == [
        "x", "stem", "block0/input", "block0/inner", "block0/outer", "block0/add",
        "block1/input", "block1/inner", "block1/outer", "block1/add", "multiply", "head"]
    editor.undo()
    assert type(editor.model.blocks[0].add) is keras.layers.Add
    assert_unchanged(model, before)


def test_editor_takes_an_unbuilt_model_with_x():
    from kerawidgets.widgets.editor import ModelEditor

    model = sm.MLP(name="fresh")
    editor = ModelEditor(model, x=sm.data((5,), n=8))
    editor.apply(SetActivation("dense2", "tanh"))
    assert type(editor.model) is sm.MLP and not model.built


def test_editor_refuses_an_untraceable_call_saying_what_works():
    from kerawidgets.widgets.editor import ModelEditor

    with pytest.raises(UnsupportedModelError, match=r"could not be traced.*GraphView.*rebuild"):
        ModelEditor(sm.value_branch(), x=sm.data((3,)))


# --- a subclassed model nested in a functional model -------------------------------


def weights_by_path(model):
    """Every leaf layer's weights of a functional model, nested subclassed insides included."""
    return {naming.layer_path(path): [np.array(w) for w in layer.get_weights()]
            for path, layer in targets.walk_layers(model) if subclassed._is_leaf(layer)}


def assert_paths_kept(old, new, *, except_path=None):
    before, after = weights_by_path(old), weights_by_path(new)
    assert set(before) == set(after)
    for path, values in before.items():
        if path == except_path:
            continue
        assert len(values) == len(after[path]), path
        for a, b in zip(values, after[path]):
            assert a.dtype == b.dtype and np.array_equal(a, b), path


#: target as the user writes it -> (builder, input shape, the layer's path)
NESTED_TARGETS = {
    "inner_mlp/dense1": (sm.nested_in_functional, (5,), "inner_mlp/dense1"),
    "dense2": (sm.nested_in_functional, (5,), "inner_mlp/dense2"),
    "get_layer('inner_mlp').head": (sm.nested_in_functional, (5,), "inner_mlp/head"),
    "body/blocks[1].inner": (sm.nested_resnet, (8,), "body/block1/inner"),
}


@pytest.mark.parametrize("target", sorted(NESTED_TARGETS))
def test_activation_inside_a_nested_subclassed_model(target):
    builder, shape, path = NESTED_TARGETS[target]
    model = builder()
    outer, name = path.split("/", 1)
    inner = model.get_layer(outer)
    before, inner_before = snapshot(model), snapshot(inner)
    result = rebuild(model, [SetActivation(target, "gelu")])
    new_inner = result.model.get_layer(outer)
    assert type(new_inner) is type(inner) and new_inner is not inner
    assert subclassed.find(new_inner, name).layer.get_config()["activation"] == "gelu"
    assert subclassed.find(inner, name).layer.get_config()["activation"] != "gelu"
    assert result.report[path].status == "kept" and result.report[path].edited
    assert_paths_kept(model, result.model)  # the edited layer's weights too
    assert_unchanged(model, before)
    assert_unchanged(inner, inner_before)
    fit_one_step(result.model, shape)
    assert_unchanged(model, before)


@pytest.mark.parametrize("builder, shape, target, path, make", [
    (sm.nested_in_functional, (5,), "inner_mlp/head", "inner_mlp/head",
     lambda: keras.layers.Dense(3, activation="sigmoid")),
    (sm.nested_resnet, (8,), "body/blocks[0].add", "body/block0/add",
     lambda: keras.layers.Average()),
], ids=["dense", "merge"])
def test_replacement_inside_a_nested_subclassed_model(builder, shape, target, path, make):
    model = builder()
    outer = path.split("/", 1)[0]
    x = sm.data(shape, n=4, seed=2)
    expected = numpy_of(model(x)).shape
    before, inner_before = snapshot(model), snapshot(model.get_layer(outer))
    result = rebuild(model, [ReplaceLayer(target, make())])
    new_inner = result.model.get_layer(outer)
    assert type(new_inner) is type(model.get_layer(outer))
    assert type(subclassed.find(new_inner, path.split("/", 1)[1]).layer) is type(make())
    assert result.report[path].edited
    assert_paths_kept(model, result.model, except_path=path)
    assert numpy_of(result.model(x)).shape == expected
    assert_unchanged(model, before)
    assert_unchanged(model.get_layer(outer), inner_before)
    fit_one_step(result.model, shape)


def test_a_new_probe_sees_a_nested_model_as_it_is_after_an_in_place_change():
    from kerawidgets import set_activation_inplace
    from kerawidgets.probe import Probe

    model = sm.nested_in_functional()
    x = sm.data((5,))
    assert Probe(model, x).outputs(model)["inner_mlp/dense1"].min() >= 0.0  # relu
    set_activation_inplace(model, "inner_mlp/dense1", "tanh")
    inner = model.get_layer("inner_mlp")
    pre = numpy_of(model.get_layer("pre")(x))
    expected = np.tanh(pre @ numpy_of(inner.dense1.kernel) + numpy_of(inner.dense1.bias))
    after = Probe(model, x).outputs(model)["inner_mlp/dense1"]
    np.testing.assert_allclose(after, expected, rtol=1e-5, atol=1e-5)


def test_report_of_a_nested_edit_lists_the_layers_inside_in_graph_order():
    result = rebuild(sm.nested_in_functional(), [SetActivation("inner_mlp/dense2", "tanh")])
    assert [o.layer for o in result.report.outcomes] == [
        "pre", "inner_mlp/dense1", "inner_mlp/dense2", "inner_mlp/head"]
    assert [o.layer for o in result.report.changed] == ["inner_mlp/dense2"]


def test_nested_edit_a_class_config_records_saves_and_reloads_as_edited(tmp_path):
    model = sm.nested(sm.Configurable)
    result = rebuild(model, [SetActivation("inner/hidden", "tanh")])
    x = sm.data((3,))
    path = tmp_path / "edited.keras"
    assert save_verified(result.model, str(path), _outputs_match(result.model, x), 1e-5) == (
        "reloaded; outputs match")
    reloaded = keras.saving.load_model(str(path)).get_layer("inner")
    assert type(reloaded) is sm.Configurable
    assert reloaded.hidden.get_config()["activation"] == "tanh"


def test_nested_edit_a_hard_coded_class_cannot_record_is_refused_at_save(tmp_path):
    model = sm.nested(sm.HardCoded)
    result = rebuild(model, [SetActivation("inner/hidden", "gelu")])
    assert any(note.startswith("'inner': HardCoded's config cannot record the edit of 'hidden'")
               for note in result.report.notes)
    path = tmp_path / "edited.keras"
    with pytest.raises(SaveCheckError, match=r"In 'inner', HardCoded's config cannot record the "
                       r"edit of 'hidden'.*argument of HardCoded.__init__"):
        save_verified(result.model, str(path), _outputs_match(result.model, sm.data((3,))), 1e-5)
    assert not list(tmp_path.iterdir())
    untouched = tmp_path / "untouched.keras"  # the unedited model saves as before
    save_verified(model, str(untouched), _outputs_match(model, sm.data((3,))), 1e-5)
    assert untouched.exists()


def test_editor_applies_an_edit_inside_a_nested_subclassed_model():
    from kerawidgets.widgets.editor import ModelEditor

    model = sm.nested_in_functional()
    before = snapshot(model)
    editor = ModelEditor(model, x=sm.data((5,), n=16))
    editor.select("inner_mlp/dense1")
    assert editor.panel.activation.value == "relu"
    report = editor.apply(SetActivation("inner_mlp/dense1", "gelu"))
    assert report["inner_mlp/dense1"].status == "kept"
    assert type(editor.model.get_layer("inner_mlp")) is sm.MLP
    assert editor.model.get_layer("inner_mlp").dense1.get_config()["activation"] == "gelu"
    assert editor.comparison_image.value[:4] == b"\x89PNG"
    compared = editor.compare()  # the probe runs inside the nested model (its traced copy)
    assert compared["layer"] == "inner_mlp/dense1"
    assert compared["layer_stats"]["before"]["shape"] == [16, 16]
    assert compared["layer_stats"]["before"]["min"] == 0.0  # relu
    assert compared["layer_stats"]["after"]["min"] < 0.0  # gelu
    assert "'inner_mlp/dense1', 'gelu'" in editor.to_code()
    editor.undo()
    assert editor.model.get_layer("inner_mlp").dense1.get_config()["activation"] == "relu"
    assert_unchanged(model, before)


# --- the other edits: bulk targets, settings, and what insert and remove say --------


@pytest.mark.parametrize("builder, shape", [(sm.mlp, (5,)), (sm.nested_in_functional, (5,))],
                         ids=["own", "nested"])
def test_every_dense_by_class_and_by_predicate(builder, shape):
    model = builder()
    before = snapshot(model)
    result = rebuild(model, [SetActivation(keras.layers.Dense, "elu"),
                             SetActivation(lambda layer: layer.name == "head", "sigmoid")])
    dense = [(path, layer) for path, layer in targets.walk_layers(result.model)
             if isinstance(layer, keras.layers.Dense)]
    assert len(dense) >= 3
    for path, layer in dense:
        wanted = "sigmoid" if path[-1] == "head" else "elu"
        assert layer.get_config()["activation"] == wanted, path
    assert len(result.report.changed) == len(dense)
    assert_paths_kept(model, result.model)
    assert_unchanged(model, before)
    fit_one_step(result.model, shape)


def test_set_settings_on_a_subclassed_model_keeps_what_fits():
    model = sm.training_branch()
    before = snapshot(model)
    result = rebuild(model, [SetSettings("drop", rate=0.2), SetSettings("dense", use_bias=False)])
    new = result.model
    assert type(new) is sm.TrainingBranch
    assert new.drop.rate == 0.2 and not new.dense.use_bias
    assert np.array_equal(np.array(new.dense.kernel), np.array(model.dense.kernel))
    assert result.report["dense"].reason == "use_bias True -> False; bias (8,) dropped"
    assert result.report["drop"].reason == "rate 0.5 -> 0.2"
    assert_kept_except(model, new, "dense")
    assert_unchanged(model, before)
    fit_one_step(new, (5,))


def test_set_settings_inside_a_nested_subclassed_model():
    model = sm.nested_in_functional()
    result = rebuild(model, [SetSettings("inner_mlp/dense2", use_bias=False)])
    assert not result.model.get_layer("inner_mlp").dense2.use_bias
    assert model.get_layer("inner_mlp").dense2.use_bias
    fit_one_step(result.model, (5,))


def _suggested(message):
    """The ReplaceLayer(...) the message suggests, as an edit."""
    import re

    code = re.search(r"ReplaceLayer\((?:[^()]|\([^()]*\))*\)", message).group(0)
    return eval(code, {"keras": keras, "ReplaceLayer": ReplaceLayer})


def test_insert_is_refused_and_the_suggested_replacement_works():
    model = sm.mlp()
    before = snapshot(model)
    with pytest.raises(InvalidEditError, match=r"MLP is a subclassed model: its `call` method "
                       r"decides.*ReplaceLayer\('dense1', \[keras.layers.Dense\(units=16, "
                       r"activation='relu'\), keras.layers.Dropout\(rate=0.2\)\]\).*write the "
                       r"new layer into MLP.__init__") as refused:
        rebuild(model, [InsertLayer(after="dense1", layer=keras.layers.Dropout(0.2))])
    result = rebuild(model, [_suggested(str(refused.value))])
    new = result.model
    assert type(new) is sm.MLP and [type(lyr).__name__ for lyr in new.dense1.layers] == [
        "Dense", "Dropout"]
    assert np.array_equal(np.array(new.dense1.layers[0].kernel), np.array(model.dense1.kernel))
    x = sm.data((5,))
    np.testing.assert_allclose(numpy_of(new(x)), numpy_of(model(x)), atol=1e-6)
    assert result.report["dense1"].status == "kept"
    assert any("makes Dense there, not Sequential" in note for note in result.report.notes)
    assert_unchanged(model, before)
    fit_one_step(new, (5,))


def test_remove_is_refused_and_the_suggested_identity_works():
    model = sm.mlp()
    with pytest.raises(InvalidEditError, match=r"Remove 'dense2': MLP is a subclassed model.*"
                       r"ReplaceLayer\('dense2', keras.layers.Identity\(\)\).*delete the line "
                       r"calling it in MLP.call") as refused:
        rebuild(model, [RemoveLayer("dense2")])
    result = rebuild(model, [_suggested(str(refused.value))])
    assert type(result.model.dense2) is keras.layers.Identity
    assert_kept_except(model, result.model, "dense2")
    fit_one_step(result.model, (5,))


def test_insert_inside_a_nested_subclassed_model_is_refused_the_same_way():
    with pytest.raises(InvalidEditError, match=r"ReplaceLayer\('inner_mlp/dense1', \["):
        rebuild(sm.nested_in_functional(),
                [InsertLayer(after="inner_mlp/dense1", layer=keras.layers.Dropout(0.2))])


def test_editor_bulk_target_reaches_inside_a_nested_subclassed_model():
    """The panel's "apply to every layer like this" (`EditSession.bulk_target`)."""
    from kerawidgets.session import EditSession

    model = sm.nested_in_functional()
    session = EditSession(model, x=sm.data((5,), n=8))
    target = session.bulk_target(session.layer("inner_mlp/dense1"))
    assert target == ("pre", "inner_mlp/dense1", "inner_mlp/dense2")
    report = session.apply(SetActivation(target, "gelu"))
    assert [o.layer for o in report.changed] == list(target)
    inner = session.model.get_layer("inner_mlp")
    assert [inner.dense1.get_config()["activation"], inner.dense2.get_config()["activation"],
            inner.head.get_config()["activation"]] == ["gelu", "gelu", "softmax"]
