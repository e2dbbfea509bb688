"""Catalog: replacement and insert choices filtered by shape fit, settings, custom types."""

import keras
import pytest
from keras import layers

from kerawidgets import catalog, targets
from kerawidgets.edits import InsertLayer, ReplaceLayer
from kerawidgets.errors import InvalidEditError
from kerawidgets.rebuild import rebuild


def cnn():
    inp = keras.Input((16, 16, 3), name="image")
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="conv")(inp)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.MaxPooling2D(pool_size=(2, 2), name="pool")(x)
    x = layers.Dropout(0.25, name="drop")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(12, activation="tanh", name="hidden")(x)
    return keras.Model(inp, layers.Dense(3, activation="softmax", name="head")(x), name="cnn")


def sequence_model():
    inp = keras.Input((7, 5), name="tokens")
    x = layers.LSTM(6, return_sequences=True, name="lstm")(inp)
    x = layers.GRU(4, name="gru")(x)
    return keras.Model(inp, layers.Dense(2, name="out")(x))


def by_name(choices):
    return {c.class_name: c for c in choices}


def test_conv_choices_prefilled_from_the_layer():
    choices = by_name(catalog.replacement_choices(cnn(), "conv"))
    conv = choices["Conv2D"]
    assert conv.defaults == {"filters": 8, "kernel_size": (3, 3), "strides": (2, 2),
                             "padding": "same", "activation": "relu", "use_bias": True}
    assert conv.keeps_shape and conv.verdict == "keeps shape (None, 8, 8, 8)"
    sep = choices["SeparableConv2D"]
    assert sep.keeps_shape and sep.defaults["strides"] == (2, 2)
    assert "Conv1D" not in choices and "Conv3D" not in choices and "LSTM" not in choices
    assert "MaxPooling1D" not in choices and "SpatialDropout1D" not in choices
    pool = choices["MaxPooling2D"]
    assert not pool.keeps_shape
    assert pool.verdict == ("changes output shape to (None, 8, 8, 3) "
                            "(downstream layers would be re-initialised)")
    # Shape-keeping choices come first.
    flags = [c.keeps_shape for c in catalog.replacement_choices(cnn(), "conv")]
    assert flags == sorted(flags, reverse=True)


def test_pool_dense_dropout_prefill():
    model = cnn()
    pool = by_name(catalog.replacement_choices(model, "pool"))
    assert pool["AveragePooling2D"].defaults == {"pool_size": (2, 2), "padding": "valid"}
    assert pool["AveragePooling2D"].keeps_shape
    drop = by_name(catalog.replacement_choices(model, "drop"))
    assert drop["SpatialDropout2D"].defaults == {"rate": 0.25}
    assert drop["GaussianDropout"].defaults == {"rate": 0.25}
    hidden = by_name(catalog.replacement_choices(model, "hidden"))
    assert hidden["Dense"].defaults["units"] == 12 and hidden["Dense"].defaults["activation"] == "tanh"
    assert "Conv2D" not in hidden and "MaxPooling2D" not in hidden
    flatten = by_name(catalog.replacement_choices(model, "flatten"))
    assert flatten["Reshape"].keeps_shape and flatten["Reshape"].defaults["target_shape"] == (128,)
    assert flatten["GlobalAveragePooling2D"].verdict.startswith("changes output shape to (None, 8)")


def test_width_is_prefilled_where_the_setting_is_missing():
    # Replacing a ReLU-like layer by a Dense keeps the width (units = channels).
    choices = by_name(catalog.replacement_choices(cnn(), "bn"))
    assert choices["Dense"].defaults["units"] == 8 and choices["Dense"].keeps_shape
    assert choices["GroupNormalization"].defaults["groups"] == 8


def test_recurrent_choices_for_sequences():
    model = sequence_model()
    choices = by_name(catalog.replacement_choices(model, "lstm"))
    assert choices["GRU"].defaults == {"units": 6, "activation": "tanh", "return_sequences": True}
    assert choices["GRU"].keeps_shape and choices["SimpleRNN"].keeps_shape
    assert "Conv1D" in choices and "Conv2D" not in choices
    gru = by_name(catalog.replacement_choices(model, "gru"))
    assert gru["LSTM"].defaults["return_sequences"] is False and gru["LSTM"].keeps_shape


