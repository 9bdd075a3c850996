"""Which method wins, with statistics: a paired comparison of the maps over a study's slices.

``compare_methods(table, score="auc")`` reads a study's ``table.csv`` (a data frame) and compares
every map kind (method · variant, `` · XRAI`` for region maps) on one score, each slice (a 3D
study: each series) a block in which every kind is scored:

- the **Friedman** test over all kinds (``scipy.stats.friedmanchisquare``);
- **Nemenyi**'s all-pairs test after it (``scikit_posthocs.posthoc_nemenyi_friedman``), with the
  mean ranks the critical-difference diagram draws (Demšar, JMLR 2006;
  ``scikit_posthocs.critical_difference_diagram``);
- per pair, the **Wilcoxon** signed-rank test (``scipy.stats.wilcoxon``) with **Holm**'s
  correction over the pairs (``statsmodels.stats.multitest.multipletests``), and the matched-pairs
  rank-biserial correlation as its effect size (Kerby 2014: (W⁺ − W⁻) / (W⁺ + W⁻));
- seeded bootstrap 95 % intervals (slices resampled) of each kind's mean and of each pair's mean
  difference.

Why these: scikit-posthocs and statsmodels are well kept and scikit-posthocs draws the CD diagram;
autorank chooses its tests by normality checks, while the CD diagram and the paper's scores
(bounded, skewed AUCs) want the rank-based path every time. Below ``MIN_BLOCKS`` slices no
p-value is given: the result says the set is too small instead.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..metrics.schema import SCORE_INFO

#: Fewer complete slices than this: no tests (Friedman's χ² approximation and Wilcoxon's need more).
MIN_BLOCKS = 6


@dataclass(frozen=True)
class Comparison:
    """A paired comparison of map kinds on one score (``compare_methods``).

    Attributes
    ----------
    score : str
        The compared column of ``table.csv``.
    higher_is_better : bool
        The score's direction (``metrics.schema.SCORE_INFO``); ranks count 1 = best.
    n : int
        Blocks (slices, series) in which every kind has the score.
    friedman : pandas.DataFrame
        One row: ``statistic``, ``p``, ``n``, ``k`` (NaN p when ``n < MIN_BLOCKS``).
    ranks : pandas.DataFrame
        Per kind, best first: ``kind``, ``mean_rank``, ``mean``, ``ci_low``, ``ci_high``.
    pairwise : pandas.DataFrame
        Per pair ``a``, ``b`` (a ranked above b): ``diff`` (mean of a − b), ``ci_low``,
        ``ci_high``, ``p_wilcoxon``, ``p_holm``, ``p_nemenyi``, ``effect_r`` (NaN, like the p-values,
        below ``MIN_BLOCKS``) and ``significant`` (Holm-corrected Wilcoxon p < alpha).
    alpha : float
        The level the tests are read at.
    note : str
        Why there are no p-values, or "".
    """

    score: str
    higher_is_better: bool
    n: int
    friedman: pd.DataFrame
    ranks: pd.DataFrame
    pairwise: pd.DataFrame
    alpha: float
    note: str = ""
    nemenyi: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)  # p matrix, kinds × kinds


def score_label(score: str) -> str:
    """A compared score's short name in the report (the paper's F pooled over the set is the
    fidelity table's; ``fidelity_continuous`` is F of each slice)."""
    if score == "fidelity_continuous":
        return "F per slice"
    return SCORE_INFO[score].label if score in SCORE_INFO else score


def kind_of(row: pd.Series) -> str:
    """A map kind's label: ``method variant``, `` XRAI`` after a region map's."""
    return f"{row['method']} {row['variant']}" + (" XRAI" if row["map_type"] == "region" else "")


