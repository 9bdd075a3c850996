"""Finding the CT series a DICOM SEG segments, in the folders beside the SEG file.

A SEG names its source series (*ReferencedSeriesSequence*) but not where the files are; a user
who opens a SEG from an export usually has the series next to it (same folder, or a sibling
series folder). :func:`find_referenced_series` looks there, never above the home folder and never
more than ``max_files`` files.
"""

from __future__ import annotations

import os
from pathlib import Path

#: How many files next to a SEG are searched for the CT series it references.
SEG_SEARCH_FILES = 5000


def referenced_series_uids(seg_path: str | os.PathLike[str]) -> list[str]:
    """The *SeriesInstanceUID* of each series a DICOM SEG references, in file order."""
    import pydicom

    ds = pydicom.dcmread(seg_path, stop_before_pixels=True)
    return [str(item.SeriesInstanceUID) for item in ds.get("ReferencedSeriesSequence", [])]


def find_referenced_series(seg_path: str | os.PathLike[str], series_uid: str | None = None, *,
                           max_files: int = SEG_SEARCH_FILES) -> list[Path]:
    """The files of the series a DICOM SEG segments, found beside the SEG.

    Searches the SEG's folder, then its parent's (two levels down: sibling series folders; not
    when the parent is the home folder or a drive's root), reading only each file's header.

    Parameters
    ----------
    seg_path : str or os.PathLike
        The DICOM SEG file.
    series_uid : str, optional
        The series to look for; by default the first series the SEG references.
    max_files : int, optional
        At most this many files are opened.

    Returns
    -------
    list of pathlib.Path
        The series' files, sorted (``io.read_ct`` orders the slices); empty when none was found or
        the SEG references no series.
    """
    import pydicom

    seg_path = Path(seg_path)
    if series_uid is None:
        refs = referenced_series_uids(seg_path)
        if not refs:
            return []
        series_uid = refs[0]
    matches: list[Path] = []
    seen: set[str] = set()
    parent = seg_path.parent.parent
    roots = [seg_path.parent] + ([parent] if parent not in (Path.home(), Path(parent.anchor)) else [])
    for root in roots:
        base_depth = len(root.parts)
        for dirpath, dirnames, filenames in os.walk(root):
            if len(Path(dirpath).parts) - base_depth >= 2:
                dirnames[:] = []  # no deeper
            for name in filenames:
                f = Path(dirpath) / name
                if len(seen) >= max_files or str(f) in seen or f == seg_path:
                    continue
                seen.add(str(f))
                try:
                    ds = pydicom.dcmread(f, stop_before_pixels=True, specific_tags=["SeriesInstanceUID"])
                except Exception:  # noqa: BLE001 - not DICOM: skip
                    continue
                if str(ds.get("SeriesInstanceUID", "")) == series_uid:
                    matches.append(f)
        if matches:
            return sorted(matches)
    return []
