"""Localisation along z and over the whole volume (``localisation_volume``).

Per slice: ``localisation`` of every slice that has mask pixels and a map (a slice that was not
explained holds NaN and is skipped with its reason). Volume level: the percent-occluded maps of
the whole volume — the top k % of all explained voxels, one grid over the volume — so the exact
AUC is scikit-learn's ``roc_auc_score`` on the flattened volume and max Dice is the best 3D Dice
over that grid. Nothing here is new arithmetic: the volume is scored by ``localisation`` on the
explained slices stacked into one 2D array (AUC and the percent grid depend only on the ranks of
the values, not on where the voxels lie).

Region maps: per slice with their XRAI ranks (regions kept whole); at volume level each slice's
ranks say nothing about another slice's, so voxels are ranked by the region map's values (a
region's voxels share one value; at a cut, the ties inside a region are broken by the seed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..io.evidence import evidence_mask, mask_note
from .localisation import Localisation, localisation


@dataclass(frozen=True)
class VolumeLocalisation:
    """Localisation of a (Z, H, W) map against a (Z, H, W) mask.

    Attributes
    ----------
    slices : dict
        ``{z: Localisation}`` for every slice with mask pixels and a map.
    volume : Localisation or None
        Over every explained slice (with or without mask pixels: those are all negatives); None
        when the explained slices hold no mask pixel.
    skipped : dict
        ``{z: reason}`` for slices with mask pixels that could not be scored (not explained, a
        constant map, a mask covering the slice); key ``-1``: why the volume level could not be.
    explained : list of int
        The slices whose map is finite (the volume level's slices).
    mask_note : str
        How a mask other than 0/1 was read (``metrics.mask_note``), ``""`` for a 0/1 mask.
    """

    slices: dict[int, Localisation]
    volume: Localisation | None
    skipped: dict[int, str] = field(default_factory=dict)
    explained: list[int] = field(default_factory=list)
    mask_note: str = ""

    def table(self) -> list[dict]:
        """One row per scored slice: ``z, auc, auc_grid, max_dice, k_star``."""
        return [{"z": z, "auc": r.auc, "auc_grid": r.auc_grid, "max_dice": r.max_dice, "k_star": r.k_star}
                for z, r in sorted(self.slices.items())]


def localisation_volume(maps: np.ndarray, mask: np.ndarray, *, regions: np.ndarray | None = None,
                        seed: int = 0, grid: np.ndarray | None = None) -> VolumeLocalisation:
    """Score a (Z, H, W) map against a (Z, H, W) reference mask, slice by slice and as a volume.

    Parameters
    ----------
    maps : numpy.ndarray
        (Z, H, W) map (absolute values for attribution maps); NaN on slices not explained (as
        ``explain_volume`` leaves them).
    mask : numpy.ndarray
        (Z, H, W) reference mask; every value > 0 is expected evidence.
    regions : numpy.ndarray, optional
        (Z, H, W) XRAI region ranks per slice (region maps); see the module docstring.
    seed : int
        Tie breaking.
    grid : numpy.ndarray, optional
        Percent values (default ``percent_grid()``).
    """
    a, m = np.asarray(maps), np.asarray(mask)
    if a.ndim != 3 or m.shape != a.shape:
        raise ValueError(f"expected a (Z, H, W) map and a mask of the same shape, got {a.shape} and {m.shape}: "
                         f"bring the mask to the CT's geometry (io.load_mask(path, reference=volume))")
    if regions is not None and np.shape(regions) != a.shape:
        raise ValueError(f"region ranks shape {np.shape(regions)} differs from the map's {a.shape}")
    note, m = mask_note(m), evidence_mask(m)
    explained = [z for z in range(len(a)) if np.isfinite(a[z]).all()]
    slices: dict[int, Localisation] = {}
    skipped: dict[int, str] = {}
    for z in range(len(a)):
        if not m[z].any():
            continue
        if z not in explained:
            skipped[z] = "not explained (the map holds NaN)"
            continue
        try:
            slices[z] = localisation(a[z], m[z], regions=None if regions is None else np.asarray(regions)[z],
                                     seed=seed, grid=grid)
        except ValueError as e:  # constant map, mask covering the slice
            skipped[z] = str(e)
    volume = None
    if explained and m[explained].any():
        h, w = a.shape[1:]
        flat_a = a[explained].reshape(len(explained) * h, w)
        flat_m = m[explained].reshape(len(explained) * h, w)
        try:
            volume = localisation(flat_a, flat_m, seed=seed, grid=grid)
        except ValueError as e:  # a constant map over the volume: the slices' results still stand
            skipped[-1] = f"volume: {e}"
    return VolumeLocalisation(slices=slices, volume=volume, skipped=skipped, explained=explained, mask_note=note)
