"""read_ct on well-formed input: synthetic series in every transfer syntax, pydicom test files."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut

from napari_ctinterp.io import CTReadWarning, CTVolume, is_dicom, read_ct, write_dicom_series

SPACING = (2.5, 0.7, 0.6)
ORIGIN = (-10.0, 20.5, 100.0)


def _testdata(name: str) -> str:
    path = get_testdata_file(name, download=False)
    assert path is not None, f"pydicom test file {name} missing (pydicom-data installed?)"
    return str(path)


@pytest.mark.parametrize("syntax", ["explicit", "rle", "jpeg2000", "jpegls"])
def test_round_trip_shuffled_series(tmp_path: Path, hu: np.ndarray, syntax: str) -> None:
    files = write_dicom_series(
        hu, tmp_path, spacing_mm=SPACING, origin=ORIGIN, transfer_syntax=syntax, shuffle_names=True, seed=1
    )
    # file names and InstanceNumber are both scrambled, so only geometry can order the slices
    assert [f.name for f in files] != sorted(f.name for f in files)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CTReadWarning)
        vol = read_ct(tmp_path)
    assert isinstance(vol, CTVolume)
    assert vol.hu.dtype == np.float32 and vol.shape == hu.shape
    np.testing.assert_array_equal(vol.hu, hu)
    assert vol.spacing_mm == SPACING
    assert vol.origin == ORIGIN
    assert vol.meta["files"] == [str(f) for f in files]
    assert vol.meta["n_files"] == len(files) and vol.meta["modality"] == "CT"
    assert vol.meta["warnings"] == [] and vol.meta["other_series"] == []
    assert len(vol.meta["transfer_syntaxes"]) == 1
    assert vol.meta["orientation"] == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    assert vol.meta["slice_positions_mm"] == pytest.approx([100.0 + 2.5 * k for k in range(5)])


def test_list_of_files_and_single_file(tmp_path: Path, hu: np.ndarray) -> None:
    files = write_dicom_series(hu, tmp_path, spacing_mm=SPACING, origin=ORIGIN, shuffle_names=True, seed=2)
    shuffled = [str(f) for f in reversed(files)]
    vol = read_ct(shuffled)
    np.testing.assert_array_equal(vol.hu, hu)
    assert vol.spacing_mm == SPACING

    one = read_ct(files[3])
    assert one.shape == (1, *hu.shape[1:])
    np.testing.assert_array_equal(one.hu[0], hu[3])
    assert one.spacing_mm == SPACING  # single slice: z from SliceThickness
    assert one.origin == (ORIGIN[0], ORIGIN[1], ORIGIN[2] + 3 * SPACING[0])


def test_2d_input_and_nested_folder(tmp_path: Path, hu: np.ndarray) -> None:
    write_dicom_series(hu[0], tmp_path / "a" / "b", spacing_mm=(3.0, 0.5, 0.5))
    (tmp_path / "notes.txt").write_text("not dicom")
    with warnings.catch_warnings():
        warnings.simplefilter("error", CTReadWarning)  # non-DICOM files in folders: silent
        vol = read_ct(tmp_path)
    np.testing.assert_array_equal(vol.hu, hu[:1])
    assert vol.spacing_mm == (3.0, 0.5, 0.5) and vol.meta["n_skipped_files"] == 1


def test_ct_small() -> None:
    path = _testdata("CT_small.dcm")
    vol = read_ct(path)
    ds = pydicom.dcmread(path)
    assert vol.shape == (1, 128, 128)
    np.testing.assert_allclose(vol.hu[0], apply_modality_lut(ds.pixel_array, ds))
    assert -1100 < vol.hu.min() < vol.hu.max() < 3000  # plausible HU
    assert vol.spacing_mm[1:] == tuple(float(v) for v in ds.PixelSpacing)
    assert vol.spacing_mm[0] == float(ds.SliceThickness)
    assert vol.origin == tuple(float(v) for v in ds.ImagePositionPatient)
    assert vol.meta["series_uid"] == ds.SeriesInstanceUID
    assert vol.meta["study_date"] == "20040119"


def test_no_patient_identifiers_in_meta() -> None:
    ds = pydicom.dcmread(_testdata("CT_small.dcm"), stop_before_pixels=True)
    vol = read_ct(_testdata("CT_small.dcm"))
    text = repr(vol.meta)
    for value in (str(ds.PatientName), str(ds.PatientID), "PatientName", "PatientID", "BirthDate"):
        assert value not in text


def test_enhanced_multiframe_ct() -> None:
    path = _testdata("eCT_Supplemental.dcm")
    ds = pydicom.dcmread(path)
    vol = read_ct(path)
    assert vol.shape == (int(ds.NumberOfFrames), ds.Rows, ds.Columns) == (2, 512, 512)
    frames = ds.PerFrameFunctionalGroupsSequence
    z = [float(f.PlanePositionSequence[0].ImagePositionPatient[2]) for f in frames]
    # orientation [-1,0,0, 0,1,0] -> normal (0,0,-1): slices run from high z to low z
    expected_order = np.argsort([-v for v in z])
    item = ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0]  # shared rescale
    assert float(item.RescaleIntercept) == -1024.0
    for k, i in enumerate(expected_order):
        expected = ds.pixel_array[i] * float(item.RescaleSlope) + float(item.RescaleIntercept)
        np.testing.assert_array_equal(vol.hu[k], expected.astype(np.float32))
    measures = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    assert vol.spacing_mm == (abs(z[0] - z[1]), *(float(v) for v in measures.PixelSpacing))
    assert vol.origin[2] == max(z)
    assert vol.meta["sop_class"] == "Enhanced CT Image Storage" and vol.meta["n_files"] == 1


def test_multiple_series_largest_ct_chosen(tmp_path: Path, make_hu) -> None:
    write_dicom_series(make_hu((4, 32, 32), 1), tmp_path / "ct_big", seed=1, description="big")
    write_dicom_series(make_hu((2, 32, 32), 2), tmp_path / "ct_small", seed=2, description="small")
    write_dicom_series(make_hu((6, 32, 32), 3), tmp_path / "mr", seed=3, modality="MR", description="mr")
    with pytest.warns(CTReadWarning, match="2 other series"):
        vol = read_ct(tmp_path)
    assert vol.shape == (4, 32, 32) and vol.meta["series_description"] == "big"
    others = sorted(vol.meta["other_series"], key=lambda s: s["n_files"])
    assert [(s["modality"], s["n_files"], s["description"]) for s in others] == [("CT", 2, "small"), ("MR", 6, "mr")]
    assert all(s["uid"] and s["uid"] != vol.meta["series_uid"] for s in others)
    assert any("other series" in w for w in vol.meta["warnings"])


def test_file_without_preamble_is_accepted(tmp_path: Path, hu: np.ndarray) -> None:
    src = write_dicom_series(hu[:1], tmp_path / "src")[0]
    ds = pydicom.dcmread(src)
    raw = tmp_path / "raw" / "slice"
    raw.parent.mkdir()
    ds.preamble = None
    del ds.file_meta  # bare implicit-VR dataset, as some old exporters write
    ds.save_as(raw, implicit_vr=True, little_endian=True, enforce_file_format=False)
    assert raw.read_bytes()[128:132] != b"DICM"
    assert not is_dicom(raw)  # the quick check only trusts the marker...
    np.testing.assert_array_equal(read_ct(raw.parent).hu, hu[:1])  # ...read_ct still reads it


def test_is_dicom(tmp_path: Path, hu: np.ndarray) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "text.txt").write_text("hello")
    files = write_dicom_series(hu[:1], tmp_path / "deep" / "er")
    assert is_dicom(files[0]) and is_dicom(tmp_path) and is_dicom(str(tmp_path / "deep"))
    assert not is_dicom(tmp_path / "empty") and not is_dicom(tmp_path / "text.txt")
    assert not is_dicom(tmp_path / "missing")
    assert is_dicom([tmp_path / "text.txt", files[0]])
