"""Scoring every map layer of a slice into table rows (plain data, used by the panel and the gallery).

``MapScorer`` keeps what does not depend on the mask — each map's ranking and its fidelity (which
depends on the map, the slice and the model only) — so re-scoring after the mask is repainted
costs milliseconds per map and never runs the model again. The rows' column names are the one
score schema of ``metrics.schema``, the same as a study's tables.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import weakref
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .faithfulness import faithfulness_correlation
from .fidelity import Fidelity, fidelity
from .localisation import Localisation, MapRanking, localisation, rank_map
from .map_scores import MAP_SCORES, map_scores
from .schema import MARKER_SCORES, MORE_SCORES, ROW, SCORES


@dataclass(frozen=True)
class MapScore:
    """One row: a map scored against the mask (and the model); field names as in ``metrics.schema``.

    Attributes
    ----------
    method, variant : str
        The map's method and variant.
    map_type : str
        ``pixel`` or ``region`` (XRAI region map).
    auc, auc_grid, max_dice, k_star, relevance_mass : float
        Localisation against the mask (see ``metrics.localisation``).
    fidelity_continuous : float
        F of the absolute map on this slice (NaN when not computed).
    curves : Localisation
        ROC and Dice curves.
    fidelity_curves : Fidelity or None
        MiF / LiF curves when fidelity was computed.
    scope : str
        ``slice`` (the current slice) or ``volume`` (every explained slice at once).
    sign : str
        ``absolute``: the panel scores absolute maps (the study also scores signed ones).
    gt_relevance_mass, gt_pointing_hit : float
        Against a known shortcut (``metrics.MarkerCheck``): the share of |map| on it, and 1 / 0 when
        the map's top pixel does / does not point at it; NaN when no shortcut was given.
    auprc, iou_otsu, topk_intersection, sparseness, complexity, faithfulness_correlation, max_sensitivity : float
        The scores beyond the paper's (``schema.MORE_SCORES``, ``schema.SCORE_INFO``); NaN where not
        asked for (``MapScorer.score(more=...)``) or not computed (max-sensitivity: the study's).
    """

    method: str
    variant: str
    map_type: str
    auc: float
    auc_grid: float
    max_dice: float
    k_star: float
    relevance_mass: float
    fidelity_continuous: float
    curves: Localisation
    fidelity_curves: Fidelity | None = None
    scope: str = "slice"
    sign: str = "absolute"
    gt_relevance_mass: float = float("nan")
    gt_pointing_hit: float = float("nan")
    auprc: float = float("nan")
    iou_otsu: float = float("nan")
    topk_intersection: float = float("nan")
    sparseness: float = float("nan")
    complexity: float = float("nan")
    faithfulness_correlation: float = float("nan")
    max_sensitivity: float = float("nan")

    @property
    def fidelity(self) -> float:
        """Alias of ``fidelity_continuous`` (the name of this field before the one score schema)."""
        return self.fidelity_continuous

    def row(self) -> dict:
        """The table row: the schema's columns and ``scope`` (no curves)."""
        return {**{c: getattr(self, c) for c in ROW}, "scope": self.scope}


#: ``(method, variant, map_type, values, region_ranks or None)``: one map to score.
MapItem = tuple[str, str, str, np.ndarray, "np.ndarray | None"]

#: Columns of the Metrics panel's CSV export: the schema's row and ``scope``, with ``kind``, an alias
#: of ``map_type`` (same values) kept third, where exports made before the one schema had it, so that
#: files and scripts reading the first columns (``method,variant,kind,auc,auc_grid,max_dice``) keep working;
#: the known shortcut's columns (nan without one), then the scores beyond the paper's (nan where not computed).
EXPORT_COLUMNS: tuple[str, ...] = ("method", "variant", "kind", *SCORES, "map_type", "sign", "scope", *MARKER_SCORES,
                                   *MORE_SCORES)


def write_scores_csv(scores: Sequence[MapScore], path: str | Path) -> Path:
    """Write ``scores`` as CSV (``EXPORT_COLUMNS``) to ``path``; returns the path."""
    path = Path(path)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(EXPORT_COLUMNS))
        w.writeheader()
        for s in scores:
            w.writerow({**s.row(), "kind": s.map_type, **{c: getattr(s, c) for c in (*MARKER_SCORES, *MORE_SCORES)}})
    return path


#: Cache sizes of a ``MapScorer`` (oldest dropped first): a ranking of a 512² map holds ≈ 5 MB.
MAX_RANKINGS, MAX_FIDELITIES = 96, 2048
#: Scores remembered per map source by ``MapScorer.score_of`` (one per slice and mask edit).
MAX_SCORES_PER_SOURCE = 16


