"""Tests for kerawidgets.probe_run: the `Summariser` (summaries on a worker thread with exact
statistics, in order, within the memory budget, errors raised in the caller, no thread left
behind) and checkpoints fed back to a later pass as the backend values they view."""

import threading

import keras
import numpy as np
import pytest
from keras import layers

from kerawidgets import _keras_adapter as adapter
from kerawidgets import probe_run
from kerawidgets.probe import Probe
from kerawidgets.probe_run import Summariser
from kerawidgets.statistics import LayerSummary

WORKER = "kerawidgets-summaries"


def residual(size=24):
    """Conv blocks with skip connections (outputs held across calls) and a softmax head."""
    inp = keras.Input((size, size, 3), name="image")
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="stem")(inp)
    for i in range(3):
        y = layers.Conv2D(8, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        y = layers.BatchNormalization(name=f"bn{i}")(y)
        x = layers.Add(name=f"add{i}")([x, y])
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inp, layers.Dense(5, activation="softmax", name="head")(x), name="res")


def images(n=20, size=24):
    return np.random.default_rng(5).standard_normal((n, size, size, 3)).astype("float32")


def workers():
    return [t for t in threading.enumerate() if t.name == WORKER]


def probed(model, background, monkeypatch, **kwargs):
    monkeypatch.setattr(probe_run, "BACKGROUND", background)
    probe = Probe(model, images(), batch_size=8, exact_statistics=True, **kwargs)
    return probe, probe.summaries(model)


def add_threads(monkeypatch) -> list:
    """The names of the threads `LayerSummary.add` runs on from now on, in order."""
    threads = []
    real_add = LayerSummary.add

    def add(summary, values, start):
        threads.append(threading.current_thread().name)
        real_add(summary, values, start)

    monkeypatch.setattr(LayerSummary, "add", add)
    return threads


def test_summaries_on_the_worker_are_bitwise_those_made_in_the_caller(monkeypatch):
    model = residual()
    threads = add_threads(monkeypatch)
    _, on = probed(model, True, monkeypatch)
    if keras.backend.backend() == "torch":  # torch tensors may be written in place: no worker
        assert WORKER not in threads
    else:
        assert WORKER in threads
    threads.clear()
    _, off = probed(model, False, monkeypatch)
    assert set(threads) == {threading.current_thread().name}
    assert list(on.summaries) == list(off.summaries)
    for key, a in on.summaries.items():
        b = off.summaries[key]
        assert a.statistics() == b.statistics(), key
        np.testing.assert_array_equal(a.sample, b.sample, err_msg=key)
        np.testing.assert_array_equal(a.dead, b.dead, err_msg=key)
    np.testing.assert_array_equal(on.model_output, off.model_output)
    assert not workers()


def test_sampled_summaries_are_taken_in_the_caller_without_a_thread(monkeypatch):
    threads = add_threads(monkeypatch)
    model = residual()
    probe = Probe(model, images(), batch_size=8)  # exact_statistics=False: the default
    probe.summaries(model)
    assert threads and set(threads) == {threading.current_thread().name}
    assert probe.cached(model) and not workers()


def test_an_edit_recomputed_on_the_worker_matches_the_caller(monkeypatch):
    model = residual()
    new = keras.models.clone_model(model)
    new.set_weights(model.get_weights())
    new.get_layer("conv1").activation = keras.activations.tanh
    runs = []
    for background in (True, False):
        probe, _ = probed(model, background, monkeypatch, memory_budget=2**20)
        runs.append(probe.summaries_after_edit(model, new, ["conv1"]))
        assert runs[-1].kind == "incremental" and probe.peak_bytes <= 2**20
    for key, a in runs[0].summaries.items():
        assert a.statistics() == runs[1].summaries[key].statistics(), key
    assert not workers()


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_error_in_a_call_leaves_no_thread_and_the_probe_usable(monkeypatch, error):
    model = residual()
    real = adapter.run_call
    count = [0]

    def failing(call, tensor_map, training=False):
        count[0] += 1
        if count[0] == 6:  # mid-pass: earlier outputs wait for the worker
            raise error("stopped in a call")
        return real(call, tensor_map, training=training)

    monkeypatch.setattr(adapter, "run_call", failing)
    probe = Probe(model, images(), batch_size=8, exact_statistics=True)
    with pytest.raises(error, match="stopped in a call"):
        probe.summaries(model)
    assert not workers() and not probe.cached(model)
    monkeypatch.setattr(adapter, "run_call", real)
    assert probe.summaries(model).kind == "full" and not workers()


def test_an_error_in_the_worker_is_raised_in_the_caller(monkeypatch):
    if keras.backend.backend() == "torch":
        pytest.skip("no worker on torch")
    model = residual()
    real_add = LayerSummary.add

    def add(summary, values, start):
        if threading.current_thread().name == WORKER and summary.shape[-1] == 8:
            raise ValueError("a summary failed")
        real_add(summary, values, start)

    monkeypatch.setattr(LayerSummary, "add", add)
    probe = Probe(model, images(), batch_size=8, exact_statistics=True)
    with pytest.raises(ValueError, match="a summary failed"):
        probe.summaries(model)
    assert not workers() and not probe.cached(model)


class Recording:
    """A stand-in summary whose `add` records the bytes waiting and the thread it ran on."""

    def __init__(self, worker, gate=None):
        self.worker, self.gate, self.seen = worker, gate, []

    def add(self, values, start):
        if self.gate is not None:
            self.gate.wait()
        self.seen.append((start, self.worker.pending_bytes, threading.current_thread().name))


