"""The one rule for what a reference mask marks as expected evidence: every value ``> 0``.

Masks come from other tools as booleans, 0/1 labels, multi-label images (organ 1, organ 2, …) or
probabilities. All metrics take ``mask > 0``; :func:`mask_note` says so in words whenever the mask
holds anything other than 0 and 1, so that a multi-label or fractional mask is never taken
silently.
"""

from __future__ import annotations

import numpy as np

__all__ = ["evidence_mask", "mask_note"]


def evidence_mask(mask: np.ndarray) -> np.ndarray:
    """``mask > 0`` as a bool array (NaN counts as background)."""
    m = np.asarray(mask)
    return m if m.dtype == bool else m > 0


def mask_note(mask: np.ndarray) -> str:
    """How a mask other than 0/1 was read, or ``""`` for a bool or 0/1 mask.

    Examples
    --------
    >>> mask_note(np.array([[0, 2], [3, 0]]))
    'mask labels 2, 3: every label > 0 is taken as expected evidence'
    """
    m = np.asarray(mask)
    if m.dtype == bool or m.size == 0:
        return ""
    lo, hi = np.nanmin(m) if m.size else 0, np.nanmax(m) if m.size else 0
    if lo >= 0 and hi <= 1 and (np.issubdtype(m.dtype, np.integer) or np.isin(m, (0, 1)).all()):
        return ""
    if np.issubdtype(m.dtype, np.integer):
        labels = [int(v) for v in np.unique(m) if v != 0]
        shown = ", ".join(str(v) for v in labels[:8]) + (f" … ({len(labels)} labels)" if len(labels) > 8 else "")
        extra = "; labels < 0 are background" if lo < 0 else ""
        return f"mask labels {shown}: every label > 0 is taken as expected evidence{extra}"
    return (f"mask values from {float(lo):g} to {float(hi):g} (not 0/1 labels): every value > 0 is taken as expected "
            "evidence")
