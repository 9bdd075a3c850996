"""Localisation of a 3D map against a 3D mask: one set of voxels (scikit-learn's AUC on the
flattened volume, max Dice over the 3D grid), 3D region ranks kept whole, per slice along z, and
voxels the model never saw left out."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from napari_ctinterp.metrics import localisation, localisation_volume, percent_grid, rank_map

SHAPE = (12, 20, 24)


@pytest.fixture(scope="module")
def volume():
    rng = np.random.default_rng(5)
    mask = np.zeros(SHAPE, bool)
    mask[3:7, 4:12, 6:15] = True  # a 3D lesion over four slices
    mask[9, 15:18, 2:5] = True
    maps = rng.gamma(1.0, 1.0, SHAPE) + 1.5 * mask * rng.random(SHAPE)
    return maps, mask


def _brute_max_dice(values: np.ndarray, mask: np.ndarray) -> float:
    """Keep the top ceil(k·N/100) voxels of the whole volume at every grid point; best Dice."""
    v, m = values.ravel(), mask.ravel()
    order = np.argsort(-v, kind="stable")
    best = 0.0
    for k in percent_grid():
        n_keep = int(np.ceil(k * v.size / 100))
        kept = np.zeros(v.size, bool)
        kept[order[:n_keep]] = True
        best = max(best, 2 * (kept & m).sum() / (n_keep + m.sum()))
    return best


@pytest.mark.parametrize("ties", [False, True])
def test_volume_auc_is_scikit_learn_on_the_flattened_volume(volume, ties):
    maps, mask = volume
    values = np.round(maps * 4) / 4 if ties else maps  # quantised: many ties, counted half
    res = localisation(values, mask)
    assert res.auc == pytest.approx(roc_auc_score(mask.ravel(), values.ravel()), abs=1e-12)
    assert res.kind == "pixel" and res.kept[-1] == mask.size


def test_max_dice_is_the_best_3d_dice_over_the_grid(volume):
    maps, mask = volume
    res = localisation(maps, mask)
    assert res.max_dice == pytest.approx(_brute_max_dice(maps, mask), abs=1e-12)  # no ties in these values
    # the same as localisation_volume's volume level (every slice explained)
    vol = localisation_volume(maps, mask).volume
    assert (vol.auc, vol.auc_grid, vol.max_dice, vol.k_star) == (res.auc, res.auc_grid, res.max_dice, res.k_star)


def test_per_slice_along_z_is_2d_localisation(volume):
    maps, mask = volume
    res = localisation_volume(maps, mask, seed=2)
    assert sorted(res.slices) == [3, 4, 5, 6, 9]
    for z, r in res.slices.items():
        assert r.auc == pytest.approx(roc_auc_score(mask[z].ravel(), maps[z].ravel()), abs=1e-12)
        assert r.max_dice == localisation(maps[z], mask[z], seed=2).max_dice


def _supervoxel_ranks(shape: tuple[int, int, int], side: int, seed: int) -> np.ndarray:
    """Cubes of ``side`` voxels, ranked 1… in a random order (a stand-in for 3D XRAI's ranks)."""
    z, y, x = np.indices(shape)
    label = (z // side) * 10_000 + (y // side) * 100 + (x // side)
    ids, inverse = np.unique(label, return_inverse=True)
    order = np.random.default_rng(seed).permutation(len(ids)) + 1
    return order[inverse.reshape(shape)]


def test_3d_region_ranks_are_kept_whole(volume):
    maps, mask = volume
    ranks = _supervoxel_ranks(SHAPE, 4, seed=1)
    res = localisation(maps, mask, regions=ranks)
    assert res.kind == "region"
    sizes = np.bincount(ranks.ravel())[1:]
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    assert np.isin(res.kept, bounds).all()  # every cut lies between whole supervoxels
    # the exact AUC ranks voxels by region rank (1 = most important), ties inside a region half
    assert res.auc == pytest.approx(roc_auc_score(mask.ravel(), -ranks.ravel().astype(float)), abs=1e-12)
    assert rank_map(maps, regions=ranks).cut.tolist() == res.kept.tolist()


def test_region_scope_volume_uses_the_3d_ranks_at_every_level(volume):
    maps, mask = volume
    ranks = _supervoxel_ranks(SHAPE, 4, seed=3)
    whole = localisation_volume(maps, mask, regions=ranks, region_scope="volume")
    ref = localisation(maps, mask, regions=ranks)
    assert whole.volume.kind == "region" and (whole.volume.auc, whole.volume.max_dice) == (ref.auc, ref.max_dice)
    for z, r in whole.slices.items():  # each slice: its cross-sections of the supervoxels, in the volume's order
        assert r.kind == "region" and r.auc == localisation(maps[z], mask[z], regions=ranks[z]).auc
    per_slice = localisation_volume(maps, mask, regions=ranks)  # 2D XRAI per slice: the volume ranks values
    assert per_slice.volume.kind == "pixel"
    with pytest.raises(ValueError, match="region_scope"):
        localisation_volume(maps, mask, regions=ranks, region_scope="voxels")


def test_voxels_the_model_never_saw_are_left_out(volume):
    maps, mask = volume
    outside = np.zeros(SHAPE, bool)
    outside[:2] = True  # cropped slices
    outside[:, :, 20:] = True  # and a band of every slice
    m = mask.copy()
    m[1, 5:8, 5:8] = True  # mask voxels where the model saw nothing
    m[4, 2:6, 21:23] = True
    a = np.where(outside, 0.0, maps)  # as explain leaves them: 0 outside the crop
    res = localisation_volume(a, m, outside=outside)
    inside = ~outside
    assert res.volume.auc == pytest.approx(roc_auc_score(m[inside], a[inside]), abs=1e-12)
    assert res.volume.max_dice == pytest.approx(_brute_max_dice(a[inside], m[inside]), abs=1e-12)
    assert "outside the model's input" in res.skipped[1] and 1 not in res.explained
    assert "17 mask voxel(s) outside" in res.skipped[-1]
    assert res.slices[4].auc == pytest.approx(roc_auc_score(m[4][inside[4]], a[4][inside[4]]), abs=1e-12)
    # NaN where the model saw nothing does not make a slice "not explained"
    nan_out = localisation_volume(np.where(outside, np.nan, maps), m, outside=outside)
    assert nan_out.volume.auc == res.volume.auc and sorted(nan_out.slices) == sorted(res.slices)
    with pytest.raises(ValueError, match="outside shape"):
        localisation_volume(a, m, outside=outside[:, :-1])


def test_bad_3d_inputs_are_said():
    with pytest.raises(ValueError, match=r"2D \(H, W\) or 3D \(Z, H, W\)"):
        localisation(np.random.default_rng(0).random((2, 3, 4, 5)), np.ones((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="differ"):
        localisation(np.random.default_rng(0).random((4, 5, 6)), np.ones((4, 5, 7)))
