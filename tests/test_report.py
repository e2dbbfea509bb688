from kerawidgets.report import LayerOutcome, RebuildReport


def rows():
    return [
        LayerOutcome("a", "Dense", "kept", "untouched", 2, False),
        LayerOutcome("b", "Dense", "reinitialised", "units 64 -> 128", 2, True),
        LayerOutcome("c", "Dropout", "new", "inserted after 'b'", 0, True),
        LayerOutcome("d", "Dense", "removed", "removed by the edit", 2, True),
    ]


def test_lists_table_records_and_html():
    report = RebuildReport(rows(), notes=["recompiled"])
    assert (report.kept, report.reinitialised, report.new, report.removed) == (["a"], ["b"], ["c"], ["d"])
    assert report.summary() == "1 kept, 1 reinitialised, 1 new, 1 removed"
    assert "units 64 -> 128" in str(report) and "note: recompiled" in str(report)
    assert report.to_records()[1]["status"] == "reinitialised"
    assert "<table" in report._repr_html_()
    assert [o.layer for o in report.changed] == ["b", "c", "d"]
    assert "b" in report and report["b"].edited


def test_then_composes_two_steps():
    first = RebuildReport(rows())
    second = RebuildReport([
        LayerOutcome("a", "Dense", "kept", "untouched", 2, False),
        LayerOutcome("b", "Dense", "kept", "activation relu -> tanh", 2, True),
        LayerOutcome("c", "Dropout", "kept", "untouched", 0, False),
    ])
    both = first.then(second)
    assert both["b"].status == "reinitialised"  # still fresh relative to the original
    assert both["b"].reason == "units 64 -> 128; then activation relu -> tanh"
    assert both["c"].status == "new"
    assert both["d"].status == "removed"


def test_then_keeps_removed_rows_in_graph_order():
    first = RebuildReport([rows()[0], rows()[3], rows()[1]])  # a, d (removed), b
    second = RebuildReport([
        LayerOutcome("a", "Dense", "kept", "untouched", 2, False),
        LayerOutcome("b", "Dense", "kept", "untouched", 2, False),
    ])
    assert [o.layer for o in first.then(second)] == ["a", "d", "b"]


def test_then_keeps_a_sub_network_added_earlier_as_one_new_row():
    first = RebuildReport([
        LayerOutcome("a", "Dense", "kept", "untouched", 2, False),
        LayerOutcome("sub", "Functional", "new", "Dense replaced by sub-network 'sub'", 4, True),
        LayerOutcome("head", "Dense", "kept", "untouched", 2, False),
    ])
    second = RebuildReport([
        LayerOutcome("a", "Dense", "kept", "activation relu -> tanh", 2, True),
        LayerOutcome("sub/inner1", "Dense", "kept", "untouched", 2, False),
        LayerOutcome("sub/inner2", "Dense", "kept", "activation relu -> gelu", 2, True),
        LayerOutcome("head", "Dense", "kept", "untouched", 2, False),
    ])
    both = first.then(second)
    assert [o.layer for o in both] == ["a", "sub", "sub/inner2", "head"]
    assert both["sub"].status == "new" and both["a"].edited
    assert both["a"].reason == "activation relu -> tanh"  # the later edit says what changed


def test_identical_outcomes_are_one_expandable_group():
    bulk = [LayerOutcome(f"block_{i}_relu", "ReLU", "kept", "activation relu6 -> gelu", 0, True)
            for i in range(35)]
    report = RebuildReport([*bulk, LayerOutcome("head", "Dense", "reinitialised",
                                                "units 10 -> 5", 2, True)])
    groups = report.groups()
    assert [len(g.members) for g in groups] == [35, 1]
    assert groups[0].describe() == "35 ReLU layers: activation relu6 -> gelu"
    assert groups[1].describe() == "head: units 10 -> 5"
    page = report.html()
    assert page.count("<tr") == 3  # header, the group, head
    assert "<details><summary>35 ReLU layers</summary>" in page and "block_34_relu" in page
    assert "activation relu6 → gelu" in page and "table-layout:fixed" in page
    assert "overflow-wrap:anywhere" in page  # long reasons wrap in their column
