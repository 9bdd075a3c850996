"""3D XRAI: supervoxels round in mm, region growing over a volume, the 2D path on one slice, errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from napari_ctinterp import xrai
from napari_ctinterp.phantom import make_slice
from napari_ctinterp.xrai import Segments


def _lift(seg: Segments, identity_grid: bool) -> Segments:
    """2D segments as the segments of a one-slice volume (optionally with an identity cell grid,
    which sends the growing through the volume's cell code)."""
    grid = tuple(np.arange(n) for n in (1, *seg.shape)) if identity_grid else None
    return Segments(shape=(1, *seg.shape), boxes=tuple((slice(0, 1), *b) for b in seg.boxes),
                    local=tuple(m[None] for m in seg.local), params=dict(seg.params), grid=grid)


def _smooth_volume(shape, seed, sigma=2.0):
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.normal(size=shape), sigma).astype(np.float32)


@pytest.mark.parametrize("algorithm", ["full", "fast"])
def test_one_slice_volume_gives_the_2d_result_with_the_2d_segments(algorithm):
    im = make_slice(31, size=96, level=0.6).hu
    seg2 = xrai.segment(im)
    attr = np.abs(np.random.default_rng(3).normal(size=im.shape))  # float64: no near-ties
    ref = xrai.region_map(attr, seg2, algorithm=algorithm)
    same = xrai.region_map(attr[None], _lift(seg2, False), algorithm=algorithm)  # the 2D code, on a volume
    assert np.array_equal(same.values[0], ref.values) and np.array_equal(same.ranks[0], ref.ranks)
    cells = xrai.region_map(attr[None], _lift(seg2, True), algorithm=algorithm)  # the volume's cell code
    assert np.array_equal(cells.ranks[0], ref.ranks)
    np.testing.assert_allclose(cells.values[0], ref.values, rtol=1e-12)
    np.testing.assert_allclose(cells.gains, ref.gains, rtol=1e-12)
    assert [len(o) for o in cells.order] == [len(o) for o in ref.order]


@pytest.fixture(scope="module")
def ball_case():
    """A 20 × 40 × 40 volume at 2.5 × 1.5 × 1.5 mm with a bright ball of radius 12 mm, its supervoxels."""
    shape, sp = (20, 40, 40), (2.5, 1.5, 1.5)
    zz, yy, xx = np.meshgrid(*[(np.arange(n) + 0.5) * s for n, s in zip(shape, sp)], indexing="ij")
    ball = (zz - 22) ** 2 + (yy - 24) ** 2 + (xx - 36) ** 2 <= 12.0**2
    vol = np.where(ball, 200.0, 0.0) + 20 * _smooth_volume(shape, 1, 1.0)
    seg = xrai.segment(vol, spacing_mm=sp, scales_mm=(8.0, 12.0, 20.0), dilation_mm=2.0)
    return vol, ball, seg, sp


def test_supervoxels_are_3d_and_tile_the_volume(ball_case):
    vol, _ball, seg, _sp = ball_case
    assert seg.shape == vol.shape and len(seg.params["scale_ranges"]) == 3
    lo, hi = seg.params["scale_ranges"][0]
    cover = np.zeros(vol.shape, int)
    for i in range(lo, hi):
        m = seg.mask(i)
        assert m.shape == vol.shape
        cover += m
    assert cover.min() >= 1  # every voxel in some mask of the scale (dilated masks overlap)
    assert any(len(np.unique(np.nonzero(seg.mask(i))[0])) > 1 for i in range(lo, hi))  # they span slices
    csr, _ = seg.incidence()
    counts = np.multiply.outer(np.multiply.outer(*[np.bincount(g) for g in seg.grid[:2]]), np.bincount(seg.grid[2]))
    for i in (lo, hi - 1):
        assert seg.mask(i).sum() == counts.reshape(-1)[csr.indices[csr.indptr[i]:csr.indptr[i + 1]]].sum()
    assert xrai.segment(vol, spacing_mm=_sp_of(ball_case), scales_mm=(8.0, 12.0, 20.0), dilation_mm=2.0) is seg


def _sp_of(case):
    return case[3]


@pytest.mark.parametrize("algorithm", ["full", "fast"])
def test_ranks_are_a_permutation_consistent_with_the_gains(ball_case, algorithm):
    vol, _ball, seg, _sp = ball_case
    attr = np.abs(_smooth_volume(vol.shape, 5, 1.5))
    reg = xrai.region_map(attr, seg, algorithm=algorithm)
    n = len(reg.gains)
    assert reg.ranks.dtype == np.int32 and reg.values.shape == vol.shape
    assert sorted(np.unique(reg.ranks)) == list(range(1, n + 1))  # every region one rank, no gaps
    assert sorted(reg.added_ranks) == list(range(1, n + 1))
    by_rank = np.empty(n)
    by_rank[reg.added_ranks - 1] = reg.gains
    assert np.all(np.diff(by_rank[:-1]) <= 0)  # rank 1 = highest gain
    # the last rank: the lowest gain, or (as PAIR) the leftover area no mask took, added last
    assert by_rank[-1] <= by_rank[-2] or reg.added_ranks[-1] == n
    covered = np.concatenate(reg.order)
    assert len(covered) == vol.size and len(np.unique(covered)) == vol.size
    flat_v = reg.values.reshape(-1)
    for pix, gain in zip(reg.order, reg.gains):
        assert np.allclose(flat_v[pix], gain)
        # the gain is the mean of the region's new voxels
        np.testing.assert_allclose(attr.reshape(-1)[pix].astype(np.float64).mean(), gain, rtol=1e-9)


