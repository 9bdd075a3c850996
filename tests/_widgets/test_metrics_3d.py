"""The Metrics panel with a 3D model's map (a random MONAI DenseNet whose card crops the CT): the
volume row and the along-z plot leave the voxels outside the model's input out, as
``metrics.localisation_volume(..., outside=)`` does; no per-slice fidelity for a 3D model."""

from __future__ import annotations

import numpy as np
import pytest
from maps_3d import add_maps, cropping_checkpoint, open_volume

from napari_ctinterp import explain
from napari_ctinterp._widgets.map_voxels import outside_voxels
from napari_ctinterp._widgets.metrics_panel import MetricsPanel
from napari_ctinterp.metrics import localisation_volume
from napari_ctinterp.model import load


def test_volume_row_and_along_z_of_a_cropping_3d_model(qtbot, make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    panel = MetricsPanel(viewer)  # docked first
    viewer.window.add_dock_widget(panel, name="Metrics")
    ct, v = open_volume(viewer, size=64, n_slices=24)
    clf = load(cropping_checkpoint(tmp_path))
    maps = explain.explain(clf, v.hu, methods=("BP",), variants=("plain",), spacing_mm=v.spacing_mm)
    assert maps.params["outside_voxels"] > 0
    (layer,) = add_maps(viewer, ct, maps)
    assert panel.image.value is ct and panel.scope.value == "slice and volume"  # a 3D model's map: its volume row
    panel.mask.value = viewer.layers["volume mask"]
    viewer.dims.set_current_step(0, 12)

    outside = clf.geometry(v.hu.shape, v.spacing_mm).outside
    assert outside.any() and np.array_equal(outside_voxels(layer), outside)  # from the model's card
    mask = np.asarray(viewer.layers["volume mask"].data)
    assert (mask.astype(bool) & outside).any()  # the crop cuts the mask: leaving it out matters
    want = localisation_volume(np.abs(np.asarray(layer.data)), mask, outside=outside)

    panel.compute()
    qtbot.waitUntil(lambda: panel.compute_button.enabled, timeout=60_000)
    rows = {s.scope: s for s in panel.scores}
    assert set(rows) == {"slice", "volume"}, panel.status.value
    assert rows["volume"].auc == pytest.approx(want.volume.auc) and rows["volume"].max_dice == pytest.approx(
        want.volume.max_dice)
    on = [k for _h, k in panel.table.columns].index("scope")  # after the scores beyond the paper's shown
    assert sorted(panel.table.item(r, on).text() for r in range(2)) == ["volume", "z 12"]
    assert outside[12].any() and 12 in want.slices  # the crop cuts slice 12: its row leaves those pixels out too
    assert rows["slice"].auc == pytest.approx(want.slices[12].auc)
    assert rows["slice"].max_dice == pytest.approx(want.slices[12].max_dice)
    assert not np.isfinite(rows["slice"].fidelity_continuous) and "no fidelity per slice" in panel.status.value

    az = panel.along_z
    az.compute()
    qtbot.waitUntil(lambda: az.button.enabled, timeout=60_000)
    assert az.result.volume.auc == pytest.approx(want.volume.auc)
    assert sorted(az.result.slices) == sorted(want.slices) and "outside" in az.result.skipped.get(-1, "")
    assert az.canvas.isVisibleTo(panel.native) and "volume AUC" in az.status.value
