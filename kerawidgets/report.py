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


@dataclasses.dataclass(frozen=True)
class OutcomeGroup:
    """Layers whose outcomes are the same but for the layer (see `RebuildReport.groups`)."""

    members: list

    @property
    def first(self) -> LayerOutcome:
        return self.members[0]

    @property
    def layers(self) -> list[str]:
        return [o.layer for o in self.members]

    def describe(self) -> str:
        """'conv1: activation relu -> gelu' or '35 Conv2D layers: activation relu -> gelu'."""
        o = self.first
        if len(self.members) == 1:
            return f"{o.layer}: {o.reason}"
        return f"{len(self.members)} {o.class_name} layers: {o.reason}"


_CELL = "padding:2px 6px;vertical-align:top;overflow-wrap:anywhere;text-align:left"


def _group_row(group: OutcomeGroup) -> str:
    o = group.first
    reason = html.escape(o.reason).replace(" -&gt; ", " → ")
    if len(group.members) == 1:
        who = f"{html.escape(o.layer)} <span style='opacity:0.7'>{html.escape(o.class_name)}</span>"
    else:
        names = ", ".join(html.escape(layer) for layer in group.layers)
        who = (f"<details><summary>{len(group.members)} {html.escape(o.class_name)} layers"
               f"</summary><div style='opacity:0.8'>{names}</div></details>")
    return (f"<tr class='kw-{o.status}'><td style='{_CELL}'>{who}</td>"
            f"<td style='{_CELL}'>{o.status}</td><td style='{_CELL}'>{reason}</td></tr>")


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

    def groups(self, rows=None) -> list[OutcomeGroup]:
        """Rows with the same class, status, reason and role, merged in first-seen order.

        A bulk edit of 35 layers is one group ("35 Conv2D layers: activation
        relu -> gelu; weights fit and are kept") instead of 35 rows.

        >>> same = [LayerOutcome(n, "Dense", "kept", "activation relu -> gelu", 2, True)
        ...         for n in ("a", "b")]
        >>> [g.describe() for g in RebuildReport(same).groups()]
        ['2 Dense layers: activation relu -> gelu']
        """
        rows = (self.changed or self.outcomes) if rows is None else rows
        groups: dict[tuple, list[LayerOutcome]] = {}
        for o in rows:
            groups.setdefault((o.class_name, o.status, o.reason, o.edited), []).append(o)
        return [OutcomeGroup(members) for members in groups.values()]

    def _repr_html_(self):
        return self.html()

    def html(self, *, css_class: str = "kw-report", title: str = "Rebuild") -> str:
        """The changed rows as an HTML table, identical outcomes grouped, details folded.

        Columns: layers (a group opens to list its layers), status, why.
        Long reasons wrap inside their column instead of widening the table.
        """
        rows = "".join(_group_row(g) for g in self.groups())
        notes = "".join(f"<div class='kw-report-note'>{html.escape(n)}</div>" for n in self.notes)
        return (
            f"<div class='{css_class}'><div><b>{html.escape(title)}:</b> "
            f"{html.escape(self.summary())}</div>"
            "<table style='border-collapse:collapse;width:100%;table-layout:fixed'>"
            "<colgroup><col style='width:34%'><col style='width:18%'><col></colgroup>"
            "<tr><th style='text-align:left'>layers</th><th style='text-align:left'>weights</th>"
            f"<th style='text-align:left'>why</th></tr>{rows}</table>{notes}</div>"
        )

    def then(self, later: RebuildReport) -> RebuildReport:
        """Compose: this report, followed by a rebuild of its model described by `later`.

        A layer keeps its earlier status unless the later step changed it; a
        layer added earlier stays "new" while later steps keep it, and so do
        the layers inside a sub-network added earlier (one "new" row for the
        sub-network, as before). Layers removed earlier stay in the report,
        at their place in the graph. A layer the later step renamed takes the
        earlier row of its old name (a layer inserted earlier stays "new").
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
            if o.renamed_from in earlier:  # renamed by the later step (an output's name kept)
                o, before = _renamed_across(o, earlier[o.renamed_from])
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


def _renamed_across(later: LayerOutcome, before: LayerOutcome) -> tuple[LayerOutcome, LayerOutcome]:
    """A row a later step renamed, and the earlier row of its old name, under its new name.

    `renamed_from` then names the layer in the first model (none for a layer
    an earlier step added).
    """
    original = before.renamed_from or ("" if before.status == "new" else later.renamed_from)
    return (dataclasses.replace(later, renamed_from=original),
            dataclasses.replace(before, layer=later.layer, renamed_from=original))
