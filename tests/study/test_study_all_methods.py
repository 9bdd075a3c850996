"""A demo study with the paper's five and the methods beyond them (GC, GBP, GGC, OCC): every method
in the tables and the report, OCC plain only, the paper's methods marked, the sanity figure; the
CLI's choices and refusals."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from napari_ctinterp.cli import build_parser, main
from napari_ctinterp.explain import ALL_METHODS, METHODS
from napari_ctinterp.study import StudyConfig, run_study

ALL = ("BP", "IGB", "IGBW", "EG", "D", "GC", "GBP", "GGC", "OCC")
SMALL = dict(slices=1, methods=ALL, variants=("plain", "SG"), steps=2, samples=2, sg_samples=2, xrai="fast",
             fidelity_step=25.0, occ_window=32, occ_stride=32, sanity=True, metrics=())


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return run_study(StudyConfig(**SMALL), tmp_path_factory.mktemp("study_all"), device="cpu")


def test_every_method_is_scored_and_occlusion_plain_only(run_dir):
    table = pd.read_csv(run_dir / "table.csv")
    assert table["error"].isna().all()
    assert set(table["method"]) == {*ALL, "random"}
    pairs = set(zip(table["method"], table["variant"]))
    assert ("OCC", "plain") in pairs and ("OCC", "SG") not in pairs
    for m in ALL[:-1]:
        assert {(m, "plain"), (m, "SG")} <= pairs, m
    # (8 methods × 2 variants + OCC plain) × 2 signs + random, pixel and region maps
    assert len(table) == ((8 * 2 + 1) * 2 + 1) * 2
    assert table["auc"].between(0, 1).all()
    summary = pd.read_csv(run_dir / "summary.csv")
    origin = dict(zip(summary["method"], summary["origin"]))
    assert {m: origin[m] for m in ALL} == {m: ("paper" if m in METHODS else "beyond") for m in ALL}
    assert origin["random"] == "baseline"
    fid = pd.read_csv(run_dir / "fidelity.csv")
    assert set(fid["method"]) == {*ALL, "random"} and fid["F"].between(-1, 1).all()
    assert (fid.groupby("method")["origin"].first()["GC"], fid.groupby("method")["origin"].first()["BP"]) == \
        ("beyond", "paper")


def test_report_names_every_method_and_marks_the_papers(run_dir):
    report = (run_dir / "report.html").read_text()
    assert "Methods of the paper (REFERENCE.md): BP, IGB, IGBW, EG, D." in report
    assert "Beyond the paper (marked + in the figures): GC, GBP, GGC, OCC." in report
    assert "OCC: plain only (no SmoothGrad variant)." in report
    for m in ALL:
        assert f"<td>{m}</td>" in report, m
    for fig in ("auc", "max_dice", "fidelity", "human_vs_model", "example_maps", "sanity"):
        assert (run_dir / "figures" / f"{fig}.png").exists(), fig
    assert "<h3 id='fig-sanity'>Sanity: model randomisation</h3>" in report


def test_sanity_record_of_the_example_slice(run_dir):
    sanity = json.loads((run_dir / "sanity.json").read_text())
    assert sanity["stages"][0] == "original" and sanity["stages"][1] == "fc" and len(sanity["stages"]) == 7
    assert set(sanity["spearman_abs"]) == {f"{m} plain" for m in ALL}
    for name, curve in sanity["spearman_abs"].items():
        assert len(curve) == 7 and curve[0] == 1.0, name
    # the known result (Adebayo et al. 2018): randomising the head and layer4 destroys Grad-CAM's map,
    # Guided Backprop's barely moves
    top = sanity["stages"].index("layer4")
    assert sanity["spearman_abs"]["GC plain"][top] < 0.5 < sanity["spearman_abs"]["GBP plain"][top]


def test_cli_offers_every_method_and_refuses_occlusion_without_plain(capsys):
    st = build_parser()._subparsers._group_actions[0].choices["study"]
    (methods,) = [a for a in st._actions if a.dest == "methods"]
    assert tuple(methods.choices) == ALL_METHODS
    with pytest.raises(SystemExit, match="OCC has no SmoothGrad variant.*add the plain variant"):
        main(["study", "--demo", "--methods", "BP", "OCC", "--variants", "SG", "--out", "never"])
    with pytest.raises(SystemExit, match=r"occ_stride \(9\) must not exceed occ_window \(8\)"):
        main(["study", "--demo", "--methods", "OCC", "--occ-window", "8", "--occ-stride", "9", "--out", "never"])


def test_config_refuses_unknown_methods():
    with pytest.raises(ValueError, match="unknown method.*GradCAM.*choose from BP IGB IGBW EG D GC GCPP GBP GGC OCC"):
        StudyConfig(methods=("GradCAM",))


def test_studies_made_before_the_new_methods_keep_their_key():
    # the options added with GC / OCC / sanity enter the results key only away from their defaults
    assert StudyConfig().legacy_key() == "e68ec74d8b11"  # the default study's folder at commit f3821ed (moved to key())
    assert StudyConfig(sanity=True).key() != StudyConfig().key() != StudyConfig(occ_window=24).key()
    # scoring the absolute maps only is another study; both signs, in any order, is the old one
    absolute_only = StudyConfig(signs=["absolute"])
    assert StudyConfig(signs=("signed", "absolute")).key() == StudyConfig().key() != absolute_only.key()
    assert StudyConfig(**StudyConfig(signs=["absolute"]).to_dict()).signs == ("absolute",)
    for bad in ((), ("abs",), ("absolute", "absolute"), ("signed",)):
        with pytest.raises(ValueError, match="signs must name"):
            StudyConfig(signs=bad)
    # occlusion options are checked only when OCC is asked for
    assert StudyConfig(methods=("BP",), occ_window=4, occ_stride=8).methods == ("BP",)


def test_a_failing_sanity_test_leaves_the_slice_scored_and_says_so(tmp_path, monkeypatch):
    import napari_ctinterp.study.slice_task as slice_task

    def broken(*_args, **_kwargs):
        raise RuntimeError("injected sanity failure")

    monkeypatch.setattr(slice_task, "sanity_record", broken)
    cfg = StudyConfig(slices=1, methods=("BP",), variants=("plain",), xrai="off", fidelity_step=50.0, sanity=True)
    run_dir = run_study(cfg, tmp_path, device="cpu")
    table = pd.read_csv(run_dir / "table.csv")
    assert len(table) == 3 and table["error"].isna().all()  # BP absolute + signed, random
    report = (run_dir / "report.html").read_text()
    assert "randomisation test of the example slice failed: RuntimeError: injected sanity failure" in report
    assert not (run_dir / "figures" / "sanity.png").exists()


def test_gradcams_signed_rows_score_its_map_before_the_relu():
    import numpy as np

    from napari_ctinterp.study.slice_task import study_maps

    gc = np.array([[0.0, 1.0], [2.0, 0.0]], np.float32)
    pre = np.array([[-1.0, 1.0], [2.0, -3.0]], np.float32)
    out = study_maps({("GC", "plain"): gc, ("BP", "plain"): pre}, None, "fast", signed_maps={("GC", "plain"): pre})
    assert np.array_equal(out["GC", "plain", "pixel", "signed"][0], pre)
    assert np.array_equal(out["GC", "plain", "pixel", "absolute"][0], gc)
    assert np.array_equal(out["BP", "plain", "pixel", "absolute"][0], np.abs(pre))


def test_cli_refuses_a_wrong_gradcam_layer_before_any_slice(tmp_path):
    with pytest.raises(SystemExit, match="gc_layer 'layer9' is not a module of this model; e.g. .*layer4"):
        main(["study", "--demo", "--methods", "GC", "--variants", "plain", "--gc-layer", "layer9",
              "--out", str(tmp_path)])
    assert not any(tmp_path.iterdir())  # nothing was started


def test_cli_says_so_when_every_slice_failed(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "broken.dcm").write_bytes(b"DICM" * 50)
    (data / "labels.csv").write_text("file,label\nbroken.dcm,1\n")
    rc = main(["study", "--data", str(data), "--slices", "0", "--methods", "BP", "--variants", "plain",
               "--xrai", "off", "--out", str(tmp_path / "out")])
    assert rc == 1
    assert "no slice was scored: all 1 failed (the error column of table.csv says why)" in capsys.readouterr().out
