import keras
import pytest
from keras import layers

from kerawidgets import targets
from kerawidgets.errors import InvalidEditError, UnknownLayerError


def nested_model():
    inner = keras.Sequential([keras.Input((4,)), layers.Dense(4, name="dense")], name="inner")
    inp = keras.Input((4,))
    shared = layers.Dense(4, name="shared")
    x = shared(shared(inp))
    return keras.Model(inp, layers.Dense(2, name="dense")(inner(x)), name="outer")


def test_paths_cover_nested_layers_in_graph_order():
    assert targets.layer_paths(nested_model()) == ["shared", "inner", "inner/dense", "dense"]


def test_resolve_by_name_path_object_class_predicate_and_call():
    model = nested_model()
    assert [t.path_str for t in targets.resolve(model, "inner/dense")] == ["inner/dense"]
    assert [t.path_str for t in targets.resolve(model, "dense")] == ["dense"]
    assert targets.resolve(model, model.get_layer("shared"))[0].path == ("shared",)
    assert [t.path_str for t in targets.resolve(model, layers.Dense)] == ["shared", "inner/dense", "dense"]
    assert [t.path_str for t in targets.resolve(model, lambda layer: layer.name == "shared")] == ["shared"]
    (call,) = targets.resolve(model, "shared:1")
    assert call.call_index == 1


def test_resolve_errors():
    model = nested_model()
    with pytest.raises(UnknownLayerError, match="shared"):
        targets.resolve(model, "sharde")
    with pytest.raises(InvalidEditError, match="call number 5"):
        targets.resolve(model, "shared:5")
    with pytest.raises(InvalidEditError, match="no Conv2D"):
        targets.resolve(model, layers.Conv2D)
    with pytest.raises(InvalidEditError, match="exactly one"):
        targets.resolve(model, layers.Dense, allow_many=False)