def test_waiting_outputs_stay_within_the_room_and_a_larger_one_is_summarised_in_the_caller():
    worker = Summariser(room=100)
    gate = threading.Event()
    summary = Recording(worker, gate)
    worker.add(summary, None, 0, 60)  # queued; the worker waits at the gate
    adder = threading.Thread(target=worker.add, args=(summary, None, 1, 60))
    adder.start()  # 60 + 60 > 100: this add waits for the worker
    assert worker.waiting() == 60
    gate.set()
    adder.join()
    worker.add(summary, None, 2, 500)  # larger than the room: in the caller, after the others
    worker.close()
    assert [s[0] for s in summary.seen] == [0, 1, 2]
    assert max(s[1] for s in summary.seen) <= 100
    assert [s[2] for s in summary.seen] == [WORKER, WORKER, threading.current_thread().name]
    assert worker.pending_bytes == 0 and not workers()


def test_no_room_summarises_everything_in_the_caller_without_a_thread():
    worker = Summariser(room=0)
    summary = Recording(worker)
    for start in range(3):
        worker.add(summary, None, start, 0)
    worker.close()
    assert [s[2] for s in summary.seen] == [threading.current_thread().name] * 3
    assert worker._thread is None


def test_abort_drops_the_waiting_adds():
    worker = Summariser(room=100)
    gate = threading.Event()
    summary = Recording(worker, gate)
    for start in range(3):
        worker.add(summary, None, start, 10)
    gate.set()
    worker.abort()
    assert len(summary.seen) <= 3 and worker.pending_bytes == 0 and not workers()


def test_progress_of_a_nested_model_never_goes_back(monkeypatch):
    inner = keras.Sequential([keras.Input((12, 12, 4)),
                              layers.Conv2D(6, 3, padding="same", activation="relu", name="c1"),
                              layers.Conv2D(6, 3, padding="same", activation="relu", name="c2")],
                             name="backbone")
    inp = keras.Input((12, 12, 4), name="x")
    x = layers.Conv2D(4, 3, padding="same", name="pre")(inp)
    x = layers.GlobalAveragePooling2D(name="pool")(inner(x))
    model = keras.Model(inp, layers.Dense(2, name="top")(x))
    x_data = np.random.default_rng(1).standard_normal((12, 12, 12, 4)).astype("float32")
    seen = []
    probe = Probe(model, x_data, batch_size=4)
    run = probe.summaries(model, progress=lambda done, total: seen.append((done, total)))
    done = [k for k, _ in seen]
    assert "backbone/c2" in run.summaries and done == sorted(done)
    assert done[-1] == seen[-1][1] and done[0] >= 0 and not workers()


# --- checkpoints fed back as the backend's own values -----------------------------------


def chain():
    inp = keras.Input((6,), name="x")
    h = layers.Dense(5, activation="relu", name="h")(inp)
    return keras.Model(inp, layers.Dense(3, name="d")(h), name="chain")


def test_a_kept_checkpoint_is_fed_to_a_later_pass_as_the_backend_value_it_views(monkeypatch):
    """TensorFlow and JAX copy an array fed to a layer back into a tensor: a checkpoint is
    fed as the value the pass kept it from, with the same results as the array."""
    from kerawidgets.callgraph import CallGraph

    graph = CallGraph(chain())
    x = np.random.default_rng(0).standard_normal((4, 6)).astype("float32")
    first = probe_run.Pass(graph, {c.id for c in graph.calls}, {}, {("h", 0)}, n=4)
    _, kept, _ = first.run([x], 0, {})
    array = kept[("h", 0)]
    assert isinstance(array, np.ndarray) and not array.flags.writeable
    fed = []
    real = adapter.run_call

    def spy(call, values, **kwargs):
        fed.extend(values[id(t)] for t in call.input_tensors)
        return real(call, values, **kwargs)

    monkeypatch.setattr(adapter, "run_call", spy)
    later = probe_run.Pass(graph, {"d"}, {("h", 0)}, set(), n=4)
    assert later.calls == ["d"]
    summaries, _, _ = later.run([x], 0, {}, stored={("h", 0): array})
    assert len(fed) == 1 and not isinstance(fed[0], np.ndarray)  # the value, not the array
    assert np.array_equal(adapter.to_numpy_view(fed[0]), array)
    copied, _, _ = later.run([x], 0, {}, stored={("h", 0): np.array(array)})  # a plain array
    assert isinstance(fed[1], np.ndarray)
    assert summaries["d"].statistics() == copied["d"].statistics()


def test_the_value_behind_a_kept_array_is_let_go_with_the_array():
    array = probe_run._kept_view(keras.ops.ones((2, 3)))
    key = id(array)
    assert key in probe_run._SOURCES
    del array
    assert key not in probe_run._SOURCES


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="torch's autograd graph")
def test_a_kept_torch_value_holds_no_autograd_graph():
    """The graph behind an output holds every activation saved for its gradient: the value
    kept beside a checkpoint is detached (same buffer), so only the checkpoint is held."""
    from kerawidgets.callgraph import CallGraph

    graph = CallGraph(chain())
    x = np.random.default_rng(0).standard_normal((4, 6)).astype("float32")
    run = probe_run.Pass(graph, {c.id for c in graph.calls}, {}, {("h", 0)}, n=4)
    _, kept, _ = run.run([x], 0, {})
    fed = probe_run._fed(kept[("h", 0)])
    assert fed is not kept[("h", 0)] and fed.grad_fn is None and not fed.requires_grad
    assert np.shares_memory(fed.numpy(), kept[("h", 0)])
