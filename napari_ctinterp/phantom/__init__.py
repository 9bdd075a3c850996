"""Synthetic chest-CT phantom: realistic, randomised slices with and without contrast.

See ``make_slice`` and ``make_volume`` (consecutive slices of one body). Everything is deterministic
by seed; nothing is downloaded. ``io.write_dicom_series`` writes slices (or a volume's ``hu``) as a
DICOM series.
"""

from .markers import MARKER_KINDS, Marker, draw_marker, inpaint
from .slice import PhantomSlice, add_marker, make_slice
from .tissues import LABELS, MASK_MIN_ENHANCEMENT_HU, PHASES
from .volume import PhantomVolume, make_volume

__all__ = ["LABELS", "MARKER_KINDS", "MASK_MIN_ENHANCEMENT_HU", "PHASES", "Marker", "PhantomSlice", "PhantomVolume",
           "add_marker", "draw_marker", "inpaint", "make_slice", "make_volume"]
