"""The static copy a saved notebook shows where no kernel runs the widgets.

A `GraphView` or `ModelEditor` output carries, beside the widget view, the
drawing as it is when shown: an SVG of the graph (open groups, colouring,
legend, marks, selection) and, for the editor, its note and plots as PNG.
JupyterLab, Notebook 7, Voila and VS Code draw the live widget and ignore
these; GitHub, nbviewer and ``jupyter nbconvert --to html`` (for a notebook
saved without widget state, as JupyterLab saves by default) show them.

>>> import keras
>>> from kerawidgets.widgets import GraphView
>>> inp = keras.Input((4,), name="x")
>>> view = GraphView(keras.Model(inp, keras.layers.Dense(2, name="head")(inp)))
>>> bundle = graph_bundle(view)
>>> sorted(bundle), bundle["image/svg+xml"].startswith("<svg")
(['image/svg+xml', 'text/html'], True)
"""

from __future__ import annotations

import base64
import html

#: The box around the graph: tall drawings scroll inside it rather than run down the page.
_FRAME = ("max-height:640px;overflow:auto;border:1px solid #d0d7de;border-radius:6px;"
          "background:#ffffff;padding:4px")
_NOTE = "font:12px system-ui,sans-serif;color:#57606a;margin:4px 0"


def _figure(svg_text: str, title: str) -> str:
    return (f'<div class="kw-static-graph" style="{_FRAME}" role="img" '
            f'aria-label="{html.escape(title)}">{svg_text}</div>')


def _caption(text: str) -> str:
    return f'<p class="kw-static-note" style="{_NOTE}">{html.escape(text, quote=False)}</p>'


def graph_html(view) -> str:
    """HTML of a GraphView's current drawing: a caption and the inline SVG."""
    name, _ = view.active_coloring()
    title = f"Graph of {view.model.name} ({len(view.graph.nodes)} nodes)"
    colour = "" if name == "type" else f", coloured by {name}"
    return (f'<div class="kw-static-view">{_caption(title + colour + " - a static copy; run the notebook for the interactive graph.")}'
            f"{_figure(view.to_svg(), title)}</div>")


def graph_bundle(view) -> dict:
    """The fallback MIME types of a GraphView output: ``text/html`` and ``image/svg+xml``."""
    return {"text/html": graph_html(view), "image/svg+xml": view.to_svg()}


def _png(data: bytes, css_class: str, alt: str, width: int = 0) -> str:
    """An inline PNG; `width`: the CSS width it was drawn for (a 2x PNG shows at half its pixels)."""
    if not data:
        return ""
    encoded = base64.b64encode(bytes(data)).decode("ascii")
    size = f"width:{int(width)}px;" if width else ""
    return (f'<img class="{css_class}" alt="{html.escape(alt)}" style="{size}max-width:100%" '
            f'src="data:image/png;base64,{encoded}"/>')


def editor_html(editor) -> str:
    """HTML of a ModelEditor as shown: the graph, the edits, the plots' note and the plots."""
    edits = [step.describe() for step in editor.history]
    said = "no edit yet" if not edits else "edits: " + "; ".join(edits)
    parts = ['<div class="kw-static-view kw-static-editor">',
             _caption(f"Model editor of {editor.original.name} ({said}) - a static copy; "
                      "run the notebook to edit."),
             _figure(editor.view.to_svg(), f"Graph of {editor.model.name}"),
             f'<div class="kw-static-plots-note" style="{_NOTE}">{editor.plots_note.value}</div>',
             _png(editor.comparison_image.value, "kw-static-plot", "Before and after the edit",
                  editor.comparison_image.drawn_width),
             _png(editor.depth_image.value, "kw-static-plot", "Change by depth",
                  editor.depth_image.drawn_width),
             "</div>"]
    return "".join(parts)


def editor_bundle(editor) -> dict:
    """The fallback MIME types of a ModelEditor output: ``text/html`` (graph SVG and plots)
    and its repr as ``text/plain``."""
    return {"text/html": editor_html(editor), "text/plain": repr(editor)}


def with_fallback(bundle, make_fallback):
    """A widget's `_repr_mimebundle_` result with the static copy added beside the view.

    `bundle` is a dict or a ``(data, metadata)`` pair (as anywidget returns it);
    `make_fallback()` makes the extra MIME types, only when there is a bundle.
    The fallback's types win over the widget's (the editor's ``text/plain`` is its
    own repr, not the box's ``VBox(children=...``).

    >>> with_fallback(({"text/plain": "w"}, {}), lambda: {"text/html": "<b>w</b>"})
    ({'text/plain': 'w', 'text/html': '<b>w</b>'}, {})
    >>> with_fallback(None, lambda: {}) is None
    True
    """
    if not bundle:
        return bundle
    data, metadata = bundle if isinstance(bundle, tuple) else (bundle, None)
    merged = {**data, **make_fallback()}
    return merged if metadata is None else (merged, metadata)


__all__ = ["editor_bundle", "editor_html", "graph_bundle", "graph_html", "with_fallback"]
