"""widgets/finetune_panel and the editor's Fine-tune section: training in a worker thread, Stop."""

import html
import threading

import keras
import numpy as np
import pytest

from kerawidgets import _keras_adapter as adapter
from kerawidgets.edits import SetActivation
from kerawidgets.session import SessionBusy
from kerawidgets.training import FineTune, in_background
from kerawidgets.widgets import ModelEditor
from kerawidgets.widgets.finetune_panel import FineTunePanel, curve_svg
from tests.test_training import blobs, classifier, weights

WAIT = 120  # seconds: a bound for a worker thread that should end, never a pass condition


def editor_with_data(n=96, **kwargs):
    keras.utils.set_random_seed(0)
    x, y = blobs(n)
    editor = ModelEditor(classifier(), x, y, **kwargs)
    editor.apply(SetActivation("hidden", "tanh"))
    return editor


def watch_batches(editor, count):
    """An Event set once the panel has seen `count` batches (the worker calls add_batch)."""
    seen = threading.Event()
    add_batch = editor.finetune_panel.add_batch

    def counting(done, total, logs, now=None):
        add_batch(done, total, logs, now)
        if done >= count:
            seen.set()

    editor.finetune_panel.add_batch = counting
    return seen


def test_curve_svg_draws_loss_and_accuracy_and_thins_long_runs():
    logs = [{"loss": 2.0 - i / 1000, "accuracy": i / 2000} for i in range(1000)]
    svg = curve_svg(logs, total=1200)
    assert svg.count("<polyline") == 2 and 'data-batches="1000"' in svg
    assert "batch 1000 of 1200" in svg
    loss_points = svg.split('class="kwe-curve-loss"')[1].split('points="')[1].split('"')[0]
    assert 2 <= len(loss_points.split()) <= 301
    assert curve_svg([]).count("<polyline") == 0
    assert curve_svg([{"loss": 0.5}]).count("<polyline") == 1  # no accuracy metric


def test_settings_are_checked_when_run_is_pressed():
    panel = FineTunePanel()
    panel.epochs.value, panel.steps.value = 3, 5
    assert panel.settings() == {"epochs": 3, "batch_size": 32, "steps": 5, "baseline": False}
    panel.batch_size.value = 0
    with pytest.raises(Exception, match="batch size must be at least 1"):
        panel.settings()


def test_run_trains_in_a_worker_and_stop_ends_it_after_the_current_batch():
    editor = editor_with_data()
    before = weights(editor.model)
    panel = editor.finetune_panel
    assert not panel.run_button.disabled and panel.stop_button.disabled
    panel.epochs.value, panel.batch_size.value = 200, 16  # 1200 batches: far more than needed
    seen = watch_batches(editor, 3)
    panel.run_button.click()  # returns at once: training runs in the worker
    assert seen.wait(WAIT) and editor.fine_tuning
    assert not panel.stop_button.disabled and panel.run_button.disabled
    with pytest.raises(SessionBusy, match="press Stop"):  # no edit while training
        editor.apply(SetActivation("head", "sigmoid"))
    panel.stop_button.click()
    assert editor.wait_fine_tune(WAIT)
    step = editor.history[-1]
    assert isinstance(step, FineTune) and step.stopped and step.total_batches == 1200
    assert 3 <= step.batches < 1200
    assert f"stopped after {step.batches} of 1200 batches" in panel.result.value
    assert f"stopped after {step.batches} of 1200 batches" in editor.panel.status.value
    assert len(panel.logs) == step.batches and f'data-batches="{step.batches}"' in panel.curve.value
    assert panel.progress.value == step.batches and panel.progress.max == 1200
    assert not panel.run_button.disabled and panel.stop_button.disabled
    assert not editor.panel.undo_button.disabled
    assert editor.comparison_image.value  # plots refreshed for the fine-tuned model
    assert "Fine-tune stopped" in editor.plots_note.value
    editor.undo()  # back to the weights before fine-tuning
    for a, b in zip(before, weights(editor.model)):
        np.testing.assert_array_equal(a, b)


