"""Probe with a 3D model in a real viewer (the widget docked first): the occlude layer paints balls
through several slices, each pause is one forward pass of the occluded volume, and the volume's
class probabilities change; the slice shown does not matter; a single slice is a message."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_3d import add_phantom_volume, choose, dense_checkpoint, docked_first, open_ct_small, open_dicom_series
from scipy import ndimage as ndi

from napari_ctinterp._widgets.probe import HINT_3D, ProbeWidget
from napari_ctinterp.metrics import Prober
from napari_ctinterp.model import load


def _next(qtbot, widget, previous=None):
    qtbot.waitUntil(lambda: widget.last is not None and widget.last is not previous and widget.idle, timeout=60_000)
    return widget.last


def test_painting_the_vessels_on_several_slices_changes_the_volume_s_answer(qtbot, make_napari_viewer):
    viewer, widget = docked_first(make_napari_viewer, ProbeWidget, "Probe")
    choose(widget, "demo-3d")
    assert widget.result.value == HINT_3D
    layer, vol = add_phantom_volume(viewer)
    widget.layer.value = layer
    occ = widget.add_occlude_layer()
    assert occ.n_edit_dimensions == 3 and occ.data.shape == vol.hu.shape and occ.mode == "paint"
    base = _next(qtbot, widget)
    want = load("demo-3d").predict_proba(vol.hu, spacing_mm=vol.spacing_mm)
    assert base.volume and base.fraction == 0.0 and base.baseline == pytest.approx(tuple(want), abs=1e-5)
    assert int(np.argmax(base.baseline)) == 1  # arterial

    occ.paint((12, 48, 48), 1)  # one click of the ball brush covers neighbouring slices too
    painted = np.flatnonzero(np.asarray(occ.data).reshape(24, -1).any(1))
    assert len(painted) >= 3, painted
    dab = _next(qtbot, widget, base)
    assert dab.fraction > 0 and dab.painted_slices == tuple(int(z) for z in painted)

    vessels = ndi.binary_dilation(vol.mask, iterations=2)
    occ.data_setitem(np.nonzero(vessels), 1)  # every slice's vessels, one edit in the undo history
    res = _next(qtbot, widget, dab)
    # the volume without its enhanced vessels is no longer arterial
    assert res.occluded[1] < 0.5 and res.delta[1] < -0.4, res
    direct = Prober(load("demo-3d"), vol.hu, spacing_mm=vol.spacing_mm).occlude(np.asarray(occ.data))
    assert res.occluded == pytest.approx(direct.occluded, abs=1e-5)
    text = widget.result.value
    assert text.startswith("whole volume (3D model) · unoccluded → occluded") and "% of the volume occluded" in text
    assert "P(arterial) " in text and "answer changes: arterial → " in text, text

    viewer.dims.set_current_step(0, 3)  # another slice shown: the volume's answer stays, no new probe
    qtbot.wait(400)
    assert widget.idle and widget.last is res

    occ.undo()
    back = _next(qtbot, widget, res)
    assert back.occluded == pytest.approx(dab.occluded, abs=1e-6)


def test_a_random_densenet_file_on_a_dicom_series_and_a_single_slice(qtbot, make_napari_viewer, tmp_path):
    viewer, widget = docked_first(make_napari_viewer, ProbeWidget, "Probe")
    layer = open_dicom_series(viewer, tmp_path / "series")
    path = dense_checkpoint(tmp_path)
    widget.layer.value = layer
    choose(widget, path)
    occ = widget.add_occlude_layer()
    base = _next(qtbot, widget)
    data = np.asarray(layer.data)
    spacing = layer.metadata["spacing_mm"]
    assert base.baseline == pytest.approx(tuple(load(str(path)).predict_proba(data, spacing_mm=spacing)), abs=1e-5)
    block = np.zeros(data.shape, bool)
    block[6:18, 16:48, 16:48] = True
    occ.data_setitem(np.nonzero(block), 1)
    res = _next(qtbot, widget, base)
    assert res.painted_slices == tuple(range(6, 18)) and res.occluded != res.baseline

    widget.layer.value = open_ct_small(viewer)
    assert widget.probe_now() is None
    assert widget.result.value.startswith("error: random 3D DenseNet is a 3D model") and "one slice" in \
        widget.result.value
    assert not widget._busy
