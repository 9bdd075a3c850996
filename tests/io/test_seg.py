"""DICOM SEG masks: frames matched to the CT by SOP Instance UID (not order), several segments,
another series refused, and ``save_mask(format="seg")`` read back by highdicom's own reader."""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pydicom
import pytest

from napari_ctinterp.io import MaskIOError, load_mask, read_ct, save_mask, write_dicom_series
from napari_ctinterp.phantom import make_slice


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    root = tmp_path_factory.mktemp("seg")
    slices = [make_slice(300 + z, contrast=True, phase="venous", level=0.5 + 0.02 * z, size=64) for z in range(4)]
    write_dicom_series(slices, root / "ct", seed=1)
    write_dicom_series(slices[:2], root / "other", seed=2)
    return root, read_ct(root / "ct"), read_ct(root / "other")


def _labels(shape):
    lab = np.zeros(shape, dtype=np.uint8)
    lab[0, 10:30, 10:25] = 1
    lab[2, 20:40, 30:50] = 2
    lab[3, 5:15, 5:15] = 1
    return lab


def _seg_by_highdicom(ct, lab, path, order, kind=hd.seg.SegmentationTypeValues.BINARY):
    """A two-segment SEG written by highdicom itself (binary unless ``kind``), frames in the given
    (shuffled) order; ``lab`` is labels (Z, H, W) or, fractional, (Z, H, W, 2) in [0, 1]."""
    sources = [pydicom.dcmread(ct.meta["files"][i]) for i in order]
    category = hd.sr.CodedConcept("91723000", "SCT", "Anatomical Structure")
    desc = [hd.seg.SegmentDescription(segment_number=n, segment_label=name, segmented_property_category=category,
                                      segmented_property_type=hd.sr.CodedConcept("85756007", "SCT", "Tissue"),
                                      algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
            for n, name in ((1, "aorta"), (2, "pulmonary trunk"))]
    seg = hd.seg.Segmentation(source_images=sources, pixel_array=lab[order],
                              segmentation_type=kind, segment_descriptions=desc,
                              series_instance_uid=hd.UID(), series_number=5, sop_instance_uid=hd.UID(),
                              instance_number=1, manufacturer="test", manufacturer_model_name="test",
                              software_versions="0", device_serial_number="0")
    seg.save_as(str(path))
    return path


def test_a_seg_with_shuffled_frames_and_two_segments_loads_equal_to_the_mask(series):
    root, ct, _ = series
    lab = _labels(ct.hu.shape)
    path = _seg_by_highdicom(ct, lab, root / "expert_seg.dcm", order=[2, 0, 3, 1])
    mask = load_mask(path, reference=ct)
    np.testing.assert_array_equal(mask.labels, lab)
    assert mask.meta["segment_names"] == {1: "aorta", 2: "pulmonary trunk"}
    assert mask.meta["format"] == "dicom-seg" and mask.spacing_mm == ct.spacing_mm
    no_suffix = root / "SEG0001"
    no_suffix.write_bytes(path.read_bytes())
    np.testing.assert_array_equal(load_mask(no_suffix, reference=ct).labels, lab)  # found by its preamble


def test_fractional_and_label_map_segs_load_as_labels(series):
    root, ct, _ = series
    lab = _labels(ct.hu.shape)
    rng = np.random.default_rng(0)
    frac = np.zeros((*lab.shape, 2), np.float32)
    for i in (0, 1):  # inside a segment: 0.5…1; outside: 0…0.49 (below the 0.5 that counts)
        inside = lab == i + 1
        frac[..., i] = np.where(inside, rng.uniform(0.5, 1.0, lab.shape), rng.uniform(0.0, 0.49, lab.shape))
    path = _seg_by_highdicom(ct, frac, root / "frac_seg.dcm", order=[3, 1, 0, 2],
                             kind=hd.seg.SegmentationTypeValues.FRACTIONAL)
    mask = load_mask(path, reference=ct)
    assert mask.meta["segmentation_type"] == "FRACTIONAL"
    np.testing.assert_array_equal(mask.labels, lab)
    path = _seg_by_highdicom(ct, lab, root / "labelmap_seg.dcm", order=[1, 3, 2, 0],
                             kind=hd.seg.SegmentationTypeValues.LABELMAP)
    mask = load_mask(path, reference=ct)
    assert mask.meta["segmentation_type"] == "LABELMAP"
    np.testing.assert_array_equal(mask.labels, lab)
    assert mask.meta["segment_names"] == {1: "aorta", 2: "pulmonary trunk"}


def test_a_seg_of_another_series_is_refused_naming_both(series):
    root, ct, other = series
    lab = _labels(ct.hu.shape)[:2]
    lab[1, 1:5, 1:5] = 2
    path = _seg_by_highdicom(other, lab, root / "other_seg.dcm", order=[0, 1])
    with pytest.raises(MaskIOError) as err:
        load_mask(path, reference=ct)
    assert other.meta["series_uid"] in str(err.value) and ct.meta["series_uid"] in str(err.value)
    with pytest.raises(MaskIOError, match="reference=the CT"):
        load_mask(path)


def test_save_mask_as_seg_round_trips_through_highdicoms_reader(series, tmp_path):
    _, ct, _ = series
    lab = _labels(ct.hu.shape) * 3  # labels 3 and 6: renumbered 1, 2 in the SEG, names kept
    out = save_mask(lab, tmp_path / "painted.dcm", spacing_mm=ct.spacing_mm, format="seg", reference=ct,
                    names={3: "blood pool", 6: "vessel"})
    seg = hd.seg.segread(str(out))
    uids = [str(pydicom.dcmread(f).SOPInstanceUID) for f in ct.meta["files"]]
    pix = seg.get_pixels_by_source_instance(uids, combine_segments=True, assert_missing_frames_are_empty=True)
    np.testing.assert_array_equal(pix, np.where(lab == 3, 1, np.where(lab == 6, 2, 0)))
    assert [seg.get_segment_description(n).segment_label for n in (1, 2)] == ["blood pool", "vessel"]
    assert str(seg.ReferencedSeriesSequence[0].SeriesInstanceUID) == ct.meta["series_uid"]
    back = load_mask(out, reference=ct)
    assert back.meta["segment_names"] == {1: "blood pool", 2: "vessel"}
    with pytest.raises(MaskIOError, match="empty"):
        save_mask(np.zeros_like(lab), tmp_path / "empty.dcm", spacing_mm=ct.spacing_mm, reference=ct)


def _nifti(data, affine, path):
    import nibabel as nib

    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


def test_a_nifti_in_another_orientation_loads_aligned_and_other_grids_are_refused(series, tmp_path):
    from napari_ctinterp.io.masks import ct_ras_affine

    _, ct, _ = series
    lab = _labels(ct.hu.shape)
    xyz = lab.transpose(2, 1, 0)  # CT (x, y, z)
    nx = xyz.shape[0]
    # new index (i, j, k) = CT (x = nx-1-j, y = i, z = k): axes swapped and one flipped
    perm = np.array([[0, -1, 0, nx - 1], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float)
    data = np.transpose(xyz[::-1], (1, 0, 2)).astype(np.int16)
    aligned = load_mask(_nifti(data, ct_ras_affine(ct) @ perm, tmp_path / "other_tool.nii.gz"), reference=ct)
    np.testing.assert_array_equal(aligned.labels, lab)
    assert aligned.meta["aligned_to"] == ct.meta["series_uid"]
    turn = np.eye(4)
    turn[:2, :2] = [[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]]
    with pytest.raises(MaskIOError, match="rotated"):
        load_mask(_nifti(xyz.astype(np.int16), ct_ras_affine(ct) @ turn, tmp_path / "rot.nii.gz"), reference=ct)
    half = np.eye(4)
    half[0, 3] = 0.5
    with pytest.raises(MaskIOError, match="fraction of a voxel"):
        load_mask(_nifti(xyz.astype(np.int16), ct_ras_affine(ct) @ half, tmp_path / "half.nii.gz"), reference=ct)
    with pytest.raises(MaskIOError, match="does not cover"):
        load_mask(_nifti(xyz[:, :, :2].astype(np.int16), ct_ras_affine(ct), tmp_path / "short.nii.gz"), reference=ct)


def test_a_probability_nifti_is_refused_and_a_placeholder_affine_is_used_in_index_order(series, tmp_path):
    _, ct, _ = series
    lab = _labels(ct.hu.shape)
    prob = (lab.transpose(2, 1, 0) * 0.7).astype(np.float32)
    with pytest.raises(MaskIOError, match="non-integer"):
        load_mask(_nifti(prob, np.eye(4), tmp_path / "prob.nii.gz"), reference=ct)
    with pytest.warns(UserWarning, match="placeholder"):
        m = load_mask(_nifti(lab.transpose(2, 1, 0).astype(np.int16), np.eye(4), tmp_path / "eye.nii.gz"),
                      reference=ct)
    np.testing.assert_array_equal(m.labels, lab)
