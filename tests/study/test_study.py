"""Batch study: complete tables, resume after a kill, same table on a Dask LocalCluster, bad slices."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from napari_ctinterp.study import StudyConfig, run_study

# one variant (SG², which exercises the shared noisy samples) keeps the study tests' time down; the
# map's own scores beyond the paper's (the model's — faithfulness, max-sensitivity — are tested on one
# slice in test_every_metric…: 101 forwards a slice add up over CI's study tests)
MAP_METRICS = ("auprc", "iou_otsu", "sparseness", "complexity")
SMALL = dict(slices=4, methods=("BP", "IGB"), variants=("SG2",), steps=4, samples=4, sg_samples=2,
             xrai="fast", fidelity_step=25.0, metrics=MAP_METRICS)
CLI_SMALL = ["--slices", "4", "--methods", "BP", "IGB", "--variants", "SG2", "--steps", "4",
             "--samples", "4", "--sg-samples", "2", "--xrai", "fast", "--fidelity-step", "25",
             "--metrics", *MAP_METRICS]


def _frame(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "table.csv").sort_values(["slice_id", "method", "variant", "map_type", "sign"])


def _same_tables(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    for c in a.columns:
        x, y = a[c].to_numpy(), b[c].to_numpy()
        if a[c].dtype.kind == "f":
            assert np.allclose(x, y, rtol=1e-5, atol=1e-6, equal_nan=True), c
        else:
            assert (pd.isna(x) & pd.isna(y) | (x == y)).all(), c


@pytest.fixture(scope="module")
def in_process(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    return run_study(StudyConfig(**SMALL), out, device="cpu")


def test_demo_study_has_every_row_and_column(in_process):
    table = pd.read_csv(in_process / "table.csv")
    # 4 slices × (2 methods × 1 variant × 2 signs + random abs) × 2 map types
    assert len(table) == 4 * (2 * 1 * 2 + 1) * 2
    assert {"slice_id", "label", "p_contrast", "method", "variant", "map_type", "sign", "auc", "auc_grid",
            "max_dice", "k_star", "fidelity_continuous", "error"} <= set(table.columns)
    assert table["error"].isna().all() and table["auc"].between(0, 1).all()
    assert set(table["label"]) == {0, 1}
    # the map's own scores beyond the paper's, each in its range, for every map
    for column, (lo, hi) in {"auprc": (0, 1), "iou_otsu": (0, 1), "sparseness": (0, 1),
                             "complexity": (0, np.log(512 * 512))}.items():
        assert table[column].between(lo, hi).all(), column
    assert "topk_intersection" not in table and "faithfulness_correlation" not in table  # not asked for
    # a random map's AUPRC is about the mask's share of the slice, far below a gradient map's
    random_rows = table[(table["method"] == "random") & (table["map_type"] == "pixel")]
    assert (random_rows["auprc"] < 0.5 * table[table["method"] == "IGB"]["auprc"].mean()).all()
    # the out-of-domain check of each slice, from the slice's own forward pass
    from napari_ctinterp.model import load

    threshold = load("demo").domain_stats()[0].threshold
    per_slice = table.groupby("slice_id")[["in_domain", "domain_score"]].first()
    assert per_slice["domain_score"].gt(0).all()
    assert (per_slice["in_domain"] == (per_slice["domain_score"] <= threshold)).all()
    assert per_slice["in_domain"].sum() >= 3  # phantom slices are the demo's training domain
    summary = pd.read_csv(in_process / "summary.csv")
    assert len(summary) == (2 * 1 * 2 + 1) * 2 and (summary["auc_n"] == 4).all()
    fid = pd.read_csv(in_process / "fidelity.csv")
    assert len(fid) == len(summary) and fid["F"].between(-1, 1).all()
    assert (fid["F_ci_low"] <= fid["F_ci_high"]).all() and fid["F_ci_high"].gt(fid["F_ci_low"]).any()
    assert json.loads((in_process / "accuracy.json").read_text())["n"] == 4
    report = (in_process / "report.html").read_text()
    n_in = int(per_slice["in_domain"].sum())
    assert f"Out-of-domain check: {n_in} of 4 slices in the model's domain, {4 - n_in} out of domain" in report
    assert "data:image/png;base64" in report and "Model card" in report and '&quot;steps&quot;: 4' in report
    assert (in_process / "figures" / "example_maps.png").exists()
    # Human vs model: every absolute non-random map type with its AUC, F and their rank correlation.
    assert "Human vs model</h3>" in report and "Spearman" in report
    assert "<summary>Scores beyond the paper (mean, SD, n per group)" in report and "AUPRC ↑" in report
    # read top-down: headline (model, data, settings, the first map kind per score, caveats), figures,
    # statistics, tables (collapsed), parameters
    order = [report.index(x) for x in ("class='headline'", "<h2 id='figures'>", "Which method wins",
                                       "<h2 id='tables'>", "<h2 id='parameters'>")]
    assert order == sorted(order)
    head = report[order[0]:order[1]]
    assert "Model: demo resnet18 (phantom)" in head and "4 slices scored (2 no contrast, 2 contrast)" in head
    assert "IG 4 path points" in head and "<td>AUC ↑</td>" in head and "F (paper: pooled over the set) ↑" in head
    assert "Too few slices for tests: 4" in head and "moves the paper's F by" in head
    # the demo reads a 25 % white fill of random pixels as contrast: the headline says F measures the fill there
    assert "right on 0% of the 2 no contrast slices, 100% before" in head
    assert report.count("<details>") >= 4 and report.index("<img") > order[1]  # no figure above the headline
    # the statistics section: 4 slices are too few for tests, and it says so instead of a p-value
    assert "<h2>Which method wins (paired tests over the slices)</h2>" in report
    assert "Too few slices for tests: 4 with every map kind scored (at least 6 needed)" in report
    assert (summary["auprc_n"] == 4).all()
    assert (in_process / "figures" / "human_vs_model.png").exists()


def test_every_metric_on_a_slice_and_max_sensitivity_of_pixel_maps_only(tmp_path):
    """``metrics=MORE_SCORES`` (``--metrics all``): top-k and max-sensitivity too; max-sensitivity is
    the pixel maps' (a region map would need XRAI per perturbed map; the random map has none) and
    equals ``metrics.max_sensitivity`` of the slice's input (EG with the model's references)."""
    from napari_ctinterp.cli.study import chosen_metrics
    from napari_ctinterp.explain import reference_inputs
    from napari_ctinterp.metrics import max_sensitivity
    from napari_ctinterp.metrics.schema import MORE_SCORES, STUDY_METRICS
    from napari_ctinterp.model import load
    from napari_ctinterp.study.data import demo_slices, load_slice

    methods = ("BP", "EG")
    cfg = StudyConfig(**{**SMALL, "slices": 1, "methods": methods, "metrics": chosen_metrics(["all"])})
    assert cfg.metrics == MORE_SCORES and StudyConfig().metrics == STUDY_METRICS != MORE_SCORES
    assert cfg.key() != StudyConfig(**{**SMALL, "slices": 1, "methods": methods}).key()
    assert StudyConfig(metrics=STUDY_METRICS).key() == StudyConfig().key()  # the default set: the key of before
    table = pd.read_csv(run_study(cfg, tmp_path, device="cpu") / "table.csv")
    assert table["score_note"].isna().all() and table["error"].isna().all()
    pixel = table[(table["map_type"] == "pixel") & table["method"].isin(methods)]
    assert len(pixel) == 4 and pixel["max_sensitivity"].gt(0).all() and pixel["topk_intersection"].between(0, 1).all()
    assert table["faithfulness_correlation"].between(-1, 1).all() and table["auprc"].between(0, 1).all()
    assert table[(table["map_type"] == "region") | (table["method"] == "random")]["max_sensitivity"].isna().all()
    clf = load("demo", device="cpu")
    (ref,) = demo_slices(1, cfg.explain.seed)
    assert set(table["slice_id"]) == {ref.slice_id}
    hu, _mask = load_slice(ref)
    refs, _ = reference_inputs(clf, None)
    want = max_sensitivity(clf, clf.preprocess(hu), int(table["target"].iloc[0]), cfg.explain, refs, seed=cfg.seed)
    for _, row in pixel.iterrows():
        assert row["max_sensitivity"] == pytest.approx(want[row["method"], "SG2", row["sign"]], rel=1e-6)
    with pytest.raises(ValueError, match="unknown metric roc; choose from auprc"):
        StudyConfig(metrics=("roc",))


def test_ctinterp_report_rebuilds_the_report_from_the_stored_slices(in_process, tmp_path, monkeypatch):
    """``ctinterp report RESULTS_DIR`` rebuilds tables and report without computing a map; with
    enough slices (here the stored ones copied as 8) the statistics give p-values and a CD diagram."""
    import shutil

    from napari_ctinterp.cli import main
    from napari_ctinterp.study import slice_task

    monkeypatch.setattr(slice_task, "run_slice", lambda *a, **k: pytest.fail("a map was recomputed"))
    run = tmp_path / in_process.name
    shutil.copytree(in_process, run)
    (run / "report.html").unlink()
    for f in list((run / "slices").glob("*.json")):  # the same 4 slices twice, under new names: 8 blocks
        data = json.loads(f.read_text())
        data["slice_id"] = data["slice_id"] + "-copy"
        (f.parent / f"{f.stem}-copy.json").write_text(json.dumps(data))
    assert main(["report", str(tmp_path)]) == 0
    report = (run / "report.html").read_text()
    assert "Too few slices" not in report and "Friedman χ²" in report and (run / "figures" / "cd_auc.png").exists()
    assert len(pd.read_csv(run / "table.csv")["slice_id"].unique()) == 8
    with pytest.raises(SystemExit, match="holds no study"):
        main(["report", str(tmp_path / "nothing")])


def test_killed_run_resumes_to_the_same_table(in_process, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "napari_ctinterp.cli", "study", "--demo", *CLI_SMALL, "--device", "cpu",
           "--out", str(tmp_path)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    slices = tmp_path / in_process.name / "slices"
    deadline = time.time() + 300
    while time.time() < deadline and not (slices.exists() and any(slices.glob("*.json"))):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_first = len(list(slices.glob("*.json")))
    assert 1 <= n_first < 4, "the kill must land after the first slice and before the last"
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "model accuracy" in done.stdout
    # the progress line names the slice's phase, and after a computed slice an ETA
    assert ": gradients" in done.stderr and ": fidelity" in done.stderr and "ETA " in done.stderr, done.stderr[-800:]
    assert f"slice {n_first + 1}/4" in done.stderr
    _same_tables(_frame(tmp_path / in_process.name), _frame(in_process))


def test_changed_parameters_never_mix(in_process, tmp_path):
    other = run_study(StudyConfig(**{**SMALL, "metrics": (), "slices": 1, "steps": 5}), in_process.parent, device="cpu")
    assert other.name != in_process.name
    assert len(pd.read_csv(in_process / "table.csv")["slice_id"].unique()) == 4


def test_local_cluster_gives_the_same_table(in_process, tmp_path):
    run_dir = run_study(StudyConfig(**SMALL), tmp_path, device="cpu", workers=2)
    _same_tables(_frame(run_dir), _frame(in_process))


def test_corrupt_slice_is_reported_and_the_run_goes_on(tmp_path):
    from napari_ctinterp.io import write_dicom_series
    from napari_ctinterp.phantom import make_slice

    data = tmp_path / "data"
    for i, c in enumerate((True, False)):
        write_dicom_series([make_slice(i, contrast=c, size=128)], data / f"case{i}", seed=i)
    (data / "broken").mkdir()
    (data / "broken" / "slice.dcm").write_bytes(b"DICM" * 50)
    (data / "labels.csv").write_text("file,label\ncase0,1\nbroken/slice.dcm,0\ncase1,0\n")
    run_dir = run_study(StudyConfig(**{**SMALL, "metrics": (), "data": str(data), "slices": 0}), tmp_path / "out",
                        device="cpu")
    table = pd.read_csv(run_dir / "table.csv")
    bad = table[table["slice_id"] == "broken/slice.dcm"]
    assert len(bad) == 1 and isinstance(bad["error"].iloc[0], str) and "DICOM" in bad["error"].iloc[0]
    good = table[table["slice_id"] != "broken/slice.dcm"]
    assert good["error"].isna().all() and len(good) == 2 * 5 * 2
    assert good["auc"].isna().all()  # no masks given: localisation skipped, fidelity computed
    assert good["fidelity_continuous"].notna().all()


def test_a_four_class_model_with_class_names_as_labels(tmp_path):
    import torch

    from napari_ctinterp.io import write_dicom_series
    from napari_ctinterp.model import ModelCard, build
    from napari_ctinterp.model.checkpoints import save_checkpoint
    from napari_ctinterp.phantom import make_slice

    phases = ("no contrast", "arterial", "pulmonary", "venous")
    card = ModelCard(architecture="densenet121", input_size=(64, 64), output="softmax", class_names=phases,
                     channels=({"window": [-1000, 400]}, {"window": [-160, 240]}, {"window": [-500, 1300]}))
    torch.manual_seed(0)
    weights, _ = save_checkpoint(build("densenet121", "softmax", in_channels=3, n_logits=4),
                                 tmp_path / "phase.safetensors", card)
    data = tmp_path / "data"
    for i, phase in enumerate(("venous", None)):
        write_dicom_series([make_slice(i, contrast=phase is not None, phase=phase, size=128)], data / f"case{i}",
                           seed=i)
    write_dicom_series([make_slice(5, contrast=False, size=128)], data / "case2", seed=5)
    (data / "labels.csv").write_text("file,label\ncase0,venous\ncase1,no contrast\ncase2,portal\n")
    config = {**SMALL, "metrics": (), "data": str(data), "slices": 0, "xrai": "off", "model": str(weights)}
    run_dir = run_study(StudyConfig(**config), tmp_path / "out", device="cpu")
    table = pd.read_csv(run_dir / "table.csv")
    ok = table[table["error"].isna()]
    assert set(ok["slice_id"]) == {"case0", "case1"} and set(ok["label"].astype(int)) == {3, 0}
    assert ok["target"].between(0, 3).all() and set(ok["class"]) <= set(phases)
    assert ok["p_contrast"].isna().all() and ok["prediction"].between(0, 3).all()
    bad = table[table["slice_id"] == "case2"]["error"].iloc[0]
    assert "unknown class 'portal'" in bad and "venous" in bad
    acc = json.loads((run_dir / "accuracy.json").read_text())
    assert acc["n"] == 2 and acc["n_failed"] == 1 and 0 <= acc["accuracy"] <= 1
    report = (run_dir / "report.html").read_text()  # the headline counts the scored slices by class name
    assert "2 slices scored (1 no contrast, 1 venous), 1 failed" in report and "1 slice failed (section" in report


def test_demo_data_with_the_phase_demo_is_labelled_by_phase(tmp_path):
    config = {**SMALL, "metrics": (), "slices": 4, "methods": ("BP",), "variants": ("plain",), "xrai": "off",
              "model": "demo-phase"}
    run_dir = run_study(StudyConfig(**config), tmp_path / "out", device="cpu")
    table = pd.read_csv(run_dir / "table.csv")
    assert table["error"].isna().all()
    assert sorted(table.drop_duplicates("slice_id")["label"].astype(int)) == [0, 1, 2, 3]  # a quarter each
    acc = json.loads((run_dir / "accuracy.json").read_text())
    assert acc["n"] == 4 and acc["accuracy"] >= 0.75  # the phase demo on four held-out slices


def test_demo_data_refuses_a_model_whose_classes_it_cannot_label(tmp_path):
    from napari_ctinterp.model import ModelCard, build
    from napari_ctinterp.model.checkpoints import save_checkpoint

    card = ModelCard(architecture="resnet18", input_size=(64, 64), output="softmax", class_names=("liver", "kidney"))
    weights, _ = save_checkpoint(build("resnet18", "softmax"), tmp_path / "organs.safetensors", card)
    with pytest.raises(ValueError, match="cannot label slices for this model.*labels.csv"):
        run_study(StudyConfig(**{**SMALL, "metrics": (), "model": str(weights)}), tmp_path / "out", device="cpu")


def _two_series_with_seg_masks(root: Path) -> Path:
    from napari_ctinterp.io import read_ct, save_mask, write_dicom_series
    from napari_ctinterp.phantom import make_slice

    data = root / "data"
    rows = ["file,label,mask,slices"]
    for i, (contrast, masked) in enumerate(((True, (1, 3)), (False, (0,)))):
        slices = [make_slice(700 + 10 * i + z, contrast=contrast, phase="arterial", size=96) for z in range(4)]
        write_dicom_series(slices, data / f"case{i}", seed=i)
        ct = read_ct(data / f"case{i}")
        lab = np.zeros(ct.hu.shape, np.uint8)
        for z in masked:
            lab[z] = slices[z].mask
        save_mask(lab, data / f"case{i}_seg.dcm", spacing_mm=ct.spacing_mm, format="seg", reference=ct)
        rows.append(f"case{i},{int(contrast)},case{i}_seg.dcm,")
    rows.append("case1,0,,2:3")  # explicit slices, no mask
    (data / "labels.csv").write_text("\n".join(rows) + "\n")
    return data


def test_a_folder_of_series_with_seg_masks_gives_a_row_group_per_masked_slice(tmp_path):
    data = _two_series_with_seg_masks(tmp_path)
    config = {**SMALL, "metrics": (), "data": str(data), "slices": 0, "methods": ("BP",), "variants": ("plain",),
              "xrai": "off"}
    run_dir = run_study(StudyConfig(**config), tmp_path / "out", device="cpu")
    table = pd.read_csv(run_dir / "table.csv")
    assert table["error"].isna().all(), table["error"].dropna().tolist()
    groups = table.drop_duplicates("slice_id")[["slice_id", "series", "z"]].values.tolist()
    assert groups == [["case0#z1", "case0", 1], ["case0#z3", "case0", 3], ["case1#z0", "case1", 0],
                      ["case1#z2", "case1", 2], ["case1#z3", "case1", 3]]
    masked = table[table["slice_id"].isin(["case0#z1", "case0#z3", "case1#z0"])]
    assert masked["auc"].notna().all() and table[table["series"].eq("case1") & table["z"].ge(2)]["auc"].isna().all()
    per_series = pd.read_csv(run_dir / "summary_by_series.csv")
    bp_abs = per_series[(per_series["method"] == "BP") & (per_series["sign"] == "absolute")]
    assert dict(zip(bp_abs["series"], bp_abs["auc_n"])) == {"case0": 2, "case1": 1}
    again = run_study(StudyConfig(**config), tmp_path / "out", device="cpu")  # resumed: nothing left to do
    _same_tables(_frame(run_dir), _frame(again))


def test_a_bad_slices_spec_fails_that_series_only(tmp_path):
    data = _two_series_with_seg_masks(tmp_path)
    (data / "labels.csv").write_text("file,label,slices\ncase0,1,7:9\ncase1,0,1\n")
    config = {**SMALL, "metrics": (), "data": str(data), "slices": 0, "methods": ("BP",), "variants": ("plain",),
              "xrai": "off"}
    table = pd.read_csv(run_study(StudyConfig(**config), tmp_path / "out", device="cpu") / "table.csv")
    bad = table[table["slice_id"] == "case0"]["error"].iloc[0]
    assert "outside the volume's slices 0…3" in bad
    assert table[table["slice_id"] == "case1#z1"]["error"].isna().all()


def test_the_domain_sentence_of_a_study_where_every_slice_failed():
    from napari_ctinterp.study.report import domain_sentence

    assert "no slice was scored" in domain_sentence({"in": 0, "out": 0, "unknown": 0})
    assert domain_sentence({"in": 3, "out": 1, "unknown": 0}).startswith(
        "Out-of-domain check: 3 of 4 slices in the model's domain, 1 out of domain — ")


def test_a_users_model_gets_EG_references_from_the_data(tmp_path):
    import torch

    from napari_ctinterp.io import write_dicom_series
    from napari_ctinterp.model import ModelCard, build
    from napari_ctinterp.model.checkpoints import save_checkpoint
    from napari_ctinterp.phantom import make_slice

    torch.manual_seed(0)
    weights, _ = save_checkpoint(build("resnet18", "logit"), tmp_path / "mine.safetensors",
                                 ModelCard(architecture="resnet18", input_size=(64, 64), output="logit"))
    small = {**SMALL, "metrics": (), "methods": ("EG",), "variants": ("plain",), "xrai": "off", "model": str(weights)}
    demo = pd.read_csv(run_study(StudyConfig(**{**small, "slices": 2}), tmp_path / "demo", device="cpu")
                       / "table.csv")
    assert demo["error"].isna().all() and demo["fidelity_continuous"].notna().all()  # the phantom's training slices
    data = tmp_path / "data"
    write_dicom_series([make_slice(i, contrast=True, size=96) for i in range(3)], data / "series", seed=0)
    write_dicom_series([make_slice(9, contrast=False, size=96)], data / "single", seed=9)
    (data / "labels.csv").write_text("file,label,slices\nseries,1,0\nsingle,0,0\n")
    table = pd.read_csv(run_study(StudyConfig(**{**small, "data": str(data), "slices": 0}), tmp_path / "out",
                                  device="cpu") / "table.csv")
    assert table[table["series"] == "series"]["error"].isna().all()  # the series' two other slices
    single = table[table["series"] == "single"]["error"].iloc[0]
    assert "EG needs reference slices" in single and "--methods" in single
