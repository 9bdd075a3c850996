"""Gallery widget in a real viewer: one scored tile per map, click shows the map, figure export."""

from __future__ import annotations

import re

import numpy as np
import pytest
from matplotlib.backend_bases import MouseEvent

from napari_ctinterp._widgets.explain import ExplainWidget
from napari_ctinterp._widgets.gallery import GalleryWidget
from napari_ctinterp._widgets.maps import map_info


def test_gallery_tiles_click_save_and_empty(qtbot, docked, tmp_path):
    viewer, gallery = docked(GalleryWidget, "Gallery")  # docked first: it must pick the maps up as they come
    ew = ExplainWidget(viewer)
    ew.layer.value = viewer.layers["phantom · arterial"]
    for m, box in ew.methods.items():
        box.value = m in ("BP", "IGB")
    ew.steps.value, ew.samples.value, ew.sg_samples.value, ew.xrai.value = 4, 4, 2, "fast"
    ew.run()
    qtbot.waitUntil(lambda: ew.run_button.enabled, timeout=300_000)
    assert gallery.image.value is viewer.layers["phantom · arterial"]  # followed the Explain run

    gallery.refresh()
    names = {f"{m} · {v}{x}" for m in ("BP", "IGB") for v in ("plain", "SG", "SG2") for x in ("", " · XRAI")}
    assert {t.name for t in gallery.tiles} == names and len(gallery.tiles) == 12, gallery.status.value
    for t in gallery.tiles:
        title = t.title
        assert title.startswith(t.name + "\n"), title
        # drawn as is, only broken at " · " to fit the tile's width
        assert t.ax is gallery.figure.axes[0] and t.text.get_text().replace("\n", " · ") == title.replace("\n", " · ")
        auc = float(re.search(r"AUC (\d\.\d+)", title).group(1))
        assert 0.0 <= auc <= 1.0 and "Dice" in title
    assert [t.row for t in gallery.tiles if t.col == 0] == [0, 1]  # rows: BP then IGB

    for name in ("IGB · SG2 · XRAI", "BP · SG"):  # a real mouse click on the tile's image, then the API
        target = next(t for t in gallery.tiles if t.name == name)
        if name.endswith("XRAI"):
            x, y = target.ax.transData.transform(((target.bbox[0] + target.bbox[2]) / 2, target.bbox[3] - 0.05))
            MouseEvent("button_press_event", gallery.canvas, x, y, button=1)._process()
        else:
            gallery.click_tile(target.layer.name)
        visible = [ly for ly in viewer.layers if map_info(ly) is not None and ly.visible]
        assert visible == [target.layer]
        assert [t.name for t in gallery.tiles if t.frame.get_visible()] == [name]

    for suffix in ("png", "svg"):
        out = gallery.save(tmp_path / f"gallery.{suffix}")
        assert out.is_file() and out.stat().st_size > 1000

    gallery.image.value = viewer.layers["phantom · no contrast"]
    gallery.refresh()
    assert gallery.tiles == [] and not gallery.figure.axes
    assert "run Explain" in gallery.status.value
    qtbot.waitUntil(lambda: gallery.worker is None, timeout=30_000)  # no scoring thread left behind


