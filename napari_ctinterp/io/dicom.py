"""Reading a CT volume from DICOM: :func:`read_ct` and :class:`CTVolume`."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from .dicom_files import SeriesGroup, Source, collect_paths, group_series, read_headers
from .dicom_geometry import Frame, check_sizes, frames_of, order_frames, parse_rescale
from .errors import CTReadError, CTReadWarning, codec_install_hint

__all__ = ["CTVolume", "read_ct"]

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


@dataclass(frozen=True, eq=False)
class CTVolume:
    """A CT volume in Hounsfield units with its geometry.

    Attributes
    ----------
    hu : numpy.ndarray
        float32 array (Z, H, W) in Hounsfield units (the modality LUT applied). Z runs along the
        slice normal ``cross(row_dir, col_dir)`` of *ImageOrientationPatient*, so for axial
        head-first-supine scans index 0 is the most inferior slice.
    spacing_mm : tuple of float
        (z, y, x) voxel size in mm: distance between slice centres, then *PixelSpacing*
        (row spacing, column spacing).
    origin : tuple of float
        *ImagePositionPatient* of the first slice (index 0): the centre of its top-left voxel in
        DICOM patient coordinates (x, y, z) in mm, LPS (x to the patient's left, y posterior,
        z superior). Note the order differs from ``spacing_mm``.
    meta : dict
        Series information without patient identifiers: ``series_uid``, ``modality``, ``is_ct``
        (Modality CT, or a CT SOP Class without a Modality element),
        ``n_files``, ``n_slices``, ``files`` (paths in slice order), ``other_series`` (dicts with
        uid, modality, n_files, n_frames, description), ``warnings``, ``orientation``
        (ImageOrientationPatient), ``slice_normal``, ``slice_positions_mm``,
        ``transfer_syntaxes``, ``sop_class``, ``series_description``, ``study_date``,
        ``n_skipped_files``, ``source``.
    """

    hu: np.ndarray
    spacing_mm: tuple[float, float, float]
    origin: tuple[float, float, float]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(Z, H, W) shape of :attr:`hu`."""
        return tuple(self.hu.shape)  # type: ignore[return-value]


def _sop_name(ds: Dataset) -> str:
    sop = ds.get("SOPClassUID")
    return UID(str(sop)).name if sop is not None else "no SOP Class"  # a str where the VR is wrong


def _choose_series(groups: list[SeriesGroup], kind: str, warn: list[str], allow_non_ct: bool) -> SeriesGroup:
    images = [g for g in groups if g.is_image]
    if not images:
        found = ", ".join(sorted({_sop_name(h.ds) for g in groups for h in g.headers}))
        what = f"{groups[0].headers[0].path} is a DICOM file" if kind == "file" else "The DICOM files found are"
        raise CTReadError(
            f"{what} without pixel data ({found}); it holds no image. "
            "Open the CT image series (the files with pixel data) instead."
        )
    cts = [g for g in images if g.is_ct]
    chosen = cts[0] if cts else images[0]
    if cts and not chosen.modality:
        warn.append(f"the series has no Modality element; read as CT because its SOP Class is "
                    f"{_sop_name(chosen.headers[0].ds)}")
    if not cts and not allow_non_ct:
        what = f"{chosen.headers[0].path}" if kind == "file" else f"The image series found ({chosen.n_frames} slices)"
        raise CTReadError(
            f"{what} is modality {chosen.modality or 'unknown'} ({_sop_name(chosen.headers[0].ds)}), not CT: its "
            "values are not Hounsfield units, so a CT classifier's answer and maps on it would mean nothing. Open a "
            "CT series instead, or read it anyway with read_ct(..., allow_non_ct=True)."
        )
    if not cts:
        warn.append(
            f"modality {chosen.modality or 'unknown'}, not CT: values are not Hounsfield units and "
            "a CT classifier's output on them is meaningless."
        )
    others = [g for g in groups if g is not chosen]
    if others:
        listed = "; ".join(f"{g.modality or '?'} '{g.description}' ({len(g.headers)} files)" for g in others)
        warn.append(
            f"found {len(others)} other series besides the one opened ({listed}); opened the largest "
            f"{'CT ' if cts else ''}series ({chosen.n_frames} slices). To open another one, pass its "
            "files or folder on their own (see meta['other_series'])."
        )
    return chosen


