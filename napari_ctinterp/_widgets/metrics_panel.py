"""Metrics panel: score every map of a slice against the painted reference mask, with curves.

Thin: collects the map layers of the chosen image (pixel maps and XRAI region maps), the mask and
the slice, runs a ``metrics.MapScorer`` in a background worker, and shows a sortable table and the
plots of ``metric_plots`` (ROC, Dice vs k, fidelity, human vs model). The scorer keeps each map's
ranking and fidelity, so repainting the mask re-scores in milliseconds per map and never runs the
model again (fidelity does not depend on the mask). The panel follows the image last explained
(a new map layer, or the map made active in the layer list); a table row shows its map in the
canvas and highlights its curves. Exports CSV, PNG and SVG; each map layer also gets its scores
in ``metadata["ctinterp_scores"]`` (the Gallery shows them). Below: the "along z" view
(``along_z.py``) of the shown map over every masked slice.
"""

from __future__ import annotations

import csv
from collections.abc import Generator
from dataclasses import replace
from pathlib import Path
from typing import Any

import napari
import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, PushButton
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from ..metrics.table import COLUMNS, MapScore, MapScorer, fingerprint
from ._common import (
    JobProgress,
    ct_layers,
    current_slice_index,
    default_ct,
    hidden_tab,
    limit_width,
    make_scrollable,
    on_shown,
    show_error,
    start_worker,
    wrapping_label,
)
from .along_z import AlongZ
from .maps import map_info, map_layers, show_map
from .metric_plots import draw_curves, rank_correlation

#: Visible table columns (header, MapScore field); every field is in the CSV and the row's tooltip.
TABLE = (("method", "method"), ("variant", "variant"), ("map", "kind"), ("AUC", "auc"), ("max Dice", "max_dice"),
         ("F", "fidelity"), ("on", "scope"))
AUC_COLUMN = [k for _h, k in TABLE].index("auc")
#: What the table scores: the current slice, every explained slice as one volume, or both.
SCOPES = ("this slice", "volume", "slice and volume")
#: Debounce of re-scoring after a brush stroke (ms).
PAINT_DEBOUNCE_MS = 150


class _NumberItem(QTableWidgetItem):
    """A table cell that sorts by its number (empty cells last)."""

    def __init__(self, value: float) -> None:
        finite = bool(np.isfinite(value))
        super().__init__(f"{value:.3f}" if finite else "—")
        self.value = float(value) if finite else -np.inf

    def __lt__(self, other: QTableWidgetItem) -> bool:  # noqa: D105
        return self.value < getattr(other, "value", -np.inf)


