"""Bad arguments to every public entry point, refused up front with a clear error.

Each case must raise a `KerawidgetsError` (which is also a `TypeError` or
`ValueError` where that fits) whose message is short and says what was
wrong, and must leave the model it was given exactly as it was.
`docs/bad_inputs.md` is this list, as a table: the test fails when the table
and the messages differ. After changing a message, rewrite the table with

    KERAWIDGETS_WRITE_BAD_INPUTS=1 pytest tests/test_bad_inputs.py
"""

import json
import os
import pathlib

import keras
import numpy as np
import pytest
from keras import layers

import kerawidgets
from kerawidgets import KerawidgetsError, Probe, edits, rebuild
from kerawidgets.edits import InsertLayer, RemoveLayer, ReplaceLayer, SetActivation, SetSettings
from kerawidgets.widgets import GraphView, ModelEditor

TABLE = pathlib.Path(__file__).parent.parent / "docs" / "bad_inputs.md"
HUGE = "x" * 1_000_000
N = 16


def mlp():
    inp = keras.Input((6,), name="x")
    h = layers.Dense(8, activation="relu", name="hidden")(inp)
    h = layers.Dropout(0.1, name="drop")(h)
    return keras.Model(inp, layers.Dense(3, activation="softmax", name="head")(h), name="mlp")


def x_data():
    return np.random.default_rng(0).normal(size=(N, 6)).astype("float32")


