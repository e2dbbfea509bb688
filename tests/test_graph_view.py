import gc
import weakref
import xml.etree.ElementTree as ET

import keras
import pytest

from kerawidgets.errors import KerawidgetsError
from kerawidgets.widgets import GraphView
from tests._graph_models import branchy, nested_two_levels

HOSTILE = "<img src=x onerror=alert(1)>"


def test_static_files_ship_in_the_package():
    from kerawidgets.widgets.closing import STATIC

    js_path = STATIC / "graph_view.js"
    assert js_path.exists() and (STATIC / "graph_view.css").exists()
    js = js_path.read_text()
    assert "innerHTML" not in js and "import " not in js.split("export default")[0]


def test_a_closed_view_is_freed():
    """anywidget ties an instance to its class's file watcher when `_esm` is a path
    (manzt/anywidget#929): the view is given the module's text, so closed, it goes."""
    view = GraphView(nested_two_levels())
    assert "export default" in view._esm and "kw-node" in view._css
    view.close()
    freed = weakref.ref(view)
    del view
    gc.collect()
    assert freed() is None


def test_initial_traits():
    view = GraphView(nested_two_levels())
    assert view.open_groups == ["mid", "mid/deep"]
    assert {n["id"] for n in view.scene["nodes"]} == {n.id for n in view.graph.nodes}
    assert view.selected == {} and view.heat == {} and view.marks == {}
    assert view.theme == "auto"


def test_open_and_close_groups_redraw():
    view = GraphView(nested_two_levels())
    view.close_group("mid")
    assert view.open_groups == ["mid/deep"]
    assert "mid" in {n["id"] for n in view.scene["nodes"]}
    view.open_group("mid/deep")
    assert view.open_groups == ["mid", "mid/deep"]
    view.open_groups = ["mid", "bogus"]  # as the front end would send it
    assert view.open_groups == ["mid"]
    assert view.scene["open_groups"] == ["mid"]
    with pytest.raises(KerawidgetsError):
        view.open_group("bogus")


def test_selection_is_validated_and_reported():
    view = GraphView(branchy(), open_groups=[])
    seen = []
    view.on_select(seen.append)
    view.select("shared:1")
    assert view.selected == {"id": "shared:1", "layer": "shared"}
    view.selected = {"id": "<script>", "layer": "x"}  # unknown id from the front end
    assert view.selected == {"id": "shared:1", "layer": "shared"}
    view.selected = {"id": "cat", "layer": "forged"}  # the layer comes from the graph
    assert view.selected == {"id": "cat", "layer": "cat"}
    view.select("seq:1/i2")  # selecting a hidden node opens its group
    assert "seq:1" in view.open_groups
    assert view.selected["layer"] == "seq/i2"
    view.select(None)
    assert view.selected == {}
    assert [s.get("id") for s in seen] == ["shared:1", "cat", "seq:1/i2", None]
    with pytest.raises(KerawidgetsError):
        view.select("nope")


def test_heat_and_marks():
    view = GraphView(branchy())
    view.set_heat({"shared": 2.0, "cat": 4.0, "x": 0.0})
    assert view.heat == {"shared": 0.5, "shared:1": 0.5, "cat": 1.0, "x": 0.0}
    view.set_heat({"cat": -1.0, "x": 1.0})
    assert view.heat == {"cat": 0.0, "x": 1.0}
    view.set_heat(None)
    assert view.heat == {}
    view.mark("cat", "error")
    view.mark("shared:1")
    assert view.marks == {"cat": "error", "shared:1": "edited"}
    with pytest.raises(KerawidgetsError):
        view.mark("cat", "bad")
    view.clear_marks()
    assert view.marks == {}


def test_set_model_keeps_what_still_exists():
    model = nested_two_levels()
    view = GraphView(model, open_groups=["mid"])
    view.select("pre")
    view.mark("head", "edited")
    inp = keras.Input((6,), name="inp")
    new = keras.Model(inp, keras.layers.Dense(2, name="head")(keras.layers.Dense(6, name="pre")(inp)))
    view.set_model(new)
    assert view.open_groups == []
    assert view.selected == {"id": "pre", "layer": "pre"}
    assert view.marks == {"head": "edited"}
    assert {n["id"] for n in view.scene["nodes"]} == {"inp", "pre", "head"}
    view.set_model(model)
    assert view.selected == {"id": "pre", "layer": "pre"}


def test_save_svg(tmp_path):
    view = GraphView(branchy())
    view.set_heat({"cat": 1.0})
    view.select("cat")
    path = view.save(tmp_path / "graph.svg")
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    assert view.to_svg().count("data-id=") == len(view.scene["nodes"])


