"""Explain widget in a real viewer: the 15 map layers for the sample slice, the plain maps first;
cancel keeps only finished maps."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from napari_ctinterp._widgets.explain import ExplainWidget


@pytest.fixture()
def viewer_and_widget(docked):
    viewer, widget = docked(ExplainWidget, "Explain")
    widget.layer.value = viewer.layers["phantom · arterial"]
    return viewer, widget


def test_sample_slice_gives_the_15_layers_and_rerun_updates_them(qtbot, viewer_and_widget):
    viewer, widget = viewer_and_widget
    # the paper's settings by default; small ones for the run (the maps' count and layout are the test)
    assert (widget.steps.value, widget.samples.value, widget.sg_samples.value) == (25, 50, 15)
    widget.steps.value, widget.samples.value, widget.sg_samples.value = 4, 4, 3
    widget.run()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=600_000)
    names = [ly.name for ly in viewer.layers if ly.metadata.get("ctinterp_map", {}).get("kind") == "pixel"]
    assert len([ly for ly in viewer.layers if "ctinterp_map" in ly.metadata]) == 30  # + XRAI (default on)
    expected = [f"{m} · {v} — phantom · arterial" for m in ("BP", "IGB", "IGBW", "EG", "D")
                for v in ("plain", "SG", "SG2")]
    assert names == expected, widget.status.value
    ct = viewer.layers["phantom · arterial"]
    for name in expected:
        layer = viewer.layers[name]
        assert layer.data.shape == ct.data.shape and np.allclose(layer.scale, ct.scale)
        assert np.array_equal(layer.data, np.abs(layer.metadata["signed"]))
        info = layer.metadata["ctinterp_map"]
        assert info["steps"] == 4 and info["sg_samples"] == 3 and info["target_name"] == "contrast"
        assert layer.colormap.name == "ctinterp heat"
    # One map over the CT: the CT, the mask and IGB · SG2 are the only visible layers.
    assert [ly.name for ly in viewer.layers if ly.visible] == ["phantom · arterial", "phantom · reference mask",
                                                             "IGB · SG2 — phantom · arterial"]
    assert viewer.layers["IGB · SG2 — phantom · arterial"].colorbar.visible
    widget.shown.value = "EG · plain"
    assert [ly.name for ly in viewer.layers if ly.visible][-1] == "EG · plain — phantom · arterial"
    assert sum(ly.visible for ly in viewer.layers if "ctinterp_map" in ly.metadata) == 1
    # Re-running only BP updates the existing layer instead of adding a copy.
    before = viewer.layers[expected[0]].data.copy()
    for m, box in widget.methods.items():
        box.value = m == "BP"
    widget.seed.value = 1
    widget.run()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=120_000)
    assert len([ly for ly in viewer.layers if "ctinterp_map" in ly.metadata]) == 30
    assert np.array_equal(viewer.layers[expected[0]].data, before)  # plain BP has no randomness
    assert not np.array_equal(viewer.layers[expected[1]].data, viewer.layers[expected[1]].metadata["signed"] * 0)


def test_cancel_leaves_no_half_made_layer(qtbot, viewer_and_widget):
    viewer, widget = viewer_and_widget
    for m, box in widget.methods.items():
        box.value = m in ("IGB", "IGBW")
    widget.steps.value = 200
    widget.batch.value = 4
    n_layers = len(viewer.layers)
    widget.run()
    qtbot.waitUntil(lambda: widget.worker is not None and widget.status.value.startswith("explaining"), timeout=10_000)
    qtbot.wait(1500)
    widget.cancel()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=60_000)
    assert widget.status.value.startswith("cancelled")
    assert len(viewer.layers) == n_layers
    # the engine's gradient threads stopped with the job, in the worker's thread
    qtbot.waitUntil(lambda: not any(t.name.startswith("ctinterp-grad") for t in threading.enumerate()),
                    timeout=10_000)


def test_nothing_ticked_is_refused(viewer_and_widget):
    viewer, widget = viewer_and_widget
    for box in widget.variants.values():
        box.value = False
    widget.run()
    assert widget.worker is None and widget.run_button.enabled


def test_xrai_option_adds_region_layers_and_top_k_slider(qtbot, viewer_and_widget):
    viewer, widget = viewer_and_widget
    for m, box in widget.methods.items():
        box.value = m == "BP"
    for v, box in widget.variants.items():
        box.value = v in ("plain", "SG2")
    widget.sg_samples.value = 3
    widget.run()  # XRAI "full" is the default
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=300_000)
    ct = viewer.layers["phantom · arterial"]
    assert widget.xrai.value == "full"
    region_layer = viewer.layers["BP · SG2 · XRAI — phantom · arterial"]
    assert region_layer.data.shape == ct.data.shape
    assert region_layer.metadata["ctinterp_map"]["kind"] == "region"
    labels = viewer.layers["XRAI regions — phantom · arterial"]
    assert not labels.visible  # hidden until asked for
    assert sum(ly.visible for ly in viewer.layers) == 3  # CT, mask, one map
    widget.regions_of.value = "BP · SG2 · XRAI — phantom · arterial"
    assert labels.visible
    assert labels.metadata["ctinterp_regions"]["source"].startswith("BP · SG2 · XRAI")
    ranks = labels.metadata["all_ranks"]
    assert ranks.min() == 1 and np.array_equal(labels.data, ranks)  # 100 %: every region shown
    # Region values are constant over each ranked region.
    for r in range(1, 4):
        assert np.unique(region_layer.data[ranks == r]).size == 1
    widget.top_percent.value = 10.0
    shown = labels.data > 0
    assert 0 < shown.mean() <= 0.10 + 1e-9 or labels.data.max() == 1
    assert labels.data.max() < ranks.max()
    widget.regions_of.value = "BP · plain · XRAI — phantom · arterial"
    assert labels.metadata["ctinterp_regions"]["source"].startswith("BP · plain · XRAI")
    assert not np.array_equal(labels.metadata["all_ranks"], ranks)


def test_own_model_uses_the_volume_as_eg_references_or_skips_eg_with_a_note(qtbot, viewer_and_widget, tmp_path):
    from napari_ctinterp.model import load, save_checkpoint

    viewer, widget = viewer_and_widget
    demo = load("demo")
    path, _card = save_checkpoint(demo.module, tmp_path / "mine.safetensors", demo.card)
    widget.model.value = "file…"
    widget.path.value = path
    for m, box in widget.methods.items():
        box.value = m in ("BP", "EG")
    for v, box in widget.variants.items():
        box.value = v == "plain"
    widget.samples.value = 4
    widget.xrai.value = "off"
    # A single slice: no references → EG is skipped with a visible note, BP is computed.
    widget.run()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=120_000)
    assert widget.status.value.startswith("EG skipped"), widget.status.value
    assert "BP · plain — phantom · arterial" in viewer.layers
    assert "EG · plain — phantom · arterial" not in viewer.layers
    # A volume of 10 slices: EG uses the 9 others of the explained slice.
    ct = viewer.layers["phantom · arterial"].data
    vol = viewer.add_image(np.stack([ct + 10 * k for k in range(10)]), name="volume")
    widget.layer.value = vol
    widget.run()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=120_000)
    eg = viewer.layers["EG · plain — volume"]
    assert eg.metadata["ctinterp_map"]["references"] == "9 given slices", widget.status.value
    assert eg.data.shape == (1, *ct.shape)


def test_a_model_chosen_in_one_widget_is_seen_by_the_others(viewer_and_widget, tmp_path):
    from napari_ctinterp._widgets.classify import ClassifyWidget

    viewer, widget = viewer_and_widget
    other = ClassifyWidget(viewer)
    viewer.window.add_dock_widget(other, name="Classify")
    ckpt = tmp_path / "mine.safetensors"
    ckpt.write_bytes(b"x")
    other.model.value = "file…"
    other.path.value = ckpt
    assert widget.model.value == "file…" and widget.picker.source() == str(ckpt)
    widget.model.value = "demo"
    assert other.model.value == "demo" and other.picker.source() == "demo"


def test_explaining_a_class_other_than_the_predicted_one_names_it(qtbot, viewer_and_widget):
    viewer, widget = viewer_and_widget
    assert widget.target.choices == ("predicted", "no contrast", "contrast")  # from the demo card
    for m, box in widget.methods.items():
        box.value = m == "BP"
    widget.variants["SG"].value = widget.variants["SG2"].value = False
    widget.xrai.value = "fast"
    widget.target.value = "no contrast"  # the arterial sample is predicted "contrast"
    widget.run()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=120_000)
    name = "BP · plain · →no contrast — phantom · arterial"
    assert name in viewer.layers and "BP · plain · XRAI · →no contrast — phantom · arterial" in viewer.layers
    info = viewer.layers[name].metadata["ctinterp_map"]
    assert info["target"] == 0 and info["target_name"] == "no contrast" and info["predicted"] == 1
    assert viewer.layers[name].visible
    widget.target.value = "contrast"  # the predicted class: names as usual
    widget.run()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=120_000)
    assert "BP · plain — phantom · arterial" in viewer.layers


def test_a_2_5d_model_is_explained_from_the_volume(qtbot, viewer_and_widget, tmp_path):
    import torch

    from napari_ctinterp.explain import explain
    from napari_ctinterp.model import ModelCard, build, load
    from napari_ctinterp.model.checkpoints import save_checkpoint

    w = [-1000, 1000]
    card = ModelCard(input_size=(64, 64), channels=({"window": w, "slice_offset": -1}, {"window": w},
                                                     {"window": w, "slice_offset": 1}))
    torch.manual_seed(0)
    path, _ = save_checkpoint(build("resnet18", in_channels=3), tmp_path / "m25.safetensors", card)
    viewer, widget = viewer_and_widget
    vol = np.random.default_rng(0).uniform(-1000, 1000, (5, 64, 64)).astype(np.float32)
    stack = viewer.add_image(vol, name="stack")
    viewer.dims.set_current_step(0, 3)
    widget.layer.value = stack
    widget.model.value = "file…"
    widget.path.value = path
    for m, box in widget.methods.items():
        box.value = m == "BP"
    widget.variants["SG"].value = widget.variants["SG2"].value = False
    widget.xrai.value = "off"
    widget.run()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=120_000)
    assert not widget.status.value.startswith("error"), widget.status.value
    got = viewer.layers["BP · plain — stack"].metadata["signed"][0]
    want = explain(load(path, device="cpu"), vol, index=3, methods=("BP",), variants=("plain",))["BP", "plain"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-8)
    # the Metrics panel scores it with the slice's neighbours (its fidelity and faithfulness: the volume's slice 3)
    from napari_ctinterp._widgets.metrics_panel import MetricsPanel
    from napari_ctinterp.metrics import faithfulness_correlation, fidelity

    mask = np.zeros(vol.shape, np.uint8)
    mask[:, 20:40, 20:40] = 1
    viewer.add_labels(mask, name="roi")
    panel = MetricsPanel(viewer)
    panel.image.value, panel.mask.value = stack, viewer.layers["roi"]
    panel.scorer.step = 25.0
    panel.more.value = ["auprc", "faithfulness_correlation"]
    panel.compute()
    qtbot.waitUntil(lambda: panel.compute_button.enabled, timeout=120_000)
    (score,) = panel.scores
    clf = load(path, device="cpu")
    target = viewer.layers["BP · plain — stack"].metadata["ctinterp_map"]["target"]
    assert score.fidelity_continuous == pytest.approx(fidelity(clf, vol, np.abs(want)[None], np.array([target]),
                                                               bootstrap=1, step=25.0, index=[3]).F_continuous)
    assert score.faithfulness_correlation == pytest.approx(faithfulness_correlation(
        clf, vol, {"m": np.abs(want)[None]}, np.array([target]), index=[3])["m"][0])


def test_switching_the_model_hides_and_marks_the_previous_models_maps(qtbot, viewer_and_widget, tmp_path):
    from napari_ctinterp._widgets.layer_info import MapLayerInfo
    from napari_ctinterp._widgets.model_picker import selection

    viewer, widget = viewer_and_widget
    ct = viewer.layers["phantom · arterial"]
    info = MapLayerInfo.of_run("BP", "plain", image=ct.name, params={"model": "demo", "target": 1})
    old = viewer.add_image(np.abs(ct.data), name="BP · plain — phantom · arterial", metadata=info.layer_metadata())
    mine = tmp_path / "mine.safetensors"
    selection.set(str(mine))  # chosen here or in any other widget
    assert not old.visible and old.name.endswith("[demo]")
    assert "hidden: the model changed" in widget.status.value and "demo" in widget.status.value
    assert ct.visible  # the CT itself is not a map
    selection.set("demo")  # back: nothing of the new model to hide, the old maps stay as they are
    assert old.name.endswith("[demo]") and old.name.count("[demo]") == 1


def _watch_partials(monkeypatch, viewer, widget) -> list:
    """After each partial result the widget shows: (done, total, visible map layers, status, idle)."""
    early = []
    add_partial = type(widget)._add_partial

    def watch(self, *args) -> None:
        add_partial(self, *args)
        maps = [ly.name for ly in viewer.layers if "ctinterp_map" in ly.metadata and ly.visible]
        early.append((widget.progress._done, widget.progress._total, maps, widget.status.value,
                      widget.run_button.enabled))

    monkeypatch.setattr(type(widget), "_add_partial", watch)
    return early


def test_the_plain_maps_appear_while_their_smoothgrad_variants_are_computed(qtbot, viewer_and_widget, monkeypatch):
    from napari_ctinterp.explain import engine, explain
    from napari_ctinterp.model import load

    viewer, widget = viewer_and_widget
    for m, box in widget.methods.items():
        box.value = m in ("BP", "IGB")
    widget.variants["SG"].value = False  # plain and SG²
    widget.steps.value, widget.sg_samples.value = 8, 10
    widget.xrai.value = "off"
    early = _watch_partials(monkeypatch, viewer, widget)
    widget.run()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=300_000)
    assert len(early) == 2 and not any(e[4] for e in early), early  # the widget was busy at both
    assert early, "no map layer was visible while the job ran"
    # BP's one evaluation first, then IGB's plain map replaces it as the shown map, both while running
    done, total, visible, status, _ = early[0]
    assert done == 1 < total and visible == ["BP · plain — phantom · arterial"], early
    assert status == "1 plain map(s) shown (BP · plain); plain IGB and the SmoothGrad variants follow…", status
    done, total, visible, status, _ = early[1]
    assert done == 1 + 8 < total and visible == ["IGB · plain — phantom · arterial"], early
    assert status == "2 plain map(s) shown (IGB · plain); the SmoothGrad variants follow…", status
    names = [ly.name for ly in viewer.layers if "ctinterp_map" in ly.metadata]
    assert names == [f"{m} · {v} — phantom · arterial" for m in ("BP", "IGB") for v in ("plain", "SG2")]
    assert viewer.layers["IGB · SG2 — phantom · arterial"].visible  # the shown map was upgraded
    # the final maps equal those of a run without progressive display (one stage, the former order)
    monkeypatch.setattr(engine, "STAGED", False)
    ref = explain(load("demo"), viewer.layers["phantom · arterial"].data, methods=("BP", "IGB"),
                  variants=("plain", "SG2"), steps=8, sg_samples=10)
    for (m, v), signed in ref.items():
        np.testing.assert_array_equal(viewer.layers[f"{m} · {v} — phantom · arterial"].metadata["signed"], signed)


def test_cancel_after_the_plain_maps_keeps_them_and_says_so(qtbot, viewer_and_widget):
    viewer, widget = viewer_and_widget
    for m, box in widget.methods.items():
        box.value = m in ("BP", "D")
    widget.variants["SG"].value = False
    widget.sg_samples.value = 60  # long enough to cancel in between
    widget.xrai.value = "off"
    widget.run()
    qtbot.waitUntil(lambda: "plain map(s) shown" in widget.status.value, timeout=300_000)
    widget.cancel()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=300_000)
    assert widget.status.value == "cancelled: the 2 plain map layer(s) made so far are kept", widget.status.value
    names = [ly.name for ly in viewer.layers if "ctinterp_map" in ly.metadata]
    assert names == ["BP · plain — phantom · arterial", "D · plain — phantom · arterial"]


def test_the_run_is_estimated_before_it_starts_and_the_quick_preset_is_one_click(qtbot, viewer_and_widget,
                                                                                 tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_CTINTERP_CACHE", str(tmp_path))  # no earlier run of this model here
    viewer, widget = viewer_and_widget
    widget._update_estimate()
    full = widget.estimate.label.value
    assert full.startswith("≈ 1,647 gradients + regions for 1 slice") and "after the first run" in full, full
    widget.quick_button.changed.emit(True)
    assert [m for m, b in widget.methods.items() if b.value] == ["BP", "IGB", "IGBW", "EG", "D"]
    assert [v for v, b in widget.variants.items() if b.value] == ["plain"] and widget.xrai.value == "fast"
    quick = widget.estimate.label.value
    assert quick.startswith("≈ 107 gradients + regions for 1 slice"), quick  # 102 evaluations + 5 region maps
    widget.run()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=300_000)
    assert widget.status.value.startswith("5 map layer(s) + 5 XRAI"), widget.status.value
    measured = widget.estimate.label.value
    assert measured.startswith("≈ 107 gradients") and "here (" in measured and "measured" in measured, measured
    widget.variants["SG2"].value = True  # a bigger run (16 inputs × 102 + 10 regions), timed at the same pace
    bigger = widget.estimate.label.value
    assert bigger.startswith("≈ 1,642 gradients + regions for 1 slice") and "here (" in bigger, bigger


def test_several_slices_show_their_plain_maps_first_over_the_whole_ct(qtbot, viewer_and_widget, monkeypatch):
    from napari_ctinterp.explain import explain_volume
    from napari_ctinterp.model import load

    viewer, widget = viewer_and_widget
    vol = np.random.default_rng(0).uniform(-200, 300, (5, 64, 64)).astype(np.float32)
    stack = viewer.add_image(vol, name="stack")
    widget.layer.value = stack
    widget.scope.value = "slice range"
    widget.slice_range.value = "1:3"
    for m, box in widget.methods.items():
        box.value = m in ("BP", "IGB")
    widget.variants["SG"].value = False
    widget.steps.value, widget.sg_samples.value = 4, 2
    widget.xrai.value = "off"
    early = _watch_partials(monkeypatch, viewer, widget)
    widget.run()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=300_000)
    assert not widget.status.value.startswith("error"), widget.status.value
    # every slice's BP first (3 evaluations), then every slice's plain IGB (3 × 4), both while busy
    assert [(e[0], e[2]) for e in early] == [(3, ["BP · plain — stack"]), (15, ["IGB · plain — stack"])], early
    assert not any(e[4] for e in early) and early[0][1] == 3 * 5 * 3
    assert early[0][3].startswith("1 plain map(s) shown (BP · plain); plain IGB and the SmoothGrad"), early[0][3]
    bp = viewer.layers["BP · plain — stack"]
    assert bp.data.shape == vol.shape and bp.metadata["ctinterp_map"]["slices"] == [1, 2, 3]
    ref = explain_volume(load("demo"), vol, slices=[1, 2, 3], methods=("BP", "IGB"), variants=("plain", "SG2"),
                         steps=4, sg_samples=2, full=False)
    for (m, v), maps in ref.items():
        got = viewer.layers[f"{m} · {v} — stack"].metadata["signed"][1:4]
        np.testing.assert_array_equal(got, maps)
