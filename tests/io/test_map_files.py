"""Attribution maps saved as NIfTI and as a DICOM Parametric Map on a phantom CT series, read back
aligned (equal values, the series' geometry, highdicom's own reader agrees) and refused on any
other CT with a message that names the CT the map belongs to."""

from __future__ import annotations

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest

from napari_ctinterp.io import (
    MapIOError,
    is_map_file,
    load_map,
    read_ct,
    save_map,
    save_mask,
    saved_grid,
    write_dicom_series,
)
from napari_ctinterp.io.masks import ct_ras_affine
from napari_ctinterp.phantom import make_volume

META = {"method": "IGB", "variant": "SG2", "model": "demo-3d", "target": np.int64(2), "kind": "pixel",
        "domain": {"0": {"score": np.float32(0.5)}}, "slices": (0, 1)}


@pytest.fixture(scope="module")
def cts(tmp_path_factory):
    """The CT (12 slices of 32², origin off zero), the same volume as another series, and another volume."""
    root = tmp_path_factory.mktemp("maps")
    vol = make_volume(4, n_slices=12, size=32, spacing_mm=2.5)
    write_dicom_series(vol.hu, root / "ct", spacing_mm=vol.spacing_mm, origin=(-20.0, 15.5, -40.0), seed=1)
    write_dicom_series(vol.hu, root / "copy", spacing_mm=vol.spacing_mm, origin=(-20.0, 15.5, -40.0), seed=7)
    other = make_volume(5, n_slices=10, size=32, spacing_mm=3.0)
    write_dicom_series(other.hu, root / "other", spacing_mm=other.spacing_mm, seed=2)
    return root, read_ct(root / "ct"), read_ct(root / "copy"), read_ct(root / "other")


def _values(shape, seed=0):
    values = np.random.default_rng(seed).gamma(1.0, 1.0, shape).astype(np.float32)
    values[0, 0, 0] = np.nan  # a map may hold NaN (voxels outside a model's input): kept
    return values


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".dcm"])
def test_a_map_read_back_on_its_ct_equals_the_written_one(cts, suffix):
    root, ct, _, _ = cts
    values = _values(ct.hu.shape)
    path = save_map(values, root / "out" / f"igb{suffix}", reference=ct, meta=META)
    assert is_map_file(path)
    back = load_map(path, reference=ct)
    np.testing.assert_allclose(back.values, values, equal_nan=True)
    assert back.values.dtype == np.float32 and back.aligned
    assert back.meta["method"] == "IGB" and back.meta["target"] == 2 and back.meta["slices"] == [0, 1]
    assert back.meta["domain"]["0"]["score"] == pytest.approx(0.5)
    assert back.spacing_mm == ct.spacing_mm and back.origin == ct.origin
    assert back.info["series_uid"] == ct.meta["series_uid"]
    assert saved_grid(path)[1] == ct.meta["series_uid"]
    alone = load_map(path)  # without the CT: its own grid, the same values
    np.testing.assert_allclose(alone.values, values, equal_nan=True)
    np.testing.assert_allclose(alone.spacing_mm, ct.spacing_mm)
    np.testing.assert_allclose(alone.origin, ct.origin)


def test_the_nifti_affine_puts_each_voxel_where_the_dicom_slice_says(cts):
    root, ct, _, _ = cts
    path = save_map(_values(ct.hu.shape), root / "out" / "geometry.nii.gz", reference=ct, meta=META)
    img = nib.load(path)
    np.testing.assert_allclose(img.affine, ct_ras_affine(ct), atol=1e-4)  # the masks' convention
    z, row, col = 7, 5, 3
    ds = pydicom.dcmread(ct.meta["files"][z])
    iop = np.asarray(ds.ImageOrientationPatient, float)
    dr, dc = (float(v) for v in ds.PixelSpacing)
    lps = np.asarray(ds.ImagePositionPatient, float) + col * dc * iop[:3] + row * dr * iop[3:]
    ras = img.affine @ np.array([col, row, z, 1.0])
    np.testing.assert_allclose(ras[:3], lps * [-1, -1, 1], atol=1e-3)
    assert img.header.get_intent()[0] == "estimate" and img.header.get_intent()[2] == "attribution"


