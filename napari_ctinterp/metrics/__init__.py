"""Scoring attribution maps: localisation against a reference mask, fidelity against the model, and
the scores beyond the paper's (``schema.MORE_SCORES``)."""

from ..io.evidence import evidence_mask, mask_note
from .agreement import rank_correlation
from .baseline import random_map
from .complexity import complexity, sparseness
from .faithfulness import faithfulness_correlation, faithfulness_inputs
from .fidelity import (
    Fidelity,
    balanced_accuracy,
    fidelity,
    fidelity_grid,
    fidelity_inputs,
    fidelity_many,
    pooled_F,
    pooled_F_draws,
)
from .ground_truth import (
    POINTING_TOLERANCE_MM,
    GroundTruthScores,
    MarkerCheck,
    MarkerHit,
    TruthScore,
    ground_truth_scores,
    truth_score,
)
from .localisation import Localisation, MapRanking, exact_auc, localisation, percent_grid, rank_map
from .map_scores import map_scores
from .mask_overlap import auprc, iou_otsu, topk_intersection
from .occlusion_probe import OcclusionProbe, Prober, probe_occlusion
from .robustness import iter_max_sensitivity, max_sensitivity
from .sanity import SanityCurves, cascading_randomisation
from .table import MapScore, MapScorer
from .volume import VolumeLocalisation, localisation_volume

__all__ = ["Fidelity", "Localisation", "MapRanking", "rank_map", "balanced_accuracy", "exact_auc", "fidelity",
           "fidelity_grid", "fidelity_inputs", "fidelity_many", "pooled_F", "pooled_F_draws", "localisation",
           "percent_grid", "SanityCurves",
           "cascading_randomisation", "MapScore", "MapScorer", "rank_correlation",
           "OcclusionProbe", "Prober", "probe_occlusion", "VolumeLocalisation", "localisation_volume",
           "evidence_mask", "mask_note", "random_map", "GroundTruthScores", "TruthScore", "ground_truth_scores",
           "MarkerCheck", "MarkerHit", "POINTING_TOLERANCE_MM",
           "truth_score", "auprc", "iou_otsu", "topk_intersection", "sparseness", "complexity",
           "faithfulness_correlation", "faithfulness_inputs", "max_sensitivity", "iter_max_sensitivity", "map_scores"]
