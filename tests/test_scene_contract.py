"""The scene contract between `layout.Layout.scene` and `widgets/static/graph_view.js`.

The Python TypedDicts in `kerawidgets.layout` and the JSDoc typedefs in the ES
module must name the same fields with the same types, and real scenes must match
the Python types key for key, so neither side can drift from the other.
"""

import json
import math
import re
import types
import typing
from pathlib import Path

import pytest

from kerawidgets import layout as layout_module
from kerawidgets.graph import ModelGraph
from kerawidgets.layout import Scene, SceneIndexRow, layout
from tests._graph_models import branchy, nested_two_levels

JS = Path(layout_module.__file__).parent / "widgets" / "static" / "graph_view.js"
PY_TYPES = {name: value for name, value in vars(layout_module).items()
            if name.startswith("Scene") and typing.is_typeddict(value)}
ALIASES = {"SceneIndexRow": SceneIndexRow}
PRIMITIVES = {str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


def js_type(annotation, *, alias_names: bool = True) -> str:
    """The JSDoc spelling of a Python annotation, as graph_view.js writes it."""
    if alias_names:
        for name, alias in ALIASES.items():
            if annotation == alias:
                return name
    if typing.is_typeddict(annotation):
        return annotation.__name__
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(js_type(a) for a in args)
    if origin is list:
        inner = js_type(args[0])
        return f"Array<{inner}>" if "|" in inner else f"{inner}[]"
    if origin is dict:
        return f"Object<{js_type(args[0])}, {js_type(args[1])}>"
    if origin is tuple:
        return "[" + ", ".join(js_type(a) for a in args) + "]"
    return PRIMITIVES[annotation]


def js_typedefs() -> dict:
    """``{name: (type, {property: type})}`` of every JSDoc typedef in graph_view.js."""
    out = {}
    for block in re.findall(r"/\*\*(.*?)\*/", JS.read_text(encoding="utf-8"), re.S):
        found = re.search(r"@typedef\s+\{(.+?)\}\s+(\w+)", block)
        if found:
            props = {name: _squeeze(kind)
                     for kind, name in re.findall(r"@property\s+\{(.+?)\}\s+(\w+)", block)}
            out[found.group(2)] = (_squeeze(found.group(1)), props)
    return out


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def conforms(value, annotation, where: str = "scene") -> None:
    """Raise AssertionError, naming the place, unless `value` has the annotated type."""
    if typing.is_typeddict(annotation):
        hints = typing.get_type_hints(annotation)
        assert isinstance(value, dict), f"{where}: {value!r} is not a {annotation.__name__}"
        assert set(value) == set(hints), (
            f"{where}: keys {sorted(set(value) ^ set(hints))} differ from {annotation.__name__}")
        for key, sub in hints.items():
            conforms(value[key], sub, f"{where}.{key}")
        return
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in args:
            try:
                return conforms(value, option, where)
            except AssertionError as error:
                errors.append(str(error))
        raise AssertionError(f"{where}: {value!r} is none of {annotation}: {errors}")
    if origin is typing.Literal:
        assert value in args, f"{where}: {value!r} is not one of {args}"
    elif origin is list:
        assert isinstance(value, list), f"{where}: {value!r} is not a list"
        for i, item in enumerate(value):
            conforms(item, args[0], f"{where}[{i}]")
    elif origin is tuple:  # a JSON array of fixed length (a tuple in Python, a list once in JSON)
        assert isinstance(value, (tuple, list)) and len(value) == len(args), (
            f"{where}: {value!r} is not a row of {len(args)}")
        for i, (item, sub) in enumerate(zip(value, args)):
            conforms(item, sub, f"{where}[{i}]")
    elif origin is dict:
        assert isinstance(value, dict), f"{where}: {value!r} is not a dict"
        for key, item in value.items():
            conforms(key, args[0], f"{where} key {key!r}")
            conforms(item, args[1], f"{where}[{key!r}]")
    elif annotation is float:
        assert isinstance(value, (int, float)) and not isinstance(value, bool) \
            and math.isfinite(value), f"{where}: {value!r} is not a finite number"
    elif annotation is int:
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: {value!r} is not an int"
    elif annotation is type(None):
        assert value is None, f"{where}: {value!r} is not None"
    else:
        assert isinstance(value, annotation), f"{where}: {value!r} is not a {annotation.__name__}"


def test_every_python_scene_type_has_the_same_jsdoc_typedef():
    typedefs = js_typedefs()
    assert set(PY_TYPES) >= {"Scene", "SceneNode", "SceneClosedGroup", "SceneFrame", "SceneEdge"}
    for name, cls in PY_TYPES.items():
        assert name in typedefs, f"graph_view.js has no @typedef for {name}"
        kind, props = typedefs[name]
        assert kind == "object", name
        wanted = {key: _squeeze(js_type(sub)) for key, sub in typing.get_type_hints(cls).items()}
        assert props == wanted, f"{name}: JSDoc {props} != Python {wanted}"


def test_the_index_row_is_the_same_tuple_on_both_sides():
    kind, props = js_typedefs()["SceneIndexRow"]
    assert kind == _squeeze(js_type(SceneIndexRow, alias_names=False))
    assert kind == "[string,string,string,string|null]"
    assert props == {}


def test_every_scene_typedef_in_the_module_has_a_python_type():
    scene_typedefs = {name for name in js_typedefs() if name.startswith("Scene")}
    scene_typedefs -= {"SceneIndex"}  # the front end's own index of a scene, not sent by Python
    assert scene_typedefs == set(PY_TYPES) | set(ALIASES)


def _scenes():
    big, nested = ModelGraph.from_model(branchy()), ModelGraph.from_model(nested_two_levels())
    return {
        "branchy, groups closed": layout(big, []).scene(),
        "branchy, groups open": layout(big, ["seq", "seq:1"]).scene(),
        "nested, all open": layout(nested, ["mid", "mid/deep"]).scene(),
        "nested, outer open": layout(nested, ["mid"]).scene(),
        "nested, default": layout(nested).scene(),
    }


def test_real_scenes_match_the_contract_before_and_after_json():
    kinds, frames, groups_with_parent = set(), 0, 0
    for name, scene in _scenes().items():
        conforms(scene, Scene, name)
        conforms(json.loads(json.dumps(scene)), Scene, f"{name} (as JSON)")
        kinds |= {item["kind"] for item in scene["nodes"]}
        frames += len(scene["frames"])
        groups_with_parent += sum(g["parent"] is not None for g in scene["groups"].values())
    # Every kind of entry was checked, not an empty list of it.
    assert kinds == {"node", "group"} and frames and groups_with_parent


@pytest.mark.parametrize("drift", [
    lambda s: s["edges"][0].update(s=s["edges"][0].pop("source")),  # a renamed key
    lambda s: s["nodes"][0].pop("label"),  # a missing key
    lambda s: s["nodes"][0].update(colour="red"),  # an extra key
    lambda s: s["frames"][0].update(x="12"),  # a number as text
    lambda s: s["nodes"][0].update(kind="frame"),  # an unknown kind
    lambda s: s["index"].append(("a", "b", "c")),  # a short row
    lambda s: s["groups"]["seq"].update(parent=3),  # neither a group id nor None
])
def test_the_check_refuses_a_scene_that_drifted(drift):
    scene = layout(ModelGraph.from_model(branchy()), ["seq"]).scene()
    conforms(scene, Scene)
    drift(scene)
    with pytest.raises(AssertionError):
        conforms(scene, Scene)