def _decode(ds: Dataset, path: Path) -> np.ndarray:
    """``ds.pixel_array`` with pydicom's errors turned into actionable :class:`CTReadError`."""
    ts = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    ts_name = UID(str(ts)).name if ts is not None else "unknown transfer syntax"
    try:
        return ds.pixel_array
    except (RuntimeError, NotImplementedError) as exc:
        # pydicom: RuntimeError "... all plugins are missing dependencies" when no codec is
        # installed, NotImplementedError when no decoder exists for the syntax at all.
        if "missing dependencies" in str(exc) or isinstance(exc, NotImplementedError):
            raise CTReadError(
                f"Cannot decode {path.name}: its pixel data is compressed as '{ts_name}' and no "
                f"decoder for it is installed. Install one with: {codec_install_hint(ts or '')}"
            ) from exc
        cause: BaseException = exc
    except Exception as exc:  # noqa: BLE001 - truncated/corrupt data surfaces as many types
        cause = exc
    except BaseException as exc:
        # pyo3's PanicException from a Rust codec derives from BaseException (found by the fuzz
        # test); it is a decoder failure. Anything else (KeyboardInterrupt, SystemExit) propagates.
        if type(exc).__name__ != "PanicException":
            raise
        cause = exc
    raise CTReadError(
        f"Cannot decode the pixel data of {path} ('{ts_name}'): {cause}. "
        "The file may be truncated or corrupt; re-export the series."
    ) from cause


def _ensure_transfer_syntax(ds: Dataset) -> None:
    """Give a dataset read without File Meta (forced) the syntax it was actually parsed with."""
    if "TransferSyntaxUID" in ds.file_meta:
        return
    implicit, little = ds.original_encoding
    ds.file_meta.TransferSyntaxUID = (
        ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian
    )


def _fill(hu: np.ndarray, frames: Sequence[Frame], bad_slices: str = "raise") -> dict[int, str]:
    """Decode each file once and write its frames' HU into ``hu`` (slice order = frame order).

    With ``bad_slices="nan"`` a file that cannot be read or decoded leaves its slices NaN and is
    returned as ``{z: message}`` instead of raising (a study goes on with the other slices).
    """
    slots: dict[Path, list[tuple[int, Frame]]] = {}
    for z, frame in enumerate(frames):
        slots.setdefault(frame.header.path, []).append((z, frame))
    bad: dict[int, str] = {}
    for path, items in slots.items():
        try:
            _fill_file(hu, path, items)
        except CTReadError as exc:
            if bad_slices != "nan":
                raise
            for z, _ in items:
                hu[z] = np.nan
                bad[z] = str(exc)
    return bad


def _fill_file(hu: np.ndarray, path: Path, items: list[tuple[int, Frame]]) -> None:
    """Write the HU of one file's frames into their slots of ``hu``."""
    try:
        ds = pydicom.dcmread(path, force=items[0][1].header.forced)
    except Exception as exc:  # noqa: BLE001
        raise CTReadError(f"Cannot read {path}: {exc}. The file may be truncated.") from exc
    if not any(k in ds for k in _PIXEL_KEYWORDS):
        raise CTReadError(
            f"{path} is a DICOM file without pixel data (no (7FE0,0010) Pixel Data element); "
            "it holds no image. Remove it or open the CT image files instead."
        )
    _ensure_transfer_syntax(ds)
    n_frames = items[0][1].header.n_frames
    h, w = hu.shape[1:]
    arr = _decode(ds, path)
    if arr.size != n_frames * h * w:
        raise CTReadError(f"{path}: decoded pixel data has shape {arr.shape}, expected {n_frames} x {h} x {w}.")
    arr = arr.reshape(n_frames, h, w)
    lut = "ModalityLUTSequence" in ds
    if not lut:  # classic files: the top-level rescale, checked once for the file
        slope = parse_rescale(ds.get("RescaleSlope"), "RescaleSlope", str(path))
        intercept = parse_rescale(ds.get("RescaleIntercept"), "RescaleIntercept", str(path))
    for z, frame in items:
        stored = arr[frame.index or 0]
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below, in words
            if frame.slope is not None:  # multi-frame: per-frame values, parsed with the geometry
                hu[z] = stored * np.float32(frame.slope) + np.float32(frame.intercept or 0.0)
            elif lut:
                hu[z] = apply_modality_lut(stored, ds)
            else:  # as pydicom's apply_modality_lut computes it, from the values checked above
                hu[z] = stored.astype(np.float64) * (1.0 if slope is None else slope) + (intercept or 0.0)
        if not np.isfinite(hu[z]).all():  # e.g. a RescaleSlope of 1e300: no HU is that large
            shown = (frame.slope, frame.intercept) if frame.slope is not None else (
                ds.get("RescaleSlope"), ds.get("RescaleIntercept"))
            raise CTReadError(f"{path}: RescaleSlope / RescaleIntercept {shown!r} give values beyond float32's "
                              "range, not Hounsfield units. Fix these elements or re-export the series.")


