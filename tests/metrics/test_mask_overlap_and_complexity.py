"""AUPRC, IoU at Otsu's level, top-k intersection, sparseness and complexity: known answers, and
equal to scikit-learn, scikit-image and Quantus on the same maps (2D and 3D)."""

from __future__ import annotations

import numpy as np
import pytest
import quantus
from skimage.filters import threshold_otsu
from sklearn.metrics import average_precision_score

from napari_ctinterp.metrics.complexity import complexity, sparseness
from napari_ctinterp.metrics.mask_overlap import auprc, iou_otsu, topk_intersection


def _cases(shape, n=5, seed=0):
    """Random signed maps with the mask's pixels raised from hidden to outstanding, and masks."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, *shape), bool)
    for i in range(n):
        lo = [rng.integers(1, s // 2) for s in shape]
        masks[i][tuple(slice(a, a + max(2, s // (3 + i))) for a, s in zip(lo, shape))] = True
    amp = np.array([0.0, 0.5, 2.0, 8.0, 1.0])[:n].reshape(n, *([1] * len(shape)))
    maps = rng.normal(size=masks.shape) + amp * masks * rng.random(masks.shape)
    return maps.astype(np.float32), masks


def _quantus(metric, maps, masks):
    """Quantus on the maps; a 3D map as a 2D one of (Z·H, W) pixels (Quantus takes 1D / 2D inputs;
    these metrics flatten the map, so the layout does not change them)."""
    n = len(maps)
    maps, masks = maps.reshape(n, -1, maps.shape[-1]), masks.reshape(n, -1, masks.shape[-1])
    x = np.zeros((n, 1, *maps.shape[1:]), np.float32)
    return np.asarray(metric(model=None, x_batch=x, y_batch=np.zeros(n, int), a_batch=maps[:, None],
                             s_batch=masks[:, None].astype(np.float32)), float)


def test_known_answers():
    m = np.zeros((20, 20), bool)
    m[5:10, 5:10] = True
    assert auprc(m * 3.0, m) == 1.0 and iou_otsu(m * 3.0 + 0.1, m) == 1.0 and topk_intersection(m * 1.0, m, k=25) == 1
    assert auprc(np.ones(m.shape), m) == pytest.approx(m.mean())  # one threshold: precision = the mask's share
    assert topk_intersection(np.ones(m.shape), m, k=10) == pytest.approx(m.mean())  # ties: the expected share
    assert np.isnan(iou_otsu(np.ones(m.shape), m)) and np.isnan(auprc(np.ones(m.shape), np.zeros_like(m)))
    one_hot = np.zeros(400)
    one_hot[7] = 5.0
    assert sparseness(np.ones(400)) == pytest.approx(0.0, abs=1e-12) and sparseness(one_hot) == pytest.approx(
        1 - 1 / 400)
    assert complexity(np.ones(400)) == pytest.approx(np.log(400)) and complexity(-one_hot) == 0.0
    assert np.isnan(sparseness(np.zeros(9))) and np.isnan(complexity(np.zeros(9)))


@pytest.mark.parametrize("shape", [(48, 40), (10, 24, 20)])
def test_equal_to_scikit_learn_scikit_image_and_quantus(shape):
    """scikit-learn ``average_precision_score``; scikit-image Otsu + IoU (M3d-CAM's ``iou``);
    Quantus ``TopKIntersection(k=60, abs=True)``, ``Sparseness(abs=True)`` (its 1e-7 offset: rel
    1e-5) and ``Complexity(abs=True)``, each with ``normalise=True``, their default (a division by
    the max, which none of these ratios sees)."""
    maps, masks = _cases(shape)
    q_topk = _quantus(quantus.TopKIntersection(k=60, abs=True, disable_warnings=True), maps, masks)
    q_sparse = _quantus(quantus.Sparseness(abs=True, disable_warnings=True), maps, masks)
    q_complex = _quantus(quantus.Complexity(abs=True, disable_warnings=True), maps, masks)
    for i, (a, m) in enumerate(zip(maps, masks)):
        assert auprc(a, m) == pytest.approx(average_precision_score(m.ravel(), np.abs(a).ravel()), abs=1e-12)
        kept = np.abs(a) > threshold_otsu(np.abs(a))
        assert iou_otsu(a, m) == pytest.approx((kept & m).sum() / (kept | m).sum(), abs=1e-12)
        assert topk_intersection(a, m, k=60) == pytest.approx(q_topk[i], abs=1e-12)
        assert sparseness(a) == pytest.approx(q_sparse[i], rel=1e-5)
        assert complexity(a) == pytest.approx(q_complex[i], rel=1e-6)
    assert len(set(np.round(q_topk, 6))) > 2  # the maps differ: the comparison is not of one value


def test_ties_in_a_region_map_are_one_threshold_for_auprc():
    """An XRAI region map is constant per region: its pixels of one value are one threshold, as in
    scikit-learn, whatever their order in the image."""
    rng = np.random.default_rng(1)
    regions = rng.integers(0, 6, size=(30, 30)).astype(np.float64)
    mask = rng.random((30, 30)) < 0.2
    assert auprc(regions, mask) == pytest.approx(average_precision_score(mask.ravel(), regions.ravel()), abs=1e-12)
    assert auprc(regions[::-1], mask[::-1]) == pytest.approx(auprc(regions, mask), abs=1e-12)
