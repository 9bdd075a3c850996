"""Localisation of an attribution map against a reference mask: ROC AUC and Dice over
percent-occluded maps (definitions: ../shared/REFERENCE.md, "Metric definitions").

One sort per map and cumulative sums give every grid point at once: a 512×512 map takes
milliseconds. Pixel maps keep the top ⌈k·N/100⌉ pixels (ties broken at random with a fixed seed);
region maps keep whole regions in rank order, as many as fit in k % of the image. The exact AUC
is the Mann–Whitney statistic (= ``sklearn.metrics.roc_auc_score(mask, map)``, ties counted half).

Geometry: the map and the mask must have the same shape. ``explain`` returns maps resized back to
the slice's geometry, so the mask painted on the slice is used as it is.

3D: a (Z, H, W) map of a 3D model (on the CT's grid) against a (Z, H, W) mask is scored the same
way, over every voxel at once — the exact AUC is ``roc_auc_score`` of the flattened volume, the
percent grid keeps the top k % of the volume's voxels (max Dice is the best 3D Dice on that grid),
and ``regions`` are then the ranks of 3D regions (supervoxels), kept whole. Nothing in the
arithmetic depends on where a voxel lies, so this is the 2D code over a flattened array; per slice
along z, with slices not explained and voxels the model never saw: ``metrics.localisation_volume``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from ..io.evidence import evidence_mask, mask_note


def percent_grid() -> np.ndarray:
    """k in percent: 0–10 in 0.5 steps, then 1 % steps to 100 (111 points)."""
    return np.concatenate([np.arange(0, 10, 0.5), np.arange(10, 101, 1.0)])


@dataclass(frozen=True)
class Localisation:
    """Scores and curves of one map against one mask.

    Attributes
    ----------
    auc : float
        Exact ROC AUC (Mann–Whitney, ties counted half).
    auc_grid : float
        Trapezoid AUC of the (FPR, TPR) points of the percent-occluded maps, from (0, 0) to (1, 1).
    max_dice : float
        Highest Dice over the grid; ``k_star`` the smallest k (percent) reaching it.
    k, tpr, fpr, dice, kept : numpy.ndarray
        The curves over the grid; ``kept`` = pixels kept at each k.
    random_tpr, random_dice : numpy.ndarray
        Expected curves of a random map on the same grid (random AUC = 0.5).
    relevance_mass : float
        Share of the map's total (absolute) value inside the mask.
    precision_at_mask_size : float
        Fraction of the top-|mask| pixels that lie in the mask (pixel maps).
    kind : str
        ``pixel`` or ``region``.
    mask_note : str
        How a mask other than 0/1 was read (``metrics.mask_note``), ``""`` for a 0/1 mask.
    """

    auc: float
    auc_grid: float
    max_dice: float
    k_star: float
    k: np.ndarray
    tpr: np.ndarray
    fpr: np.ndarray
    dice: np.ndarray
    kept: np.ndarray
    random_tpr: np.ndarray
    random_dice: np.ndarray
    relevance_mass: float
    precision_at_mask_size: float
    kind: str
    mask_note: str = ""


def _check(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(values)
    m = np.asarray(mask)
    if a.shape != m.shape:
        raise ValueError(f"map shape {a.shape} and mask shape {m.shape} differ: bring them to one geometry "
                         f"(explain returns maps in the slice's geometry; paint the mask on that slice)")
    if a.ndim not in (2, 3):
        raise ValueError(f"expected a 2D (H, W) or 3D (Z, H, W) map and mask, got {a.ndim}D")
    if not np.isfinite(a).all():
        raise ValueError(f"the map has {int((~np.isfinite(a)).sum())} NaN/inf values: it cannot be scored")
    m = evidence_mask(m)
    n_in = int(m.sum())
    if n_in == 0:
        raise ValueError("the reference mask is empty: paint the expected evidence (any label > 0) first")
    if n_in == m.size:
        raise ValueError("the reference mask covers the whole image: nothing is outside it, ROC is undefined")
    if float(a.max()) == float(a.min()):
        raise ValueError("the map is constant: it ranks no pixel above another, so it cannot be scored")
    return a, m


def exact_auc(values: np.ndarray, mask: np.ndarray) -> float:
    """Mann–Whitney ROC AUC of ``values`` for ``mask`` (ties half), as scikit-learn's roc_auc_score."""
    v = np.asarray(values, dtype=np.float64).ravel()
    m = evidence_mask(mask).ravel()
    ranks = rankdata(v)
    n_pos = int(m.sum())
    n_neg = m.size - n_pos
    return float((ranks[m].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _curves(order_hits: np.ndarray, cut: np.ndarray, n_in: int, n: int, k: np.ndarray) -> dict:
    tp_cum = np.concatenate([[0], np.cumsum(order_hits)])
    tp = tp_cum[cut]
    tpr = tp / n_in
    fpr = (cut - tp) / (n - n_in)
    dice = 2 * tp / (cut + n_in)
    pts_f = np.concatenate([[0.0], fpr, [1.0]])
    pts_t = np.concatenate([[0.0], tpr, [1.0]])
    return {"tpr": tpr, "fpr": fpr, "dice": dice, "auc_grid": float(np.trapezoid(pts_t, pts_f))}


@dataclass(frozen=True)
class MapRanking:
    """What scoring a map needs that does not depend on the mask, computed once per map.

    Re-scoring after the mask is repainted then costs a few gathers and cumulative sums
    (milliseconds for 512²) instead of a sort and a ranking per map.
    """

    values: np.ndarray  # (H, W) or (Z, H, W) map as given
    order: np.ndarray  # flat pixel order, most important first (ties broken by the seed)
    cut: np.ndarray  # pixels kept at each grid point
    auc_ranks: np.ndarray  # flat average ranks for the exact AUC (ascending importance)
    k: np.ndarray
    kind: str


def rank_map(values: np.ndarray, *, regions: np.ndarray | None = None, seed: int = 0,
             grid: np.ndarray | None = None) -> MapRanking:
    """The mask-independent part of ``localisation`` (see there for the parameters)."""
    a = np.asarray(values)
    if a.ndim not in (2, 3):
        raise ValueError(f"expected a 2D (H, W) or 3D (Z, H, W) map, got {a.ndim}D")
    if not np.isfinite(a).all():
        raise ValueError(f"the map has {int((~np.isfinite(a)).sum())} NaN/inf values: it cannot be scored")
    if float(a.max()) == float(a.min()):
        raise ValueError("the map is constant: it ranks no pixel above another, so it cannot be scored")
    k = percent_grid() if grid is None else np.asarray(grid, dtype=float)
    n = a.size
    target = np.ceil(k * n / 100.0).astype(np.int64)
    if regions is None:
        rng = np.random.default_rng(seed)
        order = np.lexsort((rng.random(n), -a.ravel().astype(np.float64)))
        return MapRanking(a, order, target, rankdata(a.ravel().astype(np.float64)), k, "pixel")
    r = np.asarray(regions)
    if r.shape != a.shape:
        raise ValueError(f"region ranks shape {r.shape} differs from the map's {a.shape}")
    order = np.argsort(r.ravel(), kind="stable")
    sizes = np.bincount(r.ravel())[np.unique(r.ravel())]
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    cut = bounds[np.searchsorted(bounds, target, side="right") - 1]
    return MapRanking(a, order, cut, rankdata(-r.ravel().astype(np.float64)), k, "region")


def localisation(values: np.ndarray, mask: np.ndarray, *, regions: np.ndarray | None = None,
                 seed: int = 0, grid: np.ndarray | None = None, ranking: MapRanking | None = None
                 ) -> Localisation:
    """Score a map against a reference mask.

    Parameters
    ----------
    values : numpy.ndarray
        (H, W) map, or (Z, H, W) for a volume scored as one set of voxels (a 3D model's map); use
        absolute values for attribution maps (the study's choice).
    mask : numpy.ndarray
        Reference mask of the map's shape; every value > 0 counts as expected evidence (bool, 0/1, multi-label or
        fractional masks alike; ``mask_note`` of the result says how a mask other than 0/1 was read).
    regions : numpy.ndarray, optional
        Region ranks of the map's shape (1 = most important, from ``xrai.region_map``; in 3D the
        ranks of supervoxels): then regions are kept whole in rank order and the exact AUC ranks
        pixels by region rank.
    seed : int
        Tie breaking of pixel maps.
    grid : numpy.ndarray, optional
        Percent values (default ``percent_grid()``).
    ranking : MapRanking, optional
        ``rank_map(values, regions=..., seed=..., grid=...)`` computed before (re-scoring the same
        map against a repainted mask); then ``regions``, ``seed`` and ``grid`` are taken from it.
    """
    a, m = _check(values, mask)
    rk = ranking if ranking is not None else rank_map(a, regions=regions, seed=seed, grid=grid)
    if rk.values.shape != a.shape:
        raise ValueError(f"the ranking was made for a map of shape {rk.values.shape}, not {a.shape}")
    k, order, cut = rk.k, rk.order, rk.cut
    n, n_in = a.size, int(m.sum())
    flat_m = m.ravel()
    auc = float((rk.auc_ranks[flat_m].sum() - n_in * (n_in + 1) / 2) / (n_in * (n - n_in)))
    kind = rk.kind
    c = _curves(flat_m[order], cut, n_in, n, k)
    best = int(np.argmax(c["dice"]))
    f = n_in / n
    kept_frac = cut / n
    abs_a = np.abs(a)
    total = float(abs_a.sum())
    hits_at_m = int(flat_m[order[:n_in]].sum())
    return Localisation(
        auc=auc, auc_grid=c["auc_grid"], max_dice=float(c["dice"][best]), k_star=float(k[best]), k=k,
        tpr=c["tpr"], fpr=c["fpr"], dice=c["dice"], kept=cut, random_tpr=kept_frac,
        random_dice=2 * kept_frac * f / (kept_frac + f), relevance_mass=float(abs_a[m].sum() / total) if total else 0.0,
        precision_at_mask_size=hits_at_m / n_in, kind=kind, mask_note=mask_note(mask))
