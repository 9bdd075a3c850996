"""One slice of a study: maps, region maps, localisation, per-slice fidelity and the scores beyond the
paper's (``more_scores``) — a Dask task.

Runs on the driver or on a Dask worker; the model is loaded once per process (``model.load``
cache). Returns plain data (JSON-ready) so results stream back cheaply; a failing slice returns
its error instead of raising, and the study goes on.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping

import numpy as np

from ..explain.options import ExplainOptions
from ..metrics.ground_truth import POINTING_TOLERANCE_MM
from ..progress import Cancelled
from .config import SIGNS, StudyConfig
from .data import SliceRef, eg_references, load_context, load_slice, marker_of
from .more_scores import add_map_scores, add_model_scores, sensitivity_of

MAP_TYPES = ("pixel", "region")


def fidelity_record(rows: list[dict], curves: Mapping) -> dict:
    """Each row's continuous fidelity F (set in place) and, per map key, its stored curves (one unit:
    a slice, or a 3D model's series)."""
    fid = {}
    for row in rows:
        key = "|".join((row["method"], row["variant"], row["map_type"], row["sign"]))
        f = curves[key]
        row["fidelity_continuous"] = f.F_continuous
        fid[key] = {"pred_mif": f.pred_mif[0].tolist(), "pred_lif": f.pred_lif[0].tolist(),
                    "prob_mif": f.prob_mif[0].tolist(), "prob_lif": f.prob_lif[0].tolist()}
    return fid

