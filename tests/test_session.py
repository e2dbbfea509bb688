"""EditSession driven with no widget: history, dry runs, comparisons, code, saving, observers.

`test_every_session_test_passes_with_ipywidgets_blocked` runs this file again in
a fresh Python where importing ipywidgets or anywidget raises, so the session
(and the package's non-widget API) must work without them.
"""

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import layers

from kerawidgets.edits import ReplaceLayer, SetActivation
from kerawidgets.errors import InvalidEditError, ShapeMismatchError
from kerawidgets.session import EditSession, SessionObserver

BLOCKED = "KERAWIDGETS_TEST_WIDGETS_BLOCKED"
ROOT = Path(__file__).resolve().parents[1]


def mlp():
    inp = keras.Input((6,), name="x")
    h = layers.Dense(12, activation="relu", name="hidden")(inp)
    h = layers.Dense(12, activation="relu", name="middle")(h)
    out = layers.Dense(4, activation="softmax", name="head")(h)
    return keras.Model(inp, out, name="mlp")


@pytest.fixture
def session():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 6)).astype("float32")
    return EditSession(mlp(), x, rng.integers(0, 4, size=32), batch_size=16)


class Log(SessionObserver):
    """Records every event a view of the session would get."""

    def __init__(self):
        self.events = []

    def busy(self, active, text="", step=0, steps=0):
        self.events.append(("busy", active, step, steps) if active else ("idle",))

    def moved(self):
        self.events.append(("moved",))

    def compared(self, comparison, error):
        self.events.append(("compared", comparison is not None, error))

    def settled(self, message, error):
        self.events.append(("settled", message, error))

    def failed(self, error, edit):
        self.events.append(("failed", type(error).__name__, edit))

    def notice(self, text):
        self.events.append(("notice", text))


def test_widgets_are_not_loaded():
    if os.environ.get(BLOCKED):
        assert not {"ipywidgets", "anywidget"} & set(sys.modules)
        with pytest.raises(ImportError):
            import ipywidgets  # noqa: F401


def test_apply_undo_redo_reset_move_the_history(session):
    original = session.original
    report = session.apply(SetActivation("hidden", "tanh"))
    assert report["hidden"].status == "kept" and session.position == 1
    first = session.model
    session.apply(SetActivation("middle", "gelu"))
    assert session.history == [SetActivation("hidden", "tanh"), SetActivation("middle", "gelu")]
    assert session.edited == {"hidden", "middle"}
    session.undo()
    assert session.model is first and session.edited == {"hidden"} and session.can_redo
    session.reset()
    assert session.model is original and session.report is None and session.edited == set()
    assert not session.can_undo and session.comparison is None
    session.redo()
    assert session.model is first
    assert session.model.get_layer("hidden").activation.__name__ == "tanh"
    assert original.get_layer("hidden").activation.__name__ == "relu"  # never touched


def test_a_refused_edit_changes_nothing_and_is_told(session):
    log = Log()
    session.watch(log)
    with pytest.raises(ShapeMismatchError):
        session.apply(ReplaceLayer("middle", layers.Dense(5, name="middle")))
    assert session.position == 0 and session.model is session.original
    assert log.events[-2][:2] == ("failed", "ShapeMismatchError")
    assert log.events[-1] == ("idle",) and not session.busy
    with pytest.raises(InvalidEditError, match="reinitialize"):
        session.apply(SetActivation("hidden", "tanh"), reinitialize="all")
    with pytest.raises(InvalidEditError, match="Nothing to undo"):
        session.undo()


def test_a_move_tells_observers_each_step_in_order(session):
    log, changes = Log(), []
    session.watch(log)
    session.on_change(lambda: changes.append(session.position))
    session.apply(SetActivation("hidden", "tanh"))
    whole = [e[2] for e in log.events if e[0] == "busy" and e[2] == int(e[2])]
    assert whole == [1, 2, 3, 4, 5] and all(e[3] == 5 for e in log.events if e[0] == "busy")
    kinds = [e[0] for e in log.events if e[0] != "busy"]
    assert kinds == ["moved", "compared", "settled", "idle"]
    assert log.events[-2] == ("settled", "Applied: Set the activation of 'hidden' to 'tanh'.", None)
    assert changes == [1]
    log.events.clear()
    session.reset()
    assert ("compared", False, None) in log.events and changes == [1, 0]


