"""The report's headline: the first map kind per score with its interval and the test against the
runner-up, the paper's F with its bootstrap interval, and the caveats that follow from the set."""

from __future__ import annotations

import numpy as np
import pandas as pd
from compare_helpers import planted_table

from napari_ctinterp.study.compare import compare_methods
from napari_ctinterp.study.report_headline import best_rows, caveats, data_sentence, f_resolution

CFG = {"card": {"name": "demo resnet18 (phantom)", "architecture": "resnet18", "input_size": [256, 256],
                "class_names": ["no contrast", "contrast"]},
       "config": {"data": "demo", "seed": 3, "steps": 10, "sg_samples": 15, "fidelity_step": 10.0, "xrai": "full"}}


def _fid(values: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame([{"method": m, "variant": "plain", "map_type": "pixel", "sign": "absolute", "F": f,
                          "F_ci_low": f - 0.1, "F_ci_high": f + 0.1, "n": 40} for m, f in values.items()])


def test_best_rows_name_the_planted_winner_its_runner_up_and_the_tests():
    table = planted_table(40, {"A": 0.10, "B": 0.05, "C": 0.0})
    comps = {"auc": compare_methods(table, "auc", seed=1)}
    rng = np.random.default_rng(0)
    draws = {"A|plain|pixel|absolute": 0.30 + rng.normal(0, 0.01, 500),
             "B|plain|pixel|absolute": 0.20 + rng.normal(0, 0.01, 500),
             "random|plain|pixel|absolute": rng.normal(0, 0.01, 500)}
    best = best_rows(comps, _fid({"A": 0.30, "B": 0.20, "random": 0.5}), draws)  # random never "first"
    auc, f = best.iloc[0], best.iloc[1]
    assert auc["first"] == "A plain" and auc["runner-up"] == "B plain" and auc["n"] == 40
    p = comps["auc"].pairwise.iloc[0]["p_holm"]
    assert auc["p (Wilcoxon–Holm)"] == f"{p:.2g}" and float(auc["p (Wilcoxon–Holm)"]) < 0.05
    low, high = (float(x) for x in auc["mean [95 % CI]"].split("[")[1].rstrip("]").split(","))
    assert low < comps["auc"].ranks.iloc[0]["mean"] < high
    assert f["score"].startswith("F (paper") and f["first"] == "A plain" and f["runner-up"] == "B plain"
    d_low, d_high = (float(x) for x in f["difference [95 % CI]"].split("[")[1].rstrip("]").split(","))
    assert 0.05 < d_low < 0.1 < d_high < 0.15  # A − B = 0.1, bounded by the paired draws
    few = best_rows({"auc": compare_methods(planted_table(3, {"A": 0.1, "B": 0.0}), "auc")}, _fid({}), {})
    assert few.iloc[0]["p (Wilcoxon–Holm)"] == "no test: too few" and len(few) == 1


def test_caveats_follow_from_the_set_and_the_settings():
    labels = {"s0": 0, "s1": 0, "s2": 1}
    table = planted_table(3, {"A": 0.1, "B": 0.0}).assign(label=lambda d: d["slice_id"].map(labels), score_note=None)
    comps = {"auc": compare_methods(table, "auc")}
    acc = {"n": 3, "n_failed": 1, "accuracy": 2 / 3}
    notes = caveats(CFG, acc, table, comps, {"in": 1, "out": 2, "unknown": 0}, "slice", "slices")
    text = " ".join(notes)
    assert "Too few slices for tests: 3 with every map kind scored (at least 6)" in text
    assert f_resolution(10.0, pd.Series([0, 0, 1])) == 0.05  # one slice of the smallest class, k = 2, 10 % steps
    assert ("One slice of the smallest class changing its answer at one level of the fidelity curve moves the "
            "paper's F by 0.05 on this set (3 slices, fidelity step 10.0 %)") in text
    assert "IG path points 10 (paper 25)" in text and "fidelity step 10.0 % (paper 2.5)" in text
    assert "SmoothGrad" not in text  # 15 copies: the paper's
    assert "1 slice failed" in text and "right on only 66.7 %" not in text and "right on only 66.7%" in text
    assert "2 slices out of the model's domain" in text
    big = planted_table(40, {"A": 0.1, "B": 0.0}).assign(label=lambda d: d["slice_id"].str[1:].astype(int) % 2,
                                                        score_note=None)
    calm = caveats({**CFG, "config": {**CFG["config"], "steps": 25, "fidelity_step": 2.5}},
                   {"n": 40, "n_failed": 0, "accuracy": 1.0}, big, {"auc": compare_methods(big, "auc")},
                   {"in": 40, "out": 0, "unknown": 0}, "slice", "slices")
    assert len(calm) == 1 and "F by 0.000625" in calm[0]  # only the resolution


def test_the_data_sentence_names_model_data_classes_and_accuracy():
    table = pd.DataFrame({"slice_id": ["a", "a", "b", "c"], "label": [0, 0, 1, 1]})
    text = data_sentence(CFG, {"n": 3, "n_failed": 0, "accuracy": 1.0}, table, "slices")
    assert text.startswith("Model: demo resnet18 (phantom) — resnet18, input 256×256, classes no contrast, contrast.")
    assert "synthetic phantom slices (seed 3; not patient CT); 3 slices scored (1 no contrast, 2 contrast)" in text
    assert text.endswith("accuracy on them 100.0%.")


def test_a_fill_that_flips_a_class_on_random_pixels_is_a_caveat():
    """The random map's first fidelity step flips every class-0 slice and no class-1 slice: the fill
    is a signal on class 0 (the demo's case: white on a no-contrast slice), and the headline says so."""
    from napari_ctinterp.study.pooled_fidelity import fill_flips

    key = "random|plain|pixel|absolute"
    results = [{"error": None, "label": c, "fidelity": {key: {"pred_lif": [c, 1, 1], "pred_mif": [c, 1, 1]}}}
               for c in (0, 1) * 5] + [{"error": "unreadable", "label": 0}]
    flips = fill_flips(results)
    assert flips == {0: (1.0, 0.0, 5), 1: (1.0, 1.0, 5)}
    assert fill_flips([{**r, "fidelity": {}} for r in results[:2]]) == {}  # no random map: nothing to say
    table = planted_table(6, {"A": 0.1, "B": 0.0}).assign(label=0, score_note=None)
    comps = {"auc": compare_methods(table, "auc")}
    acc = {"n": 10, "n_failed": 0, "accuracy": 1.0}
    text = " ".join(caveats(CFG, acc, table, comps, {"out": 0}, "slice", "slices", flips))
    assert ("The fill alone changes the answer: with 10.0 % of random pixels filled (the random map's first "
            "fidelity step) the model is right on 0% of the 5 no contrast slices, 100% before.") in text
    assert "of the 5 contrast slices" not in text
