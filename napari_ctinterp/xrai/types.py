"""The two data types of XRAI: ``Segments`` (the masks of an image or a volume) and ``RegionMap``
(the region map of one attribution map)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse


@dataclass(frozen=True)
class Segments:
    """Overlapping segment masks of one image or volume (all scales), stored by bounding box.

    Attributes
    ----------
    shape : tuple of int
        (H, W) of the image, or (Z, H, W) of a volume.
    boxes : tuple of tuple of slice
        Bounding box of each mask on the cell grid (empty masks get an empty box).
    local : tuple of numpy.ndarray
        Each mask cropped to its box (bool), on the cell grid.
    params : dict
        Options that made them.
    grid : tuple of numpy.ndarray or None
        None: the cells are the image's own pixels (2D XRAI). Else, per axis, the cell index of
        every voxel (non-decreasing, contiguous blocks): the masks of a volume live on a coarser
        grid of cells (``segments_3d``); ``mask(i)`` brings them back to ``shape``.
    """

    shape: tuple[int, ...]
    boxes: tuple[tuple[slice, ...], ...]
    local: tuple[np.ndarray, ...]
    params: dict = field(default_factory=dict)
    grid: tuple[np.ndarray, ...] | None = None
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def cell_shape(self) -> tuple[int, ...]:
        """Shape of the grid the masks live on (``shape`` when ``grid`` is None)."""
        if self.grid is None:
            return tuple(self.shape)
        return tuple(int(g[-1]) + 1 if len(g) else 0 for g in self.grid)

    def incidence(self) -> tuple[sparse.csr_matrix, sparse.csc_matrix]:
        """Mask × cell incidence as (CSR, CSC), built once and kept: every map of the image reuses
        it (cells = pixels in 2D)."""
        if "incidence" not in self._cache:
            idx = [self.flat_indices(i) for i in range(len(self))]
            lengths = np.array([len(i) for i in idx], dtype=np.int64)
            indptr = np.concatenate([[0], np.cumsum(lengths)])
            n_pix = int(np.prod(self.cell_shape))
            if self.grid is None:
                indices = np.concatenate(idx) if idx else np.zeros(0, np.int64)
                data = np.ones(len(indices))
            else:  # a volume's incidence is large: int32 cell indices
                indices = np.concatenate(idx, dtype=np.int32, casting="unsafe") if idx else np.zeros(0, np.int32)
                data = np.ones(len(indices))
            csr = sparse.csr_matrix((data, indices, indptr), shape=(len(self), n_pix))
            self._cache["incidence"] = (csr, csr.tocsc())
        return self._cache["incidence"]

    def __len__(self) -> int:
        return len(self.local)

    def mask(self, i: int) -> np.ndarray:
        """Full-size boolean mask ``i`` (on the image's own grid, ``shape``)."""
        out = np.zeros(self.shape, dtype=bool)
        if self.grid is None:
            out[self.boxes[i]] = self.local[i]
            return out
        box = self.boxes[i]
        if any(b.stop <= b.start for b in box):
            return out
        # the voxels whose cell lies in the box: one contiguous run per axis (the grid is sorted)
        runs = [slice(int(np.searchsorted(g, b.start)), int(np.searchsorted(g, b.stop)))
                for g, b in zip(self.grid, box)]
        sub = np.ix_(*[g[r] - b.start for g, r, b in zip(self.grid, runs, box)])
        out[tuple(runs)] = self.local[i][sub]
        return out

    def masks(self) -> list[np.ndarray]:
        """All masks at full size (as PAIR's list; memory: n × H × W bytes)."""
        return [self.mask(i) for i in range(len(self))]

    def flat_indices(self, i: int) -> np.ndarray:
        """Row-major indices of mask ``i`` on the cell grid (the image's pixels in 2D), sorted."""
        box = self.boxes[i]
        nz = np.nonzero(self.local[i])
        coords = tuple(c + (b.start or 0) for c, b in zip(nz, box))
        return np.ravel_multi_index(coords, self.cell_shape)


@dataclass(frozen=True)
class RegionMap:
    """XRAI output for one attribution map (an image's, or a volume's over supervoxels).

    Attributes
    ----------
    values : numpy.ndarray
        Map-shaped float64: each pixel (voxel) holds its region's gain (mean attribution of the
        region's newly covered pixels); pixels never covered hold the mean over all of them;
        voxels left out (``outside``, slices with no map) hold NaN.
    ranks : numpy.ndarray
        Map-shaped int (int32 for a volume's): 1 = most important region (regions sorted by gain,
        as PAIR); 0 = left out.
    gains : numpy.ndarray
        Gain of each region in the order regions were *added*; the leftover uncovered area, if
        any, last.
    algorithm : str
        ``full`` or ``fast``.
    added_ranks : numpy.ndarray
        Rank of each entry of ``gains`` (the region added i-th has rank ``added_ranks[i]``).
    """

    values: np.ndarray
    ranks: np.ndarray
    gains: np.ndarray
    algorithm: str
    added_ranks: np.ndarray

    @functools.cached_property
    def order(self) -> tuple[np.ndarray, ...]:
        """Flat pixel indices of each region (sorted) in the order regions were added, the leftover
        area last (computed on first use from ``ranks``: a volume's would be as large as it)."""
        flat = self.ranks.reshape(-1)
        by_rank = np.argsort(flat, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(flat, minlength=len(self.gains) + 1))])
        return tuple(by_rank[bounds[r]: bounds[r + 1]] for r in self.added_ranks)
