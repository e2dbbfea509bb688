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


def _attribute_values_are_quoted(text):
    """Every attribute value in the markup is in quotes (no bare `width=1 onload=...`)."""
    import re

    for tag in re.findall(r"<[a-zA-Z][^<>]*>", text):
        rest = re.sub(r'\s[\w:-]+=("[^"]*"|\'[^\']*\')', "", tag[1:-1])
        assert "=" not in rest, tag


def test_a_hostile_scene_cannot_inject_attributes():
    evil = '1" onload="alert(1)'
    scene = {
        "model": "m", "width": 100, "height": 80,
        "frames": [{"x": 0, "y": 0, "w": evil, "h": 10, "label": "f"}],
        "edges": [{"points": [[0, 0], [evil, 5]], "shape": "(None, 2)"}],
        "nodes": [{"id": 'a"b', "kind": "node", "family": 'conv" onclick="x', "x": 1, "y": 2,
                   "w": 150, "h": 40, "label": HOSTILE, "sub": "Dense", "params": 3,
                   "trainable": True}],
    }
    try:
        text = to_svg(scene)
    except (TypeError, ValueError):
        return  # refusing a malformed scene is fine too
    assert "onload" not in text and "onclick" not in text
    root = ET.fromstring(text)
    assert not [e for e in root.iter() if any(k.startswith("on") for k in e.attrib)]


def test_numbers_are_coerced_and_every_attribute_quoted():
    scene = layout(ModelGraph.from_model(branchy()), ["seq"]).scene()
    scene["width"] = "240"  # a string number is read as a number
    text = to_svg(scene)
    _attribute_values_are_quoted(text)
    ET.fromstring(text)


def test_marks_draw_a_badge_like_the_widget():
    ns = "{http://www.w3.org/2000/svg}"
    graph = ModelGraph.from_model(branchy())
    result = layout(graph, [])  # "seq" is closed: its members' marks show on its box
    root = ET.fromstring(to_svg(result, marks={"cat": "error", "shared": "edited",
                                               "seq/i1": "edited"}))
    badges = {g.get("data-mark"): g for g in root.iter(f"{ns}g")
              if "kw-badge" in (g.get("class") or "")}
    assert set(badges) == {"error", "edited"}
    by_node = {}
    for g in root.iter(f"{ns}g"):
        if g.get("data-id"):
            badge = [b for b in g.iter(f"{ns}g") if "kw-badge" in (b.get("class") or "")]
            by_node[g.get("data-id")] = [b.findtext(f"{ns}text") for b in badge]
    assert by_node["cat"] == ["!"] and by_node["shared"] == ["\u270e"]
    assert by_node["seq"] == ["\u270e"] and by_node["x"] == []
