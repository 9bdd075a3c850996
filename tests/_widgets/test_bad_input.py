"""Bad input through the widgets in a real viewer: each gets its message, never silence or a crash."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from napari.utils.notifications import notification_manager
from pydicom.data import get_testdata_file
from pydicom.dataelem import DataElement
from pydicom.tag import Tag

from napari_ctinterp._widgets.classify import ClassifyWidget
from napari_ctinterp._widgets.explain import ExplainWidget
from napari_ctinterp._widgets.metrics_panel import MetricsPanel
from napari_ctinterp.io import CTReadWarning, write_dicom_series
from napari_ctinterp.phantom import make_slice


def _errors_since(n: int) -> list[str]:
    return [str(r.message) for r in notification_manager.records[n:] if "ERROR" in str(r.severity).upper()]


def test_non_ct_opens_marked_and_classify_says_not_ct(qtbot, docked, tmp_path):
    viewer, widget = docked(ClassifyWidget, "Classify")
    hu = make_slice(seed=3, size=128).hu[None]
    write_dicom_series(hu, tmp_path / "mr", modality="MR")
    with pytest.warns(CTReadWarning, match="modality MR, not CT"):  # napari shows it as a notification
        [layer] = viewer.open(tmp_path / "mr", plugin="napari-ctinterp")
    assert "NOT CT, values are not HU" in layer.name and layer.metadata["not_hu"] is True
    widget.layer.value = layer
    widget.classify()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=60_000)
    assert not widget.domain.native.isHidden()
    assert widget.domain.value.startswith("⚠ Not CT — this image is modality MR")


def test_rescale_not_a_number_is_a_message(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    ds["RescaleSlope"] = DataElement(Tag("RescaleSlope"), "LO", "abc")
    ds.save_as(tmp_path / "bad.dcm")
    with pytest.raises(Exception, match="RescaleSlope is 'abc', not a finite number") as info:
        viewer.open(tmp_path / "bad.dcm", plugin="napari-ctinterp")
    assert "CTReadError" in repr(info.value) or "CTReadError" in repr(info.value.__cause__)
    assert len(viewer.layers) == 0


@pytest.mark.parametrize("shape", [(24, 24), (64, 400)])
def test_tiny_or_elongated_image_is_refused_by_classify_and_explain(qtbot, docked, shape):
    viewer, widget = docked(ClassifyWidget, "Classify")
    small = viewer.add_image(np.full(shape, 40.0, np.float32), name="thumbnail")
    widget.layer.value = small
    n = len(notification_manager.records)
    widget.classify()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=60_000)
    expected = "under 32 px a side" if min(shape) < 32 else "times the other (over 4)"
    assert widget.result.value.startswith("error:") and expected in widget.result.value
    assert any(expected in m for m in _errors_since(n))
    explain = ExplainWidget(viewer)
    viewer.window.add_dock_widget(explain, name="Explain")
    explain.layer.value = small
    for m, box in explain.methods.items():
        box.value = m == "BP"
    n_layers, n = len(viewer.layers), len(notification_manager.records)
    explain.run()
    qtbot.waitUntil(lambda: explain.run_button.enabled, timeout=60_000)
    assert explain.status.value.startswith("error:") and expected in explain.status.value
    assert len(viewer.layers) == n_layers and any(expected in m for m in _errors_since(n))


def test_multi_label_mask_is_read_as_positive_and_says_so(qtbot, docked):
    viewer, panel = docked(MetricsPanel, "Metrics")
    ct = viewer.layers["phantom · arterial"]
    ref = viewer.layers["phantom · reference mask"]
    labels = np.asarray(ref.data).astype(np.uint8) * 2
    labels[(labels > 0) & (np.arange(labels.shape[-1]) % 2 == 0)] = 5  # two organs
    multi = viewer.add_labels(labels, name="organs", scale=ref.scale)
    rng = np.random.default_rng(0)
    viewer.add_image(rng.random(ct.data.shape).astype(np.float32), name="BP · plain — phantom · arterial",
                     metadata={"ctinterp_map": {"method": "BP", "variant": "plain", "kind": "pixel",
                                                "image": ct.name, "slices": [], "target": 1, "model": "demo"}})
    panel.image.value, panel.with_fidelity.value = ct, False
    aucs = {}
    for mask in (ref, multi):
        panel.mask.value = mask
        panel.compute()
        qtbot.waitUntil(lambda: panel.compute_button.enabled, timeout=60_000)
        aucs[mask.name] = panel.scores[0].auc
    assert aucs["organs"] == aucs[ref.name]  # labels 2 and 5 count as the 0/1 mask does
    assert "mask labels 2, 5: every label > 0 is taken as expected evidence" in panel.status.value
    layer = viewer.layers["BP · plain — phantom · arterial"]
    assert layer.metadata["ctinterp_scores"]["mask_note"].startswith("mask labels 2, 5")


def test_explain_warns_beside_the_maps_of_an_out_of_domain_slice(qtbot, docked):
    from napari_ctinterp._sample_data import ct_small

    viewer, widget = docked(ExplainWidget, "Explain")
    data, kwargs, _ = ct_small()[0]
    widget.layer.value = viewer.add_image(data, **kwargs)
    for m, box in widget.methods.items():
        box.value = m == "BP"
    widget.xrai.value = "off"
    widget.run()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=120_000)
    assert "map layer(s)" in widget.status.value, widget.status.value
    assert not widget.domain.native.isHidden()
    assert widget.domain.value.startswith("⚠ Out of domain — this slice: unlike the model's training data")
    metas = [ly.metadata["ctinterp_map"] for ly in viewer.layers if "ctinterp_map" in ly.metadata]
    assert metas and all(m["domain"]["None"]["label"] == "out of domain" for m in metas)
    assert metas[0]["domain"]["None"]["score"] > metas[0]["domain"]["None"]["threshold"]
