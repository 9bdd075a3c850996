"""napari's 3D view follows the shown map: switching to 3D renders it over its CT, 2D restores.

One :class:`View3D` per viewer (:func:`follow_3d`; made when the viewer's first map layer is, and by
the Gallery). It listens to napari's own 2D / 3D toggle (``viewer.dims.events.ndisplay``): in 3D
the one visible map is rendered over its CT with the mask's surface (``view_3d``: the styles), and
it follows what is shown — a map shown from the Explain widget, the Gallery or the Metrics table
takes the place of the previous one (one map at a time, as in 2D); a new run's layers, options
changed in the Gallery's 3D section. Back in 2D, every restyled layer gets its 2D look back.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import napari
import numpy as np
from qtpy.QtCore import QTimer

from . import view_3d as v3
from .layer_info import MapLayerInfo
from .map_voxels import is_volume_map, scored_voxels
from .view_3d import MapThreshold, SavedLooks, View3DOptions

#: The camera on entering 3D (napari's Euler angles, degrees): napari's axial top view tilted 40°
#: and turned 30°, so the slices' depth shows (a CT of 24 slices is a slab seen edge-on from the front).
READABLE_ANGLES = (0.0, -30.0, -40.0)
#: napari's initial camera angles: only then is the camera turned (a view the person chose stays).
NAPARI_DEFAULT_ANGLES = (0.0, 0.0, 0.0)

_VIEWS: dict[int, View3D] = {}


def follow_3d(viewer: napari.Viewer) -> View3D:
    """The viewer's 3D follower, made on the first call (later calls return the same one)."""
    # A plugin's widget gets napari's public proxy of the viewer, whose layers are new proxies at each
    # access: the follower works on the viewer itself, so that a layer is the same object every time.
    viewer = getattr(viewer, "__wrapped__", viewer)
    view = _VIEWS.get(id(viewer))
    if view is None or view.viewer is not viewer:
        view = _VIEWS[id(viewer)] = View3D(viewer)
        weakref.finalize(viewer, _VIEWS.pop, id(viewer), None)
    return view


def _is_mask(layer: Any) -> bool:
    """A reference mask: a Labels layer that is neither XRAI's ranked regions nor an occlusion."""
    return isinstance(layer, napari.layers.Labels) and "ctinterp_regions" not in layer.metadata \
        and not layer.name.startswith("occlude")


