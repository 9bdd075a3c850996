"""Saving attribution maps as NIfTI or a DICOM Parametric Map, and reading them back on their CT.

Formats (by suffix)
-------------------
- ``.nii`` / ``.nii.gz``: float32 NIfTI whose affine is the CT series' (the convention of
  :func:`~napari_ctinterp.io.save_mask`: voxel index (x, y, z), RAS mm), so it overlays the CT in
  ITK-SNAP, 3D Slicer or FSLeyes too. The map's record (method, variant, model, target, slices …),
  its CT's grid and series (:class:`~napari_ctinterp.io.map_grid.CTGrid`) are kept as JSON in a
  NIfTI header extension (code 6, "comment", key ``napari_ctinterp_map``); no sidecar file. The
  header's intent is "estimate", named "attribution".
- ``.dcm``: a DICOM Parametric Map on the CT series (see :mod:`.parametric_map`).

Reading back with ``reference=`` the CT: the map must lie on that CT's grid (same shape, spacing,
origin, orientation, and for DICOM the same series and frame of reference); otherwise
:class:`MapIOError` says which CT it was computed on and what to do. A float NIfTI written by
another tool (no record) is put on the CT through its affine when that is the CT's grid up to
axis order and flips, and refused otherwise.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .map_grid import CTGrid, MapIOError, jsonable, refusal

__all__ = ["MAP_SUFFIXES", "MapFile", "is_map_file", "load_map", "save_map", "saved_grid"]

#: The suffixes :func:`save_map` writes.
MAP_SUFFIXES = (".nii.gz", ".nii", ".dcm")
_EXT_KEY = "napari_ctinterp_map"
_MASK_EXT_KEY = "napari_ctinterp_mask"


@dataclass(frozen=True, eq=False)
class MapFile:
    """An attribution map read from a file.

    Attributes
    ----------
    values : numpy.ndarray
        float32 (Z, H, W): on the reference CT's grid when one was given (``aligned``); else on
        the file's own grid ((H, W) for a map saved from a 2D array without a CT).
    spacing_mm : tuple of float
        (z, y, x) (or (y, x)) voxel size in mm.
    origin : tuple of float or None
        (x, y, z) DICOM (LPS) position of the first voxel; None if unknown.
    meta : dict
        The map's record as saved (method, variant, model, target, …); {} for a file written elsewhere.
    slices : tuple of int
        The slices that hold a map (the others are 0).
    grid : CTGrid or None
        The CT grid recorded when the map was saved (None: a file written elsewhere).
    format : str
        ``"nifti"`` or ``"dicom-pm"``.
    aligned : bool
        True when ``values`` were checked against and put on the reference CT's grid.
    info : dict
        ``series_uid``, ``frame_of_reference_uid`` of the map's CT (as far as the file says), ``source``.
    """

    values: np.ndarray
    spacing_mm: tuple[float, ...]
    origin: tuple[float, float, float] | None
    meta: dict[str, Any]
    slices: tuple[int, ...]
    grid: CTGrid | None
    format: str
    aligned: bool
    info: dict[str, Any] = field(default_factory=dict)


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return "nifti"
    if name.endswith(".dcm"):
        return "dicom-pm"
    if path.is_file():
        from .parametric_map import is_parametric_map

        if is_parametric_map(path):
            return "dicom-pm"
    raise MapIOError(f"Unknown map file type {path.name!r}: save a map as .nii.gz (NIfTI, for other viewers "
                     f"too) or .dcm (a DICOM Parametric Map on its CT series)")


def _prepare(values: np.ndarray, reference: Any, spacing_mm: Sequence[float] | None,
             origin: Sequence[float] | None) -> tuple[np.ndarray, CTGrid, int]:
    """``values`` as float32 (Z, H, W), the grid they lie on, and their original ndim."""
    arr = np.asarray(values)
    if arr.ndim not in (2, 3) or 0 in arr.shape or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) \
            or np.iscomplexobj(arr):
        raise MapIOError(f"a map must be a non-empty real (H, W) or (Z, H, W) array, got {arr.dtype} {arr.shape}")
    ndim, vol = arr.ndim, (arr[None] if arr.ndim == 2 else arr).astype(np.float32)
    if not np.isfinite(vol).any():
        raise MapIOError("the map holds no finite value (all NaN or infinite): nothing to save")
    if reference is not None:
        if spacing_mm is not None or origin is not None:
            raise MapIOError("pass either reference= (the CT the map was computed on: its grid is used) or "
                             "spacing_mm= / origin=, not both")
        grid = CTGrid.from_reference(reference)
        if vol.shape != grid.shape:
            raise MapIOError(f"the map's shape {arr.shape} is not the CT's {tuple(reference.hu.shape)}: a map is saved "
                             f"on the grid of the CT it was computed on (a map of one slice z: put it in a zero "
                             f"(Z, H, W) volume and pass slices=[z])")
        return vol, grid, ndim
    if spacing_mm is None:
        raise MapIOError("save_map needs reference= (the CTVolume the map was computed on) or spacing_mm=")
    spacing = tuple(float(s) for s in spacing_mm)
    if len(spacing) != ndim or not all(np.isfinite(s) and s > 0 for s in spacing):
        raise MapIOError(f"spacing_mm must be {ndim} positive numbers for a map of shape {arr.shape}, "
                         f"got {spacing_mm!r}")
    org = None if origin is None else tuple(float(o) for o in origin)
    if org is not None and len(org) != 3:
        raise MapIOError(f"origin must be (x, y, z) in mm or None, got {origin!r}")
    zyx = spacing if ndim == 3 else (1.0, *spacing)
    return vol, CTGrid(shape=vol.shape, spacing_mm=zyx, origin=org), ndim  # type: ignore[arg-type]


def save_map(values: np.ndarray, path: str | os.PathLike[str], *, reference: Any = None,
             spacing_mm: Sequence[float] | None = None, origin: Sequence[float] | None = None,
             meta: Mapping[str, Any] | None = None, slices: Sequence[int] | None = None) -> Path:
    """Save an attribution map as NIfTI (``.nii`` / ``.nii.gz``) or a DICOM Parametric Map (``.dcm``).

    Parameters
    ----------
    values : numpy.ndarray
        (Z, H, W) on the CT's grid, or (H, W) (a single-slice CT, or a 2D map without a CT).
    path : str or os.PathLike
        Output file; its folder is created if needed. The suffix chooses the format.
    reference : CTVolume, optional
        The CT the map was computed on (``io.read_ct``): its grid, series and frame of reference
        are recorded; needed for ``.dcm`` (written on its series).
    spacing_mm, origin : sequence of float, optional
        Without ``reference``: voxel size (one entry per axis of ``values``) and (x, y, z) origin.
    meta : mapping, optional
        The map's record (method, variant, model, target, …): JSON-serialisable data; numpy
        values are converted, large arrays are not stored.
    slices : sequence of int, optional
        The slices that hold a map (default: all); a Parametric Map has a frame for these only.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    MapIOError
        A bad array, a shape that is not the CT's, an unknown suffix, ``.dcm`` without a DICOM series.
    """
    out = Path(path)
    kind = _kind(out)
    vol, grid, ndim = _prepare(values, reference, spacing_mm, origin)
    picked = sorted({int(z) for z in (range(vol.shape[0]) if slices is None else slices)})
    if not picked or picked[0] < 0 or picked[-1] >= vol.shape[0]:
        raise MapIOError(f"slices must be indices 0…{vol.shape[0] - 1} of the map's slices, got {list(slices or [])}")
    record = jsonable(dict(meta or {}))
    if kind == "dicom-pm":
        if reference is None:
            raise MapIOError("a DICOM Parametric Map is written on the CT series the map was computed on: pass "
                             "reference=the CTVolume (io.read_ct of that series), or save as .nii.gz")
        from .parametric_map import write_parametric_map

        return write_parametric_map(vol, out, reference, grid, meta=record, slices=picked, ndim=ndim)
    _save_nifti(vol, out, grid, record, picked, ndim)
    return out


def _save_nifti(vol: np.ndarray, out: Path, grid: CTGrid, record: dict, slices: list[int], ndim: int) -> None:
    import nibabel as nib

    img = nib.Nifti1Image(np.ascontiguousarray(vol.T), grid.ras_affine())
    img.header.set_data_dtype(np.float32)
    img.header.set_xyzt_units("mm")
    img.header.set_intent("estimate", name="attribution")
    finite = vol[np.isfinite(vol)]
    img.header["cal_min"], img.header["cal_max"] = float(finite.min()), float(finite.max())
    what = " ".join(str(record.get(k, "")) for k in ("method", "variant")).strip() or "attribution"
    img.header["descrip"] = f"napari-ctinterp {what} map".encode("ascii", "replace")[:79]
    extra = {_EXT_KEY: 1, "meta": record, "grid": grid.to_dict(), "slices": slices, "ndim": ndim,
             "unit": "attribution (arbitrary)"}
    img.header.extensions.append(nib.nifti1.Nifti1Extension("comment", json.dumps(extra).encode()))
    out.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, out)


def _extension(img: Any) -> dict[str, Any] | None:
    """The plugin's JSON extension of a NIfTI (a map's or a mask's), or None."""
    for ext in img.header.extensions:
        try:
            extra = json.loads(ext.get_content())
        except (ValueError, TypeError, UnicodeDecodeError):
            continue
        if isinstance(extra, dict) and (extra.get(_EXT_KEY) or extra.get(_MASK_EXT_KEY)):
            return extra
    return None


