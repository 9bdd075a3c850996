"""Attribution maps as napari layers: names, display over the CT, and "show this one map".

One Image layer per map (pixel or XRAI region map), all but one hidden: the canvas shows the CT,
the mask and one overlay; ``show_map`` switches which one (the Explain widget's "show" field, the
gallery and the Metrics panel's table all use it).

Display: a heat colormap whose low end is transparent (translucent blending, so the CT shows
through where the map is low), contrast limits at robust percentiles of the map — the median
(``LOW_PERCENTILE``) to the 99.5th percentile (``HIGH_PERCENTILE``) of its finite values, so one
hot pixel does not wash the map out and the lower half of the pixels stays clear — opacity 0.8,
and napari's colour bar on the shown layer.
"""

from __future__ import annotations

from typing import Any

import napari
import numpy as np
from napari.utils.colormaps import Colormap
from qtpy.QtCore import QTimer

from .layer_info import MapLayerInfo

#: Contrast limits of a map layer, in percentiles of its finite values.
LOW_PERCENTILE, HIGH_PERCENTILE = 50.0, 99.5

#: Transparent → red → yellow → white: a heat overlay that leaves the CT visible where the map is low.
HEAT = Colormap(colors=[[0.0, 0.0, 0.0, 0.0], [0.85, 0.0, 0.0, 0.55], [1.0, 0.55, 0.0, 0.85],
                        [1.0, 1.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]],
                controls=[0.0, 0.15, 0.45, 0.8, 1.0], name="ctinterp heat")


def short_map_name(method: str, variant: str, kind: str = "pixel") -> str:
    """``IGB · SG2`` or ``IGB · SG2 · XRAI``: how widgets and the gallery title a map."""
    return f"{method} · {variant}" + (" · XRAI" if kind == "region" else "")


def map_title(info: MapLayerInfo) -> str:
    """A map layer's title from its record: ``IGB · SG2[ · XRAI][ · →<class>]`` (the class when it
    is not the predicted one, as in the layer name)."""
    return short_map_name(info.method, info.variant, info.kind) + (f" · →{info.tag}" if info.tag else "")


def map_layer_name(image_name: str, method: str, variant: str, kind: str = "pixel", target: str = "") -> str:
    """``<method> · <variant>[ · XRAI][ · →<class>] — <image>`` (the contract of layer names).

    The map comes first so that the layer list, which elides long names in the middle, still
    shows which map a row is. ``target``: the explained class, named only when it is not the
    predicted one.
    """
    tag = f" · →{target}" if target else ""
    return f"{short_map_name(method, variant, kind)}{tag} — {image_name}"


def map_info(layer: napari.layers.Layer) -> MapLayerInfo | None:
    """The record of a map layer (``MapLayerInfo.from_layer``; None for other layers)."""
    return MapLayerInfo.from_layer(layer)


def map_layers(viewer: napari.Viewer, image_name: str | None = None) -> list[napari.layers.Image]:
    """Map layers of the viewer, those made from ``image_name`` only when given."""
    return [ly for ly in viewer.layers if (info := map_info(ly)) is not None
            and (image_name is None or info.image == image_name)]


def robust_limits(data: np.ndarray) -> tuple[float, float]:
    """Contrast limits (``LOW_PERCENTILE``, ``HIGH_PERCENTILE``) of the finite values, never empty."""
    finite = np.asarray(data)[np.isfinite(data)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(finite, [LOW_PERCENTILE, HIGH_PERCENTILE]))
    if not hi > lo:
        lo, hi = float(finite.min()), float(finite.max())
    if not hi > lo:
        hi = lo + 1.0
    return lo, hi


def show_map(viewer: napari.Viewer, layer: napari.layers.Image) -> None:
    """Make ``layer`` the one visible map (with its colour bar) and its CT the visible image.

    Every other map layer and every other CT image is hidden (they share the canvas); masks and
    other layers are left as they are. The map is selected in the layer list.
    """
    info = map_info(layer)
    if info is None:
        raise ValueError(f"{layer.name!r} is not an attribution map layer")
    for ly in viewer.layers:
        if map_info(ly) is not None:
            if ly is not layer:
                ly.visible = False
                ly.colorbar.visible = False
        elif isinstance(ly, napari.layers.Image) and not ly.rgb:
            ly.visible = ly.name == info.image
        elif isinstance(ly, napari.layers.Labels) and "ctinterp_regions" in ly.metadata:
            ly.visible = False
    layer.visible = True
    layer.colorbar.position = "top_left"  # its tick labels need room on the right
    layer.colorbar.visible = True
    viewer.layers.selection.active = layer
    # napari draws a colour bar switched on in the same tick as its layer only after a toggle.
    QTimer.singleShot(0, lambda: _redraw_colorbar(layer))


def _redraw_colorbar(layer: napari.layers.Image) -> None:
    if layer.visible and layer.colorbar.visible:
        layer.colorbar.visible = False
        layer.colorbar.visible = True


def slice_geometry(layer: napari.layers.Image, index: int | None) -> tuple[tuple, tuple]:
    """Scale and translate for a map of one slice (``index``) or of the whole layer (None)."""
    scale = tuple(layer.scale)
    translate = list(layer.translate)
    if index is not None and layer.ndim >= 3:
        translate[0] = translate[0] + index * scale[0]
    return scale, tuple(translate)


def upsert_image(viewer: napari.Viewer, name: str, data: np.ndarray, *, scale: tuple, translate: tuple,
                 metadata: dict[str, Any]) -> napari.layers.Image:
    """Add a hidden map layer, or update the one with this name (re-running never piles up copies).

    ``metadata``: the layer's whole metadata, the record under ``layer_info.KEY``
    (``MapLayerInfo.layer_metadata``)."""
    limits = robust_limits(data)
    if name in viewer.layers:
        layer = viewer.layers[name]
        layer.data = data
        layer.scale, layer.translate = scale, translate
        layer.metadata = metadata
        finite = data[np.isfinite(data)]
        full = (float(finite.min()), float(finite.max())) if finite.size else limits
        layer.contrast_limits_range = (min(full[0], limits[0]), max(full[1], limits[1]))  # as a new layer's
        layer.contrast_limits = limits
        return layer
    return viewer.add_image(data, name=name, scale=scale, translate=translate, metadata=metadata,
                            colormap=HEAT, blending="translucent", opacity=0.8, contrast_limits=limits,
                            visible=False)
