"""Tests for kerawidgets.probe: probe data, one-pass outputs, cache, incremental recompute."""

import gc
import weakref

import keras
import numpy as np
import pytest
from keras import layers

import kerawidgets
from kerawidgets import _keras_adapter as adapter
from kerawidgets.errors import KerawidgetsError
from kerawidgets.probe import Probe, ProbeDataError, node_ids
from tests import models
from tests.models import numpy_of


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


def data(n=20, dim=8):
    return np.random.default_rng(1).standard_normal((n, dim)).astype("float32")


# --- outputs -------------------------------------------------------------------


def test_outputs_every_call_in_one_pass_matches_model():
    model = branched()
    probe = Probe(model, data())
    outs = probe.outputs(model)
    assert list(outs) == ["features", "branch_a", "branch_b", "skip", "concat", "add", "hidden",
                          "out"] or set(outs) == set(node_ids(model))
    assert probe.last_run == "full"
    np.testing.assert_allclose(outs["out"], numpy_of(model(probe.x, training=False)), rtol=1e-6)
    np.testing.assert_allclose(probe.model_output(model), outs["out"])
    hidden = keras.Model(model.inputs, model.get_layer("hidden").output)
    np.testing.assert_allclose(outs["hidden"], numpy_of(hidden(probe.x)), rtol=1e-6, atol=1e-7)


def test_outputs_are_cached_and_read_only():
    model = branched()
    probe = Probe(model, data())
    first = probe.outputs(model)
    assert probe.cached(model)
    second = probe.outputs(model)
    assert first["out"] is second["out"]
    with pytest.raises(ValueError):
        first["out"][0, 0] = 1.0


def test_probing_adds_no_node_to_the_model():
    model = branched()
    counts = [adapter.inbound_call_count(layer) for layer in model.layers]
    probe = Probe(model, data())
    probe.outputs(model)
    new = kerawidgets.replace_activation(model, "hidden", "gelu")
    new_counts = [adapter.inbound_call_count(layer) for layer in new.layers]
    probe.outputs_after_edit(model, new, ["hidden"])
    assert [adapter.inbound_call_count(layer) for layer in model.layers] == counts
    assert [adapter.inbound_call_count(layer) for layer in new.layers] == new_counts


def test_batches_are_capped_and_concatenated():
    model = branched()
    probe = Probe(model, data(50), batch_size=8, max_batches=3)
    assert probe.n == 24
    assert "first 24 of 50" in probe.description
    outs = probe.outputs(model)
    np.testing.assert_allclose(outs["out"], numpy_of(model(data(50)[:24], training=False)), rtol=1e-6)


