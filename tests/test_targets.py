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


# --- a subclassed model nested in a functional one: its traced graph -----------------


def counting_traces(monkeypatch):
    """A list that grows by one each time a subclassed model is traced."""
    from kerawidgets import subclassed

    traced, real = [], subclassed.trace
    monkeypatch.setattr(subclassed, "trace", lambda *a, **k: traced.append(a[0]) or real(*a, **k))
    return traced


def test_the_lookups_of_one_block_share_one_trace_of_a_nested_subclassed_model(monkeypatch):
    from kerawidgets import catalog
    from tests import _subclassed_models as sm

    model = sm.nested_in_functional()
    traced = counting_traces(monkeypatch)

    def select():  # what the editor asks when a layer inside the nested model is selected
        catalog.replacement_choices(model, "inner_mlp/dense2")
        catalog.insert_choices(model, "inner_mlp/dense2")
        catalog.settings_form(model, "inner_mlp/dense2")
        catalog.can_remove(model, "inner_mlp/dense2")

    select()
    assert len(traced) >= 4  # no block: each lookup traces (can_remove plans a removal too)
    traced.clear()
    with targets.one_trace_each():
        select()
        with targets.one_trace_each():  # a block inside shares the outer one's
            assert targets.call_count(model, "inner_mlp/dense2") == 1
    assert traced == [model.get_layer("inner_mlp")]
    traced.clear()
    assert targets.call_count(model, "inner_mlp/dense2") == 1  # after the block: traced anew
    assert len(traced) == 1


def test_a_lookup_after_an_in_place_change_sees_the_nested_model_as_it_is():
    import numpy as np

    from kerawidgets import activations, set_activation_inplace
    from tests import _subclassed_models as sm
    from tests.models import numpy_of

    model = sm.nested_in_functional()
    inner = model.get_layer("inner_mlp")
    with targets.one_trace_each():
        graph = targets.parent_model(model, ("inner_mlp", "dense2"))
        assert targets.parent_model(model, ("inner_mlp", "dense2")) is graph
        assert activations.name_of(graph.get_layer("dense1").activation) == "relu"
    set_activation_inplace(model, "inner_mlp/dense1", "tanh")  # the in-place mode
    inner.dense2.kernel.assign(np.full(tuple(inner.dense2.kernel.shape), 0.25, "float32"))
    with targets.one_trace_each():
        graph = targets.parent_model(model, ("inner_mlp", "dense2"))
        assert [op.name for op in graph.layers[1:]] == ["dense1", "dense2", "head"]
        assert activations.name_of(graph.get_layer("dense1").activation) == "tanh"
        np.testing.assert_array_equal(numpy_of(graph.get_layer("dense2").kernel),
                                      numpy_of(inner.dense2.kernel))
