"""Metrics panel: score every map of a slice against the painted reference mask, with curves.

Thin: collects the map layers of the chosen image (pixel maps and XRAI region maps), the mask and
the slice, runs a ``metrics.MapScorer`` in a background worker, and shows a sortable table and the
plots of ``metric_plots`` (ROC, Dice vs k, fidelity, human vs model). The scorer keeps each map's
ranking and fidelity, so repainting the mask re-scores in milliseconds per map and never runs the
model again (fidelity does not depend on the mask). The panel follows the image last explained
(a new map layer, or the map made active in the layer list); a table row shows its map in the
canvas and highlights its curves. Exports CSV, PNG and SVG; each map layer also gets its scores
in ``metadata["ctinterp_scores"]`` (``layer_info.ScoreNote``; the Gallery shows them). Below: the "along z" view
(``along_z.py``) of the shown map over every masked slice.

"more scores" chooses the columns beyond the paper's (``metrics.schema.MORE_SCORES`` but
max-sensitivity, which explains the slice ten more times: the study's); "what the scores mean"
shows every column's definition, direction and source, and each header's tooltip says it too.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from pathlib import Path
from typing import Any

import napari
import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, PushButton
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from napari.utils.notifications import show_error
from qtpy.QtCore import QTimer

from ..metrics import rank_correlation
from ..metrics.schema import MORE_SCORES, PANEL_METRICS
from ..metrics.table import MapScore, MapScorer, fingerprint
from ..progress import Step
from .along_z import AlongZ
from .dock_layout import hidden_tab, limit_width, make_scrollable, on_shown, wrapping_label
from .known_shortcut import follow_new_marker, marker_check, shortcut_combo
from .layer_choice import ct_layers, current_slice_index, default_ct, rewatch
from .layer_info import ScoreNote, slice_of
from .map_voxels import is_3d_model_map, seen_pixels
from .maps import map_info, map_layers, model_rows, show_map
from .metric_plots import draw_curves
from .score_choice import PANEL_CHOICES, Definitions, ScoreChoice
from .score_table import ScoreTable, export_scores
from .volume_scores import volume_items, volume_score
from .workers import JobProgress, start_worker

#: What the table scores: the current slice, every explained slice as one volume, or both.
SCOPES = ("this slice", "volume", "slice and volume")
#: Maps named in the status line as pointing (or not) at the known shortcut; more: the table says.
MAX_NAMED = 6
#: Debounce of re-scoring after a brush stroke (ms).
PAINT_DEBOUNCE_MS = 150
class MetricsPanel(Container):
    """Dock widget: table and plots of localisation (and fidelity) scores for every map."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.image = ComboBox(label="CT layer", choices=self._image_choices)
        self.mask = ComboBox(label="reference mask", choices=self._mask_choices)
        self.shortcut = shortcut_combo(napari_viewer)
        self.curves_of = ComboBox(label="curves of", choices=["pixel maps", "XRAI region maps", "all maps"],
                                  value="pixel maps")
        self.scope = ComboBox(label="table shows", choices=list(SCOPES), value=SCOPES[0],
                              tooltip="volume: each map scored over all its explained slices at once (3D ROC AUC "
                                      "and max Dice; fidelity is per slice)")
        self.with_fidelity = CheckBox(text="fidelity (model forward passes, once per map)", value=True)
        self.more = ScoreChoice(PANEL_CHOICES, PANEL_METRICS, lambda: self.compute() if self._computed else None,
                                label="more scores",
                                tooltip="table columns beyond the paper's; faith. r runs the model (fidelity ticked)")
        self.meaning = Definitions()
        self.explain_scores, self.definitions = self.meaning.button, self.meaning.label
        self.auto = CheckBox(text="re-score after painting", value=True)
        self.compute_button = PushButton(text="Compute")
        self.progress = JobProgress()
        self.status = wrapping_label()
        self.export_path = FileEdit(label="export to", mode="w", value=Path.home() / "ctinterp_metrics.csv")
        self.export_button = PushButton(text="Export CSV + PNG + SVG")
        self.table = ScoreTable()
        self.figure = Figure(figsize=(4.4, 5.6))  # fixed margins: see metric_plots._legend
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(470)
        self.extend([self.image, self.mask, self.shortcut, self.scope, self.curves_of, self.with_fidelity, self.more,
                     self.auto, self.compute_button, *self.progress.widgets, self.status, self.explain_scores])
        self.native.layout().addWidget(self.meaning.box)
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
        self.shortcut.changed.connect(self._shortcut_changed)
        self.with_fidelity.changed.connect(lambda *_: self._plot())
        self.table.itemSelectionChanged.connect(self._row_selected)
        for ev in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            ev.connect(self.image.reset_choices)
            ev.connect(self.mask.reset_choices)
        self.viewer.layers.events.inserted.connect(self._new_marker)
        self.viewer.layers.events.removed.connect(self.shortcut.reset_choices)
        self.viewer.layers.events.inserted.connect(self._follow_new_layer)
        self.viewer.layers.selection.events.active.connect(self._follow_active)
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.setInterval(PAINT_DEBOUNCE_MS)
        self._timer.timeout.connect(self._auto_compute)
        self._watched: napari.layers.Labels | None = None
        self._watched_shortcut: napari.layers.Labels | None = None
        self._shortcut_edit = False  # the known shortcut was chosen or painted: the timer re-scores
        self.mask.changed.connect(self._watch)
        self._watch()
        self.scorer = MapScorer()
        self._stale_plot = False
        on_shown(self, lambda: self._plot() if self._stale_plot else None)
        self._computed = False  # re-score after painting only once the user computed
        self._mask_fp: str | None = None
        self._mask_note = ""
        self._shortcut_note, self._shortcut_name = "", ""
        self.scores: list[MapScore] = []
        self._layers: list[napari.layers.Image] = []
        self._highlight: tuple | None = None
        self.worker = None
        self._shortcut_changed()  # watch the painting of the shortcut chosen at the start (nothing to re-score yet)
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
        if info is not None and info.image in self.viewer.layers:
            image = self.viewer.layers[info.image]
            if self.image.value is not image:
                self.image.value = image
            if is_3d_model_map(info) and self.scope.value == SCOPES[0]:
                self.scope.value = SCOPES[2]  # a 3D model's map is one map of the volume: its volume row too

    def _new_marker(self, event: Any) -> None:
        follow_new_marker(self.shortcut, event.value)

    def _shortcut_changed(self, *_: Any) -> None:
        """A known shortcut chosen (or cleared) after a Compute: re-score (debounced, after a run that
        is going on), while the maps are there; painting it re-scores too."""
        self._watched_shortcut = rewatch(self._watched_shortcut, self.shortcut.value, self._on_shortcut_paint,
                                         ("paint", "set_data"))
        image = self.image.value
        if self._computed and image is not None and image in self.viewer.layers and self.map_layers(image):
            self._shortcut_edit = True
            self._timer.start()

    def _on_shortcut_paint(self, *_: Any) -> None:
        if self.auto.value and self._computed:
            self._shortcut_edit = True
            self._timer.start()

    def _follow_new_layer(self, event: Any) -> None:
        self._follow(event.value)

    def _follow_active(self, event: Any) -> None:
        self._follow(event.value)

    def _watch(self, *_: Any) -> None:
        """Re-score (debounced) when the reference mask is repainted, undo / redo included."""
        self._watched = rewatch(self._watched, self.mask.value, self._on_paint, ("paint", "set_data"))

    def _on_paint(self, *_: Any) -> None:
        # napari may emit ``paint`` before the new labels are written: compare when the timer fires.
        if self.auto.value and self._computed and self._watched is not None:
            self._timer.start()

    def _auto_compute(self) -> None:
        if self.worker is not None and not self.compute_button.enabled:
            self._timer.start()  # a run is going on: try again after it
            return
        shortcut_edit, self._shortcut_edit = self._shortcut_edit, False
        if not shortcut_edit and (self._watched is None
                                  or fingerprint(np.asarray(self._watched.data)) == self._mask_fp):
            return  # a refresh (scrolling, undo of nothing) without an edit
        self.compute()

    @property
    def definitions_shown(self) -> bool:
        """Whether the scores' definitions are open."""
        return self.meaning.shown

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
        volume_rows = []
        if scope != SCOPES[0]:
            try:
                volume_rows = volume_items(maps, image, mask)
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
        check, why = marker_check(self.viewer, self.shortcut.value, hu.shape)
        self._shortcut_note, self._shortcut_name = why, getattr(self.shortcut.value, "name", "")
        items, layers, item_masks, item_checks = [], [], [], []
        rows = dict(zip(map(id, maps), model_rows([map_info(ly) for ly in maps])))  # `` · <model>``: several
        for ly in maps if scope != "volume" else []:
            info = map_info(ly)
            values = slice_of(ly.data, info, idx)
            if values is None:
                continue  # this map was made for another slice
            ranks = ly.metadata.get("ranks")
            ranks = None if ranks is None else slice_of(ranks, info, idx)
            seen = seen_pixels(ly, info, idx)
            if seen is not None and not seen.any():
                continue  # a 3D model never saw this slice (its crop): no slice row, the volume row has it
            item_mask = mask
            if seen is not None:  # the pixels outside the crop left out, as the volume row and the study do
                values, item_mask = values[seen][None], mask[seen][None]
                ranks = None if ranks is None else ranks[seen][None]
            # a map of a class other than the predicted one is its own row: "IGB · →venous"
            items.append((rows[id(ly)], info.variant, info.kind, values, ranks))
            layers.append(ly)
            item_masks.append(item_mask)
            item_checks.append(None if check is None else (check, slice_of(ly.data, info, idx)))  # whole slice
        if not items and not volume_rows:
            self._fail(f"no map of {image.name!r} covers slice {idx}: explain this slice first")
            return
        # The fill of the fidelity curves follows the class each map explains (its target).
        labels = [map_info(ly).target_of(idx) for ly in layers]
        models = [map_info(ly).model for ly in layers]  # each map's fidelity runs the model that made it
        layers = layers + [row.layer for row in volume_rows]  # the volume rows follow the slice rows
        # A 3D model answers for the whole volume: a slice's fidelity (occluding one slice's pixels) is not its
        # question; the study measures a 3D model's fidelity over the volume.
        no_fid_3d = any(is_3d_model_map(map_info(ly)) for ly in maps)
        use_fid = self.with_fidelity.value and not no_fid_3d
        scorer, hu_fp, data0 = self.scorer, fingerprint(hu), [ly.data for ly in layers]
        more = tuple(m for m in MORE_SCORES if m in self.more.value)
        faithful = "faithfulness_correlation" in more and use_fid
        # the faithfulness correlation of a slice's maps shares its forward passes: one run per (model, class)
        groups: dict[tuple, list] = {}
        for item, label, model in zip(items, labels, models) if faithful else ():
            groups.setdefault((model, label), []).append(item)

        total = len(items) + len(volume_rows) + len(groups)

        volume = np.asarray(image.data) if np.ndim(image.data) == 3 and idx is not None else None
        volume_fp: dict = {}

        def inputs(clf) -> tuple[tuple[np.ndarray, int] | None, str]:
            """A 2.5D model sees the slice with its neighbours: (volume, index) and the volume's fingerprint."""
            if not clf.card.is_2_5d or volume is None:
                return None, hu_fp
            if "fp" not in volume_fp:
                volume_fp["fp"] = f"{fingerprint(volume)}:{idx}"
            return (volume, idx), volume_fp["fp"]

        def job() -> Generator[Step, None, list]:
            from ..model import load

            for n, ((model, label), group) in enumerate(groups.items()):
                clf = load(model)
                context, fp = inputs(clf)
                try:
                    scorer.faithfulness(group, clf=clf, hu=hu, label=label, hu_fp=fp, context=context)
                except ValueError:  # a map this model cannot be scored with: its rows say "—"
                    pass
                yield Step(n + 1, total, "faithfulness")
            scores: list = []
            for item, label, model, item_mask, marker in zip(items, labels, models, item_masks, item_checks):
                clf = load(model) if use_fid else None  # cached by ``load``: one load per model
                context, fp = inputs(clf) if clf is not None else (None, hu_fp)
                try:
                    score = scorer.score(item, item_mask, clf=clf, hu=hu if use_fid else None,
                                         label=label if use_fid else None, hu_fp=fp, more=more, context=context)
                    if marker is not None:  # against the known shortcut: mass on it, and the pointing game
                        hit = marker[0](marker[1])
                        score = replace(score, gt_relevance_mass=hit.mass, gt_pointing_hit=hit.hit)
                    scores.append(score)
                except ValueError as e:  # this map cannot be scored (e.g. constant); the others can
                    scores.append(f"{item[0]} · {item[1]}: {e}")
                yield Step(len(groups) + len(scores), total)
            for row in volume_rows:
                scores.append(volume_score(row, mask3d))
                yield Step(len(groups) + len(scores), total)
            return scores

        self.compute_button.enabled = False
        runs_before = scorer.fidelity_runs
        self.status.value = f"scoring {total} map(s)…"
        self.worker = start_worker(job, total=total, description="Metrics",
                                   on_done=lambda sc: self._show(sc, layers, data0, idx, mask_layer.name,
                                                                 runs_before, no_fid_3d, more),
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
              runs_before: int, no_fid_3d: bool = False, more: tuple[str, ...] = ()) -> None:
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
            ScoreNote(slice=idx, mask=mask_name, auc=s.auc, max_dice=s.max_dice, F=s.fidelity_continuous,
                      mask_note=self._mask_note).write(ly)
        self.table.fill(scores, idx, more)
        self._plot()
        self.compute_button.enabled = True
        best = max(scores, key=lambda s: s.auc if np.isfinite(s.auc) else -np.inf)
        new_fid = self.scorer.fidelity_runs - runs_before
        rho, n_rho = rank_correlation([s.auc for s in scores], [s.fidelity_continuous for s in scores])
        text = (f"{len(scores)} maps scored; best AUC {best.auc:.3f} ({best.method} · {best.variant}"
                f"{' · XRAI' if best.map_type == 'region' else ''}{' · volume' if best.scope == 'volume' else ''})")
        n_fid = sum(np.isfinite(s.fidelity_continuous) for s in scores)
        if n_fid:
            text += f"; fidelity: {new_fid} computed, {n_fid - new_fid} from cache"
        if np.isfinite(rho):
            text += f"; AUC vs F rank correlation ρ = {rho:+.2f} over all {n_rho} maps (the plot: those it shows)"
        if "faithfulness_correlation" in more and not (self.with_fidelity.value and not no_fid_3d):
            text += "; faith. r needs the model: tick fidelity (a 3D model's: see the study)"
        if no_fid_3d and self.with_fidelity.value:
            text += "; no fidelity per slice for a 3D model's maps (it answers for the volume: see the study)"
        marked = [s for s in scores if np.isfinite(s.gt_relevance_mass)]
        if marked:
            hits = [s for s in marked if s.gt_pointing_hit == 1]
            misses = [s for s in marked if s.gt_pointing_hit != 1]
            fewer, word = (hits, "") if len(hits) <= len(misses) else (misses, "all but ")
            names = ", ".join(f"{s.method} · {s.variant}{' · XRAI' if s.map_type == 'region' else ''}"
                              for s in fewer)
            named = f" ({word}{names})" if 0 < len(fewer) <= MAX_NAMED else " (the marker column)" if fewer else ""
            text += f". {len(hits)} of {len(marked)} maps point at the known shortcut “{self._shortcut_name}”{named}"
        elif self._shortcut_note:
            text += "." + self._shortcut_note.rstrip(".")
        if self._mask_note:
            text += f". Note: {self._mask_note}"
        if skipped:
            text += f". Not scored: {'; '.join(skipped)}"
        if changed:
            text += f". {len(changed)} map(s) changed while scoring: click Compute again"
        self.status.value = text

    def visible_scores(self) -> list[MapScore]:
        """The scores whose curves the plots show (``curves of``; the volume rows when the table
        shows only the volume)."""
        want = {"pixel maps": {"pixel"}, "XRAI region maps": {"region"}, "all maps": {"pixel", "region"}}
        kinds = want[self.curves_of.value]
        shown = [s for s in self.scores if s.map_type in kinds or (s.method, s.variant, s.map_type) == self._highlight]
        # one scope at a time in the plots (their styles say method, variant and map, not scope):
        # with both in the table, the curves are the slice's
        plotted = "volume" if self.scope.value == "volume" else "slice"
        shown = [s for s in shown if s.scope == plotted]
        if not self.with_fidelity.value:
            shown = [replace(s, fidelity_continuous=float("nan"), fidelity_curves=None) for s in shown]
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
        r = self.table.selected_score()
        if r is None or not self.scores:
            return
        s, layer = self.scores[r], self._layers[r]
        self._highlight = (s.method, s.variant, s.map_type)
        if layer in self.viewer.layers:
            show_map(self.viewer, layer)
        self._plot()

    def export(self, path: Path) -> list[Path]:
        """Write the table (CSV) and the plots (PNG, SVG) next to ``path``."""
        if not self.scores:
            show_error("Metrics: nothing to export yet; click Compute")
            return []
        files = export_scores(path, self.scores, self.visible_scores(), self._highlight)
        self.status.value = "exported " + ", ".join(f.name for f in files)
        return files
