"""Localisation metrics against scikit-learn and brute force; properties; clear refusals."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import roc_auc_score

from napari_ctinterp.metrics import exact_auc, localisation, percent_grid


@settings(max_examples=60, deadline=None)
@given(st.integers(4, 30), st.integers(4, 30), st.integers(0, 2**31 - 1), st.booleans())
def test_exact_auc_equals_sklearn(h, w, seed, ties):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(h, w))
    if ties:
        values = np.round(values)
    mask = rng.random((h, w)) < rng.uniform(0.05, 0.95)
    if mask.all() or not mask.any() or values.max() == values.min():
        return
    assert localisation(values, mask).auc == pytest.approx(roc_auc_score(mask.ravel(), values.ravel()), abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, (12, 9), elements=st.floats(-5, 5)), st.integers(0, 2**31 - 1))
def test_dice_curve_equals_brute_force(values, seed):
    rng = np.random.default_rng(seed)
    mask = rng.random(values.shape) < 0.3
    if mask.all() or not mask.any() or values.max() == values.min():
        return
    res = localisation(values, mask, seed=3)
    n = values.size
    tie = np.random.default_rng(3).random(n)
    for k, tpr, fpr, dice in zip(res.k, res.tpr, res.fpr, res.dice):
        n_k = int(np.ceil(k * n / 100))
        top = sorted(range(n), key=lambda i: (-values.ravel()[i], tie[i]))[:n_k]
        kept = np.zeros(n, bool)
        kept[top] = True
        tp = int((kept & mask.ravel()).sum())
        assert tpr == pytest.approx(tp / mask.sum())
        assert fpr == pytest.approx((n_k - tp) / (n - mask.sum()))
        assert dice == pytest.approx(2 * tp / (n_k + mask.sum()))


def test_auc_invariant_to_monotone_transforms():
    rng = np.random.default_rng(0)
    v = rng.exponential(size=(40, 40))
    m = rng.random((40, 40)) < 0.2
    base = localisation(v, m)
    for t in (np.sqrt(v), np.log1p(v), 3 * v + 7):
        other = localisation(t, m)
        assert other.auc == pytest.approx(base.auc, abs=1e-12)
        assert np.array_equal(other.dice, base.dice)


def test_perfect_map_gives_auc_1_and_dice_1_on_the_grid():
    m = np.zeros((50, 40), bool)
    m[10:20, 5:25] = True  # 200 of 2000 pixels = 10 %, a grid point
    v = m.astype(float) + 0.01 * np.random.default_rng(1).random(m.shape)
    res = localisation(v, m)
    assert res.auc == 1.0 and res.auc_grid == pytest.approx(1.0)
    assert res.max_dice == pytest.approx(1.0) and res.k_star == 10.0
    assert res.precision_at_mask_size == 1.0 and res.relevance_mass > 0.9


def test_random_map_is_near_the_random_baseline():
    rng = np.random.default_rng(5)
    m = np.zeros((128, 128), bool)
    m[30:70, 40:90] = True
    res = localisation(rng.random(m.shape), m)
    assert abs(res.auc - 0.5) < 0.02 and abs(res.auc_grid - 0.5) < 0.02
    assert np.max(np.abs(res.dice - res.random_dice)) < 0.05
    assert len(res.k) == len(percent_grid()) == 111 and res.k[0] == 0 and res.k[-1] == 100


def test_region_maps_keep_regions_whole():
    ranks = np.repeat(np.arange(1, 5), 25).reshape(10, 10)  # 4 regions of 25 %
    m = ranks == 1
    res = localisation(-ranks.astype(float), m, regions=ranks)
    assert set(res.kept.tolist()) <= {0, 25, 50, 75, 100}
    assert res.auc == 1.0 and res.max_dice == 1.0 and res.k_star == 25.0 and res.kind == "region"


def test_speed_shape_of_a_512_map_is_one_sort():
    # Not a timing assertion: checks the vectorised path handles 512² and the grid in one call.
    rng = np.random.default_rng(0)
    res = localisation(rng.random((512, 512)), rng.random((512, 512)) < 0.1)
    assert res.tpr.shape == (111,) and np.all(np.diff(res.tpr) >= 0)


@pytest.mark.parametrize("mask,values,match", [
    (np.zeros((8, 8)), np.random.default_rng(0).random((8, 8)), "mask is empty"),
    (np.ones((8, 8)), np.random.default_rng(0).random((8, 8)), "covers the whole image"),
    (np.eye(8), np.ones((8, 8)), "constant"),
    (np.eye(8), np.full((8, 8), np.nan), "NaN"),
    (np.eye(8), np.zeros((8, 9)), "differ"),
])
def test_bad_inputs_get_clear_messages(mask, values, match):
    with pytest.raises(ValueError, match=match):
        localisation(values, mask)


def test_exact_auc_function_direct():
    assert exact_auc(np.array([[0.1, 0.9], [0.4, 0.4]]), np.array([[0, 1], [1, 0]])) == pytest.approx(0.875)


def test_ranking_once_then_any_mask_equals_scikit_learn():
    from sklearn.metrics import roc_auc_score

    from napari_ctinterp.metrics import rank_map

    rng = np.random.default_rng(3)
    values = np.round(rng.random((48, 48)), 2)  # ties on purpose
    regions = rng.integers(1, 20, (48, 48))
    for regs in (None, regions):
        ranking = rank_map(values, regions=regs)
        for _ in range(3):
            mask = rng.random((48, 48)) < rng.uniform(0.05, 0.5)
            fast = localisation(values, mask, ranking=ranking)
            slow = localisation(values, mask, regions=regs)
            assert fast.auc == slow.auc and np.array_equal(fast.dice, slow.dice)
            if regs is None:
                assert np.isclose(fast.auc, roc_auc_score(mask.ravel(), values.ravel()))
