"""One score schema: the panel's rows and export and the study's table name the same columns alike;
rank_correlation as the panel and the report use it."""

from __future__ import annotations

import csv
import math

import numpy as np
from scipy.stats import spearmanr

from napari_ctinterp.metrics import MapScorer, rank_correlation, schema
from napari_ctinterp.metrics.table import EXPORT_COLUMNS, write_scores_csv
from napari_ctinterp.study.results import COLUMNS, GROUP, SCORES


def test_panel_rows_export_and_study_table_share_the_schema(tmp_path):
    rng = np.random.default_rng(0)
    mask = np.zeros((32, 32), bool)
    mask[8:20, 8:20] = True
    s = MapScorer().score(("BP", "plain", "pixel", rng.standard_normal((32, 32)), None), mask)
    row = s.row()
    assert list(row) == [*schema.ROW, "scope"] and row["map_type"] == "pixel" and row["sign"] == "absolute"
    assert math.isnan(row["fidelity_continuous"]) and s.fidelity is s.fidelity_continuous
    assert set(schema.ROW) <= set(COLUMNS) and GROUP == list(schema.KEY) and SCORES == list(schema.SUMMARY_SCORES)
    path = write_scores_csv([s], tmp_path / "scores.csv")
    with open(path, newline="") as f:
        (got,) = list(csv.DictReader(f))
    assert list(got) == list(EXPORT_COLUMNS) and got["kind"] == got["map_type"] == "pixel"


def test_rank_correlation_leaves_out_undefined_pairs():
    auc, f = [0.9, 0.7, 0.8, np.nan, 0.6], [0.1, 0.3, 0.2, 0.5, np.inf]
    rho, n = rank_correlation(auc, f)
    assert n == 3 and rho == spearmanr([0.9, 0.7, 0.8], [0.1, 0.3, 0.2]).statistic
    assert math.isnan(rank_correlation([0.5, 0.5, 0.5], [1, 2, 3])[0])  # a constant score: undefined
    rho, n = rank_correlation([0.1, 0.2], [1, 2])  # fewer than 3 maps: undefined
    assert math.isnan(rho) and n == 2
