"""Per-frame geometry of a DICOM series: positions, orientation, spacing, rescale; slice ordering.

Classic images (one slice per file) carry their geometry at the top level of the dataset.
Enhanced multi-frame images carry it in functional groups: per-frame items first, then the shared
item, then (for converted legacy objects) the top level.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import UID

from .dicom_files import DicomHeader
from .errors import CTReadError

__all__ = ["Frame", "Geometry", "check_pixel_claim", "check_sizes", "frames_of", "order_frames", "parse_rescale"]

_DEFAULT_ORIENTATION = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
_DUPLICATE_TOL_MM = 1e-3
_ORIENTATION_TOL = 1e-3
_SPACING_REL_TOL = 0.10


@dataclass(frozen=True)
class Frame:
    """One 2-D slice of a series: where it lies and how its stored values map to HU.

    ``index`` is the frame number inside a multi-frame file (None for a classic single-frame
    file). ``slope``/``intercept`` are set for multi-frame files only; classic files go through
    pydicom's ``apply_modality_lut`` (which also honours a Modality LUT Sequence).
    """

    header: DicomHeader
    index: int | None
    rows: int
    cols: int
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    pixel_spacing: tuple[float, float] | None
    thickness: float | None
    slope: float | None = None
    intercept: float | None = None


@dataclass(frozen=True)
class Geometry:
    """Frames in slice order and the volume geometry derived from them."""

    frames: tuple[Frame, ...]
    spacing_mm: tuple[float, float, float]
    origin: tuple[float, float, float]
    orientation: tuple[float, ...]
    normal: tuple[float, float, float]
    positions_mm: tuple[float, ...]
    warnings: tuple[str, ...]


def _floats(value: object, n: int) -> tuple[float, ...] | None:
    try:
        out = tuple(float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    return out if len(out) == n and all(np.isfinite(out)) else None


def _float(value: object) -> float | None:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) else None


def parse_rescale(value: object, keyword: str, where: str) -> float | None:
    """A RescaleSlope / RescaleIntercept value as a float; None when absent or empty.

    A value that is present but is not a finite number must not silently become the default (the
    HU would be wrong without a word): :class:`CTReadError` naming ``where`` (the file, and the
    frame of a multi-frame file) and the element.
    """
    if value is None or (isinstance(value, str | bytes) and not value.strip()):
        return None
    if isinstance(value, bytes):  # an element whose VR pydicom could not convert (e.g. declared OB)
        value = value.decode("latin-1").strip(" \x00")
    out = _float(value)
    if out is None:
        raise CTReadError(f"{where}: {keyword} is {value!r}, not a finite number, so the stored values cannot be "
                          "turned into Hounsfield units. Fix this element or re-export the series.")
    return out


def _rescale(ds: Dataset, frame: int, keyword: str, default: float, path: object) -> float:
    """A frame's RescaleSlope / RescaleIntercept (per-frame, shared, then top level), ``default`` when absent."""
    value = _attr(ds, frame, "PixelValueTransformationSequence", keyword)
    out = parse_rescale(value, keyword, f"{path} (frame {frame + 1})")
    return default if out is None else out


#: A header may claim at most this many bytes of pixel data beyond the file's size before it is
#: refused at once; a smaller shortfall (an ordinary truncated file) is found when decoding, where
#: ``bad_slices="nan"`` can turn it into NaN slices.
_CLAIM_SLACK_BYTES = 64 * 2**20


def check_pixel_claim(header: DicomHeader, rows: int, cols: int) -> None:
    """Refuse a header whose NumberOfFrames x Rows x Columns cannot be in the file.

    Uncompressed pixel data takes ``frames x rows x cols x BitsAllocated / 8`` bytes; compressed
    (encapsulated) data needs at least one 8-byte item per frame. A header claiming far more than
    the file holds would otherwise have the reader allocate gigabytes (a MemoryError, found by the
    fuzz test) before decoding fails.
    """
    ds = header.ds
    try:
        size = header.path.stat().st_size
    except OSError:
        return
    n = header.n_frames
    bits = ds.get("BitsAllocated", 16)
    bits = bits if isinstance(bits, int) and bits > 0 else 16
    syntax = getattr(ds, "file_meta", Dataset()).get("TransferSyntaxUID")
    try:
        encapsulated = syntax is not None and UID(str(syntax)).is_encapsulated
    except ValueError:  # not a transfer syntax UID: decoding will say so; bound it as if compressed
        encapsulated = True
    claimed = n * rows * cols * bits // 8
    if encapsulated and n * 8 > size:
        raise CTReadError(f"{header.path}: NumberOfFrames is {n}, but the {size}-byte file cannot hold that many "
                          "compressed frames. The header is corrupt; re-export the series.")
    if not encapsulated and claimed > size + _CLAIM_SLACK_BYTES:
        raise CTReadError(f"{header.path}: NumberOfFrames x Rows x Columns ({n} x {rows} x {cols}) at "
                          f"{bits} bits is {claimed / 2**20:.0f} MiB of pixel data, but the file has "
                          f"{size / 2**20:.1f} MiB. The header is corrupt or the file truncated; re-export it.")


