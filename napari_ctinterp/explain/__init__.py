"""Attribution methods (the paper's BP, IGB, IGBW, EG, D; GC, GBP, GGC, OCC beyond it × plain /
SG / SG²) and the batched engine.

``explain.explain(clf, hu, ...)`` → ``{(method, variant): signed float32 (H, W)}``;
``explain.explain_volume(clf, hu_zyx, slices=...)`` → ``{(method, variant): float32 (Z, H, W)}``.
"""

from .api import AttributionMaps, demo_references, explain, iter_explain, predicted_class, random_map
from .deconv import UnreachableReLUError
from .engine import ExplainCancelled
from .gradcam import GradCamLayerError
from .plan import ALL_METHODS, EXTRA_METHODS, METHODS, PLAIN_ONLY, VARIANTS, ExplainOptions, ig_quadrature
from .references import MAX_VOLUME_REFERENCES, MIN_VOLUME_REFERENCES, folder_references, volume_references
from .volume import VolumeMaps, choose_slices, explain_volume, iter_explain_volume, parse_slices

__all__ = ["ALL_METHODS", "EXTRA_METHODS", "GradCamLayerError", "PLAIN_ONLY", "MAX_VOLUME_REFERENCES",
           "METHODS", "MIN_VOLUME_REFERENCES", "VARIANTS", "AttributionMaps",
           "ExplainCancelled", "ExplainOptions", "UnreachableReLUError", "demo_references", "explain",
           "folder_references", "ig_quadrature", "iter_explain", "predicted_class", "random_map",
           "volume_references", "VolumeMaps", "choose_slices", "explain_volume", "iter_explain_volume",
           "parse_slices"]