def test_merge_layers_get_merge_choices():
    inp = keras.Input((4,), name="x")
    a = layers.Dense(4, name="a")(inp)
    b = layers.Dense(4, name="b")(inp)
    model = keras.Model(inp, layers.Add(name="add")([a, b]))
    choices = by_name(catalog.replacement_choices(model, "add"))
    assert {"Multiply", "Average", "Maximum", "Subtract"} <= set(choices)
    assert choices["Concatenate"].verdict == "changes the model's output shape to (None, 8)"
    assert "Dense" not in choices


def test_insert_choices_keep_shape_and_fit_rank():
    model = cnn()
    conv = by_name(catalog.insert_choices(model, "conv"))
    assert {"Dropout", "BatchNormalization", "LayerNormalization", "Activation",
            "GaussianNoise", "SpatialDropout2D"} <= set(conv)
    assert all(c.keeps_shape for c in conv.values())
    assert "SpatialDropout1D" not in conv and "Dense" not in conv and "MaxPooling2D" not in conv
    hidden = by_name(catalog.insert_choices(model, "hidden"))
    assert "SpatialDropout2D" not in hidden and "Dropout" in hidden
    assert hidden["Activation"].defaults["activation"] == "tanh"


def test_check_choice_validates_form_values():
    model = cnn()
    choice = catalog.check_choice(model, "conv", "Conv2D", {"filters": "16", "kernel_size": "5,5"})
    assert choice.defaults["filters"] == 16 and choice.defaults["kernel_size"] == (5, 5)
    assert choice.verdict.startswith("changes output shape to (None, 8, 8, 16)")
    assert choice.config()["kernel_size"] == [5, 5]
    with pytest.raises(InvalidEditError, match="whole numbers"):
        catalog.check_choice(model, "conv", "Conv2D", {"kernel_size": "__import__('os')"})
    with pytest.raises(InvalidEditError, match="no setting"):
        catalog.check_choice(model, "conv", "Conv2D", {"evil": 1})
    with pytest.raises(InvalidEditError, match="must be one of"):
        catalog.check_choice(model, "conv", "Conv2D", {"padding": "wrap"})
    with pytest.raises(InvalidEditError, match="not a replacement that fits"):
        catalog.check_choice(model, "conv", "LSTM")
    with pytest.raises(InvalidEditError, match="does not fit"):
        catalog.check_choice(model, "pool", "MaxPooling2D", {"pool_size": "9, 9"})
    with pytest.raises(InvalidEditError, match="at most"):
        catalog.check_choice(model, "drop", "Dropout", {"rate": 1.5})
    with pytest.raises(InvalidEditError, match="not a layer to insert"):
        catalog.check_choice(model, "conv", "Conv2D", purpose="insert")


def test_chosen_specs_rebuild_with_the_promised_shapes():
    model = cnn()
    for choice in catalog.replacement_choices(model, "conv"):
        result = rebuild(model, [ReplaceLayer("conv", choice.spec())], reinitialize="downstream") \
            if choice.keeps_shape else None
        if result is not None:
            assert tuple(result.model.get_layer("conv").output.shape) == choice.output_shape
    for choice in catalog.insert_choices(model, "bn"):
        new = rebuild(model, [InsertLayer("bn", choice.spec())]).model
        assert new.output.shape == model.output.shape


def test_choice_layer_is_fresh_and_unbuilt():
    choice = by_name(catalog.replacement_choices(cnn(), "hidden"))["Dense"]
    layer = choice.layer({"units": 5})
    assert isinstance(layer, layers.Dense) and layer.units == 5 and not layer.built


def test_can_remove():
    model = cnn()
    assert catalog.can_remove(model, "drop") == (True, "")
    assert catalog.can_remove(model, "bn") == (True, "")
    ok, reason = catalog.can_remove(model, "pool")
    assert not ok and "(None, 8, 8, 8)" in reason and "(None, 4, 4, 8)" in reason
    ok, reason = catalog.can_remove(model, "image")  # an input, not a layer
    assert not ok and "'image'" in reason
    inp = keras.Input((4,), name="x")
    add = layers.Add(name="add")([layers.Dense(4, name="a")(inp), inp])
    ok, reason = catalog.can_remove(keras.Model(inp, add), "add")
    assert not ok and "2 inputs" in reason
    ok, reason = catalog.can_remove(model, "nope")
    assert not ok and "No layer named 'nope'" in reason


def test_nested_layer_paths():
    inner = keras.Sequential([keras.Input((6,)), layers.Dense(6, name="d"),
                              layers.ReLU(name="act")], name="inner")
    inp = keras.Input((6,), name="x")
    model = keras.Model(inp, layers.Dense(2, name="out")(inner(inp)))
    choices = by_name(catalog.replacement_choices(model, "inner/act"))
    assert choices["Activation"].defaults == {"activation": "relu"}
    assert choices["LeakyReLU"].keeps_shape
    assert catalog.can_remove(model, "inner/act") == (True, "")


