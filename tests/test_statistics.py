"""Tests for kerawidgets.statistics: layer summaries, agreement, movement."""

import gc
import json
import weakref

import keras
import numpy as np
import pytest
from keras import layers

from kerawidgets import statistics
from kerawidgets.probe import Probe
from kerawidgets.statistics import (
    LayerSummary,
    agreement,
    detect_bounds,
    layer_statistics,
    memo_arrays,
    movement,
    paired_statistics,
    statistics_by_node,
)


def test_layer_statistics_basic_numbers():
    x = np.array([[0.0, 2.0, -1.0], [0.0, 4.0, 1.0]], dtype="float32")
    stats = layer_statistics(x)
    assert stats["shape"] == [2, 3] and stats["count"] == 6
    assert stats["mean"] == pytest.approx(1.0)
    assert stats["std"] == pytest.approx(np.std(x))
    assert stats["min"] == -1.0 and stats["max"] == 4.0
    assert stats["zero_fraction"] == pytest.approx(2 / 6)
    assert stats["dead_fraction"] == pytest.approx(1 / 3)  # unit 0 is zero for every sample
    assert stats["saturation"] == 0.0 and stats["saturation_bounds"] is None
    json.dumps(stats)


def test_dead_fraction_uses_the_last_axis_over_all_positions():
    x = np.zeros((2, 4, 4, 3))
    x[1, 2, 2, 0] = 1.0
    assert layer_statistics(x)["dead_fraction"] == pytest.approx(2 / 3)
    assert layer_statistics(np.zeros(5))["dead_fraction"] == 1.0


def test_saturation_of_tanh_sigmoid_and_not_relu():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((200, 8)) * 4
    tanh = layer_statistics(np.tanh(z))
    assert tanh["saturation_bounds"] == [-1.0, 1.0]
    expected = np.mean(np.abs(np.tanh(z)) >= 0.98)
    assert tanh["saturation"] == pytest.approx(expected)
    sigmoid = layer_statistics(1 / (1 + np.exp(-z)))
    assert sigmoid["saturation_bounds"] == [0.0, 1.0]
    assert 0.2 < sigmoid["saturation"] < 1.0
    relu = layer_statistics(np.maximum(z, 0) / 100)  # inside [0, 1] but never near 1
    assert relu["saturation"] == 0.0 and relu["saturation_bounds"] is None
    assert layer_statistics(np.tanh(z), bounds=None)["saturation"] == 0.0
    assert detect_bounds(np.array([0.0, 3.0]), bounds=(0, 3)) == (0.0, 3.0)


def test_nonfinite_values_are_counted_not_propagated():
    stats = layer_statistics(np.array([1.0, np.nan, np.inf, 3.0]))
    assert stats["nonfinite_fraction"] == 0.5
    assert stats["mean"] == 2.0
    json.dumps(stats)
    assert layer_statistics(np.array([np.nan]))["mean"] is None


def test_agreement_identical_and_changed():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]])
    same = agreement(p, p)
    assert same["max_abs_diff"] == 0.0 and same["top1_agreement"] == 1.0
    assert same["kl_divergence"] == pytest.approx(0.0, abs=1e-9)
    q = np.array([[0.1, 0.2, 0.7], [0.1, 0.8, 0.1]])
    moved = agreement(p, q)
    assert moved["max_abs_diff"] == pytest.approx(0.6)
    assert moved["top1_agreement"] == 0.5
    assert moved["kl_divergence"] > 0
    json.dumps(moved)


def test_agreement_without_distributions_has_no_kl():
    logits = np.array([[2.0, -1.0], [0.5, 3.0]])
    result = agreement(logits, logits + 1.0)
    assert "kl_divergence" not in result
    assert result["top1_agreement"] == 1.0
    assert "top1_agreement" not in agreement(np.ones((3, 1)), np.zeros((3, 1)))


