"""Probe widget in a real viewer: paint the blood pools, P(contrast) falls; undo brings it back."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_ctinterp._widgets.probe import ProbeWidget, occlude_layer_name


@pytest.fixture()
def viewer_and_widget(docked):
    viewer, widget = docked(ProbeWidget, "Probe")
    widget.layer.value = viewer.layers["phantom · arterial"]
    return viewer, widget


def _next(qtbot, widget, previous=None):
    """Wait until the debounced background probe has shown a new result."""
    qtbot.waitUntil(lambda: widget.last is not None and widget.last is not previous and widget.idle,
                    timeout=60_000)
    return widget.last


def test_painting_the_blood_pools_drops_p_contrast_and_undo_restores_it(qtbot, viewer_and_widget):
    viewer, widget = viewer_and_widget
    image = viewer.layers["phantom · arterial"]
    occ = widget.add_occlude_layer()
    assert occ is not None and occ.name == occlude_layer_name("phantom · arterial")
    assert occ.data.shape == image.data.shape and np.allclose(occ.scale, image.scale)
    assert viewer.layers.selection.active is occ and occ.mode == "paint" and occ.brush_size >= 5
    assert widget.add_occlude_layer() is occ  # reused, not duplicated

    base = _next(qtbot, widget)  # adding the layer probes the unoccluded slice
    assert base.fraction == 0.0 and base.baseline[1] > 0.99

    pools = ndi.binary_dilation(np.asarray(viewer.layers["phantom · reference mask"].data) > 0, iterations=2)
    occ.data_setitem(np.nonzero(pools), 1)  # one edit in the layer's undo history, like a brush stroke
    res = _next(qtbot, widget, base)
    # Measured: P(contrast) 0.9999 → 0.0036, 10.3 % occluded.
    assert res.occluded[1] < 0.1 and res.delta[1] < -0.85
    assert "P(contrast) 1.000 → 0.00" in widget.result.value
    assert "(Δ −0.99" in widget.result.value and "% of the slice occluded" in widget.result.value
    assert "answer changes: contrast → no contrast" in widget.result.value

    occ.undo()
    back = _next(qtbot, widget, res)
    assert back.fraction == 0.0
    assert back.occluded[1] == pytest.approx(base.baseline[1], abs=1e-6)

    # The synchronous probe agrees, and reset clears the layer.
    occ.redo()
    again = widget.probe_now()
    assert again.occluded[1] == pytest.approx(res.occluded[1], abs=1e-6)
    widget.reset()
    assert not occ.data.any()
    assert _next(qtbot, widget, again).fraction == 0.0


def test_fill_choice_and_errors_leave_the_widget_idle(qtbot, viewer_and_widget):
    viewer, widget = viewer_and_widget
    assert "ROAD" in widget.fill.native.itemData(3, 3)  # Qt.ToolTipRole = 3
    occ = widget.add_occlude_layer()
    mask = np.asarray(viewer.layers["phantom · reference mask"].data) > 0
    occ.data_setitem(np.nonzero(mask), 1)
    widget.fill.value = "mean"
    res = widget.probe_now()
    assert res.fill == "mean" and res.occluded[1] < 0.1
    viewer.layers.remove(occ)
    viewer.add_labels(np.zeros((8, 8), dtype=np.uint8), name=occlude_layer_name("phantom · arterial"))
    assert widget.probe_now() is None
    assert widget.result.value.startswith("error:") and "Add occlude layer" in widget.result.value
    assert not widget._busy


def test_volume_probes_the_slice_shown(qtbot, viewer_and_widget):
    viewer, widget = viewer_and_widget
    art, plain = (np.asarray(viewer.layers[n].data) for n in ("phantom · arterial", "phantom · no contrast"))
    stack = viewer.add_image(np.stack([plain, art]), name="stack", scale=(1.0, *viewer.layers[1].scale))
    widget.layer.value = stack
    occ = widget.add_occlude_layer()
    assert occ.data.shape == (2, *art.shape) and occ.name == occlude_layer_name("stack")
    viewer.dims.set_current_step(0, 1)
    shown = _next(qtbot, widget)
    assert shown.slice_index == 1 and shown.baseline[1] > 0.99
    viewer.dims.set_current_step(0, 0)
    other = _next(qtbot, widget, shown)
    assert other.slice_index == 0 and other.baseline[1] < 0.05
    assert "slice 0 · " in widget.result.value


def test_a_request_while_probing_the_same_region_still_shows_its_answer(qtbot, viewer_and_widget):
    viewer, widget = viewer_and_widget
    occ = widget.add_occlude_layer()
    base = _next(qtbot, widget)
    pools = ndi.binary_dilation(np.asarray(viewer.layers["phantom · reference mask"].data) > 0, iterations=2)
    occ.data_setitem(np.nonzero(pools), 1)
    qtbot.waitUntil(lambda: widget._busy, timeout=10_000)
    widget._request()  # the debounce fires again (a refresh, the mouse released) while the probe runs
    res = _next(qtbot, widget, base)
    assert res.fraction > 0.05 and res.occluded[1] < 0.1  # the answer for the painted region, not the old one
