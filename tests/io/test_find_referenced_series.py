"""io.find_referenced_series: the CT series a DICOM SEG segments, found in the folders beside it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_ctinterp.io import find_referenced_series, read_ct, referenced_series_uids, save_mask, write_dicom_series
from napari_ctinterp.phantom import make_slice


def _seg_of(ct, path: Path) -> Path:
    lab = np.zeros(ct.hu.shape, np.uint8)
    lab[1, 10:20, 10:20] = 1
    return save_mask(lab, path, spacing_mm=ct.spacing_mm, format="seg", reference=ct)


def test_the_series_is_found_in_a_sibling_folder_and_not_another_series(tmp_path):
    slices = [make_slice(400 + z, size=48) for z in range(3)]
    files = write_dicom_series(slices, tmp_path / "case" / "ct", seed=1)
    write_dicom_series(slices[:2], tmp_path / "case" / "other", seed=2)  # another series beside it
    ct = read_ct(tmp_path / "case" / "ct")
    seg = _seg_of(ct, tmp_path / "case" / "segs" / "expert.dcm")
    assert referenced_series_uids(seg) == [ct.meta["series_uid"]]
    assert find_referenced_series(seg) == sorted(files)
    assert find_referenced_series(seg, ct.meta["series_uid"], max_files=0) == []  # the search's bound


def test_nothing_found_is_an_empty_list(tmp_path):
    slices = [make_slice(410 + z, size=48) for z in range(2)]
    write_dicom_series(slices, tmp_path / "a" / "ct", seed=3)
    ct = read_ct(tmp_path / "a" / "ct")
    seg = _seg_of(ct, tmp_path / "b" / "c" / "expert.dcm")  # two levels away from the series
    (tmp_path / "b" / "c" / "notes.txt").write_text("not DICOM")
    assert find_referenced_series(seg) == []
    assert find_referenced_series(seg, "1.2.3.4") == []
