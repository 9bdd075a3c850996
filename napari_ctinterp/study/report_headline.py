"""The report's headline: what was studied, with which settings, which map kind comes first on
each score (with its interval and the test against the runner-up), and the caveats a reader must
see before any figure.

Everything here is read from the study's tables and the comparisons the statistics section
shows (``report_stats.comparisons``); the paper's F, pooled over the slices, has no paired test —
its runner-up difference is bounded by a bootstrap interval (``pooled_fidelity.fidelity_draws``).
"""

from __future__ import annotations

import html
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..metrics.schema import KEY
from .compare import MIN_BLOCKS, Comparison, kind_of, score_label
from .pooled_fidelity import map_key

#: The paper's settings (../shared/REFERENCE.md) a study's are held against in the caveats.
PAPER_SETTINGS = {"steps": (25, "IG path points {}"), "sg_samples": (15, "SmoothGrad copies {}"),
                  "fidelity_step": (2.5, "fidelity step {} %")}

#: A class whose accuracy falls by this much at the random map's first fidelity step: the fill is a signal.
FLIP_DROP = 0.5

#: Below this accuracy the headline says the maps explain many wrong answers.
GOOD_ACCURACY = 0.95


def data_sentence(cfg: Mapping, acc: Mapping, table: pd.DataFrame, units: str) -> str:
    """Model, data, n and the model's accuracy, in one sentence."""
    card, config = cfg["card"], cfg["config"]
    name = card.get("name") or card.get("architecture", "?")
    size = "×".join(str(s) for s in card.get("input_size", ()))
    classes = list(card.get("class_names") or ())
    data = str(config.get("data", "?"))
    source = (f"held-out synthetic phantom slices (seed {config.get('seed', 0)}; not patient CT)"
              if data.startswith("demo") else f"the data in {data}")
    counts = ""
    scored = table[table["error"].isna()] if "error" in table else table  # a failed slice's label may be unknown
    if "label" in scored and len(scored):
        per = scored.groupby("slice_id")["label"].first() if "slice_id" in scored else scored["label"]
        vc = per.value_counts()  # labels: class indices or names (mixed in a user's labels.csv)
        order = sorted(vc.index, key=lambda c: (isinstance(c, str), c if not isinstance(c, str) else 0, str(c)))
        counts = " (" + ", ".join(f"{vc[c]} {_class_name(c, classes)}" for c in order) + ")"
    accuracy = "n/a" if acc.get("accuracy") is None else f"{acc['accuracy']:.1%}"
    return (f"Model: {name} — {card.get('architecture', '?')}, input {size}, classes {', '.join(classes) or '?'}. "
            f"Data: {source}; {acc['n']} {units} scored{counts}, {acc['n_failed']} failed; the model's accuracy on "
            f"them {accuracy}.")


def _class_name(c, classes: list[str]) -> str:
    try:
        return classes[int(c)]
    except (ValueError, IndexError, TypeError):
        return str(c)


def settings_sentence(config: Mapping) -> str:
    """The explanation and scoring settings, in one sentence."""
    methods = ", ".join(config.get("methods", ()))
    variants = ", ".join(config.get("variants", ()))
    return (f"Settings: methods {methods} × {variants}; IG {config.get('steps')} path points "
            f"({config.get('ig_method')}), "
            f"EG {config.get('samples')} samples, SmoothGrad {config.get('sg_samples')} copies at noise "
            f"{config.get('sg_level')}; XRAI {config.get('xrai')}; fidelity step {config.get('fidelity_step')} %, "
            f"signs {', '.join(config.get('signs', ()))}; seed {config.get('seed')}.")


def f_resolution(step: float, labels: pd.Series) -> float:
    """How much one slice moves the paper's F at most: one slice of the smallest class flipping at
    one interior level moves balanced accuracy by 1 / (k · n_class), weighted by the step (slices of
    larger classes, and several flips together, move it by less)."""
    counts = labels.value_counts()
    if counts.empty:
        return float("nan")
    return float(step / 100 / (len(counts) * counts.min()))


