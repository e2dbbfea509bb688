"""The package itself: what `import kerawidgets` says when Keras has no backend."""

import os
import subprocess
import sys


def test_import_without_a_backend_says_what_to_install():
    # Keras set to the torch backend, with torch hidden from the import system, fails
    # the way it does on a machine that installed plain `kerawidgets` without a backend.
    env = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "3"}
    code = (
        "import sys\n"
        "class HideTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, HideTorch())\n"
        "import kerawidgets\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: kerawidgets needs a Keras backend")
    assert "kerawidgets[tf]" in last and "KERAS_BACKEND=jax" in last


def _built(tmp_path):
    """The wheel's and the sdist's file lists, built from this checkout by hatchling (the
    build backend pyproject.toml names) with no network and no pip."""
    import pathlib
    import tarfile
    import zipfile

    from hatchling.builders.sdist import SdistBuilder
    from hatchling.builders.wheel import WheelBuilder

    root = str(pathlib.Path(__file__).resolve().parents[1])
    wheel = next(WheelBuilder(root).build(directory=str(tmp_path), versions=["standard"]))
    sdist = next(SdistBuilder(root).build(directory=str(tmp_path), versions=["standard"]))
    with zipfile.ZipFile(wheel) as zipped, tarfile.open(sdist) as tarred:
        return set(zipped.namelist()), {n.split("/", 1)[1] for n in tarred.getnames() if "/" in n}


def test_wheel_and_sdist_ship_the_type_marker_and_the_front_end(tmp_path):
    # py.typed tells mypy and pyright to read kerawidgets' annotations (PEP 561).
    wheel, sdist = _built(tmp_path)
    for files in (wheel, sdist):
        assert {"kerawidgets/py.typed", "kerawidgets/widgets/static/graph_view.js",
                "kerawidgets/widgets/static/graph_view.css", "kerawidgets/rebuild.py"} <= files
    assert not any(name.startswith(("tests/", ".venv")) for name in wheel)


# Options that are easy to mix up (two numbers, two strings, a flag after a callback)
# are keyword-only: `apply(edit, "downstream")` or `Setting("m", "float", 0.99, 0.0, 1.0)`
# raise a TypeError instead of silently meaning something else.
KEYWORD_ONLY = {
    "rebuild": ("reinitialize",),
    "copy_model": ("name",),
    "replace_activation": ("attribute", "inplace", "reinitialize"),
    "replace_layer": ("trainable", "reinitialize"),
    "insert_layer": ("after", "layer", "reinitialize"),
    "remove_layer": ("reinitialize",),
    "set_activation_inplace": ("attribute",),
    "register_activation": ("gradient",),
    "register_layer_type": ("defaults", "settings", "insert", "ranks"),
    "sweep": ("reinitialize", "batch_size", "max_batches", "seed"),
    "Probe": ("max_batches", "batch_size", "memory_budget", "seed"),
    "ModelEditor": ("memory_budget", "max_batches", "batch_size", "seed", "history_size"),
    "ModelEditor.apply": ("reinitialize",),
    "EditSession.apply": ("reinitialize",),
    "EditSession.sweep": ("reinitialize",),
    "GraphView.on_select": ("remove",),
    "RebuildReport.html": ("css_class", "title"),
    "edits.SetActivation": ("attribute",),
    "edits.ReplaceLayer": ("trainable",),
    "catalog.Setting": ("choices", "minimum", "maximum", "length"),
    "training.FineTune": ("epochs", "batch_size", "samples", "batches", "epochs_done"),
}


def test_settings_easy_to_mix_up_are_keyword_only():
    import inspect

    import kerawidgets
    from kerawidgets import training

    for where, names in KEYWORD_ONLY.items():
        obj = training if where.startswith("training.") else kerawidgets
        for part in where.removeprefix("training.").split("."):
            obj = getattr(obj, part)
        parameters = inspect.signature(obj).parameters
        kinds = {n: parameters[n].kind for n in names}
        assert set(kinds.values()) == {inspect.Parameter.KEYWORD_ONLY}, (where, kinds)
