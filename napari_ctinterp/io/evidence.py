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
    if np.issubdtype(m.dtype, np.integer):
        labels = np.unique(m)
        if labels[0] >= 0 and labels[-1] <= 1:
            return ""
        if labels[-1] <= 0:
            return f"mask labels {', '.join(str(int(v)) for v in labels[:8])}: none is > 0, so it marks no evidence"
        shown = [int(v) for v in labels if v != 0]
        text = ", ".join(str(v) for v in shown[:8]) + (f" … ({len(shown)} labels)" if len(shown) > 8 else "")
        extra = "; labels < 0 are background" if labels[0] < 0 else ""
        return f"mask labels {text}: every label > 0 is taken as expected evidence{extra}"
    finite = m[np.isfinite(m)]
    n_bad = m.size - finite.size
    if n_bad == 0 and np.isin(finite, (0, 1)).all():
        return ""
    span = f"values from {float(finite.min()):g} to {float(finite.max()):g}" if finite.size else "no finite values"
    extra = f"; {n_bad} NaN/inf pixel(s): NaN and -inf are background, +inf is evidence" if n_bad else ""
    return f"mask {span} (not 0/1 labels): every value > 0 is taken as expected evidence{extra}"