def test_after_a_move_the_new_models_layers_are_walked_once(session, monkeypatch):
    from kerawidgets import targets

    walked, real = [], targets._walk

    def walk(model, prefix):
        if not prefix:
            walked.append(model)
        return real(model, prefix)

    monkeypatch.setattr(targets, "_walk", walk)

    class Asks(SessionObserver):  # graph, plots and panel ask about the new model's layers
        def moved(self):
            session.layer_paths(), session.layer("hidden")

        def settled(self, message, error):
            session.edited_layers(), session.layer_paths()

    session.watch(Asks())
    session.apply(SetActivation("hidden", "tanh"))
    assert walked.count(session.model) == 1
    walked.clear()
    session.layer_paths(), session.layer_paths()  # outside a move: walked as it is now
    assert walked == [session.model, session.model]


def test_dry_run_is_cached_and_reused_by_apply(session, monkeypatch):
    import kerawidgets.session as module

    calls = []
    real = module.rebuild
    monkeypatch.setattr(module, "rebuild", lambda *a, **k: calls.append(1) or real(*a, **k))
    preview = session.dry_run(SetActivation("hidden", "tanh"))
    assert session.dry_run(SetActivation("hidden", "tanh")) is preview and calls == [1]
    refused = session.dry_run(ReplaceLayer("middle", layers.Dense(5, name="middle")))
    assert isinstance(refused, ShapeMismatchError) and session.position == 0  # returned, not raised
    session.apply(SetActivation("hidden", "tanh"))
    assert calls == [1, 1] and session.model is preview.model
    session.dry_run(SetActivation("hidden", "tanh"))  # another model now: rebuilt
    assert len(calls) == 3


def test_compare_against_the_previous_step_or_the_original(session):
    empty = session.compare()
    assert empty["agreement"] is None and empty["against"] == "original"  # the plots' default
    session.apply(SetActivation("hidden", "tanh"))
    first = session.compare()
    assert first["layer"] == "hidden" and first["recompute"] == "incremental"
    assert 0 <= first["agreement"]["top1_agreement"] <= 1
    session.apply(SetActivation("middle", "gelu"))
    previous, original = session.compare("previous"), session.compare("original")
    assert previous["layer"] == original["layer"] == "middle"
    # Against the original, the first edit's change is in it too: hidden moved.
    assert original["movement"]["hidden"] > 0 and previous["movement"]["hidden"] == 0
    assert previous["per_layer"]["before"]["hidden"] != original["per_layer"]["before"]["hidden"]
    with pytest.raises(InvalidEditError, match="against"):
        session.compare("first")
    figures = session.figures()
    assert set(figures) == {"comparison", "depth"}


def test_undo_and_redo_run_no_forward_pass(session, monkeypatch):
    from tests.models import CountCalls

    session.apply(SetActivation("hidden", "tanh"))
    session.apply(SetActivation("middle", "gelu"))
    calls = CountCalls(monkeypatch)
    session.undo()
    session.redo()
    session.reset()
    session.redo()
    session.redo()
    assert calls.names == [] and session.comparison is not None


def test_to_code_replays_the_history(session):
    session.apply(SetActivation("hidden", "tanh"))
    session.apply(ReplaceLayer("middle", layers.Dense(4, name="middle")), reinitialize="downstream")
    code = session.to_code("net")
    assert "2 edit(s) follow" in code and "reinitialize='downstream'" in code
    namespace = {"net": mlp()}
    exec(code, namespace)  # noqa: S102 - the script we just wrote
    replayed = namespace["net"]
    assert replayed.get_layer("hidden").activation.__name__ == "tanh"
    assert replayed.get_layer("middle").units == 4
    session.undo()
    assert "1 edit(s) follow" in session.to_code()


def test_save_checks_the_reloaded_model(session, tmp_path):
    log = Log()
    session.watch(log)
    session.apply(SetActivation("hidden", "tanh"))
    path = session.save(tmp_path / "edited.keras")
    reloaded = keras.saving.load_model(path)
    assert reloaded.get_layer("hidden").activation.__name__ == "tanh"
    assert log.events[-2][0] == "notice" and log.events[-2][1].startswith(f"Saved to {path}")
    with pytest.raises(InvalidEditError, match=".keras"):
        session.save(tmp_path / "edited.h5")
    assert not (tmp_path / "edited.h5").exists()


def test_busy_is_one_state_cleared_however_an_operation_ends(session):
    log = Log()
    session.watch(log)
    with pytest.raises(RuntimeError):
        with session.working(3) as progress:
            progress(1, "one")
            with session.working(7) as inner:  # nested: leaves the outer progress alone
                inner(5, "inner")
            raise RuntimeError("stop")
    assert log.events == [("busy", True, 1, 3), ("idle",)] and not session.busy


