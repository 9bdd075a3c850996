"""DICOM SEG masks, read into a CT's (Z, H, W) and written back referencing its series (highdicom).

Reading: a SEG's frames are matched to the CT's slices by the SOP Instance UID each frame
references (``Segmentation.get_pixels_by_source_instance``), never by their order in the file;
slices the SEG has no frame for are empty. Binary, fractional (≥ 0.5 of the maximum counts) and
label-map segmentations; several segments become labels 1…n in segment order (where they
overlap, the later segment wins) and their names are kept (``Mask.meta["segment_names"]``). A
SEG that references another series is refused with both series named.

Writing: a binary SEG whose segments are the mask's labels (renumbered 1…n in increasing label
order, each named ``names[label]`` or ``label <value>``), referencing the source CT files, so a
PACS or another viewer takes the painted mask back. Frames of empty slices are omitted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .dicom import CTVolume
from .errors import MaskIOError

#: Category and type written for every segment (SNOMED CT: anatomical structure / tissue).
_CATEGORY = ("91723000", "SCT", "Anatomical Structure")
_TYPE = ("85756007", "SCT", "Tissue")


def is_dicom_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a DICOM file (the ``DICM`` preamble)."""
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def _reference_uids(reference: CTVolume) -> list[str]:
    """SOP Instance UID of each slice of the CT, in its slice order."""
    import pydicom

    files = reference.meta.get("files") or []
    if len(files) != reference.hu.shape[0]:
        raise MaskIOError(f"the CT was not read from one file per slice ({len(files)} files for "
                          f"{reference.hu.shape[0]} slices): a DICOM SEG can only be matched to a single-frame "
                          f"CT series")
    return [str(pydicom.dcmread(f, stop_before_pixels=True, specific_tags=["SOPInstanceUID"]).SOPInstanceUID)
            for f in files]


def read_seg(path: str | os.PathLike[str], reference: CTVolume) -> tuple[np.ndarray, dict]:
    """Labels (Z, H, W) of a DICOM SEG aligned to ``reference``, and meta (segment names, series)."""
    import highdicom as hd

    try:
        seg = hd.seg.segread(str(path))
    except Exception as e:  # noqa: BLE001 - any reader failure: say what the file is not
        raise MaskIOError(f"{Path(path).name} is not a readable DICOM SEG: {e}") from None
    ct_series = str(reference.meta.get("series_uid", ""))
    referenced = [str(item.SeriesInstanceUID) for item in getattr(seg, "ReferencedSeriesSequence", [])]
    if ct_series and referenced and ct_series not in referenced:
        raise MaskIOError(f"{Path(path).name} segments series {', '.join(referenced)}, not the open CT's series "
                          f"{ct_series}: open the CT it was made on")
    uids = _reference_uids(reference)
    sources = {str(u[2]) for u in seg.get_source_image_uids()}
    if not sources & set(uids):
        raise MaskIOError(f"{Path(path).name} references none of the open CT's {len(uids)} slices (series "
                          f"{ct_series or 'unknown'}; the SEG's series: {', '.join(referenced) or 'unknown'})")
    numbers = list(seg.get_segment_numbers())
    per_segment = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, segment_numbers=numbers,
                                                    combine_segments=False, assert_missing_frames_are_empty=True,
                                                    rescale_fractional=True, skip_overlap_checks=True)
    if per_segment.ndim == 3:
        per_segment = per_segment[..., None]
    if per_segment.shape[1:3] != reference.hu.shape[1:]:
        raise MaskIOError(f"the SEG's frames are {per_segment.shape[1:3]}, the CT's slices {reference.hu.shape[1:]}")
    labels = np.zeros(reference.hu.shape, dtype=np.uint16 if len(numbers) > 255 else np.uint8)
    for i in range(len(numbers)):
        labels[per_segment[..., i] >= 0.5] = i + 1  # fractional: rescaled to [0, 1]; binary: 0 / 1
    names = {i + 1: str(seg.get_segment_description(n).segment_label) for i, n in enumerate(numbers)}
    meta = {"format": "dicom-seg", "segment_names": names, "segment_numbers": numbers,
            "segmentation_type": str(seg.SegmentationType), "series_uid": referenced[0] if referenced else "",
            "source": str(path)}
    return labels, meta


def write_seg(labels: np.ndarray, path: str | os.PathLike[str], reference: CTVolume, *,
              names: Mapping[int, str] | None = None, description: str = "napari-ctinterp reference mask") -> Path:
    """Write a binary DICOM SEG of ``labels`` (Z, H, W) on the CT series ``reference`` was read from."""
    import highdicom as hd
    import pydicom

    from .. import __version__

    lab = np.asarray(labels)
    if lab.ndim == 2 and reference.hu.shape[0] == 1:
        lab = lab[None]
    if lab.shape != reference.hu.shape:
        raise MaskIOError(f"mask shape {lab.shape} differs from the CT's {reference.hu.shape}: a SEG is written on "
                          f"the CT's own slices")
    values = [int(v) for v in np.unique(lab) if v != 0]
    if not values:
        raise MaskIOError("the mask is empty: paint something before saving it as a DICOM SEG")
    files = reference.meta.get("files") or []
    if len(files) != lab.shape[0]:
        raise MaskIOError(f"a DICOM SEG is written on a single-frame CT series (one file per slice); this CT has "
                          f"{len(files)} file(s) for {lab.shape[0]} slices (an enhanced multi-frame CT or not DICOM)")
    sources = [pydicom.dcmread(f) for f in files]
    numbered = np.zeros(lab.shape, dtype=np.uint8 if len(values) < 256 else np.uint16)
    for i, v in enumerate(values):
        numbered[lab == v] = i + 1
    names = dict(names or {})
    descriptions = [hd.seg.SegmentDescription(
        segment_number=i + 1, segment_label=str(names.get(v, f"label {v}"))[:64],
        segmented_property_category=hd.sr.CodedConcept(*_CATEGORY),
        segmented_property_type=hd.sr.CodedConcept(*_TYPE),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL) for i, v in enumerate(values)]
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=numbered, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=900,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="napari-ctinterp",
        manufacturer_model_name="napari-ctinterp", software_versions=str(__version__), device_serial_number="0",
        content_description=description[:64], content_label="MASK")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(str(out))
    return out
