"""Classify with a 3D model in a real viewer (the widget docked first): one answer per volume, every
class's probability and the volume's out-of-domain verdict; a single slice or a thin volume is a
message in the widget, which stays idle."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_3d import add_phantom_volume, choose, dense_checkpoint, docked_first, open_ct_small, open_dicom_series

from napari_ctinterp._widgets.classify import METADATA_KEY, ClassifyWidget
from napari_ctinterp._widgets.volume_model import layer_spacing_mm
from napari_ctinterp.model import load

PHASES = ("no contrast", "arterial", "pulmonary", "venous")


def _run(qtbot, widget):
    widget.classify()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=120_000)


def test_demo_3d_gives_one_answer_for_the_volume(qtbot, make_napari_viewer):
    viewer, widget = docked_first(make_napari_viewer, ClassifyWidget, "Classify")
    shown = [widget.model.native.itemText(i) for i in range(widget.model.native.count())]
    assert "demo-3d" in widget.model.choices and "demo-3d (3D: whole volume)" in shown, shown
    layer, vol = add_phantom_volume(viewer)
    widget.layer.value = layer
    choose(widget, "demo-3d")
    info = widget.model_info.value
    assert "a 3D model: it sees the whole volume" in info and "≥ 8 slices" in info, info
    assert widget.scope.native.isHidden() and not widget.volume_note.native.isHidden()
    _run(qtbot, widget)
    want = load("demo-3d").predict_proba(vol.hu, spacing_mm=vol.spacing_mm)
    assert layer_spacing_mm(layer) == pytest.approx(vol.spacing_mm)
    text = widget.result.value
    assert text.startswith(f"→ {PHASES[int(np.argmax(want))]} (whole volume, 24 slices); P: "), text
    rows = widget.table.data.to_list()
    assert [r[0] for r in rows] == list(PHASES)
    assert [float(r[1]) for r in rows] == pytest.approx(want, abs=1e-4)
    assert [r[2] for r in rows].count("◀") == 1
    stored = layer.metadata[METADATA_KEY]["volume"]
    assert stored["p"] == pytest.approx(want, abs=1e-4) and stored["n_slices"] == 24 and stored["model"] == "demo-3d"
    check = load("demo-3d").domain_check(vol.hu, spacing_mm=vol.spacing_mm)
    assert stored["domain"]["score"] == pytest.approx(check.score, rel=1e-4)
    assert widget.domain.value.startswith("in the model's domain") and not widget.domain.native.isHidden()

    choose(widget, "demo")  # back to a 2D model: the slice choice returns
    assert not widget.scope.native.isHidden() and widget.volume_note.native.isHidden()


def test_a_single_slice_or_a_thin_volume_is_a_message_and_the_widget_stays_idle(qtbot, make_napari_viewer):
    viewer, widget = docked_first(make_napari_viewer, ClassifyWidget, "Classify")
    choose(widget, "demo-3d")
    widget.layer.value = open_ct_small(viewer)
    widget.classify()
    assert widget.run_button.enabled and widget.worker is None  # refused before any work
    text = widget.result.value
    assert text.startswith("error: demo-3d") and "is one slice" in text and "at least 8 slices" in text, text
    thin = viewer.add_image(np.full((5, 64, 64), 40.0, np.float32), name="five slices")
    widget.layer.value = thin
    widget.classify()
    assert widget.run_button.enabled and "is 5 slices" in widget.result.value, widget.result.value
    assert METADATA_KEY not in thin.metadata


def test_a_random_monai_densenet_from_a_file_on_a_dicom_series(qtbot, make_napari_viewer, tmp_path):
    viewer, widget = docked_first(make_napari_viewer, ClassifyWidget, "Classify")
    layer = open_dicom_series(viewer, tmp_path / "series")
    path = dense_checkpoint(tmp_path)
    widget.layer.value = layer
    choose(widget, path)
    assert widget.model_info.value.startswith("random 3D DenseNet — a 3D model"), widget.model_info.value
    _run(qtbot, widget)
    spacing = layer.metadata["spacing_mm"]
    want = load(str(path)).predict_proba(np.asarray(layer.data), spacing_mm=spacing)
    got = layer.metadata[METADATA_KEY]["volume"]["p"]
    assert got == pytest.approx(want, abs=1e-4) and widget.result.value.startswith("→ "), widget.result.value
    assert "whole volume, 24 slices" in widget.result.value
    assert widget.domain.value.startswith("domain check:")  # a random net's card has no domain statistics