def scores_by_block(table: pd.DataFrame, score: str, *, sign: str = "absolute",
                    map_types: tuple[str, ...] = ("pixel", "region")) -> pd.DataFrame:
    """Slices × kinds: the score of each map kind on each slice (``sign`` maps; the random baseline
    left out); only slices where every kind is scored (complete blocks)."""
    if score not in table:
        raise ValueError(f"the table has no column {score!r}: score one of "
                         f"{', '.join(c for c in table.columns if c in SCORE_INFO)}")
    ok = table[table["error"].isna()] if "error" in table else table
    ok = ok[(ok["sign"] == sign) & ok["map_type"].isin(map_types) & (ok["method"] != "random")]
    block = "series" if "series" in ok and ok["slice_id"].isna().all() else "slice_id"
    frame = ok.assign(kind=ok.apply(kind_of, axis=1), value=pd.to_numeric(ok[score], errors="coerce"))
    wide = frame.pivot_table(index=block, columns="kind", values="value", aggfunc="first")
    return wide.dropna(axis=0, how="any")


def _rank_biserial(d: np.ndarray) -> float:
    """Matched-pairs rank-biserial correlation of the differences ``d`` (zeros left out)."""
    from scipy.stats import rankdata

    d = d[d != 0]
    if len(d) == 0:
        return 0.0
    r = rankdata(np.abs(d))
    plus, minus = r[d > 0].sum(), r[d < 0].sum()
    return float((plus - minus) / (plus + minus))


def compare_methods(table: pd.DataFrame, score: str = "auc", *, sign: str = "absolute",
                    map_types: tuple[str, ...] = ("pixel", "region"), alpha: float = 0.05, n_boot: int = 2000,
                    seed: int = 0) -> Comparison:
    """Compare the map kinds of a study's ``table`` on ``score`` (see the module docstring)."""
    from scipy.stats import friedmanchisquare, wilcoxon

    info = SCORE_INFO.get(score)
    higher = True if info is None else info.higher_is_better
    wide = scores_by_block(table, score, sign=sign, map_types=map_types)
    kinds, n = list(wide.columns), len(wide)
    if len(kinds) < 2:
        raise ValueError(f"{score}: fewer than two map kinds with complete scores to compare")
    values = wide.to_numpy(float)
    ranks = wide.rank(axis=1, ascending=not higher).mean(axis=0)
    rng = np.random.default_rng(seed)
    boot = rng.integers(0, n, size=(n_boot, n)) if n else np.zeros((0, 0), int)
    means = values[boot].mean(axis=1) if n else np.zeros((0, len(kinds)))
    rank_table = pd.DataFrame({"kind": kinds, "mean_rank": ranks.to_numpy(), "mean": values.mean(axis=0),
                               "ci_low": np.percentile(means, 2.5, axis=0) if n else np.nan,
                               "ci_high": np.percentile(means, 97.5, axis=0) if n else np.nan})
    rank_table = rank_table.sort_values("mean_rank", kind="stable").reset_index(drop=True)
    testable = n >= MIN_BLOCKS
    note = "" if testable else (f"too few slices for tests: {n} with every map kind scored (at least {MIN_BLOCKS} "
                                f"needed); means and intervals only")
    stat = p = np.nan
    nemenyi = pd.DataFrame(np.nan, index=kinds, columns=kinds)
    if testable and len(kinds) >= 3:
        stat, p = friedmanchisquare(*values.T)
        import scikit_posthocs as sp

        nemenyi = sp.posthoc_nemenyi_friedman(values)
        nemenyi.index, nemenyi.columns = kinds, kinds
    friedman = pd.DataFrame([{"statistic": float(stat), "p": float(p), "n": n, "k": len(kinds)}])
    order = list(rank_table["kind"])
    rows = []
    for a, b in itertools.combinations(order, 2):
        d = wide[a].to_numpy(float) - wide[b].to_numpy(float)
        boot_d = d[boot].mean(axis=1) if n else np.array([np.nan])
        pw = np.nan
        if testable:
            pw = 1.0 if not np.any(d != 0) else float(wilcoxon(d, zero_method="wilcox").pvalue)
        rows.append({"a": a, "b": b, "diff": float(d.mean()) if n else np.nan,
                     "ci_low": float(np.percentile(boot_d, 2.5)), "ci_high": float(np.percentile(boot_d, 97.5)),
                     "p_wilcoxon": pw, "p_nemenyi": float(nemenyi.loc[a, b]),
                     "effect_r": _rank_biserial(d) if testable else np.nan})  # no effect size from < 6 blocks
    pairwise = pd.DataFrame(rows)
    if testable and len(pairwise):
        from statsmodels.stats.multitest import multipletests

        pairwise["p_holm"] = multipletests(pairwise["p_wilcoxon"].to_numpy(), method="holm")[1]
    else:
        pairwise["p_holm"] = np.nan
    pairwise["significant"] = pairwise["p_holm"] < alpha
    pairwise = pairwise[["a", "b", "diff", "ci_low", "ci_high", "p_wilcoxon", "p_holm", "p_nemenyi", "effect_r",
                         "significant"]]
    return Comparison(score=score, higher_is_better=higher, n=n, friedman=friedman, ranks=rank_table,
                      pairwise=pairwise, alpha=alpha, note=note, nemenyi=nemenyi)


