"""read_ct on bad input: each case raises CTReadError (or warns) with a message that says what to do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataelem import DataElement
from pydicom.pixels import get_decoder
from pydicom.tag import Tag
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

from napari_ctinterp.io import CTReadError, CTReadWarning, read_ct, write_dicom_series


def test_non_dicom_file(tmp_path: Path) -> None:
    bad = tmp_path / "scan.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(300))
    with pytest.raises(CTReadError, match="is not a DICOM file"):
        read_ct(bad)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(CTReadError, match="does not exist"):
        read_ct(tmp_path / "nope")


@pytest.mark.parametrize("content", [None, "readme"])
def test_empty_or_non_dicom_folder(tmp_path: Path, content: str | None) -> None:
    if content:
        (tmp_path / "sub").mkdir()
        (tmp_path / "sub" / "README").write_text(content)
    with pytest.raises(CTReadError, match="No readable DICOM files found"):
        read_ct(tmp_path)


def test_empty_list() -> None:
    with pytest.raises(CTReadError, match="No readable DICOM files found"):
        read_ct([])


@pytest.mark.parametrize("drop", [("PixelData",), ("PixelData", "Rows", "Columns")])
def test_dicom_without_pixel_data(tmp_path: Path, hu: np.ndarray, drop: tuple[str, ...]) -> None:
    src = write_dicom_series(hu[:1], tmp_path / "src")[0]
    ds = pydicom.dcmread(src)
    for keyword in drop:
        delattr(ds, keyword)
    ds.save_as(tmp_path / "nopix.dcm", enforce_file_format=True)
    with pytest.raises(CTReadError, match="without pixel data"):
        read_ct(tmp_path / "nopix.dcm")


@pytest.mark.parametrize("modality", ["MR", "PT", "OT"])
def test_non_ct_modality_is_refused_unless_allowed(tmp_path: Path, hu: np.ndarray, modality: str) -> None:
    write_dicom_series(hu, tmp_path, modality=modality)
    with pytest.raises(CTReadError, match=f"modality {modality} .*not CT.*allow_non_ct=True"):
        read_ct(tmp_path)
    with pytest.warns(CTReadWarning, match=f"modality {modality}, not CT"):
        vol = read_ct(tmp_path, allow_non_ct=True)
    np.testing.assert_array_equal(vol.hu, hu)
    assert vol.meta["modality"] == modality
    assert any(f"modality {modality}, not CT" in w for w in vol.meta["warnings"])


def test_pydicom_mr_file_is_refused() -> None:
    path = get_testdata_file("MR_small.dcm", download=False)
    with pytest.raises(CTReadError, match="MR_small.dcm is modality MR"):
        read_ct(path)


@pytest.mark.parametrize("keyword", ["RescaleSlope", "RescaleIntercept"])
def test_rescale_not_a_number_classic(tmp_path: Path, keyword: str) -> None:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    ds[keyword] = DataElement(Tag(keyword), "LO", "abc")  # a wrong VR holding text
    ds.save_as(tmp_path / "bad.dcm")
    with pytest.raises(CTReadError, match=rf"bad.dcm: {keyword} is 'abc', not a finite number"):
        read_ct(tmp_path / "bad.dcm")


@pytest.mark.parametrize("keyword", ["RescaleSlope", "RescaleIntercept"])
def test_rescale_not_a_number_multiframe(tmp_path: Path, keyword: str) -> None:
    """Enhanced CT: the rescale lives in a functional group; it used to become slope 1 silently."""
    ds = pydicom.dcmread(get_testdata_file("eCT_Supplemental.dcm", download=False))
    item = ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0]
    item[keyword] = DataElement(Tag(keyword), "LO", "n/a")
    ds.save_as(tmp_path / "bad_enh.dcm")
    with pytest.raises(CTReadError, match=rf"bad_enh.dcm \(frame 1\): {keyword} is 'n/a', not a finite number"):
        read_ct(tmp_path / "bad_enh.dcm")


def test_slices_of_different_sizes(tmp_path: Path, make_hu) -> None:
    uid = "1.2.826.0.1.3680043.8.498.1"
    a = write_dicom_series(make_hu((3, 32, 32)), tmp_path / "a", series_uid=uid)
    b = write_dicom_series(make_hu((1, 40, 40)), tmp_path / "b", series_uid=uid, origin=(0, 0, 10))
    with pytest.raises(CTReadError, match=r"different sizes.*3 slice\(s\) of 32x32.*1 slice\(s\) of 40x40"):
        read_ct(a + b)


def test_duplicate_positions(tmp_path: Path, hu: np.ndarray) -> None:
    write_dicom_series(hu, tmp_path / "copy1", seed=0)
    write_dicom_series(hu, tmp_path / "copy2", seed=0)  # same UIDs and positions: a duplicated export
    with pytest.raises(CTReadError, match="Duplicate slice positions: 5 pair"):
        read_ct(tmp_path)


def test_missing_position(tmp_path: Path, hu: np.ndarray) -> None:
    files = write_dicom_series(hu[:3], tmp_path)
    ds = pydicom.dcmread(files[1])
    del ds.ImagePositionPatient
    ds.save_as(files[1], enforce_file_format=True)
    with pytest.raises(CTReadError, match="no ImagePositionPatient"):
        read_ct(tmp_path)


def test_mixed_orientation(tmp_path: Path, hu: np.ndarray) -> None:
    files = write_dicom_series(hu[:3], tmp_path)
    ds = pydicom.dcmread(files[2])
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    ds.save_as(files[2], enforce_file_format=True)
    with pytest.raises(CTReadError, match="different orientations"):
        read_ct(tmp_path)


def test_gap_in_series_warns(tmp_path: Path, hu: np.ndarray) -> None:
    files = write_dicom_series(hu, tmp_path, spacing_mm=(2.0, 1.0, 1.0))
    with pytest.warns(CTReadWarning, match="inconsistent"):
        vol = read_ct([files[0], files[1], files[3], files[4]])  # slice 2 missing
    assert vol.spacing_mm[0] == 2.0  # median, not the 4 mm gap
    np.testing.assert_array_equal(vol.hu, hu[[0, 1, 3, 4]])


def test_non_dicom_in_list_warns(tmp_path: Path, hu: np.ndarray) -> None:
    files = write_dicom_series(hu[:2], tmp_path)
    (tmp_path / "x.txt").write_text("x")
    with pytest.warns(CTReadWarning, match=r"skipped 1 file\(s\) that are not readable DICOM"):
        read_ct([*files, tmp_path / "x.txt"])


@pytest.mark.parametrize(
    ("syntax", "uid", "package"),
    [
        ("jpeg2000", JPEG2000Lossless, "pylibjpeg-openjpeg"),
        ("jpegls", JPEGLSLossless, "pylibjpeg-libjpeg"),
        ("rle", RLELossless, "pylibjpeg-rle"),
    ],
)
def test_missing_codec_names_package(
    tmp_path: Path, hu: np.ndarray, monkeypatch: pytest.MonkeyPatch, syntax: str, uid: str, package: str
) -> None:
    write_dicom_series(hu[:2], tmp_path, transfer_syntax=syntax)
    # Make pydicom believe no plugin is installed: it then raises its own RuntimeError
    # "Unable to decompress ... because all plugins are missing dependencies".
    decoder = get_decoder(uid)
    monkeypatch.setattr(decoder, "_available", {})
    monkeypatch.setattr(decoder, "_unavailable", {"pylibjpeg": ("pylibjpeg", package)})
    with pytest.raises(CTReadError, match=rf"no decoder .* installed.*pip install pylibjpeg {package}") as info:
        read_ct(tmp_path)
    assert "missing dependencies" in str(info.value.__cause__)


@pytest.mark.filterwarnings("ignore:End of file reached:UserWarning")
@pytest.mark.parametrize("syntax", ["explicit", "jpeg2000"])
def test_truncated_file(tmp_path: Path, hu: np.ndarray, syntax: str) -> None:
    (f,) = write_dicom_series(hu[:1], tmp_path, transfer_syntax=syntax)
    f.write_bytes(f.read_bytes()[:-300])
    with pytest.raises(CTReadError, match="truncated"):
        read_ct(f)


def test_random_binary_files_are_skipped(tmp_path: Path, hu: np.ndarray) -> None:
    write_dicom_series(hu[:2], tmp_path / "ct")
    rng = np.random.default_rng(0)
    (tmp_path / "blob.bin").write_bytes(b"\x08\x00" + rng.bytes(5000))  # looks like a tag, isn't DICOM
    (tmp_path / "noise.raw").write_bytes(rng.bytes(5000))
    vol = read_ct(tmp_path)
    assert vol.shape[0] == 2 and vol.meta["n_skipped_files"] == 2


def test_rescale_beyond_float32_is_refused(tmp_path: Path) -> None:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    ds.RescaleSlope = "1e300"  # a number, but the HU would be inf
    ds.save_as(tmp_path / "huge.dcm")
    with pytest.raises(CTReadError, match="beyond float32's range"):
        read_ct(tmp_path / "huge.dcm")


def test_unreadable_header_element_names_the_file(tmp_path: Path) -> None:
    """Found by the fuzz test: an element with an unknown VR raised pydicom's NotImplementedError."""
    src = Path(get_testdata_file("CT_small.dcm", download=False)).read_bytes()
    at = src.index(b"\x08\x00\x60\x00CS")  # Modality, explicit VR little endian
    bad = src[:at + 4] + b"CP" + src[at + 6:]
    (tmp_path / "bad_vr.dcm").write_bytes(bad)
    with pytest.raises(CTReadError, match=r"bad_vr.dcm is DICOM but its header cannot be read"):
        read_ct(tmp_path / "bad_vr.dcm")
    folder = tmp_path / "series"
    folder.mkdir()
    (folder / "bad_vr.dcm").write_bytes(bad)
    (folder / "good.dcm").write_bytes(src)
    with pytest.warns(CTReadWarning, match="skipped bad_vr.dcm"):
        vol = read_ct(folder)
    assert vol.shape == (1, 128, 128) and vol.meta["n_skipped_files"] == 1


