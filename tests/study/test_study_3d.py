"""A 3D model's study: one row group per series from the CLI, interrupted and resumed, volume AUC
equal to ``metrics.localisation_volume``, the report's planes, 3D XRAI region maps scored, and
2D-only options refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from napari_ctinterp.cli import main
from napari_ctinterp.progress import Cancelled
from napari_ctinterp.study import StudyConfig, run_study
from napari_ctinterp.study import runner as study_runner

#: The explain / fidelity settings of the study, as StudyConfig keywords and as CLI flags (one key).
SMALL = dict(methods=("BP", "IGB"), variants=("plain", "SG"), steps=2, sg_samples=2, fidelity_step=50.0)
FLAGS = ["--methods", "BP", "IGB", "--variants", "plain", "SG", "--steps", "2", "--sg-samples", "2",
         "--fidelity-step", "50", "--device", "cpu"]
N_SERIES = 4
N_SLICES = 20  # the card keeps 16 of them (2.5 mm): the 2 first and last are outside its crop


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A random r3d_18 with a 3D card (resampled to 2.5 × 17.2 × 17.2 mm, cropped to 16 × 24 × 24)
    and a folder of 4 phantom series (DICOM) with 3D masks (.npz and NIfTI) and labels.csv."""
    from napari_ctinterp.io import save_mask, write_dicom_series
    from napari_ctinterp.model import ModelCard, build
    from napari_ctinterp.model.checkpoints import save_checkpoint
    from napari_ctinterp.phantom import make_volume

    root = tmp_path_factory.mktemp("study3d")
    card = ModelCard(architecture="r3d_18", spatial_dims=3, input_size=(16, 24, 24), spacing_mm=(2.5, 17.2, 17.2),
                     output="softmax", class_names=("no contrast", "contrast"))
    torch.manual_seed(0)
    weights, _ = save_checkpoint(build("r3d_18", "softmax", in_channels=1, n_logits=2, spatial_dims=3),
                                 root / "m3.safetensors", card)
    data = root / "data"
    lines = ["file,label,mask"]
    for s in range(N_SERIES):
        contrast = s % 2 == 0
        vol = make_volume(70 + s, contrast=contrast, n_slices=N_SLICES, size=48,
                          phase="venous" if contrast else None)
        write_dicom_series(vol.hu, data / f"case{s}", spacing_mm=vol.meta["spacing_mm"], seed=s)
        mask_name = f"case{s}_mask.npz" if s < 2 else f"case{s}_mask.nii.gz"
        save_mask(vol.mask.astype(np.uint8), data / mask_name, spacing_mm=vol.meta["spacing_mm"])
        lines.append(f"case{s},{int(contrast)},{mask_name}")
    (data / "labels.csv").write_text("\n".join(lines) + "\n")
    return weights, data, root


def _watch(monkeypatch) -> tuple[list[str], dict[str, dict]]:
    """The series the runner computes from now on (``run_series`` calls, in order) and the maps
    ``explain`` gave each of them (the maps the study scored)."""
    import napari_ctinterp.explain as explain_package

    calls: list[str] = []
    maps: dict[str, dict] = {}
    real_series, real_explain = study_runner.run_series, explain_package.explain

    def series(ref, *args, **kwargs):
        calls.append(ref.series_id)
        return real_series(ref, *args, **kwargs)

    def explain(*args, **kwargs):
        out = real_explain(*args, **kwargs)
        maps[calls[-1]] = dict(out)
        return out

    monkeypatch.setattr(study_runner, "run_series", series)
    monkeypatch.setattr(explain_package, "explain", explain)
    return calls, maps


