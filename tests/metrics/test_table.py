"""MapScorer: re-scoring against a repainted mask reuses rankings and never re-runs fidelity."""

from __future__ import annotations

import numpy as np

from napari_ctinterp.metrics import localisation
from napari_ctinterp.metrics.table import MapScorer, fingerprint


class CountingClassifier:
    """Stands in for a Classifier in the cache key only (fidelity itself is patched)."""

    source = "fake"
    module = None

    class card:  # noqa: N801
        short_hash = "0123456789ab"


def test_scorer_reuses_rankings_and_fidelity_and_matches_localisation(monkeypatch):
    import napari_ctinterp.metrics.table as table

    calls = []

    class FakeFid:
        F_continuous = 0.25

    monkeypatch.setattr(table, "fidelity", lambda *a, **k: calls.append(1) or FakeFid())
    rng = np.random.default_rng(0)
    maps = [rng.standard_normal((64, 64)).astype(np.float32) for _ in range(3)]
    hu = rng.uniform(-1000, 1000, (64, 64)).astype(np.float32)
    mask_a = np.zeros((64, 64), bool)
    mask_a[10:30, 10:30] = True
    mask_b = np.zeros((64, 64), bool)
    mask_b[20:50, 5:25] = True
    scorer = MapScorer()
    clf = CountingClassifier()
    for mask in (mask_a, mask_b):
        for m in maps:
            s = scorer.score(("BP", "plain", "pixel", m, None), mask, clf=clf, hu=hu, label=1)
            ref = localisation(np.abs(m), mask)
            assert s.auc == ref.auc and s.max_dice == ref.max_dice and s.fidelity == 0.25
    assert len(calls) == 3 and scorer.fidelity_runs == 3  # once per map, not per mask
    scorer.score(("BP", "plain", "pixel", maps[0], None), mask_a, clf=clf, hu=hu, label=0)
    assert len(calls) == 4  # another class is another fidelity
    scorer.score(("BP", "plain", "pixel", maps[0], None), mask_a, clf=clf, hu=hu + 1, label=1)
    assert len(calls) == 5  # another slice too


def test_fingerprint_sees_content_shape_and_dtype():
    a = np.arange(6, dtype=np.float32)
    assert fingerprint(a) == fingerprint(a.copy())
    assert fingerprint(a) != fingerprint(a.reshape(2, 3))
    assert fingerprint(a) != fingerprint(a.astype(np.float64))
    b = a.copy()
    b[3] += 1e-6
    assert fingerprint(a) != fingerprint(b)
