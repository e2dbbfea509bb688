"""training: Keras' own evaluate and fit around edited models (evaluate_pair, fine_tune, recover)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerawidgets import rebuild
from kerawidgets.edits import SetActivation
from kerawidgets.training import (
    FineTune,
    NotCompiledError,
    StopFlag,
    evaluate,
    evaluate_pair,
    fine_tune,
)
from kerawidgets.widgets import ModelEditor


def blobs(n=96, seed=0):
    """Three well-separated Gaussian blobs in 6 dimensions: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    centres = rng.normal(scale=3.0, size=(3, 6))
    return (centres[y] + rng.normal(size=(n, 6))).astype("float32"), y.astype("int32")


def classifier(optimizer="adam"):
    inp = keras.Input((6,), name="x")
    h = keras.layers.Dense(16, activation="relu", name="hidden")(inp)
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="head")(h))
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


class Batches(keras.utils.PyDataset):
    def __init__(self, x, y, batch_size):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i):
        s = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return self.x[s], self.y[s]


def weights(model):
    return [np.array(v) for v in model.weights]


def test_evaluate_pair_is_keras_evaluate_on_both_models_for_every_kind_of_data():
    model = classifier()
    x, y = blobs()
    edited = rebuild(model, [SetActivation("hidden", "tanh")]).model
    expected = {"original": model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True),
                "current": edited.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)}
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    seen = []
    for data, kw in (((x, y), {"batch_size": 16}), (dataset, {}), (Batches(x, y, 16), {})):
        result = evaluate_pair(model, edited, data, progress=lambda d, t, text: seen.append((d, t)),
                               **kw)
        for side in ("original", "current"):
            assert result[side] == pytest.approx(expected[side], rel=1e-5)
    assert expected["original"]["accuracy"] != expected["current"]["accuracy"] or \
        expected["original"]["loss"] != pytest.approx(expected["current"]["loss"])
    assert seen[-1] == (12, 12)  # 6 batches per model, both models
    assert [d for d, _ in seen[:12]] == list(range(1, 13))
    same = evaluate_pair(model, model, x, y, batch_size=32)
    assert same["original"] == same["current"]


def test_evaluate_refuses_a_model_without_a_loss():
    inp = keras.Input((6,))
    bare = keras.Model(inp, keras.layers.Dense(3)(inp), name="bare")
    with pytest.raises(NotCompiledError, match="'bare' is not compiled.*model.compile"):
        evaluate(bare, blobs()[0])
    with pytest.raises(NotCompiledError, match="fine-tune"):
        fine_tune(bare, *blobs())


def test_fine_tune_trains_a_copy_with_a_fresh_optimizer_of_the_same_kind():
    model = classifier(keras.optimizers.SGD(learning_rate=0.05, momentum=0.5))
    x, y = blobs()
    model.fit(x[:8], y[:8], epochs=1, verbose=0)  # the original's optimizer has state
    before = weights(model)
    loss_before = evaluate(model, (x, y))["loss"]
    result = fine_tune(model, x, y, epochs=5, batch_size=16)
    assert result.step == FineTune(epochs=5, batch_size=16, samples=96, batches=30, epochs_done=5,
                                   stopped=False, total_batches=30)
    assert result.step.describe() == "Fine-tune 5 epochs on 96 samples"
    copy = result.model
    assert copy is not model and type(copy.optimizer) is keras.optimizers.SGD
    assert copy.optimizer is not model.optimizer
    assert float(copy.optimizer.learning_rate) == pytest.approx(0.05)
    assert int(copy.optimizer.iterations) == 30  # fresh: only this fine-tune's steps
    for a, b in zip(before, weights(model)):
        np.testing.assert_array_equal(a, b)
    assert evaluate(copy, (x, y))["loss"] < loss_before
    assert len(result.history["loss"]) == 5 and len(result.batch_logs) == 30
    assert result.report["hidden"].edited and "fine-tuned" in result.report["hidden"].reason


