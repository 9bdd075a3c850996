"""A slice's scores beyond the paper's: a model score that fails leaves its column empty and says
why; the slice's other scores stand."""

from __future__ import annotations

from napari_ctinterp.study.more_scores import add_model_scores


def test_a_failing_model_score_is_a_note_not_a_lost_slice():
    rows = [{"method": "BP", "variant": "plain", "map_type": m, "sign": "absolute", "auc": 0.8} for m in ("pixel",
                                                                                                       "region")]
    phases = []

    def too_small():
        raise ValueError("subset_size 224 is larger than the image's 100 pixels")

    note = add_model_scores(rows, ("faithfulness_correlation", "max_sensitivity"), faithfulness=too_small,
                            sensitivity=lambda: {("BP", "plain", "absolute"): 0.25}, phase=phases.append)
    assert note == "faithfulness correlation not computed: subset_size 224 is larger than the image's 100 pixels"
    assert [r["faithfulness_correlation"] for r in rows] == [None, None] and [r["auc"] for r in rows] == [0.8, 0.8]
    assert [r["max_sensitivity"] for r in rows] == [0.25, None]  # the pixel map's; a region map has none
    assert phases == ["faithfulness", "sensitivity"]
    assert add_model_scores(rows, (), faithfulness=too_small, sensitivity=None, phase=phases.append) == ""
