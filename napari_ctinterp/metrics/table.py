"""Scoring every map layer of a slice into table rows (plain data, used by the panel and the study).

``MapScorer`` keeps what does not depend on the mask — each map's ranking and its fidelity (which
depends on the map, the slice and the model only) — so re-scoring after the mask is repainted
costs milliseconds per map and never runs the model again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import numpy as np

from .fidelity import Fidelity, fidelity
from .localisation import Localisation, MapRanking, localisation, rank_map


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
    scope: str = "slice"  # "slice" (the current slice) or "volume" (every explained slice at once)

    def row(self) -> dict:
        """The table row (no curves)."""
        d = asdict(self)
        d.pop("curves")
        d.pop("fidelity_curves")
        return d


MapItem = tuple[str, str, str, np.ndarray, "np.ndarray | None"]

COLUMNS = ("method", "variant", "kind", "auc", "auc_grid", "max_dice", "k_star", "relevance_mass", "fidelity",
           "scope")


def score_maps(maps: Iterable[MapItem], mask: np.ndarray, *, clf=None, hu: np.ndarray | None = None,
               label: int | None = None, seed: int = 0) -> list[MapScore]:
    """Score ``(method, variant, kind, values, region_ranks)`` maps against ``mask``.

    With ``clf``, ``hu`` and ``label`` the continuous fidelity (probability of the predicted class,
    MiF vs LiF area) of each absolute map on this slice is added; else fidelity is NaN. Use a
    ``MapScorer`` to re-score the same maps against another mask without recomputing fidelity.
    """
    scorer = MapScorer(seed=seed)
    return [scorer.score(item, mask, clf=clf, hu=hu, label=label) for item in maps]


#: Cache sizes of a ``MapScorer`` (oldest dropped first): a ranking of a 512² map holds ≈ 5 MB.
MAX_RANKINGS, MAX_FIDELITIES = 96, 2048


def _trim(cache: dict, size: int) -> None:
    while len(cache) > size:
        cache.pop(next(iter(cache)))


def fingerprint(*arrays: np.ndarray | None) -> str:
    """A short content hash of arrays (shape, dtype and bytes): cache keys for maps and slices."""
    h = hashlib.blake2b(digest_size=12)
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        arr = np.ascontiguousarray(a)
        h.update(f"{arr.shape}{arr.dtype}".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


@dataclass
class MapScorer:
    """``score_maps`` with memory: rankings per map, fidelity per (map, slice, model, label, fill).

    Attributes
    ----------
    seed : int
        Tie breaking and fidelity's random parts.
    step : float
        Fidelity's step in percent of pixels replaced (the study's 2.5 by default; a coarser step
        costs proportionally fewer forward passes).
    fidelity_runs : int
        How many fidelity computations ran the model (tests and the panel's status use it).
    """

    seed: int = 0
    step: float = 2.5
    fidelity_runs: int = 0
    _rankings: dict[str, MapRanking] = field(default_factory=dict, repr=False)
    _fidelity: dict[tuple, Fidelity] = field(default_factory=dict, repr=False)

    def score(self, item: MapItem, mask: np.ndarray, *, clf=None, hu: np.ndarray | None = None,
              label: int | None = None, hu_fp: str | None = None) -> MapScore:
        """Score one ``(method, variant, kind, values, region_ranks)`` map (see ``score_maps``).

        ``hu_fp``: ``fingerprint(hu)`` when the caller scores many maps of one slice (hashed once).
        """
        method, variant, kind, values, ranks = item
        absolute = np.abs(values)
        map_fp = fingerprint(absolute)
        key = f"{map_fp}:{fingerprint(ranks)}" if ranks is not None else map_fp
        ranking = self._rankings.get(key)
        if ranking is None:
            ranking = self._rankings[key] = rank_map(absolute, regions=ranks, seed=self.seed)
            _trim(self._rankings, MAX_RANKINGS)
        loc = localisation(absolute, mask, ranking=ranking)
        fid = None
        if clf is not None and hu is not None and label is not None:
            model_key = f"{clf.source}:{clf.card.short_hash}:{id(clf.module)}"
            fkey = (map_fp, hu_fp if hu_fp is not None else fingerprint(hu), model_key, int(label), self.step)
            fid = self._fidelity.get(fkey)
            if fid is None:
                fid = fidelity(clf, hu[None], absolute[None], np.array([label]), seed=self.seed, bootstrap=1,
                               step=self.step)
                self._fidelity[fkey] = fid
                _trim(self._fidelity, MAX_FIDELITIES)
                self.fidelity_runs += 1
        f_val = fid.F_continuous if fid is not None else float("nan")
        return MapScore(method, variant, kind, loc.auc, loc.auc_grid, loc.max_dice, loc.k_star,
                        loc.relevance_mass, f_val, loc, fid)

    def clear(self) -> None:
        """Forget every cached ranking and fidelity."""
        self._rankings.clear()
        self._fidelity.clear()
