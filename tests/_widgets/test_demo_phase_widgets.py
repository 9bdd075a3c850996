"""The contrast-phase demo in the widgets: chosen in one, seen by all, its card shown, every class's
probability in Classify, the four classes in Explain's chooser and maps made with it."""

from __future__ import annotations

from napari_ctinterp._widgets.classify import METADATA_KEY, ClassifyWidget
from napari_ctinterp._widgets.explain import ExplainWidget
from napari_ctinterp._widgets.probe import ProbeWidget

CLASSES = ("no contrast", "arterial", "pulmonary", "venous")


def test_demo_phase_is_chosen_once_and_used_by_classify_explain_and_probe(qtbot, docked):
    viewer, classify = docked(ClassifyWidget, "Classify")
    explain, probe = ExplainWidget(viewer), ProbeWidget(viewer)
    viewer.window.add_dock_widget(explain, name="Explain")
    viewer.window.add_dock_widget(probe, name="Probe")
    assert classify.model.choices == ("demo", "demo-phase", "demo-3d", "demo-shortcut", "file…")
    assert "classes: no contrast, contrast" in classify.model_info.value
    classify.model.value = "demo-phase"
    for w in (explain, probe):
        assert w.model.value == "demo-phase" and w.picker.source() == "demo-phase"
        assert w.model_info.value == ("demo-phase densenet121 (phantom) · densenet121, 3 channels · classes: "
                                      "no contrast, arterial, pulmonary, venous")
    assert explain.target.choices == ("predicted", *CLASSES)

    classify.layer.value = viewer.layers["phantom · arterial"]
    classify.classify()
    qtbot.waitUntil(lambda: classify.run_button.enabled, timeout=120_000)
    assert classify.result.value.startswith("→ arterial; P: no contrast "), classify.result.value
    assert list(classify.table.column_headers) == ["class", "P", "predicted"]  # one slice: a row per class
    rows = classify.table.data.to_list()
    assert [r[0] for r in rows] == list(CLASSES) and rows[1][2] == "◀" and float(rows[1][1]) > 0.5
    stored = viewer.layers["phantom · arterial"].metadata[METADATA_KEY]["—"]
    assert stored["model"] == "demo-phase" and stored["class"] == "arterial" and abs(sum(stored["p"]) - 1) < 1e-3

    explain.layer.value = viewer.layers["phantom · arterial"]
    for m, box in explain.methods.items():
        box.value = m in ("BP", "IGB", "EG")
    explain.variants["SG"].value = explain.variants["SG2"].value = False
    explain.xrai.value = "off"
    for target in ("predicted", "venous"):
        explain.target.value = target
        explain.run()
        qtbot.waitUntil(lambda: explain.run_button.enabled, timeout=300_000)
    # the maps of the class asked for are the ones shown and named in "show map", not the predicted class's
    assert explain.shown.value == "BP · plain · →venous"
    shown = [ly.name for ly in viewer.layers if ly.visible and "ctinterp_map" in ly.metadata]
    assert shown == ["BP · plain · →venous — phantom · arterial"]
    assert "BP · plain — phantom · arterial" in explain.shown.choices or "BP · plain" in explain.shown.choices
    explain.shown.value = "BP · plain"  # the predicted class's map, one click away
    shown = [ly.name for ly in viewer.layers if ly.visible and "ctinterp_map" in ly.metadata]
    assert shown == ["BP · plain — phantom · arterial"]
    for m in ("BP", "IGB", "EG"):
        name = f"{m} · plain · →venous — phantom · arterial"
        assert name in viewer.layers, [ly.name for ly in viewer.layers]
        info = viewer.layers[name].metadata["ctinterp_map"]
        assert info["model"] == "demo-phase" and info["target_name"] == "venous" and info["predicted"] == 1
    assert viewer.layers["EG · plain · →venous — phantom · arterial"].metadata["ctinterp_map"]["references"]