@keras.saving.register_keras_serializable(package="kerawidgets_test_catalog")
class Scale(layers.Layer):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


class Unregistered(layers.Layer):
    def call(self, x):
        return x


@pytest.fixture
def scale_type():
    yield catalog.register_layer_type(Scale, defaults={"factor": 0.5}, insert=True)
    catalog.unregister_layer_type(Scale)


def test_registered_custom_type_appears_when_it_fits(scale_type):
    model = cnn()
    choices = by_name(catalog.replacement_choices(model, "drop"))
    assert choices["Scale"].defaults == {"factor": 0.5} and choices["Scale"].keeps_shape
    assert "Scale" in by_name(catalog.insert_choices(model, "hidden"))
    spec = catalog.check_choice(model, "drop", "Scale", {"factor": "3"}).spec()
    assert spec == ("kerawidgets_test_catalog>Scale", {"factor": 3.0})
    new = rebuild(model, [ReplaceLayer("drop", spec)]).model
    assert isinstance(new.get_layer("drop"), Scale) and new.get_layer("drop").factor == 3.0


def test_registered_type_with_rank_limit_is_filtered():
    catalog.register_layer_type(Scale, defaults={"factor": 1.0}, ranks=(3,))
    try:
        assert "Scale" not in by_name(catalog.replacement_choices(cnn(), "drop"))
        assert "Scale" in by_name(catalog.replacement_choices(sequence_model(), "lstm"))
    finally:
        catalog.unregister_layer_type(Scale)
    assert "Scale" not in by_name(catalog.replacement_choices(sequence_model(), "lstm"))


def test_register_layer_type_refuses_bad_input():
    with pytest.raises(InvalidEditError, match="register_keras_serializable"):
        catalog.register_layer_type(Unregistered)
    with pytest.raises(InvalidEditError, match="Layer subclass"):
        catalog.register_layer_type(int)
    with pytest.raises(InvalidEditError, match="defaults"):
        catalog.register_layer_type(layers.Dense, defaults={"activation": "relu"},
                                    settings={"activation": "str"})
    # Built-in types cannot be unregistered by accident.
    catalog.unregister_layer_type(layers.Dense)
    assert "Dense" in {t.class_name for t in catalog.layer_types()}


def test_setting_parse():
    kernel = catalog.Setting("kernel_size", "tuple", (3, 3), minimum=1, length=2)
    assert kernel.parse("5") == (5, 5) and kernel.parse([1, 2]) == (1, 2)
    with pytest.raises(InvalidEditError):
        kernel.parse("1, 2, 3")
    with pytest.raises(InvalidEditError):
        kernel.parse("0, 1")
    flag = catalog.Setting("keepdims", "bool", False)
    assert flag.parse("true") is True and flag.parse(False) is False
    with pytest.raises(InvalidEditError):
        flag.parse("maybe")
    units = catalog.Setting("units", "int", 3, minimum=1)
    assert units.parse(4.0) == 4
    with pytest.raises(InvalidEditError, match="whole number"):
        units.parse(2.5)
    with pytest.raises(InvalidEditError, match="at least 1"):
        units.parse(0)
    with pytest.raises(InvalidEditError, match="kind"):
        catalog.Setting("x", "complex", 1)


def residual_model():
    inp = keras.Input((8, 8, 4), name="image")
    x = layers.Conv2D(4, 3, padding="same", name="conv_a")(inp)
    x = layers.BatchNormalization(name="bn_a")(x)
    x = layers.Conv2D(4, 3, padding="same", name="conv_b")(x)
    x = layers.Add(name="add")([x, inp])
    return keras.Model(inp, layers.GlobalAveragePooling2D(name="gap")(x), name="residual")


