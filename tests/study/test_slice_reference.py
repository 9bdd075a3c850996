"""A study slice's results do not move when the study gets faster: a 1-slice study at small
settings (all five methods × three variants, pixel and region maps) against the table stored from
the per-map fidelity code (``data/slice_reference.json``, made at commit ea4266f)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from napari_ctinterp.metrics import pooled_F
from napari_ctinterp.study import StudyConfig, run_study

REFERENCE = Path(__file__).parent / "data" / "slice_reference.json"
SETTINGS = dict(slices=1, methods=("BP", "IGB", "IGBW", "EG", "D"), variants=("plain", "SG", "SG2"), steps=2,
                samples=2, sg_samples=2, xrai="fast", fidelity_step=20.0, metrics=())


def test_one_slice_study_equals_the_stored_table(tmp_path):
    ref = json.loads(REFERENCE.read_text())
    run_dir = run_study(StudyConfig(**SETTINGS), tmp_path, device="cpu")
    (path,) = (run_dir / "slices").glob("*.json")
    got = json.loads(path.read_text())
    assert got["error"] is None and got["slice_id"] == ref["slice_id"]
    assert got["prediction"] == ref["prediction"] and got["target"] == ref["target"]
    assert np.allclose(got["proba"], ref["proba"], atol=1e-5)
    key = ("method", "variant", "map_type", "sign")
    rows = {tuple(r[k] for k in key): r for r in got["rows"]}
    assert set(rows) == {tuple(r[k] for k in key) for r in ref["rows"]} and len(rows) == 62
    for want in ref["rows"]:
        have = rows[tuple(want[k] for k in key)]
        for col in ("auc", "auc_grid", "max_dice", "relevance_mass", "fidelity_continuous"):
            assert np.isclose(have[col], want[col], rtol=0, atol=1e-5), (want, col, have[col])
        assert have["k_star"] == want["k_star"]
    assert set(got["fidelity"]) == set(ref["fidelity"])
    p = np.arange(0, 100.01, SETTINGS["fidelity_step"])
    label = np.array([ref["label"]])
    for name, want in ref["fidelity"].items():
        have = got["fidelity"][name]
        assert have["pred_mif"] == want["pred_mif"] and have["pred_lif"] == want["pred_lif"], name
        for curve in ("prob_mif", "prob_lif"):
            assert np.allclose(have[curve], want[curve], rtol=0, atol=1e-5), (name, curve)
        f_have = pooled_F(np.array([have["pred_mif"]]), np.array([have["pred_lif"]]), label, p)[2]
        f_want = pooled_F(np.array([want["pred_mif"]]), np.array([want["pred_lif"]]), label, p)[2]
        assert f_have == f_want, name
