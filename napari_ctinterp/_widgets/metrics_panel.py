"""Metrics panel: score every map of a slice against the painted reference mask, with curves.

Thin: collects the map layers of the chosen image (pixel maps and XRAI region maps), the mask and
the slice, runs ``metrics.score_maps`` in a background worker, and shows a sortable table and three
matplotlib plots (ROC, Dice vs k, MiF/LiF) with the random baseline on each. Recomputes on demand
and automatically after painting stops; exports CSV, PNG and SVG.
"""

from __future__ import annotations

import csv
from collections.abc import Generator
from pathlib import Path
from typing import Any

import napari
import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, Label, PushButton
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QTableWidget, QTableWidgetItem

from ..metrics.table import COLUMNS, MapScore
from ._common import current_slice_index, image_layers, show_error, start_worker

HEADERS = ("method", "variant", "pixel/region", "exact AUC", "grid AUC", "max Dice", "k* %", "mass in mask",
           "fidelity")


class MetricsPanel(Container):
    """Dock widget: table and plots of localisation (and fidelity) scores for every map."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.image = ComboBox(label="CT layer", choices=self._image_choices)
        self.mask = ComboBox(label="reference mask", choices=self._mask_choices)
        self.with_fidelity = CheckBox(text="fidelity (model forward passes)", value=True)
        self.auto = CheckBox(text="recompute after painting", value=True)
        self.compute_button = PushButton(text="Compute")
        self.status = Label(value="")
        self.export_path = FileEdit(label="export to", mode="w", value=Path.home() / "ctinterp_metrics.csv")
        self.export_button = PushButton(text="Export CSV + PNG + SVG")
        self.table = QTableWidget(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels(HEADERS)
        self.table.setSortingEnabled(True)
        self.table.setMinimumHeight(220)
        self.figure = Figure(figsize=(4.5, 10), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(560)
        self.extend([self.image, self.mask, self.with_fidelity, self.auto, self.compute_button, self.status])
        self.native.layout().addWidget(self.table)
        self.native.layout().addWidget(self.canvas)
        self.extend([self.export_path, self.export_button])
        self.compute_button.changed.connect(self.compute)
        self.export_button.changed.connect(lambda: self.export(Path(str(self.export_path.value))))
        for ev in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            ev.connect(self.image.reset_choices)
            ev.connect(self.mask.reset_choices)
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.setInterval(1500)
        self._timer.timeout.connect(self.compute)
        self._watched: napari.layers.Labels | None = None
        self.mask.changed.connect(self._watch)
        self._watch()
        self.scores: list[MapScore] = []
        self.worker = None

    # -- choices --------------------------------------------------------------------------
    def _image_choices(self, _w: Any = None) -> list[tuple[str, Any]]:
        return [(ly.name, ly) for ly in image_layers(self.viewer) if "ctinterp_map" not in ly.metadata]

    def _mask_choices(self, _w: Any = None) -> list[tuple[str, Any]]:
        return [(ly.name, ly) for ly in self.viewer.layers if isinstance(ly, napari.layers.Labels)
                and "ctinterp_regions" not in ly.metadata]

    def map_layers(self, image: napari.layers.Image) -> list[napari.layers.Image]:
        """Map layers (pixel and XRAI) made from ``image``."""
        return [ly for ly in self.viewer.layers if isinstance(ly, napari.layers.Image)
                and ly.metadata.get("ctinterp_map", {}).get("image") == image.name]

    def _watch(self, *_: Any) -> None:
        """Recompute (debounced) when the reference mask is repainted."""
        if self._watched is not None:
            self._watched.events.paint.disconnect(self._on_paint)
        self._watched = self.mask.value
        if self._watched is not None:
            self._watched.events.paint.connect(self._on_paint)

    def _on_paint(self, *_: Any) -> None:
        if self.auto.value:
            self._timer.start()

    # -- compute --------------------------------------------------------------------------
    def compute(self) -> None:
        """Score every map of the chosen image on the current slice, in a background worker."""
        image, mask_layer = self.image.value, self.mask.value
        if image is None or mask_layer is None:
            show_error("Metrics: choose the CT layer and the reference mask (a Labels layer) first")
            return
        maps = self.map_layers(image)
        if not maps:
            show_error(f"Metrics: no map layers of {image.name!r} yet: run Explain first")
            return
        idx = current_slice_index(self.viewer, image)
        hu = np.asarray(image.data if idx is None else image.data[idx], dtype=np.float32)
        mask = np.asarray(mask_layer.data)
        mask = mask if mask.ndim == 2 else mask[idx if idx is not None else 0]
        items = []
        for ly in maps:
            info = ly.metadata["ctinterp_map"]
            data = np.asarray(ly.data)
            values = data if data.ndim == 2 else data[0 if data.shape[0] == 1 else idx]
            ranks = ly.metadata.get("ranks")
            if ranks is not None:
                ranks = np.asarray(ranks)
                ranks = ranks if ranks.ndim == 2 else ranks[0 if ranks.shape[0] == 1 else idx]
            items.append((info["method"], info["variant"], info.get("kind", "pixel"), values, ranks))
        # The fill of the fidelity curves follows the class the maps explain (their target).
        label = int(maps[0].metadata["ctinterp_map"].get("target", 1))
        use_fid, model = self.with_fidelity.value, maps[0].metadata["ctinterp_map"].get("model", "demo")

        def job() -> Generator[None, None, list]:
            from ..metrics.table import score_maps
            from ..model import load

            clf = load(model) if use_fid else None
            scores = []
            for item in items:
                scores += score_maps([item], mask, clf=clf, hu=hu if use_fid else None,
                                     label=label if use_fid else None)
                yield
            return scores

        self.compute_button.enabled = False
        self.status.value = f"scoring {len(items)} map(s)…"
        self.worker = start_worker(job, total=len(items), description="Scoring maps", on_done=self._show,
                                   on_error=lambda e: self._done(f"error: {e}"))

    def _done(self, text: str) -> None:
        self.compute_button.enabled = True
        self.status.value = text

    def _show(self, scores: list[MapScore]) -> None:
        self.scores = scores
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(scores))
        for r, s in enumerate(scores):
            row = s.row()
            for c, key in enumerate(COLUMNS):
                v = row[key]
                item = QTableWidgetItem()
                if isinstance(v, float):
                    item.setData(0, round(v, 4) if np.isfinite(v) else float("nan"))
                else:
                    item.setText(str(v))
                self.table.setItem(r, c, item)
        self.table.setSortingEnabled(True)
        self.table.resizeColumnsToContents()
        self._plot(scores)
        best = max(scores, key=lambda s: s.auc)
        self._done(f"{len(scores)} maps scored; best exact AUC {best.auc:.3f} ({best.method} {best.variant} "
                   f"{best.kind})")

    def _plot(self, scores: list[MapScore]) -> None:
        draw_curves(self.figure, scores, rows=3)
        self.canvas.draw_idle()

    def export(self, path: Path) -> list[Path]:
        """Write the table (CSV) and the plots (PNG, SVG) next to ``path``."""
        if not self.scores:
            show_error("Metrics: nothing to export yet; click Compute")
            return []
        path = path.with_suffix(".csv")
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(COLUMNS))
            w.writeheader()
            for s in self.scores:
                w.writerow(s.row())
        png, svg = path.with_suffix(".png"), path.with_suffix(".svg")
        wide = Figure(figsize=(14, 4.4), layout="constrained")
        draw_curves(wide, self.scores, rows=1)
        wide.savefig(png, dpi=150)
        wide.savefig(svg)
        self.status.value = f"exported {path.name}, {png.name}, {svg.name}"
        return [path, png, svg]


METHOD_COLOURS = {"BP": "tab:blue", "IGB": "tab:orange", "IGBW": "tab:green", "EG": "tab:red", "D": "tab:purple"}
VARIANT_STYLES = {"plain": "-", "SG": "--", "SG2": ":"}


def draw_curves(fig: Figure, scores: list[MapScore], *, rows: int) -> None:
    """ROC, Dice vs k and MiF/LiF curves: colour = method, line style = variant, thick = XRAI region
    map; the random baseline in black on each plot."""
    from matplotlib.lines import Line2D

    fig.clear()
    shape = (3, 1) if rows == 3 else (1, 3)
    roc, dice, fid = (fig.add_subplot(*shape, i) for i in (1, 2, 3))
    for s in scores:
        kw = {"color": METHOD_COLOURS.get(s.method, "grey"), "ls": VARIANT_STYLES.get(s.variant, "-"),
              "lw": 2.4 if s.kind == "region" else 1.0, "alpha": 0.55 if s.kind == "region" else 0.95}
        roc.plot(np.r_[0, s.curves.fpr, 1], np.r_[0, s.curves.tpr, 1], **kw)
        dice.plot(s.curves.k, s.curves.dice, **kw)
        if s.fidelity_curves is not None:
            fid.plot(s.fidelity_curves.p, s.fidelity_curves.prob_mif[0] - s.fidelity_curves.prob_lif[0], **kw)
    c = scores[0].curves
    roc.plot([0, 1], [0, 1], "k:", lw=1.2, label="random")
    dice.plot(c.k, c.random_dice, "k:", lw=1.2, label="random")
    fid.axhline(0.0, color="k", ls=":", lw=1.2, label="random")
    roc.set(title="ROC", xlabel="FPR", ylabel="TPR")
    dice.set(title="Dice vs k", xlabel="k (% kept)", ylabel="Dice")
    fid.set(title="fidelity: MiF − LiF (prob. / P₀)", xlabel="% removed", ylabel="MiF − LiF")
    handles = [Line2D([], [], color=col, label=m) for m, col in METHOD_COLOURS.items()]
    handles += [Line2D([], [], color="k", ls=ls, label=v) for v, ls in VARIANT_STYLES.items()]
    handles += [Line2D([], [], color="grey", lw=1, label="pixel map"),
                Line2D([], [], color="grey", lw=2.4, alpha=0.55, label="XRAI region map"),
                Line2D([], [], color="k", ls=":", lw=1.2, label="random")]
    roc.legend(handles=handles, fontsize=6, ncol=2, loc="lower right")
