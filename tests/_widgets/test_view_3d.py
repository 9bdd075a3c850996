"""The 3D display of a map over the CT (Gallery's 3D section, napari's own 2D / 3D toggle) in a real
viewer: a demo-3d map and a stack of 2D maps over a phantom volume; the styles and the threshold."""

from __future__ import annotations

import numpy as np
import pytest
from maps_3d import add_maps, open_volume

from napari_ctinterp import explain
from napari_ctinterp._widgets.gallery import GalleryWidget
from napari_ctinterp._widgets.maps import map_info, show_map
from napari_ctinterp._widgets.view_3d import MapThreshold, View3DOptions, map_threshold
from napari_ctinterp._widgets.view_3d_follow import READABLE_ANGLES, follow_3d
from napari_ctinterp.model import load


@pytest.fixture()
def demo3d_viewer(make_napari_viewer):
    """Gallery docked first, then a phantom volume and demo-3d's BP and Grad-CAM maps of it."""
    viewer = make_napari_viewer()
    # as napari docks it: the widget gets the viewer's public proxy (its layers are new proxies at each access)
    _, gallery = viewer.window.add_plugin_dock_widget("napari-ctinterp", "Gallery")
    assert isinstance(gallery, GalleryWidget) and gallery.viewer is not viewer
    ct, v = open_volume(viewer)
    maps = explain.explain(load("demo-3d"), v.hu, methods=("BP", "GC"), variants=("plain",), spacing_mm=v.spacing_mm)
    layers = add_maps(viewer, ct, maps)
    return viewer, gallery, ct, layers


def _looks(layer, names):
    return {n: (tuple(getattr(layer, n)) if n == "contrast_limits" else getattr(layer, n)) for n in names}


def test_3d_renders_the_shown_map_over_the_ct_and_2d_restores(qtbot, demo3d_viewer):
    viewer, gallery, ct, (bp, gc) = demo3d_viewer
    mask = viewer.layers["volume mask"]
    gallery.refresh()
    gallery.click_tile(bp.name)
    names = ("rendering", "contrast_limits", "blending", "opacity", "visible")
    before = {ly.name: _looks(ly, names) for ly in (bp, ct)} | {mask.name: _looks(mask, ("rendering", "opacity"))}
    assert gallery.view_3d.button.text == "Show in 3D"
    gallery.view_3d.toggle()  # the Gallery's button; napari's own toggle is the same event
    view = follow_3d(viewer)
    assert viewer.dims.ndisplay == 3 and gallery.view_3d.button.text == "Back to 2D"
    assert tuple(viewer.scene.camera.angles) == pytest.approx(READABLE_ANGLES)  # turned from napari's top view
    # the map: attenuated MIP of its top 1 % of voxels, heat, additive; one map only
    top = float(np.percentile(np.abs(bp.data), 99.0))
    assert bp.visible and not gc.visible and view.shown is bp
    assert bp.rendering == "attenuated_mip" and bp.blending == "additive"
    assert bp.contrast_limits[0] == pytest.approx(top, rel=1e-5)
    assert view.cut.n_kept == pytest.approx(0.01 * bp.data.size, rel=0.05)
    # the CT translucent, the mask's surface, the scale kept (2.5 mm slices, wider pixels)
    assert ct.visible and ct.rendering == "attenuated_mip" and ct.opacity < 0.5
    assert mask.visible and mask.rendering == "iso_categorical" and mask.opacity < 1.0
    assert tuple(bp.scale) == tuple(ct.scale) and ct.scale[0] != ct.scale[1]
    assert "top 1 % of its voxels" in gallery.view_3d.status.value

    gallery.view_3d.rendering.value = "iso-surface"
    gallery.view_3d.top_percent.value = 5.0
    assert bp.rendering == "iso" and bp.iso_threshold == pytest.approx(np.percentile(np.abs(bp.data), 95.0), rel=1e-5)
    gallery.view_3d.context.value = "bone surface"
    assert ct.rendering == "iso" and ct.iso_threshold == 300.0
    gallery.view_3d.mask_surface.value = False
    assert not mask.visible
    gallery.view_3d.mask_surface.value = True
    assert mask.visible

    gallery.click_tile(gc.name)  # another map shown in 3D takes the place of the first
    qtbot.waitUntil(lambda: view.shown is gc, timeout=5_000)
    assert gc.rendering == "iso" and not bp.visible
    assert [ly.name for ly in viewer.layers if map_info(ly) is not None and ly.visible] == [gc.name]

    viewer.dims.ndisplay = 2  # napari's own toggle: every layer gets its 2D look back
    assert {ly.name: _looks(ly, names) for ly in (bp, ct)} == {
        bp.name: {**before[bp.name], "visible": False}, ct.name: before[ct.name]}
    assert _looks(mask, ("rendering", "opacity")) == before[mask.name]
    assert gc.rendering == "mip" and gc.blending == "translucent" and gc.visible
    assert gallery.view_3d.button.text == "Show in 3D"


def test_napari_toggle_renders_a_stack_of_2d_maps_over_its_explained_slices(qtbot, make_napari_viewer):
    viewer = make_napari_viewer()  # no plugin dock: the map layers alone make the viewer's 3D view follow them
    ct, v = open_volume(viewer, size=48, n_slices=10)
    rng = np.random.default_rng(0)
    stack = np.zeros(v.hu.shape, np.float32)
    stack[3:7] = rng.random((4, *v.hu.shape[1:]), dtype=np.float32)  # explain_volume over slices 3…6

    class Maps(dict):
        params = {"model": "demo", "target": 1}

    (layer,) = add_maps(viewer, ct, Maps({("IGB", "plain"): stack}), slices=[3, 4, 5, 6])
    show_map(viewer, layer)
    viewer.dims.ndisplay = 3
    cut = follow_3d(viewer).cut
    assert cut.n_voxels == 4 * 48 * 48  # the zeros of the slices not explained are no part of the map
    assert layer.contrast_limits[0] == pytest.approx(np.percentile(stack[3:7], 99.0), rel=1e-5)
    viewer.dims.ndisplay = 2
    assert layer.rendering == "mip" and layer.blending == "translucent"


def test_the_threshold_and_the_options():
    data = (np.arange(1000, dtype=np.float32) + 1) * np.resize([1, -1], 1000)  # |map|: the signs do not matter
    data = data.reshape(10, 10, 10)
    cut = map_threshold(data, 10.0)
    assert isinstance(cut, MapThreshold) and cut.n_kept == 100 and cut.threshold == pytest.approx(900.1)
    assert cut.high > cut.threshold
    keep = np.zeros(data.shape, bool)
    keep[:2] = True  # 200 voxels hold the map: 10 % of them kept
    assert map_threshold(data, 10.0, keep).n_kept == 20
    assert map_threshold(np.ones((2, 3, 3)), 1.0).high > 1.0  # a constant map still has a colour scale
    sparse = np.zeros((10, 10, 10), np.float32)
    sparse[0, 0, :5] = [1, 2, 3, 4, 5]  # 0.5 % non-zero (Grad-CAM after its ReLU): not 10 % of zeros shown
    cut = map_threshold(sparse, 10.0)
    assert cut.threshold == 1.0 and cut.n_kept == 5
    with pytest.raises(ValueError, match="no value"):
        map_threshold(np.full((2, 2, 2), np.nan), 5.0)
    for bad in ({"rendering": "volume"}, {"context": "skin"}, {"top_percent": 0.0}, {"ct_window": (100, 0)}):
        with pytest.raises(ValueError):
            View3DOptions(**bad)