class MetricsPanel(Container):
    """Dock widget: table and plots of localisation (and fidelity) scores for every map."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.image = ComboBox(label="CT layer", choices=self._image_choices)
        self.mask = ComboBox(label="reference mask", choices=self._mask_choices)
        self.curves_of = ComboBox(label="curves of", choices=["pixel maps", "XRAI region maps", "all maps"],
                                  value="pixel maps")
        self.scope = ComboBox(label="table shows", choices=list(SCOPES), value=SCOPES[0],
                              tooltip="volume: each map scored over all its explained slices at once (3D ROC AUC "
                                      "and max Dice; fidelity is per slice)")
        self.with_fidelity = CheckBox(text="fidelity (model forward passes, once per map)", value=True)
        self.auto = CheckBox(text="re-score after painting", value=True)
        self.compute_button = PushButton(text="Compute")
        self.progress = JobProgress()
        self.status = wrapping_label()
        self.export_path = FileEdit(label="export to", mode="w", value=Path.home() / "ctinterp_metrics.csv")
        self.export_button = PushButton(text="Export CSV + PNG + SVG")
        self.table = QTableWidget(0, len(TABLE))
        self.table.setHorizontalHeaderLabels([h for h, _ in TABLE])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSortingEnabled(True)
        # Qt styles disagree on which way the sort arrow points: say it in the header text instead.
        self.table.horizontalHeader().setSortIndicatorShown(False)
        self.table.horizontalHeader().sortIndicatorChanged.connect(self._label_sort)
        self.table.setMinimumHeight(180)
        self.figure = Figure(figsize=(4.4, 5.6))  # fixed margins: see metric_plots._legend
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(470)
        self.extend([self.image, self.mask, self.scope, self.curves_of, self.with_fidelity, self.auto,
                     self.compute_button, *self.progress.widgets, self.status])
        self.native.layout().addWidget(self.table)
        self.native.layout().addWidget(self.canvas)
        self.extend([self.export_path, self.export_button])
        self.along_z = AlongZ(self.viewer, lambda: self.image.value, lambda: self.mask.value)
        self.along_z.attach(self, before=self.table)
        limit_width(self)
        make_scrollable(self)
        self.compute_button.changed.connect(self.compute)
        self.export_button.changed.connect(lambda: self.export(Path(str(self.export_path.value))))
        self.curves_of.changed.connect(lambda *_: self._plot())
        self.scope.changed.connect(lambda *_: self.compute() if self._computed else None)
        self.with_fidelity.changed.connect(lambda *_: self._plot())
        self.table.itemSelectionChanged.connect(self._row_selected)
        for ev in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            ev.connect(self.image.reset_choices)
            ev.connect(self.mask.reset_choices)
        self.viewer.layers.events.inserted.connect(self._follow_new_layer)
        self.viewer.layers.selection.events.active.connect(self._follow_active)
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.setInterval(PAINT_DEBOUNCE_MS)
        self._timer.timeout.connect(self._auto_compute)
        self._watched: napari.layers.Labels | None = None
        self.mask.changed.connect(self._watch)
        self._watch()
        self.scorer = MapScorer()
        self._stale_plot = False
        on_shown(self, lambda: self._plot() if self._stale_plot else None)
        self._computed = False  # re-score after painting only once the user computed
        self._mask_fp: str | None = None
        self._mask_note = ""
        self.scores: list[MapScore] = []
        self._layers: list[napari.layers.Image] = []
        self._highlight: tuple | None = None
        self.worker = None
        # Docked after Explain ran: start on the image of the active (else the newest) map.
        existing = map_layers(self.viewer)
        active = self.viewer.layers.selection.active
        if active is not None and map_info(active) is not None:
            self._follow(active)
        elif existing:
            self._follow(existing[-1])
        elif default_ct(self.viewer) is not None:
            self.image.value = default_ct(self.viewer)

    # -- choices and following the viewer ----------------------------------------------------
    def _image_choices(self, _w: Any = None) -> list[tuple[str, Any]]:
        return [(ly.name, ly) for ly in ct_layers(self.viewer)]

    def _mask_choices(self, _w: Any = None) -> list[tuple[str, Any]]:
        return [(ly.name, ly) for ly in self.viewer.layers if isinstance(ly, napari.layers.Labels)
                and "ctinterp_regions" not in ly.metadata and not ly.name.startswith("occlude")]

    def map_layers(self, image: napari.layers.Image) -> list[napari.layers.Image]:
        """Map layers (pixel and XRAI) made from ``image``."""
        return map_layers(self.viewer, image.name)

    def _follow(self, layer: Any) -> None:
        info = map_info(layer) if layer is not None else None
        if info and info.get("image") in self.viewer.layers:
            image = self.viewer.layers[info["image"]]
            if self.image.value is not image:
                self.image.value = image

    def _follow_new_layer(self, event: Any) -> None:
        self._follow(event.value)

    def _follow_active(self, event: Any) -> None:
        self._follow(event.value)

    def _watch(self, *_: Any) -> None:
        """Re-score (debounced) when the reference mask is repainted, undo / redo included."""
        for name in (("paint", "set_data") if self._watched is not None else ()):
            getattr(self._watched.events, name).disconnect(self._on_paint)
        self._watched = self.mask.value
        for name in (("paint", "set_data") if self._watched is not None else ()):
            getattr(self._watched.events, name).connect(self._on_paint)

    def _on_paint(self, *_: Any) -> None:
        # napari may emit ``paint`` before the new labels are written: compare when the timer fires.
        if self.auto.value and self._computed and self._watched is not None:
            self._timer.start()

    def _auto_compute(self) -> None:
        if self.worker is not None and not self.compute_button.enabled:
            self._timer.start()  # a run is going on: try again after it
            return
        if self._watched is None or fingerprint(np.asarray(self._watched.data)) == self._mask_fp:
            return  # a refresh (scrolling, undo of nothing) without an edit
        self.compute()

    # -- compute -------------------------------------------------------------------------------
    def compute(self) -> None:
        """Score every map of the chosen image on the current slice, in a background worker."""
        image, mask_layer = self.image.value, self.mask.value
        if image is None or mask_layer is None:
            self._fail("choose the CT layer and the reference mask (a Labels layer) first")
            return
        maps = self.map_layers(image)
        if not maps:
            self._fail(f"no map layers of {image.name!r} yet: run Explain first")
            return
        idx = current_slice_index(self.viewer, image)
        hu = np.asarray(image.data if idx is None else image.data[idx], dtype=np.float32)
        mask = np.asarray(mask_layer.data)
        fp = fingerprint(mask)
        if fp != getattr(self, "_note_fp", None):  # once per edit of the mask, not per compute
            from ..metrics import mask_note

            self._mask_note, self._note_fp = mask_note(mask), fp  # a multi-label mask is read as > 0: say so
        self._computed, self._mask_fp = True, fp
        scope = self.scope.value
        volume_items = []
        if scope != SCOPES[0]:
            try:
                volume_items = _volume_items(maps, image, mask)
            except ValueError as e:
                self._fail(str(e))
                return
        mask3d = mask
        mask_idx = current_slice_index(self.viewer, mask_layer)
        mask = mask if mask.ndim == 2 else mask[mask_idx if mask_idx is not None else 0]
        if mask.shape != hu.shape:
            self._fail(f"the mask {mask_layer.name!r} ({mask.shape}) and the CT slice {hu.shape} differ in size: "
                       f"paint the mask on a Labels layer made for this CT")
            return
        items, layers = [], []
        for ly in maps if scope != "volume" else []:
            info = ly.metadata["ctinterp_map"]
            values = _slice_of(np.asarray(ly.data), info, idx)
            if values is None:
                continue  # this map was made for another slice
            ranks = ly.metadata.get("ranks")
            ranks = None if ranks is None else _slice_of(np.asarray(ranks), info, idx)
            # a map of a class other than the predicted one is its own row: "IGB · →venous"
            method = info["method"] + (f" · →{info['tag']}" if info.get("tag") else "")
            items.append((method, info["variant"], info.get("kind", "pixel"), values, ranks))
            layers.append(ly)
        if not items and not volume_items:
            self._fail(f"no map of {image.name!r} covers slice {idx}: explain this slice first")
            return
        # The fill of the fidelity curves follows the class each map explains (its target).
        labels = [_target_of(ly.metadata["ctinterp_map"], idx) for ly in layers]
        layers = layers + [ly for _item, ly in volume_items]  # the volume rows follow the slice rows
        use_fid, model = self.with_fidelity.value, maps[0].metadata["ctinterp_map"].get("model", "demo")
        scorer, hu_fp, data0 = self.scorer, fingerprint(hu), [ly.data for ly in layers]

        def job() -> Generator[None, None, list]:
            from ..model import load

            clf = load(model) if use_fid else None
            scores: list = []
            for item, label in zip(items, labels):
                try:
                    scores.append(scorer.score(item, mask, clf=clf, hu=hu if use_fid else None,
                                               label=label if use_fid else None, hu_fp=hu_fp))
                except ValueError as e:  # this map cannot be scored (e.g. constant); the others can
                    scores.append(f"{item[0]} · {item[1]}: {e}")
                yield
            for (method, variant, kind, values, ranks), _ly in volume_items:
                scores.append(_volume_score(method, variant, kind, values, ranks, mask3d))
                yield
            return scores

        self.compute_button.enabled = False
        runs_before = scorer.fidelity_runs
        self.status.value = f"scoring {len(items) + len(volume_items)} map(s)…"
        self.worker = start_worker(job, total=len(items) + len(volume_items), description="Metrics",
                                   on_done=lambda sc: self._show(sc, layers, data0, idx, mask_layer.name,
                                                                 runs_before),
                                   on_error=lambda e: self._fail(str(e), notify=False), progress=self.progress,
                                   unit="maps")

    def _fail(self, text: str, *, notify: bool = True) -> None:
        """An error: notification, status, and no stale result left on screen."""
        if notify:
            show_error(f"Metrics: {text}")
        self.scores, self._layers = [], []
        self.table.setRowCount(0)
        self.figure.clear()
        self.canvas.draw_idle()
        self.compute_button.enabled = True
        self.status.value = f"error: {text}"

    def _show(self, results: list, layers: list, data0: list, idx: int | None, mask_name: str,
              runs_before: int) -> None:
        skipped = [r for r in results if isinstance(r, str)]
        kept = [(r, ly, d) for r, ly, d in zip(results, layers, data0) if not isinstance(r, str)]
        if not kept:
            self._fail("no map could be scored: " + "; ".join(skipped))
            return
        scores, layers = [r for r, _, _ in kept], [ly for _, ly, _ in kept]
        changed = [ly.name for _, ly, d in kept if ly.data is not d]  # Explain re-ran meanwhile
        self.scores, self._layers = scores, layers
        for s, ly, d in kept:
            if ly.data is not d or s.scope != "slice":
                continue
            # Assigned whole so napari emits the metadata event the Gallery listens to.
            ly.metadata = {**ly.metadata, "ctinterp_scores": {"slice": idx, "mask": mask_name, "auc": s.auc,
                                                              "max_dice": s.max_dice, "F": s.fidelity,
                                                              "mask_note": self._mask_note}}
        self._fill_table(scores, idx)
        self._plot()
        self.compute_button.enabled = True
        best = max(scores, key=lambda s: s.auc if np.isfinite(s.auc) else -np.inf)
        new_fid = self.scorer.fidelity_runs - runs_before
        rho, _n = rank_correlation(scores)
        text = (f"{len(scores)} maps scored; best AUC {best.auc:.3f} ({best.method} · {best.variant}"
                f"{' · XRAI' if best.kind == 'region' else ''}{' · volume' if best.scope == 'volume' else ''})")
        n_fid = sum(np.isfinite(s.fidelity) for s in scores)
        if n_fid:
            text += f"; fidelity: {new_fid} computed, {n_fid - new_fid} from cache"
        if np.isfinite(rho):
            text += f"; AUC vs F rank correlation ρ = {rho:+.2f}"
        if self._mask_note:
            text += f". Note: {self._mask_note}"
        if skipped:
            text += f". Not scored: {'; '.join(skipped)}"
        if changed:
            text += f". {len(changed)} map(s) changed while scoring: click Compute again"
        self.status.value = text

    def _fill_table(self, scores: list[MapScore], idx: int | None = None) -> None:
        self.table.setSortingEnabled(False)
        self.table.clearContents()
        self.table.setRowCount(len(scores))
        for r, s in enumerate(scores):
            row = s.row()
            tip = (f"exact AUC {s.auc:.4f} · grid AUC {s.auc_grid:.4f} · max Dice {s.max_dice:.4f} at k* = "
                   f"{s.k_star:g} % · mass in mask {s.relevance_mass:.3f} · F {s.fidelity:.4f}")
            row["scope"] = "volume" if s.scope == "volume" else (f"z {idx}" if idx is not None else "slice")
            for c, (_h, key) in enumerate(TABLE):
                v = row[key]
                item = _NumberItem(v) if isinstance(v, float) else QTableWidgetItem(
                    "XRAI" if v == "region" else str(v))
                item.setData(Qt.ItemDataRole.UserRole, r)
                item.setToolTip(tip)
                self.table.setItem(r, c, item)
        self.table.setSortingEnabled(True)
        self.table.sortItems(AUC_COLUMN, Qt.SortOrder.DescendingOrder)  # best AUC first

    def _label_sort(self, column: int, order: Qt.SortOrder) -> None:
        arrow = " ▼" if order == Qt.SortOrder.DescendingOrder else " ▲"
        self.table.setHorizontalHeaderLabels([h + (arrow if c == column else "") for c, (h, _k) in enumerate(TABLE)])

    def visible_scores(self) -> list[MapScore]:
        """The scores whose curves the plots show (``curves of``; the volume rows when the table
        shows only the volume)."""
        want = {"pixel maps": {"pixel"}, "XRAI region maps": {"region"}, "all maps": {"pixel", "region"}}
        kinds = want[self.curves_of.value]
        shown = [s for s in self.scores if s.kind in kinds or (s.method, s.variant, s.kind) == self._highlight]
        # one scope at a time in the plots (their styles say method, variant and map, not scope):
        # with both in the table, the curves are the slice's
        plotted = "volume" if self.scope.value == "volume" else "slice"
        shown = [s for s in shown if s.scope == plotted]
        if not self.with_fidelity.value:
            shown = [replace(s, fidelity=float("nan"), fidelity_curves=None) for s in shown]
        return shown

    def _plot(self) -> None:
        if not self.scores:
            return
        if hidden_tab(self):  # behind another tab: draw when shown
            self._stale_plot = True
            return
        self._stale_plot = False
        draw_curves(self.figure, self.visible_scores(), layout="grid", highlight=self._highlight)
        self.canvas.draw_idle()

    def _row_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows or not self.scores:
            return
        r = self.table.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole)
        s, layer = self.scores[r], self._layers[r]
        self._highlight = (s.method, s.variant, s.kind)
        if layer in self.viewer.layers:
            show_map(self.viewer, layer)
        self._plot()

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
        wide = Figure(figsize=(18, 5.0), layout="constrained")
        draw_curves(wide, self.visible_scores(), layout="row", highlight=self._highlight)
        wide.savefig(png, dpi=150)
        wide.savefig(svg)
        self.status.value = f"exported {path.name}, {png.name}, {svg.name}"
        return [path, png, svg]


def _volume_items(maps: list, image: Any, mask: np.ndarray) -> list:
    """``((method, variant, kind, values (Z, H, W), ranks or None), layer)`` for every map that
    covers several slices of the volume (slices not explained: NaN, left out of the volume)."""
    if np.ndim(image.data) != 3 or mask.ndim != 3:
        raise ValueError("volume scores need a volume CT and a (Z, H, W) mask: this CT or mask is a single slice")
    out = []
    for ly in maps:
        info, data = ly.metadata["ctinterp_map"], np.asarray(ly.data, dtype=np.float32)
        if data.shape != mask.shape:
            continue  # one slice's map: it has no volume score
        explained = info.get("slices") or range(len(data))
        values = np.full(data.shape, np.nan, np.float32)
        values[list(explained)] = data[list(explained)]
        ranks = ly.metadata.get("ranks")
        ranks = np.asarray(ranks) if ranks is not None and np.shape(ranks) == data.shape else None
        method = info["method"] + (f" · →{info['tag']}" if info.get("tag") else "")
        out.append(((method, info["variant"], info.get("kind", "pixel"), values, ranks), ly))
    if not out:
        raise ValueError("no map covers several slices yet: explain a slice range, the slices with mask or the "
                         "whole volume to get volume scores")
    return out


def _volume_score(method: str, variant: str, kind: str, values: np.ndarray, ranks: np.ndarray | None,
                  mask: np.ndarray) -> MapScore | str:
    """One volume-level row (3D AUC and max Dice; fidelity is per slice: NaN), or why not."""
    from ..metrics import localisation_volume

    try:
        vol = localisation_volume(np.abs(values), mask, regions=ranks).volume
    except ValueError as e:
        return f"{method} · {variant} (volume): {e}"
    if vol is None:
        return f"{method} · {variant} (volume): no explained slice has mask pixels"
    return MapScore(method, variant, kind, vol.auc, vol.auc_grid, vol.max_dice, vol.k_star, vol.relevance_mass,
                    float("nan"), vol, None, scope="volume")


def _target_of(info: dict, idx: int | None) -> int:
    """The class a map explains on slice ``idx`` (whole-volume runs record one per slice)."""
    slices, targets = info.get("slices") or [], info.get("targets") or []
    if idx is not None and idx in slices and len(targets) == len(slices):
        return int(targets[slices.index(idx)])
    return int(info.get("target", 1))


def _slice_of(data: np.ndarray, info: dict, idx: int | None) -> np.ndarray | None:
    """The 2D map of slice ``idx`` from a map layer's data: (H, W), (1, H, W) of one slice, or (Z, H, W)."""
    if data.ndim == 2:
        return data
    slices = info.get("slices") or []
    if data.shape[0] == 1:
        return data[0] if (not slices or idx is None or slices[0] == idx) else None
    if info.get("full_z") and idx not in slices:  # a slice range: this slice was not explained
        return None
    return data[idx if idx is not None else 0]
