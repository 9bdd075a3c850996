"""A study's scores beyond the paper's, added to a slice's (a series') rows: ``StudyConfig.metrics``.

The map's own scores (AUPRC, IoU at Otsu's level, top-k, sparseness, complexity) per row; the
faithfulness correlation of every row's map from one set of forward passes per slice (shared by
all maps, ``metrics.faithfulness``); max-sensitivity of every pixel map from one gradient plan per
slice (``metrics.robustness``). Rows that a score does not apply to hold None: the region maps and
the random map for max-sensitivity, Occlusion too (it is forward-only).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch

from ..metrics.map_scores import MAP_SCORES, map_scores


def _none(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def add_map_scores(row: dict, values: np.ndarray, mask: np.ndarray | None, metrics: tuple[str, ...]) -> None:
    """The map's own scores of ``metrics`` into ``row`` (None where undefined, as the study's other scores)."""
    row.update({k: _none(v) for k, v in map_scores(values, mask, [m for m in metrics if m in MAP_SCORES]).items()})


def add_model_scores(rows: list[dict], metrics: tuple[str, ...], *, faithfulness: Callable[[], Mapping] | None,
                     sensitivity: Callable[[], Mapping] | None, phase: Callable[[str], object]) -> str:
    """The model's scores of ``metrics`` into ``rows`` (set in place): ``faithfulness()`` returns
    row name (``method|variant|map_type|sign``) → (1,) correlations; ``sensitivity()`` returns
    (method, variant, sign) → value for the pixel maps. A score that fails (e.g. a subset larger
    than a small input) leaves its column empty and says why in the returned note; the slice's
    other scores stand."""
    notes = []
    if "faithfulness_correlation" in metrics and faithfulness is not None:
        phase("faithfulness")
        try:
            corr = faithfulness()
        except (ValueError, RuntimeError) as e:
            corr = None
            notes.append(f"faithfulness correlation not computed: {e}")
        for row in rows:
            row["faithfulness_correlation"] = None if corr is None else _none(corr[_name(row)][0])
    if "max_sensitivity" in metrics and sensitivity is not None:
        phase("sensitivity")
        try:
            sens = sensitivity()
        except (ValueError, RuntimeError) as e:
            sens = {}
            notes.append(f"max-sensitivity not computed: {e}")
        for row in rows:
            value = sens.get((row["method"], row["variant"], row["sign"])) if row["map_type"] == "pixel" else None
            row["max_sensitivity"] = None if value is None else _none(value)
    return "; ".join(notes)


def _name(row: dict) -> str:
    return "|".join((row["method"], row["variant"], row["map_type"], row["sign"]))


def sensitivity_of(clf, x: torch.Tensor, target: int, options, references, seed: int, batch_size: int | None,
                   spacing_mm: tuple[float, float, float] | None = None) -> Callable[[], Mapping]:
    """Max-sensitivity of the maps ``options`` make of the preprocessed input ``x`` (EG's references
    as HU, or None for the model's own; a 3D model's at ``spacing_mm``), as ``add_model_scores`` takes it."""
    def run() -> Mapping:
        from ..explain import reference_inputs
        from ..metrics.robustness import max_sensitivity

        refs = reference_inputs(clf, references, spacing_mm)[0] if "EG" in options.methods else None
        return max_sensitivity(clf, x, target, options, refs, seed=seed, batch_size=batch_size)

    return run

