"""Attribution methods (the paper's BP, IGB, IGBW, EG, D; GC, GCPP, GBP, GGC, OCC beyond it × plain /
SG / SG²) and the batched engine.

``explain.explain(clf, hu, options)`` → ``{(method, variant): signed float32 (H, W)}``;
``explain.explain_targets(clf, hu, targets, options)`` → ``{class name: maps}``;
``explain.explain_volume(clf, hu_zyx, options, slices=...)`` → ``{(method, variant): float32 (Z, H, W)}``.
Every setting of a job is one ``ExplainOptions`` (keyword overrides are accepted too).

Names load on first use (scikit-image's lazy-loading pattern), so ``explain.options`` — the
option names the CLI builds its flags from — is importable without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name → the submodule that defines it
_EXPORTS = {
    "AttributionMaps": "api", "explain": "api", "explain_targets": "api", "iter_explain": "api",
    "iter_explain_targets": "api", "iter_explain_inputs": "api", "reference_inputs": "api", "GC_SIGNED": "reduce",
    "UnreachableReLUError": "deconv", "ExplainCancelled": "engine", "job_size": "engine",
    "GradCamLayerError": "gradcam",
    "ALL_METHODS": "options", "EXTRA_METHODS": "options", "GRADCAM_METHODS": "options", "METHOD_COLOURS": "options",
    "METHOD_TITLES": "options", "METHODS": "options",
    "PLAIN_ONLY": "options", "VARIANTS": "options", "ExplainOptions": "options",
    "MAX_VOLUME_REFERENCES": "references", "MIN_VOLUME_REFERENCES": "references",
    "folder_references": "references", "volume_references": "references",
    "VolumeMaps": "volume", "choose_slices": "volume", "explain_volume": "volume", "iter_explain_volume": "volume",
}
__all__ = ["ALL_METHODS", "EXTRA_METHODS", "GRADCAM_METHODS", "MAX_VOLUME_REFERENCES", "METHODS", "METHOD_COLOURS",
           "METHOD_TITLES", "MIN_VOLUME_REFERENCES", "PLAIN_ONLY", "VARIANTS", "AttributionMaps", "ExplainCancelled",
           "ExplainOptions", "GC_SIGNED", "GradCamLayerError", "UnreachableReLUError", "VolumeMaps", "choose_slices",
           "explain",
           "explain_targets", "explain_volume", "folder_references", "iter_explain", "iter_explain_targets",
           "iter_explain_inputs", "iter_explain_volume", "job_size", "reference_inputs", "volume_references"]
assert sorted(__all__) == sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # for type checkers and IDEs
    from .api import (
        AttributionMaps,
        explain,
        explain_targets,
        iter_explain,
        iter_explain_inputs,
        iter_explain_targets,
        reference_inputs,
    )
    from .deconv import UnreachableReLUError
    from .engine import ExplainCancelled, job_size
    from .gradcam import GradCamLayerError
    from .options import (
        ALL_METHODS,
        EXTRA_METHODS,
        GRADCAM_METHODS,
        METHOD_COLOURS,
        METHOD_TITLES,
        METHODS,
        PLAIN_ONLY,
        VARIANTS,
        ExplainOptions,
    )
    from .reduce import GC_SIGNED
    from .references import MAX_VOLUME_REFERENCES, MIN_VOLUME_REFERENCES, folder_references, volume_references
    from .volume import VolumeMaps, choose_slices, explain_volume, iter_explain_volume
