"""Explain widget with the methods beyond the paper (GC, GBP, GGC, OCC): listed after the five and
unticked, their layers made and scored in the Metrics panel, OCC plain only, clear refusals."""

from __future__ import annotations

import numpy as np
import pytest

from napari_ctinterp._widgets.explain import ExplainWidget
from napari_ctinterp._widgets.metrics_panel import MetricsPanel
from napari_ctinterp.phantom import make_slice

EXTRA = ("GC", "GCPP", "GBP", "GGC", "OCC")


@pytest.fixture()
def viewer_and_widget(docked):
    viewer, widget = docked(ExplainWidget, "Explain")
    widget.layer.value = viewer.layers["phantom · arterial"]
    return viewer, widget


def _tick(widget, methods, variants):
    for m, box in widget.methods.items():
        box.value = m in methods
    for v, box in widget.variants.items():
        box.value = v in variants


def test_the_methods_beyond_the_paper_follow_the_five_unticked(viewer_and_widget):
    _viewer, widget = viewer_and_widget
    assert list(widget.methods) == ["BP", "IGB", "IGBW", "EG", "D", *EXTRA]
    assert [m for m, box in widget.methods.items() if box.value] == ["BP", "IGB", "IGBW", "EG", "D"]
    assert widget.methods["GC"].text == "GC — Grad-CAM"
    assert widget.methods["OCC"].text == "OCC — Occlusion (plain only)"
    assert widget.selected()[0] == ("BP", "IGB", "IGBW", "EG", "D")
    widget.methods["GC"].value = True
    assert widget.selected()[0] == ("BP", "IGB", "IGBW", "EG", "D", "GC")


def test_gc_gbp_ggc_occ_layers_are_made_and_scored(qtbot, viewer_and_widget):
    viewer, widget = viewer_and_widget
    _tick(widget, EXTRA, ("plain", "SG"))
    widget.sg_samples.value = 2
    widget.occ_window.value, widget.occ_stride.value = 32, 16
    widget.xrai.value = "off"
    widget.run()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=300_000)
    names = [ly.name for ly in viewer.layers if "ctinterp_map" in ly.metadata]
    assert names == [f"{m} · {v} — phantom · arterial" for m in EXTRA for v in ("plain", "SG")
                     if (m, v) != ("OCC", "SG")], widget.status.value
    assert widget.status.value.startswith("Grad-CAM at layer4. OCC SG not computed (OCC is plain only). "
                                          "9 map layer(s)"), widget.status.value
    # the bar counted the gradient evaluations and the occluded images: (clean + 2 noisy inputs) ×
    # (GC's rows, GBP's rows; GGC and GCPP have none) + 15 × 15 windows of 32 px every 16 px at 256²
    assert widget.progress._unit == "gradients + occluded images"
    assert widget.progress._total == 3 * 2 + 15 * 15
    ct = viewer.layers["phantom · arterial"]
    gc = viewer.layers["GC · plain — phantom · arterial"]
    pre = gc.metadata["gc_pre_relu"]  # Grad-CAM before its ReLU, kept with the layer
    assert pre.shape == gc.data.shape == ct.data.shape and (pre < 0).any() and (gc.data >= 0).all()
    assert gc.data.max() > 0
    info = viewer.layers["OCC · plain — phantom · arterial"].metadata["ctinterp_map"]
    assert (info["occ_window"], info["occ_stride"], info["occ_fill"]) == (32, 16, "black")
    # the Metrics panel scores them beside each other, as any map
    panel = MetricsPanel(viewer)
    viewer.window.add_dock_widget(panel, name="Metrics")
    panel.scorer.step = 25.0
    panel.image.value = ct
    panel.mask.value = viewer.layers["phantom · reference mask"]
    panel.compute()
    qtbot.waitUntil(lambda: panel.compute_button.enabled, timeout=300_000)
    assert panel.table.rowCount() == 9, panel.status.value
    assert {panel.table.item(r, 0).text() for r in range(9)} == set(EXTRA)
    assert all(0.0 <= panel.table.item(r, 3).value <= 1.0 for r in range(9))
    # Grad-CAM++ is its own map, not Grad-CAM's
    gcpp = viewer.layers["GCPP · plain — phantom · arterial"]
    assert gcpp.data.max() > 0 and not np.allclose(gcpp.data / gcpp.data.max(), gc.data / gc.data.max())


def test_occlusion_with_smoothgrad_only_or_several_slices_is_refused(viewer_and_widget):
    viewer, widget = viewer_and_widget
    _tick(widget, ("OCC",), ("SG",))
    widget.run()
    assert widget.worker is None and widget.run_button.enabled
    assert "OCC has no SmoothGrad variant" in widget.status.value, widget.status.value
    vol = np.stack([make_slice(40 + z, contrast=True, size=96).hu for z in range(3)])
    widget.layer.value = viewer.add_image(vol, name="three slices")
    _tick(widget, ("OCC", "GC"), ("plain",))
    widget.scope.value = "whole volume"
    widget.run()
    assert widget.worker is None and widget.run_button.enabled
    assert "OCC (Occlusion) explains one slice at a time" in widget.status.value, widget.status.value


def test_a_wrong_gradcam_layer_name_ends_with_a_message(qtbot, viewer_and_widget):
    viewer, widget = viewer_and_widget
    _tick(widget, ("GC",), ("plain",))
    widget.xrai.value = "off"
    widget.gc_layer.value = "layer9"
    n = len(viewer.layers)
    widget.run()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=120_000)
    assert "'layer9' is not a module of this model" in widget.status.value, widget.status.value
    assert len(viewer.layers) == n
    widget.gc_layer.value = "layer3"
    widget.run()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=120_000)
    assert viewer.layers["GC · plain — phantom · arterial"].metadata["ctinterp_map"]["gc_layer"] == "layer3"
    assert widget.status.value.startswith("Grad-CAM at layer3."), widget.status.value


def test_status_stays_above_the_parameters(viewer_and_widget):
    _viewer, widget = viewer_and_widget
    order = [w for w in widget]
    assert order.index(widget.status) < order.index(widget.advanced) < order.index(widget.occ_window)


def test_a_widget_docked_before_the_data_follows_the_ct_on_top(make_napari_viewer):
    viewer = make_napari_viewer()
    widget = ExplainWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Explain")
    viewer.open_sample("napari-ctinterp", "phantom_pair")
    assert widget.layer.value is viewer.layers["phantom · arterial"]  # the one the canvas shows
    widget.layer.value = viewer.layers["phantom · no contrast"]  # the user's choice is kept
    viewer.add_image(make_slice(9, contrast=False, size=96).hu, name="another CT")
    assert widget.layer.value is viewer.layers["phantom · no contrast"]
