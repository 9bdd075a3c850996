"""``localisation_volume``: per slice equal to ``localisation``, the volume scored as one set of voxels."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from napari_ctinterp.metrics import localisation, localisation_volume, percent_grid


@pytest.fixture(scope="module")
def volume():
    rng = np.random.default_rng(0)
    z, h, w = 6, 40, 48
    mask = np.zeros((z, h, w), bool)
    mask[1, 10:20, 10:25] = True
    mask[2, 5:30, 30:40] = True
    mask[4, 0:8, 0:8] = True
    maps = rng.gamma(1.0, 1.0, (z, h, w)) + 2.0 * mask * rng.random((z, h, w))
    maps[3] = np.nan  # slice 3 was not explained
    return maps, mask


def test_each_slice_equals_localisation_of_that_slice(volume):
    maps, mask = volume
    res = localisation_volume(maps, mask, seed=3)
    assert sorted(res.slices) == [1, 2, 4] and res.explained == [0, 1, 2, 4, 5]
    for z, r in res.slices.items():
        ref = localisation(maps[z], mask[z], seed=3)
        assert (r.auc, r.auc_grid, r.max_dice, r.k_star) == (ref.auc, ref.auc_grid, ref.max_dice, ref.k_star)
    assert [row["z"] for row in res.table()] == [1, 2, 4]


def test_volume_auc_is_scikit_learn_on_the_flattened_volume_and_dice_is_3d(volume):
    maps, mask = volume
    res = localisation_volume(maps, mask)
    keep = [0, 1, 2, 4, 5]
    v, m = maps[keep].ravel(), mask[keep].ravel()
    assert res.volume.auc == pytest.approx(roc_auc_score(m, v), abs=1e-12)
    # max Dice over the 3D grid, by hand: keep the top ceil(k·N/100) voxels of the whole volume
    order = np.argsort(-v, kind="stable")
    best = 0.0
    for k in percent_grid():
        n_keep = int(np.ceil(k * v.size / 100))
        kept = np.zeros(v.size, bool)
        kept[order[:n_keep]] = True
        best = max(best, 2 * (kept & m).sum() / (n_keep + m.sum()))
    assert res.volume.max_dice == pytest.approx(best, abs=1e-12)  # no ties in these values


def test_slices_not_explained_and_bad_input_are_said(volume):
    maps, mask = volume
    mask = mask.copy()
    mask[3, 2:4, 2:4] = True
    res = localisation_volume(maps, mask)
    assert "not explained" in res.skipped[3]
    with pytest.raises(ValueError, match="same shape.*load_mask"):
        localisation_volume(maps, mask[:, :-1])
    empty = localisation_volume(maps, np.zeros_like(mask))
    assert empty.slices == {} and empty.volume is None