def test_set_heat_skips_a_nested_models_group_id_but_refuses_unknown_names():
    import keras
    import pytest

    from kerawidgets.errors import UnknownLayerError
    from kerawidgets.widgets import GraphView

    inner = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3, name="inner_dense")], name="inner")
    inp = keras.Input((3,))
    model = keras.Model(inp, keras.layers.Dense(1, name="out")(inner(inp)))
    view = GraphView(model)
    view.set_heat({"inner": 0.5, "inner/inner_dense": 1.0, "out": 0.5})
    assert view.heat == {"inner/inner_dense": 1.0, "out": 0.5}
    with pytest.raises(UnknownLayerError):
        view.set_heat({"no_such_layer": 1.0})


class _Sent:
    """Records the messages a widget sends to the front end (echoes and updates)."""

    def __init__(self, view):
        self.messages = []
        view._send = lambda msg, buffers=None: self.messages.append(msg)

    def last(self, key):
        """The last value of `key` sent to the front end (by an update or an echo)."""
        values = [m["state"][key] for m in self.messages if key in m.get("state", {})]
        return values[-1] if values else None


def test_forged_selection_from_the_front_end_is_reverted():
    view = GraphView(branchy(), open_groups=[])
    view.select("cat")
    seen = []
    view.on_select(seen.append)
    sent = _Sent(view)
    # Front-end messages arrive through set_state (inside hold_trait_notifications).
    view.set_state({"selected": {"id": HOSTILE, "layer": "zzz"}})
    assert view.selected == {"id": "cat", "layer": "cat"}
    assert seen == []  # no callback ever saw the forged value
    assert sent.last("selected") == {"id": "cat", "layer": "cat"}  # the front end is corrected
    view.set_state({"selected": ["not", "a", "dict"]})
    assert view.selected == {"id": "cat", "layer": "cat"} and seen == []
    # A known id with a forged layer: the layer comes from the graph, the browser is told.
    view.set_state({"selected": {"id": "shared:1", "layer": "forged"}})
    assert view.selected == {"id": "shared:1", "layer": "shared"}
    assert seen == [{"id": "shared:1", "layer": "shared"}]
    assert sent.last("selected") == {"id": "shared:1", "layer": "shared"}
    view.set_state({"selected": {}})  # clearing from the browser is allowed
    assert view.selected == {} and seen[-1] == {}


def test_editor_survives_a_forged_selection():
    from kerawidgets.widgets import ModelEditor

    inp = keras.Input((4,), name="x")
    model = keras.Model(inp, keras.layers.Dense(2, name="head")(inp))
    editor = ModelEditor(model)
    editor.view.set_state({"selected": {"id": "head", "layer": "head"}})
    assert editor.selected == "head"
    editor.view.set_state({"selected": {"id": "<img src=x>", "layer": "zzz"}})
    assert editor.selected == "head"


def test_front_end_writes_to_open_groups_are_filtered():
    view = GraphView(nested_two_levels())
    sent = _Sent(view)
    view.set_state({"open_groups": ["mid", "bogus", "mid"]})
    assert view.open_groups == ["mid"]
    assert sent.last("open_groups") == ["mid"]
    assert view.scene["open_groups"] == ["mid"]


def test_kernel_only_traits_refuse_front_end_writes():
    view = GraphView(branchy())
    view.set_heat({"cat": 1.0})
    view.mark("cat", "edited")
    scene = view.scene
    sent = _Sent(view)
    view.set_state({"heat": {"x": "<script>"}, "marks": {"x": "<b>evil</b>"},
                    "scene": {"nodes": [], "width": "1\" onload=\"alert(1)"},
                    "theme": "<b>", "height": "1px"})
    assert view.heat == {"cat": 1.0}
    assert view.marks == {"cat": "edited"}
    assert view.scene is scene
    assert view.theme == "auto" and view.height == "520px"
    for key, value in [("heat", {"cat": 1.0}), ("marks", {"cat": "edited"}), ("theme", "auto")]:
        assert sent.last(key) == value


def test_heat_and_marks_are_validated_in_the_kernel_too():
    import traitlets

    view = GraphView(branchy())
    for bad in ({"x": "<script>"}, {"nope": 0.5}, {"x": float("nan")}, {"x": 2.0}):
        with pytest.raises(traitlets.TraitError):
            view.heat = bad
    for bad in ({"x": "<b>evil</b>"}, {"nope": "edited"}):
        with pytest.raises(traitlets.TraitError):
            view.marks = bad
    assert view.heat == {} and view.marks == {}
    view.heat = {"x": 1}
    assert view.heat == {"x": 1.0}


def test_save_uses_the_kernels_layout_not_the_synced_scene(tmp_path):
    view = GraphView(branchy())
    view.set_trait("scene", {"nodes": [], "edges": [], "frames": [], "width": "1\" onload=\"x",
                             "height": 1})
    text = view.to_svg()
    assert "onload" not in text
    assert text.count("data-id=") == len(view.layout.boxes)
    ET.parse(view.save(tmp_path / "g.svg"))
