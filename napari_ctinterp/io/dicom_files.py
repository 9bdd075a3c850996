"""Finding DICOM files and grouping them into series, from headers only (no pixel data read)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import MediaStorageDirectoryStorage

from .errors import CTReadError, CTReadWarning

__all__ = ["DicomHeader", "SeriesGroup", "collect_paths", "group_series", "is_dicom", "read_headers"]

PathLike = str | os.PathLike[str]
Source = PathLike | Sequence[PathLike]

_MAGIC_OFFSET = 128
#: CT Image Storage, Enhanced CT Image Storage, Legacy Converted Enhanced CT Image Storage.
CT_SOP_CLASSES = frozenset({"1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1", "1.2.840.10008.5.1.4.1.1.2.2"})


@dataclass(frozen=True)
class DicomHeader:
    """One DICOM file's header (read with ``stop_before_pixels=True``)."""

    path: Path
    ds: Dataset
    forced: bool = False  # no preamble/'DICM' marker: must be re-read with force=True

    @property
    def n_frames(self) -> int:
        """Number of image frames in the file (1 for classic single-frame images)."""
        try:
            return max(1, int(self.ds.get("NumberOfFrames", 1) or 1))
        except (TypeError, ValueError):
            return 1

    @property
    def is_image(self) -> bool:
        """Whether the header describes an image (has *Rows*); pixel data is checked later."""
        return "Rows" in self.ds and "Columns" in self.ds


@dataclass(frozen=True)
class SeriesGroup:
    """The files of one SeriesInstanceUID."""

    uid: str
    headers: tuple[DicomHeader, ...]

    @property
    def modality(self) -> str:
        """The series' *Modality* (e.g. ``"CT"``), ``""`` if absent."""
        return str(self.headers[0].ds.get("Modality", "") or "")

    @property
    def description(self) -> str:
        """The series' *SeriesDescription*, ``""`` if absent."""
        return str(self.headers[0].ds.get("SeriesDescription", "") or "")

    @property
    def n_frames(self) -> int:
        """Total number of frames (slices) over all files."""
        return sum(h.n_frames for h in self.headers)

    @property
    def is_image(self) -> bool:
        """Whether any file of the series is an image."""
        return any(h.is_image for h in self.headers)

    @property
    def is_ct(self) -> bool:
        """Modality CT, or no Modality element in a CT SOP Class (CT / Enhanced CT / Legacy Converted
        Enhanced CT Image Storage): an export that dropped the element is still CT."""
        if self.modality:
            return self.modality.upper() == "CT"
        return str(self.headers[0].ds.get("SOPClassUID", "")) in CT_SOP_CLASSES

    def summary(self) -> dict[str, object]:
        """Plain-dict summary (no patient identifiers) for ``meta["other_series"]``."""
        return {
            "uid": self.uid,
            "modality": self.modality,
            "n_files": len(self.headers),
            "n_frames": self.n_frames,
            "description": self.description,
        }


