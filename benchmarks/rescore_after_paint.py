"""Re-scoring 30 maps of a slice after the mask is repainted: the Metrics panel's path
(``MapScorer`` with kept rankings, no model) against scoring from scratch (``localisation``) and
against scikit-learn's ``roc_auc_score`` alone (the reference for the exact AUC), in one run.

    python benchmarks/rescore_after_paint.py
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.metrics import roc_auc_score

from napari_ctinterp.metrics import localisation
from napari_ctinterp.metrics.table import MapScorer
from napari_ctinterp.phantom import make_slice


def main(n_maps: int = 30, repeats: int = 3) -> None:
    s = make_slice(2024, contrast=True, phase="arterial", level=0.58)
    rng = np.random.default_rng(0)
    maps = [np.abs(rng.standard_normal(s.hu.shape)).astype(np.float32) for _ in range(n_maps)]
    masks = [s.mask.copy() for _ in range(repeats)]
    for k, m in enumerate(masks):  # a brush stroke each time
        m[100 + 20 * k: 130 + 20 * k, 100:140] = True
    scorer = MapScorer()
    for mp in maps:  # the first Compute: rankings made once
        scorer.score(("BP", "plain", "pixel", mp, None), s.mask)
    t_cached, t_scratch, t_sklearn = [], [], []
    for m in masks:
        t = time.perf_counter()
        a = [scorer.score(("BP", "plain", "pixel", mp, None), m).auc for mp in maps]
        t_cached.append(time.perf_counter() - t)
        t = time.perf_counter()
        b = [localisation(mp, m).auc for mp in maps]
        t_scratch.append(time.perf_counter() - t)
        t = time.perf_counter()
        c = [roc_auc_score(m.ravel(), mp.ravel()) for mp in maps]
        t_sklearn.append(time.perf_counter() - t)
        assert np.allclose(a, b) and np.allclose(a, c)
    best = min(t_cached), min(t_scratch), min(t_sklearn)
    print(f"{n_maps} maps of 512², after a stroke (best of {repeats}):")
    print(f"  panel path (kept rankings, all curves): {best[0] * 1000:7.1f} ms  ({best[0] / n_maps * 1000:.1f} ms/map)")
    print(f"  localisation from scratch:              {best[1] * 1000:7.1f} ms  → {best[1] / best[0]:.1f}× slower")
    print(f"  scikit-learn roc_auc_score only:        {best[2] * 1000:7.1f} ms  → {best[2] / best[0]:.1f}× slower")


if __name__ == "__main__":
    main()
