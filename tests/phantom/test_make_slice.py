"""Phantom: determinism, matched pairs, tissue HU ranges (REFERENCE.md), mask definition."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_ctinterp.phantom import LABELS, MASK_MIN_ENHANCEMENT_HU, PHASES, make_slice


def test_same_seed_same_slice_and_different_seeds_differ():
    a, b = make_slice(11, level=0.6), make_slice(11, level=0.6)
    assert np.array_equal(a.hu, b.hu) and np.array_equal(a.mask, b.mask)
    assert np.array_equal(a.labels, b.labels) and a.meta == b.meta
    c = make_slice(12, level=0.6)
    body_a, body_c = a.labels > 0, c.labels > 0
    iou = (body_a & body_c).sum() / (body_a | body_c).sum()
    assert iou < 0.97, "two seeds gave the same body outline"
    assert not np.array_equal(a.labels == LABELS["lung"], c.labels == LABELS["lung"])


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("noise", ["fast", "fbp"])
def test_pair_differs_exactly_by_contrast_and_mask_is_where_contrast_shows(phase, noise):
    size = 512 if noise == "fast" else 256
    plain = make_slice(5, contrast=False, phase=phase, level=0.45, noise=noise, size=size)
    con = make_slice(5, contrast=True, phase=phase, level=0.45, noise=noise, size=size)
    assert np.array_equal(plain.labels, con.labels), "anatomy must not depend on contrast"
    assert np.array_equal(plain.mask, con.mask), "the mask is given identically for both classes"
    diff = con.hu.astype(np.float64) - plain.hu.astype(np.float64)
    assert diff.min() > -1e-3, "contrast never lowers HU"
    # Noise is identical: the difference has no noise, so far from any enhancing structure it is 0.
    enhancing = ndimage.binary_dilation(diff > 1e-3, iterations=2)
    assert np.abs(diff[~enhancing]).max() < 1e-3
    boundary = np.abs(diff - MASK_MIN_ENHANCEMENT_HU) < 1e-2
    assert np.array_equal(con.mask[~boundary], (diff >= MASK_MIN_ENHANCEMENT_HU)[~boundary])
    assert con.mask.sum() > 200


def _interior_median(s, name: str) -> float:
    region = ndimage.binary_erosion(s.labels == LABELS[name], iterations=2)
    assert region.sum() > 20, f"{name} absent or too small"
    return float(np.median(s.hu[region]))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_native_and_enhanced_hu_ranges_follow_reference(seed):
    kw = dict(level=0.62, noise="none", arms_down=False)
    plain = make_slice(seed, contrast=False, phase="arterial", **kw)
    assert -120 <= _interior_median(plain, "fat") <= -80
    assert 40 <= _interior_median(plain, "muscle") <= 60
    assert -900 <= _interior_median(plain, "lung") <= -800
    assert 35 <= _interior_median(plain, "aorta") <= 55
    assert 35 <= _interior_median(plain, "myocardium") <= 50
    assert 700 <= float(np.percentile(plain.hu[plain.labels == LABELS["bone"]], 90)) <= 1900
    assert 150 <= _interior_median(plain, "marrow") <= 350
    art = make_slice(seed, contrast=True, phase="arterial", **kw)
    assert 250 <= _interior_median(art, "aorta") <= 450
    assert 10 <= _interior_median(art, "muscle") - _interior_median(plain, "muscle") <= 25
    assert 90 <= _interior_median(art, "myocardium") <= 145
    ven = make_slice(seed, contrast=True, phase="venous", **kw)
    for pool in ("aorta", "left_ventricle", "right_ventricle"):
        assert 140 <= _interior_median(ven, pool) <= 210
    pul = make_slice(seed, contrast=True, phase="pulmonary", level=0.42, noise="none", arms_down=False)
    assert 300 <= _interior_median(pul, "pulmonary_artery") <= 550


def test_abdomen_and_inlet_levels():
    abd = make_slice(3, contrast=True, phase="venous", level=0.95, noise="none")
    assert 100 <= _interior_median(abd, "liver") <= 135
    assert (abd.labels == LABELS["spleen"]).any() and (abd.labels == LABELS["stomach"]).any()
    assert not (abd.labels == LABELS["myocardium"]).any()
    inlet = make_slice(3, contrast=True, phase="arterial", level=0.04, noise="none")
    for name in ("arch_branch", "brachiocephalic_vein", "thyroid"):
        assert (inlet.labels == LABELS[name]).any(), name
    assert not (inlet.labels == LABELS["liver"]).any()


def test_noise_level_and_confounders_in_both_classes():
    s = make_slice(8, contrast=False, level=0.6, noise_sd=15.0)
    air = ndimage.binary_erosion(s.labels == LABELS["background"], iterations=3)
    assert 13.0 <= s.hu[air].std() <= 17.0
    dense = sum(((make_slice(k, contrast=False).hu > 300).sum() > 50) for k in range(4))
    assert dense == 4, "bone or calcification must appear without contrast too"


def test_bad_arguments_get_clear_errors():
    with pytest.raises(ValueError, match="phase must be one of"):
        make_slice(1, phase="portal")
    with pytest.raises(ValueError, match="level must lie in"):
        make_slice(1, level=1.5)
    with pytest.raises(ValueError, match="noise must be"):
        make_slice(1, noise="poisson")