def _has_magic(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.seek(_MAGIC_OFFSET)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def _walk_files(folder: Path) -> Iterable[Path]:
    for root, dirs, files in os.walk(folder):
        dirs.sort()  # deterministic traversal
        for name in sorted(files):
            yield Path(root) / name


def is_dicom(path: Source, *, max_files: int = 2000) -> bool:
    """Quick check whether a path is (or a folder contains) a DICOM Part 10 file.

    Only the ``"DICM"`` marker at byte offset 128 is checked, so files written without the
    128-byte preamble are not recognised here (``read_ct`` still accepts them).

    Parameters
    ----------
    path : str, os.PathLike or sequence of them
        A file, a folder (searched recursively) or a list of paths (True if any is DICOM).
    max_files : int, optional
        Give up (return False) after checking this many files in a folder, to stay fast on
        huge non-DICOM folders.

    Returns
    -------
    bool
    """
    if isinstance(path, (list, tuple)):
        return any(is_dicom(p, max_files=max_files) for p in path)
    p = Path(path)
    if p.is_file():
        return _has_magic(p)
    if p.is_dir():
        for i, f in enumerate(_walk_files(p)):
            if i >= max_files:
                return False
            if _has_magic(f):
                return True
    return False


def collect_paths(source: Source) -> tuple[list[Path], str]:
    """Expand a source into candidate files.

    Returns
    -------
    paths : list of Path
        Files to examine, in a deterministic order.
    kind : {"file", "folder", "list"}
        What the source was; decides how strictly non-DICOM files are treated.
    """
    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        if p.is_dir():
            return list(_walk_files(p)), "folder"
        if p.is_file():
            return [p], "file"
        raise CTReadError(f"{p} does not exist. Pass a DICOM file, a folder of DICOM files, or a list of files.")
    paths: list[Path] = []
    for item in source:
        p = Path(item)
        if p.is_dir():
            paths.extend(_walk_files(p))
        elif p.is_file():
            paths.append(p)
        else:
            raise CTReadError(f"{p} does not exist (it was in the list of files passed to read_ct).")
    return paths, "list"


def _starts_like_dataset(path: Path) -> bool:
    """Whether a file begins with a group 0002 or 0008 tag, as preamble-less DICOM does."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
    except OSError:
        return False
    return head in (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08")


class BrokenHeaderError(CTReadError):
    """A file that parses as DICOM but holds an element that cannot be read."""


def _convert_public(ds: Dataset) -> None:
    """Convert every public element of ``ds`` and of its sequences' items (pydicom converts lazily).

    Private elements are left raw: the reader never uses them, and vendors write private tags
    whose bytes do not fit the VR the private dictionary gives them.
    """
    for tag in list(ds.keys()):
        if tag.is_private:
            continue
        elem = ds[tag]  # converts a raw element
        if elem.VR == "SQ":
            for item in elem.value:
                _convert_public(item)


def _check_elements(path: Path, ds: Dataset) -> None:
    """Convert every public element now: an unreadable one (unknown VR, bytes that are not its
    VR's) is a :class:`BrokenHeaderError` naming the file, not a raw error later."""
    try:
        _convert_public(ds)
        for keyword in ("Rows", "Columns", "SamplesPerPixel"):
            if keyword in ds and not (isinstance(ds[keyword].value, int) and ds[keyword].value > 0):
                raise ValueError(f"{keyword} is {ds[keyword].value!r}, not a positive integer")
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types for garbled elements
        raise BrokenHeaderError(f"{path} is DICOM but its header cannot be read ({type(exc).__name__}: {exc}). "
                                "The file is corrupt; re-export it or remove it from the input.") from exc


def _read_header(path: Path) -> DicomHeader | None:
    """Header of a DICOM file, or None if it is not DICOM.

    Raises
    ------
    BrokenHeaderError
        The file is DICOM but an element of its header cannot be read.
    """
    try:
        header = DicomHeader(path, pydicom.dcmread(path, stop_before_pixels=True))
    except InvalidDicomError:
        header = None
    except Exception:  # noqa: BLE001 - a truncated/garbled file is "not readable DICOM"
        return None
    if header is not None:
        _check_elements(path, header.ds)
        return header
    # No preamble: accept only if the file starts like a DICOM dataset and a forced parse finds
    # a standard SOP Class (guards against random binary files that happen to parse as tags).
    if not _starts_like_dataset(path):
        return None
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True, defer_size="64 KB")
        sop = str(ds.get("SOPClassUID", ""))
    except Exception:  # noqa: BLE001
        return None
    if not sop.startswith("1.2.840.10008."):
        return None
    _check_elements(path, ds)
    return DicomHeader(path, ds, forced=True)


def read_headers(paths: Sequence[Path], kind: str, source: object) -> tuple[list[DicomHeader], int]:
    """Read the headers of all DICOM files among ``paths``.

    Returns the headers and the number of files skipped: not DICOM, or DICOM with an unreadable
    header (each of those warned with a :class:`CTReadWarning`). A single such file, or no readable
    DICOM file at all, raises :class:`CTReadError`.
    """
    headers: list[DicomHeader] = []
    skipped = broken = 0
    for p in paths:
        try:
            header = _read_header(p)
        except BrokenHeaderError as exc:
            if kind == "file":
                raise
            warnings.warn(f"skipped {p.name}: {exc}", CTReadWarning, stacklevel=3)
            broken += 1
            continue
        if header is None:
            if kind == "file":
                raise CTReadError(
                    f"{p} is not a DICOM file (no 'DICM' marker and no readable DICOM header). "
                    "Pass a DICOM (.dcm) file or a folder containing a DICOM series."
                )
            skipped += 1
            continue
        if str(header.ds.get("SOPClassUID", "")) == MediaStorageDirectoryStorage:
            continue  # DICOMDIR index: the images it points to are found by walking the folder
        headers.append(header)
    if not headers:
        where = f"folder {source}" if kind == "folder" else f"{len(paths)} file(s) given"
        counts = f"{skipped} non-DICOM file(s) skipped"
        if broken:
            counts += f", {broken} DICOM file(s) with an unreadable header skipped"
        raise CTReadError(
            f"No readable DICOM files found in {where} ({counts}). "
            "Point read_ct at the folder that holds the CT series (.dcm files); "
            "subfolders are searched."
        )
    return headers, skipped + broken


def group_series(headers: Sequence[DicomHeader]) -> list[SeriesGroup]:
    """Group headers by SeriesInstanceUID, largest (most frames) first."""
    by_uid: dict[str, list[DicomHeader]] = {}
    for h in headers:
        by_uid.setdefault(str(h.ds.get("SeriesInstanceUID", "") or ""), []).append(h)
    groups = [SeriesGroup(uid, tuple(hs)) for uid, hs in by_uid.items()]
    groups.sort(key=lambda g: (-g.n_frames, -len(g.headers), g.uid))
    return groups
