"""CT input/output: DICOM series in and out, label masks in and out.

Core library code: no napari or Qt imports.

- :func:`read_ct` reads a DICOM file, folder or file list into a :class:`CTVolume` (HU).
- :func:`is_dicom` quickly tells whether a path is (or a folder holds) DICOM.
- :func:`write_dicom_series` writes a HU volume as a CT series (for phantoms and tests).
- :func:`save_mask` / :func:`load_mask` store expert masks as NIfTI or ``.npz``.
"""

from .dicom import CTVolume, read_ct
from .dicom_files import is_dicom
from .dicom_write import write_dicom_series
from .errors import CTReadError, CTReadWarning, MaskIOError, codec_install_hint
from .masks import Mask, load_mask, save_mask

__all__ = [
    "CTReadError",
    "CTReadWarning",
    "CTVolume",
    "Mask",
    "MaskIOError",
    "codec_install_hint",
    "is_dicom",
    "load_mask",
    "read_ct",
    "save_mask",
    "write_dicom_series",
]