def test_agreement_accuracy_and_loss_from_integer_and_one_hot_labels():
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    q = np.array([[0.4, 0.6], [0.2, 0.8], [0.6, 0.4]])
    y = np.array([0, 1, 1])
    by_int = agreement(p, q, y=y)
    assert by_int["accuracy_before"] == pytest.approx(2 / 3)
    assert by_int["accuracy_after"] == pytest.approx(1 / 3)
    expected = -np.mean(np.log([0.9, 0.8, 0.4]))
    assert by_int["loss_before"] == pytest.approx(expected)
    by_one_hot = agreement(p, q, y=np.eye(2)[y])
    assert by_one_hot["accuracy_after"] == by_int["accuracy_after"]
    assert by_one_hot["loss_after"] == pytest.approx(by_int["loss_after"])
    logits = agreement(np.log(p), np.log(q), y=y)  # logits: soft-maxed for the loss
    assert logits["loss_before"] == pytest.approx(expected)


def test_agreement_binary_outputs_and_shape_change():
    p = np.array([[0.9], [0.2], [0.7]])
    result = agreement(p, 1 - p, y=np.array([1, 0, 0]))
    assert result["accuracy_before"] == pytest.approx(2 / 3)
    assert result["accuracy_after"] == pytest.approx(1 / 3)
    other = agreement(np.zeros((2, 3)), np.zeros((2, 4)))
    assert other["same_shape"] is False and "max_abs_diff" not in other


def test_agreement_several_outputs():
    result = agreement([np.eye(2), np.ones((2, 1))], [np.eye(2), np.zeros((2, 1))])
    assert result["top1_agreement"] == 1.0
    assert result["per_output"][1]["max_abs_diff"] == 1.0


def test_movement():
    before = {"a": np.ones((2, 3)), "b": np.ones(2), "gone": np.ones(2)}
    after = {"a": np.ones((2, 3)) * 1.1, "b": np.ones(3), "new": np.ones(2)}
    moved = movement(before, after)
    assert set(moved) == {"a", "b"}
    assert moved["a"] == pytest.approx(0.1)
    assert moved["b"] == 1.0
    json.dumps(moved)


def test_statistics_of_a_real_model_edit():
    inp = keras.Input((6,), name="x")
    h = layers.Dense(8, activation="relu", name="h")(inp)
    out = layers.Dense(3, activation="softmax", name="out")(h)
    model = keras.Model(inp, out)
    probe = Probe(model)
    outs = probe.outputs(model)
    stats = statistics_by_node(outs)
    assert set(stats) == set(outs)
    assert stats["h"]["min"] >= 0.0
    assert stats["out"]["saturation_bounds"] in (None, [0.0, 1.0])
    same = agreement(probe.model_output(model), probe.model_output(model))
    assert same["top1_agreement"] == 1.0 and same["kl_divergence"] == pytest.approx(0.0, abs=1e-9)
    assert all(v == 0.0 for v in movement(outs, outs).values())


def test_paired_statistics_share_bounds_when_they_fit():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((50, 4))
    soft_before = np.full((50, 4), 0.25)  # never reaches 1
    soft_after = np.eye(4)[rng.integers(0, 4, 50)]  # one-hot: saturated
    b, a = paired_statistics({"s": soft_before, "r": 1 / (1 + np.exp(-4 * z))},
                             {"s": soft_after, "r": np.maximum(z, 0) * 5, "new": z})
    assert b["s"]["saturation_bounds"] == a["s"]["saturation_bounds"] == [0.0, 1.0]
    assert b["s"]["saturation"] == 0.0 and a["s"]["saturation"] == 1.0
    assert b["r"]["saturation_bounds"] == [0.0, 1.0]  # sigmoid before
    assert a["r"]["saturation_bounds"] is None  # relu after: values leave [0, 1]
    assert "new" in a and "new" not in b