def test_a_stop_flag_ends_training_after_the_current_batch_keeping_what_was_learned():
    model = classifier()
    x, y = blobs()
    flag = StopFlag()

    def progress(done, total, logs):
        assert total == 2 * 6 and "loss" in logs
        if done == 3:
            flag.stop()

    result = fine_tune(model, x, y, epochs=2, batch_size=16, stop=flag, progress=progress)
    assert result.stopped and result.step.batches == 3 and result.step.epochs_done == 0
    assert result.step.describe() == ("Fine-tune stopped after 3 of 12 batches (0 of 2 epochs "
                                      "complete) on 96 samples")
    assert int(result.model.optimizer.iterations) == 3
    assert any(not np.array_equal(a, b) for a, b in zip(weights(model), weights(result.model)))


def test_editor_recover_is_a_history_step_that_undo_reverts_and_evaluate_compares():
    model = classifier()
    x, y = blobs()
    editor = ModelEditor(model, x[:16], y[:16], history_size=1)
    editor.apply(SetActivation("hidden", "tanh"))
    edited = editor.model
    edited_weights = weights(edited)
    original_weights = weights(model)
    result = editor.recover(x, y, epochs=2, batch_size=32)
    assert editor.history[-1] == result.step and isinstance(result.step, FineTune)
    assert editor.model is result.model and "Fine-tune 2 epochs on 96 samples" in editor.to_code()
    for a, b in zip(edited_weights, weights(edited)):
        np.testing.assert_array_equal(a, b)
    tuned = evaluate(editor.model, (x, y))
    both = editor.evaluate((x, y))
    assert both["current"] == pytest.approx(tuned) and both["original"] == pytest.approx(
        evaluate(model, (x, y)))
    assert both["current"]["loss"] < evaluate(edited, (x, y))["loss"]
    editor.apply(SetActivation("head", "sigmoid"))  # history_size=1 drops older models...
    editor.undo()
    editor.undo()  # the edited model, rebuilt: the weights from before the fine-tune
    for a, b in zip(edited_weights, weights(editor.model)):
        np.testing.assert_array_equal(a, b)
    editor.redo()  # ...but never the fine-tuned one: no edit replays training
    assert editor.model is result.model
    for a, b in zip(original_weights, weights(model)):
        np.testing.assert_array_equal(a, b)
    assert editor.compare()["layer"] is not None


def test_editor_stop_training_from_a_progress_callback():
    model = classifier()
    x, y = blobs()
    editor = ModelEditor(model, x[:16], y[:16])
    result = editor.recover(x, y, epochs=3, batch_size=16,
                            progress=lambda done, total, logs: done == 2 and editor.stop_training())
    assert result.stopped and result.step.batches == 2
    assert editor.history == [result.step] and "stopped after 2 of 18 batches" in editor.to_code()
    again = editor.recover(x, y, epochs=1, batch_size=16)  # the flag is cleared for the next run
    assert not again.stopped and again.step.batches == 6


def test_fine_tune_on_a_dataset_and_a_py_dataset_uses_their_batches():
    model = classifier()
    x, y = blobs()
    for data in (tf.data.Dataset.from_tensor_slices((x, y)).batch(16), Batches(x, y, 16)):
        result = fine_tune(model, data, epochs=1)
        assert result.step.describe() == "Fine-tune 1 epoch on the dataset (6 batches)"
        assert result.step.batch_size is None and int(result.model.optimizer.iterations) == 6


def test_steps_on_arrays_train_the_same_first_batches_every_epoch():
    model = classifier()
    x, y = blobs()  # 96 samples: 3 batches of 32; Keras alone would run out after 3
    result = fine_tune(model, x, y, epochs=2, batch_size=32, steps=2)
    assert result.step == FineTune(epochs=2, batch_size=32, samples=64, batches=4, epochs_done=2,
                                   stopped=False, total_batches=4)
    assert len(result.batch_logs) == 4 and len(result.history["loss"]) == 2