def _fmt(x: float) -> str:
    return "—" if not np.isfinite(x) else f"{x:.3f}"


def best_rows(comps: Mapping[str, Comparison], fid: pd.DataFrame, draws: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Per score, the first map kind with its mean and 95 % interval, the runner-up, their
    difference with its interval and the Holm-corrected Wilcoxon p (or why there is none)."""
    rows = []
    for score, c in comps.items():
        label = score_label(score)
        first = c.ranks.iloc[0]
        row = {"score": f"{label} {'↑' if c.higher_is_better else '↓'}", "first": first["kind"],
               "mean [95 % CI]": f"{first['mean']:.3f} [{first['ci_low']:.3f}, {first['ci_high']:.3f}]",
               "runner-up": "", "difference [95 % CI]": "", "p (Wilcoxon–Holm)": "", "n": c.n}
        if len(c.ranks) > 1:
            second = c.ranks.iloc[1]["kind"]
            pair = c.pairwise[(c.pairwise["a"] == first["kind"]) & (c.pairwise["b"] == second)].iloc[0]
            row.update({"runner-up": second, "difference [95 % CI]":
                        f"{pair['diff']:+.3f} [{pair['ci_low']:+.3f}, {pair['ci_high']:+.3f}]",
                        "p (Wilcoxon–Holm)": ("no test: too few" if c.note else f"{pair['p_holm']:.2g}")})
        rows.append(row)
    pooled = fid[(fid["sign"] == "absolute") & (fid["method"] != "random")].dropna(subset=["F"]) if len(fid) else fid
    if len(pooled):
        ranked = pooled.sort_values("F", ascending=False, kind="stable")
        first = ranked.iloc[0]
        row = {"score": "F (paper: pooled over the set) ↑", "first": kind_of(first),
               "mean [95 % CI]": f"{first['F']:.3f} [{_fmt(first.get('F_ci_low', np.nan))}, "
                                 f"{_fmt(first.get('F_ci_high', np.nan))}]",
               "runner-up": "", "difference [95 % CI]": "", "p (Wilcoxon–Holm)": "— (bootstrap only)",
               "n": int(first["n"])}
        if len(ranked) > 1:
            second = ranked.iloc[1]
            none = np.array([np.nan])
            d = draws.get(map_key(*first[list(KEY)]), none) - draws.get(map_key(*second[list(KEY)]), none)
            low, high = (np.nanpercentile(d, [2.5, 97.5]) if np.isfinite(d).any() else (np.nan, np.nan))
            row.update({"runner-up": kind_of(second), "difference [95 % CI]":
                        f"{first['F'] - second['F']:+.3f} [{low:+.3f}, {high:+.3f}]"})
        scores = list(comps)
        after = [i for i, sc in enumerate(scores) if sc in ("auc", "max_dice")]
        rows.insert(after[-1] + 1 if after else 0, row)  # after AUC and max Dice, as in the paper
    return pd.DataFrame(rows)


def caveats(cfg: Mapping, acc: Mapping, table: pd.DataFrame, comps: Mapping[str, Comparison],
            domain: Mapping[str, int], unit: str, units: str,
            flips: Mapping[int, tuple[float, float, int]] | None = None) -> list[str]:
    """What a reader must know before believing the figures (``flips``: ``pooled_fidelity.fill_flips``)."""
    config = cfg["config"]
    out = []
    classes = list(cfg["card"].get("class_names") or ())
    for c, (before, after, n) in (flips or {}).items():
        if before - after >= FLIP_DROP:
            out.append(f"The fill alone changes the answer: with {config.get('fidelity_step')} % of random pixels "
                       f"filled (the random map's first fidelity step) the model is right on {after:.0%} of the "
                       f"{n} {_class_name(c, classes)} {units}, {before:.0%} before. On that class F measures the "
                       f"fill, not the maps (the paper's label fill: white on class 0, black on the others).")
    untested = {score_label(s): c.n for s, c in comps.items() if c.note}
    if untested and len(untested) == len(comps):
        n_tested = min(untested.values())
        out.append(f"Too few {units} for tests: {n_tested} with every map kind scored (at least {MIN_BLOCKS}); "
                   f"means and intervals only, no p-values — read the figures as a demonstration, not a result.")
    elif untested:
        out.append(f"Too few {units} with every map kind scored for tests of " + ", ".join(
            f"{k} ({n})" for k, n in untested.items()) + f" (at least {MIN_BLOCKS}): means and intervals only there.")
    scored = table[table["error"].isna()] if "error" in table else table
    labels = (scored.groupby("slice_id")["label"].first() if len(scored) and "label" in scored
              else pd.Series(dtype=int))
    res = f_resolution(float(config.get("fidelity_step", 2.5)), labels)
    if np.isfinite(res):
        out.append(f"One {unit} of the smallest class changing its answer at one level of the fidelity curve moves "
                   f"the paper's F by {res:.3g} on this set ({len(labels)} {units}, fidelity step "
                   f"{config.get('fidelity_step')} %): differences of F of that size are one {unit}'s noise.")
    reduced = [f"{what.format(config[k])} (paper {paper})" for k, (paper, what) in PAPER_SETTINGS.items()
               if k in config and (config[k] > paper if k == "fidelity_step" else config[k] < paper)]
    if reduced:
        out.append("Reduced settings: " + ", ".join(reduced) + " — maps and F are coarser than the paper's.")
    if config.get("xrai") == "fast":
        out.append("XRAI fast (fewer segmentations than the reference XRAI): region maps are approximations.")
    if acc.get("n_failed"):
        out.append(f"{acc['n_failed']} {units if acc['n_failed'] != 1 else unit} failed (section Failed; "
                   f"column error of table.csv): the statistics leave them out.")
    if acc.get("accuracy") is not None and acc["accuracy"] < GOOD_ACCURACY:
        out.append(f"The model is right on only {acc['accuracy']:.1%} of the {units}: each map explains the class "
                   f"the model predicted (column target), right or wrong.")
    if len(labels) and labels.nunique() < 2:
        out.append("One class only: balanced accuracy and the paper's F mean little on this set.")
    if domain.get("out"):
        out.append(f"{domain['out']} {units if domain['out'] != 1 else unit} out of the model's domain "
                   f"(column in_domain): their answers and maps may not mean anything.")
    notes = table["score_note"].dropna() if "score_note" in table else pd.Series(dtype=str)
    if len(notes):
        out.append(f"A score could not be computed on {table.loc[notes.index, 'slice_id'].nunique()} "
                   f"{units} (column score_note).")
    return out


def headline(cfg: Mapping, acc: Mapping, table: pd.DataFrame, fid: pd.DataFrame, comps: Mapping[str, Comparison],
             draws: Mapping[str, np.ndarray], domain: Mapping[str, int], unit: str, units: str,
             flips: Mapping[int, tuple[float, float, int]] | None = None) -> list[str]:
    """The report's first screen, as HTML parts."""
    best = best_rows(comps, fid, draws)
    parts = [f"<p class='data'>{html.escape(data_sentence(cfg, acc, table, units), quote=False)}</p>",
             f"<p class='settings'>{html.escape(settings_sentence(cfg['config']), quote=False)}</p>"]
    if len(best):
        parts += ["<h3>Which map kind comes first (absolute maps; ↑ higher is better, ↓ lower)</h3>",
                  "<div class='scroll'>" + best.to_html(index=False, classes="best", escape=True) + "</div>"]
    notes = caveats(cfg, acc, table, comps, domain, unit, units, flips)
    if notes:
        parts += ["<h3>Caveats</h3>",
                  "<ul class='caveats'>" + "".join(f"<li>{html.escape(n, quote=False)}</li>" for n in notes) + "</ul>"]
    return parts
