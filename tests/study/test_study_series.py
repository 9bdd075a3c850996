"""Studies over DICOM series: a corrupt file inside a series, per-slice labels, 2.5D models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from napari_ctinterp.study import StudyConfig, run_study

FAST = dict(slices=0, methods=("BP", "IGB"), variants=("plain",), steps=3, samples=3, sg_samples=2, xrai="off",
            fidelity_step=25.0, metrics=())  # the scores beyond the paper are tested elsewhere (CI's time)


def _series(root: Path, name: str, n: int = 4, contrast: bool = True, seed: int = 0) -> Path:
    from napari_ctinterp.io import write_dicom_series
    from napari_ctinterp.phantom import make_slice

    slices = [make_slice(900 + seed * 10 + z, contrast=contrast, phase="venous" if contrast else None, size=64)
              for z in range(n)]
    write_dicom_series(slices, root / name, seed=seed)
    return root / name


def _truncate_one(folder: Path, z: int) -> Path:
    """Cut the pixel data of the file holding slice z (its header stays readable)."""
    from napari_ctinterp.io import read_ct

    path = Path(read_ct(folder).meta["files"][z])
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 3000])
    return path


def _table(tmp_path: Path, data: Path, **over) -> pd.DataFrame:
    run_dir = run_study(StudyConfig(**{**FAST, "data": str(data), **over}), tmp_path / "out", device="cpu")
    return pd.read_csv(run_dir / "table.csv")


def test_read_ct_can_leave_an_undecodable_slice_nan(tmp_path):
    from napari_ctinterp.io import CTReadError, CTReadWarning, read_ct

    folder = _series(tmp_path, "case0")
    good = read_ct(folder).hu
    bad_file = _truncate_one(folder, 2)
    with pytest.raises(CTReadError, match=bad_file.name):
        read_ct(folder)
    with pytest.warns(CTReadWarning, match=r"1 slice\(s\) could not be decoded"):
        vol = read_ct(folder, bad_slices="nan")
    assert list(vol.meta["bad_slices"]) == [2] and bad_file.name in vol.meta["bad_slices"][2]
    assert np.isnan(vol.hu[2]).all()
    np.testing.assert_array_equal(vol.hu[[0, 1, 3]], good[[0, 1, 3]])


def test_a_corrupt_file_inside_a_series_is_one_error_row_and_the_other_slices_go_on(tmp_path):
    data = tmp_path / "data"
    _truncate_one(_series(data, "case0"), 1)
    (data / "labels.csv").write_text("file,label,slices\ncase0,1,all\n")
    table = _table(tmp_path, data)
    by_slice = table.groupby("slice_id")
    assert sorted(by_slice.groups) == ["case0#z0", "case0#z1", "case0#z2", "case0#z3"]
    bad = table[table["slice_id"] == "case0#z1"]
    assert len(bad) == 1 and "could not be read" in bad["error"].iloc[0] and bad["z"].iloc[0] == 1
    good = table[table["slice_id"] != "case0#z1"]
    assert good["error"].isna().all() and len(good) == 3 * 5  # 3 slices × (BP, IGB × 2 signs + random)


def test_labels_per_slice_as_rows_or_as_a_csv_per_series(tmp_path):
    data = tmp_path / "data"
    _series(data, "case0")
    _series(data, "case1", contrast=False, seed=1)
    (data / "labels.csv").write_text("file,slice,label\ncase0,0,1\ncase0,2,0\ncase1,3,no contrast\n")
    table = _table(tmp_path, data, methods=("BP",))
    first = table.drop_duplicates("slice_id")[["slice_id", "z", "label"]].values.tolist()
    assert first == [["case0#z0", 0, 1], ["case0#z2", 2, 0], ["case1#z3", 3, 0]]
    assert table["error"].isna().all()

    (data / "case0_labels.csv").write_text("slice,label\n1,1\n3,0\n")
    (data / "labels.csv").write_text("file,label,slices\ncase0,case0_labels.csv,\ncase0,case0_labels.csv,2:3\n")
    table = _table(tmp_path, data, methods=("BP",))
    rows = table.drop_duplicates("slice_id")
    assert rows[["slice_id", "label"]].values.tolist()[:2] == [["case0#z1", 1], ["case0#z3", 0]]
    unlabelled = table[table["slice_id"] == "case0#z2"]["error"].iloc[0]
    assert "slice 2 has no label in case0_labels.csv" in unlabelled


def test_a_bad_per_slice_label_file_says_what_it_expects(tmp_path):
    from napari_ctinterp.study.data import folder_slices

    data = tmp_path / "data"
    data.mkdir()
    (data / "labels.csv").write_text("file,label\ncase0,missing.csv\n")
    with pytest.raises(FileNotFoundError, match="missing.csv.*slice,label"):
        folder_slices(data)
    (data / "missing.csv").write_text("z,label\n1,1\n")
    with pytest.raises(ValueError, match="expected columns slice,label"):
        folder_slices(data)


def _model_2_5d(tmp_path: Path) -> Path:
    from napari_ctinterp.model import ModelCard, build
    from napari_ctinterp.model.checkpoints import save_checkpoint

    w = [-1000, 1000]
    card = ModelCard(architecture="resnet18", input_size=(64, 64), output="softmax",
                     channels=({"window": w, "slice_offset": -1}, {"window": w}, {"window": w, "slice_offset": 1}))
    torch.manual_seed(0)
    weights, _ = save_checkpoint(build("resnet18", "softmax", in_channels=3), tmp_path / "m25.safetensors", card)
    return weights


def test_a_2_5d_model_gets_its_neighbouring_slices_from_the_series(tmp_path):
    from napari_ctinterp.explain import explain
    from napari_ctinterp.io import read_ct
    from napari_ctinterp.metrics import fidelity
    from napari_ctinterp.model import load

    data = tmp_path / "data"
    _series(data, "case0")
    (data / "labels.csv").write_text("file,label,slices\ncase0,1,0:3\n")
    weights = _model_2_5d(tmp_path)
    table = _table(tmp_path, data, model=str(weights), methods=("BP",))
    assert table["error"].isna().all(), table["error"].dropna().tolist()
    clf = load(str(weights), device="cpu")
    vol = read_ct(data / "case0").hu
    for k in (0, 2, 3):  # the edges repeat their slice, as in the volume
        row = table[(table["slice_id"] == f"case0#z{k}") & (table["sign"] == "absolute")].iloc[0]
        p = clf.proba(clf.logits(clf.preprocess(vol, index=k)))[0].numpy()
        assert row["prediction"] == int(np.argmax(p))
        bp = np.abs(explain(clf, vol, index=k, methods=("BP",), variants=("plain",))["BP", "plain"])
        f = fidelity(clf, vol, bp[None], np.array([1]), step=25.0, bootstrap=1, index=[k])
        assert row["fidelity_continuous"] == pytest.approx(f.F_continuous, abs=1e-6)


def test_fidelity_of_a_2_5d_model_fills_the_slice_and_keeps_its_neighbours(tmp_path):
    from napari_ctinterp.metrics import fidelity
    from napari_ctinterp.model import load

    clf = load(str(_model_2_5d(tmp_path)), device="cpu")
    vol = np.random.default_rng(0).uniform(-1000, 1000, (5, 64, 64)).astype(np.float32)
    maps = np.random.default_rng(1).random((2, 64, 64)).astype(np.float32)
    f = fidelity(clf, vol, maps, np.array([1, 1]), step=50.0, bootstrap=1, index=[1, 4])
    for i, k in enumerate((1, 4)):
        x = clf.preprocess(vol, index=k)
        gone = x.clone()
        gone[:, 1] = clf.baseline(0.0)[:, 1]  # label 1 → black; only the centre channel
        want = int(clf.predicted(clf.logits(gone))[0])
        assert f.pred_mif[i, -1] == want
    with pytest.raises(ValueError, match="2.5D.*index="):
        fidelity(clf, vol[:2], maps, np.array([1, 1]))


def test_a_multi_label_mask_is_read_as_positive_and_the_table_says_so(tmp_path):
    """A mask from another tool (organ labels 2 and 4) selects and scores like its > 0 binary mask."""
    from napari_ctinterp.io import read_ct, save_mask
    from napari_ctinterp.phantom import make_slice

    data = tmp_path / "data"
    folder = _series(data, "case0")
    vol = read_ct(folder)
    binary = np.stack([make_slice(900 + z, contrast=True, phase="venous", size=64).mask for z in range(4)])
    labels = np.where(binary, 2, 0).astype(np.int16)
    labels[:, :, 32:] *= 2  # the right half of the evidence: label 4
    labels[0] = 0  # no evidence on slice 0: slices=masked leaves it out
    save_mask(labels, data / "labels_mask.nii.gz", spacing_mm=vol.spacing_mm, origin=vol.origin)
    save_mask(labels > 0, data / "binary_mask.nii.gz", spacing_mm=vol.spacing_mm, origin=vol.origin)
    (data / "labels.csv").write_text("file,label,mask,slices\ncase0,1,labels_mask.nii.gz,masked\n")
    multi = _table(tmp_path / "a", data, methods=("BP",))
    (data / "labels.csv").write_text("file,label,mask,slices\ncase0,1,binary_mask.nii.gz,masked\n")
    plain = _table(tmp_path / "b", data, methods=("BP",))
    assert sorted(set(multi["z"])) == [1, 2, 3] and multi["auc"].notna().all()
    np.testing.assert_allclose(multi["auc"], plain["auc"])
    assert multi["mask_note"].str.startswith("mask labels 2, 4: every label > 0").all()
    assert plain["mask_note"].isna().all()
