"""The 3D display of one attribution map over its CT: how each layer looks in 3D, and its 2D look kept.

In napari's 3D view the shown map is rendered as a volume inside the CT:

- the map: its top k % of voxels (``top_percent``: 1, 5, 10 …; the threshold is the map's
  ``100 − k`` th percentile over the voxels that hold the map: ``map_voxels.scored_voxels``), as
  an attenuated maximum-intensity projection (heat colours from the threshold up, additive: it
  glows through the CT and the mask) or as an iso-surface at the threshold;
- its CT as context: a translucent attenuated MIP in a wide window (bone and contrast-filled
  vessels show, soft tissue stays faint), or a bone iso-surface (``bone_hu``, 300 HU), or nothing;
- the reference mask(s): a translucent cyan surface (Labels in ``iso_categorical`` rendering);
- every other map hidden (the one-map-at-a-time rule of the 2D view).

Each layer's 2D settings are kept (:class:`SavedLooks`) before it is restyled and put back when
the view returns to 2D. The layers keep their scale, so an anisotropic CT (2.5 mm slices of
0.7 mm pixels) is drawn in millimetres. No model, no scoring: the following of the viewer is in
``view_3d_follow``.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
from napari.utils.colormaps import DirectLabelColormap

from .map_look import HEAT

#: The map's 3D renderings (label → napari's rendering).
RENDERINGS = {"attenuated MIP": "attenuated_mip", "iso-surface": "iso"}
#: What the CT shows around the map.
CONTEXTS = ("translucent CT", "bone surface", "none")
#: The top-k choices offered (percent of the map's voxels kept).
TOP_PERCENTS = (1.0, 5.0, 10.0)
#: The mask surface's colour (the gallery's contour colour).
MASK_COLOUR = (0.0, 0.9, 1.0, 1.0)

#: The attributes restyled in 3D, per kind of layer (their 2D values are kept and restored).
MAP_ATTRS = ("rendering", "contrast_limits", "iso_threshold", "attenuation", "blending", "opacity", "colormap")
CT_ATTRS = ("rendering", "contrast_limits", "iso_threshold", "attenuation", "blending", "opacity", "colormap",
            "visible")
MASK_ATTRS = ("rendering", "opacity", "blending", "colormap", "iso_gradient_mode")


@dataclass(frozen=True)
class View3DOptions:
    """How the 3D view draws the map, its CT and the mask.

    Attributes
    ----------
    rendering : str
        ``"attenuated MIP"`` or ``"iso-surface"`` (:data:`RENDERINGS`).
    top_percent : float
        The share of the map's voxels shown (0 < k ≤ 50).
    context : str
        ``"translucent CT"``, ``"bone surface"`` or ``"none"`` (:data:`CONTEXTS`).
    mask_surface : bool
        Draw the reference mask(s) as a surface.
    ct_window : tuple of float
        HU window of the translucent CT (bone and contrast bright, soft tissue faint).
    ct_opacity, mask_opacity : float
        Opacity of the CT context and of the mask surface.
    bone_hu : float
        The bone iso-surface's threshold (HU).
    """

    rendering: str = "attenuated MIP"
    top_percent: float = 1.0
    context: str = "translucent CT"
    mask_surface: bool = True
    ct_window: tuple[float, float] = (-150.0, 1000.0)
    ct_opacity: float = 0.35
    mask_opacity: float = 0.3
    bone_hu: float = 300.0

    def __post_init__(self) -> None:
        if self.rendering not in RENDERINGS:
            raise ValueError(f"3D rendering is one of {list(RENDERINGS)}, not {self.rendering!r}")
        if self.context not in CONTEXTS:
            raise ValueError(f"3D context is one of {list(CONTEXTS)}, not {self.context!r}")
        if not 0.0 < float(self.top_percent) <= 50.0:
            raise ValueError(f"top k % of voxels is in (0, 50], not {self.top_percent!r}")
        if not self.ct_window[1] > self.ct_window[0]:
            raise ValueError(f"the CT window is (low, high) HU with high > low, not {self.ct_window!r}")


@dataclass(frozen=True)
class MapThreshold:
    """Where the 3D view cuts a map: ``|map| ≥ threshold`` keeps its top ``top_percent`` % voxels.

    Attributes
    ----------
    threshold : float
        The ``100 − top_percent`` th percentile of ``|map|`` over the voxels holding the map.
    high : float
        The top of the colour scale (the kept voxels' own 95th percentile: one hot voxel does not
        wash the rest out).
    n_kept, n_voxels : int
        Voxels at or above the threshold, and voxels holding the map.
    top_percent : float
        As asked.
    """

    threshold: float
    high: float
    n_kept: int
    n_voxels: int
    top_percent: float


def map_threshold(data: np.ndarray, top_percent: float, keep: np.ndarray | None = None) -> MapThreshold:
    """The 3D view's threshold of ``|data|`` over the voxels ``keep`` (all when None), never empty.

    Raises
    ------
    ValueError
        No finite value among the kept voxels.
    """
    a = np.abs(np.asarray(data, dtype=np.float32))
    values = a[keep] if keep is not None else a.ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("the map holds no value to show in 3D (no explained voxel)")
    q = 100.0 - float(top_percent)
    threshold, top = (float(v) for v in np.percentile(values, [q, 100.0]))
    if threshold <= 0.0 < top:  # a sparse map (Grad-CAM after its ReLU): more than (100 − k) % is 0 — show
        threshold = float(values[values > 0].min())  # its non-zero voxels only, fewer than k % (n_kept says)
    kept = values[values >= threshold]
    high = float(np.percentile(kept, 95.0)) if kept.size else top
    if not high > threshold:
        high = top if top > threshold else threshold + max(abs(threshold), 1.0) * 1e-3
    return MapThreshold(threshold, high, int(kept.size), int(values.size), float(top_percent))


class SavedLooks:
    """The 2D settings of the layers restyled for 3D, to put back (each layer saved once)."""

    def __init__(self) -> None:
        self._saved: dict[int, tuple[weakref.ref, dict[str, Any]]] = {}

    def save(self, layer: Any, attrs: tuple[str, ...]) -> None:
        """Keep ``layer``'s current ``attrs`` unless they are kept already (its 2D look)."""
        if id(layer) in self._saved and self._saved[id(layer)][0]() is layer:
            return
        values = {a: _copy(getattr(layer, a)) for a in attrs if hasattr(layer, a)}
        self._saved[id(layer)] = (weakref.ref(layer), values)

    def __contains__(self, layer: Any) -> bool:
        entry = self._saved.get(id(layer))
        return entry is not None and entry[0]() is layer

    def restore(self) -> list[Any]:
        """Put every kept look back (layers since deleted are skipped); returns the layers restored."""
        done = []
        for ref, values in self._saved.values():
            layer = ref()
            if layer is None:
                continue
            for name, value in values.items():
                if name == "contrast_limits":  # the range first: the limits must lie inside it
                    lo, hi = layer.contrast_limits_range
                    layer.contrast_limits_range = (min(lo, value[0]), max(hi, value[1]))
                setattr(layer, name, value)
            done.append(layer)
        self._saved.clear()
        return done


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple, np.ndarray)) else value