def is_map_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a map this plugin saved (a NIfTI with its map record) or a DICOM
    Parametric Map; reads headers only."""
    p = Path(path)
    if not p.is_file():
        return False
    if p.name.lower().endswith((".nii", ".nii.gz")):
        import nibabel as nib

        try:
            extra = _extension(nib.load(p))
        except Exception:  # noqa: BLE001 - not a readable NIfTI: not a map
            return False
        return bool(extra and extra.get(_EXT_KEY))
    from .parametric_map import is_parametric_map

    return is_parametric_map(p)


def saved_grid(path: str | os.PathLike[str]) -> tuple[CTGrid | None, str]:
    """The CT grid a saved map records (None for a file written elsewhere) and the DICOM series it
    names ("" when none), from the file's header only."""
    p = Path(path)
    if _kind(p) == "nifti":
        import nibabel as nib

        try:
            extra = _extension(nib.load(p))
        except Exception as exc:  # noqa: BLE001 - nibabel raises many types for bad files
            raise MapIOError(f"{p.name} is not a readable NIfTI file: {exc}") from exc
        if not extra or not extra.get(_EXT_KEY):
            return None, ""
        grid = CTGrid.from_dict(extra.get("grid") or {})
        return grid, grid.series_uid
    import pydicom

    from .parametric_map import _record

    try:
        ds = pydicom.dcmread(p, stop_before_pixels=True)
    except Exception as exc:  # noqa: BLE001 - any reader failure: say what the file is not
        raise MapIOError(f"{p.name} is not a readable DICOM file: {exc}") from exc
    record = _record(ds)
    grid = CTGrid.from_dict(record["grid"]) if isinstance(record.get("grid"), Mapping) else None
    series = [str(item.SeriesInstanceUID) for item in ds.get("ReferencedSeriesSequence", [])]
    return grid, (grid.series_uid if grid is not None and grid.series_uid else (series[0] if series else ""))