def test_remembered_statistics_do_not_keep_arrays_alive():
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((64, 64)) for _ in range(8)]
    for array in arrays:
        array.flags.writeable = False
    first, _ = paired_statistics({"a": arrays[0]}, {"a": arrays[0]})
    again, _ = paired_statistics({"a": arrays[0]}, {"a": arrays[0]})
    assert again == first  # remembered while the array lives
    paired_statistics({str(i): a for i, a in enumerate(arrays)}, {})
    remembered = {id(a) for a in memo_arrays()}
    assert {id(a) for a in arrays} <= remembered
    refs = [weakref.ref(a) for a in arrays]
    del array, arrays
    gc.collect()
    # The memo holds no array: once nobody else does, the array and its entry go.
    assert all(r() is None for r in refs)
    assert all(ref() is not None for ref, _ in statistics._MEMO.values())


# --- summaries: exact statistics, sampled values ---------------------------------------


def _mixed(n=320_000):
    """Values like a layer's: a quarter exact zeros (ReLU), the rest skewed, in 64 units."""
    rng = np.random.default_rng(3)
    values = rng.gamma(2.0, 1.5, size=n).astype("float32")
    values[rng.random(n) < 0.25] = 0.0
    values = values.reshape(-1, 64)
    values[:, 5] = 0.0  # one dead unit
    return values


def test_summary_statistics_over_batches_exact_or_within_the_tolerance():
    from kerawidgets.statistics import LayerSummary, layer_statistics

    values = _mixed()
    summary = LayerSummary(values.shape, exact=True)
    for start in range(0, len(values), 1000):  # in batches, as the probe runs
        summary.add(values[start:start + 1000], start)
    exact, got = layer_statistics(values), summary.statistics()
    assert not got["sampled"] and not exact["sampled"]
    for key in ("mean", "std", "min", "max", "dead_fraction", "nonfinite_fraction"):
        assert got[key] == pytest.approx(exact[key], rel=1e-5, abs=1e-7), key
    assert got["shape"] == exact["shape"] and got["count"] == exact["count"]
    assert not summary.exact  # shares of values come from the sample
    assert got["zero_fraction"] == pytest.approx(exact["zero_fraction"],
                                                 abs=statistics.SAMPLE_TOLERANCE / 2)
    tanh = np.tanh(values - 3.0)
    sampled, exact = statistics.summarize(tanh).statistics(), layer_statistics(tanh)
    assert sampled["saturation_bounds"] == exact["saturation_bounds"] == [-1.0, 1.0]
    assert sampled["saturation"] == pytest.approx(exact["saturation"],
                                                  abs=statistics.SAMPLE_TOLERANCE / 2)
    with_nan = values.copy()
    with_nan[0, 0], with_nan[1, 1] = np.nan, np.inf
    assert statistics.summarize(with_nan, exact=True).statistics()["mean"] == pytest.approx(
        layer_statistics(with_nan)["mean"], rel=1e-6)


def _large_relu_output():
    """16x64x64x32 values (> EXACT_VALUES) like a ReLU's: 3 dead units, the others alive
    at about half the positions, one of them mostly zero (alive at 5% of them)."""
    rng = np.random.default_rng(11)
    values = np.maximum(rng.normal(0.2, 1.5, (16, 64, 64, 32)), 0).astype("float32")
    values[..., [3, 17, 30]] = 0.0
    values[..., 9] *= rng.random((16, 64, 64)) < 0.1
    return values


