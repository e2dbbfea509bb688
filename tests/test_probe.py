"""Tests for kerawidgets.probe: probe data, summaries, memory budget, incremental recompute."""

import gc
import threading
import weakref

import keras
import numpy as np
import pytest
from keras import layers

import kerawidgets
from kerawidgets import _keras_adapter as adapter
from kerawidgets import probe as probe_mod
from kerawidgets import probe_run
from kerawidgets.errors import KerawidgetsError
from kerawidgets.probe import Probe, ProbeDataError, node_ids
from kerawidgets.statistics import LayerSummary, layer_statistics, sample_index
from tests import models
from tests.models import CountCalls, ThreadCalls, numpy_of


def branched():
    inp = keras.Input((8,), name="features")
    a = layers.Dense(6, activation="relu", name="branch_a")(inp)
    b = layers.Dense(4, activation="tanh", name="branch_b")(inp)
    merged = layers.Concatenate(name="concat")([a, b])
    skip = layers.Dense(10, name="skip")(inp)
    added = layers.Add(name="add")([merged, skip])
    hidden = layers.Dense(5, activation="relu", name="hidden")(added)
    out = layers.Dense(3, activation="softmax", name="out")(hidden)
    return keras.Model(inp, out, name="branched")


def two_inputs():
    img = keras.Input((6,), name="image")
    meta = keras.Input((2,), name="meta")
    h = layers.Dense(4, activation="relu", name="img_dense")(img)
    m = layers.Dense(4, name="meta_dense")(meta)
    joined = layers.Concatenate(name="join")([h, m])
    cls = layers.Dense(3, activation="softmax", name="cls")(joined)
    reg = layers.Dense(1, name="reg")(joined)
    return keras.Model({"image": img, "meta": meta}, [cls, reg], name="two_in")


def masked_text():
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    x = layers.Embedding(12, 4, mask_zero=True, name="emb")(tokens)
    x = layers.LSTM(5, name="lstm")(x)
    x = layers.Dropout(0.5, name="drop")(x)
    return keras.Model(tokens, layers.Dense(2, activation="softmax", name="head")(x), name="text")


def nested():
    inner = keras.Sequential(
        [keras.Input((8,)), layers.Dense(6, activation="relu", name="d1"),
         layers.Dense(6, activation="sigmoid", name="d2")], name="backbone")
    inp = keras.Input((8,), name="x")
    h = inner(inp)
    return keras.Model(inp, layers.Dense(2, name="top")(h), name="outer")


def assert_same(a, b, **tol):
    assert set(a) == set(b)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-6, atol=1e-6, err_msg=key, **tol)


def assert_run_matches(run, full):
    """Every summary of `run` describes the array of `full`: exact statistics, sampled values."""
    assert list(run.summaries) == list(full)
    for key, summary in run.summaries.items():
        values = full[key].ravel()
        np.testing.assert_allclose(summary.sample, values[sample_index(values.size)], rtol=1e-5,
                                   atol=1e-6, err_msg=key)
        exact = layer_statistics(full[key])
        got = summary.statistics()
        shares = exact  # shares of values: from the sample when the output is larger
        if not summary.exact:
            shares = layer_statistics(values[sample_index(values.size)],
                                      bounds=exact["saturation_bounds"])
        # float32 outputs of a model run in other batches are not bitwise equal under
        # jax's XLA (a conv's sums are ordered differently), hence 1e-4, not float64's 1e-5.
        for name in ("mean", "std", "min", "max", "dead_fraction"):
            assert got[name] == pytest.approx(exact[name], rel=1e-4, abs=1e-5), (key, name)
        for name in ("zero_fraction", "saturation"):
            assert got[name] == pytest.approx(shares[name], rel=1e-5, abs=1e-6), (key, name)


def data(n=20, dim=8):
    return np.random.default_rng(1).standard_normal((n, dim)).astype("float32")


# --- outputs and summaries ------------------------------------------------------