def test_every_session_test_passes_with_ipywidgets_blocked():
    if os.environ.get(BLOCKED):
        pytest.skip("already blocked")
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('ipywidgets', 'anywidget'):\n"
        "            raise ImportError(f'{name} is blocked in this test')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import pytest\n"
        f"sys.exit(pytest.main([{__file__!r}, '-q', '-p', 'no:nbval', '-p', 'no:cacheprovider']))\n"
    )
    env = {**os.environ, BLOCKED: "1", "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", blocker], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert " passed" in run.stdout and "failed" not in run.stdout


# --- what the plots compare with, and which edited layer they plot ------------------------


def test_plots_compare_with_the_original_by_default_and_the_switch_keeps_it(session,
                                                                          monkeypatch):
    from tests.models import CountCalls

    log = Log()
    session.watch(log)
    assert session.against == "original" and session.edited_layers() == []
    session.apply(SetActivation("hidden", "tanh"))
    session.apply(SetActivation("middle", "gelu"))
    shown = session.compare()
    assert shown["against"] == "original" and shown == session.compare("original")
    assert shown["movement"]["hidden"] > 0  # the first edit's change is in it
    calls = CountCalls(monkeypatch)
    session.show("previous")  # both sides' summaries are held: no forward pass
    assert session.against == "previous" and calls.names == []
    assert log.events[-2][:2] == ("compared", True)
    previous = session.compare()
    assert previous["against"] == "previous" and previous["movement"]["hidden"] == 0
    assert session.comparison.movement == previous["movement"]
    for move in (session.undo, session.redo, session.reset, session.redo, session.redo):
        move()
        assert session.against == "previous"
    session.show("original")
    assert calls.names == [] and session.compare()["movement"]["hidden"] > 0
    with pytest.raises(InvalidEditError, match="against"):
        session.show("start")


def test_after_a_bulk_edit_every_edited_layer_can_be_plotted(session, monkeypatch):
    from tests.models import CountCalls

    session.apply(SetActivation(layers.Dense, "elu"))  # hidden, middle and head
    assert session.edited_layers() == ["hidden", "middle", "head"]  # graph order
    assert session.edited == {"hidden", "middle", "head"}
    assert session.plotted_layer is None and session.compare()["layer"] == "hidden"
    calls = CountCalls(monkeypatch)
    session.show(layer="middle")
    numbers = session.compare()
    assert numbers["layer"] == "middle" and session.plotted_layer == "middle"
    assert numbers["layer_stats"]["after"] == numbers["per_layer"]["after"]["middle"]
    assert session.compare(layer="head")["layer"] == "head"  # asked for, not shown
    assert session.plotted_layer == "middle" and calls.names == []
    assert session.comparison.focus_after == "middle"
    with pytest.raises(InvalidEditError, match="'x' is not an edited layer"):
        session.show(layer="x")
    session.show(layer=None)  # back to the edit's own layer
    assert session.compare()["layer"] == "hidden"
    session.show(layer="head")
    session.apply(SetActivation("hidden", "tanh"))  # a move: the new edit's own layer
    assert session.plotted_layer is None and session.compare()["layer"] == "hidden"
    assert session.edited_layers("previous") == ["hidden"]
    session.show("previous", layer="hidden")
    with pytest.raises(InvalidEditError, match="'middle' is not an edited layer"):
        session.show(layer="middle")  # not changed by the last edit
    session.show("original")  # the layer shown stays while it is listed
    assert session.plotted_layer == "hidden"


# --- the edit probed ahead, while the user reaches for Apply ------------------------------


def test_an_edit_probed_ahead_is_applied_without_probing_again(session, monkeypatch):
    from tests.models import ThreadCalls

    edit = SetActivation("middle", "tanh")
    calls = ThreadCalls(monkeypatch)
    session.probe_edit_ahead(edit).join(timeout=120)
    assert calls.of("kerawidgets-probe-ahead")  # the original, then the edited model
    session.apply(edit)
    assert calls.of("MainThread") == []
    got = session.compare()
    plain = EditSession(mlp(), session.probe.x, session.probe.y, batch_size=16)
    plain.original.set_weights(session.original.get_weights())
    plain.apply(edit)
    want = plain.compare()
    assert got["recompute"] == want["recompute"] == "incremental"
    keys = ("top1_agreement", "max_abs_diff", "mean_abs_diff", "loss_after")
    assert [got["agreement"][k] for k in keys] == pytest.approx([want["agreement"][k] for k in keys])
    assert got["layer_stats"]["after"]["mean"] == pytest.approx(want["layer_stats"]["after"]["mean"])


