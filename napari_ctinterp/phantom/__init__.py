"""Synthetic chest-CT phantom: realistic, randomised slices with and without contrast.

See ``make_slice``. Everything is deterministic by seed; nothing is downloaded.
"""

from .slice import PhantomSlice, make_slice, write_dicom_series
from .tissues import LABELS, MASK_MIN_ENHANCEMENT_HU, PHASES

__all__ = ["LABELS", "MASK_MIN_ENHANCEMENT_HU", "PHASES", "PhantomSlice", "make_slice", "write_dicom_series"]