def test_statistics_of_a_large_output_are_read_at_sampled_rows_within_the_stated_tolerance():
    from kerawidgets.statistics import (
        EXACT_VALUES,
        SAMPLE_TOLERANCE,
        SAMPLED_VALUES,
        LayerSummary,
        layer_statistics,
    )

    values = _large_relu_output()
    assert values.size > EXACT_VALUES
    whole = statistics.summarize(values)
    in_batches = LayerSummary(values.shape)
    for start in range(0, 16, 3):  # batches of 3 samples: the same rows read
        in_batches.add(values[start:start + 3], start)
    exact = layer_statistics(values)
    for summary in (whole, in_batches):
        got = summary.statistics()
        assert got["sampled"] and summary.sampled
        assert SAMPLED_VALUES <= summary.read < values.size // 8
        assert summary.count == got["count"] == values.size
        assert abs(got["mean"] - exact["mean"]) <= SAMPLE_TOLERANCE * exact["std"]
        assert got["std"] == pytest.approx(exact["std"], rel=SAMPLE_TOLERANCE)
        assert exact["min"] <= got["min"] and got["max"] <= exact["max"]  # of the values read
        assert got["max"] >= 0.5 * exact["max"]
        assert got["dead_fraction"] == exact["dead_fraction"] == 3 / 32
        assert got["nonfinite_fraction"] == 0.0
        assert abs(got["zero_fraction"] - exact["zero_fraction"]) <= SAMPLE_TOLERANCE / 2
    once, batched = whole.statistics(), in_batches.statistics()
    for key, value in once.items():  # the same rows read; only the sums' rounding differs
        assert batched[key] == (pytest.approx(value, rel=1e-6) if isinstance(value, float)
                                else value), key
    np.testing.assert_array_equal(whole.sample, in_batches.sample)


def test_a_large_output_with_non_finite_values_counts_them_at_the_sampled_rows():
    values = _large_relu_output()
    values[:, :, :8] = np.inf  # an eighth of the positions overflowed
    got = statistics.summarize(values).statistics()
    exact = layer_statistics(values)
    assert got["sampled"]
    assert got["nonfinite_fraction"] == pytest.approx(exact["nonfinite_fraction"],
                                                      abs=statistics.SAMPLE_TOLERANCE)
    assert got["nonfinite_fraction"] > 0.05
    assert abs(got["mean"] - exact["mean"]) <= statistics.SAMPLE_TOLERANCE * exact["std"]


def test_float16_outputs_get_their_std_and_mean():
    """A mixed-precision layer's float16 output: sums that overflow float16 are taken wider."""
    values = np.random.default_rng(8).normal(1.0, 2.0, (16, 32, 32, 16)).astype("float16")
    exact, got = layer_statistics(values), statistics.summarize(values).statistics()
    for key in ("mean", "std", "min", "max"):
        assert got[key] == pytest.approx(exact[key], rel=1e-4), key
    values[0, 0, 0, 0] = np.inf
    with_inf = statistics.summarize(values).statistics()
    assert with_inf["std"] == pytest.approx(exact["std"], rel=1e-3)
    assert with_inf["nonfinite_fraction"] == pytest.approx(1 / values.size)


def test_sampled_histograms_and_movement_match_exact_ones_within_the_tolerance():
    from kerawidgets.statistics import SAMPLE_SIZE, SAMPLE_TOLERANCE, summarize, summary_movement

    values = _mixed()
    after = np.maximum(values * 1.3 - 0.5, 0.0)
    before_s, after_s = summarize(values), summarize(after)
    assert before_s.sample.size == SAMPLE_SIZE < values.size
    edges = np.linspace(values.min(), values.max(), 51)
    exact = np.histogram(values, edges)[0] / values.size
    sampled = np.histogram(before_s.sample, edges)[0] / before_s.sample.size
    assert np.max(np.abs(exact - sampled)) <= SAMPLE_TOLERANCE / 2
    assert float(before_s.sample.mean()) == pytest.approx(float(values.mean()),
                                                          rel=SAMPLE_TOLERANCE)
    assert float(before_s.sample.std()) == pytest.approx(float(values.std()),
                                                         rel=SAMPLE_TOLERANCE)
    moved = summary_movement({"a": before_s}, {"a": after_s})["a"]
    assert moved == pytest.approx(movement({"a": values}, {"a": after})["a"], rel=SAMPLE_TOLERANCE)
    # the same positions on both sides: an unchanged output moved exactly 0
    assert summary_movement({"a": before_s}, {"a": summarize(values.copy())})["a"] == 0.0


