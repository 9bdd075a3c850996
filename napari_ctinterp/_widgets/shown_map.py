"""The Explain widget's display controls: which map is over the CT ("show map") and the ranked
XRAI regions of a map, keeping its top k % of the area ("regions of", "top k % area")."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import napari
from magicgui.widgets import ComboBox, FloatSlider

from .explain_layers import MadeLayers
from .maps import map_info, map_layer_name, map_layers, map_title, short_map_name, show_map
from .xrai_layers import show_regions, xrai_layer_name


class ShownMap:
    """The three controls (``widgets``) and the latest run's XRAI regions they show."""

    def __init__(self, viewer: napari.Viewer, image: Callable[[], napari.layers.Image | None]) -> None:
        self.viewer, self._image = viewer, image
        self._last: dict | None = None  # the latest XRAI results, for the regions layer
        self._quiet = False
        self.shown = ComboBox(label="show map", choices=self._shown_choices, visible=False)
        self.regions_of = ComboBox(label="regions of", choices=self._region_choices, visible=False)
        self.top_percent = FloatSlider(label="top k % area", value=100.0, min=0.0, max=100.0, visible=False)
        self.shown.changed.connect(self._show_chosen)
        self.regions_of.changed.connect(self._update_regions)
        self.top_percent.changed.connect(self._update_regions)
        viewer.layers.selection.events.active.connect(self._follow_shown)

    @property
    def widgets(self) -> list:
        """The controls, in the order they are docked."""
        return [self.shown, self.regions_of, self.top_percent]

    def show(self, image_name: str, key: tuple[str, str], tag: str = "") -> str:
        """Put map ``key`` over the CT and name it in "show map"; returns its title."""
        show_map(self.viewer, self.viewer.layers[map_layer_name(image_name, *key, target=tag)])
        self.shown.reset_choices()
        self.shown.visible = True
        title = short_map_name(*key) + (f" · →{tag}" if tag else "")
        self.shown.value = title
        return title

    def set_regions(self, image_name: str, made: MadeLayers) -> None:
        """The run's XRAI region maps become the choices of "regions of" (the layer stays hidden)."""
        self._last = {"image": image_name, "regions": made.regions, "scale": made.scale,
                      "translate": made.translate, "tag": made.tag}
        self._quiet = True  # the regions layer is made (or updated) hidden; choosing a map shows it
        try:
            self.regions_of.reset_choices()
            self._update_regions()
        finally:
            self._quiet = False
        self.regions_of.visible = self.top_percent.visible = True

    def hide_regions(self) -> None:
        """No region controls (the maps they showed were hidden)."""
        self.regions_of.visible = self.top_percent.visible = False

    def _shown_choices(self, _widget: Any = None) -> list[str]:
        image = self._image()
        if image is None:
            return []
        return [map_title(i) for ly in map_layers(self.viewer, image.name) if (i := map_info(ly))]

    def _follow_shown(self, event: Any) -> None:
        """A map shown from elsewhere (Gallery, Metrics) is the one named in "show map"."""
        info = map_info(event.value) if event.value is not None else None
        image = self._image()
        if info is None or image is None or info.image != image.name or not self.shown.choices:
            return
        name = map_title(info)
        try:
            if self.shown.value != name:
                self.shown.reset_choices()
                self.shown.value = name
        except (ValueError, RuntimeError):  # not among the choices / widget closed
            pass

    def _show_chosen(self, name: str | None) -> None:
        image = self._image()
        if not name or image is None:
            return
        for ly in map_layers(self.viewer, image.name):
            i = map_info(ly)
            if map_title(i) == name:
                show_map(self.viewer, ly)
                return

    def _region_choices(self, _widget: Any = None) -> list[str]:
        if not self._last:
            return []
        return [xrai_layer_name(self._last["image"], m, v, self._last["tag"]) for m, v in self._last["regions"]]

    def _update_regions(self, *_: Any) -> None:
        """Show the chosen map's ranked regions, keeping the top k % of the area."""
        if not self._last or not self.regions_of.value:
            return
        last = self._last
        names = {xrai_layer_name(last["image"], m, v, last["tag"]): (m, v) for m, v in last["regions"]}
        key = names.get(self.regions_of.value)
        if key is None:
            return
        _values, ranks = last["regions"][key]
        labels = show_regions(self.viewer, last["image"], ranks, float(self.top_percent.value),
                              scale=last["scale"], translate=last["translate"], source=self.regions_of.value)
        if not self._quiet:
            labels.visible = True  # asked for: the ranked regions of this map