def cases(model, editor):
    """(entry point, the call as written, a function making it)."""
    x = x_data()
    unbuilt = keras.Sequential([layers.Dense(2)], name="unbuilt")
    return [
        ("rebuild", "rebuild(None, [])", lambda: rebuild(None, [])),
        ("rebuild", 'rebuild("model", [])', lambda: rebuild("model", [])),
        ("rebuild", "rebuild(<unbuilt Sequential>, [])", lambda: rebuild(unbuilt, [])),
        ("rebuild", "rebuild(model, None)", lambda: rebuild(model, None)),
        ("rebuild", "rebuild(model, 5)", lambda: rebuild(model, 5)),
        ("rebuild", 'rebuild(model, "hidden")', lambda: rebuild(model, "hidden")),
        ("rebuild", "rebuild(model, [5])", lambda: rebuild(model, [5])),
        ("rebuild", 'rebuild(model, [], reinitialize="all")',
         lambda: rebuild(model, [], reinitialize="all")),
        ("rebuild", 'rebuild(model, [RemoveLayer("hiden")])',
         lambda: rebuild(model, [RemoveLayer("hiden")])),
        ("rebuild", 'rebuild(model, [SetActivation("x" * 1_000_000, "relu")])',
         lambda: rebuild(model, [SetActivation(HUGE, "relu")])),
        ("rebuild", 'rebuild(model, {"type": "RemoveLayer"})',
         lambda: rebuild(model, {"type": "RemoveLayer"})),
        ("copy_model", "copy_model(model, name=5)", lambda: kerawidgets.copy_model(model, name=5)),
        ("edits", 'SetActivation("hidden", "nonsense")', lambda: SetActivation("hidden", "nonsense")),
        ("edits", 'SetActivation("hidden", 5)', lambda: SetActivation("hidden", 5)),
        ("edits", 'SetActivation("", "relu")', lambda: SetActivation("", "relu")),
        ("edits", 'SetActivation("hidden", "x" * 1_000_000)', lambda: SetActivation("hidden", HUGE)),
        ("edits", 'SetActivation("hidden", "relu", attribute="not a name")',
         lambda: SetActivation("hidden", "relu", attribute="not a name")),
        ("rebuild", 'rebuild(model, [SetActivation("hidden", "relu", attribute="bias")])',
         lambda: rebuild(model, [SetActivation("hidden", "relu", attribute="bias")])),
        ("edits", 'InsertLayer("hidden", 5)', lambda: InsertLayer("hidden", 5)),
        ("edits", 'ReplaceLayer("hidden", "NotALayer")', lambda: ReplaceLayer("hidden", "NotALayer")),
        ("edits", "RemoveLayer(None)", lambda: RemoveLayer(None)),
        ("edits", 'SetSettings("drop")', lambda: SetSettings("drop")),
        ("edits", 'SetSettings("drop", rate=[0.1, {}])', lambda: SetSettings("drop", rate=[0.1, {}])),
        ("rebuild", 'rebuild(model, [SetSettings("drop", rat=0.2)])',
         lambda: rebuild(model, [SetSettings("drop", rat=0.2)])),
        ("rebuild", 'rebuild(model, [SetSettings("drop", rate=2.0)])',
         lambda: rebuild(model, [SetSettings("drop", rate=2.0)])),
        ("edits.from_data", 'from_data({"type": "SetActivation", "layer": "hidden"})',
         lambda: edits.from_data({"type": "SetActivation", "layer": "hidden"})),
        ("edits.from_data", 'from_data({"type": "Explode"})', lambda: edits.from_data({"type": "Explode"})),
        ("edits.from_data", 'from_data(["SetActivation"])', lambda: edits.from_data(["SetActivation"])),
        ("edits.from_data", 'from_data({"type": "InsertLayer", "after": "hidden", "layer": "Dropout"})',
         lambda: edits.from_data({"type": "InsertLayer", "after": "hidden", "layer": "Dropout"})),
        ("edits.from_json", 'from_json(\'{"type": "RemoveLayer", "layer": 5}\')',
         lambda: edits.from_json(json.dumps({"type": "RemoveLayer", "layer": 5}))),
        ("shortcuts", 'replace_activation(model, "hidden", "tanh", inplace="yes")',
         lambda: kerawidgets.replace_activation(model, "hidden", "tanh", inplace="yes")),
        ("shortcuts", 'replace_activation("model", "hidden", "tanh", inplace=True)',
         lambda: kerawidgets.replace_activation("model", "hidden", "tanh", inplace=True)),
        ("shortcuts", 'insert_layer(model, after="hidden", layer=None)',
         lambda: kerawidgets.insert_layer(model, after="hidden", layer=None)),
        ("shortcuts", 'replace_layer(model, "hidden", 3)',
         lambda: kerawidgets.replace_layer(model, "hidden", 3)),
        ("shortcuts", "remove_layer(model, None)", lambda: kerawidgets.remove_layer(model, None)),
        ("shortcuts", 'remove_layer(model, "head", reinitialize=True)',
         lambda: kerawidgets.remove_layer(model, "head", reinitialize=True)),
        ("GraphView", "GraphView(None)", lambda: GraphView(None)),
        ("GraphView", 'GraphView("model")', lambda: GraphView("model")),
        ("GraphView", 'GraphView(model, theme="neon")', lambda: GraphView(model, theme="neon")),
        ("GraphView", "GraphView(model, height=300)", lambda: GraphView(model, height=300)),
        ("GraphView", 'GraphView(model, open_groups="mid")', lambda: GraphView(model, open_groups="mid")),
        ("GraphView", "view.select(12345)", lambda: editor.view.select(12345)),
        ("GraphView", 'view.mark("hidden", "glow")', lambda: editor.view.mark("hidden", "glow")),
        ("ModelEditor", 'ModelEditor("model")', lambda: ModelEditor("model")),
        ("ModelEditor", 'ModelEditor(model, x, history_size="3")',
         lambda: ModelEditor(model, x, history_size="3")),
        ("ModelEditor", "ModelEditor(model, x, history_size=0)",
         lambda: ModelEditor(model, x, history_size=0)),
        ("ModelEditor", 'ModelEditor(model, x, batch_size="x")',
         lambda: ModelEditor(model, x, batch_size="x")),
        ("ModelEditor", "ModelEditor(model, x, max_batches=0)",
         lambda: ModelEditor(model, x, max_batches=0)),
        ("ModelEditor", "ModelEditor(model, x, seed=-1)", lambda: ModelEditor(model, x, seed=-1)),
        ("ModelEditor", 'ModelEditor(model, x, memory_budget="1GB")',
         lambda: ModelEditor(model, x, memory_budget="1GB")),
        ("ModelEditor", 'ModelEditor(model, x, theme="neon")',
         lambda: ModelEditor(model, x, theme="neon")),
        ("ModelEditor", "ModelEditor(model, x, y=3)", lambda: ModelEditor(model, x, y=3)),
        ("ModelEditor", 'ModelEditor(model, x, y="labels")', lambda: ModelEditor(model, x, y="labels")),
        ("ModelEditor", "ModelEditor(model, x, y=<32 labels for 16 samples>)",
         lambda: ModelEditor(model, x, y=np.zeros(32, "int64"))),
        ("ModelEditor", "ModelEditor(model, x, y=[None] * 16)", lambda: ModelEditor(model, x, y=[None] * N)),
        ("ModelEditor", "ModelEditor(model, x=<shape (16, 5)>)",
         lambda: ModelEditor(model, np.zeros((N, 5), "float32"))),
        ("ModelEditor", 'editor.apply("hidden")', lambda: editor.apply("hidden")),
        ("ModelEditor", "editor.apply(None)", lambda: editor.apply(None)),
        ("ModelEditor", 'editor.apply(RemoveLayer("drop"), reinitialize="yes")',
         lambda: editor.apply(RemoveLayer("drop"), reinitialize="yes")),
        ("ModelEditor", 'editor.compare(against="first")', lambda: editor.compare(against="first")),
        ("Probe", "Probe(None)", lambda: Probe(None)),
        ("Probe", "Probe(model, x, batch_size=0)", lambda: Probe(model, x, batch_size=0)),
        ("Probe", "Probe(model, x, max_batches=2.5)", lambda: Probe(model, x, max_batches=2.5)),
        ("Probe", "Probe(model, x, y=np.zeros((16, 3), object))",
         lambda: Probe(model, x, y=np.zeros((N, 3), object))),
        ("ModelGraph", "ModelGraph.from_model([])", lambda: kerawidgets.ModelGraph.from_model([])),
    ]


