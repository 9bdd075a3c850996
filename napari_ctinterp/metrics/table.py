"""Scoring every map layer of a slice into table rows (plain data, used by the panel and the study)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

from .fidelity import fidelity
from .localisation import Localisation, localisation


@dataclass(frozen=True)
class MapScore:
    """One row: a map scored against the mask (and the model)."""

    method: str
    variant: str
    kind: str  # pixel | region
    auc: float
    auc_grid: float
    max_dice: float
    k_star: float
    relevance_mass: float
    fidelity: float
    curves: Localisation
    fidelity_curves: object | None = None

    def row(self) -> dict:
        """The table row (no curves)."""
        d = asdict(self)
        d.pop("curves")
        d.pop("fidelity_curves")
        return d


COLUMNS = ("method", "variant", "kind", "auc", "auc_grid", "max_dice", "k_star", "relevance_mass", "fidelity")


def score_maps(maps: Iterable[tuple[str, str, str, np.ndarray, np.ndarray | None]], mask: np.ndarray, *,
               clf=None, hu: np.ndarray | None = None, label: int | None = None, seed: int = 0
               ) -> list[MapScore]:
    """Score ``(method, variant, kind, values, region_ranks)`` maps against ``mask``.

    With ``clf``, ``hu`` and ``label`` the continuous fidelity (probability of the predicted class,
    MiF vs LiF area) of each absolute map on this slice is added; else fidelity is NaN.
    """
    out = []
    for method, variant, kind, values, ranks in maps:
        loc = localisation(np.abs(values), mask, regions=ranks, seed=seed)
        fid = None
        f_val = float("nan")
        if clf is not None and hu is not None and label is not None:
            fid = fidelity(clf, hu[None], np.abs(values)[None], np.array([label]), seed=seed, bootstrap=1)
            f_val = fid.F_continuous
        out.append(MapScore(method, variant, kind, loc.auc, loc.auc_grid, loc.max_dice, loc.k_star,
                            loc.relevance_mass, f_val, loc, fid))
    return out
