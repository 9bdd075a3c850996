"""Plain-data descriptions of napari layers (``LayerData`` tuples) for CT volumes and masks.

No napari import: these are the (data, kwargs, layer_type) tuples that readers and sample data
return and that widgets hand to ``viewer.add_layer``/``_add_layer_from_data``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Mediastinal window W400/L40 in HU, the default display of every CT layer.
MEDIASTINAL_WINDOW = (-160.0, 240.0)

LayerData = tuple[Any, dict[str, Any], str]


def ct_image_layer(hu: np.ndarray, spacing_mm: tuple[float, ...], name: str,
                   metadata: dict[str, Any], translate_mm: tuple[float, ...] | None = None) -> LayerData:
    """An Image layer in HU, scaled in millimetres, with the mediastinal window."""
    kwargs: dict[str, Any] = {
        "name": name,
        "scale": tuple(float(s) for s in spacing_mm),
        "contrast_limits": MEDIASTINAL_WINDOW,
        "colormap": "gray",
        "metadata": metadata,
    }
    if translate_mm is not None:
        kwargs["translate"] = tuple(float(t) for t in translate_mm)
    return (np.asarray(hu, dtype=np.float32), kwargs, "image")


def mask_labels_layer(labels: np.ndarray, spacing_mm: tuple[float, ...], name: str,
                      metadata: dict[str, Any], translate_mm: tuple[float, ...] | None = None) -> LayerData:
    """A Labels layer for a reference mask (any label > 0 = expected evidence)."""
    kwargs: dict[str, Any] = {
        "name": name,
        "scale": tuple(float(s) for s in spacing_mm),
        "metadata": metadata,
        "opacity": 0.5,
    }
    if translate_mm is not None:
        kwargs["translate"] = tuple(float(t) for t in translate_mm)
    return (np.asarray(labels).astype(np.uint8 if labels.max(initial=0) < 256 else np.int32), kwargs, "labels")