def test_highdicom_reads_the_parametric_map_values_references_and_unit(cts):
    root, ct, _, _ = cts
    values = _values(ct.hu.shape, seed=1)
    path = save_map(values, root / "out" / "pm.dcm", reference=ct, meta=META)
    ds = pydicom.dcmread(path)
    pm = hd.pm.ParametricMap.from_dataset(ds)
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in ct.meta["files"]]
    uids = [str(s.SOPInstanceUID) for s in sources]
    assert str(ds.SOPClassUID) == "1.2.840.10008.5.1.4.1.1.30"  # Parametric Map Storage
    assert "FloatPixelData" in ds and int(ds.NumberOfFrames) == ct.hu.shape[0]
    assert str(ds.FrameOfReferenceUID) == str(sources[0].FrameOfReferenceUID)
    assert [str(s.SeriesInstanceUID) for s in ds.ReferencedSeriesSequence] == [ct.meta["series_uid"]]
    np.testing.assert_allclose(pm.get_pixels_by_source_instance(uids), values, equal_nan=True)
    for frame in ds.PerFrameFunctionalGroupsSequence:  # each frame lies where its source slice lies
        src = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        position = frame.PlanePositionSequence[0].ImagePositionPatient
        np.testing.assert_allclose(position, sources[uids.index(src)].ImagePositionPatient)
    mapping = ds.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
    unit = mapping.MeasurementUnitsCodeSequence[0]
    assert unit.CodeMeaning == "attribution (arbitrary)" and unit.CodingSchemeDesignator == "UCUM"
    assert float(mapping.RealWorldValueSlope) == 1.0 and float(mapping.RealWorldValueIntercept) == 0.0


def test_a_parametric_map_of_some_slices_has_frames_for_those_only(cts):
    root, ct, _, _ = cts
    values = np.zeros(ct.hu.shape, np.float32)
    values[[3, 8]] = _values((2, *ct.hu.shape[1:]), seed=2)
    path = save_map(values, root / "out" / "two.dcm", reference=ct, meta=META, slices=[8, 3])
    assert int(pydicom.dcmread(path, stop_before_pixels=True).NumberOfFrames) == 2
    back = load_map(path, reference=ct)
    np.testing.assert_allclose(back.values, values, equal_nan=True)
    assert back.slices == (3, 8)
    alone = load_map(path)  # on the recorded grid: the two frames at their slices
    np.testing.assert_allclose(alone.values, values, equal_nan=True)


@pytest.mark.parametrize("suffix", [".nii.gz", ".dcm"])
def test_a_map_is_refused_on_another_volume_and_on_another_series_of_the_same_grid(cts, suffix):
    root, ct, copy, other = cts
    path = save_map(_values(ct.hu.shape), root / "out" / f"refuse{suffix}", reference=ct, meta=META)
    with pytest.raises(MapIOError, match=f"computed on series {ct.meta['series_uid']}.*another grid shape"
                                         r".*open that series and open the map again"):
        load_map(path, reference=other)
    with pytest.raises(MapIOError, match="another series"):
        load_map(path, reference=copy)  # same voxels and grid, but not the series the map was computed on


def test_a_float_nifti_from_another_tool_is_aligned_through_its_affine_or_refused(cts):
    root, ct, _, other = cts
    values = _values(ct.hu.shape, seed=3)
    affine = ct_ras_affine(ct)
    flip = np.eye(4)
    flip[0, 0], flip[0, 3] = -1.0, ct.hu.shape[2] - 1  # x stored right to left
    nib.save(nib.Nifti1Image(values.T[::-1], affine @ flip), root / "foreign.nii.gz")
    back = load_map(root / "foreign.nii.gz", reference=ct)
    np.testing.assert_allclose(back.values, values, equal_nan=True)
    assert back.meta == {} and back.grid is None
    with pytest.raises(MapIOError, match="shown only on the CT it was computed on"):
        load_map(root / "foreign.nii.gz", reference=other)


def test_a_2d_map_without_a_ct_keeps_its_shape_and_spacing(tmp_path):
    values = _values((1, 20, 24))[0]
    back = load_map(save_map(values, tmp_path / "slice.nii.gz", spacing_mm=(0.7, 0.8), meta={"method": "GC"}))
    np.testing.assert_allclose(back.values, values, equal_nan=True)
    assert back.spacing_mm == (0.7, 0.8) and back.meta == {"method": "GC"}
    assert back.values.shape == (20, 24) and back.origin is None


def test_bad_saves_and_loads_say_what_to_do(cts, tmp_path):
    _, ct, _, _ = cts
    with pytest.raises(MapIOError, match="not the CT's"):
        save_map(np.zeros((3, 32, 32)), tmp_path / "m.nii.gz", reference=ct)
    with pytest.raises(MapIOError, match="reference=the CTVolume"):
        save_map(np.zeros((3, 8, 8)), tmp_path / "m.dcm", spacing_mm=(1, 1, 1))
    with pytest.raises(MapIOError, match=r"\.nii\.gz"):
        save_map(np.zeros((3, 8, 8)), tmp_path / "m.tif", spacing_mm=(1, 1, 1))
    with pytest.raises(MapIOError, match="no finite value"):
        save_map(np.full((3, 8, 8), np.nan), tmp_path / "m.nii", spacing_mm=(1, 1, 1))
    mask = save_mask(np.ones((3, 8, 8), np.uint8), tmp_path / "mask.nii.gz", spacing_mm=(1, 1, 1))
    assert not is_map_file(mask)
    with pytest.raises(MapIOError, match="io.load_mask"):
        load_map(mask)
