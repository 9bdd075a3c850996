"""XRAI region attribution (full greedy and fast), identical in output to PAIR ``saliency`` 0.2.1.

Why our own: PAIR's full algorithm re-scans every remaining mask against the covered area at each
step (O(masks × pixels) per region added). Here the masks are one sparse pixel→mask incidence
(CSC, built once per image by ``Segments.incidence`` and reused for every map); when a region is
added, only its newly covered pixels are visited and each mask's uncovered count and sum are
decremented with one ``bincount`` — O(total mask area) over the whole run. The best mask is then
an argmax over per-mask densities. To keep PAIR's exact choices and values, candidates within a
hair of the maximum are re-scored exactly as PAIR does (``attr[new pixels].mean()`` in the map's
dtype, first index wins ties), and every region's value is that exact mean.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import sparse

from .incidence import masks_holding
from .types import RegionMap, Segments


def _exact_gain(flat_attr: np.ndarray, pixels: np.ndarray) -> float:
    """PAIR's ``_gain_density``: mean over the pixels, in row-major order, in the map's dtype."""
    return flat_attr[np.sort(pixels)].mean()


def _finish(attr: np.ndarray, out: np.ndarray, trace: list[tuple[np.ndarray, float]],
            algorithm: str) -> RegionMap:
    uncomputed = np.isneginf(out)
    flat_out = out.reshape(-1)
    if uncomputed.any():
        flat_out[uncomputed.reshape(-1)] = attr[uncomputed].mean()
    ranked = sorted(range(len(trace)), key=lambda i: -trace[i][1])  # stable, as PAIR's sorted()
    ranks = np.zeros(attr.shape, dtype=int)
    flat_ranks = ranks.reshape(-1)
    added = np.zeros(len(trace), dtype=np.int64)
    for r, i in enumerate(ranked):
        flat_ranks[trace[i][0]] = r + 1
        added[i] = r + 1
    gains = [t[1] for t in trace]
    if uncomputed.any():
        left = np.flatnonzero(uncomputed)
        flat_ranks[left] = len(trace) + 1
        added = np.append(added, len(trace) + 1)
        gains.append(float(flat_out[left[0]]))
    return RegionMap(values=out, ranks=ranks, gains=np.asarray(gains, dtype=float), algorithm=algorithm,
                     added_ranks=added)


def region_map(attr: np.ndarray, seg: Segments, *, algorithm: Literal["full", "fast"] = "full",
               area_threshold: float = 1.0, min_pixel_diff: int = 50,
               outside: np.ndarray | None = None) -> RegionMap:
    """XRAI region map of an attribution map over precomputed segments (2D) or supervoxels (3D).

    Parameters
    ----------
    attr : numpy.ndarray
        (H, W) attribution map of an image, or (Z, H, W) of a volume: a 3D model's map, or the
        stack of ``explain_volume``'s 2D maps (one region map over the volume; slices it did not
        explain hold NaN and are left out); the study uses absolute maps. Same shape as the segments.
    seg : Segments
        From ``xrai.segment`` of the image (or of the volume, with its ``spacing_mm``).
    algorithm : {"full", "fast"}
        Full: greedy, each step adds the mask whose *uncovered* part has the highest mean
        attribution. Fast: masks ranked once by mean over their whole area.
    area_threshold : float
        Full only: stop once this fraction of the image is covered (PAIR: 1.0).
    min_pixel_diff : int
        Masks adding fewer new pixels (voxels) than this are dropped (PAIR: 50).
    outside : numpy.ndarray, optional
        Bool, the map's shape: voxels no region holds (a 3D model's ``VolumeGeometry.outside``,
        where its map is 0 because it never saw them); their values are NaN and ranks 0.

    Notes
    -----
    2D segments with nothing left out: PAIR's output bit for bit (``regions.py``). A volume's
    supervoxels, or anything left out: the same growing on cells (``regions_3d``).
    """
    a = np.asarray(attr)
    if algorithm not in ("full", "fast"):
        raise ValueError(f"algorithm must be 'full' or 'fast', got {algorithm!r}")
    shape = tuple(seg.shape)
    if a.ndim == 2 and len(shape) == 3:
        raise ValueError(f"a 2D map {a.shape} over a volume's supervoxels {shape}: give the volume's map (Z, H, W) "
                         f"(a 3D model's, or the stack of explain_volume's slices), or segment the slice itself "
                         f"(xrai.segment(hu[z]))")
    if a.ndim == 3 and len(shape) == 2:
        raise ValueError(f"a volume's map {a.shape} over one image's segments {shape}: segment the volume "
                         f"(xrai.segment(volume, spacing_mm=(z, y, x))), or give one slice's map")
    if a.shape != shape:
        raise ValueError(f"attribution shape {a.shape} does not match the segments' image {shape}")
    left = None
    if a.ndim == 3 and not np.isfinite(a).all():
        finite = np.isfinite(a)
        blank = ~finite.any(axis=(1, 2))  # slices with no map (explain_volume's unexplained ones)
        if (~finite & ~blank[:, None, None]).any():
            raise ValueError("xrai.region_map: the map has NaN/inf values inside explained slices; XRAI cannot "
                             "rank regions of it (check the map that produced them)")
        left = np.broadcast_to(blank[:, None, None], a.shape)
    elif not np.isfinite(a).all():
        raise ValueError("xrai.region_map: the attribution map has NaN/inf values; XRAI cannot rank "
                         "regions of it (check the map that produced them)")
    if outside is not None:
        out = np.asarray(outside)
        if out.shape != a.shape or out.dtype != bool:
            raise ValueError(f"outside must be a bool array of the map's shape {a.shape}, got {out.dtype} {out.shape}")
        left = out if left is None else (left | out)
    if left is not None:
        if left.all():
            raise ValueError("xrai.region_map: every voxel is left out (outside, or a slice with no map): "
                             "nothing to rank")
        a = np.where(left, 0.0, a)
    if left is not None or seg.grid is not None:
        from .regions_3d import region_map_cells

        return region_map_cells(a, seg, None if left is None else np.ascontiguousarray(left), algorithm,
                                area_threshold, min_pixel_diff)
    csr, csc = seg.incidence()
    flat = a.reshape(-1)
    if algorithm == "fast":
        return _fast(a, flat, csr, min_pixel_diff)
    return _full(a, flat, csr, csc, area_threshold, min_pixel_diff)


def _full(a: np.ndarray, flat: np.ndarray, csr: sparse.csr_matrix, inc: sparse.csc_matrix, area_threshold: float,
          min_pixel_diff: int) -> RegionMap:
    n_masks, n_pix = inc.shape
    count = np.diff(csr.indptr).astype(np.float64)
    total = np.asarray(csr @ flat.astype(np.float64)).ravel()
    alive = np.ones(n_masks, dtype=bool)
    covered = np.zeros(n_pix, dtype=bool)
    out = np.full(a.shape, -np.inf)
    flat_out = out.reshape(-1)
    trace: list[tuple[np.ndarray, float]] = []
    n_covered = 0
    # PAIR compares means computed in the map's dtype: re-score everything within its precision.
    tol = 1e-5 if flat.dtype.itemsize <= 4 else 1e-10
    while n_covered / n_pix <= area_threshold:
        alive &= count >= min_pixel_diff
        if not alive.any():
            break
        cand = np.flatnonzero(alive)
        density = total[cand] / count[cand]
        best = density.max()
        near = cand[density >= best - tol * max(abs(best), np.finfo(float).tiny)]
        if len(near) == 1:
            key = int(near[0])
            pix = csr.indices[csr.indptr[key]: csr.indptr[key + 1]]
            new = pix[~covered[pix]]
            gain = _exact_gain(flat, new)
        else:  # re-score near-ties exactly as PAIR does; first index wins ties
            key, gain, new = -1, -np.inf, None
            for k in near:
                pix = csr.indices[csr.indptr[k]: csr.indptr[k + 1]]
                nk = pix[~covered[pix]]
                g = _exact_gain(flat, nk)
                if g > gain:
                    key, gain, new = int(k), g, nk
        new = np.sort(new)
        trace.append((new, gain))
        flat_out[new] = gain
        covered[new] = True
        n_covered += len(new)
        alive[key] = False
        ms, px = masks_holding(inc, new)
        count -= np.bincount(ms, minlength=n_masks)
        total -= np.bincount(ms, weights=flat[px].astype(np.float64), minlength=n_masks)
    return _finish(a, out, trace, "full")


def _fast(a: np.ndarray, flat: np.ndarray, csr: sparse.csr_matrix, min_pixel_diff: int) -> RegionMap:
    n_masks = csr.shape[0]
    gains = np.empty(n_masks)
    for k in range(n_masks):  # PAIR's mean over the whole mask, exactly
        pix = csr.indices[csr.indptr[k]: csr.indptr[k + 1]]
        gains[k] = flat[pix].mean() if len(pix) else -np.inf
    order = sorted(range(n_masks), key=lambda k: -gains[k])
    covered = np.zeros(csr.shape[1], dtype=bool)
    out = np.full(a.shape, -np.inf)
    flat_out = out.reshape(-1)
    trace: list[tuple[np.ndarray, float]] = []
    for k in order:
        pix = csr.indices[csr.indptr[k]: csr.indptr[k + 1]]
        new = np.sort(pix[~covered[pix]])
        if len(new) < min_pixel_diff:
            continue
        g = _exact_gain(flat, new)
        trace.append((new, g))
        flat_out[new] = g
        covered[pix] = True
    return _finish(a, out, trace, "fast")
