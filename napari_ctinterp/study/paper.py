"""The reference study's published numbers beside a study's own (../shared/REFERENCE.md).

Brocki et al. (EXTRAAMAS 2022) report the fidelity F × 10 of seven estimators, signed and
absolute, and the poster draws three conclusions. ``fidelity_vs_paper`` puts a study's F (with
its bootstrap interval) beside the paper's; ``paper_rank_agreement`` is the Spearman correlation of
the two orderings, with an interval from the same bootstrap draws; ``poster_checks`` tests each
of the poster's conclusions on the study with the report's paired tests and intervals, and says
whether it holds here. The report shows them when the study has the paper's estimators.

Our reading of the paper's names: SG and SG² are SmoothGrad and SmoothGrad² of the plain
gradient (BP); the others are the plain methods; all are pixel maps.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .compare import MIN_BLOCKS, Comparison
from .pooled_fidelity import map_key

#: The paper's F × 10 (signed, absolute) per estimator (REFERENCE.md, "Fidelity in the paper").
PAPER_F10: dict[str, tuple[float, float]] = {"SG²": (6.2, 6.2), "SG": (3.4, 6.1), "IGBW": (0.0, 5.7),
                                             "EG": (3.6, 5.6), "BP": (0.1, 4.9), "D": (2.6, 4.4),
                                             "IGB": (0.0, 4.2), "random": (0.0, 0.0)}

#: The paper's estimators as this tool's map kinds (method, variant); pixel maps.
ESTIMATORS: dict[str, tuple[str, str]] = {"SG²": ("BP", "SG2"), "SG": ("BP", "SG"), "IGBW": ("IGBW", "plain"),
                                          "EG": ("EG", "plain"), "BP": ("BP", "plain"), "D": ("D", "plain"),
                                          "IGB": ("IGB", "plain"), "random": ("random", "plain")}

#: The poster's conclusions, in its words (REFERENCE.md).
CONCLUSIONS = ("SG² gives the best map quality (ROC AUC, max Dice), especially on XRAI region maps.",
               "For fidelity, absolute pixel maps are best.",
               "For fidelity, most methods do well except D and IGB.")


def has_paper_estimators(fid: pd.DataFrame) -> bool:
    """Whether ``fid`` (fidelity.csv) has every estimator of the paper's table, both signs."""
    if fid is None or not len(fid):
        return False
    have = {map_key(*r) for r in fid[["method", "variant", "map_type", "sign"]].itertuples(index=False)}
    return all(map_key(m, v, "pixel", s) in have for m, v in ESTIMATORS.values() for s in ("absolute", "signed")
               if m != "random" or s == "absolute")  # the random map has no sign


def _ci(draws: np.ndarray) -> tuple[float, float]:
    low, high = np.nanpercentile(draws, [2.5, 97.5])
    return float(low), float(high)


