"""The fuzz tier: random functional models under random edits (`tests/_fuzz.py`).

The slow tier runs 500 seeds (about three minutes on two CPU cores); the
default tier runs a few so the generator and the checks stay working. Each
failing seed is printed with its edits and the broken invariant, and is
reproduced on its own with ``python -m tests._fuzz SEED``.
"""

import collections

import pytest

from tests import _fuzz

SEEDS = 500


def run_seeds(seeds, tmp_path):
    problems, happened = [], collections.Counter()
    for seed in seeds:
        problem, what = _fuzz.run(seed, tmp_path)
        happened[what.split(":")[0]] += 1
        if problem is not None:
            problems.append(problem)
    report = "\n\n".join(problems)
    assert not problems, (
        f"{len(problems)} of {len(seeds)} seeds broke an invariant (reproduce one with "
        f"`python -m tests._fuzz SEED`):\n\n{report}")
    return happened


def test_a_few_seeds(tmp_path):
    happened = run_seeds(range(6), tmp_path)
    assert sum(happened.values()) == 6


@pytest.mark.slow
def test_fuzz_500_models(tmp_path):
    happened = run_seeds(range(SEEDS), tmp_path)
    # Most draws must give a model to check, not a refusal: otherwise the tier checks little.
    assert happened["rebuilt"] >= SEEDS // 2, happened


def test_models_cover_what_the_fuzzer_promises():
    """Across the first seeds: nested Sequential and functional models, shared layers and
    shared sub-models, masks, Lambda, raw ops, several inputs and several outputs."""
    import keras

    from kerawidgets import _keras_adapter as adapter

    seen = collections.Counter()
    for seed in range(40):
        model = _fuzz.random_model(seed)
        seen["several inputs"] += len(model.inputs) > 1
        seen["several outputs"] += len(model.outputs) > 1
        calls = collections.Counter()
        for call in adapter.graph_calls(model):
            op = call.operation
            calls[id(op)] += 1
            seen["Sequential"] += isinstance(op, keras.Sequential)
            seen["functional sub-model"] += isinstance(op, keras.Model) and not isinstance(
                op, keras.Sequential)
            seen["mask"] += isinstance(op, (keras.layers.Embedding, keras.layers.Masking))
            seen["Lambda"] += isinstance(op, keras.layers.Lambda)
            seen["raw op"] += not isinstance(op, keras.layers.Layer)
            if calls[id(op)] == 2:
                seen["shared sub-model" if isinstance(op, keras.Model) else "shared layer"] += 1
    missing = [k for k in ("several inputs", "several outputs", "Sequential", "functional sub-model",
                           "mask", "Lambda", "raw op", "shared layer", "shared sub-model")
               if not seen[k]]
    assert missing == [], seen
