"""The one score schema: the column names of a scored map, wherever scores are tabled.

The Metrics panel (its rows and its CSV export, ``metrics.MapScore``) and a study's tables
(``table.csv``, ``summary.csv``, ``fidelity.csv``) name the same quantity the same way:

=======================  ===================================================================
column                   meaning
=======================  ===================================================================
``method``               attribution method (``BP``, ``IGB``, …; ``random`` for the baseline)
``variant``              ``plain``, ``SG`` or ``SG2``
``map_type``             ``pixel`` (the map itself) or ``region`` (its XRAI region map)
``sign``                 ``absolute`` (what is scored by default) or ``signed``
``auc``                  exact ROC AUC of the map against the reference mask
``auc_grid``             ROC AUC on the paper's k-grid
``max_dice``             largest Dice over the k-grid
``k_star``               the k (% of pixels kept) of the largest Dice
``relevance_mass``       share of the map's mass inside the mask
``fidelity_continuous``  F from the probability of the explained class (LiF − MiF area, one slice)
=======================  ===================================================================

Against a known shortcut (a planted marker, ``metrics.ground_truth``), a study's table adds
``gt_relevance_mass``, ``gt_relevance_rank``, ``gt_marker_auc``, ``gt_pointing_hit`` and
``gt_pointing_distance_mm``; the panel, with a known shortcut chosen, fills the two of
``MARKER_SCORES`` (the share of |map| on the marker, and whether the map's top points at it).

A study adds the slice's columns in front (``slice_id``, ``label``, …); the panel adds ``scope``
(``slice`` or ``volume``). ``LABELS`` are the short headers a person reads in the panel's table.
"""

from __future__ import annotations

#: What identifies a scored map (the study's group key).
KEY: tuple[str, ...] = ("method", "variant", "map_type", "sign")

#: The scores of one map, in table order.
SCORES: tuple[str, ...] = ("auc", "auc_grid", "max_dice", "k_star", "relevance_mass", "fidelity_continuous")

#: The scores a study summarises per group (mean, SD, n, 95 % CI).
SUMMARY_SCORES: tuple[str, ...] = ("auc", "auc_grid", "max_dice", "fidelity_continuous")

#: One scored map's row: ``KEY`` then ``SCORES``.
ROW: tuple[str, ...] = (*KEY, *SCORES)

#: The ground-truth columns the Metrics panel fills when a known shortcut is chosen (the study's names).
MARKER_SCORES: tuple[str, ...] = ("gt_relevance_mass", "gt_pointing_hit")

#: Map types (values of ``map_type``).
PIXEL, REGION = "pixel", "region"

#: Readable column headers (the Metrics panel's table).
LABELS: dict[str, str] = {
    "method": "method",
    "variant": "variant",
    "map_type": "map",
    "sign": "sign",
    "auc": "AUC",
    "auc_grid": "grid AUC",
    "max_dice": "max Dice",
    "k_star": "k*",
    "relevance_mass": "mass in mask",
    "fidelity_continuous": "F",
    "scope": "on",
    "gt_relevance_mass": "on marker",
    "gt_pointing_hit": "top on marker",
}
