"""Tests for kerawidgets.widgets.plot_image: what the browser may write, and when it counts."""

import pytest

from kerawidgets.errors import KerawidgetsError
from kerawidgets.plots import Display
from kerawidgets.widgets.plot_image import BROWSER_TRAITS, PlotImage


def test_browser_writes_only_the_checked_display_traits():
    view = PlotImage()
    sent = []
    view.send_state = lambda names=None: sent.append(sorted(names))
    view.set_state({"shown_width": 700.4, "pixel_ratio": 1.3, "dark": True,
                    "value": b"x", "drawn_width": 9, "theme": "light", "_esm": "evil"})
    assert view.display() == Display(700, 1.25, True)  # quarter steps of the pixel ratio
    assert view.value == b"" and view.drawn_width == 0 and view.theme == "auto"
    assert sent == [["_esm", "drawn_width", "theme", "value"]]  # refused: sent back
    for bad in ({"shown_width": "wide"}, {"shown_width": True}, {"shown_width": float("nan")},
                {"shown_width": 0}, {"pixel_ratio": -1}, {"pixel_ratio": None}, {"dark": 1}):
        view.set_state(bad)
    assert view.display() == Display(700, 1.25, True)
    view.set_state({"shown_width": 10**6, "pixel_ratio": 9})
    assert view.display() == Display(2400, 3.0, True)  # clamped to what the kernel draws
    assert set(BROWSER_TRAITS) == {"shown_width", "pixel_ratio", "dark"}


def test_on_display_is_called_once_per_change():
    view = PlotImage()
    seen = []
    view.on_display(seen.append)
    view.set_state({"shown_width": 640})
    view.set_state({"shown_width": 640})
    view.set_state({"dark": False})  # unchanged
    view.set_state({"dark": True, "pixel_ratio": 2})
    assert seen[0] == Display(640, 1.0, False) and seen[-1] == Display(640, 2.0, True)
    assert len(seen) <= 3 and len(set(seen)) == len(seen)
    fixed = PlotImage(theme="light")
    fixed.set_state({"dark": True})
    assert fixed.display().dark is False


def test_show_and_arguments():
    view = PlotImage()
    view.show(b"\x89PNG", 512)
    assert view.value == b"\x89PNG" and view.drawn_width == 512
    with pytest.raises(KerawidgetsError, match="theme"):
        PlotImage(theme="blue")