def test_a_3d_study_from_the_cli_resumes_and_reports_the_planes(setup, monkeypatch):
    weights, data, root = setup
    out = root / "out"
    cfg = StudyConfig(data=str(data), model=str(weights), slices=0, xrai="off", **SMALL)
    stored: list[str] = []
    calls, scored_maps = _watch(monkeypatch)

    def stop_after_two(done: int, total: int, phase: str) -> bool:
        assert total == N_SERIES
        return done < 2  # cancel once two series are stored

    with pytest.raises(Cancelled):
        run_study(cfg, out, device="cpu", progress=stop_after_two, on_result=lambda r: stored.append(r["slice_id"]))
    assert stored == ["case0", "case1"]
    (run_dir,) = out.iterdir()
    assert sorted(p.stem for p in (run_dir / "slices").glob("*.json")) == ["case0", "case1"]

    assert calls == ["case0", "case1"]
    cli = ["study", "--model", str(weights), "--data", str(data), "--out", str(out), *FLAGS]
    assert main(cli) == 0
    assert calls == ["case0", "case1", "case2", "case3"]  # the CLI resumes the Python run (same key): the rest only
    assert [p.name for p in out.iterdir()] == [run_dir.name]
    table = pd.read_csv(run_dir / "table.csv")

    # one row group per series: 4 series × (2 methods × 2 variants × 2 signs + the random map), pixel maps only
    assert len(table) == N_SERIES * (2 * 2 * 2 + 1) and table["error"].isna().all()
    assert sorted(table["slice_id"].unique()) == [f"case{s}" for s in range(N_SERIES)]
    assert (table["series"] == table["slice_id"]).all() and table["z"].isna().all()
    assert set(table["map_type"]) == {"pixel"}
    assert table.groupby("slice_id")["label"].first().tolist() == [1, 0, 1, 0]
    assert table["auc"].between(0, 1).all() and table["max_dice"].between(0, 1).all()
    # the scores beyond the paper's, over the voxels the model saw (a volume's faithfulness from its own forwards)
    assert table["auprc"].between(0, 1).all() and table["sparseness"].between(0, 1).all()
    assert table["faithfulness_correlation"].between(-1, 1).all() and "max_sensitivity" not in table

    # the volume AUC / max Dice are localisation_volume's on the same maps (the crop left out)
    from napari_ctinterp.io import load_mask, read_ct
    from napari_ctinterp.metrics import localisation_volume
    from napari_ctinterp.model import load

    clf = load(weights, device="cpu")
    for s in range(N_SERIES):
        vol = read_ct(data / f"case{s}")
        mask = load_mask(data / (f"case{s}_mask.npz" if s < 2 else f"case{s}_mask.nii.gz"), reference=vol).labels
        outside = clf.geometry(vol.hu.shape, vol.spacing_mm).outside
        assert outside[[0, 1, -2, -1]].all() and not outside[2:-2].any()
        maps = scored_maps[f"case{s}"]
        assert set(maps) == {(m, v) for m in SMALL["methods"] for v in SMALL["variants"]}
        for (method, variant), signed in maps.items():
            assert signed.shape == vol.hu.shape and not signed[outside].any()  # on the CT grid, 0 off the crop
            ref = localisation_volume(np.abs(signed), mask, outside=outside, seed=0).volume
            row = table[(table["slice_id"] == f"case{s}") & (table["method"] == method)
                        & (table["variant"] == variant) & (table["sign"] == "absolute")]
            assert len(row) == 1
            assert row["auc"].iloc[0] == pytest.approx(ref.auc, abs=1e-9)
            assert row["max_dice"].iloc[0] == pytest.approx(ref.max_dice, abs=1e-9)

    # localisation along z and fidelity over the 4 volumes
    by_slice = pd.read_csv(run_dir / "table_by_slice.csv")
    assert set(by_slice["z"]) <= set(range(2, N_SLICES - 2)) and len(by_slice["z"].unique()) > 4
    fid = pd.read_csv(run_dir / "fidelity.csv")
    assert len(fid) == 9 and (fid["n"] == N_SERIES).all() and fid["F"].notna().all()

    # the report: three planes and a MIP per map of the example series, saved and embedded
    html = (run_dir / "report.html").read_text()
    names = ["planes_BP_plain", "planes_BP_SG", "planes_IGB_plain", "planes_IGB_SG"]
    for name in names:
        png = run_dir / "figures" / f"{name}.png"
        assert png.exists() and png.stat().st_size > 5000, name
        heading = f"<h3 id='fig-{name}'>Maps of the example series: {name[7:].replace('_', ' ')}</h3>"
        assert heading + "\n<img src='data:image/png;base64," in html
    assert "4 series scored (" in html and "0 failed" in html and "example_maps.png" not in html
    with np.load(run_dir / "example_maps.npz") as z:
        assert str(z["kind"]) == "3d" and str(z["BP plain|through"]) == "the mask's centre"
        assert z["BP plain|map|coronal"].shape == (N_SLICES, 48) and z["BP plain|map|mip"].shape == (48, 48)

    # a second run computes nothing new and gives the same table
    stamps = {p.name: p.stat().st_mtime_ns for p in (run_dir / "slices").glob("*.json")}
    assert main(cli) == 0
    assert len(calls) == N_SERIES
    assert {p.name: p.stat().st_mtime_ns for p in (run_dir / "slices").glob("*.json")} == stamps
    pd.testing.assert_frame_equal(pd.read_csv(run_dir / "table.csv"), table)


@pytest.mark.parametrize("extra, says", [
    (["--slices", "2"], "leave --slices out"),
    (["--slices=0"], "leave --slices out"),
    (["--sl", "3"], "leave --slices out"),
])
def test_2d_only_flags_with_a_3d_model_are_refused_saying_what_to_do(setup, extra, says):
    weights, data, root = setup
    with pytest.raises(SystemExit, match=says) as e:
        main(["study", "--model", str(weights), "--data", str(data), "--out", str(root / "refused"), *extra])
    assert "is 3D" in str(e.value)
    assert not (root / "refused").exists()