def load_map(path: str | os.PathLike[str], reference: Any = None) -> MapFile:
    """Read a map saved by :func:`save_map` (or a float NIfTI / Parametric Map from elsewhere).

    Parameters
    ----------
    path : str or os.PathLike
        A ``.nii``, ``.nii.gz`` or DICOM Parametric Map file.
    reference : CTVolume, optional
        The CT to show the map on: the map must lie on its grid (and series); the values come
        back on it. Without one, the map comes back on its own grid.

    Returns
    -------
    MapFile

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    MapIOError
        An unreadable file, a mask file, or a map that does not lie on ``reference`` (the
        message names the CT the map was computed on and what to do).
    """
    src = Path(path)
    if not src.is_file():
        raise FileNotFoundError(f"Map file not found: {src}")
    kind = _kind(src)
    if kind == "dicom-pm":
        from .parametric_map import read_parametric_map

        values, grid, meta, slices, info = read_parametric_map(src, reference)
        values, spacing = _restore_ndim(values, tuple(info["spacing_mm"]), info["ndim"], reference)
        return MapFile(values=values, spacing_mm=spacing, origin=info["origin"], meta=meta, slices=slices, grid=grid,
                       format=kind, aligned=reference is not None,
                       info={"series_uid": info["series_uid"], "frame_of_reference_uid": info["frame_of_reference_uid"],
                             "source": str(src)})
    return _load_nifti(src, reference)


