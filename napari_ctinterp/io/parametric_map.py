"""Attribution maps as DICOM Parametric Maps (highdicom), on the CT series they were computed on.

Writing: a Parametric Map with float32 pixels (*Float Pixel Data*), one frame per slice that holds
a map, each frame derived from (and positioned as) its CT slice, so the map shares the series'
frame of reference and a PACS or another viewer overlays it on the CT. The real-world value
mapping says what the numbers are: the unit ``[arb'U]`` (UCUM), "attribution (arbitrary)", slope
1, intercept 0. The map's record (method, variant, model, target, …) and its CT's grid are kept
in a private block (group 0x0011, creator :data:`PRIVATE_CREATOR`) as JSON.

Reading: frames are matched to the CT's slices by the SOP Instance UID each frame is derived from
(never by their order in the file); slices without a frame are 0. A map whose series, frame of
reference or grid is not the CT's is refused. Without a CT, the frames are put in order along
the slice normal on their own grid.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .map_grid import CTGrid, MapIOError, refusal

__all__ = ["PARAMETRIC_MAP_SOP_CLASS", "PRIVATE_CREATOR", "is_parametric_map", "read_parametric_map",
           "write_parametric_map"]

#: SOP Class UID of Parametric Map Storage.
PARAMETRIC_MAP_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.30"
#: Private creator of the block holding the map's record and its CT grid.
PRIVATE_CREATOR = "napari-ctinterp map"
_GROUP, _ELEMENT = 0x0011, 0x01
#: The unit of every map's values (UCUM arbitrary unit).
UNIT = ("[arb'U]", "UCUM", "attribution (arbitrary)")


def is_parametric_map(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a DICOM Parametric Map (its SOP Class), reading the header only."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    except Exception:  # noqa: BLE001 - not readable as DICOM: not a map
        return False
    return str(ds.get("SOPClassUID", "")) == PARAMETRIC_MAP_SOP_CLASS


def _ascii(text: str, n: int) -> str:
    return text.encode("ascii", "replace").decode()[:n]


def write_parametric_map(values: np.ndarray, path: Path, reference: Any, grid: CTGrid, *, meta: Mapping[str, Any],
                         slices: Sequence[int], ndim: int) -> Path:
    """Write ``values`` (Z, H, W) on ``reference``'s series: one frame per slice of ``slices``."""
    import highdicom as hd
    import pydicom

    from .. import __version__

    files = list((getattr(reference, "meta", {}) or {}).get("files") or [])
    if len(files) != values.shape[0]:
        raise MapIOError(f"a DICOM Parametric Map is written on a single-frame CT series (one file per slice); this "
                         f"CT has {len(files)} file(s) for {values.shape[0]} slice(s) (not DICOM, or an enhanced "
                         f"multi-frame CT): save the map as .nii.gz instead")
    try:
        sources = [pydicom.dcmread(files[z], stop_before_pixels=True) for z in slices]
    except Exception as exc:  # noqa: BLE001 - a moved or deleted file: say which
        raise MapIOError(f"cannot read the CT's files to reference them ({exc}): the series was moved or deleted "
                         f"since it was opened; open it again, or save the map as .nii.gz") from exc
    frames = np.ascontiguousarray(values[list(slices)], dtype=np.float32)
    finite = frames[np.isfinite(frames)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    method, variant = str(meta.get("method", "")), str(meta.get("variant", ""))
    what = " ".join(p for p in (method, variant) if p) or "attribution"
    mapping = hd.pm.RealWorldValueMapping(
        lut_label="attribution", lut_explanation=_ascii(f"{what} attribution map (arbitrary units)", 64),
        unit=hd.sr.CodedConcept(*UNIT), value_range=(lo, hi), slope=1.0, intercept=0.0)
    window = hd.VOILUTTransformation(window_center=(lo + hi) / 2, window_width=max(hi - lo, 1e-6))
    try:
        pm = hd.pm.ParametricMap(
            source_images=sources, pixel_array=frames, series_instance_uid=hd.UID(), series_number=901,
            sop_instance_uid=hd.UID(), instance_number=1, manufacturer="napari-ctinterp",
            manufacturer_model_name="napari-ctinterp", software_versions=str(__version__), device_serial_number="0",
            contains_recognizable_visual_features=False, real_world_value_mappings=[mapping],
            voi_lut_transformations=[window], content_label="ATTRIBUTION",
            content_description=_ascii(f"{what} attribution map, model {meta.get('model', '?')}", 64))
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise MapIOError(f"highdicom cannot make a Parametric Map on this series: {exc}. Save the map as .nii.gz "
                         f"instead") from exc
    pm.SeriesDescription = _ascii(f"napari-ctinterp {what} map", 64)
    record = {"meta": dict(meta), "grid": grid.to_dict(), "slices": [int(z) for z in slices], "ndim": int(ndim)}
    block = pm.private_block(_GROUP, PRIVATE_CREATOR, create=True)
    block.add_new(_ELEMENT, "UT", json.dumps(record))
    path.parent.mkdir(parents=True, exist_ok=True)
    pm.save_as(str(path))
    return path


def _record(ds: Any) -> dict[str, Any]:
    """The private block's JSON ({} for a Parametric Map written elsewhere)."""
    try:
        return json.loads(ds.private_block(_GROUP, PRIVATE_CREATOR)[_ELEMENT].value)
    except (KeyError, ValueError, TypeError):
        return {}


def read_parametric_map(path: str | os.PathLike[str], reference: Any = None
                        ) -> tuple[np.ndarray, CTGrid | None, dict[str, Any], tuple[int, ...], dict[str, Any]]:
    """Values of a Parametric Map on ``reference``'s grid (or on its own grid without one).

    Returns
    -------
    values, grid, meta, slices, info
        float32 (Z, H, W); the grid recorded at writing (None for a map written elsewhere); the
        map's record; the slices holding a frame; ``info``: ``spacing_mm``, ``origin``,
        ``series_uid``, ``frame_of_reference_uid``, ``ndim``.
    """
    import highdicom as hd
    import pydicom

    src = Path(path)
    try:
        ds = pydicom.dcmread(src)
        pm = hd.pm.ParametricMap.from_dataset(ds, copy=False)
    except Exception as exc:  # noqa: BLE001 - any reader failure: say what the file is not
        raise MapIOError(f"{src.name} is not a readable DICOM Parametric Map: {exc}") from None
    record = _record(ds)
    saved = CTGrid.from_dict(record["grid"]) if isinstance(record.get("grid"), Mapping) else None
    series = [str(item.SeriesInstanceUID) for item in ds.get("ReferencedSeriesSequence", [])]
    frame_uid = str(ds.get("FrameOfReferenceUID", "") or "")
    info = {"series_uid": series[0] if series else "", "frame_of_reference_uid": frame_uid,
            "ndim": int(record.get("ndim", 3))}
    meta = dict(record.get("meta") or {})
    if reference is None:
        values, spacing, origin, slices = _own_grid(ds, saved)
        return values, saved, meta, slices, {**info, "spacing_mm": spacing, "origin": origin}
    ct = CTGrid.from_reference(reference)
    belongs = saved or (f"series {', '.join(series)}" if series else "another series")
    reasons = saved.mismatch(ct) if saved is not None else []
    if not reasons and ct.series_uid and series and ct.series_uid not in series:
        reasons.append("another series")
    if not reasons and frame_uid and ct.frame_of_reference_uid and frame_uid != ct.frame_of_reference_uid:
        reasons.append("another frame of reference")
    if not reasons and (int(ds.Rows), int(ds.Columns)) != tuple(ct.shape[1:]):
        reasons.append(f"frames of {ds.Rows}×{ds.Columns}, not {ct.shape[1]}×{ct.shape[2]}")
    uids = _slice_uids(reference, src.name) if not reasons else []
    sources = {str(u[2]) for u in pm.get_source_image_uids()}
    if not reasons and sources - set(uids):
        reasons.append(f"{len(sources - set(uids))} of its frames are derived from slices that are not in this CT")
    if reasons:
        raise refusal(src.name, belongs, ct, reasons)
    present = [z for z, u in enumerate(uids) if u in sources]
    values = np.zeros(ct.shape, dtype=np.float32)
    if present:
        arr = pm.get_pixels_by_source_instance([uids[z] for z in present], dtype=np.float32)
        values[present] = arr[..., 0] if arr.ndim == 4 else arr
    slices = tuple(int(z) for z in record.get("slices", present))
    return values, saved, meta, slices, {**info, "spacing_mm": ct.spacing_mm, "origin": ct.origin}


def _slice_uids(reference: Any, name: str) -> list[str]:
    """SOP Instance UID of each of the CT's slices (a single-frame series only)."""
    from .errors import MaskIOError
    from .seg import _reference_uids

    try:
        return _reference_uids(reference)
    except (MaskIOError, OSError) as exc:
        raise MapIOError(f"{name} is a DICOM Parametric Map, matched to the CT slice by slice: {exc}") from exc


def _real_world(ds: Any, mapping: Any) -> np.ndarray:
    """Every frame's values (frames, H, W) in file order: float pixels as stored, integer pixels
    through the first real-world value mapping's slope and intercept."""
    arr = np.asarray(ds.pixel_array)
    arr = arr.reshape(-1, int(ds.Rows), int(ds.Columns))
    if np.issubdtype(arr.dtype, np.floating) or mapping is None:
        return arr.astype(np.float32)
    slope = float(mapping.get("RealWorldValueSlope", 1.0))
    intercept = float(mapping.get("RealWorldValueIntercept", 0.0))
    return (arr.astype(np.float64) * slope + intercept).astype(np.float32)


def _own_grid(ds: Any, saved: CTGrid | None
              ) -> tuple[np.ndarray, tuple[float, ...], tuple[float, float, float] | None, tuple[int, ...]]:
    """The frames in order along the slice normal: on the recorded CT grid when there is one
    (slices without a frame are 0), else stacked with the spacing of their positions."""
    n = int(ds.get("NumberOfFrames", 1))
    shared = ds.SharedFunctionalGroupsSequence[0]
    per_frame = ds.PerFrameFunctionalGroupsSequence

    def item(i: int, group: str) -> Any:
        seq = per_frame[i].get(group) or shared.get(group)
        return seq[0] if seq else None

    iop = np.asarray(item(0, "PlaneOrientationSequence").ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    positions = [np.asarray(item(i, "PlanePositionSequence").ImagePositionPatient, dtype=float) for i in range(n)]
    keys = np.array([float(p @ normal) for p in positions])
    order = np.argsort(keys, kind="stable")
    frames = _real_world(ds, item(0, "RealWorldValueMappingSequence"))[order]
    measures = item(0, "PixelMeasuresSequence")
    dy, dx = (float(v) for v in measures.PixelSpacing)
    if saved is not None and saved.origin is not None:
        dz = saved.spacing_mm[0]
        index = np.round((keys[order] - float(np.asarray(saved.origin) @ normal)) / dz).astype(int)
        if index.min() >= 0 and index.max() < saved.shape[0] and frames.shape[1:] == tuple(saved.shape[1:]):
            values = np.zeros(saved.shape, dtype=np.float32)
            values[index] = frames
            return values, saved.spacing_mm, saved.origin, tuple(int(z) for z in index)
    gaps = np.diff(keys[order])
    dz = float(np.median(gaps)) if gaps.size else float(getattr(measures, "SliceThickness", 1.0) or 1.0)
    origin = tuple(float(v) for v in positions[int(order[0])])
    return frames, (dz, dy, dx), origin, tuple(range(n))  # type: ignore[return-value]
