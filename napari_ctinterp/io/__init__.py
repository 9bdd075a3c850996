"""CT input/output: DICOM series in and out, label masks in and out.

Core library code: no napari or Qt imports.

- :func:`read_ct` reads a DICOM file, folder or file list into a :class:`CTVolume` (HU).
- :func:`is_dicom` quickly tells whether a path is (or a folder holds) DICOM.
- :func:`write_dicom_series` writes a HU volume, or a list of slices (phantom slices), as a CT
  series (for phantoms and tests).
- :func:`referenced_series_uids` / :func:`find_referenced_series`: the series a DICOM SEG
  segments, and its files found beside the SEG.
- :func:`save_mask` / :func:`load_mask` store expert masks as NIfTI or ``.npz``.
- :func:`save_map` / :func:`load_map` store attribution maps as NIfTI or a DICOM Parametric Map on
  the CT series they were computed on, and read them back only on that CT (:class:`MapIOError`).
"""

from .dicom import CTVolume, read_ct
from .dicom_files import is_dicom
from .dicom_write import write_dicom_series
from .errors import CTReadError, CTReadWarning, MaskIOError
from .map_files import MapFile, is_map_file, load_map, save_map, saved_grid
from .map_grid import CTGrid, MapIOError
from .masks import Mask, load_mask, save_mask
from .seg_series import find_referenced_series, referenced_series_uids
from .slice_text import parse_slices

__all__ = [
    "CTGrid",
    "CTReadError",
    "CTReadWarning",
    "CTVolume",
    "Mask",
    "MapFile",
    "MapIOError",
    "MaskIOError",
    "find_referenced_series",
    "is_dicom",
    "is_map_file",
    "load_map",
    "load_mask",
    "parse_slices",
    "read_ct",
    "referenced_series_uids",
    "save_map",
    "save_mask",
    "saved_grid",
    "write_dicom_series",
]
