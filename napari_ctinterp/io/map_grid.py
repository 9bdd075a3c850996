"""The CT grid an attribution map was computed on, and the checks that keep a map on its own CT.

A saved map records the grid of its CT (:class:`CTGrid`: shape, spacing, origin, orientation and,
for a DICOM series, its *SeriesInstanceUID* and *FrameOfReferenceUID*). When the map is read
back on a CT, :meth:`CTGrid.mismatch` lists every way the two grids differ; any difference refuses
the map (:class:`MapIOError`) with a message naming the CT the map belongs to and what to do, so a
map is never shown shifted, stretched or over another patient's CT.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["CTGrid", "MapIOError", "jsonable", "refusal"]

#: Spacing may differ by this fraction (float32 headers, DS strings) and still be the same grid.
_SPACING_RTOL = 1e-4
#: Origins may differ by this many millimetres and still be the same grid.
_ORIGIN_ATOL_MM = 1e-2
_ORIENTATION_ATOL = 1e-3


class MapIOError(ValueError):
    """An attribution-map file that cannot be saved, read, or put on the CT given; the message says why."""


@dataclass(frozen=True)
class CTGrid:
    """The voxel grid (and, for DICOM, the series) of the CT a map was computed on.

    Attributes
    ----------
    shape : tuple of int
        (Z, H, W) of the CT.
    spacing_mm : tuple of float
        (z, y, x) voxel size in mm.
    origin : tuple of float or None
        (x, y, z) DICOM (LPS) position of the first voxel, as ``CTVolume.origin``; None if unknown.
    orientation : tuple of float or None
        *ImageOrientationPatient* (row then column direction); None: axial assumed.
    series_uid, frame_of_reference_uid : str
        The DICOM series and frame of reference ("" when the CT is not DICOM or they are unknown).
    description : str
        The series description (for messages only).
    """

    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    origin: tuple[float, float, float] | None = None
    orientation: tuple[float, ...] | None = None
    series_uid: str = ""
    frame_of_reference_uid: str = ""
    description: str = ""

    @classmethod
    def from_reference(cls, reference: Any) -> CTGrid:
        """The grid of a ``CTVolume`` (``io.read_ct``), with the frame of reference of its first file."""
        meta = dict(getattr(reference, "meta", {}) or {})
        orientation = meta.get("orientation")
        return cls(shape=tuple(int(n) for n in reference.hu.shape),  # type: ignore[arg-type]
                   spacing_mm=tuple(float(s) for s in reference.spacing_mm),  # type: ignore[arg-type]
                   origin=tuple(float(o) for o in reference.origin),  # type: ignore[arg-type]
                   orientation=None if orientation is None else tuple(float(v) for v in orientation),
                   series_uid=str(meta.get("series_uid") or ""),
                   frame_of_reference_uid=meta.get("frame_of_reference_uid") or _frame_of_reference(meta),
                   description=str(meta.get("series_description") or ""))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CTGrid:
        """The grid stored by :meth:`to_dict` (in a NIfTI extension or a Parametric Map's private block)."""
        try:
            origin, orientation = d.get("origin"), d.get("orientation")
            return cls(shape=tuple(int(n) for n in d["shape"]),  # type: ignore[arg-type]
                       spacing_mm=tuple(float(s) for s in d["spacing_mm"]),  # type: ignore[arg-type]
                       origin=None if origin is None else tuple(float(o) for o in origin),  # type: ignore[arg-type]
                       orientation=None if orientation is None else tuple(float(v) for v in orientation),
                       series_uid=str(d.get("series_uid") or ""),
                       frame_of_reference_uid=str(d.get("frame_of_reference_uid") or ""),
                       description=str(d.get("description") or ""))
        except (KeyError, TypeError, ValueError) as exc:
            raise MapIOError(f"the map's recorded CT grid is unreadable ({exc}): the file was edited or is "
                             f"not one this plugin wrote") from exc

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of the grid."""
        return {"shape": list(self.shape), "spacing_mm": list(self.spacing_mm),
                "origin": None if self.origin is None else list(self.origin),
                "orientation": None if self.orientation is None else list(self.orientation),
                "series_uid": self.series_uid, "frame_of_reference_uid": self.frame_of_reference_uid,
                "description": self.description}

    def ras_affine(self) -> np.ndarray:
        """4×4 affine from voxel index (x = column, y = row, z = slice) to RAS mm (NIfTI), as
        masks use (``masks.ras_affine``; axial: ``diag(-sx, -sy, sz)``, translation ``(-ox, -oy, oz)``)."""
        from .masks import ras_affine

        return ras_affine(self.spacing_mm, self.origin, self.orientation)

    def describe(self) -> str:
        """``series 1.2.3 ('chest', 16 slices of 64×64, 2.5 × 0.7 × 0.7 mm)``, or the grid of a CT
        that is not a DICOM series."""
        z, h, w = self.shape
        size = f"{z} slice{'s' if z != 1 else ''} of {h}×{w}, " + " × ".join(f"{s:g}" for s in self.spacing_mm) + " mm"
        if not self.series_uid:
            return f"a CT of {size} (not a DICOM series)"
        desc = f"'{self.description}', " if self.description else ""
        return f"series {self.series_uid} ({desc}{size})"

    def mismatch(self, ct: CTGrid) -> list[str]:
        """Every way the open CT ``ct`` differs from this grid (empty: the map lies on ``ct``).

        UIDs are compared when both are known; origin and orientation when both are recorded."""
        reasons = []
        if self.series_uid and ct.series_uid and self.series_uid != ct.series_uid:
            reasons.append("another series")
        if self.frame_of_reference_uid and ct.frame_of_reference_uid and \
                self.frame_of_reference_uid != ct.frame_of_reference_uid:
            reasons.append("another frame of reference (another scan or patient position)")
        if tuple(self.shape) != tuple(ct.shape):
            reasons.append(f"another grid shape ({'×'.join(map(str, ct.shape))}, not {'×'.join(map(str, self.shape))})")
        if not all(math.isclose(a, b, rel_tol=_SPACING_RTOL) for a, b in zip(self.spacing_mm, ct.spacing_mm)):
            reasons.append(f"another voxel spacing ({_mm(ct.spacing_mm)}, not {_mm(self.spacing_mm)})")
        if self.origin is not None and ct.origin is not None and \
                not np.allclose(self.origin, ct.origin, rtol=0.0, atol=_ORIGIN_ATOL_MM):
            reasons.append(f"another origin ({_mm(ct.origin)}, not {_mm(self.origin)})")
        if self.orientation is not None and ct.orientation is not None and \
                not np.allclose(self.orientation, ct.orientation, rtol=0.0, atol=_ORIENTATION_ATOL):
            reasons.append("another slice orientation")
        return reasons


def refusal(name: str, saved: CTGrid | str, ct: CTGrid, reasons: Sequence[str]) -> MapIOError:
    """The error for a map that does not lie on the CT given: which CT it belongs to, what to do."""
    belongs = saved.describe() if isinstance(saved, CTGrid) else saved
    open_it = "open that series" if isinstance(saved, CTGrid) and saved.series_uid else "open the CT it was computed on"
    return MapIOError(
        f"{name} was computed on {belongs}, not on this CT, {ct.describe()}: {'; '.join(reasons)}. A map is shown "
        f"only on the CT it was computed on: {open_it} and open the map again, or open the map without a CT "
        f"(io.load_map(path) with no reference; in napari, with no CT open) to see it on its own grid.")


def jsonable(obj: Any, *, max_items: int = 4096) -> Any:
    """``obj`` as plain JSON data: numpy scalars and small arrays become numbers and lists, tuples
    lists, mapping keys strings; arrays larger than ``max_items`` and other objects become a
    short description string (a map's record never holds a second map)."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v, max_items=max_items) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, max_items=max_items) for v in obj]
    if isinstance(obj, np.ndarray):
        if obj.size > max_items:
            return f"<array {obj.dtype} {'×'.join(map(str, obj.shape))} not stored>"
        return jsonable(obj.tolist(), max_items=max_items)
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    return str(obj)


def _mm(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ") mm"


def _frame_of_reference(meta: Mapping[str, Any]) -> str:
    """The *FrameOfReferenceUID* of the CT's first file ("" when it has none or cannot be read)."""
    files = meta.get("files") or []
    if not files:
        return ""
    import pydicom

    try:
        ds = pydicom.dcmread(files[0], stop_before_pixels=True, specific_tags=["FrameOfReferenceUID"])
    except Exception:  # noqa: BLE001 - a moved or unreadable file: the UID is unknown, not an error
        return ""
    return str(ds.get("FrameOfReferenceUID", "") or "")