#: Numbers for network objects in fidelity's cache keys (never reused).
_MODULE_TOKENS = itertools.count(1)


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
    """Scores maps against a mask, with memory: rankings per map, fidelity per (map, slice, model,
    label, step).

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
    _faithfulness: dict[tuple, float] = field(default_factory=dict, repr=False)
    # id(source) -> (weak reference to the source, {key: score}); an entry is served only while its
    # reference still points at the source asked about, and leaves when the source is collected
    _scored: dict[int, tuple[weakref.ref, dict]] = field(default_factory=dict, repr=False)
    _modules: weakref.WeakKeyDictionary = field(default_factory=weakref.WeakKeyDictionary, repr=False)

    def score(self, item: MapItem, mask: np.ndarray, *, clf=None, hu: np.ndarray | None = None,
              label: int | None = None, hu_fp: str | None = None, more: tuple[str, ...] = (),
              context: tuple[np.ndarray, int] | None = None) -> MapScore:
        """Score one ``(method, variant, map_type, values, region_ranks)`` map against ``mask``.

        With ``clf``, ``hu`` and ``label`` the continuous fidelity (probability of the class
        ``label``, MiF vs LiF area) of the absolute map on this slice is added (computed once per
        map, slice, model and label); else it is NaN. ``hu_fp``: ``fingerprint(hu)`` when the
        caller scores many maps of one slice (hashed once). ``more``: the scores beyond the paper's
        to fill (``schema.MORE_SCORES``; the map's own, and ``faithfulness_correlation`` when
        ``faithfulness`` has computed it for this map, slice, model and class). ``context``: a
        2.5D model's input, ``(volume, index of hu)`` (its neighbours are part of the input; then
        ``hu_fp`` should fingerprint the volume and index).
        """
        method, variant, map_type, values, ranks = item
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
            fkey = (map_fp, hu_fp if hu_fp is not None else fingerprint(hu), self._model_key(clf), int(label),
                    self.step)
            fid = self._fidelity.get(fkey)
            if fid is None:
                images, index = (hu[None], None) if context is None else (context[0], [context[1]])
                fid = fidelity(clf, images, absolute[None], np.array([label]), seed=self.seed, bootstrap=1,
                               step=self.step, index=index)
                self._fidelity[fkey] = fid
                _trim(self._fidelity, MAX_FIDELITIES)
                self.fidelity_runs += 1
        f_val = fid.F_continuous if fid is not None else float("nan")
        extra = map_scores(absolute, mask, [m for m in more if m in MAP_SCORES])
        if "faithfulness_correlation" in more and clf is not None and hu is not None and label is not None:
            fkey = (map_fp, hu_fp if hu_fp is not None else fingerprint(hu), self._model_key(clf), int(label))
            extra["faithfulness_correlation"] = self._faithfulness.get(fkey, float("nan"))
        return MapScore(method, variant, map_type, loc.auc, loc.auc_grid, loc.max_dice, loc.k_star,
                        loc.relevance_mass, f_val, loc, fid, **extra)

    def faithfulness(self, items: Sequence[MapItem], *, clf, hu: np.ndarray, label: int,
                     hu_fp: str | None = None, context: tuple[np.ndarray, int] | None = None) -> int:
        """The faithfulness correlation of the absolute maps of ``items`` on slice ``hu`` for class
        ``label``, from one set of forward passes for all those not known yet (``score`` then reads
        them); returns how many maps were computed. ``context``, ``hu_fp``: as ``score``."""
        hu_fp = hu_fp if hu_fp is not None else fingerprint(hu)
        todo: dict[tuple, np.ndarray] = {}
        for item in items:
            absolute = np.abs(item[3])
            fkey = (fingerprint(absolute), hu_fp, self._model_key(clf), int(label))
            if fkey not in self._faithfulness:
                todo[fkey] = absolute[None]
        if todo:
            images, index = (hu[None], None) if context is None else (context[0], [context[1]])
            corr = faithfulness_correlation(clf, images, todo, np.array([label]), seed=self.seed, index=index)
            for fkey, value in corr.items():
                self._faithfulness[fkey] = float(value[0])
            _trim(self._faithfulness, MAX_FIDELITIES)
        return len(todo)

    def _model_key(self, clf) -> str:
        return f"{clf.source}:{clf.card.short_hash}:{self._module_token(clf.module)}"

    def score_of(self, source: object, key: Hashable, item: MapItem, mask: np.ndarray,
                 more: tuple[str, ...] = ()) -> MapScore | None:
        """``score(item, mask, more=more)`` (no fidelity), remembered for ``source`` and ``key`` (which
        should name ``more`` when it varies); None where the
        map cannot be scored (``score`` raises ``ValueError``, e.g. a mask covering everything).

        ``source`` is the object the map was read from (e.g. a napari layer's data array), held
        weakly: a result lives as long as that object and is never served for another one, as an
        ``id()`` could be. ``key`` is what else the result depends on (e.g. the slice and the mask's
        ``fingerprint``); the latest ``MAX_SCORES_PER_SOURCE`` keys of a source are kept.
        """
        known, score = self.scored(source, key)
        if known:
            return score
        try:
            score = self.score(item, mask, more=more)
        except ValueError:
            score = None
        per = self._per_source(source)
        if per is None:
            scored = self._scored

            def forget(ref: weakref.ref, i: int = id(source)) -> None:
                if i in scored and scored[i][0] is ref:
                    del scored[i]

            per = {}
            self._scored[id(source)] = (weakref.ref(source, forget), per)
        per[key] = score
        _trim(per, MAX_SCORES_PER_SOURCE)
        return score

    def scored(self, source: object, key: Hashable) -> tuple[bool, MapScore | None]:
        """``(known, score)``: what ``score_of(source, key, …)`` remembers, without scoring."""
        per = self._per_source(source)
        if per is None or key not in per:
            return False, None
        return True, per[key]

    def _per_source(self, source: object) -> dict | None:
        entry = self._scored.get(id(source))
        return entry[1] if entry is not None and entry[0]() is source else None

    def _module_token(self, module: object) -> int:
        """A number for this network object, held weakly: a fidelity is never served for another
        network that took the address of a collected one (as an ``id()`` key could)."""
        if module is None:
            return 0
        try:
            token = self._modules.get(module)
            if token is None:
                token = self._modules[module] = next(_MODULE_TOKENS)
        except TypeError:  # not weakly referenceable: its address, as before
            return -id(module)
        return token

    def clear(self) -> None:
        """Forget every cached ranking, fidelity and remembered score."""
        self._rankings.clear()
        self._fidelity.clear()
        self._faithfulness.clear()
        self._scored.clear()
