import xml.etree.ElementTree as ET

import keras

from kerawidgets.graph import ModelGraph
from kerawidgets.layout import layout
from kerawidgets.svg import heat_color, save_svg, to_svg
from tests._graph_models import branchy

HOSTILE = "<img src=x onerror=alert(1)>"


def test_svg_is_well_formed_and_has_every_visible_box(tmp_path):
    graph = ModelGraph.from_model(branchy())
    result = layout(graph, ["seq"])
    text = to_svg(result, heat={"cat": 1.0}, marks={"shared": "error"}, selected="x")
    root = ET.fromstring(text)
    ns = "{http://www.w3.org/2000/svg}"
    ids = {g.get("data-id") for g in root.iter(f"{ns}g") if g.get("data-id")}
    assert ids == set(result.boxes)
    assert len([p for p in root.iter(f"{ns}path") if p.get("marker-end")]) == len(result.edges)
    assert heat_color(1.0) in text and "#d1242f" in text
    path = save_svg(result, tmp_path / "g.svg")
    assert ET.parse(path).getroot().tag == f"{ns}svg"


def test_layer_names_are_escaped():
    inp = keras.Input((2,), name="in")
    out = keras.layers.Dense(1, name=HOSTILE)(inp)
    text = to_svg(layout(ModelGraph.from_model(keras.Model(inp, out))))
    assert HOSTILE not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    root = ET.fromstring(text)
    assert not [e for e in root.iter() if e.tag.endswith("img")]