def test_paired_summary_statistics_match_paired_statistics():
    from kerawidgets.statistics import paired_summary_statistics, summarize

    z = np.random.default_rng(4).normal(0, 3, (64, 8))
    before = {"s": np.exp(z) / np.exp(z).sum(-1, keepdims=True) * 0.9, "r": np.maximum(z, 0)}
    after = {"s": np.exp(z) / np.exp(z).sum(-1, keepdims=True), "r": np.tanh(z)}
    exact = paired_statistics(before, after)
    got = paired_summary_statistics({k: summarize(v) for k, v in before.items()},
                                    {k: summarize(v) for k, v in after.items()})
    for side_exact, side_got in zip(exact, got):
        for key in side_exact:
            for name, value in side_exact[key].items():
                if isinstance(value, float):
                    assert side_got[key][name] == pytest.approx(value, rel=1e-6, abs=1e-9)
                else:
                    assert side_got[key][name] == value


# --- sampled summaries of real layer outputs, on the backend in use -----------------------


def _real_cnn(size=32):
    """Conv, batch norm, ReLU, tanh, sigmoid and softmax outputs of 16x32x32x16 (> SAMPLE_SIZE;
    at `size` 64, 16x64x64x16 > EXACT_VALUES)."""
    keras.utils.set_random_seed(5)
    inp = keras.Input((size, size, 3), name="image")
    x = layers.Conv2D(16, 3, padding="same", name="conv")(inp)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.ReLU(name="relu")(x)
    x = layers.Conv2D(16, 3, padding="same", activation="tanh", name="tanh_conv")(x)
    x = layers.Conv2D(8, 1, activation="sigmoid", name="gate",
                      kernel_initializer=keras.initializers.RandomNormal(0.0, 3.0, seed=7))(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inp, layers.Dense(10, activation="softmax", name="head")(x))


def _real_images(size=32):
    return np.random.default_rng(6).normal(0, 2, (16, size, size, 3)).astype("float32")


def _assert_within_tolerance(summary, full, exact):
    """A summary of a real output against the exact statistics and histogram of all of it."""
    from kerawidgets.statistics import SAMPLE_TOLERANCE

    got = summary.statistics(exact["saturation_bounds"])
    for name in ("mean", "std", "min", "max", "dead_fraction", "nonfinite_fraction"):
        assert got[name] == pytest.approx(exact[name], rel=1e-4, abs=1e-5), name
    for name in ("zero_fraction", "saturation"):
        assert abs(got[name] - exact[name]) <= SAMPLE_TOLERANCE / 2, name
    edges = np.linspace(exact["min"], exact["max"], 51)
    shares = np.histogram(full, edges)[0] / full.size
    sampled = np.histogram(summary.sample, edges)[0] / summary.sample.size
    assert np.max(np.abs(shares - sampled)) <= SAMPLE_TOLERANCE / 2


def test_sampled_statistics_of_real_layer_outputs_match_exact_ones_within_the_tolerance():
    model = _real_cnn()
    probe = Probe(model, _real_images())
    full = probe.outputs(model)
    summaries = Probe(model, _real_images()).summaries(model).summaries
    sampled = [key for key, s in summaries.items() if not s.exact]
    assert {"conv", "bn", "relu", "tanh_conv", "gate"} <= set(sampled)
    for key in sampled:
        exact = layer_statistics(full[key])
        _assert_within_tolerance(summaries[key], full[key], exact)
    assert layer_statistics(full["relu"])["zero_fraction"] > 0.2  # the shares are not all 0
    assert layer_statistics(full["gate"])["saturation_bounds"] == [0.0, 1.0]