def _set_limits(layer: Any, limits: tuple[float, float]) -> None:
    lo, hi = layer.contrast_limits_range
    layer.contrast_limits_range = (min(lo, limits[0]), max(hi, limits[1]))
    layer.contrast_limits = limits


def style_map(layer: Any, cut: MapThreshold, options: View3DOptions) -> None:
    """Render a map layer in 3D: its top-k voxels, heat colours (see the module docstring)."""
    if options.rendering == "iso-surface":
        # The surface takes the colour of the threshold: limits from 0, so it is a warm orange, not the
        # heat map's transparent low end; additive, so the mask's surface around it does not hide it.
        layer.rendering = "iso"
        _set_limits(layer, (0.0, max(cut.high, cut.threshold * 1.25)))
        layer.iso_threshold = cut.threshold
        layer.colormap = HEAT
        layer.blending = "additive"
        layer.opacity = 1.0
    else:
        layer.rendering = "attenuated_mip"
        _set_limits(layer, (cut.threshold, cut.high))
        layer.attenuation = 0.5
        layer.colormap = HEAT
        layer.blending = "additive"
        layer.opacity = 1.0


def style_ct(layer: Any, options: View3DOptions) -> None:
    """Render the CT as the map's context: translucent MIP, bone surface or hidden."""
    if options.context == "none":
        layer.visible = False
        return
    layer.visible = True
    layer.colormap = "gray"
    layer.blending = "translucent_no_depth"
    if options.context == "bone surface":
        layer.rendering = "iso"
        _set_limits(layer, (-1000.0, float(options.bone_hu) + 700.0))
        layer.iso_threshold = float(options.bone_hu)
        layer.opacity = 0.5
    else:
        layer.rendering = "attenuated_mip"
        _set_limits(layer, tuple(float(v) for v in options.ct_window))
        layer.attenuation = 0.02
        layer.opacity = float(options.ct_opacity)


def style_mask(layer: Any, options: View3DOptions) -> None:
    """Render a reference mask as a translucent cyan surface."""
    layer.rendering = "iso_categorical"
    layer.iso_gradient_mode = "smooth"
    layer.colormap = DirectLabelColormap(color_dict={None: MASK_COLOUR, 0: (0.0, 0.0, 0.0, 0.0)})
    layer.blending = "translucent"
    layer.opacity = float(options.mask_opacity)


__all__ = ["CONTEXTS", "CT_ATTRS", "MASK_ATTRS", "MAP_ATTRS", "RENDERINGS", "TOP_PERCENTS", "MapThreshold",
           "SavedLooks", "View3DOptions", "map_threshold", "style_ct", "style_map", "style_mask"]
