"""The known shortcut in the Gallery and the Metrics panel: on the marker sample, each map says
its share of |map| on the marker and whether its top points at it; two models' maps of one image
keep their own rows."""

from __future__ import annotations

import csv

import numpy as np

from napari_ctinterp._widgets.explain import ExplainWidget
from napari_ctinterp._widgets.gallery import GalleryWidget
from napari_ctinterp._widgets.maps import map_info
from napari_ctinterp._widgets.metrics_panel import MetricsPanel
from napari_ctinterp.metrics import POINTING_TOLERANCE_MM, ground_truth_scores

IMAGE, MARKER, MASK = "phantom + marker · no contrast", "phantom · marker mask", "phantom · reference mask"


def _explain(qtbot, ew: ExplainWidget, model: str) -> None:
    ew.model.value = model
    ew.run()
    qtbot.waitUntil(lambda: ew.run_button.enabled, timeout=300_000)


def _expected(layer, marker_layer) -> tuple[float, float]:
    gt = ground_truth_scores(np.asarray(layer.data), np.asarray(marker_layer.data) > 0,
                             spacing_mm=tuple(marker_layer.scale[-2:]), tolerance_mm=POINTING_TOLERANCE_MM)
    return gt.relevance_mass, gt.pointing_hit


def test_gallery_and_metrics_say_which_maps_point_at_the_marker(qtbot, make_napari_viewer, tmp_path, monkeypatch):
    viewer = make_napari_viewer()
    gallery = GalleryWidget(viewer)  # docked before the sample: it picks the marker's mask up when it comes
    viewer.window.add_dock_widget(gallery, name="Gallery")
    assert gallery.shortcut.value is None
    viewer.open_sample("napari-ctinterp", "phantom_pair_marker")
    marker = viewer.layers[MARKER]
    assert gallery.shortcut.value is marker
    ew = ExplainWidget(viewer)
    ew.layer.value = viewer.layers[IMAGE]
    for m, box in ew.methods.items():
        box.value = m in ("BP", "IGB")
    for v, box in ew.variants.items():
        box.value = v == "plain"
    ew.steps.value, ew.xrai.value = 4, "off"
    _explain(qtbot, ew, "demo-shortcut")

    gallery.refresh()
    assert len(gallery.tiles) == 2 and gallery.state.marker is not None
    for t in gallery.tiles:
        mass, hit = _expected(t.layer, marker)
        assert t.marker.mass == mass and t.marker.hit == hit
        assert f"marker {100 * mass:.0f} % {'✓' if hit == 1 else '✗'}" in t.title
    hits = sum(t.points_at_marker for t in gallery.tiles)
    assert f"{hits} of 2 maps point at the known shortcut" in gallery.status.value

    metrics = MetricsPanel(viewer)
    viewer.window.add_dock_widget(metrics, name="Metrics")
    assert metrics.shortcut.value is marker  # chosen by itself: the sample's marker mask
    metrics.mask.value = viewer.layers[MASK]
    metrics.with_fidelity.value = False
    metrics.compute()
    qtbot.waitUntil(lambda: metrics.compute_button.enabled, timeout=60_000)
    assert [h for h, _ in metrics.table.columns][-1] == "marker"
    by_name = {ly.name: ly for ly in viewer.layers if map_info(ly) is not None}
    for s, ly in zip(metrics.scores, metrics._layers):
        assert (s.gt_relevance_mass, s.gt_pointing_hit) == _expected(by_name[ly.name], marker)
    top = metrics.table.item(0, len(metrics.table.columns) - 1)  # sorted: the map most on the marker first
    best = max(metrics.scores, key=lambda s: s.gt_relevance_mass)
    assert top.text() == f"{100 * best.gt_relevance_mass:.0f} % {'✓' if best.gt_pointing_hit == 1 else '✗'}"
    assert "point at the known shortcut" in metrics.status.value
    assert "▼" in metrics.table.horizontalHeaderItem(len(metrics.table.columns) - 1).text()  # the order said
    before = metrics.scores
    marker.paint((10, 10), new_label=1)  # painting the known shortcut re-scores, as painting the mask does
    qtbot.waitUntil(lambda: metrics.scores is not before and metrics.compute_button.enabled, timeout=60_000)
    assert "▼" in metrics.table.horizontalHeaderItem(len(metrics.table.columns) - 1).text()  # said again
    metrics.export(tmp_path / "scores.csv")
    with open(tmp_path / "scores.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {float(r["gt_relevance_mass"]) for r in rows} == {s.gt_relevance_mass for s in metrics.scores}

    # no known shortcut: the column and the tiles' marker scores go
    metrics.shortcut.value = None
    qtbot.waitUntil(lambda: metrics.compute_button.enabled and "marker" not in
                    [h for h, _ in metrics.table.columns], timeout=60_000)
    assert all(np.isnan(s.gt_relevance_mass) for s in metrics.scores)
    gallery.shortcut.value = None
    gallery.refresh()
    assert all(t.marker is None for t in gallery.tiles) and "known shortcut" not in gallery.status.value

    # a second model on the same slice: its maps and the kept ones of the first never share a row
    _explain(qtbot, ew, "demo")
    gallery.refresh()
    assert len(gallery.tiles) == 4
    assert len({(t.row, t.col) for t in gallery.tiles}) == 4
    assert {t.name for t in gallery.tiles} == {f"{m} · plain · {model}" for m in ("BP", "IGB")
                                               for model in ("demo", "demo-shortcut")}
    import napari_ctinterp.model as model_pkg

    loaded, real_load = [], model_pkg.load
    monkeypatch.setattr(model_pkg, "load", lambda source, *a, **k: loaded.append(source) or real_load(source, *a, **k))
    metrics.with_fidelity.value = True
    metrics.scorer.step = 25.0  # coarse fidelity curves: which model ran is the question here
    metrics.compute()
    qtbot.waitUntil(lambda: metrics.compute_button.enabled, timeout=120_000)
    assert sorted(s.method for s in metrics.scores) == ["BP · demo", "BP · demo-shortcut", "IGB · demo",
                                                        "IGB · demo-shortcut"]
    assert set(loaded) == {"demo", "demo-shortcut"}  # each map's fidelity runs the model that made it
    assert all(np.isfinite(s.fidelity_continuous) for s in metrics.scores)


def test_gallery_rows_keep_the_methods_order_with_a_models_or_a_class_rows():
    from napari_ctinterp._widgets.gallery_figure import grid

    keys = [(r, "plain", "pixel") for r in ("D · demo", "BP · demo-shortcut", "IGB · →venous", "BP · demo", "IGB",
                                            "EG · demo")]
    rows, _ = grid(keys)
    assert rows == ["BP · demo", "BP · demo-shortcut", "IGB", "IGB · →venous", "EG · demo", "D · demo"]


def test_two_models_of_one_file_name_keep_their_rows_apart():
    from napari_ctinterp._widgets.layer_info import MapLayerInfo
    from napari_ctinterp._widgets.maps import model_rows

    def info(model):
        return MapLayerInfo.from_metadata({"image": "ct", "method": "BP", "variant": "plain", "kind": "pixel",
                                           "model": model})

    assert model_rows([info("demo"), info("demo")]) == ["BP", "BP"]  # one model: the rows as before
    assert model_rows([info("/a/net.pt"), info("demo")]) == ["BP · net", "BP · demo"]
    assert model_rows([info("/a/net.pt"), info("/b/net.pt")]) == ["BP · /a/net.pt", "BP · /b/net.pt"]
