"""The Gallery's "3D view" section: show the shown map in 3D over its CT, and how.

A button ("Show in 3D" / "Back to 2D": napari's own 2D / 3D toggle does the same), the map's
rendering (attenuated MIP or iso-surface), its top k % of voxels, the CT context (translucent CT,
bone surface, none), the mask surface, and a line saying what the 3D view shows. The rendering
itself is ``view_3d_follow.View3D`` (one per viewer): the section only sets its options.

In the Gallery because the Gallery is where a map is chosen (a click on a tile shows it, in 2D
or 3D) and no new dock or manifest entry is needed; napari's toggle works without it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import napari
from magicgui.widgets import CheckBox, ComboBox, Container, PushButton
from napari.utils.notifications import show_error

from .dock_layout import wrapping_label
from .maps import map_info, show_map
from .view_3d import CONTEXTS, RENDERINGS, TOP_PERCENTS
from .view_3d_follow import View3D, follow_3d


class View3DPanel:
    """The 3D section's widgets (``widgets``, in docking order) over the viewer's ``View3D``."""

    def __init__(self, viewer: napari.Viewer, first_map: Callable[[], Any]) -> None:
        """``first_map()``: the map to show when none is visible (e.g. the Gallery's first tile)."""
        self.viewer, self._first_map = viewer, first_map
        self.view: View3D = follow_3d(viewer)
        o = self.view.options
        self.rendering = ComboBox(label="3D rendering", choices=list(RENDERINGS), value=o.rendering,
                                  tooltip="attenuated MIP: the map's top voxels glow through the CT; "
                                          "iso-surface: their outer surface")
        self.top_percent = ComboBox(label="3D top k %", choices=[(f"top {k:g} %", k) for k in TOP_PERCENTS],
                                    value=o.top_percent,
                                    tooltip="the share of the map's voxels shown (threshold: the map's quantile)")
        self.context = ComboBox(label="3D context", choices=list(CONTEXTS), value=o.context,
                                tooltip="the CT around the map: a translucent MIP, a bone surface (300 HU), or none")
        self.mask_surface = CheckBox(text="mask surface", value=o.mask_surface)
        self.button = PushButton(text="Show in 3D")
        self.row = Container(widgets=[self.button, self.top_percent, self.mask_surface], layout="horizontal",
                             labels=False, label="3D view")
        self.look = Container(widgets=[self.rendering, self.context], layout="horizontal", labels=False,
                              label="3D look")
        for row in (self.row, self.look):
            row.margins = (0, 0, 0, 0)
        self.status = wrapping_label()
        self.button.changed.connect(self.toggle)
        for w, name in ((self.rendering, "rendering"), (self.top_percent, "top_percent"), (self.context, "context"),
                        (self.mask_surface, "mask_surface")):
            w.changed.connect(lambda value, _n=name: self.view.set_options(**{_n: value}))
        self.view.on_change(self.update)
        self.update()

    @property
    def rows(self) -> list:
        """The two rows of controls (a CT of one slice hides them: it has no 3D view)."""
        return [self.row, self.look]

    @property
    def widgets(self) -> list:
        """The section's widgets, in the order they are docked (the status shows in 3D only)."""
        return [*self.rows, self.status]

    def toggle(self, *_: Any) -> None:
        """Show the shown map in 3D (the first map when none is shown), or go back to 2D."""
        if self.view.in_3d:
            self.viewer.dims.ndisplay = 2
            return
        if not any(map_info(ly) is not None and ly.visible for ly in self.viewer.layers):
            layer = self._first_map()
            if layer is None:
                show_error("Gallery: no map to show in 3D yet: run Explain on a volume first")
                return
            show_map(self.viewer, layer)
        if all(ly.ndim < 3 for ly in self.viewer.layers):
            show_error("Gallery: this CT is a single slice: the 3D view needs a volume (open a series)")
            return
        self.viewer.dims.ndisplay = 3

    def update(self) -> None:
        """The button and the status follow the 3D view."""
        self.button.text = "Back to 2D" if self.view.in_3d else "Show in 3D"
        self.status.value = self.view.status
        self.status.visible = self.view.in_3d


__all__ = ["View3DPanel"]
