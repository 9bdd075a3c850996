"""The shortcut benchmark: which methods reveal what the model is *known* to use?

``ctinterp study --benchmark shortcut`` runs two studies on the same phantom slices, each with a
planted marker (``StudyConfig(data="demo-marked")``): one of ``demo-shortcut`` (it reads the
marker) and one of ``demo`` (it ignores it). Every map of the first is scored against the marker's
mask (``metrics.ground_truth``: relevance mass, relevance rank, marker AUC, pointing game), and so
is every map of the second. A method's **truth score** is the paired difference, per slice, of the
two models' scores (``metrics.truth_score``): a method that points at a bright marker whatever the
model uses scores 0; one that follows the model's use of it scores high.

The slices: every other pair carries a marker (the kinds in turn), contrast and marker
independent; each model's study labels them by what the model answers (the shortcut model: the
marker; demo: the contrast), so each model's fidelity F measures that model against its own task.
Ground-truth scores exist on the marked slices only, so both studies take only those
(``DEMO_MARKED``: ``--slices 40`` gives the set's first 40 marked slices); truth scores pair them,
and the shortcut model's F (and accuracy) are measured on the same slices.

``shortcut.csv``: per method × variant × map type (absolute maps), the truth score of each
ground-truth score with its bootstrap interval, next to the same maps' fidelity F (paper's, of
the shortcut model) and expert-mask AUC (of the shortcut model: agreement with what a radiologist
marks), and ``correlations.json``: Spearman ρ between the truth score (relevance mass) and F, and
between it and the expert AUC, over the groups — do fidelity and the expert mask agree with the
truth? ``report.html`` shows them with example maps of both models on one slice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..metrics import rank_correlation, truth_score
from ..progress import Progress
from .config import StudyConfig
from .runner import DEMO_MARKED, run_study

#: The models compared: the one that reads the marker, the one that ignores it.
MODELS = ("demo-shortcut", "demo")
#: The ground-truth scores (table.csv columns ``gt_<name>``) whose truth scores are reported.
GT_SCORES = ("relevance_mass", "relevance_rank", "marker_auc", "pointing_hit")
KEY = ["method", "variant", "map_type"]


def shortcut_table(shortcut: pd.DataFrame, blind: pd.DataFrame, fid: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """Per method × variant × map type (absolute maps): each ground-truth score's truth score
    (paired over the slices both studies scored), the shortcut model's mean, the blind model's
    mean, and the shortcut model's F and expert AUC."""
    def ok(t: pd.DataFrame) -> pd.DataFrame:
        return t[t["error"].isna() & (t["sign"] == "absolute")]

    a, b = ok(shortcut), ok(blind)
    both = a.merge(b, on=["slice_id", *KEY], suffixes=("_s", "_b"))
    rows = []
    for key, g in both.groupby(KEY, sort=False):
        rec = dict(zip(KEY, key))
        rec["n"] = 0  # slices with a marker scored for both models
        for score in GT_SCORES:
            s = pd.to_numeric(g[f"gt_{score}_s"], errors="coerce").to_numpy(float)
            t = pd.to_numeric(g[f"gt_{score}_b"], errors="coerce").to_numpy(float)
            ts = truth_score(s, t, seed=seed)
            rec["n"] = max(rec["n"], ts.n)
            rec.update({f"truth_{score}": ts.mean, f"truth_{score}_low": ts.low, f"truth_{score}_high": ts.high,
                        f"{score}_shortcut": float(np.nanmean(s)) if np.isfinite(s).any() else np.nan,
                        f"{score}_demo": float(np.nanmean(t)) if np.isfinite(t).any() else np.nan})
        rec["expert_auc_shortcut"] = float(pd.to_numeric(g["auc_s"], errors="coerce").mean())
        rows.append(rec)
    out = pd.DataFrame(rows)
    f = fid[fid["sign"] == "absolute"][[*KEY, "F"]] if len(fid) else pd.DataFrame(columns=[*KEY, "F"])
    return out.merge(f, on=KEY, how="left").rename(columns={"F": "F_shortcut"}) if len(out) else out


def correlations(table: pd.DataFrame) -> dict:
    """Spearman ρ over the groups (random map left out): truth (relevance mass) vs F, vs expert AUC."""
    t = table[table["method"] != "random"]
    out = {}
    for other in ("F_shortcut", "expert_auc_shortcut"):
        rho, n = rank_correlation(t["truth_relevance_mass"], t[other]) if len(t) else (float("nan"), 0)
        out[f"truth_vs_{other}"] = {"rho": rho, "n": n}
    return out


def run_shortcut_benchmark(base: StudyConfig, out: str | Path, *, device: str = "auto", batch_size: int | None = None,
                           workers: int = 0, progress: Callable[[str], Progress | None] | None = None) -> Path:
    """Run (or resume) both studies of the benchmark under ``out`` and write the comparison to
    ``out/shortcut/``: ``shortcut.csv``, ``correlations.json``, ``report.html``. ``base`` gives the
    slices, methods, variants, XRAI and fidelity settings (its data and model are set here, and
    its maps are scored absolute only: the truth scores read those);
    ``progress(model)`` gives each study's progress callable (``run_study``'s)."""
    out = Path(out)
    dirs = {}
    for model in MODELS:
        # the table reads absolute maps of the marked slices only
        cfg = replace(base, data=DEMO_MARKED, model=model, signs=("absolute",))
        dirs[model] = run_study(cfg, out, device=device, batch_size=batch_size, workers=workers,
                                progress=None if progress is None else progress(model))
    tables = {m: pd.read_csv(d / "table.csv") for m, d in dirs.items()}
    fid = pd.read_csv(dirs[MODELS[0]] / "fidelity.csv")
    table = shortcut_table(tables[MODELS[0]], tables[MODELS[1]], fid, seed=base.seed)
    res = out / "shortcut"
    res.mkdir(parents=True, exist_ok=True)
    table.to_csv(res / "shortcut.csv", index=False)
    corr = correlations(table)
    accuracy = {m: json.loads((d / "accuracy.json").read_text()) for m, d in dirs.items()}
    (res / "correlations.json").write_text(json.dumps({"correlations": corr, "accuracy": accuracy,
                                                       "studies": {m: str(d) for m, d in dirs.items()}}, indent=2))
    from .shortcut_report import write_shortcut_report

    write_shortcut_report(res, table, corr, accuracy, {m: d / "example_maps.npz" for m, d in dirs.items()})
    return res