def test_a_private_element_with_an_unknown_vr_does_not_reject_the_file(tmp_path: Path) -> None:
    """The reader never uses private elements; vendors write odd ones (reviewer's find)."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    ds.add_new(0x00290010, "LO", "ACME")
    ds.add_new(0x00291010, "LO", "abcd")
    ds.save_as(tmp_path / "ok.dcm")
    src = (tmp_path / "ok.dcm").read_bytes()
    at = src.index(b"\x29\x00\x10\x10LO")
    (tmp_path / "ok.dcm").write_bytes(src[:at + 4] + b"CP" + src[at + 6:])  # an unknown VR, same layout
    vol = read_ct(tmp_path / "ok.dcm")
    reference = read_ct(get_testdata_file("CT_small.dcm", download=False))
    np.testing.assert_array_equal(vol.hu, reference.hu)


def test_a_folder_of_broken_headers_says_so_apart_from_non_dicom(tmp_path: Path) -> None:
    src = Path(get_testdata_file("CT_small.dcm", download=False)).read_bytes()
    at = src.index(b"\x08\x00\x60\x00CS")
    (tmp_path / "bad_vr.dcm").write_bytes(src[:at + 4] + b"CP" + src[at + 6:])
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.warns(CTReadWarning, match="skipped bad_vr.dcm"), pytest.raises(
            CTReadError, match=r"1 non-DICOM file\(s\) skipped, 1 DICOM file\(s\) with an unreadable header"):
        read_ct(tmp_path)


@pytest.mark.parametrize("frames", ["2000000000", "40000"])
def test_a_number_of_frames_the_file_cannot_hold_is_refused_before_allocating(tmp_path: Path, frames: str) -> None:
    """Found by the fuzz test: a huge NumberOfFrames made the reader allocate until MemoryError."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    ds.NumberOfFrames = frames
    ds.save_as(tmp_path / "frames.dcm")
    with pytest.raises(CTReadError, match=r"frames.dcm: NumberOfFrames x Rows x Columns .* but the file has"):
        read_ct(tmp_path / "frames.dcm")


