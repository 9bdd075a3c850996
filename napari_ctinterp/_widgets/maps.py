"""Turning attribution maps into napari layers aligned with the CT layer they explain."""

from __future__ import annotations

from typing import Any

import napari
import numpy as np


def map_layer_name(image_name: str, method: str, variant: str) -> str:
    """``<image> · <method> · <variant>`` (the contract of layer names)."""
    return f"{image_name} · {method} · {variant}"


def slice_geometry(layer: napari.layers.Image, index: int | None) -> tuple[tuple, tuple]:
    """Scale and translate for a map of one slice (``index``) or of the whole layer (None)."""
    scale = tuple(layer.scale)
    translate = list(layer.translate)
    if index is not None and layer.ndim >= 3:
        translate[0] = translate[0] + index * scale[0]
    return scale, tuple(translate)


def upsert_image(viewer: napari.Viewer, name: str, data: np.ndarray, *, scale: tuple, translate: tuple,
                 metadata: dict[str, Any], colormap: str = "inferno") -> napari.layers.Image:
    """Add an Image layer, or update the one with this name (re-running never piles up copies)."""
    finite = data[np.isfinite(data)]
    hi = float(np.percentile(finite, 99.5)) if finite.size else 1.0
    limits = (0.0, hi if hi > 0 else 1.0)
    if name in viewer.layers:
        layer = viewer.layers[name]
        layer.data = data
        layer.scale, layer.translate = scale, translate
        layer.metadata = metadata
        layer.contrast_limits_range = limits
        layer.contrast_limits = limits
        return layer
    return viewer.add_image(data, name=name, scale=scale, translate=translate, metadata=metadata,
                            colormap=colormap, blending="additive", opacity=0.7, contrast_limits=limits)
