"""What a rebuild did to each layer's weights, and why.

Each row says whether a layer's weights were *kept* (copied bit for bit),
*reinitialised* (fresh values, with the reason), *new* (a layer the edit
added) or *removed*. The report prints as a table, renders as HTML in a
notebook, and is plain data (`to_records()`).

>>> report = RebuildReport([LayerOutcome("dense", "Dense", "kept", "untouched", 2, False)])
>>> report.kept
['dense']
>>> print(report)  # doctest: +NORMALIZE_WHITESPACE
layer  class  weights  status  reason
dense  Dense  2        kept    untouched
"""

from __future__ import annotations

import dataclasses
import html

from kerawidgets import naming

STATUSES = ("kept", "reinitialised", "new", "removed")


@dataclasses.dataclass(frozen=True)
class LayerOutcome:
    """One layer's fate in a rebuild."""

    layer: str  # layer path ("backbone/conv1")
    class_name: str
    status: str  # one of STATUSES
    reason: str
    weights: int  # number of variables the layer holds (new model, or old if removed)
    edited: bool  # targeted by an edit (as opposed to affected downstream)
    renamed_from: str = ""  # the layer's path before, when the edit renamed it (an output's name kept)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class RebuildReport:
    """Per-layer outcomes of a rebuild, plus notes (compile state, renamed outputs)."""

    def __init__(self, outcomes, notes=()):
        self.outcomes: list[LayerOutcome] = list(outcomes)
        self.notes: list[str] = list(notes)

    def _with(self, status):
        return [o.layer for o in self.outcomes if o.status == status]

    @property
    def kept(self) -> list[str]:
        return self._with("kept")

    @property
    def reinitialised(self) -> list[str]:
        return self._with("reinitialised")

    @property
    def new(self) -> list[str]:
        return self._with("new")

    @property
    def removed(self) -> list[str]:
        return self._with("removed")

    @property
    def changed(self) -> list[LayerOutcome]:
        """Rows that are not plain untouched copies: what a user should read."""
        return [o for o in self.outcomes if o.status != "kept" or o.edited or o.renamed_from]

    def __getitem__(self, layer: str) -> LayerOutcome:
        for outcome in self.outcomes:
            if outcome.layer == layer:
                return outcome
        raise KeyError(f"No layer {layer!r} in this report; layers: {[o.layer for o in self.outcomes]}")

    def __contains__(self, layer) -> bool:
        return any(o.layer == layer for o in self.outcomes)

    def __iter__(self):
        return iter(self.outcomes)

    def __len__(self):
        return len(self.outcomes)

    def to_records(self) -> list[dict]:
        return [o.to_dict() for o in self.outcomes]

    def summary(self) -> str:
        """One line: how many layers kept, reinitialised, new, removed."""
        counts = {s: len(self._with(s)) for s in STATUSES}
        return ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no layers"

    def table(self, rows=None) -> str:
        rows = self.outcomes if rows is None else rows
        header = ("layer", "class", "weights", "status", "reason")
        cells = [header] + [
            (o.layer, o.class_name, str(o.weights), o.status, o.reason) for o in rows
        ]
        widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])

    def __str__(self):
        return self.table()

    def __repr__(self):
        return f"<RebuildReport {self.summary()}>"

    def _repr_html_(self):
        rows = "".join(
            f"<tr class='kw-{o.status}'><td>{html.escape(o.layer)}</td><td>{html.escape(o.class_name)}"
            f"</td><td>{o.weights}</td><td>{o.status}</td><td>{html.escape(o.reason)}</td></tr>"
            for o in self.changed or self.outcomes
        )
        notes = "".join(f"<p>{html.escape(n)}</p>" for n in self.notes)
        return (
            f"<p><b>Rebuild:</b> {html.escape(self.summary())}</p><table><tr><th>layer</th>"
            f"<th>class</th><th>weights</th><th>status</th><th>reason</th></tr>{rows}</table>{notes}"
        )

    def then(self, later: RebuildReport) -> RebuildReport:
        """Compose: this report, followed by a rebuild of its model described by `later`.

        A layer keeps its earlier status unless the later step changed it; a
        layer added earlier stays "new" while later steps keep it, and so do
        the layers inside a sub-network added earlier (one "new" row for the
        sub-network, as before). Layers removed earlier stay in the report,
        at their place in the graph.
        """
        earlier = {o.layer: o for o in self.outcomes}
        new_groups = [o.layer + "/" for o in self.outcomes if o.status == "new"]
        outcomes, placed = [], set()

        def place(outcome):
            if outcome.layer not in placed:
                outcomes.append(outcome)
                placed.add(outcome.layer)

        for o in later.outcomes:
            group = next((g for g in new_groups if o.layer.startswith(g)), None)
            if group is not None:
                place(earlier[group[:-1]])  # the sub-network's own row, where it sits
                if o.status == "kept" and not o.edited:
                    continue  # part of that new row
            before = earlier.get(o.layer)
            if before is None or o.status != "kept":
                place(o)
            elif not o.edited:
                place(before)
            elif before.status == "kept":
                place(o)  # edited now, weights kept: the later reason says what changed
            else:  # edited again after an earlier step made it new or re-initialised it
                place(dataclasses.replace(before, edited=True, reason=f"{before.reason}; then {o.reason}"))
        rows = {o.layer: o for o in outcomes}
        order = naming.merged_order(earlier, rows)  # rows only the earlier step has stay in place
        return RebuildReport([rows.get(layer) or earlier[layer] for layer in order],
                             self.notes + [n for n in later.notes if n not in self.notes])