def test_a_map_high_in_a_planted_ball_ranks_its_supervoxels_first(ball_case):
    vol, ball, seg, _sp = ball_case
    attr = np.where(ball, 1.0, 0.0) + 0.05 * np.abs(_smooth_volume(vol.shape, 7, 1.0))
    reg = xrai.region_map(attr, seg)
    first = reg.ranks == 1
    assert ball[first].mean() > 0.7  # the first region lies in the ball
    assert roc_auc_score(ball.ravel(), -reg.ranks.ravel()) > 0.95
    top = reg.ranks <= np.sort(np.unique(reg.ranks[ball]))[len(np.unique(reg.ranks[ball])) // 2]
    assert ball[top].mean() > 0.7


def test_supervoxels_are_round_in_millimetres_for_anisotropic_spacing():
    shape, sp = (20, 80, 80), (4.0, 1.0, 1.0)  # 80 mm a side, voxels 4× thicker along z
    vol = _smooth_volume(shape, 11, 1.0)
    seg = xrai.segment(vol, spacing_mm=sp, scales_mm=(20.0,), dilation_mm=0.0, compactness=10.0, cache=False)
    ratios = []
    for i in range(len(seg)):
        z, y, x = np.nonzero(seg.mask(i))
        if len(z) < 200 or z.min() == 0 or z.max() == shape[0] - 1:  # whole supervoxels, away from the ends
            continue
        ratios.append((np.ptp(z) + 1) * sp[0] / ((np.ptp(y) + 1) * sp[1]))
    assert len(ratios) >= 5
    assert 0.6 < float(np.median(ratios)) < 1.6, ratios  # z extent ≈ y extent in mm (in voxels: 4× apart)


def test_a_stack_of_2d_maps_with_unexplained_slices_and_outside_voxels(ball_case):
    vol, ball, seg, _sp = ball_case
    stack = np.abs(_smooth_volume(vol.shape, 9, 1.0)).astype(np.float64)
    stack[:3] = np.nan  # explain_volume: slices not asked hold NaN
    reg = xrai.region_map(stack, seg)
    assert np.isnan(reg.values[:3]).all() and (reg.ranks[:3] == 0).all()
    assert np.isfinite(reg.values[3:]).all() and reg.ranks[3:].min() >= 1
    assert sum(len(o) for o in reg.order) == stack[3:].size
    outside = np.zeros(vol.shape, bool)
    outside[:, :, :5] = True
    reg2 = xrai.region_map(np.nan_to_num(stack), seg, outside=outside)
    assert (reg2.ranks[outside] == 0).all() and np.isnan(reg2.values[outside]).all()
    assert reg2.ranks[~outside].min() >= 1


def test_bad_input_is_refused_saying_what_to_do(ball_case):
    vol, _ball, seg, _sp = ball_case
    with pytest.raises(ValueError, match="2D map .* supervoxels"):
        xrai.region_map(np.ones(vol.shape[1:]), seg)
    with pytest.raises(ValueError, match="does not match"):
        xrai.region_map(np.ones((vol.shape[0] + 1, *vol.shape[1:])), seg)
    seg2 = xrai.segment(vol[5])
    with pytest.raises(ValueError, match="segment the volume"):
        xrai.region_map(np.ones(vol.shape), seg2)
    with pytest.raises(ValueError, match="spacing_mm"):
        xrai.segment(vol)
    with pytest.raises(ValueError, match="spacing_mm is for volumes"):
        xrai.segment(vol[0], spacing_mm=(1, 1, 1))
    with pytest.raises(ValueError, match="three positive"):
        xrai.segment(vol, spacing_mm=(0, 1, 1))
    with pytest.raises(ValueError, match="constant"):
        xrai.segment(np.zeros((4, 8, 8)), spacing_mm=(1, 1, 1))
    partial = np.ones(vol.shape)
    partial[4, 3, 3] = np.nan
    with pytest.raises(ValueError, match="inside explained slices"):
        xrai.region_map(partial, seg)
    with pytest.raises(ValueError, match="nothing to rank"):
        xrai.region_map(np.ones(vol.shape), seg, outside=np.ones(vol.shape, bool))
    with pytest.raises(ValueError, match="bool array"):
        xrai.region_map(np.ones(vol.shape), seg, outside=np.zeros(vol.shape))
