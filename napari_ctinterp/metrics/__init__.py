"""Scoring attribution maps: localisation against a reference mask, fidelity against the model."""

from .fidelity import Fidelity, balanced_accuracy, fidelity, fidelity_grid, pooled_F
from .localisation import Localisation, exact_auc, localisation, percent_grid
from .sanity import SanityCurves, cascading_randomisation

__all__ = ["Fidelity", "Localisation", "balanced_accuracy", "exact_auc", "fidelity", "fidelity_grid", "pooled_F",
           "localisation", "percent_grid", "SanityCurves", "cascading_randomisation"]
