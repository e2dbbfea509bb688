import itertools

import pytest

from kerawidgets import layout as layout_module
from kerawidgets.graph import ModelGraph
from kerawidgets.layout import default_open_groups, layout
from tests._graph_models import branchy, mobilenet, nested_two_levels


def _no_overlap(result):
    boxes = list(result.boxes.values())
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), (a, b)


def _inside(inner, outer):
    return (outer.x <= inner.x and outer.y <= inner.y and inner.x + inner.w <= outer.x + outer.w
            and inner.y + inner.h <= outer.y + outer.h)


def test_every_node_drawn_and_no_overlap_all_open():
    graph = ModelGraph.from_model(branchy())
    result = layout(graph, ["seq", "seq:1"])
    assert set(result.boxes) == {n.id for n in graph.nodes}
    _no_overlap(result)
    assert len(result.edges) == len(graph.edges)
    for group in ("seq", "seq:1"):
        for member in graph.group(group).members:
            assert _inside(result.boxes[member], result.frames[group])
    assert not result.frames["seq"].overlaps(result.frames["seq:1"])
    # Top-down: every edge goes from a box to one below it.
    for edge in result.edges:
        assert result.boxes[edge.source].y < result.boxes[edge.target].y
        assert edge.points[0][1] <= edge.points[-1][1]


def test_shared_layer_calls_are_separate_boxes_and_both_inputs_drawn():
    graph = ModelGraph.from_model(branchy())
    result = layout(graph, [])
    assert {"shared", "shared:1", "x", "y"} <= set(result.boxes)
    assert {"seq", "seq:1"} <= set(result.boxes)  # closed groups are boxes
    assert result.boxes["seq"].kind == "group"
    getitem = next(n.id for n in graph.nodes if n.class_name == "GetItem")
    drawn = {(e.source, e.target) for e in result.edges}
    assert (getitem, "seq") in drawn and ("seq", "seq:1") in drawn and ("seq:1", "cat") in drawn
    assert result.visible["seq/i1"] == "seq"
    _no_overlap(result)


def test_nested_groups_nest_and_close():
    graph = ModelGraph.from_model(nested_two_levels())
    opened = layout(graph, ["mid", "mid/deep"])
    assert _inside(opened.frames["mid/deep"], opened.frames["mid"])
    assert _inside(opened.boxes["mid/deep/deep_dense"], opened.frames["mid/deep"])
    _no_overlap(opened)
    half = layout(graph, ["mid"])
    assert half.boxes["mid/deep"].kind == "group" and "mid/deep" not in half.frames
    closed = layout(graph, ["mid/deep"])  # an inner group of a closed group stays hidden
    assert set(closed.boxes) == {"inp", "pre", "mid", "head"}
    assert {(e.source, e.target) for e in closed.edges} == {
        ("inp", "pre"), ("pre", "mid"), ("mid", "head")}


def test_layout_is_cached(monkeypatch):
    graph = ModelGraph.from_model(branchy())
    calls = []
    original = layout_module._Engine.run

    def counting(self):
        calls.append(1)
        return original(self)

    monkeypatch.setattr(layout_module._Engine, "run", counting)
    monkeypatch.setattr(layout_module, "_SHARED", {})  # no drawing of an earlier test
    first = layout(graph, ["seq"])
    assert layout(graph, ("seq",)) is first
    assert layout(graph, ["seq", "unknown"]) is first
    assert len(calls) == 1
    layout(graph, [])
    assert len(calls) == 2


def test_large_groups_start_closed_and_long_model_is_readable():
    graph = ModelGraph.from_model(mobilenet())
    assert default_open_groups(graph) == frozenset()
    closed = layout(graph)
    assert len(closed.boxes) < 40
    _no_overlap(closed)
    everything = layout(graph, [g.id for g in graph.groups])
    assert len(everything.boxes) == len(graph.nodes)
    _no_overlap(everything)
    scene = everything.scene()
    assert len(scene["nodes"]) == len(graph.nodes)
    assert scene["width"] > 0 and scene["height"] > 0


@pytest.mark.slow
def test_efficientnet_b7_lays_out_once_and_is_cached(monkeypatch):
    # How fast is measured in benchmarks/, never asserted here.
    import keras

    model = keras.applications.EfficientNetB7(weights=None, input_shape=(32, 32, 3))
    graph = ModelGraph.from_model(model)
    runs = []
    original = layout_module._Engine.run

    def counting(self):
        runs.append(1)
        return original(self)

    monkeypatch.setattr(layout_module._Engine, "run", counting)
    monkeypatch.setattr(layout_module, "_SHARED", {})
    every_group = [g.id for g in graph.groups]
    result = layout(graph, every_group)
    assert len(runs) == 1  # computed once
    assert layout(graph, list(reversed(every_group))) is result  # then served from the cache
    assert len(runs) == 1
    assert len(result.boxes) == 816 == len(graph.nodes)
    _no_overlap(result)
    closed = layout(graph)  # the default view folds the blocks into a handful of boxes
    assert len(closed.boxes) < 40
    _no_overlap(closed)


def test_a_closed_group_says_its_size_whole_rather_than_cut():
    from kerawidgets.layout import _fit_first

    # A narrow box: "Stage · 32 layers" does not fit, "32 layers" does (not "Stage · 32…").
    assert _fit_first(("Stage \u00b7 32 layers", "32 layers"), 100, 6.0) == "32 layers"
    assert _fit_first(("Stage \u00b7 32 layers", "32 layers"), 300, 6.0) == "Stage \u00b7 32 layers"
    assert _fit_first(("a long wording", "still too long"), 60, 6.0).endswith("\u2026")


def test_a_graph_differing_only_in_activations_reuses_the_drawing(monkeypatch):
    """The model after an activation swap is drawn as a fresh layout would draw it,
    without laying it out again; a change the layout reads (a name) is laid out anew."""
    import keras

    from kerawidgets.inplace import set_activation_inplace

    def model(name="hidden"):
        keras.utils.set_random_seed(0)
        inp = keras.Input((8,), name="x")
        h = keras.layers.Dense(4, activation="relu", name=name)(inp)
        return keras.Model(inp, keras.layers.Dense(2, name="head")(h))

    monkeypatch.setattr(layout_module, "_SHARED", {})
    runs = []
    original = layout_module._Engine.run
    monkeypatch.setattr(layout_module._Engine, "run", lambda self: runs.append(1) or original(self))
    first = layout(ModelGraph.from_model(model()))
    swapped = model()
    set_activation_inplace(swapped, "hidden", "gelu")
    graph = ModelGraph.from_model(swapped)
    again = layout(graph)
    assert len(runs) == 1 and again.graph is graph
    fresh = original(layout_module._Engine(graph, default_open_groups(graph)))
    assert again.scene() == fresh.scene()
    assert {n["name"]: n.get("activation") for n in again.scene()["nodes"]}["hidden"] == "gelu"
    assert first.scene() != again.scene()  # the activation shown is the graph's own
    renamed = layout(ModelGraph.from_model(model("a_much_longer_layer_name")))
    assert len(runs) == 2 and renamed.boxes["a_much_longer_layer_name"].w > first.boxes["hidden"].w
