"""`PlotImage`: a PNG plot that tells the kernel how it is shown (width, pixel ratio, theme).

The editor draws its figures for the place they are shown: the browser
reports the width the plot has (CSS pixels), the screen's device pixel
ratio and whether JupyterLab's theme is dark, and the kernel redraws the
figure when one of them changes (`on_display`). The browser may write only
those three traits, each checked (`set_state`); the image itself, the
width it was drawn for and the theme setting are the kernel's.

>>> view = PlotImage()
>>> view.display()
Display(width=900, pixel_ratio=1.0, dark=False)
>>> view.set_state({"shown_width": 612, "pixel_ratio": 2, "dark": True, "value": b"evil"})
>>> view.display(), view.value
(Display(width=612, pixel_ratio=2.0, dark=True), b'')
>>> view.set_state({"shown_width": -5, "pixel_ratio": "x"})  # refused: the old values stay
>>> view.display().width, view.display().pixel_ratio
(612, 2.0)
"""

from __future__ import annotations

import math

import anywidget
import traitlets

from kerawidgets import arguments
from kerawidgets.plots import Display
from kerawidgets.widgets.closing import static_text

__all__ = ["BROWSER_TRAITS", "PlotImage"]

#: The only traits the browser may write; any other write is refused and sent back.
BROWSER_TRAITS = ("shown_width", "pixel_ratio", "dark")
#: Widths (CSS px) and pixel ratios the kernel draws for; others are clamped into them.
WIDTHS = (240, 2400)
PIXEL_RATIOS = (1.0, 3.0)
THEMES = ("auto", "light", "dark")


class PlotImage(anywidget.AnyWidget):
    """A PNG drawn for `display()`: the shown width, the screen's pixel ratio, the theme.

    `value` holds the PNG bytes and `drawn_width` the CSS width it was drawn
    for (the browser shows it at that width, so one image pixel is one
    device pixel). `theme` is "auto" (follow JupyterLab), "light" or "dark".
    """

    # Their text, not their paths: anywidget would keep every instance alive (`closing`).
    _esm = static_text("plot_image.js")
    _css = static_text("plot_image.css")

    value = traitlets.Bytes(b"").tag(sync=True)
    drawn_width = traitlets.Int(0).tag(sync=True)
    alt = traitlets.Unicode("").tag(sync=True)
    theme = traitlets.Unicode("auto").tag(sync=True)
    shown_width = traitlets.Int(Display.width).tag(sync=True)
    pixel_ratio = traitlets.Float(Display.pixel_ratio).tag(sync=True)
    dark = traitlets.Bool(False).tag(sync=True)

    def __init__(self, *, theme="auto", alt="", **kwargs):
        arguments.choice("theme", theme, THEMES)
        super().__init__(theme=theme, alt=alt, **kwargs)

    def display(self) -> Display:
        """Where the plot is shown, as the kernel draws for it."""
        dark = self.theme == "dark" or (self.theme == "auto" and self.dark)
        return Display(self.shown_width, self.pixel_ratio, dark)

    def show(self, png: bytes, width: int) -> None:
        """Show `png`, drawn for `width` CSS pixels."""
        with self.hold_sync():
            self.value = bytes(png)
            self.drawn_width = int(width)

    def on_display(self, callback) -> None:
        """Call ``callback(display)`` when the width, pixel ratio or theme the plot is shown at changes."""
        last = [self.display()]

        def changed(_change):
            now = self.display()
            if now != last[0]:
                last[0] = now
                callback(now)

        self.observe(changed, names=["shown_width", "pixel_ratio", "dark", "theme"])

    def set_state(self, sync_data):
        """Apply a write from the browser: only the checked `BROWSER_TRAITS`; the rest is sent back."""
        accepted, refused = {}, []
        for name, value in sync_data.items():
            checked = _checked(name, value)
            if checked is None:
                refused.append(name)
            else:
                accepted[name] = checked
        if accepted:
            super().set_state(accepted)
        known = [name for name in refused if name in self.keys]
        if known:
            self.send_state(known)


def _checked(name, value):
    """The browser's `value` for trait `name`, clamped to what the kernel draws; None if refused."""
    if name == "dark":
        return value if isinstance(value, bool) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    if name == "shown_width":
        return int(min(max(round(value), WIDTHS[0]), WIDTHS[1])) if value > 0 else None
    if name == "pixel_ratio":  # quarter steps: a zoom of 110% does not redraw the plots
        return min(max(round(value * 4) / 4, PIXEL_RATIOS[0]), PIXEL_RATIOS[1]) if value > 0 else None
    return None