def test_a_whole_run_and_a_failing_run_report_in_the_panel():
    editor = editor_with_data()
    panel = editor.finetune_panel
    panel.epochs.value, panel.batch_size.value, panel.steps.value = 2, 32, 2
    panel.run_button.click()
    assert editor.wait_fine_tune(WAIT)
    assert panel.result.value.count("Fine-tune 2 epochs on 64 samples") == 1
    assert 'data-batches="4"' in panel.curve.value and panel.progress.value == 4
    assert editor.history[-1].batches == 4 and not editor.history[-1].stopped
    x, _ = blobs()
    editor._train_data = (x, np.full((96, 5), 7, "int32"))  # labels Keras cannot use
    panel.run_button.click()
    assert editor.wait_fine_tune(WAIT)
    assert "kwe-status-error" in panel.result.value and panel.progress.bar_style == "danger"
    assert "kwe-status-error" in editor.panel.status.value
    assert len(editor.history) == 2 and not editor.session.busy  # nothing added; editor usable
    editor.undo()
    assert len(editor.history) == 1


def test_fine_tune_is_offered_only_with_labels_and_a_loss():
    x, y = blobs()
    assert ModelEditor(classifier(), x).finetune_panel.run_button.disabled
    inp = keras.Input((6,))
    uncompiled = keras.Model(inp, keras.layers.Dense(3)(inp))
    panel = ModelEditor(uncompiled, x, y).finetune_panel
    assert panel.run_button.disabled and "compile the model" in panel.note.value
    assert "96 samples" in ModelEditor(classifier(), x, y).finetune_panel.note.value


def test_a_worker_thread_gets_the_starting_threads_keras_settings():
    keras.utils.set_random_seed(7)
    seen = {}

    def work():
        from keras.src.backend.common import global_state

        seen["seed"] = global_state.get_global_attribute("global_random_seed")
        seen["policy"] = keras.config.dtype_policy().name

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float16")
    try:
        in_background(work).join(WAIT)
    finally:
        keras.config.set_dtype_policy(previous)
    assert seen == {"seed": 7, "policy": "float16"}
    plain = {}
    thread = threading.Thread(target=lambda: plain.update(
        policy=keras.config.dtype_policy().name))  # without: Keras' defaults
    thread.start()
    thread.join(WAIT)
    assert plain == {"policy": "float32"}
    assert adapter.thread_settings() is not None


def test_a_baseline_fine_tunes_the_original_the_same_way_and_says_how_much_was_recovered():
    from kerawidgets.training import StopFlag, evaluate, fine_tune, recovery

    editor = editor_with_data()
    x, y = blobs()
    original_weights = weights(editor.original)
    panel = editor.finetune_panel
    panel.epochs.value, panel.batch_size.value, panel.steps.value = 1, 16, 3
    panel.baseline.value = True
    panel.run_button.click()
    assert editor.wait_fine_tune(WAIT)
    result_text = html.unescape(panel.result.value)
    assert "recovered to" in result_text and "of the original's accuracy" in result_text
    assert "recovered to" in editor.panel.status.value
    for a, b in zip(original_weights, weights(editor.original)):  # never trained
        np.testing.assert_array_equal(a, b)
    # The numbers, from the scripting API: the baseline trained as many batches.
    result = editor.recover(x, y, epochs=1, batch_size=16, steps=3, baseline=True)
    numbers = result.baseline
    assert numbers["recovered"] == pytest.approx(evaluate(result.model, (x, y), batch_size=16))
    assert numbers["share"] == pytest.approx(
        numbers["recovered"]["accuracy"] / numbers["baseline"]["accuracy"])
    assert numbers["batches"] == result.step.batches == 3
    flag = StopFlag()  # a stopped fine-tune: the baseline stops after as many batches
    stopped = fine_tune(editor.model, x, y, epochs=2, batch_size=16, stop=flag,
                        progress=lambda done, total, logs: done == 4 and flag.stop())
    assert stopped.stopped and stopped.step.batches == 4
    assert recovery(editor.original, stopped, x, y, epochs=2, batch_size=16)["batches"] == 4