def _functional_group(ds: Dataset, frame: int, keyword: str) -> Dataset | None:
    """First item of a functional group macro for one frame (per-frame, then shared)."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is not None and frame < len(per_frame):
        seq = per_frame[frame].get(keyword)
        if seq:
            return seq[0]
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        seq = shared[0].get(keyword)
        if seq:
            return seq[0]
    return None


def _attr(ds: Dataset, frame: int, group: str, keyword: str) -> object:
    item = _functional_group(ds, frame, group)
    if item is not None and keyword in item:
        return item.get(keyword)
    return ds.get(keyword)


def frames_of(header: DicomHeader) -> list[Frame]:
    """Split one DICOM file into its frames, with each frame's geometry.

    Raises
    ------
    CTReadError
        If the image is not single-channel (CT is always grayscale).
    """
    ds = header.ds
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        raise CTReadError(
            f"{header.path} is a colour image (SamplesPerPixel={ds.SamplesPerPixel}), not a CT "
            "slice. Remove it from the input or pass only the CT series' files."
        )
    rows, cols = int(ds.Rows), int(ds.Columns)
    check_pixel_claim(header, rows, cols)
    multi = "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds
    if not multi:
        frame = Frame(
            header=header,
            index=None if header.n_frames == 1 else 0,
            rows=rows,
            cols=cols,
            position=_floats(ds.get("ImagePositionPatient"), 3),  # type: ignore[arg-type]
            orientation=_floats(ds.get("ImageOrientationPatient"), 6),
            pixel_spacing=_floats(ds.get("PixelSpacing"), 2),  # type: ignore[arg-type]
            thickness=_float(ds.get("SliceThickness")),
        )
        if header.n_frames == 1:
            return [frame]
        # Classic multi-frame without functional groups: frames keep file order, no positions.
        return [
            Frame(header, i, rows, cols, None, frame.orientation, frame.pixel_spacing, frame.thickness)
            for i in range(header.n_frames)
        ]
    frames = []
    for i in range(header.n_frames):
        slope = _rescale(ds, i, "RescaleSlope", 1.0, header.path)
        intercept = _rescale(ds, i, "RescaleIntercept", 0.0, header.path)
        frames.append(
            Frame(
                header=header,
                index=i,
                rows=rows,
                cols=cols,
                position=_floats(_attr(ds, i, "PlanePositionSequence", "ImagePositionPatient"), 3),  # type: ignore[arg-type]
                orientation=_floats(_attr(ds, i, "PlaneOrientationSequence", "ImageOrientationPatient"), 6),
                pixel_spacing=_floats(_attr(ds, i, "PixelMeasuresSequence", "PixelSpacing"), 2),  # type: ignore[arg-type]
                thickness=_float(_attr(ds, i, "PixelMeasuresSequence", "SliceThickness")),
                slope=slope,
                intercept=intercept,
            )
        )
    return frames


def check_sizes(frames: Sequence[Frame]) -> None:
    """Raise :class:`CTReadError` unless all frames have the same rows and columns."""
    sizes = Counter((f.rows, f.cols) for f in frames)
    if len(sizes) <= 1:
        return
    examples = {}
    for f in frames:
        examples.setdefault((f.rows, f.cols), f.header.path.name)
    detail = ", ".join(f"{n} slice(s) of {r}x{c} (e.g. {examples[(r, c)]})" for (r, c), n in sizes.items())
    raise CTReadError(
        f"Slices of different sizes in one series: {detail}. A CT volume needs equally sized "
        "slices; remove the odd files (often a localiser/scout image) or pass only one size."
    )


def _orientation(frames: Sequence[Frame], warnings: list[str]) -> tuple[float, ...]:
    known = [f.orientation for f in frames if f.orientation is not None]
    if not known:
        warnings.append("no ImageOrientationPatient; assuming axial slices [1,0,0,0,1,0]")
        return _DEFAULT_ORIENTATION
    first = np.asarray(known[0])
    for o in known[1:]:
        if np.max(np.abs(np.asarray(o) - first)) > _ORIENTATION_TOL:
            raise CTReadError(
                "Slices with different orientations (ImageOrientationPatient) in one series: "
                f"{tuple(first)} and {o}. Pass the files of one stack only (e.g. only the axial ones)."
            )
    return tuple(float(v) for v in known[0])


def _pixel_spacing(frames: Sequence[Frame], warnings: list[str]) -> tuple[float, float]:
    known = [f.pixel_spacing for f in frames if f.pixel_spacing is not None]
    if not known:
        warnings.append("no PixelSpacing; assuming 1.0 mm pixels")
        return (1.0, 1.0)
    if any(np.max(np.abs(np.subtract(s, known[0]))) > 1e-4 * max(known[0]) for s in known[1:]):
        warnings.append(f"PixelSpacing differs between slices; using the first slice's {known[0]}")
    return (float(known[0][0]), float(known[0][1]))


def order_frames(frames: Sequence[Frame]) -> Geometry:
    """Sort frames along the slice normal and derive spacing, origin and orientation.

    The sort key is ``dot(ImagePositionPatient, cross(row_dir, col_dir))`` - never file name or
    InstanceNumber, which are unreliable. z spacing is the median distance between neighbours.

    Raises
    ------
    CTReadError
        If slices lack positions, share a position, or have different orientations.
    """
    warnings: list[str] = []
    orientation = _orientation(frames, warnings)
    normal = np.cross(orientation[:3], orientation[3:])
    spacing_yx = _pixel_spacing(frames, warnings)
    missing = [f for f in frames if f.position is None]
    if missing and len(frames) > 1:
        if len({f.header.path for f in frames}) > 1:
            raise CTReadError(
                f"{len(missing)} of {len(frames)} slices have no ImagePositionPatient (e.g. "
                f"{missing[0].header.path.name}), so they cannot be put in order. These files are "
                "probably not an axial CT series; pass a series exported with full geometry."
            )
        warnings.append("frames have no positions; kept the order stored in the file")
        thickness = frames[0].thickness or 1.0
        origin = frames[0].position or (0.0, 0.0, 0.0)
        positions = tuple(i * thickness for i in range(len(frames)))
        return Geometry(tuple(frames), (float(thickness), *spacing_yx), tuple(map(float, origin)),  # type: ignore[arg-type]
                        orientation, tuple(map(float, normal)), positions, tuple(warnings))
    if len(frames) == 1:
        f = frames[0]
        if f.position is None:
            warnings.append("no ImagePositionPatient; origin set to (0, 0, 0)")
        origin = f.position or (0.0, 0.0, 0.0)
        key = float(np.dot(origin, normal))
        dz = f.thickness if f.thickness and f.thickness > 0 else 1.0
        return Geometry(tuple(frames), (float(dz), *spacing_yx), tuple(map(float, origin)),  # type: ignore[arg-type]
                        orientation, tuple(map(float, normal)), (key,), tuple(warnings))

    keys = np.array([np.dot(f.position, normal) for f in frames])  # type: ignore[arg-type]
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    ordered = tuple(frames[i] for i in order)
    diffs = np.diff(keys)
    dup = np.flatnonzero(diffs < _DUPLICATE_TOL_MM)
    if dup.size:
        a, b = ordered[dup[0]], ordered[dup[0] + 1]
        raise CTReadError(
            f"Duplicate slice positions: {dup.size} pair(s) of slices share a position along the "
            f"slice normal (e.g. {a.header.path.name} and {b.header.path.name} at {keys[dup[0]]:.3f} mm). "
            "The input probably holds two copies of the series or two acquisitions (e.g. time "
            "points); remove the duplicates or pass the files of a single acquisition."
        )
    # Positions are decimal strings; rounding to 1e-6 mm removes float noise (0.7000000000000002).
    dz = round(float(np.median(diffs)), 6)
    if diffs.max() - diffs.min() > _SPACING_REL_TOL * dz:
        warnings.append(
            f"slice spacing is inconsistent ({diffs.min():.3f} to {diffs.max():.3f} mm); using the "
            f"median {dz:.3f} mm. Slices may be missing from the series."
        )
    origin = ordered[0].position
    return Geometry(ordered, (dz, *spacing_yx), tuple(map(float, origin)),  # type: ignore[arg-type]
                    orientation, tuple(map(float, normal)), tuple(map(float, keys)), tuple(warnings))
