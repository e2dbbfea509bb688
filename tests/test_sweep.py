"""sweep: several candidate edits of one layer measured on the probe, none applied."""

import dataclasses
import importlib.util

import ipywidgets
import keras
import numpy as np
import pytest
from keras import layers
from matplotlib.figure import Figure
from models import mlp_64, numpy_of, two_branches, weights_of

import kerawidgets
from kerawidgets import edits
from kerawidgets.edits import InsertLayer, RemoveLayer, ReplaceLayer, SetActivation, SetSettings
from kerawidgets.errors import InvalidEditError, UnknownLayerError
from kerawidgets.statistics import agreement, layer_statistics
from kerawidgets.widgets import ModelEditor


def probe_data(n=32, dim=10, classes=5, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, dim)).astype("float32"), rng.integers(0, classes, size=n)


def nested():
    inner = keras.Sequential(
        [keras.Input((8,)), layers.Dense(6, activation="relu", name="d1"),
         layers.Dense(6, activation="sigmoid", name="d2")], name="backbone")
    inp = keras.Input((8,), name="x")
    return keras.Model(inp, layers.Dense(3, activation="softmax", name="top")(inner(inp)),
                       name="outer")


def expected_row(model, edit, x, y, focus, reinitialize=None):
    """The numbers of one candidate the slow way: a whole rebuild and plain forward passes."""
    new = kerawidgets.rebuild(model, [edit], reinitialize=reinitialize).model
    numbers = agreement(numpy_of(model(x)), numpy_of(new(x)), y)
    inner = keras.Model(new.inputs, new.get_layer(focus).output)  # a model on our copy
    return numbers, layer_statistics(numpy_of(inner(x)))


def assert_row_matches(row, numbers, stats):
    assert row.ok, row.error
    for key, mine in (("top1_agreement", row.top1_agreement), ("accuracy_after", row.accuracy),
                      ("loss_after", row.loss), ("max_abs_diff", row.max_abs_diff),
                      ("mean_abs_diff", row.mean_abs_diff)):
        if key not in numbers:  # no labels: no accuracy
            assert mine is None, key
            continue
        assert mine == pytest.approx(numbers[key], rel=1e-4, abs=1e-5), key
    for key, mine in (("mean", row.mean), ("std", row.std), ("dead_fraction", row.dead_fraction),
                      ("saturation", row.saturated_fraction)):
        assert mine == pytest.approx(stats[key], rel=1e-4, abs=1e-5), key


def test_activation_candidates_match_a_full_rebuild_and_leave_the_model_alone():
    model = mlp_64()
    x, y = probe_data()
    before = weights_of(model)
    nodes = {layer.name: len(layer._inbound_nodes) for layer in model.layers}
    names = ["relu", "tanh", "gelu", "sigmoid"]
    result = kerawidgets.sweep(model, "middle", names, x=x, y=y)
    assert [row.label for row in result.rows] == names
    for row, name in zip(result.rows, names):
        assert row.route == "tail" and row.layer == "middle"
        assert isinstance(row.edit, SetActivation) and row.edit.activation == name
        assert_row_matches(row, *expected_row(model, row.edit, x, y, "middle"))
    assert result.rows[0].max_abs_diff == 0.0 and result.rows[0].top1_agreement == 1.0
    assert 0.4 < result.rows[3].mean < 0.6 and result.rows[0].dead_fraction is not None
    for a, b in zip(before, weights_of(model)):
        np.testing.assert_array_equal(a, b)
    assert {layer.name: len(layer._inbound_nodes) for layer in model.layers} == nodes
    assert model.get_layer("middle").activation.__name__ == "relu"
    assert result.baseline["accuracy"] == pytest.approx(agreement(model(x), model(x), y)["accuracy_before"])


