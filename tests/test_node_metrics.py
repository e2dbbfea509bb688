"""node_metrics: metrics from the probe's statistics, their scales, and how GraphView shows them."""

import json
import typing
from pathlib import Path

import keras
import numpy as np
import pytest
import traitlets

from kerawidgets import node_metrics as nm
from kerawidgets.errors import InvalidEditError
from kerawidgets.statistics import layer_statistics, movement
from kerawidgets.svg import to_svg
from kerawidgets.widgets import GraphView
from tests.test_scene_contract import _squeeze, js_type, js_typedefs

CASES = Path(__file__).parent / "metric_cases.json"


def test_the_cases_the_front_end_checks_are_what_python_computes():
    data = json.loads(CASES.read_text())
    for case in data["cases"]:
        spec = data["specs"][case["metric"]]
        assert nm.position(spec, case["value"]) == pytest.approx(case["position"], abs=1e-9)
        assert nm.format_value(spec, case["value"]) == case["text"]
        assert nm.badge_text(spec, case["value"]) == case["badge"]
    assert {case["metric"] for case in data["cases"]} == {
        "movement", "dead", "near_zero", "mean", "std"}


def test_metric_spec_has_the_same_jsdoc_typedef():
    kind, props = js_typedefs()["MetricSpec"]
    wanted = {key: _squeeze(js_type(sub))
              for key, sub in typing.get_type_hints(nm.MetricSpec).items()}
    assert kind == "object" and props == wanted


def _relu_outputs():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 10))
    x[:, :4] = -np.abs(x[:, :4])  # 4 of 10 units never positive
    return {"relu": np.maximum(x, 0.0), "tanh": np.tanh(rng.normal(scale=6, size=(64, 8)))}


def test_from_statistics_reads_dead_units_saturation_and_moments():
    outputs = _relu_outputs()
    stats = {key: layer_statistics(value) for key, value in outputs.items()}
    moved = movement(outputs, {"relu": outputs["relu"] * 1.01, "tanh": outputs["tanh"]})
    specs = nm.from_statistics(stats, movement=moved)
    assert set(specs) == {"movement", "dead", "saturation", "near_zero", "mean", "std"}
    assert specs["dead"]["values"]["relu"] == pytest.approx(0.4)
    assert nm.badge_text(specs["dead"], specs["dead"]["values"]["relu"]) == "40% dead"
    assert specs["saturation"]["values"]["tanh"] > 0.5
    assert specs["movement"]["values"] == {"relu": pytest.approx(0.01), "tanh": 0.0}
    # 1% movement sits low on the fixed log scale: light, not red.
    assert nm.position(specs["movement"], 0.01) == pytest.approx(1 / 3)
    assert specs["movement"]["domain"] == [1e-3, 1.0]
    mean = specs["mean"]
    assert mean["scale"] == "diverging" and mean["domain"][0] == -mean["domain"][1]
    assert specs["std"]["domain"][0] <= min(specs["std"]["values"].values())


def test_from_statistics_skips_missing_and_nonfinite_values():
    stats = {"a": {"dead_fraction": None, "mean": float("nan"), "std": 2.0}, "b": "bad"}
    assert set(nm.from_statistics(stats)) == {"std"}
    assert nm.from_statistics({}) == {}


def _model():
    inp = keras.Input((4,), name="x")
    h = keras.layers.Dense(4, activation="relu", name="hidden")(inp)
    return keras.Model(inp, keras.layers.Dense(2, name="head")(h), name="small")


def test_set_metrics_resolves_layer_names_and_picks_the_colouring():
    view = GraphView(_model())
    assert view.active_coloring() == ("type", None)
    view.set_heat({"head": 1.0})
    assert view.active_coloring()[0] == "heat"
    specs = {"dead": nm.metric("dead", {"hidden": 0.42}),
             "movement": nm.metric("movement", {"head": 0.02, "hidden": 0.0})}
    view.set_metrics(specs)
    assert view.metrics["dead"]["values"] == {"hidden": 0.42}
    assert view.active_coloring()[0] == "movement"  # automatic: movement first
    view.color_by = "dead"
    assert view.active_coloring() == ("dead", view.metrics["dead"])
    with pytest.raises(traitlets.TraitError, match="not one of"):
        view.color_by = "loudness"
    with pytest.raises(InvalidEditError, match="MetricSpec"):
        view.set_metrics({"dead": {"hidden": 0.5}})
    view.set_metrics({"movement": specs["movement"]})  # "dead" is gone: back to automatic
    assert view.color_by == ""


def test_the_browser_may_choose_an_existing_colouring_only():
    view = GraphView(_model())
    view.set_metrics({"dead": nm.metric("dead", {"hidden": 0.42})})
    sent = []
    view.send_state = lambda names=None: sent.append(names)
    view.set_state({"color_by": "dead"})
    assert view.color_by == "dead" and sent == []
    view.set_state({"color_by": "<script>"})
    assert view.color_by == "dead" and sent == [["color_by"]]
    view.set_state({"metrics": {}})  # the kernel's alone
    assert "dead" in view.metrics and sent[-1] == ["metrics"]


def test_set_model_keeps_metrics_of_nodes_that_still_exist():
    view = GraphView(_model())
    view.set_metrics({"dead": nm.metric("dead", {"hidden": 0.42, "head": 0.1})})
    inp = keras.Input((4,), name="x")
    view.set_model(keras.Model(inp, keras.layers.Dense(2, name="head")(inp)))
    assert view.metrics["dead"]["values"] == {"head": 0.1}


def test_svg_draws_metric_colours_badges_legend_and_selection_unlike_edits():
    view = GraphView(_model())
    view.set_metrics({"dead": nm.metric("dead", {"hidden": 0.42, "head": 0.0})}, color_by="dead")
    view.mark("head", "edited")
    view.select("hidden")
    text = view.to_svg()
    assert "42% dead" in text and "colour: dead units" in text
    assert "share of units never active" in text
    assert 'class="kw-halo"' in text  # the selection's halo
    assert text.count('class="kw-halo"') == 1
    assert 'stroke="#8250df"' in text  # edited: purple, not the selection's blue
    plain = to_svg(view.layout)
    assert "kw-legend" not in plain and "kw-metric-badge" not in plain
