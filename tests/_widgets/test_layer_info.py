"""The map layers' record: one typed record, stored as the plain dict it always was (plus a version)."""

from __future__ import annotations

import numpy as np

from napari_ctinterp._widgets.layer_info import KEY, VERSION, MapLayerInfo, slice_of


def test_a_run_record_round_trips_through_the_layer_dict():
    params = {"steps": 32, "seed": 0, "target": 1, "target_name": "contrast", "model": "demo", "references": "demo"}
    info = MapLayerInfo.of_run("IGB", "SG2", image="ct", params=params, slices=[3], targets=[1], absolute=True)
    meta = info.layer_metadata(signed=np.zeros((1, 4, 4)))
    stored = meta[KEY]
    assert stored["method"] == "IGB" and stored["slices"] == [3] and stored["version"] == VERSION
    assert stored["steps"] == 32 and stored["references"] == "demo" and stored["absolute"] is True
    assert MapLayerInfo.from_metadata(stored) == info
    assert info.with_map("IGB", "SG2", "region").kind == "region"


def test_a_dict_written_before_the_version_is_read_with_defaults():
    old = {"method": "BP", "variant": "plain", "kind": "pixel", "image": "ct", "slices": [], "tag": "venous",
           "gc_layer": "layer3"}
    info = MapLayerInfo.from_metadata(old)
    assert info.version == 1 and info.model == "demo" and info.target_of(None) == 1
    assert info.row_method == "BP · →venous" and info.get("gc_layer") == "layer3" and info.get("image") == "ct"


def test_slice_of_reads_one_slice_or_says_the_layer_has_none():
    stack = np.arange(3 * 2 * 2, dtype=np.float32).reshape(3, 2, 2)
    full = {"method": "BP", "variant": "plain", "slices": [0, 2], "full_z": True}
    assert np.array_equal(slice_of(stack, full, 2), stack[2])
    assert slice_of(stack, full, 1) is None
    assert np.array_equal(slice_of(stack[:1], {"method": "BP", "variant": "plain", "slices": [5]}, 5), stack[0])
    assert slice_of(stack[:1], {"method": "BP", "variant": "plain", "slices": [5]}, 4) is None
    assert np.array_equal(slice_of(stack, {"method": "BP", "variant": "plain"}, 1), stack[1])
    assert slice_of(stack, {"method": "BP", "variant": "plain"}, None) is None
    assert np.array_equal(slice_of(stack[0], {"method": "BP", "variant": "plain"}, 7), stack[0])


def test_a_score_note_round_trips_through_the_layer_metadata():
    from types import SimpleNamespace

    from napari_ctinterp._widgets.layer_info import SCORES_KEY, ScoreNote

    layer = SimpleNamespace(metadata={"ctinterp_map": {"method": "BP"}})
    assert ScoreNote.from_layer(layer) is None
    note = ScoreNote(slice=3, mask="mask", auc=0.9, max_dice=0.5, F=0.25, mask_note="mask labels 2, 5")
    note.write(layer)
    assert layer.metadata["ctinterp_map"] == {"method": "BP"}  # the map's record is kept
    assert layer.metadata[SCORES_KEY]["F"] == 0.25 and ScoreNote.from_layer(layer) == note
