"""Writing a HU volume, or a list of slices, as a DICOM series (one file per slice): :func:`write_dicom_series`.

Stored values are signed 16-bit: ``stored = round(HU) + 1024`` with *RescaleIntercept* -1024,
*RescaleSlope* 1 and *PixelRepresentation* 1. Signed storage keeps HU below -1024 (air outside
the field of view, phantom noise) that an unsigned "HU + 1024" encoding would have to clip; RLE,
JPEG 2000 and JPEG-LS lossless all round-trip signed 16-bit data exactly (checked in the tests).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    MRImageStorage,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)
from pydicom.valuerep import DSfloat

from .errors import codec_install_hint

__all__ = ["RESCALE_INTERCEPT", "STORED_HU_RANGE", "SliceLike", "TransferSyntaxName", "write_dicom_series"]

TransferSyntaxName = Literal["explicit", "rle", "jpeg2000", "jpegls"]

RESCALE_INTERCEPT = -1024
"""HU = stored value + RESCALE_INTERCEPT (slope 1)."""

STORED_HU_RANGE = (-32768 + RESCALE_INTERCEPT, 32767 + RESCALE_INTERCEPT)
"""HU range representable in the int16 stored values; values outside are clipped."""

_SYNTAXES: dict[str, UID] = {
    "explicit": ExplicitVRLittleEndian,
    "rle": RLELossless,
    "jpeg2000": JPEG2000Lossless,
    "jpegls": JPEGLSLossless,
}
_J2K_MIN_SIDE = 32  # 2 ** (6 resolutions - 1)
_SOP_CLASSES: dict[str, UID] = {"CT": CTImageStorage, "MR": MRImageStorage}

#: Distance between slices (mm) when a list of slices is written without ``spacing_mm``.
DEFAULT_SLICE_MM = 2.5


@runtime_checkable
class SliceLike(Protocol):
    """A slice to write: ``hu`` (H, W) and, optionally, ``spacing_mm`` (row, column) in mm
    (``phantom.PhantomSlice`` is one)."""

    hu: np.ndarray


def _volume_of(hu: np.ndarray | Sequence[SliceLike],
               spacing_mm: Sequence[float] | None) -> tuple[np.ndarray, Sequence[float]]:
    """The (Z, H, W) or (H, W) HU array to write and its (z, y, x) spacing.

    A list of slices is stacked; without ``spacing_mm`` it is ``DEFAULT_SLICE_MM`` between slices and
    the first slice's pixel spacing (a volume's default is 1 mm)."""
    if isinstance(hu, (list, tuple)) and hu and all(isinstance(s, SliceLike) for s in hu):
        shapes = {np.shape(s.hu) for s in hu}
        if len(shapes) != 1:
            raise ValueError(f"all slices of a series must have one size, got {sorted(shapes)}")
        if spacing_mm is None:
            pixel = getattr(hu[0], "spacing_mm", (1.0, 1.0))
            spacing_mm = (DEFAULT_SLICE_MM, *pixel)
        return np.stack([np.asarray(s.hu) for s in hu]), spacing_mm
    if isinstance(hu, (list, tuple)) and not hu:
        raise ValueError("write_dicom_series needs at least one slice")
    return np.asarray(hu), (1.0, 1.0, 1.0) if spacing_mm is None else spacing_mm


def _stored_values(hu: np.ndarray) -> np.ndarray:
    data = np.asarray(hu)
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3 or 0 in data.shape:
        raise ValueError(f"hu must be a non-empty (Z, H, W) or (H, W) array, got shape {np.shape(hu)}")
    if not np.issubdtype(data.dtype, np.number) or np.issubdtype(data.dtype, np.complexfloating):
        raise ValueError(f"hu must be a real numeric array, got dtype {data.dtype}")
    if not np.all(np.isfinite(data)):
        raise ValueError("hu contains NaN or infinite values; replace them (e.g. with -1024) first")
    clipped = np.clip(np.rint(data.astype(np.float64)), *STORED_HU_RANGE)
    return (clipped - RESCALE_INTERCEPT).astype(np.int16)


def _compress(ds: Dataset, syntax: UID) -> None:
    """``ds.compress`` with errors that say what to install or why the encoder gave up."""
    try:
        ds.compress(syntax)
    except RuntimeError as exc:
        if "missing dependencies" in str(exc):
            raise RuntimeError(
                f"Cannot write '{syntax.name}': no encoder is installed. "
                f"Install one with: {codec_install_hint(syntax, encode=True)}"
            ) from exc
        raise RuntimeError(
            f"Cannot compress a {ds.Rows}x{ds.Columns} slice as '{syntax.name}': {exc}. "
            "(pyjpegls fails on tiny slices of a few pixels; use 'rle' or 'explicit' for those.)"
        ) from exc


def _ds(value: float) -> DSfloat:
    """Decimal String with as many digits as its 16 characters allow."""
    return DSfloat(value, auto_format=True)


def _uid(*parts: object) -> UID:
    return generate_uid(entropy_srcs=[str(p) for p in parts])


def _slice_dataset(
    pixels: np.ndarray,
    *,
    instance_number: int,
    position: tuple[float, float, float],
    spacing_mm: tuple[float, float, float],
    study_uid: UID,
    series_uid: UID,
    frame_uid: UID,
    sop_uid: UID,
    description: str,
    modality: str,
) -> Dataset:
    sop_class = _SOP_CLASSES.get(modality.upper(), SecondaryCaptureImageStorage)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.StudyTime = ds.AccessionNumber = ds.ReferringPhysicianName = ""
    ds.Modality = modality
    ds.Manufacturer = "napari-ctinterp"
    ds.SeriesDescription = description
    ds.PatientName = "Phantom^Anonymous"
    ds.PatientID = "PHANTOM"
    ds.PatientBirthDate = ds.PatientSex = ""
    ds.KVP = ""
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = ""
    ds.SeriesNumber = 1
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = instance_number
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = ""
    ds.ImagePositionPatient = [_ds(v) for v in position]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SliceLocation = _ds(position[2])
    ds.SliceThickness = _ds(spacing_mm[0])
    ds.SpacingBetweenSlices = _ds(spacing_mm[0])
    ds.PixelSpacing = [_ds(spacing_mm[1]), _ds(spacing_mm[2])]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = RESCALE_INTERCEPT
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    ds.WindowCenter = 40
    ds.WindowWidth = 400
    ds.PixelData = np.ascontiguousarray(pixels, dtype="<i2").tobytes()
    return ds


def write_dicom_series(
    hu: np.ndarray | Sequence[SliceLike],
    folder: str | os.PathLike[str],
    *,
    spacing_mm: Sequence[float] | None = None,
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    series_uid: str | None = None,
    study_uid: str | None = None,
    transfer_syntax: TransferSyntaxName = "explicit",
    shuffle_names: bool = False,
    seed: int = 0,
    description: str = "napari-ctinterp phantom",
    modality: str = "CT",
) -> list[Path]:
    """Write a HU volume (or a list of slices, e.g. phantom slices) as a DICOM image series, one
    file per slice.

    HU are rounded to the nearest integer (ties to even) and clipped to :data:`STORED_HU_RANGE`
    (-33792 to 31743 HU: the int16 range shifted by the -1024 intercept), then stored as signed
    16-bit values. Slices are
    axial (*ImageOrientationPatient* ``[1,0,0,0,1,0]``); slice ``k`` lies at
    ``origin + (0, 0, k * spacing_z)``. Patient is ``"Phantom^Anonymous"`` / ``"PHANTOM"``.

    Parameters
    ----------
    hu : numpy.ndarray or sequence of SliceLike
        (Z, H, W) or (H, W) Hounsfield units, or slices of one size (objects with ``hu`` (H, W)
        and, optionally, ``spacing_mm`` (row, column), such as ``phantom.PhantomSlice``), written
        in list order.
    folder : str or os.PathLike
        Output folder (created if needed). Files are named ``IM00000.dcm``, ``IM00001.dcm``, ...;
        existing files of those names are overwritten, so write each series to its own folder.
    spacing_mm : sequence of float, optional
        (z, y, x) voxel size in mm; y/x become *PixelSpacing*, z *SliceThickness* and
        *SpacingBetweenSlices*. Default: 1 mm for a volume; for slices, 2.5 mm between slices
        (``DEFAULT_SLICE_MM``) and the first slice's pixel spacing.
    origin : sequence of float, optional
        (x, y, z) patient position (mm) of the first slice's top-left voxel.
    series_uid, study_uid : str, optional
        UIDs to use; by default derived deterministically from ``seed`` and the content.
    transfer_syntax : {"explicit", "rle", "jpeg2000", "jpegls"}, optional
        Explicit VR Little Endian, or lossless RLE / JPEG 2000 / JPEG-LS compression. JPEG 2000
        needs slices of at least 32 x 32 pixels; JPEG-LS (pyjpegls) fails on slices of a few
        pixels.
    shuffle_names : bool, optional
        If True, file names *and* InstanceNumber are a random permutation of slice order, so
        that neither can be used to order the slices (a reader test).
    seed : int, optional
        Seeds the permutation and the generated UIDs (same inputs -> same files).
    description : str, optional
        *SeriesDescription*.
    modality : str, optional
        *Modality*; "CT" writes CT Image Storage, "MR" MR Image Storage, others Secondary Capture.

    Returns
    -------
    list of Path
        The files written, in slice order (index ``k`` holds slice ``k``).

    Raises
    ------
    ValueError
        For a bad shape, NaN values, slices of different sizes or none, bad spacing/origin, an
        unknown ``transfer_syntax``, or slices too small for JPEG 2000.
    RuntimeError
        If the encoder is missing (the message names the package) or fails.
    """
    if transfer_syntax not in _SYNTAXES:
        raise ValueError(f"transfer_syntax must be one of {sorted(_SYNTAXES)}, got {transfer_syntax!r}")
    hu, spacing_mm = _volume_of(hu, spacing_mm)
    spacing = tuple(float(s) for s in spacing_mm)
    if len(spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(f"spacing_mm must be three positive numbers (z, y, x), got {spacing_mm!r}")
    org = tuple(float(o) for o in origin)
    if len(org) != 3:
        raise ValueError(f"origin must be (x, y, z), got {origin!r}")
    stored = _stored_values(hu)
    syntax = _SYNTAXES[transfer_syntax]
    if syntax == JPEG2000Lossless and min(stored.shape[1:]) < _J2K_MIN_SIDE:
        raise ValueError(
            f"JPEG 2000 needs slices of at least {_J2K_MIN_SIDE}x{_J2K_MIN_SIDE} pixels (openjpeg "
            f"always uses 6 wavelet levels), got {stored.shape[1:]}; use another transfer_syntax"
        )

    content = hashlib.sha1(stored.tobytes()).hexdigest()
    key = (seed, content, stored.shape, spacing, org, description, modality)
    study = UID(study_uid) if study_uid else _uid("study", *key)
    series = UID(series_uid) if series_uid else _uid("series", *key)
    frame_of_ref = _uid("frame", study, series)
    n = stored.shape[0]
    order = np.random.default_rng(seed).permutation(n) if shuffle_names else np.arange(n)

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n):
        position = (org[0], org[1], org[2] + k * spacing[0])
        ds = _slice_dataset(
            stored[k],
            instance_number=int(order[k]) + 1,
            position=position,
            spacing_mm=spacing,  # type: ignore[arg-type]
            study_uid=study,
            series_uid=series,
            frame_uid=frame_of_ref,
            sop_uid=_uid("sop", series, k),
            description=description,
            modality=modality,
        )
        if syntax != ExplicitVRLittleEndian:
            _compress(ds, syntax)
        path = out / f"IM{int(order[k]):05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