def test_large_real_outputs_are_read_at_sampled_rows_unless_exact_statistics_are_asked():
    from kerawidgets.statistics import SAMPLE_TOLERANCE

    model, x = _real_cnn(64), _real_images(64)
    full = Probe(model, x).outputs(model)
    sampled = Probe(model, x).summaries(model).summaries
    exact = Probe(model, x, exact_statistics=True).summaries(model).summaries
    large = [k for k in ("conv", "bn", "relu", "tanh_conv", "gate") if full[k].size > 2**18]
    assert large == ["conv", "bn", "relu", "tanh_conv", "gate"]
    for key in large:
        truth = layer_statistics(full[key])
        got, every = sampled[key].statistics(), exact[key].statistics()
        assert got["sampled"] and not every["sampled"], key
        for name in ("mean", "std", "min", "max", "dead_fraction"):
            assert every[name] == pytest.approx(truth[name], rel=1e-4, abs=1e-5), (key, name)
        assert abs(got["mean"] - truth["mean"]) <= SAMPLE_TOLERANCE * truth["std"], key
        assert got["std"] == pytest.approx(truth["std"], rel=SAMPLE_TOLERANCE), key
        assert truth["min"] <= got["min"] <= got["max"] <= truth["max"], key
        assert got["dead_fraction"] == truth["dead_fraction"], key
        assert got["saturation_bounds"] == truth["saturation_bounds"], key
    assert sampled["gate"].statistics()["saturation_bounds"] == [0.0, 1.0]
    assert not sampled["pool"].statistics()["sampled"]  # 16x16 values: every one read


def test_paired_summaries_of_an_edited_real_model_match_exact_paired_statistics():
    import kerawidgets
    from kerawidgets.statistics import (
        SAMPLE_TOLERANCE,
        paired_summary_statistics,
        sample_index,
        summary_movement,
    )

    model = _real_cnn()
    edited = kerawidgets.replace_activation(model, "tanh_conv", "sigmoid")
    probe = Probe(model, _real_images())
    before, after = probe.summaries(model).summaries, probe.summaries_after_edit(
        model, edited, ["tanh_conv"]).summaries
    full_before, full_after = probe.outputs(model), probe.outputs(edited)
    exact_before, exact_after = paired_statistics(full_before, full_after)
    got_before, got_after = paired_summary_statistics(before, after)
    for key in ("tanh_conv", "gate"):  # sampled, and changed by the edit
        index = sample_index(full_before[key].size)
        # the same positions on both sides, so paired numbers compare value by value
        np.testing.assert_allclose(before[key].sample, full_before[key].ravel()[index], rtol=1e-5)
        np.testing.assert_allclose(after[key].sample, full_after[key].ravel()[index], rtol=1e-5)
        for got, exact in ((got_before, exact_before), (got_after, exact_after)):
            assert got[key]["saturation_bounds"] == exact[key]["saturation_bounds"], key
        _assert_within_tolerance(before[key], full_before[key], exact_before[key])
        _assert_within_tolerance(after[key], full_after[key], exact_after[key])
    assert after["relu"] is before["relu"]  # upstream of the edit: the same summary
    moved, exact_moved = summary_movement(before, after), movement(full_before, full_after)
    assert moved["relu"] == exact_moved["relu"] == 0.0
    for key in ("tanh_conv", "gate", "head"):
        assert moved[key] == pytest.approx(exact_moved[key], rel=SAMPLE_TOLERANCE), key


def test_a_summary_is_read_once_per_bounds_until_more_values_come(monkeypatch):
    summary = LayerSummary((4, 2))
    summary.add(np.array([[0.0, 0.5], [0.2, 0.9]]), 0)
    reads = []
    real = LayerSummary._statistics
    monkeypatch.setattr(LayerSummary, "_statistics",
                        lambda self, bounds: reads.append(bounds) or real(self, bounds))
    first = summary.statistics()
    first["shape"].append(99)  # the caller's own dict: the next read is not changed
    assert summary.statistics()["shape"] == [4, 2] and reads == ["auto"]
    assert summary.statistics(bounds=[0, 1]) == summary.statistics(bounds=(0.0, 1.0))
    assert reads == ["auto", [0, 1]]
    summary.add(np.array([[-3.0, 0.5], [0.2, 7.0]]), 2)  # more values: read again
    assert summary.statistics()["max"] == 7.0 and len(reads) == 3
