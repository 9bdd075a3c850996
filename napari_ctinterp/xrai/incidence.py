"""The masks holding given pixels (2D) or cells (3D): a lookup in a sparse incidence matrix,
shared by the region growing of both (``regions``, ``regions_3d``)."""

from __future__ import annotations

import numpy as np
from scipy import sparse


def masks_holding(inc: sparse.csc_matrix, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mask index, item) pairs of every mask holding one of ``items`` (columns of ``inc``, a
    masks × items incidence matrix in CSC form), vectorised over the column slices."""
    starts, stops = inc.indptr[items], inc.indptr[items + 1]
    lens = stops - starts
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
    return inc.indices[np.arange(total) + offsets].astype(np.int64), np.repeat(items, lens)
