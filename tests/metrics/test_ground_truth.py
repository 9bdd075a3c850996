"""Ground-truth faithfulness against a planted marker: known answers, Quantus' and scikit-learn's
definitions on the same inputs, the pointing game's tolerance in mm, the paired truth score."""

from __future__ import annotations

import numpy as np
import pytest
import quantus
from sklearn.metrics import roc_auc_score

from napari_ctinterp.metrics.ground_truth import ground_truth_scores, truth_score
from napari_ctinterp.phantom import make_slice


@pytest.fixture(scope="module")
def marked():
    return make_slice(4, size=96, marker="text")


def test_a_map_equal_to_the_marker_and_a_uniform_map(marked):
    m = marked.marker_mask
    exact = ground_truth_scores(m.astype(float), m)
    assert (exact.relevance_mass, exact.relevance_rank, exact.marker_auc, exact.pointing_hit) == (1, 1, 1, 1)
    assert exact.pointing_distance_mm == 0
    flat = ground_truth_scores(np.full(m.shape, 0.3), m)
    assert flat.relevance_mass == pytest.approx(m.mean()) and flat.marker_auc == pytest.approx(0.5)
    # the sign of the map does not matter: scored as |map|
    assert ground_truth_scores(-m.astype(float), m) == exact


def test_equal_to_quantus_and_scikit_learn_on_the_same_maps(marked):
    """Quantus' RelevanceMassAccuracy(abs=True), RelevanceRankAccuracy(abs=True) and
    PointingGame(abs=True) (each normalise=True, their default: a division by the max, which no
    ratio sees), on 6 random signed maps (no ties) against markers of the three kinds."""
    rng = np.random.default_rng(0)
    masks = np.stack([make_slice(s, size=64, marker=k).marker_mask for s, k in
                      zip(range(6), ["letter", "tube", "text"] * 2)])
    amp = np.array([0.0, 1.0, 8.0, 0.0, 8.0, 2.0])[:, None, None]  # marker from hidden to outstanding
    maps = rng.normal(size=masks.shape) + amp * masks * rng.random(masks.shape)
    x = np.zeros((6, 1, 64, 64), np.float32)
    kw = dict(model=None, x_batch=x, y_batch=np.zeros(6, int), a_batch=maps[:, None].astype(np.float32),
              s_batch=masks[:, None].astype(np.float32))
    q_mass = quantus.RelevanceMassAccuracy(abs=True, disable_warnings=True)(**kw)
    q_rank = quantus.RelevanceRankAccuracy(abs=True, disable_warnings=True)(**kw)
    q_point = quantus.PointingGame(abs=True, disable_warnings=True)(**kw)
    for i in range(6):
        ours = ground_truth_scores(maps[i].astype(np.float32), masks[i])
        assert ours.relevance_mass == pytest.approx(q_mass[i], rel=1e-5)
        assert ours.relevance_rank == pytest.approx(q_rank[i], abs=1e-12)
        assert ours.pointing_hit == float(q_point[i])
        assert ours.marker_auc == pytest.approx(roc_auc_score(masks[i].ravel(), np.abs(maps[i]).ravel()), abs=1e-12)
    assert set(np.asarray(q_point, float)) == {0.0, 1.0}  # hits and misses among the maps: both compared


def test_the_pointing_game_tolerance_is_in_millimetres():
    m = np.zeros((20, 20), bool)
    m[10, 10] = True
    a = np.zeros((20, 20))
    a[10, 13] = 1.0  # 3 pixels from the marker
    near = ground_truth_scores(a, m, spacing_mm=(0.7, 0.7), tolerance_mm=2.5)
    assert near.pointing_hit == 1.0 and near.pointing_distance_mm == pytest.approx(2.1)
    assert ground_truth_scores(a, m, spacing_mm=(0.7, 0.7), tolerance_mm=2.0).pointing_hit == 0.0
    vol = np.zeros((4, 8, 8), bool)
    vol[1, 4, 4] = True
    av = np.zeros((4, 8, 8))
    av[3, 4, 4] = 1.0  # two slices of 5 mm away
    assert ground_truth_scores(av, vol, spacing_mm=(5, 0.7, 0.7)).pointing_distance_mm == pytest.approx(10.0)
    with pytest.raises(ValueError, match="differ in shape"):
        ground_truth_scores(a, vol)


