"""Python's garbage collection moved off the editor's clicks, onto the kernel's idle time.

A full collection walks every object the kernel holds. With TensorFlow, Keras,
matplotlib and an editor's models alive that is 460,000-630,000 objects, 0.3-0.8 s on a
2-core machine, and Python starts one whenever enough objects have piled up since the
last: each Apply, Undo or Redo makes a model's worth of them, so now and then a click took
that much longer (on MobileNetV2 at 224x224, the slowest of 108 Undos took 0.77 s against
a median of 14 ms; `benchmarks/bench_idle_collection.py`).

`deferred()` pauses Python's automatic collection for one editor operation in a kernel
(an asyncio event loop running in this thread, as in ipykernel). It stays paused until the
loop is idle after the operation, the widgets' updates gone to the page; the loop then
collects and switches automatic collection on again (`collect_when_idle`). Switched on at
the operation's end, Python would start the collection it owes at the next allocation,
still inside the operation.

It collects by Python's own rules, counted in operations instead of allocations: the
youngest generation after each operation, the next one every `gc.get_threshold()[1]` operations,
and everything when, besides, the objects that reached the oldest generation since its
last full collection outnumber a quarter of those it kept then (CPython's
`long_lived_pending > long_lived_total / 4`). Objects an operation made and the next few
dropped (a model applied, then undone and replaced) go with the young generations, as
before; a full collection still comes about as often, only never during a click.

An operation that starts before the loop was idle (a loop of Applies in one cell) first
runs the collection the last one owes, so garbage never piles up over more than one
operation. Without a running event loop (a script), with automatic collection switched
off by the user, or inside another deferred operation, `deferred()` changes nothing.

>>> import asyncio, gc
>>> async def operation():
...     with deferred():
...         during = gc.isenabled()
...     await asyncio.sleep(0)  # idle: the loop collects
...     return during, gc.isenabled()
>>> asyncio.run(operation())
(False, True)
>>> with deferred():  # no running event loop: nothing changes
...     gc.isenabled()
True
"""

from __future__ import annotations

import asyncio
import contextlib
import gc

__all__ = ["deferred", "collect_when_idle", "running_loop"]


class _Collector:
    """What the deferred collections know: the objects the last full collection kept
    (`total`), those that reached the oldest generation since (`pending`)."""

    def __init__(self):
        self.total = 0  # measured at the first collection (`full_collections` differs)
        self.pending = 0
        self.full_collections = -1  # Python's count of full collections when last seen
        self.active = False  # a deferred operation runs (one inside it changes nothing)
        self.owed = False  # an operation ended: collection is off until its collection runs


_COLLECTOR = _Collector()


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The asyncio event loop running in this thread (a kernel's), or None (a script)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


@contextlib.contextmanager
def deferred():
    """Automatic garbage collection paused while the block runs, in a kernel; the loop
    collects once it is idle after it (see the module docstring)."""
    state = _COLLECTOR
    if state.owed and not state.active:  # no idle turn since the last operation (a loop
        collect_when_idle()  # of Applies in one cell): its collection first, as Python would
    loop = running_loop()
    if loop is None or state.active or not gc.isenabled():
        yield  # a script, inside another deferred operation, or collection switched off
        return
    state.active = True
    gc.disable()
    try:
        yield
    finally:
        # Off until the collection runs: switched on now, Python would start the collection
        # it owes at the next allocation, still inside the operation's time.
        state.active, state.owed = False, True
        loop.call_soon(collect_when_idle)


def collect_when_idle() -> int | None:
    """The collection a deferred operation owes (run by the event loop), after which
    automatic collection is on again. Python's own rules, counted in operations: the
    youngest generation each time; the two young ones when the youngest has been
    collected more often than the threshold of the next (`gc.get_threshold()`); everything
    when, besides, the objects that reached the oldest generation since its last full
    collection outnumber a quarter of those it kept. Returns the generation collected
    (0, 1 or 2), or None (nothing owed, an operation runs, or a threshold of 0: the user's
    way of switching automatic collection off).

    >>> collect_when_idle() is None
    True
    """
    state = _COLLECTOR
    if not state.owed or state.active:
        return None
    state.owed = False
    generation = None
    try:
        threshold0, threshold1, threshold2 = gc.get_threshold()
        if threshold0 == 0:
            return None
        if gc.get_stats()[2]["collections"] != state.full_collections:  # first, or Python's
            state.total, state.pending = len(gc.get_objects(generation=2)), 0
        if gc.get_count()[1] <= threshold1:
            gc.collect(0)
            generation = 0
        else:
            young = len(gc.get_objects(generation=0)) + len(gc.get_objects(generation=1))
            state.pending += max(0, young - gc.collect(1))  # the survivors grow old
            generation = 1
            if gc.get_count()[2] > threshold2 and state.pending > state.total / 4:
                gc.collect()
                state.total, state.pending = len(gc.get_objects(generation=2)), 0
                generation = 2
        state.full_collections = gc.get_stats()[2]["collections"]
    finally:
        gc.enable()
    return generation