def test_outputs_every_call_in_one_pass_matches_model():
    model = branched()
    probe = Probe(model, data())
    outs = probe.outputs(model)
    assert list(outs) == ["features", "branch_a", "branch_b", "skip", "concat", "add", "hidden",
                          "out"] or set(outs) == set(node_ids(model))
    np.testing.assert_allclose(outs["out"], numpy_of(model(probe.x, training=False)), rtol=1e-6)
    np.testing.assert_allclose(probe.model_output(model), outs["out"])
    hidden = keras.Model(model.inputs, model.get_layer("hidden").output)
    np.testing.assert_allclose(outs["hidden"], numpy_of(hidden(probe.x)), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError):
        outs["out"][0, 0] = 1.0


def test_summaries_are_computed_once_and_describe_every_output():
    model = branched()
    probe = Probe(model, data())
    first = probe.summaries(model)
    assert first.kind == "full" and first.recomputed == list(first.summaries)
    assert_run_matches(first, Probe(model, data()).outputs(model))
    assert probe.cached(model)
    again = probe.summaries(model)
    assert again.kind == "cached" and again.calls_run == []
    assert again.summaries["out"] is first.summaries["out"]


def test_probing_adds_no_node_to_the_model():
    model = branched()
    counts = [adapter.inbound_call_count(layer) for layer in model.layers]
    probe = Probe(model, data())
    probe.summaries(model)
    new = kerawidgets.replace_activation(model, "hidden", "gelu")
    new_counts = [adapter.inbound_call_count(layer) for layer in new.layers]
    probe.summaries_after_edit(model, new, ["hidden"])
    probe.outputs(new)
    assert [adapter.inbound_call_count(layer) for layer in model.layers] == counts
    assert [adapter.inbound_call_count(layer) for layer in new.layers] == new_counts


def test_batches_are_capped_and_summaries_combine_them():
    model = branched()
    probe = Probe(model, data(50), batch_size=8, max_batches=3)
    assert probe.n == 24
    assert "first 24 of 50" in probe.description
    outs = probe.outputs(model)
    np.testing.assert_allclose(outs["out"], numpy_of(model(data(50)[:24], training=False)), rtol=1e-6)
    assert_run_matches(Probe(model, data(50), batch_size=8, max_batches=3).summaries(model), outs)


