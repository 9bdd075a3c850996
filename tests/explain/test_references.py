"""EG reference slices for models other than the demo: the open volume's other slices, or a folder."""

from __future__ import annotations

import numpy as np
import pytest

from napari_ctinterp.explain import MIN_VOLUME_REFERENCES, folder_references, volume_references
from napari_ctinterp.io import write_dicom_series
from napari_ctinterp.phantom import make_slice


def test_volume_references_exclude_the_explained_slice_and_need_enough_slices():
    vol = np.arange(12, dtype=np.float32)[:, None, None] * np.ones((1, 4, 4), np.float32)
    refs = volume_references(vol, 3)
    assert len(refs) == 11 and 3.0 not in refs[:, 0, 0]
    assert volume_references(vol, 0, max_slices=4).shape == (4, 4, 4)
    assert volume_references(vol[:MIN_VOLUME_REFERENCES], 0) is None  # 7 others: too few
    assert volume_references(vol[0], None) is None  # a single slice has no others


def test_folder_references_read_a_dicom_series(tmp_path):
    hu = np.stack([make_slice(s, contrast=bool(s % 2), size=64).hu for s in range(3)])
    write_dicom_series(hu, tmp_path / "series", spacing_mm=(2.5, 0.7, 0.7))
    refs = folder_references(tmp_path / "series")
    assert refs.shape == (3, 64, 64) and np.allclose(refs, hu, atol=1.0)
    with pytest.raises(ValueError, match="does not exist"):
        folder_references(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="could not read a CT"):
        folder_references(tmp_path / "empty")
