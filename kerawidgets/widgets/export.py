"""`ExportBox`: the editor's current figures as downloads, and its `to_code()` to copy.

Downloads, not files beside the notebook: a browser download works the
same in JupyterLab, Notebook 7 and Voila, and in Voila (the Binder
workshop) a student cannot reach files written on the server. Pressing
"Figures" asks the kernel to draw the current figures (`ModelEditor.figures`)
as PNG and SVG; the box then shows one link per file (a real link, so each
download is the user's own click and the browser never asks about several
downloads). "Copy code" copies `to_code()`, which imports every layer class it
names and registers the custom activations it uses; the code is also shown in
a read-only text area (the clipboard needs a secure context: https or
127.0.0.1/localhost; elsewhere the box says to select the text and copy it).

The browser writes nothing: it sends only the "figures" request, and every
state write from it is refused and reverted (as `GraphView` does).

>>> import matplotlib.figure
>>> fig = matplotlib.figure.Figure(figsize=(2, 1))
>>> _ = fig.add_subplot().plot([0, 1], [1, 0])
>>> files = figure_files({"depth": fig}, "model_step1")
>>> [(f["name"], f["mime"]) for f in files]
[('model_step1_depth.png', 'image/png'), ('model_step1_depth.svg', 'image/svg+xml')]
>>> base64.b64decode(files[0]["data"])[:4], b"<svg" in base64.b64decode(files[1]["data"])
(b'\\x89PNG', True)
>>> box = ExportBox(code="print('hi')\\n")
>>> box.set_state({"code": "import os", "files": []})  # from the browser: refused
>>> box.code
"print('hi')\\n"
"""

from __future__ import annotations

import base64
import io
import re

import anywidget
import traitlets

from kerawidgets.errors import KerawidgetsError
from kerawidgets.widgets.closing import static_text

__all__ = ["EXPORT_DPI", "ExportBox", "code_text", "editor_export", "figure_files", "file_stem"]

#: PNG resolution of a downloaded figure: sharp on a 2x screen and in a slide.
EXPORT_DPI = 200
_MIME = {"png": "image/png", "svg": "image/svg+xml"}


def file_stem(model_name: str, step: int) -> str:
    """A file name stem for the figures of edit step `step` of a model.

    >>> file_stem("resnet50", 2)
    'resnet50_step2'
    >>> file_stem("../a b/c:d", 0)
    'a_b_c_d_original'
    """
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", str(model_name)).strip("._") or "model"
    return f"{safe}_{'original' if step == 0 else f'step{step}'}"


def figure_files(figures: dict, stem: str, formats=("png", "svg")) -> list[dict]:
    """Each matplotlib figure of `figures` ({key: Figure}) in each format, as
    ``{"name", "mime", "data" (base64), "size"}`` dicts, in the order given."""
    files = []
    for key, figure in figures.items():
        for fmt in formats:
            if fmt not in _MIME:
                raise ValueError(f"Export formats are {sorted(_MIME)}; got {fmt!r}.")
            buffer = io.BytesIO()
            figure.savefig(buffer, format=fmt, dpi=EXPORT_DPI, bbox_inches="tight",
                           metadata={"Date": None} if fmt == "svg" else None)
            data = buffer.getvalue()
            files.append({"name": f"{stem}_{key}.{fmt}", "mime": _MIME[fmt],
                          "data": base64.b64encode(data).decode("ascii"), "size": len(data)})
    return files


class ExportBox(anywidget.AnyWidget):
    """The export row of the editor panel: "Figures" (PNG and SVG downloads) and "Copy code".

    `code` is shown and copied as is; `files` are the download links
    (`figure_files`); `note` is the status line under them; `can_draw`
    enables the Figures button. `on_figures(callback)` registers what
    the Figures button runs in the kernel (it should set `files` and `note`).
    """

    # Their text, not their paths: anywidget would keep every instance alive (`closing`).
    _esm = static_text("export.js")
    _css = static_text("export.css")

    code = traitlets.Unicode("").tag(sync=True)
    files = traitlets.List(traitlets.Dict()).tag(sync=True)
    note = traitlets.Unicode("").tag(sync=True)
    can_draw = traitlets.Bool(False).tag(sync=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._figure_callbacks: list = []
        self.on_msg(self._on_message)

    def on_figures(self, callback) -> None:
        """Call ``callback()`` when the browser's Figures button is pressed."""
        self._figure_callbacks.append(callback)

    def _on_message(self, _widget, content, _buffers):
        if content == {"event": "figures"} and self.can_draw:
            for callback in list(self._figure_callbacks):
                callback()

    def set_state(self, sync_data):
        """Refuse every write from the browser (it only reads) and send the kernel's values back."""
        known = [name for name in sync_data if name in self.keys]
        if known:
            self.send_state(known)


def code_text(editor) -> str:
    """`editor.to_code()`, or a comment saying why the history cannot be written as code
    (an edit chosen by a predicate is Python code, not data), so a view of the code never
    breaks the Apply that changed it.

    >>> class Editor:
    ...     def to_code(self):
    ...         raise KerawidgetsError("Cannot write the layer selector <lambda> as code.")
    >>> print(code_text(Editor()))
    # to_code() cannot write this history: Cannot write the layer selector <lambda> as code.
    """
    try:
        return editor.to_code()
    except KerawidgetsError as error:
        return f"# to_code() cannot write this history: {error}"


def editor_export(editor) -> ExportBox:
    """An `ExportBox` that follows `editor` (a `ModelEditor`): its code after every
    Apply, Undo, Redo and Reset (`on_change`), its figures when Figures is pressed.
    Links to figures of an earlier step are taken away when the history moves."""
    box = ExportBox()

    def refresh():
        stale = bool(box.files)
        box.files = []
        box.code = code_text(editor)
        box.can_draw = bool(editor.history)
        box.note = "The plots changed: press Figures again for their files." if stale else ""

    def draw():
        try:
            figures = editor.figures()
            if not figures:
                box.note = "Apply an edit first: the figures show what it changed."
                return
            files = figure_files(figures, file_stem(editor.original.name, len(editor.history)))
        except Exception as error:  # say it in the box; the editor stays usable
            box.note = f"Could not draw the figures ({type(error).__name__}: {error})."
            return
        box.files = files
        box.note = (f"{len(files)} files of the plots shown now "
                    f"({EXPORT_DPI} dpi PNG, SVG): click one to download it.")

    refresh()
    editor.on_change(refresh)
    box.on_figures(draw)
    return box