def test_applying_another_edit_cancels_the_guess_and_compares_the_applied_one(session):
    guess = session.probe_edit_ahead(SetActivation("middle", "tanh"))
    session.apply(SetActivation("hidden", "gelu"))
    guess.join(timeout=120)
    assert session.compare()["layer"] == "hidden"
    assert session.model.get_layer("middle").activation.__name__ == "relu"
    assert not guess.is_alive() and session.compare()["recompute"] == "incremental"


def test_apply_waits_for_the_edit_probed_ahead_and_shows_its_progress(session, monkeypatch):
    import threading

    from tests.models import ThreadCalls

    session.probe.summaries(session.original)
    probing = threading.Event()

    class Watch(SessionObserver):
        def busy(self, active, text="", step=0, steps=0):
            if active and 3 < step < 4:  # the probing step, moved by the run ahead's calls
                probing.set()

    session.watch(Watch())
    held = []

    def gate(call):  # the run ahead's 2nd call waits until Apply shows its progress
        held.append(call)
        if len(held) == 2:
            assert probing.wait(timeout=120)

    calls = ThreadCalls(monkeypatch, gate)
    edit = SetActivation("hidden", "tanh")
    guess = session.probe_edit_ahead(edit)
    applying = threading.Thread(target=session.apply, args=(edit,), name="applying")
    applying.start()
    applying.join(timeout=120)
    guess.join(timeout=120)
    assert not applying.is_alive() and probing.is_set()
    assert calls.of("applying") == [] and len(calls.of("kerawidgets-probe-ahead")) == 6
    assert session.compare()["recompute"] == "incremental"


def test_a_dry_run_of_another_edit_cancels_the_guess_before_it_rebuilds(session, monkeypatch):
    import threading

    from kerawidgets import probe as probe_module
    from tests.models import ThreadCalls

    session.probe.summaries(session.original)
    cancelled = threading.Event()

    real_setattr = probe_module._Ahead.__setattr__

    def noting(ahead, name, value):
        real_setattr(ahead, name, value)
        if name == "cancelled" and value:
            cancelled.set()

    monkeypatch.setattr(probe_module._Ahead, "__setattr__", noting)
    calls = ThreadCalls(monkeypatch, gate=lambda call: cancelled.wait(timeout=120))
    guess = session.probe_edit_ahead(SetActivation("middle", "tanh"))  # held at its 1st call
    session.dry_run(SetActivation("hidden", "gelu"))  # the user picked another edit
    guess.join(timeout=120)
    assert not guess.is_alive()
    assert calls.of("kerawidgets-probe-ahead") == ["middle"]  # stopped after that call


def test_previewing_the_same_edit_again_keeps_its_guess(session, monkeypatch):
    import threading

    from tests.models import ThreadCalls

    session.probe.summaries(session.original)
    go = threading.Event()
    calls = ThreadCalls(monkeypatch, gate=lambda call: go.wait(timeout=120))
    edit = SetActivation("middle", "tanh")
    guess = session.probe_edit_ahead(edit)  # held at its first call
    assert session.probe_edit_ahead(edit) is None  # the same edit again: on its way
    go.set()
    guess.join(timeout=120)
    session.apply(edit)
    assert calls.of("MainThread") == [] and session.compare()["recompute"] == "incremental"


def test_the_comparison_ahead_is_the_one_apply_shows_and_keeps_what_was_drawn(session):
    edit = SetActivation("middle", "tanh")
    assert session.comparison_ahead(edit) is None  # not rebuilt yet: nothing is
    session.probe_edit_ahead(edit).join(timeout=120)
    ahead = session.comparison_ahead(edit)
    assert session.comparison_ahead(edit) is ahead  # made once
    ahead.pngs[("depth", "drawn ahead")] = b"png"
    session.apply(edit)
    shown = session.comparison
    assert shown.pngs == {("depth", "drawn ahead"): b"png"}
    assert shown.focus_after == ahead.focus_after == "middle"
    assert shown.stats_after == ahead.stats_after and shown.agreement == ahead.agreement
    assert session.compare()["recompute"] == "incremental"
    session.undo()
    session.redo()
    assert session.comparison is shown
