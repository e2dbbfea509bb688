"""kerawidgets: see a Keras 3 model's graph, edit its layers, keep its weights.

>>> import keras, kerawidgets
>>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="sigmoid", name="d")])
>>> new = kerawidgets.replace_activation(model, "d", "tanh")
>>> new.get_layer("d").activation.__name__
'tanh'
"""

try:
    import keras  # noqa: F401
except ModuleNotFoundError as _missing:  # Keras is installed, its backend is not
    if _missing.name not in ("tensorflow", "jax", "torch"):
        raise
    raise ImportError(
        f"kerawidgets needs a Keras backend, and the one Keras is set to use ({_missing.name!r}) "
        "is not installed. Install TensorFlow with `pip install 'kerawidgets[tf]'` (or "
        "`kerawidgets[tf-cpu]` for the CPU-only build), or install jax and set "
        "KERAS_BACKEND=jax."
    ) from _missing

from kerawidgets import catalog, edits  # noqa: E402
from kerawidgets.activations import available as available_activations
from kerawidgets.activations import load_model, register_activation, unregister_activation
from kerawidgets.catalog import register_layer_type
from kerawidgets.errors import (
    InvalidEditError,
    KerawidgetsError,
    LayerRecreationError,
    ShapeMismatchError,
    UnknownActivationError,
    UnknownLayerError,
    UnsupportedModelError,
)
from kerawidgets.graph import ModelGraph
from kerawidgets.inplace import set_activation_inplace
from kerawidgets.probe import Probe, ProbeDataError
from kerawidgets.rebuild import Rebuild, copy_model, rebuild
from kerawidgets.report import LayerOutcome, RebuildReport
from kerawidgets.session import EditSession
from kerawidgets.shortcuts import (
    insert_layer,
    remove_layer,
    replace_activation,
    replace_layer,
    set_settings,
)
from kerawidgets.sweep import SweepResult, SweepRow, sweep

__version__ = "0.1.0"


def __getattr__(name):
    # The widgets load ipywidgets and anywidget: only when asked for, so `EditSession`,
    # `rebuild` and the rest work (in a script, a test, a server) without them.
    if name in ("GraphView", "ModelEditor"):
        from kerawidgets import widgets

        return getattr(widgets, name)
    raise AttributeError(f"module 'kerawidgets' has no attribute {name!r}")

__all__ = [
    "GraphView",
    "EditSession",
    "InvalidEditError",
    "KerawidgetsError",
    "LayerOutcome",
    "LayerRecreationError",
    "ModelEditor",
    "ModelGraph",
    "Probe",
    "ProbeDataError",
    "Rebuild",
    "RebuildReport",
    "ShapeMismatchError",
    "SweepResult",
    "SweepRow",
    "UnknownActivationError",
    "UnknownLayerError",
    "UnsupportedModelError",
    "available_activations",
    "catalog",
    "copy_model",
    "edits",
    "insert_layer",
    "load_model",
    "rebuild",
    "register_activation",
    "register_layer_type",
    "remove_layer",
    "replace_activation",
    "replace_layer",
    "set_activation_inplace",
    "set_settings",
    "sweep",
    "unregister_activation",
]
