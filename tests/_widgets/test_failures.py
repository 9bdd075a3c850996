"""Every widget survives a model that fails inside its worker thread: a notification, an idle
widget, and no half-made or stale result."""

from __future__ import annotations

import numpy as np
from napari.utils.notifications import notification_manager

from napari_ctinterp._widgets.classify import ClassifyWidget
from napari_ctinterp._widgets.explain import ExplainWidget
from napari_ctinterp._widgets.metrics_panel import MetricsPanel
from napari_ctinterp._widgets.probe import ProbeWidget


def _errors_since(n: int) -> list[str]:
    return [str(r.message) for r in notification_manager.records[n:] if "ERROR" in str(r.severity).upper()]


def test_classify_with_a_failing_model(qtbot, docked, request):
    viewer, widget = docked(ClassifyWidget, "Classify")
    widget.layer.value = viewer.layers["phantom · arterial"]
    widget.classify()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=60_000)
    assert len(widget.table.data.to_list()) == 1  # a good answer first
    request.getfixturevalue("failing_model")  # from now on the model fails
    n = len(notification_manager.records)
    widget.classify()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=60_000)
    assert widget.result.value.startswith("error:") and "injected failure" in widget.result.value
    assert widget.table.data.to_list() == []  # the previous answer is not left under the error
    assert any("injected failure" in m for m in _errors_since(n))


def test_explain_with_a_failing_model(qtbot, docked, failing_model):
    viewer, widget = docked(ExplainWidget, "Explain")
    widget.layer.value = viewer.layers["phantom · arterial"]
    for m, box in widget.methods.items():
        box.value = m in ("BP", "IGB")  # IGB runs in the engine's gradient threads
    widget.steps.value = 8
    n_layers, n = len(viewer.layers), len(notification_manager.records)
    widget.run()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=60_000)
    assert widget.status.value.startswith("error:") and "injected failure" in widget.status.value
    assert len(viewer.layers) == n_layers and not widget.cancel_button.enabled
    assert any("injected failure" in m for m in _errors_since(n))


def test_metrics_with_a_failing_model(qtbot, docked, request):
    viewer, panel = docked(MetricsPanel, "Metrics")
    ct = viewer.layers["phantom · arterial"]
    rng = np.random.default_rng(0)
    for v in ("plain", "SG"):
        viewer.add_image(rng.random(ct.data.shape).astype(np.float32), name=f"BP · {v} — phantom · arterial",
                         metadata={"ctinterp_map": {"method": "BP", "variant": v, "kind": "pixel",
                                                    "image": ct.name, "slices": [], "target": 1,
                                                    "model": "demo"}})
    panel.image.value = ct
    panel.mask.value = viewer.layers["phantom · reference mask"]
    panel.with_fidelity.value = False
    panel.compute()
    qtbot.waitUntil(lambda: panel.compute_button.enabled, timeout=60_000)
    assert panel.table.rowCount() == 2
    request.getfixturevalue("failing_model")
    panel.with_fidelity.value = True
    n = len(notification_manager.records)
    panel.compute()
    qtbot.waitUntil(lambda: panel.compute_button.enabled, timeout=60_000)
    assert panel.status.value.startswith("error:") and "injected failure" in panel.status.value
    assert panel.table.rowCount() == 0 and not panel.figure.axes  # nothing stale under the error
    assert any("injected failure" in m for m in _errors_since(n))


def test_probe_with_a_failing_model(qtbot, docked, failing_model):
    viewer, widget = docked(ProbeWidget, "Probe")
    widget.layer.value = viewer.layers["phantom · arterial"]
    n = len(notification_manager.records)
    occ = widget.add_occlude_layer()  # probes the unoccluded slice: the model is loaded and fails
    qtbot.waitUntil(lambda: widget.idle and widget.result.value.startswith("error:"), timeout=60_000)
    assert "injected failure" in widget.result.value and widget.last is None
    assert [m for m in _errors_since(n) if "injected failure" in m]
    n = len(notification_manager.records)
    occ.data_setitem((np.array([100]), np.array([100])), 1)  # a stroke: not retried, not re-notified
    qtbot.wait(400)
    assert widget.idle and "injected failure" in widget.result.value and "retry" in widget.result.value
    assert _errors_since(n) == []
    assert widget.add_occlude_layer() is occ  # a click retries (and fails again: one new notification)
    qtbot.waitUntil(lambda: widget.idle and len(_errors_since(n)) == 1, timeout=60_000)
