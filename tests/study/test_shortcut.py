"""The shortcut benchmark's parts: a marker study scores every map against the planted marker,
the truth score is the paired difference of two models' scores, and the slices keep their keys."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_ctinterp.metrics import ground_truth_scores
from napari_ctinterp.study import StudyConfig, run_study
from napari_ctinterp.study.data import demo_slices, marker_of
from napari_ctinterp.study.shortcut import correlations, shortcut_table
from napari_ctinterp.study.store import _ref_record


def test_marker_slices_carry_every_kind_and_old_records_keep_their_key():
    refs = demo_slices(6, marker=True)
    assert [r.marker for r in refs] == ["letter", "letter", "tube", "tube", "text", "text"]
    assert {r.label for r in refs[:2]} == {0, 1}  # every kind meets both classes
    assert refs[0].slice_id.endswith("-letter") and marker_of(refs[0])[0].any()
    plain = demo_slices(1)[0]
    assert "marker" not in _ref_record(plain) and marker_of(plain) is None  # results stored before: still found


def test_a_marker_study_scores_every_map_against_the_marker(tmp_path):
    cfg = StudyConfig(data="demo-marker", model="demo", slices=2, methods=("BP", "IGB"), variants=("plain",),
                      steps=4, xrai="fast", fidelity_step=50.0)
    run_dir = run_study(cfg, tmp_path, device="cpu")
    table = pd.read_csv(run_dir / "table.csv")
    ok = table[table["error"].isna()]
    assert len(ok) and ok["gt_relevance_mass"].notna().all() and ok["gt_pointing_hit"].isin([0, 1]).all()
    assert set(ok["map_type"]) == {"pixel", "region"}
    ex = dict(np.load(run_dir / "example_maps.npz"))
    first = ok[(ok["slice_id"] == str(ex["slice_id"])) & (ok["method"] == "BP") & (ok["map_type"] == "pixel")
               & (ok["sign"] == "absolute")].iloc[0]
    want = ground_truth_scores(ex["BP plain"].astype(np.float32), ex["marker"] > 0)
    assert first["gt_relevance_mass"] == pytest.approx(want.relevance_mass, rel=2e-3)  # the example is float16
    assert first["gt_marker_auc"] == pytest.approx(want.marker_auc, abs=2e-3)


def test_the_truth_score_table_pairs_the_slices_and_subtracts():
    def table(mass: dict) -> pd.DataFrame:
        rows = [{"slice_id": f"s{i}", "method": m, "variant": "plain", "map_type": "pixel", "sign": "absolute",
                 "error": None, "auc": 0.7, "gt_relevance_mass": v + 0.01 * i, "gt_relevance_rank": v,
                 "gt_marker_auc": 0.5 + v / 2, "gt_pointing_hit": float(v > 0.5)}
                for i in range(8) for m, v in mass.items()]
        return pd.DataFrame(rows)

    fid = pd.DataFrame({"method": ["BP", "IGB", "D"], "variant": "plain", "map_type": "pixel", "sign": "absolute",
                        "F": [0.6, 0.2, 0.4]})
    t = shortcut_table(table({"BP": 0.9, "IGB": 0.3, "D": 0.5}), table({"BP": 0.1, "IGB": 0.3, "D": 0.2}), fid)
    by = t.set_index("method")
    assert by.loc["BP", "truth_relevance_mass"] == pytest.approx(0.8)
    assert by.loc["IGB", "truth_relevance_mass"] == pytest.approx(0.0)  # bright for both models: no truth
    assert by.loc["BP", "truth_pointing_hit"] == 1.0 and by.loc["BP", "n"] == 8
    assert by.loc["BP", "F_shortcut"] == 0.6
    assert correlations(t)["truth_vs_F_shortcut"]["rho"] == pytest.approx(1.0)