def test_a_candidate_that_cannot_be_built_is_a_row_with_its_error():
    model = mlp_64()
    x, y = probe_data()
    wider = ReplaceLayer("middle", layers.Dense(32, activation="relu"))
    result = kerawidgets.sweep(model, "middle", ["tanh", "no_such_activation", wider, 42], x=x, y=y)
    ok, unknown, shape, junk = result.rows
    assert ok.ok and not unknown.ok and not shape.ok and not junk.ok
    assert "no_such_activation" in unknown.error and "register_activation" in unknown.error
    assert "head" in shape.error  # the downstream layer whose kernel no longer fits
    assert junk.label == "42"
    assert [row.label for row in result.ranked()] == ["tanh"]
    with pytest.raises(InvalidEditError, match="could not be built"):
        result.apply(1)
    again = kerawidgets.sweep(model, "middle", [wider], x=x, y=y, reinitialize="downstream")
    assert again.rows[0].ok and again.rows[0].route == "tail"
    assert "reinitialised" in again.rows[0].weights and again.rows[0].max_abs_diff > 0


def test_replace_insert_and_remove_candidates_measure_the_right_layer():
    model = mlp_64()
    x, y = probe_data()
    replace = ReplaceLayer("middle", layers.Dense(64, activation="elu"))
    insert = InsertLayer("middle", layers.LayerNormalization())
    remove = RemoveLayer("middle")
    result = kerawidgets.sweep(model, "middle", [replace, insert, remove], x=x, y=y)
    r, i, m = result.rows
    assert r.ok and r.route == "tail" and r.layer == "middle"
    assert_row_matches(r, *expected_row(model, replace, x, y, "middle"))
    assert i.ok and i.layer not in (None, "middle")
    numbers, stats = expected_row(model, insert, x, y, i.layer)
    assert_row_matches(i, numbers, stats)
    assert i.mean == pytest.approx(0.0, abs=1e-5)  # layer normalisation centres each sample
    # Removing "middle" (64 -> 64 units) feeds "hidden"'s output to "head": its statistics
    # are those of the layer feeding the removed one.
    assert m.ok and m.weights is not None
    hidden = layer_statistics(numpy_of(keras.Model(model.inputs, model.get_layer("hidden").output)(x)))
    assert m.mean == pytest.approx(hidden["mean"], rel=1e-5)


def test_settings_candidate_measures_the_layer_it_re_creates():
    model = mlp_64()
    x, y = probe_data()
    edit = SetSettings("middle", use_bias=False)
    (row,) = kerawidgets.sweep(model, "middle", [edit], x=x, y=y).rows
    assert row.ok and row.route == "tail" and row.layer == "middle", row.error
    assert_row_matches(row, *expected_row(model, edit, x, y, "middle"))


def test_an_edit_type_sweep_never_named_is_measured_where_its_focus_says(monkeypatch):
    # Defining an Edit subclass registers it: in a copy of the registry, dropped afterwards.
    monkeypatch.setattr(edits, "EDIT_TYPES", dict(edits.EDIT_TYPES))

    @dataclasses.dataclass(frozen=True, eq=True)
    class ActivationSeenAtHead(SetActivation):
        def focus(self, report, before_model, before, after):
            return None, "head"

    assert edits.EDIT_TYPES["ActivationSeenAtHead"] is ActivationSeenAtHead
    model = mlp_64()
    x, y = probe_data()
    edit = ActivationSeenAtHead("middle", "tanh")
    (row,) = kerawidgets.sweep(model, "middle", [edit], x=x, y=y).rows
    assert row.ok and row.layer == "head", row.error  # not "middle", the layer it edited
    assert_row_matches(row, *expected_row(model, edit, x, y, "head"))


def test_upstream_edit_and_branches_fall_back_or_cut_correctly():
    model = two_branches()
    x = np.random.default_rng(2).normal(size=(24, 8)).astype("float32")
    upstream = SetActivation("branch_b", "relu")  # not downstream of branch_a
    result = kerawidgets.sweep(model, "branch_a", ["elu", upstream], x=x)
    elu, up = result.rows
    assert elu.route == "tail" and up.route == "full"
    assert_row_matches(elu, *expected_row(model, elu.edit, x, None, "branch_a"))
    assert_row_matches(up, *expected_row(model, upstream, x, None, "branch_b"))
    assert elu.accuracy is None and elu.top1_agreement is not None


