"""Garbage collection deferred to the kernel's idle time (`widgets.idle_collection`)."""

from __future__ import annotations

import asyncio
import gc
import weakref

import keras
import numpy as np
import pytest

from kerawidgets.edits import SetActivation
from kerawidgets.widgets import ModelEditor, idle_collection


class _Cycle:
    """An object kept alive only by a reference cycle: freed by a collection, not before."""

    def __init__(self):
        self.me = self


@pytest.fixture
def collections():
    """The generations Python collects (the `gc.callbacks` list of their numbers), with
    the collector's thresholds and state put back afterwards."""
    seen: list[int] = []

    def heard(phase, info):
        if phase == "start":
            seen.append(info["generation"])

    thresholds, state = gc.get_threshold(), vars(idle_collection._COLLECTOR).copy()
    gc.collect()
    gc.callbacks.append(heard)
    yield seen
    gc.callbacks.remove(heard)
    gc.set_threshold(*thresholds)
    vars(idle_collection._COLLECTOR).update(state)
    gc.enable()


def run(coroutine_function):
    return asyncio.run(coroutine_function())


async def empty_operation_then_idle():
    """A deferred operation doing nothing, then the loop's idle turn: whether collection
    is on after it."""
    with idle_collection.deferred():
        pass
    await asyncio.sleep(0)
    return gc.isenabled()


def test_in_a_running_loop_nothing_is_collected_during_the_operation_and_its_garbage_after(
        collections):
    async def operation():
        with idle_collection.deferred():
            during = gc.isenabled()
            garbage = [_Cycle() for _ in range(5000)]  # far past the youngest threshold
            first = weakref.ref(garbage[0])
            del garbage
        collected_during = list(collections)
        left = first() is not None
        await asyncio.sleep(0)  # the loop's idle turn
        return during, collected_during, left, first() is None, gc.isenabled()

    during, collected_during, left, freed, enabled_after = run(operation)
    assert during is False and collected_during == []
    assert left  # the operation's cyclic garbage waits for the idle turn...
    assert freed and enabled_after  # ...which collects it and switches collection on again
    assert collections == [0]  # the youngest generation only: as Python would, once


def test_without_a_running_loop_nothing_changes(collections):
    with idle_collection.deferred():
        assert gc.isenabled()
    assert not idle_collection._COLLECTOR.owed


def test_collection_switched_off_by_the_user_stays_off(collections):
    gc.disable()
    assert run(empty_operation_then_idle) is False
    assert collections == [] and not idle_collection._COLLECTOR.owed


def test_a_threshold_of_zero_is_respected(collections):
    """`gc.set_threshold(0)` is the other way to switch automatic collection off: the
    idle turn collects nothing then, and only gives collection back."""
    gc.set_threshold(0)
    assert run(empty_operation_then_idle) is True
    assert collections == []


def test_an_operation_before_the_idle_turn_first_runs_the_collection_owed(collections):
    async def two_operations():
        with idle_collection.deferred():
            first = weakref.ref(_Cycle())
        with idle_collection.deferred():  # no idle turn between: a loop of Applies in a cell
            freed_at_start = first() is None
            during = gc.isenabled()
        await asyncio.sleep(0)
        return freed_at_start, during, gc.isenabled()

    assert run(two_operations) == (True, False, True)


def test_an_error_in_the_operation_still_owes_and_gets_its_collection(collections):
    async def failing():
        with pytest.raises(ValueError), idle_collection.deferred():
            raise ValueError("the operation failed")
        off = not gc.isenabled()
        await asyncio.sleep(0)
        return off, gc.isenabled()

    assert run(failing) == (True, True)


def test_a_nested_operation_leaves_the_outer_one_in_charge(collections):
    async def nested():
        with idle_collection.deferred():
            with idle_collection.deferred():
                pass
            inner_left_it_off = not gc.isenabled()
        await asyncio.sleep(0)
        return inner_left_it_off, gc.isenabled()

    assert run(nested) == (True, True)


@pytest.mark.parametrize("long_lived, expected", [(4, 2), (10**9, 1)])
def test_everything_is_collected_when_pythons_rule_says_so(collections, long_lived, expected):
    """Past the next generation's threshold the two young ones are collected; everything
    too only when the objects grown old since outnumber a quarter of the long-lived ones."""
    state = idle_collection._COLLECTOR
    state.owed = True
    idle_collection.collect_when_idle()  # what the collector knows: the counts as they are
    kept = [_Cycle() for _ in range(100)]  # survivors that will grow old
    gc.set_threshold(700, 0, 0)  # the next generations due at once
    state.total, state.owed = long_lived, True
    collections.clear()
    assert idle_collection.collect_when_idle() == expected
    assert collections == [1, 2][:expected]
    assert gc.isenabled() and kept


def _editor():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(hidden))
    editor = ModelEditor(model, np.random.default_rng(0).normal(size=(8, 4)).astype("float32"))
    enabled = []
    editor.on_change(lambda: enabled.append(gc.isenabled()))
    return editor, enabled


def test_the_editors_operations_pause_collection_in_a_kernel_only(collections):
    """Apply, Undo, Redo, Reset and the switch above the plots; in a script, nothing."""
    async def in_a_kernel():
        editor, enabled = _editor()
        editor.apply(SetActivation("hidden", "gelu"))
        editor.undo()
        editor.redo()
        editor.reset()
        await asyncio.sleep(0)
        return enabled, gc.isenabled()

    enabled, after = run(in_a_kernel)
    assert enabled == [False] * 4 and after

    async def switching_the_plots():  # the switch above the plots: `show`
        editor, _ = _editor()
        editor.apply(SetActivation("hidden", "gelu"))
        await asyncio.sleep(0)
        seen, show = [], editor.session.show
        editor.session.show = lambda *a, **k: (seen.append(gc.isenabled()), show(*a, **k))
        editor.plot_controls.against.value = "previous"
        await asyncio.sleep(0)
        return seen, gc.isenabled()

    assert run(switching_the_plots) == ([False], True)
    editor, enabled = _editor()  # a script: no event loop runs
    editor.apply(SetActivation("hidden", "gelu"))
    editor.undo()
    assert enabled == [True, True]