def test_nested_model_inner_calls_have_outer_inner_ids():
    model = nested()
    probe = Probe(model, data())
    outs = probe.outputs(model)
    assert {"backbone", "backbone/d1", "backbone/d2", "top"} <= set(outs)
    inner = model.get_layer("backbone")
    d1 = keras.Model(inner.inputs, inner.get_layer("d1").output)
    np.testing.assert_allclose(outs["backbone/d1"], numpy_of(d1(probe.x)), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(outs["backbone/d2"], outs["backbone"])


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
    inc = probe.outputs_after_edit(model, new, ["lstm"])
    assert probe.last_run == "incremental"
    assert_same(inc, Probe(model, x).outputs(new))


# --- cache budget -----------------------------------------------------------------


def test_cache_evicts_within_a_small_budget():
    model = branched()
    one = Probe(model, data(20)).outputs(model)
    per_model = sum(v.nbytes for v in one.values())
    budget = int(2.5 * per_model)  # a few KB: room for two models' outputs
    probe = Probe(model, data(20), memory_budget=budget)
    edited = [kerawidgets.replace_activation(model, "hidden", act)
              for act in ("gelu", "tanh", "sigmoid", "elu")]
    previous = model
    probe.outputs(model)
    for new in edited:
        result = probe.outputs_after_edit(previous, new, ["hidden"])
        assert probe.cache_bytes <= budget
        assert_same(result, Probe(model, data(20)).outputs(new))
        previous = new
    assert not probe.cached(model)  # evicted (LRU)
    assert probe.cached(edited[-1])
    assert_same(probe.outputs(model), one)  # recomputed after eviction


def test_entry_larger_than_budget_is_not_kept():
    model = branched()
    probe = Probe(model, data(20), memory_budget=100)
    outs = probe.outputs(model)
    assert probe.cache_bytes == 0 and not probe.cached(model)
    assert outs["out"].shape == (20, 3)


def test_caches_do_not_keep_edited_models_alive():
    model = branched()
    probe = Probe(model, data(20))
    probe.outputs(model)
    previous, refs = model, []
    for act in ("gelu", "tanh", "sigmoid", "elu", "relu", "selu"):
        new = kerawidgets.replace_activation(previous, "hidden", act)
        probe.outputs_after_edit(previous, new, ["hidden"])
        refs.append(weakref.ref(new))
        previous = new
    kept = previous
    del new, previous
    gc.collect()
    # Only the models someone still holds (the original and the last edit) stay
    # alive, and with them their cached outputs, graphs and tap models.
    assert [r() is not None for r in refs] == [False] * 5 + [True]
    assert len(probe._cache) == 2 and probe.cached(model) and probe.cached(kept)
    assert len(probe._graphs) <= 2 and len(probe._taps) <= 2
    assert probe.outputs_after_edit(model, kept, ["hidden"]) is not None
    assert probe.last_run == "cached"


# --- incremental recompute ---------------------------------------------------------


def test_incremental_equals_full_on_a_branched_model_edit_near_output():
    model = branched()
    probe = Probe(model, data(40), batch_size=16)
    before = probe.outputs(model)
    new = kerawidgets.replace_activation(model, "hidden", "gelu")
    after = probe.outputs_after_edit(model, new, ["hidden"])
    assert probe.last_run == "incremental"
    assert sorted(probe.last_recomputed) == ["hidden", "out"]
    full = Probe(model, data(40), batch_size=16).outputs(new)
    assert_same(after, full)
    for key in ("branch_a", "concat", "add"):
        assert after[key] is before[key]  # reused, not recomputed
    assert not np.allclose(after["out"], before["out"])
    np.testing.assert_allclose(probe.model_output(new), numpy_of(new(probe.x, training=False)), rtol=1e-6)


def test_incremental_on_a_branch_recomputes_only_downstream():
    model = branched()
    probe = Probe(model, data())
    probe.outputs(model)
    new = kerawidgets.replace_activation(model, "branch_b", "sigmoid")
    after = probe.outputs_after_edit(model, new, "branch_b")
    assert probe.last_run == "incremental"
    assert set(probe.last_recomputed) == {"branch_b", "concat", "add", "hidden", "out"}
    assert_same(after, Probe(model, data()).outputs(new))


def test_incremental_with_an_inserted_layer_and_new_node():
    model = branched()
    probe = Probe(model, data())
    probe.outputs(model)
    new = kerawidgets.insert_layer(model, after="hidden", layer=layers.Dense(5, name="extra"))
    after = probe.outputs_after_edit(model, new, ["extra"])
    assert probe.last_run == "incremental"
    assert {"extra", "out"} <= set(probe.last_recomputed)
    assert_same(after, Probe(model, data()).outputs(new))


def test_incremental_for_nested_edit_and_several_outputs():
    model = nested()
    probe = Probe(model, data())
    probe.outputs(model)
    new = kerawidgets.replace_activation(model, "backbone/d2", "tanh")
    after = probe.outputs_after_edit(model, new, ["backbone/d2"])
    assert probe.last_run == "incremental"
    assert_same(after, Probe(model, data()).outputs(new))

    model = two_inputs()
    x = {"image": data(12, 6), "meta": data(12, 2)}
    probe = Probe(model, x)
    probe.outputs(model)
    new = kerawidgets.replace_activation(model, "reg", "relu")
    after = probe.outputs_after_edit(model, new, ["reg"])
    assert probe.last_run == "incremental" and probe.last_recomputed == ["reg"]
    assert_same(after, Probe(model, x).outputs(new))
    np.testing.assert_allclose(probe.model_output(new)[1], after["reg"])


def test_falls_back_to_full_pass_and_says_why():
    model = branched()
    probe = Probe(model, data())
    new = kerawidgets.replace_activation(model, "hidden", "gelu")
    after = probe.outputs_after_edit(model, new, ["hidden"])  # old never computed
    assert probe.last_run == "full" and "not cached" in probe.last_reason
    assert_same(after, Probe(model, data()).outputs(new))
    probe.outputs(model)
    newer = kerawidgets.replace_activation(model, "out", "sigmoid")
    probe.outputs_after_edit(model, newer, ["no_such_layer"])
    assert probe.last_run == "full" and "no_such_layer" in probe.last_reason
    probe.outputs_after_edit(model, newer, ["out"])
    assert probe.last_run == "cached"
