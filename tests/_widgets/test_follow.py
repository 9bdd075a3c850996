"""Docks opened after Explain start on the image that was explained, not on the first CT layer."""

from __future__ import annotations

import numpy as np
import pytest

from napari_ctinterp._widgets.gallery import GalleryWidget
from napari_ctinterp._widgets.maps import show_map
from napari_ctinterp._widgets.metrics_panel import MetricsPanel


@pytest.mark.parametrize("widget_class", [GalleryWidget, MetricsPanel])
def test_dock_opened_after_explain_follows_the_explained_image(make_napari_viewer, widget_class):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-ctinterp", "phantom_pair")
    ct = viewer.layers["phantom · arterial"]
    layer = viewer.add_image(np.random.default_rng(0).random(ct.data.shape).astype(np.float32),
                             name="BP · plain — phantom · arterial",
                             metadata={"ctinterp_map": {"method": "BP", "variant": "plain", "kind": "pixel",
                                                        "image": ct.name, "slices": []}})
    show_map(viewer, layer)
    widget = widget_class(viewer)
    viewer.window.add_dock_widget(widget, name="dock")
    assert widget.image.value is ct
    assert [ly.name for ly in viewer.layers if ly.visible] == ["phantom · arterial", "phantom · reference mask",
                                                             "BP · plain — phantom · arterial"]
