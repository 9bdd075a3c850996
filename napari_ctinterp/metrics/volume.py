"""Localisation along z and over the whole volume (``localisation_volume``).

Per slice: ``localisation`` of every slice that has mask pixels and a map (a slice that was not
explained holds NaN and is skipped with its reason). Volume level: the percent-occluded maps of
the whole volume — the top k % of all explained voxels, one grid over the volume — so the exact
AUC is scikit-learn's ``roc_auc_score`` on the flattened volume and max Dice is the best 3D Dice
over that grid. Nothing here is new arithmetic: the volume is scored by ``localisation`` on the
explained voxels (AUC and the percent grid depend only on the ranks of the values, not on where
the voxels lie).

Region maps, ``region_scope``:

- ``"slice"`` (2D XRAI run slice by slice): per slice with their XRAI ranks (regions kept whole);
  at volume level each slice's ranks say nothing about another slice's, so voxels are ranked by
  the region map's values (a region's voxels share one value; at a cut, the ties inside a region
  are broken by the seed);
- ``"volume"`` (one ranking over the volume: supervoxels of a 3D model's map): the ranks hold
  across slices, so the volume level keeps whole supervoxels in rank order, and each slice keeps
  its cross-sections of them in the same order.

A 3D model's map (``explain`` of a 3D classifier) is on the CT's grid and 0 where the model saw no
CT voxel (its card's crop). Those voxels say nothing about the map, so ``outside``
(``VolumeGeometry.outside``) leaves them out of every score — at volume level and per slice (a
slice wholly outside is skipped with its reason); a mask voxel there is reported in ``skipped``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

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
        constant map, a mask covering the slice, outside the model's input); key ``-1``: why the
        volume level could not be, or how many mask voxels lay outside the model's input.
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


def _inside(a: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
    """``a`` as it is, or its voxels where ``keep`` as one row (the scores only need their ranks)."""
    return a if keep is None else a[keep][None]


def localisation_volume(maps: np.ndarray, mask: np.ndarray, *, regions: np.ndarray | None = None,
                        region_scope: Literal["slice", "volume"] = "slice", outside: np.ndarray | None = None,
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
        (Z, H, W) region ranks (region maps, 1 = most important); see ``region_scope``.
    region_scope : {"slice", "volume"}
        ``"slice"``: ``regions`` ranks each slice's regions on its own (2D XRAI per slice);
        ``"volume"``: one ranking over the volume (3D regions); see the module docstring.
    outside : numpy.ndarray, optional
        (Z, H, W) bool: voxels the model never saw (a 3D model's ``VolumeGeometry.outside``),
        left out of every score.
    seed : int
        Tie breaking.
    grid : numpy.ndarray, optional
        Percent values (default ``percent_grid()``).
    """
    a, m = np.asarray(maps), np.asarray(mask)
    if a.ndim != 3 or m.shape != a.shape:
        raise ValueError(f"expected a (Z, H, W) map and a mask of the same shape, got {a.shape} and {m.shape}: "
                         f"bring the mask to the CT's geometry (io.load_mask(path, reference=volume))")
    r = None if regions is None else np.asarray(regions)
    if r is not None and r.shape != a.shape:
        raise ValueError(f"region ranks shape {r.shape} differs from the map's {a.shape}")
    if region_scope not in ("slice", "volume"):
        raise ValueError(f"region_scope is 'slice' (ranks per slice) or 'volume' (one ranking), got {region_scope!r}")
    inside = None
    if outside is not None:
        out = np.asarray(outside, dtype=bool)
        if out.shape != a.shape:
            raise ValueError(f"outside shape {out.shape} differs from the map's {a.shape}")
        inside = ~out
    note, m = mask_note(m), evidence_mask(m)
    seen = [z for z in range(len(a)) if inside is None or inside[z].any()]
    explained = [z for z in seen if np.isfinite(_inside(a[z], None if inside is None else inside[z])).all()]
    slices: dict[int, Localisation] = {}
    skipped: dict[int, str] = {}
    for z in range(len(a)):
        if not m[z].any():
            continue
        if z not in seen:
            skipped[z] = "outside the model's input (its card's crop)"
            continue
        if z not in explained:
            skipped[z] = "not explained (the map holds NaN)"
            continue
        keep = None if inside is None else inside[z]
        try:
            slices[z] = localisation(_inside(a[z], keep), _inside(m[z], keep),
                                     regions=None if r is None else _inside(r[z], keep), seed=seed, grid=grid)
        except ValueError as e:  # constant map, mask covering the slice (or none of it inside)
            skipped[z] = str(e)
    volume = None
    keep = None if inside is None else inside[explained]
    if inside is not None and (m & ~inside).any():
        skipped[-1] = f"{int((m & ~inside).sum())} mask voxel(s) outside the model's input are not scored"
    if explained and _inside(m[explained], keep).any():
        vol_regions = None if r is None or region_scope == "slice" else _inside(r[explained], keep)
        try:
            volume = localisation(_inside(a[explained], keep), _inside(m[explained], keep), regions=vol_regions,
                                  seed=seed, grid=grid)
        except ValueError as e:  # a constant map over the volume: the slices' results still stand
            skipped[-1] = f"volume: {e}"
    return VolumeLocalisation(slices=slices, volume=volume, skipped=skipped, explained=explained, mask_note=note)