def test_a_ct_file_without_modality_is_read_as_ct_with_a_warning(tmp_path: Path) -> None:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    del ds.Modality
    ds.save_as(tmp_path / "nomod.dcm")
    with pytest.warns(CTReadWarning, match="no Modality element; read as CT because its SOP Class is CT Image"):
        vol = read_ct(tmp_path / "nomod.dcm")
    assert vol.meta["is_ct"] and vol.meta["modality"] == ""
    np.testing.assert_array_equal(vol.hu, read_ct(get_testdata_file("CT_small.dcm", download=False)).hu)


def test_a_numeric_rescale_with_a_wrong_vr_is_applied_and_inf_is_refused(tmp_path: Path) -> None:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    reference = read_ct(get_testdata_file("CT_small.dcm", download=False)).hu
    slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
    ds["RescaleSlope"] = DataElement(Tag("RescaleSlope"), "LO", "2")
    ds.save_as(tmp_path / "lo.dcm")
    hu = read_ct(tmp_path / "lo.dcm").hu
    np.testing.assert_allclose(hu, (reference - intercept) / slope * 2 + intercept, atol=1e-3)
    ds["RescaleSlope"] = DataElement(Tag("RescaleSlope"), "LO", "inf")
    ds.save_as(tmp_path / "inf.dcm")
    with pytest.raises(CTReadError, match="RescaleSlope is 'inf', not a finite number"):
        read_ct(tmp_path / "inf.dcm")
