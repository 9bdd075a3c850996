"""The "known shortcut" of the Gallery and the Metrics panel: which maps point at it?

A Labels layer of a feature the model is *known* to use (a planted marker: the sample "Phantom
pair with a marker" brings its mask, and ``demo-shortcut`` reads it) is the ground truth of what
the network used (``metrics.ground_truth``). Chosen in either widget, each map of the shown slice
gets its share of |map| on that feature and the pointing game (is its top pixel on it, within
``metrics.POINTING_TOLERANCE_MM``) — computed by ``metrics.MarkerCheck``, once per slice.
"""

from __future__ import annotations

from typing import Any

import napari
import numpy as np
from magicgui.widgets import ComboBox

from ..io.evidence import evidence_mask
from ..metrics import POINTING_TOLERANCE_MM, MarkerCheck
from .layer_choice import current_slice_index

TOOLTIP = ("a Labels layer of a feature the model is known to use (a planted marker: the sample \"Phantom pair "
           "with a marker\" brings its mask). Each map then says how much of |map| lies on it and whether its top "
           f"pixel points at it (within {POINTING_TOLERANCE_MM:g} mm)")
#: How the Gallery explains its tiles' marker scores (the Metrics panel's column says it in its tooltip).
LEGEND = (f"marker: the share of |map| on the known shortcut; ✓: the map's top pixel is on it (within "
          f"{POINTING_TOLERANCE_MM:g} mm), ✗: elsewhere")


def is_marker_layer(layer: Any) -> bool:
    """Whether ``layer`` is the mask of a planted marker (its metadata says so: the sample's)."""
    return isinstance(layer, napari.layers.Labels) and "marker" in layer.metadata


def shortcut_combo(viewer: napari.Viewer) -> ComboBox:
    """The "known shortcut" choice: none, or any Labels layer (a marker's mask first chosen)."""
    def choices(_w: Any = None) -> list[tuple[str, Any]]:
        return [(ly.name, ly) for ly in viewer.layers if isinstance(ly, napari.layers.Labels)
                and "ctinterp_regions" not in ly.metadata and not ly.name.startswith("occlude")]

    combo = ComboBox(label="known shortcut", choices=choices, nullable=True, value=None, tooltip=TOOLTIP)
    combo.value = next((ly for ly in viewer.layers if is_marker_layer(ly)), None)
    return combo


def follow_new_marker(combo: ComboBox, layer: Any) -> None:
    """A marker's mask just added (the sample opened after the widget): choose it if none is chosen."""
    combo.reset_choices()
    if combo.value is None and is_marker_layer(layer):
        combo.value = layer


def marker_check(viewer: napari.Viewer, layer: napari.layers.Labels | None,
                 shape: tuple[int, ...]) -> tuple[MarkerCheck | None, str]:
    """The check of the shown slice against ``layer`` (None when none is chosen or it is empty
    there), and a note saying why there is none."""
    if layer is None:
        return None, ""
    data = np.asarray(layer.data)
    idx = current_slice_index(viewer, layer)
    mask = evidence_mask(data[idx if idx is not None else 0] if data.ndim == 3 else data)
    if mask.shape != tuple(shape):
        return None, f" The known shortcut {layer.name!r} {mask.shape} does not fit the maps {tuple(shape)}."
    if not mask.any():
        return None, f" The known shortcut {layer.name!r} is empty on this slice."
    return MarkerCheck(mask, spacing_mm=tuple(float(s) for s in layer.scale[-2:])), ""