def fidelity_vs_paper(fid: pd.DataFrame, draws: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Per paper estimator: the paper's F × 10 and ours (with its bootstrap 95 % interval), signed
    and absolute."""
    rows = []
    for name, (method, variant) in ESTIMATORS.items():
        row = {"estimator": name, "ours": f"{method} {variant} pixel"}
        for j, sign in enumerate(("signed", "absolute")):
            sel = fid[(fid["method"] == method) & (fid["variant"] == variant) & (fid["map_type"] == "pixel")
                      & (fid["sign"] == sign)]
            f = float(sel["F"].iloc[0]) if len(sel) else np.nan
            key = map_key(method, variant, "pixel", sign)
            low, high = _ci(draws[key] * 10) if len(sel) and key in draws else (np.nan, np.nan)
            row.update({f"paper F×10 {sign}": PAPER_F10[name][j], f"ours F×10 {sign}": round(10 * f, 2),
                        f"ours 95 % CI {sign}": "—" if not np.isfinite(low) else f"[{low:.2f}, {high:.2f}]"})
        rows.append(row)
    return pd.DataFrame(rows)


def paper_rank_agreement(fid: pd.DataFrame, draws: Mapping[str, np.ndarray], sign: str = "absolute"
                         ) -> dict[str, float]:
    """Spearman ρ between the paper's and this study's F of the seven estimators (random left out:
    it is 0 in both), its p-value (scipy's t approximation), and a 95 % interval of ρ over the
    bootstrap draws (``draws`` of ``of_draws`` used: a draw whose F are all equal has no ordering).
    ρ is NaN when this study's seven F are all equal."""
    from scipy.stats import spearmanr

    names = [n for n in ESTIMATORS if n != "random"]
    j = 0 if sign == "signed" else 1
    paper = np.array([PAPER_F10[n][j] for n in names])
    ours = np.array([_f(fid, *ESTIMATORS[n], sign) for n in names])  # unrounded, as the draws
    rho, p = spearmanr(paper, ours) if np.ptp(ours) > 0 else (np.nan, np.nan)
    boot = np.stack([draws[map_key(*ESTIMATORS[n], "pixel", sign)] for n in names], axis=1)  # (B, 7)
    varied = boot[np.ptp(boot, axis=1) > 0]  # a draw with every F equal has no ordering
    rhos = np.array([spearmanr(paper, b)[0] for b in varied])
    low, high = _ci(rhos) if len(rhos) else (np.nan, np.nan)
    return {"rho": float(rho), "p": float(p), "ci_low": low, "ci_high": high, "n": len(names),
            "draws": len(rhos), "of_draws": len(boot)}


def _f(fid: pd.DataFrame, method: str, variant: str, sign: str) -> float:
    sel = fid[(fid["method"] == method) & (fid["variant"] == variant) & (fid["map_type"] == "pixel")
              & (fid["sign"] == sign)]
    return float(sel["F"].iloc[0]) if len(sel) else np.nan


def _pair(c: Comparison, a: str, b: str) -> dict | None:
    """The pair a − b of ``c.pairwise`` (either order), as a's advantage."""
    pw = c.pairwise
    hit = pw[(pw["a"] == a) & (pw["b"] == b)]
    if len(hit):
        r = hit.iloc[0]
        return {"diff": r["diff"], "ci_low": r["ci_low"], "ci_high": r["ci_high"], "p": r["p_holm"],
                "r": r["effect_r"]}
    hit = pw[(pw["a"] == b) & (pw["b"] == a)]
    if len(hit):
        r = hit.iloc[0]
        return {"diff": -r["diff"], "ci_low": -r["ci_high"], "ci_high": -r["ci_low"], "p": r["p_holm"],
                "r": -r["effect_r"]}
    return None


def _wins(pairs: list[dict | None], alpha: float) -> tuple[int, int, int]:
    """Of the pairs: significantly above, significantly below, and all (the direction: the rank-biserial
    effect's sign, as the Wilcoxon test that makes it significant ranks the differences)."""
    ok = [p for p in pairs if p is not None]
    return (sum(p["p"] < alpha and p["r"] > 0 for p in ok), sum(p["p"] < alpha and p["r"] < 0 for p in ok),
            len(ok))


def poster_checks(comps: Mapping[str, Comparison], fid: pd.DataFrame, draws: Mapping[str, np.ndarray],
                  methods: tuple[str, ...] = ("BP", "IGB", "IGBW", "EG", "D")) -> pd.DataFrame:
    """Each poster conclusion tested on the study: the evidence (paired Wilcoxon–Holm tests over
    the slices from the report's comparisons; bootstrap intervals of F differences) and a verdict."""
    rows = []
    n_f = int(fid["n"].max()) if len(fid) else 0
    if n_f < MIN_BLOCKS:
        return pd.DataFrame([{"conclusion": c, "here": f"not tested: {n_f} slices (at least {MIN_BLOCKS})",
                              "holds here": "not tested"} for c in CONCLUSIONS])
    # 1. SG² best on quality, especially on region maps
    evidence, holds, especially = [], [], []
    for score in ("auc", "max_dice"):
        c = comps.get(score)
        if c is None or c.note:
            evidence.append(f"{score}: no test ({c.note if c else 'not computed'})")
            holds.append(None)
            continue
        alpha = c.alpha
        up, down, n = _wins([_pair(c, f"{m} SG2{x}", f"{m} {v}{x}") for m in methods for v in ("plain", "SG")
                             for x in ("", " XRAI")], alpha)
        first = c.ranks.iloc[0]["kind"]
        region_up, region_down, rn = _wins([_pair(c, f"{m} SG2 XRAI", f"{m} SG2") for m in methods], alpha)
        region = (f"SG² region above SG² pixel in {region_up} of {rn} methods, below in {region_down}" if rn
                  else "no region maps: 'especially on region maps' not tested")
        evidence.append(f"{c.score}: first {first}; SG² significantly above plain / SG in {up} of {n} "
                        f"method × map pairs, below in {down}; {region} (Wilcoxon–Holm, α = {alpha:g}, n = {c.n})")
        best_quality = "SG2" in first and up > n / 2 and down == 0
        holds.append(best_quality)
        especially.append(bool(rn) and region_up > rn / 2 and region_down == 0)
    if None in holds:
        verdict = "not tested"
    elif all(holds):  # "especially on region maps" read as: SG² region maps above SG² pixel maps
        verdict = "yes" if all(especially) else "partly"
    else:
        verdict = "partly" if any(holds) else "no"
    rows.append({"conclusion": CONCLUSIONS[0], "here": " · ".join(evidence), "holds here": verdict})
    # 2. absolute pixel maps best for fidelity
    pixel_kinds = [(m, v) for m in methods for v in ("plain", "SG", "SG2")]
    abs_vs_signed, pix_vs_region = [], []
    for m, v in pixel_kinds:
        a = draws.get(map_key(m, v, "pixel", "absolute"))
        s = draws.get(map_key(m, v, "pixel", "signed"))
        r = draws.get(map_key(m, v, "region", "absolute"))
        if a is not None and s is not None:
            abs_vs_signed.append(_ci(a - s))
        if a is not None and r is not None:
            pix_vs_region.append(_ci(a - r))
    above = sum(lo > 0 for lo, _ in abs_vs_signed)
    below = sum(hi < 0 for _, hi in abs_vs_signed)
    p_above = sum(lo > 0 for lo, _ in pix_vs_region)
    p_below = sum(hi < 0 for _, hi in pix_vs_region)
    best = fid[(fid["method"] != "random")].sort_values("F", ascending=False).iloc[0] if len(fid) else None
    best_text = "" if best is None else (f"highest F: {best['method']} {best['variant']} {best['map_type']} "
                                         f"{best['sign']} ({best['F']:.3f}); ")
    signs_hold = above > len(abs_vs_signed) / 2 and below == 0
    pixel_holds = (p_above > p_below) if pix_vs_region else None  # None: no region maps, not tested
    region_text = (f"absolute pixel above absolute region for {p_above} of {len(pix_vs_region)}, below for {p_below}"
                   if pix_vs_region else "no region maps: pixel vs region not tested")
    best_ok = best is not None and best["sign"] == "absolute" and (best["map_type"] == "pixel" or not pix_vs_region)
    if signs_hold and pixel_holds is not False and best_ok:
        verdict = "yes"
    else:
        verdict = "partly" if above > below or pixel_holds else "no"
    rows.append({"conclusion": CONCLUSIONS[1],
                 "here": f"{best_text}absolute above signed (95 % CI of the F difference above 0) for {above} of "
                         f"{len(abs_vs_signed)} pixel kinds, below for {below}; {region_text}",
                 "holds here": verdict})
    # 3. most do well except D and IGB (absolute pixel maps of the plain methods)
    plain = {m: draws.get(map_key(m, "plain", "pixel", "absolute")) for m in methods}
    plain = {m: d for m, d in plain.items() if d is not None}
    f_of = {m: float(fid[(fid["method"] == m) & (fid["variant"] == "plain") & (fid["map_type"] == "pixel")
                         & (fid["sign"] == "absolute")]["F"].iloc[0]) for m in plain}
    order = sorted(f_of, key=f_of.get)
    others = [m for m in plain if m not in ("D", "IGB")]
    worst_other = min(others, key=f_of.get) if others else None
    gaps = {m: _ci(plain[worst_other] - plain[m]) for m in ("D", "IGB") if m in plain and worst_other}
    bottom_two = set(order[:2]) == {"D", "IGB"}
    sig = [m for m, (lo, _) in gaps.items() if lo > 0]
    rnd = draws.get(map_key("random", "plain", "pixel", "absolute"))
    do_well = [m for m in others if rnd is not None and _ci(plain[m] - rnd)[0] > 0]  # "do well": above random
    well_text = (f"; above the random map (95 % CI of the difference above 0): {len(do_well)} of {len(others)}"
                 f"{' (' + ', '.join(do_well) + ')' if do_well else ''}" if rnd is not None
                 else "; no random map to compare with")
    rows.append({"conclusion": CONCLUSIONS[2],
                 "here": "F of the plain absolute pixel maps, lowest first: "
                         + ", ".join(f"{m} {f_of[m]:.3f}" for m in order)
                         + "; " + "; ".join(f"{worst_other} − {m}: 95 % CI [{lo:+.3f}, {hi:+.3f}]"
                                            for m, (lo, hi) in gaps.items()) + well_text,
                 "holds here": "yes" if bottom_two and len(sig) == 2 and len(do_well) == len(others)
                 else ("partly" if sig or bottom_two else "no")})
    return pd.DataFrame(rows)