def test_shape_changes_that_break_a_merge_downstream_are_not_offered():
    model = residual_model()
    conv_b = by_name(catalog.replacement_choices(model, "conv_b"))
    # Pooling halves the map, Flatten drops the axes: 'add' could not take either.
    assert "MaxPooling2D" not in conv_b and "AveragePooling2D" not in conv_b
    assert "Flatten" not in conv_b
    assert conv_b["Conv2D"].keeps_shape
    with pytest.raises(InvalidEditError, match=r"'add' \(Add\) further down cannot take"):
        catalog.check_choice(model, "conv_b", "Conv2D", {"filters": 8})
    # Before the first conv, a change of width is absorbed by conv_b (re-initialised).
    conv_a = by_name(catalog.replacement_choices(model, "conv_a"))
    wider = catalog.check_choice(model, "conv_a", "Conv2D", {"filters": 8})
    assert "re-initialised" in wider.verdict
    result = rebuild(model, [ReplaceLayer("conv_a", wider.spec())], reinitialize="downstream")
    assert result.report["conv_b"].status == "reinitialised"
    # Every offered shape change really rebuilds.
    for choice in conv_a.values():
        if not choice.keeps_shape:
            rebuild(model, [ReplaceLayer("conv_a", choice.spec())], reinitialize="downstream")


# --- answers kept: Undo, Redo and the panel ask the same questions again ----------------


def offered(choices):
    return [(c.class_name, c.defaults, c.output_shape, c.keeps_shape, c.verdict)
            for c in choices]