def _restore_ndim(values: np.ndarray, spacing: tuple[float, ...], ndim: int, reference: Any
                  ) -> tuple[np.ndarray, tuple[float, ...]]:
    """A map saved from a 2D array without a CT comes back 2D; on a CT it keeps the CT's (Z, H, W)."""
    if reference is None and ndim == 2 and values.shape[0] == 1:
        return values[0], spacing[1:]
    return values, spacing


def _load_nifti(src: Path, reference: Any) -> MapFile:
    import nibabel as nib

    try:
        img = nib.load(src)
        data = np.asarray(img.dataobj, dtype=np.float32)
    except Exception as exc:  # noqa: BLE001 - nibabel raises many types for bad files
        raise MapIOError(f"{src.name} is not a readable NIfTI file: {exc}") from exc
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim not in (2, 3):
        raise MapIOError(f"{src.name} holds a {data.ndim}-D image; a map is 2-D or 3-D")
    vol = np.ascontiguousarray((data[..., None] if data.ndim == 2 else data).T)  # (Z, H, W)
    extra = _extension(img)
    if extra is not None and extra.get(_MASK_EXT_KEY):
        raise MapIOError(f"{src.name} is a reference mask saved by napari-ctinterp, not a map: open it with "
                         f"io.load_mask")
    if extra is None:
        return _foreign_nifti(src, img, vol, reference)
    grid = CTGrid.from_dict(extra.get("grid") or {})
    slices = tuple(int(z) for z in extra.get("slices", range(vol.shape[0])))
    meta = dict(extra.get("meta") or {})
    info = {"series_uid": grid.series_uid, "frame_of_reference_uid": grid.frame_of_reference_uid, "source": str(src)}
    if vol.shape != grid.shape:
        raise MapIOError(f"{src.name}: its array {vol.shape} is not the grid it records {grid.shape}: the file was "
                         f"edited by another tool; save the map again")
    if reference is not None:
        ct = CTGrid.from_reference(reference)
        reasons = grid.mismatch(ct)
        if reasons:
            raise refusal(src.name, grid, ct, reasons)
        return MapFile(values=vol, spacing_mm=ct.spacing_mm, origin=ct.origin, meta=meta, slices=slices, grid=grid,
                       format="nifti", aligned=True, info=info)
    values, spacing = _restore_ndim(vol, grid.spacing_mm, int(extra.get("ndim", 3)), None)
    return MapFile(values=values, spacing_mm=spacing, origin=grid.origin, meta=meta, slices=slices, grid=grid,
                   format="nifti", aligned=False, info=info)


def _foreign_nifti(src: Path, img: Any, vol: np.ndarray, reference: Any) -> MapFile:
    """A NIfTI written elsewhere: through its affine onto the CT, or on its own header geometry."""
    info = {"series_uid": "", "frame_of_reference_uid": "", "source": str(src)}
    every = tuple(range(vol.shape[0]))
    if reference is not None:
        from .errors import MaskIOError
        from .masks import _aligned

        try:
            on_ct = _aligned(src, img.affine, np.ascontiguousarray(vol.T), reference)
        except MaskIOError as exc:
            raise MapIOError(f"{exc} (a map is shown only on the CT it was computed on)") from exc
        return MapFile(values=on_ct.labels.astype(np.float32), spacing_mm=tuple(reference.spacing_mm),
                       origin=tuple(reference.origin), meta={}, slices=every, grid=None, format="nifti",
                       aligned=True, info=info)
    zooms = [float(z) for z in img.header.get_zooms()[:3]] + [1.0] * (3 - len(img.header.get_zooms()[:3]))
    affine = img.affine
    origin = (-float(affine[0, 3]), -float(affine[1, 3]), float(affine[2, 3]))
    return MapFile(values=vol, spacing_mm=tuple(reversed(zooms)), origin=origin, meta={}, slices=every, grid=None,
                   format="nifti", aligned=False, info=info)
