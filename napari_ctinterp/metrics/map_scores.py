"""The scores beyond the paper's that need only the map (and the mask): one call for a row.

``map_scores(values, mask, names)`` computes the asked ones of ``auprc``, ``iou_otsu``,
``topk_intersection`` (against the mask; NaN without one) and ``sparseness``, ``complexity`` (the
map alone) — each a sort or a pass over the map, milliseconds for a 512² slice, so the Metrics panel
and the Gallery compute only those they show. The model's scores (``faithfulness``,
``robustness``) take forward passes and run for all maps of a slice at once instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from .complexity import complexity, sparseness
from .mask_overlap import auprc, iou_otsu, topk_intersection

#: name → score of (map, mask); the mask-free ones ignore the mask.
MAP_SCORES: dict[str, Callable[[np.ndarray, np.ndarray | None], float]] = {
    "auprc": auprc, "iou_otsu": iou_otsu, "topk_intersection": topk_intersection,
    "sparseness": lambda v, _m: sparseness(v), "complexity": lambda v, _m: complexity(v),
}
#: The ones that read the mask.
MASK_SCORES = ("auprc", "iou_otsu", "topk_intersection")


def map_scores(values: np.ndarray, mask: np.ndarray | None, names: Iterable[str]) -> dict[str, float]:
    """The scores ``names`` (those of ``MAP_SCORES``; others are left out) of one map against ``mask``
    (None, or a mask that is empty or full: NaN for the mask's scores)."""
    usable = mask is not None and np.asarray(mask).any() and not np.asarray(mask).all()
    out = {}
    for name in names:
        if name not in MAP_SCORES:
            continue
        if name in MASK_SCORES and not usable:
            out[name] = float("nan")
        else:
            out[name] = float(MAP_SCORES[name](values, mask))
    return out
