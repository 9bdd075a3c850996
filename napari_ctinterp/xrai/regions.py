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

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import sparse

from .segments import Segments


@dataclass(frozen=True)
class RegionMap:
    """XRAI output for one attribution map.

    Attributes
    ----------
    values : numpy.ndarray
        (H, W) float64: each pixel holds its region's gain (mean attribution of the region's
        newly covered pixels); pixels never covered hold the mean over all of them.
    ranks : numpy.ndarray
        (H, W) int: 1 = most important region (regions sorted by gain, as PAIR).
    order : tuple of numpy.ndarray
        Flat pixel indices of each region in the order regions were *added*; the leftover
        uncovered area, if any, last.
    gains : numpy.ndarray
        Gain of each entry of ``order``.
    algorithm : str
        ``full`` or ``fast``.
    """

    values: np.ndarray
    ranks: np.ndarray
    order: tuple[np.ndarray, ...]
    gains: np.ndarray
    algorithm: str


def _masks_of_pixels(inc: sparse.csc_matrix, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For newly covered ``pixels``: (mask index, pixel) pairs of every mask containing them."""
    starts, stops = inc.indptr[pixels], inc.indptr[pixels + 1]
    lens = stops - starts
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
    pos = np.arange(total) + offsets
    return inc.indices[pos].astype(np.int64), np.repeat(pixels, lens)


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
    for r, i in enumerate(ranked):
        flat_ranks[trace[i][0]] = r + 1
    order = [t[0] for t in trace]
    gains = [t[1] for t in trace]
    if uncomputed.any():
        left = np.flatnonzero(uncomputed)
        flat_ranks[left] = len(trace) + 1
        order.append(left)
        gains.append(float(flat_out[left[0]]))
    return RegionMap(values=out, ranks=ranks, order=tuple(order), gains=np.asarray(gains, dtype=float),
                     algorithm=algorithm)


def region_map(attr: np.ndarray, seg: Segments, *, algorithm: Literal["full", "fast"] = "full",
               area_threshold: float = 1.0, min_pixel_diff: int = 50) -> RegionMap:
    """XRAI region map of an attribution map over precomputed segments.

    Parameters
    ----------
    attr : numpy.ndarray
        (H, W) attribution map (the study uses absolute maps); same shape as the segments.
    seg : Segments
        From ``xrai.segment`` of the image.
    algorithm : {"full", "fast"}
        Full: greedy, each step adds the mask whose *uncovered* part has the highest mean
        attribution. Fast: masks ranked once by mean over their whole area.
    area_threshold : float
        Full only: stop once this fraction of the image is covered (PAIR: 1.0).
    min_pixel_diff : int
        Masks adding fewer new pixels than this are dropped (PAIR: 50).
    """
    a = np.asarray(attr)
    if a.shape != tuple(seg.shape):
        raise ValueError(f"attribution shape {a.shape} does not match the segments' image {seg.shape}")
    if not np.isfinite(a).all():
        raise ValueError("xrai.region_map: the attribution map has NaN/inf values; XRAI cannot rank "
                         "regions of it (check the map that produced them)")
    if algorithm not in ("full", "fast"):
        raise ValueError(f"algorithm must be 'full' or 'fast', got {algorithm!r}")
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
        ms, px = _masks_of_pixels(inc, new)
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