def test_volume_follows_slice_paint_and_marks_uncovered_tiles(qtbot, make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((3, 32, 32), np.float32), name="vol")
    mask = np.zeros((3, 32, 32), np.uint8)
    mask[:, 10:20, 10:20] = 1
    labels = viewer.add_labels(mask, name="mask")
    gallery = GalleryWidget(viewer)
    viewer.window.add_dock_widget(gallery, name="Gallery")
    perfect = np.where(mask[0] > 0, 1.0, 0.0).astype(np.float32) + np.linspace(0, 0.1, 32 * 32).reshape(32, 32)
    for variant, data, slices in (("plain", perfect[None], [1]), ("SG", np.stack([perfect] * 3), [0, 1, 2])):
        info = {"method": "BP", "variant": variant, "kind": "pixel", "image": "vol", "slices": slices}
        viewer.add_image(data, name=f"BP · {variant}", translate=(slices[0] if len(slices) == 1 else 0, 0, 0),
                         metadata={"ctinterp_map": info, "ctinterp_scores": {"slice": 1, "F": 0.25}})
    viewer.dims.set_current_step(0, 1)
    qtbot.waitUntil(lambda: gallery.state.index == 1 and len(gallery.tiles) == 2
                    and all(t.auc is not None for t in gallery.tiles), timeout=20_000)  # debounced + worker
    assert [t.auc for t in gallery.tiles] == [1.0, 1.0]
    assert all("F 0.25" in t.text.get_text() for t in gallery.tiles)  # fidelity of this slice is shown

    viewer.dims.set_current_step(0, 0)
    qtbot.waitUntil(lambda: gallery.state.index == 0 and gallery.worker is None, timeout=20_000)
    gallery.refresh()
    one, whole = gallery.tiles
    assert one.values is None and whole.auc == 1.0 and "F 0.25" not in whole.text.get_text()
    labels.paint((0, 2, 2), 1)  # a painted pixel outside the map's hot square lowers the AUC
    qtbot.waitUntil(lambda: gallery.worker is None and gallery.tiles[1].auc is not None
                    and gallery.tiles[1].auc < 1.0, timeout=20_000)
    # the titles' two scores are a choice: AUPRC and IoU at Otsu's level instead of AUC and Dice
    from napari_ctinterp.metrics import auprc, iou_otsu

    gallery.first_score.value, gallery.second_score.value = "auprc", "iou_otsu"
    qtbot.waitUntil(lambda: gallery.worker is None and "AUPRC" in gallery.tiles[1].text.get_text(), timeout=20_000)
    whole = gallery.tiles[1]
    text = whole.text.get_text()
    assert "IoU" in text and "AUC" not in text and "Dice" not in text
    assert whole.extra["auprc"] == pytest.approx(auprc(whole.values, gallery.state.mask))
    assert whole.extra["iou_otsu"] == pytest.approx(iou_otsu(whole.values, gallery.state.mask))
    assert f"AUPRC {whole.extra['auprc']:.2f}" in text


def test_a_3d_maps_tiles_show_the_slice_or_its_axial_mip(qtbot, make_napari_viewer):
    from maps_3d import add_maps, open_volume

    from napari_ctinterp import explain
    from napari_ctinterp.model import load

    viewer = make_napari_viewer()
    gallery = GalleryWidget(viewer)  # docked first
    viewer.window.add_dock_widget(gallery, name="Gallery")
    assert gallery.tiles_show.native.isHidden()  # nothing open: no volume to project
    ct, v = open_volume(viewer)
    maps = explain.explain(load("demo-3d"), v.hu, methods=("BP", "GC"), variants=("plain",), spacing_mm=v.spacing_mm)
    layers = add_maps(viewer, ct, maps)
    viewer.dims.set_current_step(0, 7)
    gallery.mask.value = viewer.layers["volume mask"]
    gallery.refresh()
    assert not gallery.tiles_show.native.isHidden() and not gallery.view_3d.row.native.isHidden()
    titles = [t.text.get_text() for t in gallery.tiles]
    for t, ly in zip(gallery.tiles, layers):
        assert t.picture is None and np.array_equal(t.values, ly.data[7]) and t.auc is not None

    gallery.tiles_show.value = "MIP"
    gallery.refresh()
    assert gallery.state.projection and "axial MIP" in gallery.status.value
    for t, ly in zip(gallery.tiles, layers):
        mip = np.abs(np.asarray(ly.data)).max(axis=0)
        assert np.allclose(t.picture, mip) and not np.allclose(t.picture, ly.data[7])
        assert t.shown is t.picture and np.array_equal(t.values, ly.data[7])  # the scores stay the slice's
    assert [t.text.get_text() for t in gallery.tiles] == titles  # titles unchanged
    assert np.array_equal(gallery.state.outline, np.asarray(viewer.layers["volume mask"].data).any(axis=0))
    out = gallery.save(gallery.save_path.value.parent / "never.txt")  # a bad suffix is a message
    assert out.suffix == ".txt" and not out.exists()

    gallery.tiles_show.value = "slice"
    gallery.refresh()
    assert all(t.picture is None for t in gallery.tiles)
    qtbot.waitUntil(lambda: gallery.worker is None, timeout=20_000)
