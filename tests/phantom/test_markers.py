"""Planted markers: exact masks, only the marker's pixels change, ranges drawn from the seed,
removal by inpainting gives back the tissue around it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_ctinterp.phantom import LABELS, MARKER_KINDS, inpaint, make_slice

RANGES = {"letter": (2000, 3071, 9, 15), "tube": (300, 900, 35, 90), "text": (1500, 3071, None, None)}


@pytest.mark.parametrize("kind", MARKER_KINDS)
@pytest.mark.parametrize("seed", [1, 7])
def test_a_marker_changes_only_its_own_pixels_and_is_labelled(kind, seed):
    plain, marked = make_slice(seed, size=128), make_slice(seed, size=128, marker=kind)
    m = marked.marker_mask
    assert m.any() and not plain.marker_mask.any()
    np.testing.assert_array_equal(marked.hu[~m], plain.hu[~m])  # same anatomy and noise elsewhere
    np.testing.assert_array_equal(marked.mask, plain.mask)  # the expert mask is the contrast's, unchanged
    assert (plain.labels[m] == LABELS["background"]).all()  # outside the body: on the skin or at the edge
    lo, hi, smin, smax = RANGES[kind]
    rec = marked.meta["marker"]
    assert rec["kind"] == kind and lo <= rec["hu"] <= hi and rec["pixels"] == int(m.sum())
    assert marked.hu[m].mean() > plain.hu[m].mean() + 250  # dense: it stands out of the air around it
    if smin is not None:
        assert smin <= rec["size_mm"] <= smax


def test_true_draws_a_kind_from_the_seed_deterministically():
    kinds = {make_slice(s, size=96, marker=True).meta["marker"]["kind"] for s in range(12)}
    assert kinds == set(MARKER_KINDS)
    a, b = make_slice(5, size=96, marker=True), make_slice(5, size=96, marker=True)
    np.testing.assert_array_equal(a.hu, b.hu)
    assert make_slice(5, size=96, marker=False).meta.get("marker") is None
    with pytest.raises(ValueError, match="letter"):
        make_slice(5, size=96, marker="sticker")


@pytest.mark.parametrize("kind", MARKER_KINDS)
def test_inpainting_removes_the_marker_with_the_surrounding_tissue(kind):
    plain, marked = make_slice(3, size=128), make_slice(3, size=128, marker=kind)
    m = marked.marker_mask
    gone = inpaint(marked.hu, m, noise_sd=marked.meta["noise_sd_hu"], seed=1)
    contrast = np.abs(marked.hu[m] - plain.hu[m]).mean()
    residual = np.abs(gone[m] - plain.hu[m]).mean()
    assert residual < 0.15 * contrast, (residual, contrast)
    far = ~ndi.binary_dilation(m, iterations=2)
    np.testing.assert_array_equal(gone[far], marked.hu[far])  # pixels away from the marker untouched


def test_add_marker_is_make_slice_s_marker_and_another_seed_moves_it():
    from napari_ctinterp.phantom import add_marker

    plain = make_slice(9, size=96)
    marked = add_marker(plain, "letter")
    np.testing.assert_array_equal(marked.hu, make_slice(9, size=96, marker="letter").hu)
    moved = add_marker(plain, "letter", seed=10)
    assert moved.meta["marker"]["seed"] == 10 and not (moved.marker_mask == marked.marker_mask).all()
    with pytest.raises(ValueError, match="already has a marker"):
        add_marker(marked)


@pytest.mark.parametrize("kind, through", [("letter", False), ("tube", True), ("text", True)])
def test_a_volume_carries_one_marker_through_its_slices(kind, through):
    from napari_ctinterp.phantom import make_volume

    plain, marked = make_volume(3, n_slices=12, size=96), make_volume(3, n_slices=12, size=96, marker=kind)
    m = marked.labels == LABELS["marker"]
    np.testing.assert_array_equal(marked.hu[~m], plain.hu[~m])  # only the marker's voxels change
    on = sorted(set(np.nonzero(m)[0].tolist()))
    assert on == marked.meta["marker"]["slices"] and marked.meta["marker"]["kind"] == kind
    assert (len(on) == 12) == through and 6 in on  # a letter covers the slices its height spans, around the middle
    assert (plain.labels[m] == LABELS["background"]).all() and marked.hu[m].mean() > plain.hu[m].mean() + 250
