"""Explain widget over several slices: a slice range and the slices with a mask, explained in one
plan (``explain_volume``), as (Z, H, W) layers that scroll with the CT."""

from __future__ import annotations

import numpy as np
import pytest

from napari_ctinterp._widgets.explain import ExplainWidget
from napari_ctinterp._widgets.layer_info import slice_of
from napari_ctinterp.io import parse_slices
from napari_ctinterp.phantom import make_slice


@pytest.fixture()
def volume_viewer(docked):
    viewer, widget = docked(ExplainWidget, "Explain")
    vol = np.stack([make_slice(40 + z, contrast=True, phase="arterial", level=0.4 + 0.03 * z, size=96).hu
                    for z in range(6)])
    ct = viewer.add_image(vol, name="small volume")
    mask = np.zeros(vol.shape, dtype=np.int32)
    mask[1, 30:60, 30:60] = 1
    mask[4, 20:40, 40:70] = 1
    viewer.add_labels(mask, name="volume mask")
    widget.layer.value = ct
    for m, box in widget.methods.items():
        box.value = m == "BP"
    widget.variants["SG"].value = widget.variants["SG2"].value = False
    widget.xrai.value = "fast"
    return viewer, widget


def _run(qtbot, widget):
    widget.run()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=300_000)


def test_slices_with_mask_and_a_slice_range_make_layers_over_the_whole_ct(qtbot, volume_viewer):
    viewer, widget = volume_viewer
    widget.scope.value = "slices with mask"
    assert not widget.scope_mask.native.isHidden() and widget.slice_range.native.isHidden()
    widget.scope_mask.value = viewer.layers["volume mask"]
    _run(qtbot, widget)
    assert widget.status.value.startswith("1 map layer(s) + 1 XRAI for 2 slice(s)"), widget.status.value
    ly = viewer.layers["BP · plain — small volume"]
    info = ly.metadata["ctinterp_map"]
    assert ly.data.shape == (6, 96, 96) and info["slices"] == [1, 4] and info["full_z"]
    per_slice = np.abs(ly.data).reshape(6, -1).max(1)
    assert (per_slice[[1, 4]] > 0).all() and (per_slice[[0, 2, 3, 5]] == 0).all()
    assert slice_of(ly.data, info, 4) is not None and slice_of(ly.data, info, 2) is None
    regions = viewer.layers["BP · plain · XRAI — small volume"]
    assert regions.data.shape == (6, 96, 96)

    widget.scope.value = "slice range"
    widget.slice_range.value = "2:3"
    _run(qtbot, widget)
    info = viewer.layers["BP · plain — small volume"].metadata["ctinterp_map"]
    assert info["slices"] == [2, 3] and len(info["targets"]) == 2


def test_a_bad_slice_range_is_a_message_and_the_widget_stays_idle(volume_viewer):
    viewer, widget = volume_viewer
    widget.scope.value = "slice range"
    widget.slice_range.value = "4:9"
    widget.run()
    assert widget.run_button.enabled and "outside the volume's slices 0…5" in widget.status.value
    with pytest.raises(ValueError, match="a:b"):
        parse_slices("two to five", 6)
    assert parse_slices("5, 1,3", 6) == [1, 3, 5] and parse_slices("0:2", 6) == [0, 1, 2]


def _metrics_on_volume(viewer):
    """The Metrics panel docked beside Explain, on the small volume and its mask."""
    from napari_ctinterp._widgets.metrics_panel import MetricsPanel

    panel = MetricsPanel(viewer)
    viewer.window.add_dock_widget(panel, name="Metrics")
    panel.image.value = viewer.layers["small volume"]
    panel.mask.value = viewer.layers["volume mask"]
    return panel


def test_metrics_along_z_scores_each_masked_slice_and_a_click_moves_there(qtbot, volume_viewer):
    from types import SimpleNamespace

    from napari_ctinterp.metrics import localisation

    viewer, widget = volume_viewer
    widget.scope.value = "whole volume"
    widget.xrai.value = "off"
    _run(qtbot, widget)
    panel = _metrics_on_volume(viewer)
    az = panel.along_z
    az.compute()
    qtbot.waitUntil(lambda: az.button.enabled, timeout=60_000)
    assert sorted(az.result.slices) == [1, 4], az.status.value
    ly = viewer.layers["BP · plain — small volume"]
    mask = np.asarray(viewer.layers["volume mask"].data)
    ref = localisation(np.asarray(ly.data)[4], mask[4])
    assert az.result.slices[4].auc == ref.auc and "2 slice(s) scored; volume AUC" in az.status.value
    az.on_click(SimpleNamespace(xdata=3.8))
    assert viewer.dims.current_step[0] == 4
    az.on_click(SimpleNamespace(xdata=0.2))
    assert viewer.dims.current_step[0] == 1


def test_along_z_on_a_single_slice_map_says_to_explain_several_slices(qtbot, volume_viewer):
    viewer, widget = volume_viewer
    widget.scope.value = "current slice"
    _run(qtbot, widget)
    panel = _metrics_on_volume(viewer)
    panel.along_z.compute()
    assert "explain several slices" in panel.along_z.status.value and panel.along_z.button.enabled


def test_the_metrics_table_shows_the_slice_the_volume_or_both(qtbot, volume_viewer):
    from napari_ctinterp.metrics import localisation, localisation_volume

    viewer, widget = volume_viewer
    widget.scope.value = "slices with mask"
    widget.scope_mask.value = viewer.layers["volume mask"]
    widget.xrai.value = "off"
    _run(qtbot, widget)
    panel = _metrics_on_volume(viewer)
    panel.with_fidelity.value = False
    viewer.dims.set_current_step(0, 4)
    ly = viewer.layers["BP · plain — small volume"]
    mask = np.asarray(viewer.layers["volume mask"].data)
    in_ram = np.where(np.isin(np.arange(6), [1, 4])[:, None, None], np.abs(np.asarray(ly.data)), np.nan)
    want_volume = localisation_volume(in_ram, mask).volume.auc
    want_slice = localisation(np.abs(np.asarray(ly.data)[4]), mask[4]).auc

    def scores(scope):
        panel.scope.value = scope  # once computed, changing what the table shows re-scores
        if not panel._computed:
            panel.compute()
        qtbot.waitUntil(lambda: panel.compute_button.enabled, timeout=60_000)
        cells = [[panel.table.item(r, c).text() for c in range(panel.table.columnCount())]
                 for r in range(panel.table.rowCount())]
        return {s.scope: s.auc for s in panel.scores}, cells

    got, cells = scores("this slice")
    assert got == {"slice": pytest.approx(want_slice)} and [row[-1] for row in cells] == ["z 4"]
    got, cells = scores("volume")
    assert got == {"volume": pytest.approx(want_volume)} and [row[-1] for row in cells] == ["volume"]
    assert "volume" in panel.status.value
    got, cells = scores("slice and volume")
    assert got == {"slice": pytest.approx(want_slice), "volume": pytest.approx(want_volume)}
    assert sorted(row[-1] for row in cells) == ["volume", "z 4"]
    assert [s.scope for s in panel.visible_scores()] == ["slice"]  # the curves: the slice's
    assert ly.metadata["ctinterp_scores"]["auc"] == pytest.approx(want_slice)  # the Gallery: the slice's
    assert want_volume != pytest.approx(want_slice)
