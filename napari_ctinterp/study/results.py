"""Assembling a study's per-slice (per-series) results into tidy tables and group summaries.

``table.csv``: one row per slice × method × variant × map type × sign (errors as rows with the
error text; the score columns are ``metrics.schema``'s, as in the Metrics panel, then the scores
beyond the paper's the study computed). ``summary.csv``: per group, n, mean ± SD and a 95 % CI
(normal approximation) of exact AUC, grid AUC, max Dice, continuous fidelity and those scores.
``fidelity.csv``: per group, the paper's F from balanced-accuracy MiF/LiF curves pooled over
slices, its bootstrap 95 % interval, and the curves themselves. Both summaries carry ``origin``:
``paper`` (the five methods of the reference study), ``beyond`` (GC, GCPP, GBP, GGC, OCC) or
``baseline`` (the random map). A 3D model's study has one row group per series (``slice_id`` is
the series) and ``table_by_slice.csv``: its maps' localisation per slice along z.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..metrics import schema
from .pooled_fidelity import fidelity_draws, fidelity_table, origin
from .store import load_results

#: A map's group key, the scores summarised per group, and table.csv's columns (the slice's, then the schema's row).
GROUP = list(schema.KEY)
SCORES = list(schema.SUMMARY_SCORES)
COLUMNS = ["slice_id", "series", "z", "label", "p_contrast", "prediction", "target", "class", "in_domain",
           "domain_score", *schema.ROW, "mask_note", "score_note", "error"]


def _prediction(r: dict) -> int | None:
    """The predicted class of a slice result (older results: from P(contrast))."""
    if r.get("prediction") is not None:
        return int(r["prediction"])
    return None if r.get("p_contrast") is None else int(r["p_contrast"] >= 0.5)


def tidy_table(results: list[dict]) -> pd.DataFrame:
    """One row per slice × group; failed slices as one row carrying the error."""
    rows = []
    for r in results:
        base = {"slice_id": r["slice_id"], "series": r.get("series"), "z": r.get("z"), "label": r["label"],
                "p_contrast": r["p_contrast"],
                "prediction": _prediction(r), "target": r.get("target"), "class": r.get("class"),
                "in_domain": r.get("in_domain"), "domain_score": r.get("domain_score"),
                "mask_note": r.get("mask_note") or None, "score_note": r.get("score_note") or None,
                "error": r["error"]}
        if r["error"]:
            rows.append(base)
            continue
        rows.extend({**base, **row} for row in r["rows"])
    df = pd.DataFrame(rows)
    for c in COLUMNS:
        if c not in df:
            df[c] = None
    # the scores beyond the paper's a study computed (``StudyConfig.metrics``), then a marker study's ground truth
    return df[COLUMNS + [c for c in schema.MORE_SCORES if c in df] + [c for c in df.columns if c.startswith("gt_")]]


#: ``table_by_slice.csv``'s columns: a 3D study's localisation along z (``metrics.localisation_volume``).
SLICE_COLUMNS = ["series", "z", *GROUP, "auc", "auc_grid", "max_dice", "k_star"]


def slice_scores_table(results: list[dict]) -> pd.DataFrame:
    """A 3D study's per-slice localisation: one row per series × map × slice with mask voxels
    (``per_slice`` of each series' result; empty for a 2D study)."""
    rows = []
    for r in results:
        for key, per in (r.get("per_slice") or {}).items():
            group = dict(zip(GROUP, key.split("|")))
            rows.extend({"series": r.get("series") or r["slice_id"], "z": v[0], **group,
                         **dict(zip(SLICE_COLUMNS[-4:], v[1:]))} for v in per)
    return pd.DataFrame(rows, columns=SLICE_COLUMNS)


def summary_table(df: pd.DataFrame, by: tuple[str, ...] = ()) -> pd.DataFrame:
    """Mean, SD, n and 95 % CI of each score per group (and per ``by`` columns first, e.g. series)."""
    ok = df[df["error"].isna()]
    keys = [*by, *GROUP]
    out = []
    for key, g in ok.groupby(keys, sort=False):
        rec = dict(zip(keys, key))
        rec["origin"] = origin(rec["method"])
        for s in [*SCORES, *(c for c in schema.MORE_SCORES if c in df)]:
            v = pd.to_numeric(g[s], errors="coerce").dropna().to_numpy(float)
            n = len(v)
            mean = float(v.mean()) if n else np.nan
            sd = float(v.std(ddof=1)) if n > 1 else np.nan
            half = 1.96 * sd / np.sqrt(n) if n > 1 else np.nan
            rec.update({f"{s}_mean": mean, f"{s}_sd": sd, f"{s}_n": n, f"{s}_ci_low": mean - half,
                        f"{s}_ci_high": mean + half})
        out.append(rec)
    return pd.DataFrame(out)


def assemble(run_dir: Path, slice_ids: list[str] | None = None) -> dict[str, pd.DataFrame]:
    """Write table.csv, summary.csv, fidelity.csv, accuracy.json and the report; return the tables."""
    cfg = json.loads((run_dir / "config.json").read_text())
    results = load_results(run_dir, slice_ids)
    table = tidy_table(results)
    summary = summary_table(table)
    step, seed = cfg["config"]["fidelity_step"], int(cfg["config"].get("seed", 0))
    draws = fidelity_draws(results, step, seed)  # F's bootstrap: the table's intervals and the report's
    fid = fidelity_table(results, step, seed, draws)
    table.to_csv(run_dir / "table.csv", index=False)
    summary.to_csv(run_dir / "summary.csv", index=False)
    fid.to_csv(run_dir / "fidelity.csv", index=False)
    if table["series"].notna().any() and table["z"].notna().any():  # real series: one summary per series too
        summary_table(table[table["series"].notna()], by=("series",)).to_csv(run_dir / "summary_by_series.csv",
                                                                            index=False)
    by_slice = slice_scores_table(results)
    if len(by_slice):  # a 3D study: its maps scored along z too
        by_slice.to_csv(run_dir / "table_by_slice.csv", index=False)
    ok = [r for r in results if not r["error"]]
    acc = {"n": len(ok), "n_failed": len(results) - len(ok),
           "accuracy": float(np.mean([_prediction(r) == r["label"] for r in ok])) if ok else None}
    (run_dir / "accuracy.json").write_text(json.dumps(acc, indent=2))
    from .report import write_report

    write_report(run_dir, table, summary, fid, acc, cfg, results, draws)
    return {"table": table, "summary": summary, "fidelity": fid}