def test_the_truth_score_is_the_paired_difference_with_a_seeded_interval():
    rng = np.random.default_rng(1)
    blind = rng.random(40)
    same = truth_score(blind, blind)
    assert same.mean == 0 and same.low == 0 and same.high == 0 and same.n == 40
    shortcut = blind + 0.3 + 0.05 * rng.normal(size=40)
    up = truth_score(shortcut, blind, seed=3)
    assert 0.25 < up.low < up.mean < up.high < 0.35
    assert truth_score(shortcut, blind, seed=3) == up  # seeded
    assert truth_score([np.nan, 0.5], [0.2, 0.1]).n == 1
    with pytest.raises(ValueError, match="same slices"):
        truth_score([1.0, 2.0], [1.0])


def test_an_all_zero_map_points_nowhere_and_ties_share_their_places():
    m = np.zeros((10, 10), bool)
    m[0, :2] = True  # the marker at the top left
    zero = ground_truth_scores(np.zeros((10, 10)), m)
    assert np.isnan(zero.pointing_hit) and np.isnan(zero.relevance_rank) and np.isnan(zero.relevance_mass)
    region = np.zeros((10, 10))
    region[:5] = 1.0  # one region, the top half, holds the marker and 48 other pixels
    top = ground_truth_scores(region, m).relevance_rank
    m_low = np.zeros((10, 10), bool)
    m_low[4, 3:5] = True  # the same marker lower in the same region
    assert top == ground_truth_scores(region, m_low).relevance_rank == pytest.approx(2 / 50)  # not where it lies
    nan_map = np.where(m, 1.0, np.nan)
    assert ground_truth_scores(nan_map, m).pointing_hit == 1.0  # NaN pixels are no maximum


def test_the_viewers_marker_check_equals_mass_and_pointing(marked):
    """``MarkerCheck`` (one distance map for every map of a slice) gives the same mass and pointing
    game as ``ground_truth_scores`` for a random map, one peaked on the marker, one whose only
    pixel lies two rows off it, and a zero map."""
    from napari_ctinterp.metrics import POINTING_TOLERANCE_MM, MarkerCheck

    s = marked
    rng = np.random.default_rng(3)
    check = MarkerCheck(s.marker_mask, spacing_mm=s.spacing_mm)
    near = np.zeros(s.marker_mask.shape)
    ys, xs = np.nonzero(s.marker_mask)
    near[ys[0] - 2, xs[0]] = 1.0  # two rows above the marker's top row: outside it, a distance > 0
    for values in (rng.random(s.marker_mask.shape), s.marker_mask * 5.0 + rng.random(s.marker_mask.shape), near):
        ref = ground_truth_scores(values, s.marker_mask, spacing_mm=s.spacing_mm, tolerance_mm=POINTING_TOLERANCE_MM)
        got = check(values)
        assert got.mass == pytest.approx(ref.relevance_mass, rel=1e-12)
        assert (got.hit, got.distance_mm) == (ref.pointing_hit, pytest.approx(ref.pointing_distance_mm))
    assert check(near).distance_mm == pytest.approx(2 * s.spacing_mm[0])
    assert check(s.marker_mask * 5.0).hit == 1.0 and check(s.marker_mask * 5.0).mass == 1.0
    zero = check(np.zeros(s.marker_mask.shape))
    assert np.isnan(zero.mass) and np.isnan(zero.hit)
    with pytest.raises(ValueError, match="empty"):
        MarkerCheck(np.zeros((4, 4), bool))