def sentences(c: Comparison) -> list[str]:
    """Sentences of the paper's kind that state only what the tests support."""
    label = score_label(c.score)
    first = c.ranks.iloc[0]
    out = [f"{first['kind']} ranks first on {label} (mean rank {first['mean_rank']:.2f} of {len(c.ranks)}; mean "
           f"{first['mean']:.3f}, 95 % CI [{first['ci_low']:.3f}, {first['ci_high']:.3f}], n = {c.n})."]
    if c.note:
        return out + [c.note[0].upper() + c.note[1:] + "."]
    fr = c.friedman.iloc[0]
    if np.isfinite(fr["p"]):
        verdict = "differ" if fr["p"] < c.alpha else "do not differ significantly"
        out.append(f"The {len(c.ranks)} map kinds {verdict} (Friedman χ² = {fr['statistic']:.1f}, p = {fr['p']:.2g}).")
    if len(c.ranks) > 1:
        second = c.ranks.iloc[1]["kind"]
        pair = c.pairwise[(c.pairwise["a"] == first["kind"]) & (c.pairwise["b"] == second)].iloc[0]
        is_sig = "is significant" if pair["significant"] else "is not significant"
        out.append(f"Its difference from {second} (second) {is_sig} (Wilcoxon–Holm p = {pair['p_holm']:.2g}; "
                   f"mean difference {pair['diff']:+.3f}, 95 % CI [{pair['ci_low']:+.3f}, {pair['ci_high']:+.3f}]; "
                   f"effect r = {pair['effect_r']:+.2f}).")
        beaten = c.pairwise[(c.pairwise["a"] == first["kind"]) & c.pairwise["significant"]]
        out.append(f"It is significantly better than {len(beaten)} of the other {len(c.ranks) - 1} kinds at "
                   f"α = {c.alpha:g} (Holm-corrected).")
    return out


def cd_diagram(c: Comparison, ax) -> None:
    """The critical-difference diagram of ``c`` on ``ax`` (mean ranks; kinds whose Nemenyi p ≥ alpha
    joined by a bar): scikit-posthocs' ``critical_difference_diagram``."""
    import scikit_posthocs as sp

    ranks = pd.Series(c.ranks["mean_rank"].to_numpy(), index=c.ranks["kind"].to_numpy())
    sp.critical_difference_diagram(ranks, c.nemenyi.fillna(1.0), alpha=c.alpha, ax=ax)
    label = score_label(c.score)
    ax.set_title(f"{label}: mean rank over {c.n} slices (1 = best; a bar joins kinds Nemenyi cannot tell apart)",
                 fontsize=9)