def test_a_3d_study_with_xrai_scores_region_maps_of_supervoxels(setup, tmp_path, monkeypatch):
    """``--xrai fast`` with a 3D model: every map also as a region map over the series' supervoxels,
    its volume AUC / max Dice those of ``localisation_volume`` with the supervoxel ranks, and its
    fidelity computed."""
    from napari_ctinterp import xrai
    from napari_ctinterp.io import load_mask, read_ct
    from napari_ctinterp.metrics import localisation_volume
    from napari_ctinterp.model import load

    weights, data, _root = setup
    two = tmp_path / "labels.csv"
    two.write_text("file,label,mask\ncase0,1,case0_mask.npz\ncase1,0,case1_mask.npz\n")
    calls, scored_maps = _watch(monkeypatch)
    out = tmp_path / "out"
    assert main(["study", "--model", str(weights), "--data", str(data), "--labels", str(two), "--out", str(out),
                 "--methods", "BP", "--variants", "plain", "--fidelity-step", "50", "--device", "cpu",
                 "--xrai", "fast"]) == 0
    assert calls == ["case0", "case1"]
    (run_dir,) = out.iterdir()
    table = pd.read_csv(run_dir / "table.csv")
    assert table["error"].isna().all()
    # per series: (BP plain × 2 signs + the random map) × (pixel, region)
    assert len(table) == 2 * 3 * 2 and set(table["map_type"]) == {"pixel", "region"}
    region = table[table["map_type"] == "region"]
    scored = region[region["slice_id"] == "case0"]
    assert len(scored) == 3 and scored["auc"].between(0, 1).all() and scored["max_dice"].between(0, 1).all()
    fid = pd.read_csv(run_dir / "fidelity.csv")
    assert set(fid["map_type"]) == {"pixel", "region"} and fid["F"].notna().all()

    vol = read_ct(data / "case0")
    mask = load_mask(data / "case0_mask.npz", reference=vol).labels
    outside = load(weights, device="cpu").geometry(vol.hu.shape, vol.spacing_mm).outside
    seg = xrai.segment(vol.hu, spacing_mm=vol.spacing_mm)
    reg = xrai.region_map(np.abs(scored_maps["case0"]["BP", "plain"]), seg, algorithm="fast", outside=outside)
    assert (reg.ranks[outside] == 0).all() and reg.ranks[~outside].min() == 1
    ref = localisation_volume(np.where(outside, 0, reg.values), mask, regions=reg.ranks, region_scope="volume",
                              outside=outside).volume
    row = scored[(scored["method"] == "BP") & (scored["sign"] == "absolute")]
    assert row["auc"].iloc[0] == pytest.approx(ref.auc, abs=1e-9)
    assert row["max_dice"].iloc[0] == pytest.approx(ref.max_dice, abs=1e-9)
    pixel = table[(table["map_type"] == "pixel") & (table["slice_id"] == "case0") & (table["method"] == "BP")
                  & (table["sign"] == "absolute")]
    assert pixel["auc"].iloc[0] != row["auc"].iloc[0]  # the region map is scored as itself, not as the pixels


def test_a_per_slice_labels_csv_is_refused_for_a_3d_model(setup, tmp_path):
    weights, data, _root = setup
    per_slice = tmp_path / "labels.csv"
    per_slice.write_text("file,label,slices\ncase0,1,all\n")
    with pytest.raises(SystemExit, match="one row per series"):
        main(["study", "--model", str(weights), "--data", str(data), "--labels", str(per_slice),
              "--out", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()


def test_the_demo_set_of_phantom_series_is_prefix_stable_labelled_and_masked():
    from napari_ctinterp.study.series_data import demo_series, load_series

    four = demo_series(4, task="phase")
    assert demo_series(2, task="phase") == four[:2]  # a study asked for more series reuses the ones it has
    assert [r.label for r in four] == [0, 1, 2, 3] and len({r.series_id for r in four}) == 4
    hu, mask, spacing = load_series(four[1])  # arterial: the enhanced vessels are its mask
    assert hu.ndim == 3 and mask.shape == hu.shape and mask.any() and 4.5 <= spacing[0] <= 9.0
    with pytest.raises(ValueError, match="1 to 1000"):
        demo_series(0)


def test_ctinterp_study_demo_with_3d_models(setup, tmp_path):
    """``--demo`` with a 3D model studies phantom series: the 3D demo (its own EG references) and a
    user's 3D model (EG draws from the study's other phantom series), ``--slices`` counting series."""
    weights, _data, _root = setup
    flags = ["--methods", "BP", "EG", "--variants", "plain", "--samples", "2", "--fidelity-step", "50",
             "--device", "cpu", "--demo", "--slices", "2"]
    for model, task, refs in (("demo-3d", "phase", "demo"), (str(weights), "contrast", "1 other series")):
        out = tmp_path / task
        assert main(["study", "--model", model, *flags, "--out", str(out)]) == 0
        (run_dir,) = out.iterdir()
        table = pd.read_csv(run_dir / "table.csv")
        assert sorted(table["slice_id"].unique()) == sorted(r.series_id for r in _demo(2, task))
        scored = table[(table["method"] == "BP") & (table["sign"] == "absolute") & table["auc"].notna()]
        assert len(scored) >= 1  # the contrast series' masks are scored
        import json

        stored = [json.loads(p.read_text()) for p in (run_dir / "slices").glob("*.json")]
        assert all(not r["error"] for r in stored), [r["error"] for r in stored]
        assert all(r["eg_references"] == "" if refs == "demo" else refs in r["eg_references"] for r in stored)


def _demo(n, task):
    from napari_ctinterp.study.series_data import demo_series

    return demo_series(n, task=task)
