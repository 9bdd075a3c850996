"""The report's statistics: per score, which map kind wins and what the paired tests support.

For each compared score (``STAT_SCORES`` and the scores beyond the paper's the study computed):
the generated sentences (``compare.sentences``), the critical-difference diagram and the table of
significant pairwise differences; with too few slices, the sentence that says so instead.
"""

from __future__ import annotations

import html

import matplotlib.pyplot as plt
import pandas as pd

from ..metrics.schema import MORE_SCORES, SCORE_INFO
from .compare import Comparison, cd_diagram, compare_methods, score_label, sentences

#: The paper's scores compared in every report (F per slice: its continuous form).
STAT_SCORES = ("auc", "max_dice", "fidelity_continuous")


def comparisons(table: pd.DataFrame, seed: int = 0) -> dict[str, Comparison]:
    """The paired comparison of every score the table has (those with at least two map kinds)."""
    out = {}
    for score in (*STAT_SCORES, *MORE_SCORES):
        if score not in table or pd.to_numeric(table[score], errors="coerce").notna().sum() == 0:
            continue
        try:
            out[score] = compare_methods(table, score, seed=seed)
        except ValueError:  # fewer than two kinds with complete scores: nothing to compare
            continue
    return out


def statistics_section(comps: dict[str, Comparison]) -> tuple[list[str], list[tuple[str, plt.Figure]]]:
    """HTML parts (one subsection per compared score, ``comparisons``) and the CD diagrams to
    embed (name, figure)."""
    parts = ["<h2>Which method wins (paired tests over the slices)</h2>",
             "<p>Friedman over all map kinds, Nemenyi after it (the critical-difference diagram), Wilcoxon "
             "signed-rank per pair with Holm's correction; 95 % bootstrap intervals (slices resampled, seeded). "
             "Absolute maps, the random baseline left out.</p>"]
    figures = []
    for score, c in comps.items():
        arrow = "↑" if c.higher_is_better else "↓"
        parts.append(f"<h3 id='stats-{html.escape(score)}'>{html.escape(score_label(score))} {arrow}</h3>")
        if score in SCORE_INFO:
            info = SCORE_INFO[score]
            parts.append(f"<p class='def'>{html.escape(info.definition[0].upper() + info.definition[1:])} "
                         f"({html.escape(info.source)}).</p>")
        parts.append("<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in sentences(c)) + "</ul>")
        if not c.note and len(c.ranks) >= 3:
            fig = plt.figure(figsize=(11, 0.9 + 0.22 * len(c.ranks)))
            cd_diagram(c, fig.add_subplot())
            fig.subplots_adjust(left=0.19, right=0.81)  # the kinds' names sit outside the axis: keep them on the page
            figures.append((f"cd_{score}", fig))
            parts.append(f"<!--figure:cd_{score}-->")
        sig = c.pairwise[c.pairwise["significant"]]
        if len(sig):
            parts.append(f"<details><summary>{len(sig)} of {len(c.pairwise)} pairs differ significantly</summary>"
                         f"<div class='scroll'>{sig.round(4).to_html(index=False)}</div></details>")
    return parts, figures
