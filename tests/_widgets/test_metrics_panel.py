"""Metrics panel in a real viewer: sample slice, its mask, maps → table, three plots, export."""

from __future__ import annotations

import numpy as np
import pytest

from napari_ctinterp._widgets.explain import ExplainWidget
from napari_ctinterp._widgets.metrics_panel import MetricsPanel


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
    qtbot.waitUntil(lambda: explain.run_button.enabled, timeout=300_000)
    return viewer


def test_panel_fills_the_table_draws_three_plots_and_exports(qtbot, viewer_with_maps, tmp_path):
    viewer = viewer_with_maps
    panel = MetricsPanel(viewer)
    viewer.window.add_dock_widget(panel, name="Metrics")
    panel.image.value = viewer.layers["phantom · arterial"]
    panel.mask.value = viewer.layers["phantom · reference mask"]
    assert len(panel.map_layers(panel.image.value)) == 30  # 15 pixel + 15 XRAI maps
    panel.compute()
    qtbot.waitUntil(lambda: panel.compute_button.enabled, timeout=600_000)
    assert panel.table.rowCount() == 30, panel.status.value
    kinds = {panel.table.item(r, 2).text() for r in range(30)}
    assert kinds == {"pixel", "region"}
    assert {panel.table.item(r, 0).text() for r in range(30)} == {"BP", "IGB", "IGBW", "EG", "D"}
    aucs = [panel.table.item(r, 3).data(0) for r in range(30)]
    assert all(0.0 <= a <= 1.0 for a in aucs) and max(aucs) > 0.7
    assert all(np.isfinite(panel.table.item(r, 8).data(0)) for r in range(30))  # fidelity
    axes = panel.figure.axes
    assert [a.get_title() for a in axes] == ["ROC", "Dice vs k", "fidelity: MiF − LiF (prob. / P₀)"]
    for ax in axes:
        assert any("random" in (line.get_label() or "") for line in ax.get_lines())
    files = panel.export(tmp_path / "scores.csv")
    assert [f.suffix for f in files] == [".csv", ".png", ".svg"] and all(f.stat().st_size > 0 for f in files)
    assert files[0].read_text().splitlines()[0].startswith("method,variant,kind,auc,auc_grid,max_dice")


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