def test_nested_and_sequential_models():
    model = nested()
    x = np.random.default_rng(3).normal(size=(16, 8)).astype("float32")
    result = kerawidgets.sweep(model, "backbone/d2", ["sigmoid", "tanh"], x=x)
    assert all(row.ok for row in result.rows), [row.error for row in result.rows]
    assert result.rows[0].max_abs_diff == 0.0 and result.rows[1].max_abs_diff > 0
    new = kerawidgets.rebuild(model, [result.rows[1].edit]).model
    np.testing.assert_allclose(result.rows[1].max_abs_diff,
                               np.abs(numpy_of(new(x)) - numpy_of(model(x))).max(), rtol=1e-4)
    assert result.rows[1].layer == "backbone/d2"
    backbone = new.get_layer("backbone")  # our rebuilt copy
    d2 = numpy_of(keras.Model(backbone.inputs, backbone.get_layer("d2").output)(x))
    assert result.rows[1].mean == pytest.approx(float(d2.mean()), rel=1e-4)
    seq = keras.Sequential([keras.Input((10,)), layers.Dense(8, activation="relu", name="a"),
                            layers.Dense(4, activation="softmax", name="b")], name="seq")
    x, y = probe_data(classes=4)
    result = kerawidgets.sweep(seq, "a", ["relu", "selu"], x=x, y=y)
    assert [row.route for row in result.rows] == ["tail", "tail"]
    assert_row_matches(result.rows[1], *expected_row(seq, result.rows[1].edit, x, y, "a"))


def test_result_records_figure_apply_and_progress():
    model = mlp_64()
    x, y = probe_data()
    steps = []
    result = kerawidgets.sweep(model, "hidden", ["relu", "tanh", "bogus"], x=x, y=y,
                               progress=lambda i, n, text: steps.append((i, n)))
    assert steps == [(0, 4), (1, 4), (2, 4), (3, 4)]
    records = result.records()
    assert records[1]["edit"] == result.rows[1].edit.describe() and records[2]["error"]
    assert set(records[0]) >= {"label", "top1_agreement", "accuracy", "loss", "max_abs_diff",
                               "mean_abs_diff", "mean", "std", "dead_fraction",
                               "saturated_fraction", "error"}
    if importlib.util.find_spec("pandas"):
        frame = result.to_dataframe()
        assert list(frame["label"]) == ["relu", "tanh", "bogus"]
    else:
        with pytest.raises(ModuleNotFoundError, match="records"):
            result.to_dataframe()
    assert result.default_metric() == "accuracy"
    assert result.best("max_abs_diff").label == "relu"
    with pytest.raises(InvalidEditError, match="Unknown sweep metric"):
        result.ranked("speed")
    fig = result.figure()
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:3] == ["original", "relu", "tanh"] and titles[-1].startswith("accuracy")
    applied = result.apply(1)
    assert applied.model.get_layer("hidden").activation.__name__ == "tanh"
    assert model.get_layer("hidden").activation.__name__ == "relu"
    with pytest.raises(UnknownLayerError):
        kerawidgets.sweep(model, "hiden", ["relu"], x=x)


def test_editor_sweep_uses_its_probe_and_applies_a_row_as_a_history_step():
    model = mlp_64()
    x, y = probe_data()
    editor = ModelEditor(model, x, y)
    editor.select("middle")
    result = editor.sweep(candidates=["tanh", "gelu"])
    assert result.layer == "middle" and editor.model is model and editor.history == []
    report = result.apply(1)
    assert editor.history == [SetActivation("middle", "gelu")] and report["middle"].status == "kept"
    assert editor.compare()["agreement"]["accuracy_after"] == pytest.approx(result.rows[1].accuracy)


def test_the_tail_copies_only_downstream_layers_and_matches_a_cut_whole_copy():
    from kerawidgets.probe import Probe
    from kerawidgets.sweep import _Tail, _tail_from_copy, _tail_from_original

    model = two_branches()
    x = np.random.default_rng(4).normal(size=(20, 8)).astype("float32")
    probe = Probe(model, x, batch_size=8)
    tail = _Tail(model, "branch_a", probe)
    assert tail.kind == "layers"
    assert sorted(layer.name for layer in tail.model.layers if layer.weights) == ["branch_a", "out"]
    np.testing.assert_allclose(tail.output, numpy_of(model(x)), atol=1e-5)
    small, values, _ = _tail_from_original(model, "gate", probe)
    whole, head_values, _ = _tail_from_copy(model, "gate", probe)
    np.testing.assert_allclose(numpy_of(small(values[0])), numpy_of(whole(head_values[0])),
                               atol=1e-6)


