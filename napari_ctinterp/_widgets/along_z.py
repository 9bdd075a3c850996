"""The Metrics panel's "along z" view: AUC and max Dice of one map on every slice with a mask.

Thin: takes the map shown in the canvas (or the first pixel map of the image) and the reference
mask as (Z, H, W) — a stack of 2D maps (``explain_volume``) or a 3D model's map, whose voxels
outside the model's input are left out (``map_voxels``) — runs ``metrics.localisation_volume`` in
a background worker, and plots both scores per slice with the volume-level values as dashed
lines; a click on the plot moves the viewer to the nearest scored slice.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import napari
import numpy as np
from magicgui.widgets import PushButton
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from napari.utils.notifications import show_error

from ..io.evidence import evidence_mask
from ..metrics.volume import VolumeLocalisation
from ..progress import Step
from .dock_layout import wrapping_label
from .map_voxels import explained_slices, outside_voxels
from .maps import map_info, map_layers, map_title
from .workers import start_worker


class AlongZ:
    """Button, status line and plot; ``attach(container)`` places them."""

    def __init__(self, viewer: napari.Viewer, image: Any, mask: Any) -> None:
        self.viewer = viewer
        self._image, self._mask = image, mask  # callables: the panel's chosen CT and mask layers
        self.button = PushButton(text="Scores along z (shown map)")
        self.status = wrapping_label()
        self.figure = Figure(figsize=(4.4, 2.2))
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(190)
        self.canvas.setVisible(False)
        self.canvas.mpl_connect("button_press_event", self.on_click)
        self.button.changed.connect(self.compute)
        self.result: VolumeLocalisation | None = None
        self.worker = None

    def attach(self, container: Any, before: Any = None) -> None:
        """Add the button and status to ``container`` and the plot under them (before the Qt
        widget ``before`` when given, e.g. the panel's table)."""
        container.extend([self.button, self.status])
        lay = container.native.layout()
        at = lay.indexOf(before) if before is not None else -1
        lay.insertWidget(at, self.canvas) if at >= 0 else lay.addWidget(self.canvas)

    def chosen_map(self, image: napari.layers.Image) -> napari.layers.Image | None:
        """The pixel map of ``image`` visible in the canvas, else its first pixel map."""
        maps = [ly for ly in map_layers(self.viewer, image.name) if map_info(ly).kind == "pixel"]
        shown = [ly for ly in maps if ly.visible]
        return (shown or maps or [None])[0]

    def compute(self, *_: Any) -> None:
        image, mask_layer = self._image(), self._mask()
        try:
            if image is None or mask_layer is None:
                raise ValueError("choose the CT layer and the reference mask first")
            if np.ndim(image.data) != 3:
                raise ValueError("along z needs a volume: this CT is a single slice")
            layer = self.chosen_map(image)
            if layer is None:
                raise ValueError(f"no map of {image.name!r} yet: run Explain on several slices first")
            data, mask = np.asarray(layer.data, np.float32), np.asarray(mask_layer.data)
            if data.shape != mask.shape:
                raise ValueError(f"the map {layer.name!r} covers {data.shape[0]} slice(s) of shape {data.shape[1:]}, "
                                 f"the mask is {mask.shape}: explain several slices (slice range, slices with "
                                 f"mask, whole volume) to score along z")
        except ValueError as e:
            show_error(f"Metrics: {e}")
            self.status.value = f"error: {e}"
            return
        info = map_info(layer)
        explained = explained_slices(layer, info)
        values = np.where(np.isin(np.arange(len(data)), explained)[:, None, None], data, np.nan)
        title = map_title(info)

        def job() -> Generator[Step, None, VolumeLocalisation]:
            from ..metrics import localisation_volume

            yield Step(0, 1)
            # a 3D model's voxels outside its input (its card's crop) are left out (may load the model)
            return localisation_volume(values, mask, outside=outside_voxels(layer, info))

        self.button.enabled = False
        n_masked = int(evidence_mask(mask).reshape(len(mask), -1).any(1).sum())
        self.status.value = f"scoring {title} on {n_masked} masked slice(s)…"
        self.worker = start_worker(job, total=1, description="Metrics along z",
                                   on_done=lambda res: self._show(res, title),
                                   on_error=lambda e: self._end(f"error: {e}"))

    def _end(self, text: str) -> None:
        self.button.enabled = True
        self.status.value = text

    def _show(self, res: VolumeLocalisation, title: str) -> None:
        self.result = res
        self.figure.clear()
        ax = self.figure.add_subplot(1, 1, 1)
        rows = res.table()
        if rows:
            z = [r["z"] for r in rows]
            ax.plot(z, [r["auc"] for r in rows], "o-", color="C0", label="AUC", ms=4)
            ax.plot(z, [r["max_dice"] for r in rows], "s-", color="C1", label="max Dice", ms=4)
        if res.volume is not None:
            ax.axhline(res.volume.auc, color="C0", ls="--", lw=1)
            ax.axhline(res.volume.max_dice, color="C1", ls="--", lw=1)
        ax.set_xlabel("slice (click: go there)", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # slices are whole numbers: no 10.5 tick
        ax.set_ylim(0, 1.02)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, loc="lower right")
        ax.set_title(f"{title} along z (dashed: volume)", fontsize=8)
        self.figure.tight_layout()
        self.canvas.setVisible(True)
        self.canvas.draw_idle()
        vol = (f"; volume AUC {res.volume.auc:.3f}, max Dice {res.volume.max_dice:.3f}"
               if res.volume is not None else "")
        missing = [z for z, why in res.skipped.items() if why.startswith("not explained")]
        other = {z: why for z, why in res.skipped.items() if z not in missing}
        skipped = f"; {len(missing)} masked slice(s) not explained ({_ranges(missing)})" if missing else ""
        skipped += ("; not scored: " + ", ".join(why if z == -1 else f"z{z} ({why})" for z, why in other.items())
                    if other else "")
        self._end(f"{title}: {len(rows)} slice(s) scored{vol}{skipped}")

    def on_click(self, event: Any) -> None:
        """Move the viewer to the scored slice nearest the click."""
        if self.result is None or event.xdata is None or not self.result.slices:
            return
        z = min(self.result.slices, key=lambda k: abs(k - float(event.xdata)))
        image = self._image()
        world = image.data_to_world([z, 0, 0])[0] if image is not None else z
        self.viewer.dims.set_point(0, float(world))


def _ranges(zs: list[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` → ``"z0–2, 5, 7–8"``."""
    parts: list[tuple[int, int]] = []
    for z in sorted(zs):
        if parts and z == parts[-1][1] + 1:
            parts[-1] = (parts[-1][0], z)
        else:
            parts.append((z, z))
    return "z" + ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in parts)