def run_slice(ref: SliceRef, config: dict, device: str = "auto", batch_size: int | None = None,
              keep_maps: bool = False, phase: Callable[[str], object] | None = None) -> dict:
    """Every score of one slice: {"slice_id", "label", "p_contrast", "rows", "fidelity", "error"}.

    With ``keep_maps`` the result also holds ``"example"``: the slice, its mask and its maps
    (for the report's example panel; not written into the slice's JSON). ``phase(name)`` is told
    when the slice enters each of its phases: ``"gradients"``, ``"XRAI"``, ``"fidelity"``.
    """
    cfg = StudyConfig(**config)
    try:
        return _run(ref, cfg, device, batch_size, keep_maps, phase or (lambda _name: None))
    except Cancelled:  # the study was stopped: nothing of this slice is stored
        raise
    except Exception as e:  # noqa: BLE001 - reported in the table, the study goes on
        return {"slice_id": ref.slice_id, "label": ref.label, "p_contrast": None, "rows": [], "fidelity": {},
                "z": ref.index if ref.index >= 0 else None, "series": ref.series,
                "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(limit=3)}


def study_maps(maps: Mapping[tuple[str, str], np.ndarray], seg: np.ndarray | None, algorithm: str,
               signed_maps: Mapping[tuple[str, str], np.ndarray] | None = None, signs: tuple[str, ...] = SIGNS
               ) -> dict[tuple[str, str, str, str], tuple[np.ndarray, np.ndarray | None]]:
    """The maps a study scores on one slice: each (method, variant) map absolute and signed (the
    random map absolute only), as a pixel map and, given the slice's XRAI segmentation ``seg``, as
    a region map. Keys (method, variant, map type, sign); values (map, region ranks or None).
    ``signed_maps`` replace a map's signed form (Grad-CAM: its map before the ReLU, whose
    absolute value is not the map). ``signs``: the forms scored (``StudyConfig.signs``)."""
    from ..xrai import region_map

    out = {}
    signed_maps = signed_maps or {}
    for (method, variant), signed in maps.items():
        for sign in signs:
            if method == "random" and sign == "signed":
                continue
            values = np.abs(signed) if sign == "absolute" else signed_maps.get((method, variant), signed)
            out[method, variant, "pixel", sign] = (values, None)
            if seg is not None:
                reg = region_map(values, seg, algorithm=algorithm)
                out[method, variant, "region", sign] = (reg.values, reg.ranks)
    return out


def sanity_record(clf, ctx: np.ndarray, options: ExplainOptions, target: int, kw: dict) -> dict:
    """The cascading randomisation test of one slice (plain maps of the options' methods, the
    study's target class), JSON-ready: {"stages": [...], "spearman_abs" / "spearman_signed" /
    "ssim": {"METHOD plain": [similarity per stage]}}."""
    from ..metrics.sanity import cascading_randomisation

    curves = cascading_randomisation(clf, ctx, options, variants=("plain",), target=target, **kw)
    return {"stages": list(curves.stages),
            **{name: {f"{m} {v}": [float(x) for x in arr] for (m, v), arr in getattr(curves, name).items()}
               for name in ("spearman_abs", "spearman_signed", "ssim")}}


def _run(ref: SliceRef, cfg: StudyConfig, device: str, batch_size: int | None, keep_maps: bool,
         phase: Callable[[str], object]) -> dict:
    from ..explain import explain
    from ..metrics import (
        evidence_mask,
        faithfulness_correlation,
        fidelity_many,
        ground_truth_scores,
        localisation,
        mask_note,
        random_map,
    )
    from ..model import load
    from ..model.demos import default_references
    from ..xrai import segment

    clf = load(cfg.model, device=device)
    hu, mask = load_slice(ref)  # first: a slice that could not be planned raises its own reason
    label = clf.card.class_index(ref.label)  # a class index or a name of the card; a clear error otherwise
    # a 2.5D model sees the slice with its neighbours from the series (``ctx``: a window of it, the
    # slice at ``k``); every input below (forward, maps, fidelity) is built from that window
    reach = max((abs(o) for o in clf.card.slice_offsets), default=0)
    ctx, k = load_context(ref, reach) if clf.card.is_2_5d else (hu, None)
    # one forward for the probabilities, the answer and the out-of-domain check
    logits, (check,) = clf.logits_and_domain(clf.preprocess(ctx, index=k))
    note = "" if mask is None else mask_note(mask)  # a multi-label mask from another tool: say how it is read
    mask = None if mask is None else evidence_mask(mask)  # every label > 0
    proba = clf.proba(logits)[0].cpu().numpy().astype(np.float64)
    prediction = int(clf.predicted(logits)[0])
    p_contrast = float(proba[clf.card.positive_index]) if clf.binary else None
    phase("gradients")
    # EG's baselines: the demo models bring theirs; a user's model takes the phantom's training
    # slices on the demo data set, the series' other slices on a folder (``data.eg_references``)
    references = None
    if "EG" in cfg.methods and default_references(clf) is None:
        references, _ = eg_references(ref)
    kw = dict(index=k, batch_size=batch_size, references=references)
    maps = explain(clf, ctx, cfg.explain, **kw)
    all_maps = dict(maps)
    all_maps["random", "plain"] = random_map(hu.shape, seed=cfg.seed + ref.seed)
    phase("XRAI")
    seg = segment(hu) if cfg.xrai != "off" else None  # once per slice, for every region map
    rows, scored = [], {}
    marker = marker_of(ref)
    # Grad-CAM's signed rows score its map before the ReLU (after it, signed and absolute are one map)
    for key, (values, ranks) in study_maps(all_maps, seg, cfg.xrai, signed_maps=maps.gc_signed,
                                              signs=cfg.signs).items():
        row = dict(zip(("method", "variant", "map_type", "sign"), key))
        if mask is not None and mask.any() and not mask.all():
            loc = localisation(values, mask, regions=ranks, seed=cfg.seed)
            row.update(auc=loc.auc, auc_grid=loc.auc_grid, max_dice=loc.max_dice, k_star=loc.k_star,
                       relevance_mass=loc.relevance_mass)
        else:
            row.update(auc=None, auc_grid=None, max_dice=None, k_star=None, relevance_mass=None)
        add_map_scores(row, values, mask, cfg.metrics)
        if marker is not None:  # a planted marker: the ground truth of what a shortcut model reads
            row.update({f"gt_{k}": v for k, v in ground_truth_scores(values, marker[0], spacing_mm=marker[1],
                                                                     tolerance_mm=POINTING_TOLERANCE_MM
                                                                     ).record().items()})
        rows.append(row)
        scored["|".join(key)] = np.asarray(values, np.float32)[None]
    # every map's perturbed images in one forward plan (shared p = 0 / 100 images, equal rankings once)
    phase("fidelity")
    curves = fidelity_many(clf, ctx if k is not None else hu[None], scored, np.array([label]),
                           step=cfg.fidelity_step, seed=cfg.seed, bootstrap=1,
                           index=None if k is None else [k])  # its own batch: the device's best forward
    fid = fidelity_record(rows, curves)
    target = int(maps.params["target"])
    images = ctx if k is not None else hu[None]
    score_note = add_model_scores(rows, cfg.metrics, phase=phase, faithfulness=lambda: faithfulness_correlation(
        clf, images, scored, np.array([target]), seed=cfg.seed, batch_size=batch_size,
        index=None if k is None else [k]), sensitivity=sensitivity_of(
        clf, clf.preprocess(ctx, index=k), target, cfg.explain, references, cfg.seed, batch_size))
    out = {"slice_id": ref.slice_id, "label": label, "p_contrast": p_contrast, "rows": rows, "fidelity": fid,
           "z": ref.index if ref.source != "phantom" else None, "series": ref.series,
           "error": None, "has_mask": mask is not None, "prediction": prediction, "proba": proba.tolist(),
           "target": int(maps.params["target"]), "class": clf.class_names[int(maps.params["target"])],
           "in_domain": check.in_domain, "domain_score": check.score if np.isfinite(check.score) else None,
           "mask_note": note, "score_note": score_note}
    if keep_maps and cfg.sanity:
        phase("sanity")
        try:  # its own failure is said in the report; the slice's scores stand
            out["sanity"] = sanity_record(clf, ctx, cfg.explain, int(maps.params["target"]), kw)
        except Exception as e:  # noqa: BLE001
            out["sanity"] = {"error": f"{type(e).__name__}: {e}"}
    if keep_maps:
        out["example"] = {"hu": hu.astype(np.float32), "slice_id": np.array(ref.slice_id),
                          **({"mask": mask.astype(np.uint8)} if mask is not None else {}),
                          **({"marker": marker[0].astype(np.uint8)} if marker is not None else {}),
                          **{f"{m} {v}": np.abs(a).astype(np.float16) for (m, v), a in maps.items()}}
    return out
