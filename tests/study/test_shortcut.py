"""The shortcut benchmark's parts: a marker study scores every map against the planted marker,
the truth score is the paired difference of two models' scores, and the slices keep their keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from napari_ctinterp.metrics import ground_truth_scores
from napari_ctinterp.study import StudyConfig, run_study
from napari_ctinterp.study.data import demo_slices, marker_of
from napari_ctinterp.study.shortcut import correlations, shortcut_table
from napari_ctinterp.study.store import _ref_record


def test_marker_slices_carry_every_kind_and_old_records_keep_their_key():
    refs = demo_slices(12, marker=True)
    assert [r.marker for r in refs] == ["", "", "letter", "letter", "", "", "tube", "tube", "", "", "text", "text"]
    assert [r.contrast for r in refs[:4]] == [0, 1, 0, 1] and [r.label for r in refs[:4]] == [0, 1, 0, 1]
    assert refs[2].slice_id.endswith("-letter") and marker_of(refs[2])[0].any() and marker_of(refs[0]) is None
    by_marker = demo_slices(4, marker=True, task="marker")  # the shortcut demo's labels: the marker
    assert [r.label for r in by_marker] == [0, 0, 1, 1] and [r.has_contrast for r in by_marker] == [0, 1, 0, 1]
    assert [r.seed for r in by_marker] == [r.seed for r in refs[:4]]  # the same slices for both models
    plain = demo_slices(1)[0]
    assert {"marker", "contrast"}.isdisjoint(_ref_record(plain)) and marker_of(plain) is None  # old results found


def test_a_marker_study_scores_every_map_against_the_marker(tmp_path):
    cfg = StudyConfig(data="demo-marker", model="demo", slices=4, methods=("BP", "IGB"), variants=("plain",),
                      steps=4, xrai="fast", fidelity_step=50.0, metrics=())
    run_dir = run_study(cfg, tmp_path, device="cpu")
    table = pd.read_csv(run_dir / "table.csv")
    ok = table[table["error"].isna()]
    has_marker = ok["slice_id"].str.endswith("-letter")
    marked = ok[has_marker]  # slices 3 and 4 carry a letter
    assert marked["slice_id"].nunique() == 2 and ok["slice_id"].nunique() == 4
    assert marked["gt_relevance_mass"].notna().all() and marked["gt_pointing_hit"].isin([0, 1]).all()
    assert ok[~has_marker]["gt_relevance_mass"].isna().all()  # no marker: no ground truth
    assert set(ok["map_type"]) == {"pixel", "region"}
    ref = demo_slices(4, marker=True)[2]  # a marked slice: its scores recomputed from its own maps
    from napari_ctinterp.explain import explain
    from napari_ctinterp.model import load
    from napari_ctinterp.study.data import load_slice

    hu, _ = load_slice(ref)
    bp = explain(load("demo"), hu, methods=("BP",), variants=("plain",))["BP", "plain"]
    row = marked[(marked["slice_id"] == ref.slice_id) & (marked["method"] == "BP") & (marked["map_type"] == "pixel")
                 & (marked["sign"] == "absolute")].iloc[0]
    want = ground_truth_scores(bp, marker_of(ref)[0], spacing_mm=marker_of(ref)[1], tolerance_mm=2.0)
    assert row["gt_relevance_mass"] == pytest.approx(want.relevance_mass, rel=1e-4)
    assert row["gt_marker_auc"] == pytest.approx(want.marker_auc, abs=1e-6)
    assert row["gt_pointing_hit"] == want.pointing_hit


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


def test_the_report_draws_the_truth_scores_and_the_examples(tmp_path):
    from napari_ctinterp.study.shortcut_report import write_shortcut_report

    table = pd.DataFrame({"method": ["BP", "IGB", "random"], "variant": "plain", "map_type": ["pixel", "region",
                                                                                             "pixel"], "n": 8})
    for score in ("relevance_mass", "relevance_rank", "marker_auc", "pointing_hit"):
        table[f"truth_{score}"] = [0.6, 0.1, 0.0]
        table[f"truth_{score}_low"], table[f"truth_{score}_high"] = table[f"truth_{score}"] - 0.05, \
            table[f"truth_{score}"] + 0.05
    table["F_shortcut"], table["expert_auc_shortcut"] = [0.5, 0.2, 0.0], [0.7, 0.8, 0.5]
    hu = np.zeros((32, 32), np.float32)
    marker = np.zeros((32, 32), np.uint8)
    marker[2:4, 2:6] = 1
    for model in ("demo-shortcut", "demo"):
        np.savez(tmp_path / f"{model}.npz", hu=hu, marker=marker, **{"BP plain": np.random.rand(32, 32)})
    path = write_shortcut_report(tmp_path, table, correlations(table), {"demo": {"accuracy": 0.9}},
                                 {m: tmp_path / f"{m}.npz" for m in ("demo-shortcut", "demo")})
    text = path.read_text()
    assert "BP plain pixel +0.600 [+0.550, +0.650]" in text and text.count("<img") == 3
    assert (tmp_path / "truth.png").stat().st_size > 5000 and (tmp_path / "examples.png").exists()


def test_the_benchmark_from_the_cli_compares_both_models(tmp_path):
    """CI-sized: 2 marked slices (letters), BP and Grad-CAM plain, XRAI fast, coarse fidelity."""
    import json

    from napari_ctinterp.cli import main

    out = tmp_path / "bench"
    assert main(["study", "--benchmark", "shortcut", "--slices", "2", "--methods", "BP", "GC", "--variants", "plain",
                 "--xrai", "fast", "--fidelity-step", "50", "--metrics", "none", "--device", "cpu",
                 "--out", str(out)]) == 0
    table = pd.read_csv(out / "shortcut" / "shortcut.csv")
    assert set(table["method"]) == {"BP", "GC", "random"} and set(table["map_type"]) == {"pixel", "region"}
    assert (table["n"] == 2).all()  # the two marked slices, paired across the models
    bp = table[(table["method"] == "BP") & (table["map_type"] == "pixel")].iloc[0]
    assert np.isfinite(bp["truth_relevance_mass"]) and bp["truth_relevance_mass_low"] <= bp["truth_relevance_mass"]
    assert np.isfinite(bp["F_shortcut"]) and np.isfinite(bp["expert_auc_shortcut"])
    report = (out / "shortcut" / "report.html").read_text()
    assert "Shortcut benchmark" in report and report.count("<img") >= 2
    acc = json.loads((out / "shortcut" / "correlations.json").read_text())["accuracy"]
    # --slices counts marked slices: both models study the same 2 (the table reads nothing else)
    assert acc["demo-shortcut"]["n"] == acc["demo"]["n"] == 2
    studies = json.loads((out / "shortcut" / "correlations.json").read_text())["studies"]
    for model, n in (("demo-shortcut", 2), ("demo", 2)):
        rows = pd.read_csv(Path(studies[model]) / "table.csv")
        assert rows["slice_id"].nunique() == n and set(rows["sign"]) == {"absolute"}  # the table reads no signed map
    with pytest.raises(SystemExit, match="leave out"):
        main(["study", "--benchmark", "shortcut", "--model", "demo", "--out", str(out)])


def test_the_marked_set_counts_marked_slices_and_keeps_its_prefix():
    from napari_ctinterp.study.runner import DEMO_MARKED, study_slices

    for n in (1, 3, 40):
        refs = study_slices(StudyConfig(data=DEMO_MARKED, model="demo-shortcut", slices=n))
        assert len(refs) == n and all(r.marker for r in refs) and all(r.label == 1 for r in refs)
    blind = study_slices(StudyConfig(data=DEMO_MARKED, model="demo", slices=40))
    assert [r.slice_id for r in blind] == [r.slice_id for r in refs]  # the same slices for both models
    assert [r.slice_id for r in blind[:3]] == [r.slice_id for r in study_slices(
        StudyConfig(data=DEMO_MARKED, model="demo", slices=3))]
    assert {r.label for r in blind} == {0, 1} and len({r.marker for r in blind}) == 3  # both classes, every kind
