"""Classify widget in a real viewer: the sample pair, a volume, and errors as notifications."""

from __future__ import annotations

import numpy as np
import pytest

from napari_ctinterp._widgets.classify import METADATA_KEY, ClassifyWidget


@pytest.fixture()
def viewer_and_widget(docked):
    return docked(ClassifyWidget, "Classify")


def _run(qtbot, widget):
    widget.classify()
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=120_000)


def test_classifies_the_sample_pair_and_shows_probability(qtbot, viewer_and_widget):
    viewer, widget = viewer_and_widget
    assert [ly.name for ly in widget.layer.choices] == ["phantom · no contrast", "phantom · arterial"]
    for name, expected in (("phantom · arterial", "contrast"), ("phantom · no contrast", "no contrast")):
        widget.layer.value = viewer.layers[name]
        _run(qtbot, widget)
        assert widget.result.value.startswith("P(contrast) = ")
        assert widget.result.value.endswith(f"→ {expected}"), widget.result.value
        stored = viewer.layers[name].metadata[METADATA_KEY]["—"]
        assert stored["class"] == expected and stored["model"] == "demo"


def test_classifies_every_slice_of_a_volume(qtbot, viewer_and_widget):
    viewer, widget = viewer_and_widget
    vol = np.stack([viewer.layers["phantom · no contrast"].data, viewer.layers["phantom · arterial"].data] * 2)
    layer = viewer.add_image(vol, name="stack")
    widget.layer.value = layer
    widget.scope.value = "all slices"
    _run(qtbot, widget)
    assert widget.result.value == "2 of 4 slices: contrast"
    assert widget.table.data.to_list()[1][2] == "contrast"
    assert layer.metadata[METADATA_KEY]["0"]["class"] == "no contrast"
    widget.scope.value = "current slice"
    viewer.dims.set_current_step(0, 3)
    _run(qtbot, widget)
    assert "(slice 3)" in widget.result.value and "→ contrast" in widget.result.value


def test_bad_checkpoint_is_a_message_not_a_crash(qtbot, viewer_and_widget, tmp_path):
    viewer, widget = viewer_and_widget
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"garbage")
    widget.model.value = "file…"
    assert widget.model_info.value.startswith("choose a checkpoint file")
    widget.path.value = bad
    assert widget.model_info.value == ("card: no model card beside broken.safetensors: write broken.json "
                                       "(see docs/model.md)")
    _run(qtbot, widget)
    assert widget.result.value.startswith("error:") and "model card" in widget.result.value
    widget.path.value = tmp_path / "missing.pt"
    widget.classify()
    assert widget.run_button.enabled  # refused before any work started


def test_a_four_class_three_window_model_shows_every_class(qtbot, viewer_and_widget, tmp_path):
    import torch

    from napari_ctinterp.model import ModelCard, build
    from napari_ctinterp.model.checkpoints import save_checkpoint

    phases = ("no contrast", "arterial", "pulmonary", "venous")
    card = ModelCard(architecture="densenet121", input_size=(64, 64), output="softmax", class_names=phases,
                     channels=({"window": [-1000, 400]}, {"window": [-160, 240]}, {"window": [-500, 1300]}),
                     normalize={"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}, name="phase test")
    torch.manual_seed(0)
    path, _ = save_checkpoint(build("densenet121", "softmax", in_channels=3, n_logits=4), tmp_path / "p.safetensors",
                              card)
    viewer, widget = viewer_and_widget
    widget.layer.value = viewer.layers["phantom · arterial"]
    widget.model.value = "file…"
    widget.path.value = path
    _run(qtbot, widget)
    text = widget.result.value
    assert text.startswith("→ ") and all(f"{n} 0." in text for n in phases), text
    rows = widget.table.data.to_list()
    assert widget.table.column_headers == ("class", "P", "predicted")  # one slice: a row per class
    assert [r[0] for r in rows] == list(phases) and abs(sum(float(r[1]) for r in rows) - 1) < 1e-3
    assert [r[2] for r in rows].count("◀") == 1
    meta = viewer.layers["phantom · arterial"].metadata["ctinterp_classification"]["—"]
    assert meta["class_names"] == list(phases) and len(meta["p"]) == 4


def test_an_out_of_domain_slice_gets_a_warning_next_to_the_answer(qtbot, viewer_and_widget):
    from napari_ctinterp._sample_data import ct_small

    viewer, widget = viewer_and_widget
    widget.layer.value = viewer.layers["phantom · arterial"]
    _run(qtbot, widget)
    assert not widget.domain.native.isHidden() and widget.domain.value.startswith("in the model's domain")
    data, kwargs, _ = ct_small()[0]
    widget.layer.value = viewer.add_image(data, **kwargs)
    _run(qtbot, widget)
    assert widget.domain.value.startswith("⚠ Out of domain — this slice"), widget.domain.value
    assert "may not mean anything" in widget.domain.value and not widget.domain.native.isHidden()
    stored = viewer.layers[kwargs["name"]].metadata[METADATA_KEY]["—"]["domain"]
    assert stored["label"] == "out of domain" and stored["score"] > stored["threshold"]


@pytest.mark.parametrize("data, why", [
    (np.zeros((4, 15, 10, 10), np.uint32), "4-D array"),  # what imageio made of CT_small.dcm's folder
    (np.zeros((2, 64, 64), np.uint16), "uint16 pixel values"),
])
def test_a_layer_that_is_no_hu_ct_names_the_reader_to_use(qtbot, viewer_and_widget, data, why):
    viewer, widget = viewer_and_widget
    widget.layer.value = viewer.add_image(data, name="from another reader")
    widget.classify()
    assert widget.run_button.enabled  # refused at once, no worker started
    assert why in widget.result.value and 'plugin="napari-ctinterp"' in widget.result.value, widget.result.value


def test_a_3d_checkpoint_is_named_as_such_and_classifies_the_whole_volume(qtbot, viewer_and_widget, tmp_path):
    import torch

    from napari_ctinterp.model import ModelCard, build, load
    from napari_ctinterp.model.checkpoints import save_checkpoint

    viewer, widget = viewer_and_widget
    assert "demo-3d" in widget.model.choices  # the 3D demo is offered, named as a 3D model
    card = ModelCard(architecture="r3d_18", spatial_dims=3, input_size=(16, 24, 24), output="softmax",
                     class_names=("a", "b"), name="my 3D net")
    torch.manual_seed(0)
    path, _ = save_checkpoint(build("r3d_18", "softmax", spatial_dims=3), tmp_path / "m3.safetensors", card)
    widget.model.value = "file…"
    widget.path.value = path
    assert widget.model_info.value.startswith("my 3D net — a 3D model: it sees the whole volume")
    assert "needs a series of ≥ 8 slices" in widget.model_info.value
    widget.layer.value = viewer.layers["phantom · arterial"]  # one slice: refused, no answer on any slice
    widget.classify()
    assert widget.run_button.enabled and widget.result.value.startswith("error: my 3D net is a 3D model")
    stack = np.stack([viewer.layers["phantom · arterial"].data] * 10)
    layer = viewer.add_image(stack, name="ten slices", scale=(2.0, 1.0, 1.0))
    widget.layer.value = layer
    _run(qtbot, widget)
    p = load(str(path)).predict_proba(stack, spacing_mm=(2.0, 1.0, 1.0))
    assert widget.result.value.startswith("P(b) = ") and "(whole volume, 10 slices)" in widget.result.value
    assert layer.metadata[METADATA_KEY]["volume"]["p"] == pytest.approx(p, abs=1e-4)
