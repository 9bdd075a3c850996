"""How a map layer looks over the CT in 2D: the heat colormap and robust contrast limits.

A heat colormap whose low end is transparent (translucent blending, so the CT shows through where
the map is low), contrast limits at robust percentiles of the map — the median (``LOW_PERCENTILE``)
to the 99.5th percentile (``HIGH_PERCENTILE``) of its finite values, so one hot pixel does not wash
the map out and the lower half of the pixels stays clear. The 3D view (``view_3d``) uses the same
colours from its top-k threshold up.
"""

from __future__ import annotations

import numpy as np
from napari.utils.colormaps import Colormap

#: Contrast limits of a map layer, in percentiles of its finite values.
LOW_PERCENTILE, HIGH_PERCENTILE = 50.0, 99.5

#: Transparent → red → yellow → white: a heat overlay that leaves the CT visible where the map is low.
HEAT = Colormap(colors=[[0.0, 0.0, 0.0, 0.0], [0.85, 0.0, 0.0, 0.55], [1.0, 0.55, 0.0, 0.85],
                        [1.0, 1.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]],
                controls=[0.0, 0.15, 0.45, 0.8, 1.0], name="ctinterp heat")


def robust_limits(data: np.ndarray) -> tuple[float, float]:
    """Contrast limits (``LOW_PERCENTILE``, ``HIGH_PERCENTILE``) of the finite values, never empty."""
    finite = np.asarray(data)[np.isfinite(data)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(finite, [LOW_PERCENTILE, HIGH_PERCENTILE]))
    if not hi > lo:
        lo, hi = float(finite.min()), float(finite.max())
    if not hi > lo:
        hi = lo + 1.0
    return lo, hi


__all__ = ["HEAT", "HIGH_PERCENTILE", "LOW_PERCENTILE", "robust_limits"]
