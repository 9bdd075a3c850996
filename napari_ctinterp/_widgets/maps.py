"""Attribution maps as napari layers: names, display over the CT, and "show this one map".

One Image layer per map (pixel or XRAI region map), all but one hidden: the canvas shows the CT,
the mask and one overlay; ``show_map`` switches which one (the Explain widget's "show" field, the
gallery and the Metrics panel's table all use it).

Display (``map_look``): a heat colormap whose low end is transparent, contrast limits at robust
percentiles of the map, opacity 0.8, and napari's colour bar on the shown layer. In napari's 3D
view the shown map is rendered as a volume over its CT (``view_3d``, ``view_3d_follow``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import napari
import numpy as np
from qtpy.QtCore import QTimer

from .layer_info import MapLayerInfo
from .map_look import HEAT, HIGH_PERCENTILE, LOW_PERCENTILE, robust_limits  # noqa: F401 (the display, re-exported)
from .view_3d_follow import follow_3d


def short_map_name(method: str, variant: str, kind: str = "pixel") -> str:
    """``IGB · SG2`` or ``IGB · SG2 · XRAI``: how widgets and the gallery title a map."""
    return f"{method} · {variant}" + (" · XRAI" if kind == "region" else "")


def map_title(info: MapLayerInfo) -> str:
    """A map layer's title from its record: ``IGB · SG2[ · XRAI][ · →<class>]`` (the class when it
    is not the predicted one, as in the layer name)."""
    return short_map_name(info.method, info.variant, info.kind) + (f" · →{info.tag}" if info.tag else "")


def model_rows(infos: list[MapLayerInfo]) -> list[str]:
    """Each map's row name in the Gallery and the Metrics panel: ``row_method``, and the model's name
    (``IGB · demo-shortcut``) when the maps come from more than one model (Explain keeps an earlier
    model's maps, hidden): two models' maps of one method never share a row."""
    models = {str(i.model) for i in infos}
    if len(models) < 2:
        return [i.row_method for i in infos]
    stems = {m: Path(m).stem for m in models}
    if len(set(stems.values())) < len(models):  # two files of one name (a/model.pt, b/model.pt): the paths
        stems = {m: m for m in models}
    return [f"{i.row_method} · {stems[str(i.model)]}" for i in infos]


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
    (``MapLayerInfo.layer_metadata``). The viewer's 3D view then follows its maps
    (``view_3d_follow``: napari's 2D / 3D toggle renders the shown map over the CT)."""
    follow_3d(viewer)
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