def outcome(make) -> tuple[str, str]:
    try:
        make()
    except KerawidgetsError as error:
        return type(error).__name__, " ".join(str(error).split())
    except Exception as error:  # noqa: BLE001 - the table says what a raw error would be
        return f"raw {type(error).__name__}", " ".join(str(error).split())
    return "accepted", ""


def table(rows) -> str:
    lines = [
        "# Bad inputs and what each gets",
        "",
        "Every public entry point checks its arguments before anything changes "
        "(`kerawidgets/arguments.py`). Each call below raises the error shown, a "
        "`KerawidgetsError` subclass, and leaves its model exactly as it was. Long values "
        "are shortened in messages. Written and checked by `tests/test_bad_inputs.py` "
        "(`KERAWIDGETS_WRITE_BAD_INPUTS=1 pytest tests/test_bad_inputs.py` rewrites it).",
        "",
        "| entry point | call | raises | message |",
        "|---|---|---|---|",
    ]
    for where, call, (kind, message) in rows:
        cell = message.replace("|", "\\|")
        lines.append(f"| {where} | `{call}` | {kind} | {cell} |")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def outcomes():
    keras.utils.set_random_seed(0)
    model = mlp()
    editor = ModelEditor(model, x_data())
    config = json.dumps(model.get_config(), sort_keys=True, default=str)
    weights = [np.array(w) for w in model.weights]
    rows = [(where, call, outcome(make)) for where, call, make in cases(model, editor)]
    assert json.dumps(model.get_config(), sort_keys=True, default=str) == config
    assert all(np.array_equal(np.array(w), b) for w, b in zip(model.weights, weights))
    assert editor.history == [] and editor.model is model
    return rows


def test_every_bad_input_gets_a_kerawidgets_error(outcomes):
    wrong = [(call, kind, message) for _, call, (kind, message) in outcomes
             if kind == "accepted" or kind.startswith("raw ")]
    assert wrong == []


def test_messages_are_short_even_for_huge_values(outcomes):
    for _, call, (_, message) in outcomes:
        assert len(message) < 800, (call, len(message))
    huge = [m for _, call, (_, m) in outcomes if "1_000_000" in call]
    assert huge and all("(1000000 characters)" in m for m in huge)


def test_the_table_in_docs_is_current(outcomes):
    text = table(outcomes)
    if os.environ.get("KERAWIDGETS_WRITE_BAD_INPUTS"):
        TABLE.write_text(text)
    assert TABLE.read_text() == text, (
        "docs/bad_inputs.md is stale: rewrite it with "
        "KERAWIDGETS_WRITE_BAD_INPUTS=1 pytest tests/test_bad_inputs.py")
