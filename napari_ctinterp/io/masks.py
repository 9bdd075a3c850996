"""Saving and loading label masks (expert reference masks) as NIfTI or ``.npz``.

Axis conventions
----------------
Arrays are (H, W) or (Z, H, W) = (y, x) or (z, y, x), like the HU volumes of
:func:`~napari_ctinterp.io.read_ct`. NIfTI stores voxel index (i, j, k) = (x, y, z), so the array
is transposed on save (``labels.T``) and back on load; other tools (ITK-SNAP, 3D Slicer, FSL) then
show the mask the right way up. The NIfTI affine maps the voxel grid to RAS+ mm assuming axial
DICOM orientation: ``diag(-sx, -sy, sz)`` with translation ``(-ox, -oy, oz)``, where ``origin`` is
the DICOM (LPS) *ImagePositionPatient* of the first slice, as in ``CTVolume.origin``.

NIfTI headers hold float32 numbers, so for an exact round trip the float64 spacing, origin and the
JSON ``meta`` are also written in a NIfTI header extension (code 6, "comment") and read back from
there; NIfTI files from elsewhere fall back to the header's zooms and affine.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import MaskIOError

__all__ = ["Mask", "load_mask", "save_mask"]

_EXT_KEY = "napari_ctinterp_mask"
_SUFFIXES = (".npz", ".nii", ".nii.gz")


@dataclass(frozen=True, eq=False)
class Mask:
    """A label mask with its geometry.

    Attributes
    ----------
    labels : numpy.ndarray
        Integer labels (H, W) or (Z, H, W); 0 is background. Bool masks come back as uint8.
    spacing_mm : tuple of float
        (y, x) or (z, y, x) voxel size in mm, one entry per axis of ``labels``.
    origin : tuple of float or None
        (x, y, z) DICOM patient position of the first voxel, as ``CTVolume.origin``; None if unknown.
    meta : dict
        JSON-serialisable extra information (tuples come back as lists).
    """

    labels: np.ndarray
    spacing_mm: tuple[float, ...]
    origin: tuple[float, float, float] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def _format(path: Path) -> str:
    name = path.name.lower()
    for suffix in (".nii.gz", ".nii", ".npz", ".dcm"):
        if name.endswith(suffix):
            return suffix
    if path.is_file():
        from .seg import is_dicom_file

        if is_dicom_file(path):
            return ".dcm"
    raise MaskIOError(
        f"Unknown mask file type {path.name!r}: use one of {', '.join(_SUFFIXES)} "
        "(e.g. 'mask.nii.gz' for other tools, 'mask.npz' for numpy)."
    )


def _validate(mask: np.ndarray, spacing_mm: Sequence[float], origin: Sequence[float] | None,
              meta: Mapping[str, Any] | None) -> tuple[np.ndarray, tuple[float, ...], tuple[float, ...] | None, str]:
    labels = np.asarray(mask)
    if labels.ndim not in (2, 3) or 0 in labels.shape:
        raise MaskIOError(f"mask must be a non-empty (H, W) or (Z, H, W) array, got shape {labels.shape}")
    if labels.dtype == bool:
        labels = labels.astype(np.uint8)
    if not np.issubdtype(labels.dtype, np.integer):
        raise MaskIOError(f"mask must hold integer or bool labels, got dtype {labels.dtype}")
    spacing = tuple(float(s) for s in spacing_mm)
    if len(spacing) != labels.ndim or not all(np.isfinite(s) and s > 0 for s in spacing):
        axes = "(y, x)" if labels.ndim == 2 else "(z, y, x)"
        raise MaskIOError(
            f"spacing_mm must be {labels.ndim} positive numbers {axes} for a mask of shape "
            f"{labels.shape}, got {tuple(spacing_mm)!r} (for one slice of a CTVolume use spacing_mm[1:])"
        )
    org = None if origin is None else tuple(float(o) for o in origin)
    if org is not None and len(org) != 3:
        raise MaskIOError(f"origin must be (x, y, z) or None, got {origin!r}")
    try:
        meta_json = json.dumps(dict(meta or {}))
    except (TypeError, ValueError) as exc:
        raise MaskIOError(f"meta must be JSON-serialisable: {exc}") from exc
    return labels, spacing, org, meta_json


def save_mask(
    mask: np.ndarray,
    path: str | os.PathLike[str],
    *,
    spacing_mm: Sequence[float],
    origin: Sequence[float] | None = None,
    meta: Mapping[str, Any] | None = None,
    format: str | None = None,
    reference: Any = None,
    names: Mapping[int, str] | None = None,
) -> Path:
    """Save a label mask; the format follows the suffix (``.nii``, ``.nii.gz`` or ``.npz``), or
    ``format="seg"`` (a ``.dcm`` DICOM SEG on the CT series ``reference`` was read from).

    Parameters
    ----------
    mask : numpy.ndarray
        (H, W) or (Z, H, W) integer or bool labels (bool is stored as uint8).
    path : str or os.PathLike
        Output file; its folder is created if needed.
    spacing_mm : sequence of float
        Voxel size in mm, one entry per axis: (y, x) or (z, y, x).
    origin : sequence of float, optional
        (x, y, z) DICOM patient position of the first voxel (``CTVolume.origin``).
    meta : mapping, optional
        JSON-serialisable extra information.
    format : {"seg"}, optional
        ``"seg"``: a DICOM SEG (needs ``reference``, the ``CTVolume`` read from DICOM).
    reference : CTVolume, optional
        The CT the mask was painted on (DICOM SEG).
    names : mapping, optional
        Segment name of each label (DICOM SEG); default ``label <value>``.

    Returns
    -------
    Path
        The file written.
    """
    out = Path(path)
    if format == "seg" or (format is None and out.name.lower().endswith(".dcm")):
        if reference is None:
            raise MaskIOError("a DICOM SEG is written on the CT's own series: pass reference=the CTVolume "
                              "(io.read_ct of the DICOM folder)")
        from .seg import write_seg

        return write_seg(mask, out, reference, names=names)
    if format is not None:
        raise MaskIOError(f"format={format!r}: use 'seg', or leave it to the suffix (.nii.gz, .nii, .npz)")
    kind = _format(out)
    labels, spacing, org, meta_json = _validate(mask, spacing_mm, origin, meta)
    out.parent.mkdir(parents=True, exist_ok=True)
    if kind == ".npz":
        with open(out, "wb") as fh:  # a file handle stops numpy from appending another ".npz"
            np.savez_compressed(
                fh,
                labels=labels,
                spacing_mm=np.asarray(spacing, dtype=np.float64),
                origin=np.asarray(org if org is not None else (), dtype=np.float64),
                meta=np.asarray(meta_json),
            )
        return out
    _save_nifti(labels, out, spacing, org, meta_json)
    return out


def _save_nifti(labels: np.ndarray, out: Path, spacing: tuple[float, ...],
                origin: tuple[float, ...] | None, meta_json: str) -> None:
    import nibabel as nib

    zyx = spacing if len(spacing) == 3 else (1.0, *spacing)
    ox, oy, oz = origin if origin is not None else (0.0, 0.0, 0.0)
    affine = np.array(
        [[-zyx[2], 0, 0, -ox], [0, -zyx[1], 0, -oy], [0, 0, zyx[0], oz], [0, 0, 0, 1]], dtype=np.float64
    )
    img = nib.Nifti1Image(np.ascontiguousarray(labels.T), affine)
    img.header.set_data_dtype(labels.dtype)
    img.header.set_xyzt_units("mm")
    extra = {_EXT_KEY: 1, "spacing_mm": list(spacing), "origin": origin, "meta": json.loads(meta_json)}
    img.header.extensions.append(nib.nifti1.Nifti1Extension("comment", json.dumps(extra).encode()))
    nib.save(img, out)


def load_mask(path: str | os.PathLike[str], reference: Any = None) -> Mask:
    """Load a mask written by :func:`save_mask`, any 2-D/3-D NIfTI label image, or a DICOM SEG.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.nii``, ``.nii.gz`` or ``.npz`` file, or a DICOM SEG.
    reference : CTVolume, optional
        The CT to align to; needed for a DICOM SEG (frames matched to its slices by SOP Instance
        UID; segment names in ``meta["segment_names"]``).

    Returns
    -------
    Mask

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    MaskIOError
        For an unknown suffix or a file that does not hold a 2-D/3-D integer mask.
    """
    src = Path(path)
    kind = _format(src)
    if not src.is_file():
        raise FileNotFoundError(f"Mask file not found: {src}")
    if kind == ".dcm":
        if reference is None:
            raise MaskIOError(f"{src.name} is a DICOM SEG: load it with reference=the CT it segments "
                              f"(io.read_ct of that series), so its frames can be matched to the slices")
        from .seg import read_seg

        labels, meta = read_seg(src, reference)
        return Mask(labels=labels, spacing_mm=tuple(reference.spacing_mm), origin=tuple(reference.origin), meta=meta)
    if kind in (".nii", ".nii.gz") and reference is not None and reference.hu.ndim == 3:
        aligned = _nifti_on_ct(src, reference)
        if aligned is not None:
            return aligned
    mask = _load_npz(src) if kind == ".npz" else _load_nifti(src)
    if mask.labels.ndim not in (2, 3) or not np.issubdtype(mask.labels.dtype, np.integer):
        raise MaskIOError(
            f"{src} holds a {mask.labels.ndim}-D {mask.labels.dtype} array; a mask must be a 2-D or "
            "3-D integer label image."
        )
    return mask


def _load_npz(src: Path) -> Mask:
    try:
        with np.load(src, allow_pickle=False) as data:
            labels = data["labels"]
            spacing = tuple(float(s) for s in data["spacing_mm"])
            origin = tuple(float(o) for o in data["origin"]) if "origin" in data else ()
            meta = json.loads(str(data["meta"])) if "meta" in data else {}
    except KeyError as exc:
        raise MaskIOError(f"{src} is not a mask file: it lacks the array {exc}") from exc
    except (OSError, ValueError) as exc:
        raise MaskIOError(f"{src} is not a readable .npz mask file: {exc}") from exc
    return Mask(labels=labels, spacing_mm=spacing, origin=origin or None, meta=meta)  # type: ignore[arg-type]


def _load_nifti(src: Path) -> Mask:
    import nibabel as nib

    try:
        img = nib.load(src)
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # noqa: BLE001 - nibabel raises many types for bad files
        raise MaskIOError(f"{src} is not a readable NIfTI file: {exc}") from exc
    labels = np.ascontiguousarray(data.T)
    for ext in img.header.extensions:
        try:
            extra = json.loads(ext.get_content())
        except (ValueError, TypeError, UnicodeDecodeError):
            continue
        if isinstance(extra, dict) and extra.get(_EXT_KEY):
            origin = extra.get("origin")
            return Mask(
                labels=labels,
                spacing_mm=tuple(float(s) for s in extra["spacing_mm"]),
                origin=None if origin is None else tuple(float(o) for o in origin),  # type: ignore[arg-type]
                meta=extra.get("meta", {}),
            )
    # A NIfTI from elsewhere: float32 header geometry, converted back to (z, y, x) and LPS.
    if np.issubdtype(labels.dtype, np.floating) and np.all(np.mod(labels, 1) == 0):
        labels = labels.astype(np.int32)  # many tools store label images as float
    zooms = [float(z) for z in img.header.get_zooms()[: labels.ndim]]
    affine = img.affine
    origin = (-float(affine[0, 3]), -float(affine[1, 3]), float(affine[2, 3]))
    return Mask(labels=labels, spacing_mm=tuple(reversed(zooms)), origin=origin, meta={})


def ras_affine(spacing_mm: Any, origin: Any, orientation: Any = None, normal: Any = None) -> np.ndarray:
    """4×4 affine from voxel indices (x = column, y = row, z = slice) to RAS mm: DICOM's
    ImageOrientationPatient (default axial), the (z, y, x) spacing, the first voxel's LPS
    position and the slice normal (default: row × column); DICOM is LPS, so x and y flip."""
    iop = np.asarray(orientation if orientation is not None else (1, 0, 0, 0, 1, 0), dtype=float)
    row_dir, col_dir = iop[:3], iop[3:]
    normal = np.asarray(normal if normal is not None else np.cross(row_dir, col_dir), dtype=float)
    sz, sy, sx = (float(v) for v in spacing_mm)
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2] = row_dir * sx, col_dir * sy, normal * sz
    lps[:3, 3] = np.asarray(origin if origin is not None else (0.0, 0.0, 0.0), dtype=float)
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def ct_ras_affine(reference: Any) -> np.ndarray:
    """The RAS affine (``ras_affine``) of a CT series: its ImageOrientationPatient, spacing,
    origin and slice normal."""
    meta = reference.meta
    return ras_affine(reference.spacing_mm, reference.origin, meta.get("orientation") or None,
                      meta.get("slice_normal"))


def _nifti_on_ct(src: Path, reference: Any) -> Mask | None:
    """A foreign NIfTI resampled (by index, never interpolated) onto the CT's (Z, H, W) grid, when
    its affine is the CT's up to axis order and flips; None for the plugin's own files (exact
    already). Other grids (rotated, other spacing, not covering the CT) are refused."""
    import warnings

    import nibabel as nib

    try:
        img = nib.load(src)
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # noqa: BLE001 - nibabel raises many types for bad files
        raise MaskIOError(f"{src} is not a readable NIfTI file: {exc}") from exc
    for ext in img.header.extensions:
        try:
            if json.loads(ext.get_content()).get(_EXT_KEY):
                return None
        except (ValueError, TypeError, UnicodeDecodeError, AttributeError):
            continue
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        return None  # a 2-D mask (of a single slice): read as before
    if np.issubdtype(data.dtype, np.floating) and not np.all(np.mod(data, 1) == 0):
        raise MaskIOError(f"{src.name} holds non-integer values (a probability map?): a mask is an integer label "
                          f"image; threshold it first")
    try:
        return _aligned(src, img.affine, data, reference)
    except MaskIOError:
        # a placeholder affine (identity, as many ML pipelines write) on an array of the CT's shape:
        # index order, as without a reference, said in a warning; any real affine that disagrees: refused
        if not (np.allclose(img.affine, np.eye(4)) and data.T.shape == reference.hu.shape):
            raise
        warnings.warn(f"{src.name} has an identity (placeholder) affine: its array, which has the CT's shape, is "
                      f"used in index order — check that it lies on the CT", stacklevel=3)
        return None


def _aligned(src: Path, affine: np.ndarray, data: np.ndarray, reference: Any) -> Mask:
    """``data`` put on the CT's grid through ``affine`` (a signed axis permutation and a shift)."""
    m = np.linalg.inv(affine) @ ct_ras_affine(reference)  # CT index (x, y, z) -> NIfTI index
    rot = m[:3, :3]
    perm = np.argmax(np.abs(rot), axis=1)  # NIfTI axis a follows CT axis perm[a]
    signs = np.sign(rot[np.arange(3), perm])
    exact = np.zeros((3, 3))
    exact[np.arange(3), perm] = signs
    nz, ny, nx = reference.hu.shape
    n_ct = (nx, ny, nz)
    if sorted(perm) != [0, 1, 2] or not np.allclose(rot, exact, atol=1e-3):
        raise MaskIOError(f"{src.name}: its voxel grid is rotated or has another spacing than the CT's "
                          f"(index map {np.round(rot, 3).tolist()}): resample it onto the CT's grid first")
    offsets = m[:3, 3]
    if not np.allclose(offsets, np.round(offsets), atol=1e-2):
        raise MaskIOError(f"{src.name}: its voxels are shifted by a fraction of a voxel from the CT's "
                          f"({np.round(offsets, 3).tolist()}): resample it onto the CT's grid first")
    index = []
    for a in range(3):
        idx = (signs[a] * np.arange(n_ct[perm[a]]) + round(offsets[a])).astype(int)
        if idx.min() < 0 or idx.max() >= data.shape[a]:
            raise MaskIOError(f"{src.name}: its grid ({data.shape}) does not cover the CT's {reference.hu.shape} "
                              f"(CT voxels map to NIfTI axis {a} indices {idx.min()}…{idx.max()})")
        index.append(idx)
    picked = data[np.ix_(*index)]  # axes in NIfTI order, each along CT axis perm[a]
    xyz = np.transpose(picked, np.argsort(perm))  # CT (x, y, z)
    labels = np.ascontiguousarray(xyz.transpose(2, 1, 0))  # (z, y, x)
    if np.issubdtype(labels.dtype, np.floating) and np.all(np.mod(labels, 1) == 0):
        labels = labels.astype(np.int32)
    return Mask(labels=labels, spacing_mm=tuple(reference.spacing_mm), origin=tuple(reference.origin),
                meta={"format": "nifti", "aligned_to": str(reference.meta.get("series_uid", "")),
                      "source": str(src)})
