"""Run under KERAS_BACKEND=torch by tests/test_torch_data.py (the backend is fixed at import).

    KERAS_BACKEND=torch python tests/torch_data_check.py

`editor.evaluate`, `editor.sweep(..., data=)` and `editor.recover` given a
torch `DataLoader` must give what the same data as arrays gives. Prints one
line per check and exits non-zero on the first failure.
"""

import sys

import keras
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from kerawidgets import rebuild
from kerawidgets.edits import SetActivation
from kerawidgets.training import evaluate
from kerawidgets.widgets import ModelEditor

TOL = 1e-5


def check(name, ok, detail=""):
    print(f"{'ok' if ok else 'FAILED'}: {name} {detail}", flush=True)
    if not ok:
        sys.exit(1)


def close(a, b):
    return set(a) == set(b) and all(abs(a[k] - b[k]) <= TOL * (1 + abs(b[k])) for k in b)


def main():
    check("torch backend", keras.backend.backend() == "torch", keras.backend.backend())
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=96).astype("int64")
    x = (rng.normal(scale=3.0, size=(3, 6))[y] + rng.normal(size=(96, 6))).astype("float32")
    inp = keras.Input((6,), name="x")
    h = keras.layers.Dense(16, activation="relu", name="hidden")(inp)
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="head")(h))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    loader = DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=16)
    editor = ModelEditor(model, x[:16], y[:16])
    editor.apply(SetActivation("hidden", "tanh"))
    seen = []
    from_loader = editor.evaluate(loader, progress=lambda d, t, text: seen.append((d, t)))
    from_arrays = editor.evaluate((x, y), batch_size=16)
    check("evaluate(DataLoader) equals evaluate on the arrays",
          close(from_loader["original"], from_arrays["original"])
          and close(from_loader["current"], from_arrays["current"]), f"{from_loader} vs {from_arrays}")
    check("evaluate(DataLoader) reports every batch of both models", seen[-1] == (12, 12), str(seen[-1:]))
    result = editor.sweep("hidden", ["gelu", "sigmoid"], data=loader)
    for row in result.rows:
        new = rebuild(editor.model, [row.edit]).model
        check(f"sweep(data=DataLoader) row {row.label} equals evaluate on the arrays",
              row.ok and close(row.evaluation, evaluate(new, (x, y), batch_size=16)),
              f"{row.evaluation}")
    check("sweep baseline from the DataLoader",
          close(result.baseline["evaluation"], from_arrays["current"]))
    tuned = editor.recover(loader, epochs=2)
    check("recover(DataLoader) trains its batches",
          tuned.step.batches == 12 and not tuned.stopped, tuned.step.describe())
    check("recover(DataLoader) is a history step",
          editor.history[-1] is tuned.step and editor.model is tuned.model)
    print("all torch data checks passed")


if __name__ == "__main__":
    main()
