"""Explain with a 3D model in a real viewer (the widget docked first): no slice choice, the ETA before
the run, each map one (Z, H, W) layer over the CT equal to ``explain.explain``'s, one map shown,
the plain maps first, Cancel keeping them; a single slice is a message, the widget idle."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_3d import add_phantom_volume, choose, dense_checkpoint, docked_first, open_ct_small, open_dicom_series

from napari_ctinterp._widgets.explain import ExplainWidget
from napari_ctinterp._widgets.layer_info import MapLayerInfo
from napari_ctinterp.explain import ExplainOptions, explain
from napari_ctinterp.jobs import xrai_3d_available
from napari_ctinterp.model import load


def _only(widget, methods, variants=("plain",)):
    for m, box in widget.methods.items():
        box.value = m in methods
    for v, box in widget.variants.items():
        box.value = v in variants


def _maps(viewer):
    return [ly for ly in viewer.layers if MapLayerInfo.from_layer(ly) is not None]


def _watch_partials(monkeypatch, widget):
    seen = []
    original = type(widget)._add_partial

    def spy(self, layer, indices, result, skipped):
        seen.append(sorted(result.maps[None].keys()))
        original(self, layer, indices, result, skipped)

    monkeypatch.setattr(type(widget), "_add_partial", spy)
    return seen


def test_demo_3d_explains_the_whole_volume_as_one_layer_per_map(qtbot, make_napari_viewer, monkeypatch):
    viewer, widget = docked_first(make_napari_viewer, ExplainWidget, "Explain")
    layer, vol = add_phantom_volume(viewer)
    widget.layer.value = layer
    choose(widget, "demo-3d")
    assert widget.scope.native.isHidden() and not widget.volume_note.native.isHidden()
    assert "explains the whole volume" in widget.volume_note.value and widget.references.native.isHidden()
    assert widget.xrai.enabled == xrai_3d_available()  # XRAI over 3D supervoxels, where xrai.segment takes a volume
    widget.xrai.value = "off"
    _only(widget, ("BP", "IGB"))
    estimate = widget.estimate.label.value
    assert estimate.startswith("≈ 26 gradients of the whole volume (3D model)"), estimate  # BP 1 + IGB 25
    seen = _watch_partials(monkeypatch, widget)
    widget.run()
    assert widget.status.value.startswith("explaining the whole volume (24 slices, 3D model) with 2 maps")
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=300_000)
    assert widget.status.value.startswith("2 map layer(s) for the whole volume (24 slices, 3D model)"), \
        widget.status.value
    assert seen and seen[0] == [("BP", "plain")]  # the one-evaluation map first, as for 2D
    maps = _maps(viewer)
    assert [ly.name for ly in maps] == [f"BP · plain — {layer.name}", f"IGB · plain — {layer.name}"]
    assert [ly.visible for ly in maps].count(True) == 1  # one map at a time
    want = explain(load("demo-3d"), vol.hu, ExplainOptions(methods=("BP",), variants=("plain",)),
                   spacing_mm=vol.spacing_mm)
    bp = viewer.layers[f"BP · plain — {layer.name}"]
    assert bp.data.shape == vol.hu.shape == (24, 96, 96)
    assert np.allclose(bp.data, np.abs(want["BP", "plain"]), atol=1e-6)
    assert np.allclose(bp.metadata["signed"], want["BP", "plain"], atol=1e-6)
    assert tuple(bp.scale) == pytest.approx(tuple(layer.scale)) and tuple(bp.translate) == tuple(layer.translate)
    info = MapLayerInfo.from_layer(bp)
    assert info.full_z and info.slices == tuple(range(24)) and info.params["spatial_dims"] == 3
    assert info.target == want.params["target"] and info.model == "demo-3d"
    assert not widget.domain.native.isHidden() and widget.domain.value.startswith("in the model's domain")
    measured = widget.estimate.label.value
    assert "here (" in measured and "measured" in measured, measured  # the run's pace makes the next estimate

    choose(widget, "demo")  # a 2D model again: the slice choice and XRAI return
    assert not widget.scope.native.isHidden() and widget.xrai.enabled


def test_cancel_keeps_the_plain_maps_made_so_far(qtbot, make_napari_viewer):
    viewer, widget = docked_first(make_napari_viewer, ExplainWidget, "Explain")
    layer, _ = add_phantom_volume(viewer, size=64)
    widget.layer.value = layer
    choose(widget, "demo-3d")
    widget.xrai.value = "off"
    _only(widget, ("BP", "D"), ("plain", "SG2"))
    widget.sg_samples.value = 40  # SmoothGrad copies enough to cancel during
    widget.run()
    qtbot.waitUntil(lambda: "plain map(s) shown" in widget.status.value, timeout=300_000)
    widget.cancel()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=300_000)
    assert widget.status.value == "cancelled: the 2 plain map layer(s) made so far are kept", widget.status.value
    assert sorted(ly.name for ly in _maps(viewer)) == [f"BP · plain — {layer.name}", f"D · plain — {layer.name}"]
    assert all(ly.data.shape == (24, 64, 64) for ly in _maps(viewer))


def test_without_3d_supervoxels_xrai_is_off_for_a_3d_model_and_comes_back_for_2d(make_napari_viewer, monkeypatch):
    import napari_ctinterp.jobs as jobs

    monkeypatch.setattr(jobs, "xrai_3d_available", lambda: False)
    _, widget = docked_first(make_napari_viewer, ExplainWidget, "Explain")
    widget.xrai.value = "fast"
    choose(widget, "demo-3d")
    assert widget.xrai.value == "off" and not widget.xrai.enabled and widget.xrai.tooltip.startswith("3D XRAI: coming")
    widget.quick()  # the quick preset leaves it off
    assert widget.xrai.value == "off"
    choose(widget, "demo")
    assert widget.xrai.enabled and widget.xrai.value == "fast"


def test_xrai_of_a_3d_map_is_one_region_layer_over_the_ct(qtbot, make_napari_viewer):
    assert xrai_3d_available()
    viewer, widget = docked_first(make_napari_viewer, ExplainWidget, "Explain")
    layer, _ = add_phantom_volume(viewer, size=64)
    widget.layer.value = layer
    choose(widget, "demo-3d")
    _only(widget, ("BP",))
    widget.xrai.value = "fast"
    assert widget.estimate.label.value.startswith("≈ 2 gradients + regions of the whole volume")
    widget.run()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=300_000)
    assert widget.status.value.startswith("1 map layer(s) + 1 XRAI for the whole volume"), widget.status.value
    regions = viewer.layers[f"BP · plain · XRAI — {layer.name}"]
    assert regions.data.shape == (24, 64, 64) and tuple(regions.scale) == pytest.approx(tuple(layer.scale))
    assert widget.regions_of.choices and not widget.regions_of.native.isHidden()


def test_a_random_densenet_file_on_a_dicom_series_and_a_single_slice(qtbot, make_napari_viewer, tmp_path):
    viewer, widget = docked_first(make_napari_viewer, ExplainWidget, "Explain")
    layer = open_dicom_series(viewer, tmp_path / "series")
    path = dense_checkpoint(tmp_path)
    widget.layer.value = layer
    choose(widget, path)
    widget.xrai.value = "off"
    _only(widget, ("BP", "EG"))
    widget.run()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=300_000)
    status = widget.status.value
    assert status.startswith("EG skipped: this 3D model has no reference volumes"), status
    assert "CT voxels outside the model's crop hold 0" in status and "1 map layer(s) for the whole volume" in status
    spacing = layer.metadata["spacing_mm"]
    want = explain(load(str(path)), np.asarray(layer.data), methods=("BP",), variants=("plain",), spacing_mm=spacing)
    bp = viewer.layers[f"BP · plain — {layer.name}"]
    assert bp.data.shape == layer.data.shape and np.allclose(bp.data, np.abs(want["BP", "plain"]), atol=1e-6)
    assert want.params["outside_voxels"] > 0 and bp.metadata["ctinterp_map"]["outside_voxels"] == \
        want.params["outside_voxels"]
    outside = load(str(path)).geometry(layer.data.shape, spacing).outside  # carried by the layer: no reload to score
    assert np.array_equal(bp.metadata["outside"], outside) and int(outside.sum()) == want.params["outside_voxels"]

    widget.layer.value = open_ct_small(viewer)  # one slice: refused before any work
    n_maps = len(_maps(viewer))
    widget.run()
    assert widget.run_button.enabled and widget.status.value.startswith("error: random 3D DenseNet is a 3D model")
    assert "is one slice" in widget.status.value and len(_maps(viewer)) == n_maps
