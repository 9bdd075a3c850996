"""``make_volume``: one body along z (neighbouring slices alike, noise their own), its 3D mask, and
the sample volume in napari."""

from __future__ import annotations

import numpy as np
import pytest

from napari_ctinterp.phantom import make_slice, make_volume


@pytest.fixture(scope="module")
def vol():
    return make_volume(11, contrast=True, phase="venous", n_slices=6, spacing_mm=2.5, size=96)


def test_consecutive_slices_are_one_body_with_their_own_noise(vol):
    assert vol.hu.shape == vol.mask.shape == (6, 96, 96) and vol.hu.dtype == np.float32
    assert vol.spacing_mm[0] == 2.5 and len(vol.meta["levels"]) == 6
    assert np.allclose(np.diff(vol.meta["levels"]), 2.5 / 300)
    other = make_slice(999, contrast=True, phase="venous", level=vol.meta["levels"][1], size=96, noise="none").hu
    same_body = [np.corrcoef(vol.hu[k].ravel(), vol.hu[k + 1].ravel())[0, 1] for k in range(5)]
    assert min(same_body) > 0.9 > 0.8 > np.corrcoef(vol.hu[1].ravel(), other.ravel())[0, 1]
    noise = vol.hu[1] - make_slice(11, contrast=True, phase="venous", level=vol.meta["levels"][1], size=96,
                                   noise="none").hu
    noise2 = vol.hu[2] - make_slice(11, contrast=True, phase="venous", level=vol.meta["levels"][2], size=96,
                                    noise="none").hu
    assert 3 < noise.std() < 40 and abs(np.corrcoef(noise.ravel(), noise2.ravel())[0, 1]) < 0.2
    assert vol.mask.any(axis=(1, 2)).all()  # venous blood pools on every slice


def test_without_contrast_the_mask_marks_where_contrast_would_show(vol):
    plain = make_volume(11, contrast=False, phase="venous", n_slices=6, size=96)
    np.testing.assert_array_equal(plain.mask, vol.mask)
    assert (vol.hu[vol.mask] - plain.hu[vol.mask]).min() >= 50


def test_the_sample_volume_opens_with_its_mask(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-ctinterp", "phantom_volume")
    ct, mask = viewer.layers
    assert ct.data.shape == (24, 256, 256) and mask.data.shape == (24, 256, 256)
    assert tuple(ct.scale) == tuple(mask.scale) and ct.scale[0] == 2.5
