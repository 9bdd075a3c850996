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

Beyond the paper's scores, ``MORE_SCORES`` (``SCORE_INFO`` says what each is, its direction and its
source): ``auprc``, ``iou_otsu``, ``topk_intersection`` (against the mask), ``sparseness``,
``complexity`` (the map alone), ``faithfulness_correlation`` (the model) and ``max_sensitivity``
(the explanation re-run on noisy inputs). A study computes ``STUDY_METRICS`` unless told otherwise
(``--metrics``); the Metrics panel shows the ones chosen in it and exports them all.

A study adds the slice's columns in front (``slice_id``, ``label``, …); the panel adds ``scope``
(``slice`` or ``volume``). ``LABELS`` are the short headers a person reads in the panel's table.
"""

from __future__ import annotations

from dataclasses import dataclass

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

#: Scores beyond the paper's (``metrics.mask_overlap``, ``complexity``, ``faithfulness``, ``robustness``).
MORE_SCORES: tuple[str, ...] = ("auprc", "iou_otsu", "topk_intersection", "sparseness", "complexity",
                                "faithfulness_correlation", "max_sensitivity")

#: What a study computes of ``MORE_SCORES`` by default: all but top-k (its k is a choice of pixels
#: that suits some mask sizes only) and max-sensitivity (it explains every slice n more times).
STUDY_METRICS: tuple[str, ...] = ("auprc", "iou_otsu", "sparseness", "complexity", "faithfulness_correlation")

#: What the Metrics panel shows of ``MORE_SCORES`` at first (the panel's "more scores" list).
PANEL_METRICS: tuple[str, ...] = ("auprc", "iou_otsu")

#: ``MORE_SCORES`` that need the model (forward passes) or new explanations.
MODEL_SCORES: tuple[str, ...] = ("faithfulness_correlation", "max_sensitivity")


@dataclass(frozen=True)
class ScoreInfo:
    """What a score column is: its header, which way is better, what it needs, one line of
    definition and its source."""

    label: str
    higher_is_better: bool
    needs: str  # "mask", "map", "model" or "explanations"
    definition: str
    source: str

    @property
    def arrow(self) -> str:
        """``↑`` when higher is better, ``↓`` when lower is."""
        return "↑" if self.higher_is_better else "↓"

    def text(self) -> str:
        """``AUPRC ↑ — definition (source)``: one line for a legend or a tooltip."""
        return f"{self.label} {self.arrow} — {self.definition} ({self.source})"


#: Every score column: what it is (the panel's definitions and header tooltips, the report's legend).
SCORE_INFO: dict[str, ScoreInfo] = {
    "auc": ScoreInfo("AUC", True, "mask", "ROC AUC of |map| against the mask, every pixel a threshold",
                     "the paper; scikit-learn's roc_auc_score"),
    "auc_grid": ScoreInfo("grid AUC", True, "mask", "ROC AUC on the paper's k-grid of kept pixels", "the paper"),
    "max_dice": ScoreInfo("max Dice", True, "mask", "largest Dice of the top-k % of |map| with the mask over the "
                          "k-grid", "the paper"),
    "k_star": ScoreInfo("k*", True, "mask", "the k (% of pixels kept) of the largest Dice", "the paper"),
    "relevance_mass": ScoreInfo("mass in mask", True, "mask", "share of Σ|map| inside the mask",
                                "Arras et al. 2022"),
    "fidelity_continuous": ScoreInfo("F", True, "model", "area between the least- and most-important-first "
                                     "removal curves of the explained class's probability", "the paper"),
    "auprc": ScoreInfo("AUPRC", True, "mask", "area under the precision–recall curve of |map| against the mask "
                       "(average precision; a random map scores the mask's area fraction)",
                       "Arun et al., Radiology: AI 2021; scikit-learn's average_precision_score"),
    "iou_otsu": ScoreInfo("IoU", True, "mask", "IoU of the mask with |map| above Otsu's threshold",
                          "M3d-CAM; Saporta et al., Nature MI 2022"),
    "topk_intersection": ScoreInfo("top-k", True, "mask", "share of the 1000 highest |map| pixels inside the mask",
                                   "Theiner et al. 2021; Quantus TopKIntersection"),
    "sparseness": ScoreInfo("sparse", True, "map", "Gini index of |map|: 0 uniform, → 1 one pixel",
                            "Chalasani et al., ICML 2020; Quantus Sparseness"),
    "complexity": ScoreInfo("entropy", False, "map", "entropy (nats) of |map| / Σ|map|: low = concentrated",
                            "Bhatt et al., IJCAI 2020; Quantus Complexity"),
    "faithfulness_correlation": ScoreInfo(
        "faith. r", True, "model", "Pearson r, over 100 random 224-pixel subsets set to black (a 3D model: voxels "
        "of the CT; 2.5D: of the slice itself), between the map's sum on the subset and the drop of the explained "
        "score", "Bhatt et al., IJCAI 2020; Quantus FaithfulnessCorrelation"),
    "max_sensitivity": ScoreInfo(
        "max sens.", False, "explanations", "largest relative change ‖a(x+u) − a(x)‖ / ‖a(x)‖ of the map over 10 "
        "inputs with uniform noise of ±5 % of the input's range (gradient methods' pixel maps)",
        "Yeh et al., NeurIPS 2019; Quantus MaxSensitivity"),
}

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
    **{k: SCORE_INFO[k].label for k in MORE_SCORES},
}
