"""XRAI equals PAIR ``saliency`` 0.2.1: segmentation masks, full and fast region maps, edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from saliency.core.xrai import XRAI, XRAIParameters, _get_segments_felzenszwalb

from napari_ctinterp import xrai
from napari_ctinterp.phantom import make_slice


def _image(kind: str) -> np.ndarray:
    if kind == "phantom":
        return make_slice(31, size=128, level=0.6).hu
    if kind == "non-square":
        return make_slice(32, size=160, level=0.4).hu[20:116, :]
    return np.random.default_rng(0).normal(size=(64, 72)).cumsum(0).astype(np.float32)


def _pair(image, attr, masks, algorithm):
    params = XRAIParameters(algorithm=algorithm, return_xrai_segments=True, flatten_xrai_segments=True)
    out = XRAI().GetMaskWithDetails(image, call_model_function=None, segments=masks, base_attribution=attr,
                                    extra_parameters=params)
    return out.attribution_mask, out.segments


@pytest.mark.parametrize("kind", ["phantom", "non-square", "smooth-noise"])
def test_segmentation_equals_pair(kind):
    im = _image(kind)
    ours = xrai.segment(im, cache=False)
    ref = _get_segments_felzenszwalb(im)
    assert len(ours) == len(ref)
    for i, m in enumerate(ref):
        assert np.array_equal(ours.mask(i), m), f"mask {i} differs"


def _base_maps(im: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(4)
    smooth = np.abs(np.gradient(im.astype(np.float64))[0]).astype(np.float32)
    return {"random": rng.uniform(0, 1, im.shape).astype(np.float32),
            "gradient-like": smooth,
            "float64": rng.exponential(1.0, im.shape),
            "ties": np.round(rng.uniform(0, 3, im.shape)).astype(np.float32)}


@pytest.mark.parametrize("algorithm", ["full", "fast"])
@pytest.mark.parametrize("kind", ["phantom", "non-square"])
def test_region_maps_equal_pair(kind, algorithm):
    im = _image(kind)
    seg = xrai.segment(im)
    masks = seg.masks()
    for name, attr in _base_maps(im).items():
        ours = xrai.region_map(attr, seg, algorithm=algorithm)
        ref_values, ref_ranks = _pair(im, attr, masks, algorithm)
        assert np.array_equal(ours.values, ref_values), f"{name}: values differ"
        assert np.array_equal(ours.ranks, ref_ranks), f"{name}: ranks differ"
        covered = np.concatenate(ours.order)
        assert len(covered) == im.size and len(np.unique(covered)) == im.size


def test_order_and_gains_describe_the_regions():
    im = _image("phantom")
    seg = xrai.segment(im)
    attr = np.abs(np.random.default_rng(1).normal(size=im.shape))
    reg = xrai.region_map(attr, seg)
    flat = reg.values.reshape(-1)
    for pix, gain in zip(reg.order, reg.gains):
        assert np.all(flat[pix] == gain)
    rank_of_first = reg.ranks.reshape(-1)[reg.order[0][0]]
    assert rank_of_first == 1 + int(np.sum(reg.gains[1:] > reg.gains[0]))


def test_edge_cases():
    im = _image("phantom")
    seg = xrai.segment(im)
    const = xrai.region_map(np.ones(im.shape, np.float32), seg)
    assert np.all(const.values == 1.0)
    nan_map = np.zeros(im.shape)
    nan_map[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        xrai.region_map(nan_map, seg)
    with pytest.raises(ValueError, match="does not match"):
        xrai.region_map(np.zeros((10, 10)), seg)
    with pytest.raises(ValueError, match="constant"):
        xrai.segment(np.zeros((50, 50)))
    # A tiny two-level image gives few segments; every pixel still gets a value and a rank.
    two = np.zeros((40, 40), np.float32)
    two[:, 20:] = 1
    s2 = xrai.segment(two)
    r2 = xrai.region_map(np.random.default_rng(2).uniform(size=(40, 40)), s2)
    assert np.isfinite(r2.values).all() and r2.ranks.min() >= 1
    ref_values, ref_ranks = _pair(two, np.random.default_rng(2).uniform(size=(40, 40)), s2.masks(), "full")
    assert np.array_equal(r2.values, ref_values) and np.array_equal(r2.ranks, ref_ranks)


def test_segments_are_cached_and_options_are_honoured():
    im = _image("phantom")
    assert xrai.segment(im) is xrai.segment(im)
    full_res = xrai.segment(im, resize_to=None)
    assert full_res is not xrai.segment(im)
    ref = _get_segments_felzenszwalb(im, resize_image=False)
    assert len(full_res) == len(ref) and all(np.array_equal(full_res.mask(i), m) for i, m in enumerate(ref))
    two_scales = xrai.segment(im, scales=(100, 500))
    assert len(two_scales.params["scale_ranges"]) == 2 and two_scales.params["scales"] == (100, 500)