def test_nested_model_inner_calls_have_outer_inner_ids():
    model = nested()
    probe = Probe(model, data())
    outs = probe.outputs(model)
    assert {"backbone", "backbone/d1", "backbone/d2", "top"} <= set(outs)
    inner = model.get_layer("backbone")
    d1 = keras.Model(inner.inputs, inner.get_layer("d1").output)
    np.testing.assert_allclose(outs["backbone/d1"], numpy_of(d1(probe.x)), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(outs["backbone/d2"], outs["backbone"])
    assert_run_matches(Probe(model, data()).summaries(model), outs)


def test_shared_layer_calls_get_call_suffix():
    inp = keras.Input((4,), name="x")
    shared = layers.Dense(4, activation="tanh", name="shared")
    out = shared(shared(inp))
    model = keras.Model(inp, out)
    outs = Probe(model, data(dim=4)).outputs(model)
    assert {"shared", "shared:1"} <= set(outs)
    np.testing.assert_allclose(outs["shared:1"], numpy_of(shared(outs["shared"])), rtol=1e-6)


# --- probe data ---------------------------------------------------------------


def test_synthetic_data_is_labelled_and_seeded():
    model = branched()
    probe = Probe(model, batch_size=8, seed=3)
    assert probe.synthetic
    assert "SYNTHETIC" in probe.description and "seed 3" in probe.description
    assert probe.x.shape == (8, 8) and probe.x.dtype == np.float32
    np.testing.assert_array_equal(probe.x, Probe(model, batch_size=8, seed=3).x)
    assert not Probe(model, data()).synthetic


def test_synthetic_integer_inputs_fit_the_embedding():
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    model = keras.Model(tokens, layers.Embedding(4, 2, name="emb")(tokens))
    probe = Probe(model)
    assert probe.x.dtype == np.int32
    assert probe.x.min() >= 0 and probe.x.max() <= 3
    assert "integers 0..3" in probe.description


def test_dict_inputs_and_several_outputs():
    model = two_inputs()
    rng = np.random.default_rng(0)
    x = {"image": rng.standard_normal((10, 6)), "meta": rng.standard_normal((10, 2))}
    probe = Probe(model, x)
    outs = probe.outputs(model)
    assert outs["image"].dtype == np.float32
    cls, reg = probe.model_output(model)
    expected = numpy_of(model(probe.x, training=False))
    np.testing.assert_allclose(cls, expected[0], rtol=1e-6)
    np.testing.assert_allclose(reg, expected[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outs["reg"], reg)
    synthetic = Probe(model)
    assert set(synthetic.x) == {"image", "meta"}


def test_dataset_input_with_labels():
    import tensorflow as tf

    x = data(40)
    y = np.arange(40) % 3
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    model = branched()
    probe = Probe(model, ds, max_batches=2)
    assert probe.n == 16 and "dataset" in probe.description
    np.testing.assert_array_equal(probe.y, y[:16])
    np.testing.assert_allclose(probe.outputs(model)["out"], numpy_of(model(x[:16])), rtol=1e-6)
    # a dataset of x alone
    only_x = Probe(model, tf.data.Dataset.from_tensor_slices(x).batch(16))
    assert only_x.n == 40 and only_x.y is None


@pytest.mark.parametrize(
    "x, message",
    [
        (np.zeros((4, 7), "float32"), "expects (None, 8)"),
        (np.zeros((8,), "float32"), "unbatched"),
        ({"features": np.zeros((2, 8))}, None),
    ],
)
def test_bad_probe_data_is_refused_with_shapes(x, message):
    model = branched()
    if message is None:
        Probe(model, x)  # a dict keyed by the single input's name is fine
        return
    with pytest.raises(ProbeDataError) as info:
        Probe(model, x)
    assert message in str(info.value)
    assert "'features'" in str(info.value)
    assert isinstance(info.value, KerawidgetsError) and isinstance(info.value, ValueError)


def test_bad_dict_and_labels_are_refused():
    model = two_inputs()
    with pytest.raises(ProbeDataError, match="missing"):
        Probe(model, {"image": np.zeros((2, 6))})
    with pytest.raises(ProbeDataError, match="same number of samples"):
        Probe(model, {"image": np.zeros((2, 6)), "meta": np.zeros((3, 2))})
    with pytest.raises(ProbeDataError, match="one label per sample"):
        Probe(branched(), data(10), np.zeros(7))
    probe = Probe(branched(), data())
    with pytest.raises(ProbeDataError, match="Make a new Probe"):
        probe.outputs(models.mlp_64())


# --- masks and dropout ------------------------------------------------------------


def test_masks_and_dropout_run_in_inference_mode():
    model = masked_text()
    probe = Probe(model)
    x = probe.x.copy()
    x[:, 3:] = 0  # padding, masked
    probe = Probe(model, x)
    outs = probe.outputs(model)
    assert "not_equal" in outs or any("not_equal" in k for k in outs)
    np.testing.assert_allclose(outs["drop"], outs["lstm"])  # Dropout off
    np.testing.assert_allclose(outs["head"], numpy_of(model(x, training=False)), rtol=1e-6)
    new = kerawidgets.replace_activation(model, "lstm", "relu")
    run = probe.summaries_after_edit(model, new, ["lstm"])
    assert run.kind == "incremental"
    assert_run_matches(run, Probe(model, x).outputs(new))


# --- memory budget -----------------------------------------------------------------


def conv_stack(size=32, depth=8):
    """A plain CNN whose layer outputs are 16 x size x size x 16 floats (1 MiB at size 32)."""
    inp = keras.Input((size, size, 3), name="image")
    x = inp
    for i in range(depth):
        x = layers.Conv2D(16, 3, padding="same", activation="relu", name=f"conv{i}")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inp, layers.Dense(10, activation="softmax", name="head")(x), name="convs")


def images(n=16, size=32):
    return np.random.default_rng(2).standard_normal((n, size, size, 3)).astype("float32")



def test_edit_near_the_output_recomputes_only_downstream_when_outputs_exceed_the_budget(
        monkeypatch):
    model = conv_stack()
    full_bytes = sum(v.nbytes for v in Probe(model, images()).outputs(model).values())
    budget = 6 * 2**20
    assert full_bytes > budget  # every layer's full output would not fit
    probe = Probe(model, images(), memory_budget=budget)
    probe.summaries(model)
    calls = CountCalls(monkeypatch)
    new = kerawidgets.replace_activation(model, "head", "sigmoid")
    run = probe.summaries_after_edit(model, new, ["head"])
    assert run.kind == "incremental" and calls.names == ["head"] == run.calls_run
    newer = kerawidgets.replace_activation(new, "conv7", "gelu")
    calls.names.clear()
    run = probe.summaries_after_edit(new, newer, ["conv7"])
    # conv7, pool, head, and the calls back from conv7 to the nearest stored full output
    assert run.recomputed == ["conv7", "pool", "head"]
    order = [layer.name for layer in newer.layers][1:]
    first = order.index(calls.names[0])
    assert calls.names == order[first:] and len(calls.names) < len(order) // 2 + 3
    stored = probe.summaries(new).record.checkpoints
    assert (order[first - 1], 0) in stored and 0 < len(stored) < len(order)
    assert probe.peak_bytes <= budget
    monkeypatch.undo()
    assert_run_matches(run, Probe(model, images()).outputs(newer))


def test_a_new_probe_takes_its_room_from_the_checkpoints_of_the_others_first(monkeypatch):
    """An editor opened again (a cell run again) leaves the old one alive (its widgets
    keep it): the old probe's checkpoints give way to the new one's budget, its summaries
    stay, and its next edit is still right, recomputed from further up."""
    model, x = conv_stack(), images()
    budget = 6 * 2**20
    old = Probe(model, x, memory_budget=64 * 2**20)  # room to keep every conv's output
    old.summaries(model)
    held = old._records.peek(model).checkpoint_bytes
    assert held > budget
    new = Probe(model, x, memory_budget=budget)
    new.summaries(model)
    left = old._records.peek(model).checkpoint_bytes
    assert new._records.peek(model).checkpoint_bytes > 0 and left < held
    assert new.cache_bytes + left <= budget  # one budget for both, not one each
    assert old.summaries(model).kind == "cached"  # its summaries kept
    edited = kerawidgets.replace_activation(model, "conv7", "gelu")
    run = old.summaries_after_edit(model, edited, ["conv7"])
    assert run.kind == "incremental"
    assert_run_matches(run, Probe(model, x).outputs(edited))


def test_a_probe_running_in_another_thread_keeps_its_checkpoints():
    model, x = conv_stack(), images()
    busy = Probe(model, x, memory_budget=64 * 2**20)
    busy.summaries(model)
    held = busy._records.peek(model).checkpoint_bytes
    taken, release = threading.Event(), threading.Event()

    def run():  # what a run holds while it goes on (a shown editor's probe ahead)
        with busy._lock:
            taken.set()
            release.wait(60)

    worker = threading.Thread(target=run)
    worker.start()
    try:
        assert taken.wait(60)
        Probe(model, x, memory_budget=6 * 2**20).summaries(model)
        assert busy._records.peek(model).checkpoint_bytes == held > 0
    finally:
        release.set()
        worker.join()


def test_an_edit_of_a_blocks_closing_activation_recomputes_from_right_before_it(monkeypatch):
    from tests.test_probe_cache import residual_stack

    model = residual_stack()
    x = images()
    budget = 8 * 2**20  # room for a few of the 13 full outputs a checkpoint could be
    probe = Probe(model, x, memory_budget=budget)
    probe.summaries(model)
    stored = {probe._graph(model).by_id[k[0]].call.operation.name
              for k in probe.summaries(model).record.checkpoints}
    blocks = [i for i in range(6) if f"b{i}_add" in stored]
    # sparse (most blocks' outputs are not stored), and an Add kept where its block's
    # closing ReLU would have been (`probe_cache._stand_ins`)
    assert blocks and len(stored) < 13 and not any(n.endswith("_out") for n in stored)
    i = blocks[-1]
    new = kerawidgets.replace_activation(model, f"b{i}_out", "gelu")
    calls = CountCalls(monkeypatch)
    run = probe.summaries_after_edit(model, new, [f"b{i}_out"])
    order = [layer.name for layer in new.layers]
    assert calls.names == order[order.index(f"b{i}_out"):]  # from the stored Add on
    assert probe.peak_bytes <= budget
    monkeypatch.undo()
    assert_run_matches(run, Probe(model, x).outputs(new))


def test_probe_memory_stays_within_budget_over_many_edits():
    model = conv_stack(size=24)
    budget = 3 * 2**20
    probe = Probe(model, images(size=24), memory_budget=budget)
    probe.reset_peak()
    previous = model
    probe.summaries(model)
    for i, act in enumerate(("gelu", "tanh", "sigmoid", "elu", "relu6")):
        new = kerawidgets.replace_activation(previous, f"conv{i + 2}", act)
        run = probe.summaries_after_edit(previous, new, [f"conv{i + 2}"])
        assert run.kind == "incremental"
        assert probe.cache_bytes <= budget and probe.peak_bytes <= budget
        previous = new
    assert_run_matches(run, Probe(model, images(size=24)).outputs(previous))


def test_a_tiny_budget_still_works_by_recomputing_from_the_input(monkeypatch):
    model = conv_stack(size=16, depth=4)
    probe = Probe(model, images(size=16), memory_budget=1000)
    probe.summaries(model)
    assert probe.cached(model) and probe.cache_bytes > 0  # summaries are always kept
    new = kerawidgets.replace_activation(model, "conv3", "tanh")
    calls = CountCalls(monkeypatch)
    run = probe.summaries_after_edit(model, new, ["conv3"])
    assert run.kind == "incremental" and run.recomputed == ["conv3", "pool", "head"]
    assert calls.names == ["conv0", "conv1", "conv2", "conv3", "pool", "head"]  # one pass
    monkeypatch.undo()
    assert_run_matches(run, Probe(model, images(size=16)).outputs(new))


@pytest.mark.parametrize("background", [True, False])
def test_progress_counts_the_calls_to_run(monkeypatch, background):
    monkeypatch.setattr(probe_run, "BACKGROUND", background)
    model = conv_stack(size=16, depth=4)
    probe = Probe(model, images(24, size=16), batch_size=8, exact_statistics=True)
    added, seen, real_add = [], [], LayerSummary.add

    def add(summary, values, start):
        real_add(summary, values, start)
        added.append(start)

    monkeypatch.setattr(LayerSummary, "add", add)
    probe.summaries(model, progress=lambda done, total: seen.append((done, total, len(added))))
    # 6 calls x 3 batches; a batch's last once its 7 summaries (input included) are done
    assert [(done, total) for done, total, _ in seen] == [(k, 18) for k in range(1, 19)]
    assert [adds for done, _, adds in seen if done % 6 == 0] == [7, 14, 21]


def test_caches_do_not_keep_edited_models_alive():
    model = branched()
    probe = Probe(model, data(20))
    probe.summaries(model)
    previous, refs = model, []
    for act in ("gelu", "tanh", "sigmoid", "elu", "relu", "selu"):
        new = kerawidgets.replace_activation(previous, "hidden", act)
        probe.summaries_after_edit(previous, new, ["hidden"])
        refs.append(weakref.ref(new))
        previous = new
    kept = previous
    del new, previous
    gc.collect()
    # Only the models someone still holds (the original and the last edit) stay
    # alive, and with them their summaries, checkpoints and graphs.
    assert [r() is not None for r in refs] == [False] * 5 + [True]
    assert len(probe._records) == 2 and probe.cached(model) and probe.cached(kept)
    assert len(probe._graphs) <= 2
    assert probe.summaries_after_edit(model, kept, ["hidden"]).kind == "cached"


# --- incremental recompute ---------------------------------------------------------


def test_incremental_equals_full_on_a_branched_model_edit_near_output():
    model = branched()
    probe = Probe(model, data(40), batch_size=16)
    before = probe.summaries(model)
    new = kerawidgets.replace_activation(model, "hidden", "gelu")
    after = probe.summaries_after_edit(model, new, ["hidden"])
    assert after.kind == "incremental"
    assert sorted(after.recomputed) == ["hidden", "out"]
    assert_run_matches(after, Probe(model, data(40), batch_size=16).outputs(new))
    for key in ("branch_a", "concat", "add"):
        assert after.summaries[key] is before.summaries[key]  # reused, not recomputed
    np.testing.assert_allclose(probe.model_output(new), numpy_of(new(probe.x, training=False)), rtol=1e-6)


def test_incremental_on_a_branch_recomputes_only_downstream():
    model = branched()
    probe = Probe(model, data())
    probe.summaries(model)
    new = kerawidgets.replace_activation(model, "branch_b", "sigmoid")
    after = probe.summaries_after_edit(model, new, "branch_b")
    assert after.kind == "incremental"
    assert set(after.recomputed) == {"branch_b", "concat", "add", "hidden", "out"}
    assert_run_matches(after, Probe(model, data()).outputs(new))


def test_incremental_with_an_inserted_layer_and_new_node():
    model = branched()
    probe = Probe(model, data())
    probe.summaries(model)
    new = kerawidgets.insert_layer(model, after="hidden", layer=layers.Dense(5, name="extra"))
    after = probe.summaries_after_edit(model, new, ["extra"])
    assert after.kind == "incremental"
    assert {"extra", "out"} <= set(after.recomputed)
    assert_run_matches(after, Probe(model, data()).outputs(new))


def test_incremental_for_nested_edit_and_several_outputs():
    model = nested()
    probe = Probe(model, data())
    probe.summaries(model)
    new = kerawidgets.replace_activation(model, "backbone/d2", "tanh")
    after = probe.summaries_after_edit(model, new, ["backbone/d2"])
    assert after.kind == "incremental"
    assert_run_matches(after, Probe(model, data()).outputs(new))

    model = two_inputs()
    x = {"image": data(12, 6), "meta": data(12, 2)}
    probe = Probe(model, x)
    probe.summaries(model)
    new = kerawidgets.replace_activation(model, "reg", "relu")
    after = probe.summaries_after_edit(model, new, ["reg"])
    assert after.kind == "incremental" and after.recomputed == ["reg"]
    full = Probe(model, x).outputs(new)
    assert_run_matches(after, full)
    np.testing.assert_allclose(probe.model_output(new)[1], full["reg"])


def test_falls_back_to_full_pass_and_says_why():
    model = branched()
    probe = Probe(model, data())
    new = kerawidgets.replace_activation(model, "hidden", "gelu")
    after = probe.summaries_after_edit(model, new, ["hidden"])  # old never probed
    assert after.kind == "full" and "not probed" in after.reason
    assert_run_matches(after, Probe(model, data()).outputs(new))
    probe.summaries(model)
    newer = kerawidgets.replace_activation(model, "out", "sigmoid")
    run = probe.summaries_after_edit(model, newer, ["no_such_layer"])
    assert run.kind == "full" and "no_such_layer" in run.reason
    assert probe.summaries_after_edit(model, newer, ["out"]).kind == "cached"


def test_remembered_records_answer_without_running(monkeypatch):
    model = branched()
    probe = Probe(model, data())
    run = probe.summaries(model)
    twin = kerawidgets.replace_activation(model, "hidden", "relu")  # same layers, new identity
    probe.remember(twin, run.record)
    calls = CountCalls(monkeypatch)
    again = probe.summaries(twin)
    assert again.kind == "cached" and calls.names == []
    assert again.summaries["out"] is run.summaries["out"]


# --- probing ahead, in a background thread -------------------------------------------------


def gated_runs_ahead(monkeypatch):
    """Make a run ahead wait at its start until the returned event is set."""
    gate, real_full = threading.Event(), Probe._full

    def full(self, model, reason, progress):
        if threading.current_thread().name == "kerawidgets-probe-ahead":
            assert gate.wait(timeout=120)
        return real_full(self, model, reason, progress)

    monkeypatch.setattr(Probe, "_full", full)
    return gate


def gated_run_ahead(monkeypatch, n):
    """A probe of `n` images (batches of 8) of a 3-conv stack whose run ahead is started and
    waits at its start: (probe, model, gate, layer calls counted, the run's thread)."""
    model = conv_stack(size=8, depth=3)
    probe = Probe(model, images(n, size=8), batch_size=8)
    gate = gated_runs_ahead(monkeypatch)
    calls = CountCalls(monkeypatch)
    return probe, model, gate, calls, probe.summaries_ahead(model)


def test_a_run_ahead_is_waited_for_not_run_again(monkeypatch):
    probe, model, gate, calls, thread = gated_run_ahead(monkeypatch, 24)
    assert probe.summaries_ahead(model) is None  # on its way: not started twice
    seen, runs = [], []
    caller = threading.Thread(target=lambda: runs.append(
        probe.summaries(model, progress=lambda done, total: seen.append((done, total)))))
    caller.start()
    caller.join(timeout=0.2)
    assert caller.is_alive()  # waits for the run ahead
    gate.set()
    caller.join(timeout=120)
    thread.join(timeout=120)
    assert runs[0].kind == "cached" and probe.cached(model)
    assert calls.names == ["conv0", "conv1", "conv2", "pool", "head"] * 3  # one pass, 3 batches
    assert seen[-1] == (15, 15) and seen == sorted(seen)  # followed to the end
    assert probe.summaries_ahead(model) is None  # held


def test_waiting_for_a_run_ahead_shows_each_step_of_its_progress():
    ahead, shown = probe_mod._Ahead(keras.Sequential()), []
    step_shown = threading.Event()

    def progress(done, total):
        shown.append((done, total))
        step_shown.set()

    def run():
        for done in (1, 2, 3):
            step_shown.clear()
            ahead.report(done, 3)
            assert step_shown.wait(timeout=120)
        ahead.end()

    worker = threading.Thread(target=run)
    worker.start()
    ahead.wait(progress)
    worker.join(timeout=120)
    assert shown == [(1, 3), (2, 3), (3, 3)] and ahead.finished and ahead.model is None


def test_a_failed_run_ahead_is_raised_by_the_callers_own_run(monkeypatch):
    model = branched()
    probe = Probe(model, data())

    def broken(call, tensor_map, training=False):
        raise RuntimeError(f"{call.operation.name} cannot run")

    monkeypatch.setattr(adapter, "run_call", broken)
    thread = probe.summaries_ahead(model)
    thread.join(timeout=120)  # the thread swallowed it: nothing to raise there
    assert not thread.is_alive() and not probe.cached(model)
    with pytest.raises(RuntimeError, match="cannot run"):
        probe.summaries(model)


def test_cancel_ahead_stops_the_run_at_its_next_call_and_waits_for_it(monkeypatch):
    probe, model, gate, calls, thread = gated_run_ahead(monkeypatch, 16)
    # The run waits at its start until it is cancelled (a closed editor's probe).
    monkeypatch.setattr(probe_mod._Ahead, "cancelled", property(
        lambda ahead: gate.is_set(), lambda ahead, value: value and gate.set()), raising=False)
    probe.cancel_ahead()
    assert not thread.is_alive() and probe._aheads[0].finished
    assert calls.names == ["conv0"] and not probe.cached(model)  # stopped after its first call
    probe.cancel_ahead()  # nothing runs ahead: nothing happens
    assert probe.summaries(model).kind == "full"


def test_a_cancelled_run_ahead_stops_and_keeps_nothing(monkeypatch):
    probe, model, gate, calls, thread = gated_run_ahead(monkeypatch, 16)
    probe._aheads[0].cancelled = True  # what the exit handler does first
    gate.set()
    probe_mod._stop_runs_ahead()  # joins it
    assert not thread.is_alive() and not probe_mod._RUNNING
    assert calls.names == ["conv0"] and not probe.cached(model)  # stopped after its first call
    assert probe.summaries(model).kind == "full"


# --- an edit probed ahead (a preview's guess) ------------------------------------------


def probed_stack(probed=True):
    """A 3-conv stack and a probe of 16 images (batches of 8) that holds its summaries
    (`probed`) or nothing yet: (model, probe)."""
    model = conv_stack(size=8, depth=3)
    probe = Probe(model, images(16, size=8), batch_size=8)
    if probed:
        probe.summaries(model)
    return model, probe


def test_an_edit_probed_ahead_is_taken_by_its_run_not_run_again(monkeypatch):
    model, probe = probed_stack()
    new = kerawidgets.replace_activation(model, "conv2", "tanh")
    calls = ThreadCalls(monkeypatch)
    probe.summaries_after_edit_ahead(model, new, ["conv2"]).join(timeout=120)
    assert calls.of("kerawidgets-probe-ahead") == ["conv2", "pool", "head"] * 2  # 2 batches
    run = probe.summaries_after_edit(model, new, ["conv2"])
    assert calls.of("MainThread") == []  # taken, not run again
    assert run.kind == "incremental" and run.calls_run == ["conv2", "pool", "head"]
    assert run.reason.endswith(", ahead")
    direct = Probe(model, images(16, size=8), batch_size=8)
    direct.summaries(model)
    expected = direct.summaries_after_edit(model, new, ["conv2"])
    assert list(run.summaries) == list(expected.summaries)
    for key, summary in expected.summaries.items():
        got, want = run.summaries[key].statistics(), summary.statistics()
        assert [got[k] for k in ("mean", "std", "min", "max")] == pytest.approx(
            [want[k] for k in ("mean", "std", "min", "max")], rel=1e-6, abs=1e-7)
    assert probe.summaries_after_edit(model, new, ["conv2"]).kind == "cached"  # taken once


def test_an_edit_probed_ahead_is_cancelled_by_a_run_about_another_model(monkeypatch):
    model, probe = probed_stack()
    guessed = kerawidgets.replace_activation(model, "conv2", "tanh")
    applied = kerawidgets.replace_activation(model, "conv1", "elu")
    cancelled = threading.Event()
    real_cancel = probe_mod._Ahead.__setattr__

    def noting(self, name, value):  # the guess's `cancelled` flag set: let its call finish
        real_cancel(self, name, value)
        if name == "cancelled" and value:
            cancelled.set()

    monkeypatch.setattr(probe_mod._Ahead, "__setattr__", noting)
    calls = ThreadCalls(monkeypatch, gate=lambda call: cancelled.wait(timeout=120))
    thread = probe.summaries_after_edit_ahead(model, guessed, ["conv2"])
    run = probe.summaries_after_edit(model, applied, ["conv1"])  # cancels it, then runs
    thread.join(timeout=120)
    assert not thread.is_alive() and cancelled.is_set()
    assert calls.of("kerawidgets-probe-ahead") == ["conv2"]  # stopped after the call it was in
    assert not probe.cached(guessed) and probe.cached(applied)
    assert run.kind == "incremental" and calls.of("MainThread") == run.calls_run * 2
    assert probe.summaries_after_edit(model, guessed, ["conv2"]).kind == "incremental"


def test_a_newer_guess_cancels_the_older_and_a_run_ahead_of_the_model_stays(monkeypatch):
    model, probe = probed_stack(probed=False)
    gate = gated_runs_ahead(monkeypatch)  # the original's run ahead waits at its start
    first = probe.summaries_ahead(model)
    older = probe.summaries_after_edit_ahead(
        model, kerawidgets.replace_activation(model, "conv2", "tanh"), ["conv2"])
    newer_model = kerawidgets.replace_activation(model, "conv2", "elu")
    newer = probe.summaries_after_edit_ahead(model, newer_model, ["conv2"])
    assert [a.cancelled for a in probe._aheads] == [False, True, False]
    assert probe.summaries_after_edit_ahead(model, newer_model, ["conv2"]) is None  # on its way
    gate.set()
    for thread in (first, older, newer):
        thread.join(timeout=120)
    assert probe.cached(model) and probe.cached(newer_model)
    assert probe.summaries_after_edit(model, newer_model, ["conv2"]).kind == "incremental"


def test_a_guess_never_applied_keeps_neither_its_model_nor_its_outputs(monkeypatch):
    model, probe = probed_stack()
    guessed = kerawidgets.replace_activation(model, "conv1", "tanh")
    probe.summaries_after_edit_ahead(model, guessed, ["conv1"]).join(timeout=120)
    held = probe.cache_bytes
    assert probe.cached(guessed)
    gone = weakref.ref(guessed)
    del guessed
    gc.collect()
    assert gone() is None  # the run ahead held it only weakly
    assert probe.cache_bytes < held  # and its record went with it
    probe.summaries_after_edit_ahead(
        model, kerawidgets.replace_activation(model, "conv1", "elu"), ["conv1"]).join(timeout=120)
    assert len(probe._aheads) == 1  # the dead guess is forgotten


def test_only_the_run_about_the_edit_takes_what_its_guess_did(monkeypatch):
    model, probe = probed_stack()
    new = kerawidgets.replace_activation(model, "conv2", "tanh")
    probe.summaries_after_edit_ahead(model, new, ["conv2"]).join(timeout=120)
    assert probe.summaries(new).kind == "cached"  # read, not taken
    assert probe.summaries_after_edit(model, new, ["conv2"]).kind == "incremental"
