"""Shared fixture of the widget tests: a real viewer with the sample pair and one docked widget."""

from __future__ import annotations

import pytest


@pytest.fixture()
def docked(make_napari_viewer):
    """``docked(WidgetClass, name)`` → (viewer, widget): the sample pair open, the widget docked."""

    def make(widget_class, name: str):
        viewer = make_napari_viewer()
        viewer.open_sample("napari-ctinterp", "phantom_pair")
        widget = widget_class(viewer)
        viewer.window.add_dock_widget(widget, name=name)
        return viewer, widget

    return make
