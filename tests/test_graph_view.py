import xml.etree.ElementTree as ET

import keras
import pytest

from kerawidgets.errors import KerawidgetsError
from kerawidgets.widgets import GraphView
from tests._graph_models import branchy, nested_two_levels


def test_static_files_ship_in_the_package():
    from kerawidgets.widgets import graph_view

    js_path = graph_view._STATIC / "graph_view.js"
    assert js_path.exists() and (graph_view._STATIC / "graph_view.css").exists()
    js = js_path.read_text()
    assert "innerHTML" not in js and "import " not in js.split("export default")[0]


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