def _meta(group: SeriesGroup, groups: list[SeriesGroup], frames: Sequence[Frame], source: Source,
          skipped: int) -> dict[str, Any]:
    ds = group.headers[0].ds
    files: list[str] = []
    for f in frames:
        if not files or files[-1] != str(f.header.path):
            files.append(str(f.header.path))
    syntaxes = sorted({UID(str(h.ds.file_meta.TransferSyntaxUID)).name for h in group.headers
                       if "TransferSyntaxUID" in getattr(h.ds, "file_meta", {})})
    return {
        "series_uid": group.uid,
        "modality": group.modality,
        "is_ct": group.is_ct,
        "n_files": len(group.headers),
        "n_slices": len(frames),
        "files": files,
        "other_series": [g.summary() for g in groups if g is not group],
        "transfer_syntaxes": syntaxes,
        "sop_class": _sop_name(ds),
        "series_description": group.description,
        "study_date": str(ds.get("StudyDate", "") or ""),
        "n_skipped_files": skipped,
        "source": [str(s) for s in source] if isinstance(source, (list, tuple)) else str(source),
    }


def read_ct(source: Source, *, bad_slices: str = "raise", allow_non_ct: bool = False) -> CTVolume:
    """Read a CT volume from DICOM.

    Files are grouped by *SeriesInstanceUID*; the largest CT series is opened. Without a CT
    series the input is refused (values of MR, PET or a secondary capture are not HU), unless
    ``allow_non_ct=True``: then the largest image series is opened, with a warning. Slices are ordered by their position
    along the slice normal, never by file name or *InstanceNumber*. Classic (one slice per file)
    and enhanced multi-frame CT are supported, uncompressed or compressed (JPEG 2000, JPEG-LS,
    JPEG lossless, RLE) when the pylibjpeg/pyjpegls codecs are installed.

    Parameters
    ----------
    source : str, os.PathLike or sequence of them
        A DICOM file, a folder (searched recursively; non-DICOM files are skipped), or a list of
        files (non-DICOM files are skipped with a warning).
    bad_slices : {"raise", "nan"}
        A file of the series whose pixel data cannot be read or decoded raises (default), or
        with ``"nan"`` leaves its slices NaN, listed in ``meta["bad_slices"]`` as
        ``{z: message}`` with a warning (a study reports those slices and goes on).
    allow_non_ct : bool
        Read a series whose *Modality* is not CT anyway: its values are then not Hounsfield units,
        ``meta["is_ct"]`` is False and ``meta["warnings"]`` says so. Default False: such input
        raises.

    Returns
    -------
    CTVolume
        HU volume (Z, H, W), spacing (z, y, x), origin and metadata. Every entry of
        ``meta["warnings"]`` is also emitted as a :class:`CTReadWarning`.

    Raises
    ------
    CTReadError
        With a message that says what to do: no DICOM files, a non-DICOM file, no pixel data,
        not CT (without ``allow_non_ct``), a RescaleSlope / RescaleIntercept that is not a
        number, slices of different sizes or at the same position, or a missing codec.
    """
    paths, kind = collect_paths(source)
    headers, skipped = read_headers(paths, kind, source)
    warn: list[str] = []
    if kind == "list" and skipped:
        warn.append(f"skipped {skipped} file(s) that are not readable DICOM among the files given")
    groups = group_series(headers)
    group = _choose_series(groups, kind, warn, allow_non_ct)
    frames = [f for h in group.headers if h.is_image for f in frames_of(h)]
    check_sizes(frames)
    geometry = order_frames(frames)
    warn.extend(geometry.warnings)

    if bad_slices not in ("raise", "nan"):
        raise ValueError(f"bad_slices must be 'raise' or 'nan', not {bad_slices!r}")
    hu = np.empty((len(frames), frames[0].rows, frames[0].cols), dtype=np.float32)
    bad = _fill(hu, geometry.frames, bad_slices)
    if bad:
        warn.append(f"{len(bad)} slice(s) could not be decoded and are NaN (z = {sorted(bad)[:10]}): "
                    f"{next(iter(bad.values()))}")

    meta = _meta(group, groups, geometry.frames, source, skipped)
    meta.update(
        warnings=warn,
        orientation=geometry.orientation,
        slice_normal=geometry.normal,
        slice_positions_mm=list(geometry.positions_mm),
        bad_slices=bad,
    )
    for message in warn:
        warnings.warn(message, CTReadWarning, stacklevel=2)
    return CTVolume(hu=hu, spacing_mm=geometry.spacing_mm, origin=geometry.origin, meta=meta)