def test_compare_several_in_the_editor_panel_runs_a_sweep_and_applies_a_row():
    model = mlp_64()
    x, y = probe_data()
    editor = ModelEditor(model, x, y)
    compare = editor.compare_panel
    assert compare.run_button.disabled  # nothing selected yet
    editor.select("middle")
    assert not compare.run_button.disabled
    assert "activation: tanh" in compare.choices.options
    compare.widget.selected_index = 0  # opened: the layer types that fit are offered too
    assert any(key.startswith("replace with Dense") for key in compare.choices.options)
    compare.choices.value = ("activation: tanh", "activation: gelu", "replace with Dense")
    compare.run_button.click()
    assert "Compared 3 candidates for middle" in editor.panel.status.value
    assert "tanh" in compare.table.value and "gelu" in compare.table.value
    assert compare.image.value[:4] == b"\x89PNG" and len(compare.apply_buttons) == 3
    assert editor.history == []  # nothing applied by comparing
    tanh = next(b for b in compare.apply_buttons if b.description == "Apply tanh")
    buttons = {b.model_id for b in compare.apply_buttons}
    tanh.click()
    assert editor.history == [SetActivation("middle", "tanh")]
    assert compare.table.value == ""  # the results were about the model before
    assert not buttons & set(ipywidgets.widgets.widget._instances)  # their buttons closed
    assert compare.choices.value == ("activation: tanh", "activation: gelu", "replace with Dense")
    compare.choices.value = ()
    compare.run_button.click()
    assert "Pick at least one candidate" in editor.panel.status.value


def test_sweep_with_data_ranks_candidates_by_keras_evaluate_on_the_full_dataset():
    model = mlp_64()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = probe_data(n=16)
    full_x, full_y = probe_data(n=96, seed=5)
    steps = []
    result = kerawidgets.sweep(model, "middle", ["tanh", "sigmoid", "nope"], x=x, y=y,
                               data=(full_x, full_y),
                               progress=lambda i, n, text: steps.append((i, n)))
    assert steps[-1] == (5, 7) and len(steps) == 6  # 3 probed, 2 evaluated (one failed)
    assert result.default_metric() == "evaluation.accuracy"
    assert result.baseline["evaluation"] == pytest.approx(
        model.evaluate(full_x, full_y, verbose=0, return_dict=True))
    for row in result.rows[:2]:
        new = kerawidgets.rebuild(model, [row.edit]).model
        assert row.evaluation == pytest.approx(
            new.evaluate(full_x, full_y, verbose=0, return_dict=True))
    assert result.rows[2].evaluation is None
    ranked = result.ranked()
    assert [r.evaluation["accuracy"] for r in ranked] == sorted(
        (r.evaluation["accuracy"] for r in result.rows[:2]), reverse=True)
    assert [r.label for r in result.ranked("evaluation.loss")] == [
        r.label for r in sorted(result.rows[:2], key=lambda r: r.evaluation["loss"])]
    assert result.figure().axes[-1].get_title().startswith("evaluation.accuracy")


@pytest.mark.parametrize("budget", [2**30, 0])  # 0: the probe keeps no record of a pass
def test_each_candidate_runs_one_pass_of_the_tail_and_the_model_runs_once(monkeypatch, budget):
    from tests.models import CountCalls

    model = mlp_64()
    x, y = probe_data()  # 32 samples: 2 batches of 16
    probe = kerawidgets.Probe(model, x, y, memory_budget=budget)
    calls = CountCalls(monkeypatch)
    result = kerawidgets.sweep(model, "middle", ["relu", "tanh", "gelu"], probe=probe)
    assert [row.route for row in result.rows] == ["tail"] * 3
    counts = {name: calls.names.count(name) for name in ("hidden", "middle", "head")}
    # The model: one pass (2 batches). The tail: one pass to check it, one per candidate.
    assert counts == {"hidden": 2, "middle": 2 + 2 + 3 * 2, "head": 2 + 2 + 3 * 2}
    calls.names.clear()
    full = kerawidgets.sweep(model, "middle", [SetActivation("hidden", "tanh")], probe=probe)
    assert full.rows[0].ok and full.rows[0].route == "full"  # upstream: the tail cannot hold it
    # The model once, the candidate once (its layer values and output from that pass).
    assert calls.names.count("hidden") == 2 + 2