@pytest.fixture
def counted(monkeypatch):
    """Counts of candidate layers and fresh downstream copies the catalog really makes."""
    from kerawidgets import _keras_adapter as adapter

    made = {"candidates": 0, "downstream": 0}
    empty_memos(monkeypatch)

    def counting(kind, function):
        def wrapper(*args, **kwargs):
            made[kind] += 1
            return function(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(catalog, "_candidate_output",
                        counting("candidates", catalog._candidate_output))
    monkeypatch.setattr(adapter, "fresh_output_spec",
                        counting("downstream", adapter.fresh_output_spec))
    return made


def empty_memos(monkeypatch):
    for name in ("_CANDIDATE_OUTPUTS", "_DOWNSTREAM_SPECS"):
        monkeypatch.setattr(catalog, name, {})
    monkeypatch.setattr(catalog, "_OFFERED", catalog.weakref.WeakKeyDictionary())


def fresh_answers(monkeypatch, ask):
    """What `ask()` gives with nothing kept (every memo empty)."""
    with monkeypatch.context() as m:
        empty_memos(m)
        return ask()


def test_choices_asked_again_make_no_layers_and_give_the_same_answer(counted, monkeypatch):
    model = residual_model()
    first = offered(catalog.replacement_choices(model, "conv_a"))
    assert counted["candidates"] > 0 and counted["downstream"] > 0  # shapes carried to 'add'
    counted.update(candidates=0, downstream=0)
    assert offered(catalog.replacement_choices(model, "conv_a")) == first
    assert offered(catalog.insert_choices(model, "conv_a")) == offered(
        fresh_answers(monkeypatch, lambda: catalog.insert_choices(model, "conv_a")))
    counted.update(candidates=0, downstream=0)
    # The same structure in another model object (the copy Apply makes): candidates and
    # the layers downstream are known by class, config and input, so none is made again.
    copy = keras.models.clone_model(model)
    assert offered(catalog.replacement_choices(copy, "conv_a")) == first
    assert counted == {"candidates": 0, "downstream": 0}
    assert first == offered(fresh_answers(
        monkeypatch, lambda: catalog.replacement_choices(model, "conv_a")))
    # check_choice reads the kept choices, its verdicts as before.
    with pytest.raises(InvalidEditError, match=r"'add' \(Add\) further down cannot take"):
        catalog.check_choice(model, "conv_b", "Conv2D", {"filters": 8})
    with pytest.raises(InvalidEditError, match=r"'add' \(Add\) further down cannot take"):
        catalog.check_choice(model, "conv_b", "Conv2D", {"filters": 8})


def test_kept_choices_follow_the_layer_and_the_registry():
    from kerawidgets.inplace import set_activation_inplace

    model = cnn()
    assert by_name(catalog.replacement_choices(model, "conv"))["Conv2D"].defaults[
        "activation"] == "relu"
    set_activation_inplace(model, "conv", "gelu")  # the same model, another prefill
    assert by_name(catalog.replacement_choices(model, "conv"))["Conv2D"].defaults[
        "activation"] == "gelu"
    assert "Scale" not in by_name(catalog.replacement_choices(model, "drop"))
    catalog.register_layer_type(Scale, defaults={"factor": 0.5})
    try:
        assert "Scale" in by_name(catalog.replacement_choices(model, "drop"))
    finally:
        catalog.unregister_layer_type(Scale)
    assert "Scale" not in by_name(catalog.replacement_choices(model, "drop"))


def test_kept_answers_tell_values_apart():
    assert catalog._frozen({"a": 1}) != catalog._frozen({"a": 1.0})
    assert catalog._frozen({"a": (1, 2)}) != catalog._frozen({"a": [1, 2]})
    assert catalog._frozen(keras.KerasTensor((None, 3))) != catalog._frozen(
        keras.KerasTensor((None, 4)))
    with pytest.raises(catalog._Unkeyable):
        catalog._frozen({"initializer": object()})
    calls = []
    memo: dict = {}
    assert catalog._memo(memo, (int, {"x": object()}), lambda: calls.append(1) or 5) == 5
    assert catalog._memo(memo, (int, {"x": object()}), lambda: calls.append(1) or 5) == 5
    assert len(calls) == 2 and not memo  # not comparable by value: computed every time


def test_fast_keys_tell_values_and_types_apart():
    import enum

    import numpy as np

    class Level(enum.IntEnum):
        ONE = 1

    same_bits = np.frombuffer(np.float32(1.0).tobytes(), dtype=np.int32)[0]
    values = [1, True, 1.0, "1", b"\x00\x00\x80?", np.float32(1.0), np.float64(1.0), same_bits,
              Level.ONE,
              [1], (1,), {"a": 1}, {"a": True}, {"a": 1.0}, None, [1, 2], [[1], 2]]
    keys = []
    for value in values:
        try:
            keys.append(catalog._key(value))
        except catalog._Unkeyable:  # numpy scalars, bytes: not comparable, computed each time
            keys.append(("unkeyable", len(keys)))
    assert len(set(keys)) == len(values)  # no two of them share a key
    config = {"units": 4, "kernel_size": (3, 3), "activation": "relu", "rate": 0.25,
              "initializer": {"class_name": "GlorotUniform", "config": {"seed": None}}}
    assert catalog._key(config) == catalog._key(dict(config))  # equal values: equal keys
    assert catalog._key(config) != catalog._key({**config, "kernel_size": [3, 3]})
    assert catalog._key(config) != catalog._key({**config, "rate": 0.25000001})


def reshape_model(target_shape):
    inp = keras.Input((8, 8, 4), name="image")
    x = layers.Conv2D(4, 3, padding="same", name="conv")(inp)
    x = layers.Reshape(target_shape, name="reshape")(x)
    return keras.Model(inp, layers.Dense(2, name="head")(x))


def test_kept_answers_follow_the_layers_downstream(monkeypatch):
    """The same names and structure, another config downstream: the carried shapes give
    another answer (a key of the downstream layer kept from the first model would not)."""
    import gc

    empty_memos(monkeypatch)
    fixed = by_name(catalog.replacement_choices(reshape_model((256,)), "conv"))
    assert "MaxPooling2D" not in fixed  # 64 values cannot be reshaped to (256,)
    gc.collect()  # the first model's layers are gone: their ids may be those of the next
    free = by_name(catalog.replacement_choices(reshape_model((-1,)), "conv"))
    assert "re-initialised" in free["MaxPooling2D"].verdict
    both = reshape_model((256,)), reshape_model((-1,))  # alive together, asked in turn
    for _ in range(2):
        assert "MaxPooling2D" not in by_name(catalog.replacement_choices(both[0], "conv"))
        assert "MaxPooling2D" in by_name(catalog.replacement_choices(both[1], "conv"))
    assert offered(fixed.values()) == offered(fresh_answers(
        monkeypatch, lambda: catalog.replacement_choices(reshape_model((256,)), "conv")))


def test_one_block_looks_a_layer_up_once_and_forgets_it_after(monkeypatch):
    from kerawidgets.inplace import set_activation_inplace

    model = cnn()

    def ask():
        return (offered(catalog.replacement_choices(model, "conv")),
                offered(catalog.insert_choices(model, "conv")),
                catalog.settings_form(model, "conv"), catalog.can_remove(model, "conv"))

    outside = ask()
    found = []
    real = catalog._find_site
    monkeypatch.setattr(catalog, "_find_site", lambda m, p: found.append(p) or real(m, p))
    with targets.one_trace_each():
        assert ask() == outside
        with targets.one_trace_each():  # an inner block shares the outer one's
            catalog.check_choice(model, "conv", "Conv2D", {"filters": 4})
        catalog.settings_form(cnn(), "conv")  # another model: its own lookup
    assert found == ["conv", "conv"]
    set_activation_inplace(model, "conv", "gelu")  # after the block: the layer as it is now
    assert by_name(catalog.replacement_choices(model, "conv"))["Conv2D"].defaults[
        "activation"] == "gelu"
