"""One series of a 3D model's study: maps of the volume, 3D localisation and fidelity (a Dask task).

The 3D counterpart of ``slice_task.run_slice``: the unit is the series, which a 3D classifier
sees whole. Maps come from ``explain.explain`` on the volume (on the CT's own grid; voxels outside
the card's crop are 0), are scored against the series' 3D mask with ``metrics.localisation_volume``
(volume ROC AUC, max Dice over the 3D grid, and per slice along z; ``outside=`` the crop) and
against the model with ``metrics.fidelity_many`` on the volume. With ``xrai`` full / fast, each
map also as a region map over the series' supervoxels (``xrai.segment(volume, spacing_mm=...)``
once per series; ``xrai.region_map`` with ``outside=`` the crop), scored the same way with its
supervoxel ranks (``region_scope="volume"``: one ranking over the volume). The result has the
slice result's form (the tables and the report read both); a failing series returns its error
instead of raising.
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable

import numpy as np

from ..progress import Cancelled
from .config import StudyConfig
from .more_scores import add_map_scores, add_model_scores, sensitivity_of
from .series_data import SeriesRef, eg_reference_volumes, load_series
from .slice_task import fidelity_record, study_maps


def run_series(ref: SeriesRef, config: dict, device: str = "auto", batch_size: int | None = None,
               keep_maps: bool = False, phase: Callable[[str], object] | None = None,
               others: tuple[str, ...] = ()) -> dict:
    """Every score of one series: ``{"slice_id" (the series), "label", "p_contrast", "rows",
    "fidelity", "per_slice", "error", ...}`` (the keys of ``run_slice``'s result).

    ``per_slice``: map key → ``[[z, auc, auc_grid, max_dice, k_star], ...]`` along z. With
    ``keep_maps`` the result also holds ``"example"``: the planes the report draws
    (``planes.example_planes``; not written into the series' JSON). ``phase(name)`` is told
    ``"gradients"``, ``"XRAI"`` (with region maps) and ``"fidelity"``. ``others``: the study's
    other series (``SeriesRef.where``), from which a user's model takes its EG reference volumes.
    """
    cfg = StudyConfig(**config)
    try:
        return _run(ref, cfg, device, batch_size, keep_maps, phase or (lambda _name: None), others)
    except Cancelled:  # the study was stopped: nothing of this series is stored
        raise
    except Exception as e:  # noqa: BLE001 - reported in the table, the study goes on
        return {"slice_id": ref.series_id, "label": ref.label, "p_contrast": None, "rows": [], "fidelity": {},
                "z": None, "series": ref.series_id, "error": f"{type(e).__name__}: {e}",
                "traceback": traceback.format_exc(limit=3)}


def _scores(values: np.ndarray, mask: np.ndarray | None, outside: np.ndarray, seed: int,
            ranks: np.ndarray | None = None) -> tuple[dict, list[list]]:
    """The volume-level scores of one map (None without a mask, or when the volume cannot be
    scored) and its per-slice rows ``[z, auc, auc_grid, max_dice, k_star]``; ``ranks``: a region
    map's supervoxel ranks (kept whole, in rank order over the volume)."""
    from ..metrics import localisation_volume

    none = dict(auc=None, auc_grid=None, max_dice=None, k_star=None, relevance_mass=None)
    if mask is None or not mask.any():
        return none, []
    vl = localisation_volume(values, mask, outside=outside, seed=seed, regions=ranks, region_scope="volume")
    per_slice = [[r["z"], r["auc"], r["auc_grid"], r["max_dice"], r["k_star"]] for r in vl.table()]
    v = vl.volume
    if v is None:
        return none, per_slice
    return dict(auc=v.auc, auc_grid=v.auc_grid, max_dice=v.max_dice, k_star=v.k_star,
                relevance_mass=v.relevance_mass), per_slice


def _run(ref: SeriesRef, cfg: StudyConfig, device: str, batch_size: int | None, keep_maps: bool,
         phase: Callable[[str], object], others: tuple[str, ...]) -> dict:
    from ..explain import explain
    from ..metrics import evidence_mask, faithfulness_correlation, fidelity_many, mask_note, random_map
    from ..model import load
    from ..model.demos import default_references

    clf = load(cfg.model, device=device)
    hu, mask, spacing = load_series(ref)  # first: a series that cannot be read raises its own reason
    label = clf.card.class_index(ref.label)
    geometry = clf.geometry(hu.shape, spacing)  # refuses a volume this model cannot take, saying why
    logits, (check,) = clf.logits_and_domain(clf.preprocess(hu, spacing_mm=spacing))
    note = "" if mask is None else mask_note(mask)
    mask = None if mask is None else evidence_mask(mask)
    proba = clf.proba(logits)[0].cpu().numpy().astype(np.float64)
    prediction = int(clf.predicted(logits)[0])
    phase("gradients")
    references, ref_source = None, ""
    if "EG" in cfg.methods and default_references(clf) is None:
        references, ref_source = eg_reference_volumes(ref, others)
    maps = explain(clf, hu, cfg.explain, references=references, batch_size=batch_size, spacing_mm=spacing)
    target = int(maps.params["target"])
    all_maps = dict(maps)
    all_maps["random", "plain"] = np.where(geometry.outside, 0.0, random_map(hu.shape, seed=cfg.seed)
                                           ).astype(np.float32)
    seg = None
    if cfg.xrai != "off":
        from ..xrai import segment

        phase("XRAI")
        seg = segment(hu, spacing_mm=spacing)  # once per series, for every region map
    rows, scored, per_slice = [], {}, {}
    for key, (values, _ranks) in study_maps(all_maps, None, "off", signed_maps=maps.gc_signed,
                                                     signs=cfg.signs).items():
        for map_type, (vals, ranks) in _map_types(values, seg, cfg.xrai, geometry.outside):
            full_key = (*key[:2], map_type, key[3])
            name = "|".join(full_key)
            scores, per_slice[name] = _scores(vals, mask, geometry.outside, cfg.seed, ranks)
            row = {**dict(zip(("method", "variant", "map_type", "sign"), full_key)), **scores}
            seen = ~geometry.outside  # the voxels the model saw, as the localisation scores read them
            add_map_scores(row, np.asarray(vals)[seen], None if mask is None else mask[seen], cfg.metrics)
            rows.append(row)
            scored[name] = np.asarray(vals, np.float32)
    phase("fidelity")
    curves = fidelity_many(clf, hu, scored, np.array([label]), step=cfg.fidelity_step, seed=cfg.seed, bootstrap=1,
                           spacing_mm=spacing)
    fid = fidelity_record(rows, curves)
    score_note = add_model_scores(rows, cfg.metrics, phase=phase, faithfulness=lambda: faithfulness_correlation(
        clf, hu, scored, np.array([target]), seed=cfg.seed, batch_size=batch_size, spacing_mm=spacing),
        sensitivity=sensitivity_of(clf, clf.preprocess(hu, spacing_mm=spacing), target, cfg.explain, references,
                                   cfg.seed, batch_size, spacing))
    out = {"slice_id": ref.series_id, "label": label,
           "p_contrast": float(proba[clf.card.positive_index]) if clf.binary else None, "rows": rows,
           "fidelity": fid, "per_slice": per_slice, "z": None, "series": ref.series_id, "error": None,
           "has_mask": mask is not None, "prediction": prediction, "proba": proba.tolist(), "target": target,
           "class": clf.class_names[target], "in_domain": check.in_domain,
           "domain_score": check.score if np.isfinite(check.score) else None, "mask_note": note,
           "score_note": score_note,
           "shape": list(hu.shape), "spacing_mm": list(spacing), "outside_voxels": int(geometry.outside.sum()),
           "eg_references": ref_source}
    if keep_maps and cfg.sanity:
        phase("sanity")
        out["sanity"] = _sanity(clf, hu, cfg, target, references, batch_size, spacing)
    if keep_maps:
        from .planes import example_planes

        out["example"] = example_planes(ref.series_id, hu, mask, {f"{m} {v}": a for (m, v), a in maps.items()},
                                        spacing, geometry.outside)
    return out


def _map_types(values: np.ndarray, seg, algorithm: str, outside: np.ndarray):
    """The pixel map ``(values, None)``, then, given the series' supervoxels ``seg``, its region map
    ``(region values, supervoxel ranks)``: grown over the voxels the model saw (the crop's outside
    is left out of every region, and holds 0 in the values the fidelity perturbs)."""
    yield "pixel", (values, None)
    if seg is not None:
        from ..xrai import region_map

        reg = region_map(values, seg, algorithm=algorithm, outside=outside if outside.any() else None)
        yield "region", (np.where(outside, 0.0, reg.values), reg.ranks)


def _sanity(clf, hu: np.ndarray, cfg: StudyConfig, target: int, references, batch_size: int | None,
            spacing: tuple[float, float, float]) -> dict:
    """The cascading randomisation test of the example series (plain maps of the study's methods,
    its target class), as ``slice_task.sanity_record`` gives it; a failure is recorded, not raised."""
    from ..explain import explain
    from ..metrics.sanity import cascading_randomisation

    try:
        curves = cascading_randomisation(clf, hu, cfg.explain, variants=("plain",), target=target,
                                         references=references, batch_size=batch_size,
                                         explain_fn=functools.partial(explain, spacing_mm=spacing))
    except Exception as e:  # noqa: BLE001 - said in the report; the series' scores stand
        return {"error": f"{type(e).__name__}: {e}"}
    return {"stages": list(curves.stages),
            **{name: {f"{m} {v}": [float(x) for x in arr] for (m, v), arr in getattr(curves, name).items()}
               for name in ("spearman_abs", "spearman_signed", "ssim")}}
