"""The paired comparison of methods: the planted order found and no false one; the same numbers as
the libraries' own (scipy, scikit-posthocs' Wilcoxon–Holm, statsmodels); too few slices said."""

from __future__ import annotations

import numpy as np
import pytest
import scikit_posthocs as sp
from compare_helpers import planted_table as _table
from matplotlib.figure import Figure
from scipy.stats import friedmanchisquare, wilcoxon

from napari_ctinterp.study.compare import MIN_BLOCKS, cd_diagram, compare_methods, scores_by_block, sentences


def test_the_planted_order_is_found_and_an_equal_pair_is_not_told_apart():
    table = _table(40, {"A": 0.10, "B": 0.05, "C": 0.0, "D": 0.0})
    c = compare_methods(table, "auc", seed=1)
    assert c.n == 40 and c.note == "" and list(c.ranks["kind"][:2]) == ["A plain", "B plain"]
    assert set(c.ranks["kind"][2:]) == {"C plain", "D plain"} and "random plain" not in set(c.ranks["kind"])
    assert c.friedman["p"].iloc[0] < 1e-6
    sig = {(r.a, r.b): r.significant for r in c.pairwise.itertuples()}
    assert sig["A plain", "B plain"] and sig["A plain", "C plain"] and sig["B plain", "D plain"]
    pair = c.pairwise[c.pairwise["a"].isin(["C plain", "D plain"]) & c.pairwise["b"].isin(["C plain", "D plain"])]
    assert not pair["significant"].iloc[0]  # C and D are the same method: no false difference at α = 0.05
    a_b = c.pairwise[(c.pairwise["a"] == "A plain") & (c.pairwise["b"] == "B plain")].iloc[0]
    assert a_b["ci_low"] < 0.05 < a_b["ci_high"] and a_b["effect_r"] > 0.8  # the planted difference, in its CI
    text = " ".join(sentences(c))
    assert text.startswith("A plain ranks first on AUC") and "from B plain (second) is significant" in text


def test_under_the_null_no_pair_is_significant_at_the_stated_alpha():
    """Four identical methods, 20 seeds: Holm keeps the family-wise error ≤ α (here: at most one
    seed of 20 with any significant pair)."""
    false = sum(compare_methods(_table(30, dict.fromkeys("ABCD", 0.0), seed=s), "auc", n_boot=50)
                .pairwise["significant"].any() for s in range(20))
    assert false <= 2


def test_the_numbers_are_the_libraries_own():
    table = _table(25, {"A": 0.03, "B": 0.0, "C": -0.02}, seed=3)
    c = compare_methods(table, "auc")
    wide = scores_by_block(table, "auc")
    assert c.friedman["statistic"].iloc[0] == pytest.approx(friedmanchisquare(*wide.to_numpy().T).statistic)
    nem = sp.posthoc_nemenyi_friedman(wide.to_numpy())
    holm = sp.posthoc_wilcoxon(wide.melt(var_name="kind", value_name="auc", ignore_index=False).reset_index(),
                               val_col="auc", group_col="kind", p_adjust="holm", zero_method="wilcox")
    for r in c.pairwise.itertuples():
        i, j = list(wide.columns).index(r.a), list(wide.columns).index(r.b)
        assert r.p_nemenyi == pytest.approx(nem.iloc[i, j])
        assert r.p_wilcoxon == pytest.approx(wilcoxon(wide[r.a] - wide[r.b]).pvalue)
        assert r.p_holm == pytest.approx(holm.loc[r.a, r.b])
        assert r.diff == pytest.approx((wide[r.a] - wide[r.b]).mean())
    fig = Figure(figsize=(6, 2))
    cd_diagram(c, fig.add_subplot())
    assert "mean rank over 25 slices" in fig.axes[0].get_title()


def test_three_slices_say_so_instead_of_a_p_value():
    c = compare_methods(_table(3, {"A": 0.1, "B": 0.0, "C": 0.0}), "auc")
    assert c.n == 3 < MIN_BLOCKS and np.isnan(c.friedman["p"].iloc[0]) and c.pairwise["p_holm"].isna().all()
    assert not c.pairwise["significant"].any() and c.pairwise["effect_r"].isna().all()  # no effect size either
    text = sentences(c)
    assert text[-1].startswith("Too few slices for tests: 3 with every map kind scored")
    with pytest.raises(ValueError, match="no column 'dice'"):
        compare_methods(_table(3, {"A": 0.1, "B": 0.0}), "dice")