class View3D:
    """Renders the shown map in 3D over its CT and restores the 2D look (see the module docstring).

    Attributes
    ----------
    options : View3DOptions
        How the map, the CT and the mask are drawn (``set_options`` changes them).
    shown : napari.layers.Image or None
        The map rendered now (None in 2D or with no map shown).
    cut : MapThreshold or None
        The shown map's top-k threshold.
    status : str
        What the 3D view shows, in words (or why it shows no map).
    """

    def __init__(self, viewer: napari.Viewer) -> None:
        self._viewer = weakref.ref(viewer)
        self.options = View3DOptions()
        self.looks = SavedLooks()
        self.shown: napari.layers.Image | None = None
        self.cut: MapThreshold | None = None
        self.status = "2D view: the 3D view renders the shown map over its CT"
        self._busy = self._pending = False
        self._cuts: dict[tuple, MapThreshold] = {}
        self._listeners: list[weakref.WeakMethod | Callable[[], Any]] = []
        viewer.dims.events.ndisplay.connect(self._on_ndisplay)
        viewer.layers.events.inserted.connect(self._on_inserted)
        viewer.layers.events.removed.connect(self.schedule)
        for layer in viewer.layers:
            self._watch(layer)

    @property
    def viewer(self) -> napari.Viewer | None:
        """The viewer followed (None once it is gone)."""
        return self._viewer()

    @property
    def in_3d(self) -> bool:
        """True while napari shows the 3D view."""
        viewer = self.viewer
        return viewer is not None and viewer.dims.ndisplay == 3

    def on_change(self, method: Callable[[], Any]) -> None:
        """Call ``method()`` after every change of the 3D view (held weakly if it is a bound method)."""
        self._listeners.append(weakref.WeakMethod(method) if hasattr(method, "__self__") else method)

    def set_options(self, **changes: Any) -> None:
        """Change the options (``View3DOptions`` fields); the 3D view is redrawn at once."""
        self.options = replace(self.options, **changes)
        if self.in_3d:
            self.apply()
        else:
            self._notify()

    # -- following the viewer ----------------------------------------------------------------
    def _watch(self, layer: Any) -> None:
        if MapLayerInfo.from_layer(layer) is not None:
            layer.events.visible.connect(self.schedule)
            layer.events.data.connect(self._on_data)

    def _on_inserted(self, event: Any) -> None:
        self._watch(event.value)
        self.schedule()

    def _on_data(self, event: Any) -> None:
        self._cuts.clear()  # Explain re-ran: new values, new threshold
        self.schedule()

    def _on_ndisplay(self, event: Any) -> None:
        if event.value == 3:
            self.apply()
        else:
            self.restore()

    def schedule(self, *_: Any) -> None:
        """Re-apply once the current burst of events is over (``show_map`` hides and shows several layers)."""
        if self._busy or self._pending or not self.in_3d:
            return
        self._pending = True
        QTimer.singleShot(0, self._apply_pending)

    def _apply_pending(self) -> None:
        self._pending = False
        if self.in_3d:
            self.apply()

    # -- 3D and back ------------------------------------------------------------------------
    def _chosen(self, viewer: napari.Viewer) -> napari.layers.Image | None:
        """The one map to render: the active layer if it is a visible map, else the top visible map."""
        maps = [ly for ly in viewer.layers if MapLayerInfo.from_layer(ly) is not None and ly.visible]
        active = viewer.layers.selection.active
        return active if active in maps else (maps[-1] if maps else None)

    def apply(self) -> None:
        """Render the shown map in 3D over its CT with the mask's surface (see ``view_3d``)."""
        viewer = self.viewer
        if viewer is None or self._busy:
            return
        self._busy = True
        try:
            self._apply(viewer)
        finally:
            self._busy = False
        self._notify()

    def _apply(self, viewer: napari.Viewer) -> None:
        layer = self._chosen(viewer)
        self.shown, self.cut = layer, None
        camera = viewer.scene.camera
        if tuple(camera.angles) == NAPARI_DEFAULT_ANGLES:
            camera.angles = READABLE_ANGLES
        if layer is None:
            self.status = "3D view: no map is shown — show one (Explain's \"show map\", a Gallery tile)"
            return
        info = MapLayerInfo.from_layer(layer)
        for other in viewer.layers:  # one map at a time; XRAI's ranked regions are a 2D display
            if other is not layer and other.visible and (MapLayerInfo.from_layer(other) is not None
                                                           or "ctinterp_regions" in other.metadata):
                self.looks.save(other, ("visible",))
                other.visible = False
        note = ""
        try:
            keep = scored_voxels(layer, info)
        except ValueError as e:  # the outside voxels could not be read: all voxels count, say so
            keep, note = None, f" ({e})"
        self.cut = self._cut(layer, keep)
        self.looks.save(layer, v3.MAP_ATTRS)
        v3.style_map(layer, self.cut, self.options)
        ct = viewer.layers[info.image] if info.image in viewer.layers else None
        if ct is not None:
            self.looks.save(ct, v3.CT_ATTRS)
            v3.style_ct(ct, self.options)
        masks = [ly for ly in viewer.layers if _is_mask(ly) and ly.ndim == layer.ndim
                 and (ly.visible or ly in self.looks)]
        for mask in masks:
            self.looks.save(mask, (*v3.MASK_ATTRS, "visible"))
            mask.visible = self.options.mask_surface
            if self.options.mask_surface:
                v3.style_mask(mask, self.options)
        o, c = self.options, self.cut
        if not is_volume_map(layer, info):
            note += "; this map covers one slice: explain the whole volume (or a 3D model) for a map in depth"
        ct_text = {"translucent CT": "the CT translucent", "bone surface": f"bone surface ({o.bone_hu:g} HU)",
                   "none": "no CT"}[o.context] if ct is not None else "its CT is not open"
        mask_text = (f"mask surface: {', '.join(m.name for m in masks)}" if masks and o.mask_surface
                     else "no mask surface" + ("" if masks else " (no 3D mask open)"))
        self.status = (f"3D: {layer.name} — top {o.top_percent:g} % of its voxels (|map| ≥ {c.threshold:.3g}: "
                       f"{c.n_kept:,} of {c.n_voxels:,}) as {o.rendering}; {ct_text}; {mask_text}{note}")

    def _cut(self, layer: napari.layers.Image, keep: np.ndarray | None) -> MapThreshold:
        key = (self.options.top_percent, None if keep is None else int(keep.sum()))
        held, cut = self._cuts.get("data"), self._cuts.get(key)
        if cut is None or held is None or held() is not layer.data:  # the same array, not a reused id()
            cut = v3.map_threshold(layer.data, self.options.top_percent, keep)
            self._cuts = {"data": weakref.ref(layer.data), key: cut}  # the shown map's only
        return cut

    def restore(self) -> None:
        """Back to 2D: every restyled layer gets its 2D look back."""
        self.looks.restore()
        self.shown, self.cut = None, None
        self.status = "2D view: the 3D view renders the shown map over its CT"
        self._notify()

    def _notify(self) -> None:
        for ref in list(self._listeners):
            method = ref() if isinstance(ref, weakref.WeakMethod) else ref
            if method is None:
                self._listeners.remove(ref)
                continue
            try:
                method()
            except RuntimeError:  # a closed dock's widget
                self._listeners.remove(ref)


__all__ = ["NAPARI_DEFAULT_ANGLES", "READABLE_ANGLES", "View3D", "follow_3d"]
