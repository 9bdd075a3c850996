"""The paper's F pooled over a study's slices: its bootstrap draws are paired across maps (the same
resamples for every map: a map against its copy differs by exactly 0) and its interval holds F."""

from __future__ import annotations

import numpy as np

from napari_ctinterp.metrics import pooled_F
from napari_ctinterp.metrics.fidelity import fidelity_grid
from napari_ctinterp.study.pooled_fidelity import fidelity_draws, fidelity_table


def _results(n: int = 30, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    p = fidelity_grid(10)
    out = []
    for i in range(n):
        label = i % 2
        flip = rng.integers(1, len(p))  # the level from which MiF answers wrong
        mif = [label if j < flip else 1 - label for j in range(len(p))]
        lif = [label if j < len(p) - 1 or rng.random() < 0.5 else 1 - label for j in range(len(p))]
        fid = {"A|plain|pixel|absolute": {"pred_mif": mif, "pred_lif": lif},
               "B|plain|pixel|absolute": {"pred_mif": mif, "pred_lif": lif},  # a copy of A
               "C|plain|pixel|absolute": {"pred_mif": [1 - label] * len(p), "pred_lif": lif}}
        out.append({"error": None, "label": label, "fidelity": fid})
    return out + [{"error": "unreadable", "label": 0}]


def test_draws_are_paired_and_the_interval_holds_F():
    results = _results()
    draws = fidelity_draws(results, 10, seed=4, n_boot=300)
    assert set(draws) == {"A|plain|pixel|absolute", "B|plain|pixel|absolute", "C|plain|pixel|absolute"}
    np.testing.assert_array_equal(draws["A|plain|pixel|absolute"], draws["B|plain|pixel|absolute"])
    assert np.std(draws["A|plain|pixel|absolute"]) > 0
    assert np.all(draws["C|plain|pixel|absolute"] >= draws["A|plain|pixel|absolute"] - 1e-12)  # C flips at once
    table = fidelity_table(results, 10, seed=4).set_index("method")
    ok = [r for r in results if not r["error"]]
    labels = np.array([r["label"] for r in ok])
    for m in "ABC":
        key = f"{m}|plain|pixel|absolute"
        f = pooled_F(np.array([r["fidelity"][key]["pred_mif"] for r in ok]),
                     np.array([r["fidelity"][key]["pred_lif"] for r in ok]), labels, fidelity_grid(10))[2]
        assert table.loc[m, "F"] == f and table.loc[m, "F_ci_low"] <= f <= table.loc[m, "F_ci_high"]
        assert table.loc[m, "n"] == 30
    assert fidelity_table(results, 10, seed=4).equals(fidelity_table(results, 10, seed=4))  # seeded
