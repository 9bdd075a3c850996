"""write_dicom_series: valid, deterministic CT series with signed storage in every syntax."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, JPEG2000Lossless, JPEGLSLossless, RLELossless

from napari_ctinterp.io import write_dicom_series
from napari_ctinterp.io.dicom_write import STORED_HU_RANGE

SYNTAXES = {"explicit": ExplicitVRLittleEndian, "rle": RLELossless, "jpeg2000": JPEG2000Lossless,
            "jpegls": JPEGLSLossless}


@pytest.mark.parametrize("syntax", list(SYNTAXES))
def test_headers_and_exact_signed_pixels(tmp_path: Path, make_hu, syntax: str) -> None:
    hu = make_hu((3, 32, 40))
    hu[0, 5, 5], hu[1, 5, 5] = STORED_HU_RANGE  # extremes of the int16 stored range
    files = write_dicom_series(hu, tmp_path, spacing_mm=(1.25, 0.8, 0.9), origin=(5, 6, -7),
                               transfer_syntax=syntax)
    assert [f.name for f in files] == ["IM00000.dcm", "IM00001.dcm", "IM00002.dcm"]
    for k, f in enumerate(files):
        ds = pydicom.dcmread(f)
        assert ds.file_meta.TransferSyntaxUID == SYNTAXES[syntax]
        assert ds.SOPClassUID == ds.file_meta.MediaStorageSOPClassUID == CTImageStorage
        assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
        assert (ds.PixelRepresentation, ds.BitsStored, ds.RescaleIntercept, ds.RescaleSlope) == (1, 16, -1024, 1)
        assert ds.pixel_array.dtype == np.int16
        np.testing.assert_array_equal(apply_modality_lut(ds.pixel_array, ds), hu[k])
        assert [float(v) for v in ds.ImagePositionPatient] == [5.0, 6.0, -7.0 + 1.25 * k]
        assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
        assert [float(v) for v in ds.PixelSpacing] == [0.8, 0.9]
        assert float(ds.SliceThickness) == float(ds.SpacingBetweenSlices) == 1.25
        assert ds.InstanceNumber == k + 1
        assert (str(ds.PatientName), ds.PatientID, ds.Modality) == ("Phantom^Anonymous", "PHANTOM", "CT")


def test_shuffled_names_and_instance_numbers(tmp_path: Path, make_hu) -> None:
    files = write_dicom_series(make_hu((8, 16, 16)), tmp_path, shuffle_names=True, seed=4)
    names = [f.name for f in files]
    numbers = [pydicom.dcmread(f, stop_before_pixels=True).InstanceNumber for f in files]
    assert sorted(names) == [f"IM{k:05d}.dcm" for k in range(8)] and names != sorted(names)
    assert sorted(numbers) == list(range(1, 9)) and numbers != sorted(numbers)
    assert names == [f"IM{n - 1:05d}.dcm" for n in numbers]


def test_rounding_clipping_and_2d(tmp_path: Path) -> None:
    hu = np.array([[1.4, -1.6, 1e6, -1e6, -3000.0, 0.5]], dtype=np.float64)
    (f,) = write_dicom_series(hu, tmp_path)
    ds = pydicom.dcmread(f)
    expected = [1, -2, STORED_HU_RANGE[1], STORED_HU_RANGE[0], -3000, 0]  # round half to even
    np.testing.assert_array_equal(apply_modality_lut(ds.pixel_array, ds)[0], expected)


def test_uids_deterministic_and_distinct(tmp_path: Path, make_hu) -> None:
    def uids(folder: str, **kw) -> tuple[str, str, list[str]]:
        files = write_dicom_series(make_hu((2, 16, 16)), tmp_path / folder, **kw)
        headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
        return headers[0].StudyInstanceUID, headers[0].SeriesInstanceUID, [h.SOPInstanceUID for h in headers]

    first, again, other = uids("a", seed=1), uids("b", seed=1), uids("c", seed=2)
    assert first == again
    assert first[1] != other[1] and not set(first[2]) & set(other[2])
    assert len(set(first[2])) == 2
    given = uids("d", series_uid="1.2.3.4", study_uid="1.2.3.5")
    assert given[:2] == ("1.2.3.5", "1.2.3.4")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"transfer_syntax": "jpeg"}, "transfer_syntax must be one of"),
        ({"spacing_mm": (1.0, 1.0)}, "spacing_mm must be three positive"),
        ({"spacing_mm": (0.0, 1.0, 1.0)}, "spacing_mm must be three positive"),
        ({"origin": (0.0, 0.0)}, "origin must be"),
        ({"transfer_syntax": "jpeg2000"}, "at least 32x32"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        write_dicom_series(np.zeros((2, 4, 4)), tmp_path, **kwargs)


@pytest.mark.parametrize(("data", "match"), [(np.zeros(4), "shape"), (np.full((2, 2), np.nan), "NaN")])
def test_bad_volume(tmp_path: Path, data: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        write_dicom_series(data, tmp_path)


def test_missing_encoder_names_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pydicom.pixels import get_encoder

    encoder = get_encoder(JPEGLSLossless)
    monkeypatch.setattr(encoder, "_available", {})
    monkeypatch.setattr(encoder, "_unavailable", {"pyjpegls": ("numpy", "pyjpegls")})
    with pytest.raises(RuntimeError, match="no encoder is installed.*pip install pyjpegls"):
        write_dicom_series(np.zeros((1, 8, 8)), tmp_path, transfer_syntax="jpegls")
