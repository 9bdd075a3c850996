"""What the widgets need to hand a CT layer to a 3D model: its voxel spacing, and why it cannot be
one's input (a single slice, too few slices) — said before any work starts, in the widget.

A 3D model (card ``spatial_dims`` 3) sees the whole volume: the layer's data (Z, H, W) is the
input, with its spacing in mm (z, y, x) — the reader's ``metadata["spacing_mm"]`` when it wrote
one, else the layer's scale (napari's world units are millimetres for the plugin's layers).
"""

from __future__ import annotations

import napari
import numpy as np

from ..model import ModelCard


def layer_spacing_mm(layer: napari.layers.Layer) -> tuple[float, float, float] | None:
    """The (z, y, x) voxel spacing in mm of a CT volume layer: ``metadata["spacing_mm"]`` (three
    values), else the layer's scale; None for a 2D layer."""
    meta = getattr(layer, "metadata", None) or {}
    spacing = meta.get("spacing_mm")
    if spacing is not None and len(tuple(spacing)) == 3:
        return tuple(float(v) for v in spacing)  # type: ignore[return-value]
    if len(np.shape(layer.data)) == 3:
        return tuple(float(v) for v in tuple(layer.scale)[-3:])  # type: ignore[return-value]
    return None


def volume_refusal(layer: napari.layers.Layer, card: ModelCard) -> str | None:
    """Why ``layer`` cannot be the input of the 3D model ``card`` (a single slice, too few slices,
    a thumbnail), saying what to open; None when it can."""
    from ..model.volume_input import volume_geometry
    from .model_picker import least_slices

    name, shape = card.name or card.architecture, np.shape(layer.data)
    need = least_slices(card)
    if len(shape) == 2 or (len(shape) == 3 and shape[0] < need):
        what = "one slice" if len(shape) == 2 or shape[0] == 1 else f"{shape[0]} slices"
        return (f"{name} is a 3D model: it sees the whole volume, and \"{layer.name}\" is {what} — open the whole "
                f"series (a folder of DICOM slices, at least {need} slices), or choose a 2D model")
    try:
        volume_geometry(shape, card.input_size, card.spacing_mm, layer_spacing_mm(layer))
    except ValueError as e:
        return f"{name} is a 3D model (it sees the whole volume): {e}"
    return None


__all__ = ["layer_spacing_mm", "volume_refusal"]
