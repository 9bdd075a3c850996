"""CT input/output: DICOM series in and out, label masks in and out.

Core library code: no napari or Qt imports.

- :func:`read_ct` reads a DICOM file, folder or file list into a :class:`CTVolume` (HU).
- :func:`is_dicom` quickly tells whether a path is (or a folder holds) DICOM.
- :func:`write_dicom_series` writes a HU volume, or a list of slices (phantom slices), as a CT
  series (for phantoms and tests).
- :func:`referenced_series_uids` / :func:`find_referenced_series`: the series a DICOM SEG
  segments, and its files found beside the SEG.
- :func:`save_mask` / :func:`load_mask` store expert masks as NIfTI or ``.npz``.
"""

from .dicom import CTVolume, read_ct
from .dicom_files import is_dicom
from .dicom_write import write_dicom_series
from .errors import CTReadError, CTReadWarning, MaskIOError
from .masks import Mask, load_mask, save_mask
from .seg_series import find_referenced_series, referenced_series_uids
from .slice_text import parse_slices

__all__ = [
    "CTReadError",
    "CTReadWarning",
    "CTVolume",
    "Mask",
    "MaskIOError",
    "find_referenced_series",
    "is_dicom",
    "load_mask",
    "parse_slices",
    "read_ct",
    "referenced_series_uids",
    "save_mask",
    "write_dicom_series",
]
