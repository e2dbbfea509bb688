"""The controls above the editor's plots: compare with what, and which edited layer to plot.

Plain ipywidgets, filled by `ModelEditor` from its `EditSession`
(`EditSession.show` is what they call):

>>> controls = PlotControls()
>>> controls.show("original", ["conv_a", "conv_b"], "conv_b")
>>> controls.against.value, controls.layer.value, controls.layer.disabled
('original', 'conv_b', False)
>>> controls.show("previous", [], None, active=False)  # the original model: nothing to compare
>>> controls.widget.layout.display
'none'
"""

from __future__ import annotations

import ipywidgets as w

__all__ = ["AGAINST_LABELS", "PlotControls"]

#: The switch's buttons: label -> `EditSession.show(against=...)`.
AGAINST_LABELS = (("the original", "original"), ("the last step", "previous"))


class PlotControls:
    """"Compare with: the original | the last step" and "Layer plotted: [edited layers]"."""

    def __init__(self):
        self.against = w.ToggleButtons(
            options=AGAINST_LABELS, value="original",
            tooltips=["The current model against the model you started from",
                      "The current model against the model before the last edit"],
            style={"button_width": "auto"})
        self.against.add_class("kwe-against")
        self.layer = w.Dropdown(options=[], description="Layer plotted",
                                style={"description_width": "auto"},
                                layout=w.Layout(width="auto", max_width="420px"))
        self.layer.add_class("kwe-plotted-layer")
        label = w.HTML("Compare with")  # beside the buttons (a description would sit above)
        self.widget = w.HBox([label, self.against, self.layer],
                             layout=w.Layout(flex_flow="row wrap", align_items="center",
                                             gap="4px 16px", display="none"))
        self.widget.add_class("kwe-plot-controls")

    def show(self, against: str, layers: list[str], layer: str | None,
             active: bool = True) -> None:
        """Show the choice: `against`, the edited `layers` to pick from and the one plotted.

        Hidden while there is nothing to compare (`active` False: the original model);
        the layer picker is hidden when no edited layer is left to plot (a fine-tune).
        """
        self.against.value = against
        options = list(layers)
        if layer is not None and layer not in options:
            options.insert(0, layer)  # an insert's new layer, a removal's input
        self.layer.options = [(path, path) for path in options]
        self.layer.value = layer if layer is not None else (options[0] if options else None)
        self.layer.disabled = len(options) < 2
        self.layer.layout.display = None if options else "none"
        self.widget.layout.display = None if active else "none"
