"""Undo / redo for the editor: a stack of steps that keeps recent models in memory.

Each step is one applied edit with the model it produced. Undo and redo move
along the stack without rebuilding anything while the step's model is kept;
only the `max_models` steps nearest to the current one keep their model (the
original is always kept). A step whose model was dropped is rebuilt from the
nearest earlier kept model by replaying its edits (layers that the edit
re-initialised get fresh values again).

>>> import keras
>>> from kerawidgets.edits import SetActivation
>>> from kerawidgets.rebuild import rebuild
>>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
>>> history = History(model)
>>> edit = SetActivation("d", "tanh")
>>> result = rebuild(model, [edit])
>>> history.push(Step(edit, None, result.model, result.report))
>>> history.edits == [edit], history.can_undo, history.can_redo
(True, True, False)
>>> history.undo().model is model
True
>>> history.redo().model is result.model
True
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, cast

from kerawidgets import arguments
from kerawidgets._keras_adapter import strategy_scope
from kerawidgets.edits import Edit
from kerawidgets.errors import InvalidEditError
from kerawidgets.rebuild import rebuild

if TYPE_CHECKING:
    from kerawidgets.training import FineTune

__all__ = ["History", "Step"]


@dataclasses.dataclass
class Step:
    """One entry: the edit, its `reinitialize` option, the model and report it produced.

    `record` is the probe's summaries of the step's model (`probe_cache.Record`
    without checkpoints: statistics and samples, small) and `comparisons` what
    the session compared this step with, keyed by ``(base step, layer plotted)``
    (the step before, the original...): both stay when the model is dropped,
    so undo and redo redraw without probing again.

    A `pinned` step (a fine-tune: its weights came from training, so no edit
    replays them) always keeps its model.
    """

    edit: Edit | FineTune | None  # None for step 0, the original
    reinitialize: str | None
    model: Any  # None once dropped to save memory
    report: Any = None
    record: Any = None
    comparisons: dict = dataclasses.field(default_factory=dict)
    pinned: bool = False

    @property
    def change(self) -> Edit | FineTune:
        """The step's edit (or fine-tune); step 0, the original model, has none."""
        if self.edit is None:
            raise InvalidEditError("Step 0 is the original model: it has no edit.")
        return self.edit


class History:
    """Steps from the original model (step 0) to the newest edit, and where we are."""

    def __init__(self, original, *, max_models: int = 8):
        arguments.integer("max_models", max_models, minimum=1)
        self.max_models = int(max_models)
        self.steps: list[Step] = [Step(None, None, original, None)]
        self.position = 0

    # --- where we are ---------------------------------------------------------

    @property
    def current(self) -> Step:
        return self.at(self.position)

    @property
    def edits(self) -> list[Edit | FineTune]:
        """The edits applied to reach the current model, oldest first."""
        return [s.edit for s in self.steps[1:self.position + 1] if s.edit is not None]

    @property
    def can_undo(self) -> bool:
        return self.position > 0

    @property
    def can_redo(self) -> bool:
        return self.position < len(self.steps) - 1

    def at(self, index: int) -> Step:
        """Step `index` with its model (rebuilt from an earlier kept model if it was dropped)."""
        step = self.steps[index]
        if step.model is None:
            start = max(i for i in range(index) if self.steps[i].model is not None)
            model = self.steps[start].model
            for later in self.steps[start + 1:index + 1]:
                # Only edits replay: a fine-tune step is pinned (keeps its model), so
                # `start` is at or after it.
                edit = cast(Edit, later.change)
                with strategy_scope(model):  # a model made under a strategy stays under it
                    model = rebuild(model, [edit], reinitialize=later.reinitialize).model
            step.model = model
            self._trim(keep=index)  # the model just asked for stays, even beyond max_models
        return step

    # --- moving -----------------------------------------------------------------

    def push(self, step: Step) -> None:
        """Add a step after the current one (the redo steps are dropped)."""
        del self.steps[self.position + 1:]
        self.steps.append(step)
        self.position = len(self.steps) - 1
        self._trim()

    def undo(self) -> Step:
        if not self.can_undo:
            raise InvalidEditError("Nothing to undo: this is the original model.")
        self.position -= 1
        return self.current

    def redo(self) -> Step:
        if not self.can_redo:
            raise InvalidEditError("Nothing to redo.")
        self.position += 1
        return self.current

    def reset(self) -> Step:
        """Back to the original model; the edits stay available to redo."""
        self.position = 0
        return self.current

    def _trim(self, keep=None) -> None:
        kept = [i for i, s in enumerate(self.steps) if i > 0 and s.model is not None]
        kept.sort(key=lambda i: abs(i - self.position))
        for index in kept[self.max_models:]:
            if index not in (self.position, keep) and not self.steps[index].pinned:
                self.steps[index].model = None

    def trim(self) -> None:
        """Drop the models beyond `max_models` again (after `at` kept one for a caller)."""
        self._trim()

    def kept_models(self) -> int:
        """How many step models are held in memory (the original included)."""
        return sum(1 for s in self.steps if s.model is not None)
