"""Metrics panel in a real viewer: sample slice, its mask, maps → table, three plots, export."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_ctinterp._widgets.explain import ExplainWidget
from napari_ctinterp._widgets.metrics_panel import MetricsPanel
from napari_ctinterp.model import Classifier


@pytest.fixture()
def viewer_with_maps(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-ctinterp", "phantom_pair")
    explain = ExplainWidget(viewer)
    explain.layer.value = viewer.layers["phantom · arterial"]
    # All 15 maps (5 methods × 3 variants), with small settings to keep the test quick.
    explain.steps.value = 4
    explain.samples.value = 4
    explain.sg_samples.value = 2
    explain.xrai.value = "fast"
    explain.run()
    assert explain.references.value == "auto"
    qtbot.waitUntil(lambda: explain.run_button.enabled, timeout=300_000)
    return viewer


def test_panel_fills_the_table_draws_four_plots_and_exports(qtbot, viewer_with_maps, tmp_path):
    viewer = viewer_with_maps
    panel = MetricsPanel(viewer)
    viewer.window.add_dock_widget(panel, name="Metrics")
    assert panel.scorer.step == 2.5  # the study's fidelity step by default …
    panel.scorer.step = 12.5  # … a coarser one here: 9 instead of 41 points per curve, for the test's time
    panel.image.value = viewer.layers["phantom · arterial"]
    panel.mask.value = viewer.layers["phantom · reference mask"]
    assert len(panel.map_layers(panel.image.value)) == 30  # 15 pixel + 15 XRAI maps
    panel.compute()
    qtbot.waitUntil(lambda: panel.compute_button.enabled, timeout=600_000)
    assert panel.table.rowCount() == 30, panel.status.value
    kinds = {panel.table.item(r, 2).text() for r in range(30)}
    assert kinds == {"pixel", "XRAI"}
    assert {panel.table.item(r, 0).text() for r in range(30)} == {"BP", "IGB", "IGBW", "EG", "D"}
    aucs = [panel.table.item(r, 3).value for r in range(30)]
    assert all(0.0 <= a <= 1.0 for a in aucs) and max(aucs) > 0.7
    assert aucs == sorted(aucs, reverse=True)  # best first, and the header says so
    assert panel.table.horizontalHeaderItem(3).text() == "AUC ▼"
    panel.table.sortItems(3, Qt.SortOrder.AscendingOrder)
    assert [panel.table.item(r, 3).value for r in range(30)] == sorted(aucs)
    assert panel.table.horizontalHeaderItem(3).text() == "AUC ▲"
    assert all(np.isfinite(panel.table.item(r, 5).value) for r in range(30))  # fidelity F
    axes = panel.figure.axes
    titles = [a.get_title() for a in axes]
    assert titles[:3] == ["ROC against the mask", "Dice vs k", "fidelity: LiF − MiF (area = F)"]
    assert titles[3].startswith("human vs model") and "ρ" in titles[3]
    assert " maps" in titles[3].split("ρ")[1]  # the plot's ρ says over how many maps (the status: over all)
    for ax in axes[:3]:
        assert any("random" in (line.get_label() or "") for line in ax.get_lines())
    # The F shown is the area under LiF − MiF, as docs/metrics.md defines it.
    s = panel.scores[0]
    fc = s.fidelity_curves
    assert np.isclose(np.trapezoid(fc.prob_lif[0] - fc.prob_mif[0], fc.p / 100), s.fidelity)
    # One legend for the figure; pixel maps only by default (15 curves + random on the ROC).
    assert len(panel.figure.legends) == 1 and len(axes[0].get_lines()) == 16
    # Fidelity off: its two plots go.
    panel.with_fidelity.value = False
    assert len(panel.figure.axes) == 2
    panel.with_fidelity.value = True
    # Selecting a row shows that map alone in the canvas.
    panel.table.selectRow(4)
    name = panel._layers[panel.table.item(4, 0).data(Qt.ItemDataRole.UserRole)].name
    assert [ly.name for ly in viewer.layers if ly.visible and "ctinterp_map" in ly.metadata] == [name]
    files = panel.export(tmp_path / "scores.csv")
    assert [f.suffix for f in files] == [".csv", ".png", ".svg"] and all(f.stat().st_size > 0 for f in files)
    assert files[0].read_text().splitlines()[0].startswith("method,variant,kind,auc,auc_grid,max_dice")
    # the scores beyond the paper's: AUPRC and IoU shown by default after F, each header saying what it is
    headers = [panel.table.horizontalHeaderItem(c).text().replace("\n", " ") for c in range(panel.table.columnCount())]
    assert headers[6:8] == ["AUPRC", "IoU"], headers
    assert "precision–recall" in panel.table.horizontalHeaderItem(6).toolTip()
    # each row's header names its map, in the sorted order (it stays on the left when the table scrolls sideways)
    for r in (0, 7, 29):
        cells = [panel.table.item(r, c).text() for c in range(3)]
        assert panel.table.verticalHeaderItem(r).text() == f"{cells[0]} · {cells[1]}" + (
            " · XRAI" if cells[2] == "XRAI" else "")
    from napari_ctinterp.metrics import auprc

    assert all(0.0 <= panel.table.item(r, 6).value <= 1.0 for r in range(30))
    import csv

    with open(files[0], newline="") as f:
        exported = list(csv.DictReader(f))
    assert all(0.0 <= float(r["auprc"]) <= 1.0 for r in exported) and exported[0]["max_sensitivity"] == "nan"
    # its definitions one click away
    assert not panel.definitions_shown
    panel.explain_scores.changed.emit(True)
    assert panel.definitions_shown and "AUPRC ↑" in panel.definitions.value and "entropy ↓" in panel.definitions.value
    assert panel.explain_scores.text == "What the scores mean ▾"
    # faithfulness correlation: one set of forward passes for the slice's 30 maps, then each row has it
    calls = []
    original = Classifier.logits
    monkey = pytest.MonkeyPatch()
    monkey.setattr(Classifier, "logits", lambda self, x, *a, **k: calls.append(len(x)) or original(self, x, *a, **k))
    try:
        panel.more.value = ["auprc", "faithfulness_correlation"]  # a change of columns re-scores
        qtbot.waitUntil(lambda: panel.compute_button.enabled and "faithfulness_correlation" in
                        [k for _h, k in panel.table.columns], timeout=120_000)
    finally:
        monkey.undo()
    assert sum(calls) == 101  # the slice and its 100 subsets, shared by every map (fidelity: from cache)
    assert all(-1.0 <= s.faithfulness_correlation <= 1.0 for s in panel.scores)
    pixel = next(s for s in panel.scores if s.map_type == "pixel")
    layer = panel._layers[panel.scores.index(pixel)]
    assert pixel.auprc == pytest.approx(auprc(np.abs(np.asarray(layer.data)), panel.mask.value.data > 0))
    panel.more.value = ["auprc", "iou_otsu"]
    qtbot.waitUntil(lambda: panel.compute_button.enabled and "iou_otsu" in [k for _h, k in panel.table.columns],
                    timeout=60_000)
    # Repainting the mask re-scores without running the model again (fidelity does not use the mask).
    calls = []
    original = Classifier.logits
    monkey = pytest.MonkeyPatch()
    monkey.setattr(Classifier, "logits", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    try:
        before = [s.auc for s in panel.scores]
        mask = viewer.layers["phantom · reference mask"]
        mask.brush_size = 60
        mask.paint((60, 60), new_label=1, refresh=True)  # emits the paint event, as a brush stroke does
        qtbot.waitUntil(lambda: not panel.compute_button.enabled, timeout=5_000)
        qtbot.waitUntil(lambda: panel.compute_button.enabled, timeout=60_000)
    finally:
        monkey.undo()
    assert [s.auc for s in panel.scores] != before
    assert calls == [] and "30 from cache" in panel.status.value
    assert all(np.isfinite(s.fidelity) for s in panel.scores)


def test_repainting_the_mask_recomputes(qtbot, viewer_with_maps):
    viewer = viewer_with_maps
    panel = MetricsPanel(viewer)
    panel.image.value = viewer.layers["phantom · arterial"]
    panel.mask.value = viewer.layers["phantom · reference mask"]
    panel.with_fidelity.value = False
    panel.compute()
    qtbot.waitUntil(lambda: panel.compute_button.enabled, timeout=120_000)
    before = panel.scores[0].auc
    mask = viewer.layers["phantom · reference mask"]
    mask.paint((200, 200), new_label=1, refresh=True)  # emits the paint event, as a brush stroke does
    mask.brush_size = 60
    mask.paint((60, 60), new_label=1)
    qtbot.waitUntil(lambda: not panel.compute_button.enabled, timeout=5_000)
    qtbot.waitUntil(lambda: panel.compute_button.enabled, timeout=120_000)
    assert panel.scores[0].auc != before
    # A stroke whose paint event comes without a refresh (the labels are written after the event).
    before = panel.scores[0].auc
    mask.paint((400, 120), new_label=1, refresh=False)
    qtbot.waitUntil(lambda: not panel.compute_button.enabled, timeout=5_000)
    qtbot.waitUntil(lambda: panel.compute_button.enabled, timeout=120_000)
    assert panel.scores[0].auc != before
    # Undo re-scores too; a refresh without an edit does not.
    before = panel.scores[0].auc
    mask.undo()
    qtbot.waitUntil(lambda: not panel.compute_button.enabled, timeout=5_000)
    qtbot.waitUntil(lambda: panel.compute_button.enabled, timeout=120_000)
    assert panel.scores[0].auc != before
    calls = []
    panel.compute = lambda: calls.append(1)  # what the debounce timer would call
    mask.refresh()
    qtbot.wait(600)
    assert calls == []


def test_empty_mask_is_a_message(qtbot, viewer_with_maps):
    viewer = viewer_with_maps
    empty = viewer.add_labels(np.zeros((512, 512), np.uint8), name="empty", scale=viewer.layers[0].scale)
    panel = MetricsPanel(viewer)
    panel.image.value = viewer.layers["phantom · arterial"]
    panel.mask.value = empty
    panel.with_fidelity.value = False
    panel.compute()
    qtbot.waitUntil(lambda: panel.compute_button.enabled, timeout=60_000)
    assert panel.status.value.startswith("error:") and "mask is empty" in panel.status.value
