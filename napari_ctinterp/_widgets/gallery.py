"""Gallery dock widget: every attribution map of the current slice side by side, scored.

Small multiples of the map layers of one CT layer (rows = methods, columns = variants, each
variant's pixel map next to its XRAI region map), with the reference-mask contour and the
localisation scores in each tile's title; a click on a tile shows that map in the viewer. The
gallery follows the viewer (slice, new or updated maps, painting), debounced; scores are computed
in a background worker and cached, so scrolling or painting never blocks the UI for long. The
drawing itself is in ``gallery_figure``.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import napari
import numpy as np
from magicgui.widgets import ComboBox, Container, FileEdit, PushButton
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from napari.utils.notifications import show_error
from qtpy.QtCore import QSize, Qt, QTimer
from qtpy.QtWidgets import QFrame, QScrollArea, QSizePolicy

from ..io.evidence import evidence_mask
from ..metrics.table import MapScorer, fingerprint
from ..progress import Step
from .dock_layout import hidden_tab, on_destroyed, on_shown, wrapping_label
from .gallery_figure import TITLE_SCORES, GalleryState, Tile, draw_gallery, grid, score_tile, take_scores, tile_key
from .known_shortcut import LEGEND, follow_new_marker, marker_check, shortcut_combo
from .layer_choice import ct_layers, current_slice_index, default_ct, rewatch
from .layer_info import ScoreNote, slice_of
from .map_voxels import axial_mip, is_volume_map
from .maps import map_info, map_layers, map_title, model_rows, robust_limits, show_map
from .view_3d_panel import View3DPanel
from .workers import JobCancelled, start_worker

DOCK_FONT, SAVE_FONT, SAVE_TILE_IN = 6.5, 9.0, 2.2  # title points; saved figure: inches per tile
DEBOUNCE_MS, MAX_DOCK_WIDTH = 200, 520
#: What a volume's tiles show: the current slice, or the axial MIP of |map| (``map_voxels.axial_mip``).
TILES_SHOW = ("slice", "MIP")


class _CanvasScroll(QScrollArea):
    """A scroll area that asks for its canvas' full height (Qt's default hint is much smaller)."""

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        inner = self.widget().minimumHeight() if self.widget() else 0
        return QSize(super().sizeHint().width(), inner + 2 * self.frameWidth())


class GalleryWidget(Container):
    """Dock widget: every map of the chosen CT layer on the current slice; click a tile to show it."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.image = ComboBox(label="CT layer", choices=self._image_choices)
        self.mask = ComboBox(label="reference mask", choices=self._mask_choices)
        self.shortcut = shortcut_combo(napari_viewer)
        self.tiles_show = ComboBox(label="tiles show", choices=list(TILES_SHOW), value=TILES_SHOW[0],
                                   tooltip="a volume's maps: the current slice, or the axial maximum-intensity "
                                           "projection of |map| over the explained slices (titles: the slice's scores)")
        tip = "the scores in each tile's title (against the reference mask; F comes from the Metrics panel)"
        self.first_score = ComboBox(choices=[(v, k) for k, v in TITLE_SCORES.items()], value="auc", tooltip=tip)
        self.second_score = ComboBox(choices=[(v, k) for k, v in TITLE_SCORES.items()], value="max_dice",
                                     tooltip=tip)
        self.title_row = Container(layout="horizontal", widgets=[self.first_score, self.second_score],
                                   label="tile titles", labels=False)
        self.title_row.margins = (0, 0, 0, 0)
        self.view_3d = View3DPanel(napari_viewer, self._first_tile_layer)
        self.status = wrapping_label()
        self.save_path = FileEdit(label="save figure", mode="w", filter="*.png *.svg",
                                  value=Path.home() / "ctinterp_gallery.png")
        self.save_button = PushButton(text="Save figure (PNG or SVG)")
        self.extend([self.image, self.mask, self.shortcut, self.tiles_show, self.title_row, *self.view_3d.widgets,
                     self.status,
                     self.save_path, self.save_button])
        self.figure = Figure(figsize=(MAX_DOCK_WIDTH / 100, 1.2))
        self.canvas = FigureCanvasQTAgg(self.figure)
        # In a scroll area: in a short window the tiles scroll instead of squeezing the other fields.
        self.scroll = _CanvasScroll()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.scroll.setWidget(self.canvas)
        self.native.layout().insertWidget(list(self).index(self.status) + 1, self.scroll)  # above "save"
        self.native.setMaximumWidth(MAX_DOCK_WIDTH)
        self.state = GalleryState(image=None, index=None)
        self.worker = None
        self._closed, self._drawn_width = False, 0.0
        # map rankings, kept across mask edits; each tile's scores, per layer data, slice and mask
        self._scorer = MapScorer()
        self._watched: napari.layers.Labels | None = None
        self._watched_shortcut: napari.layers.Labels | None = None
        self._timer = QTimer(self.native)  # deleted with the dock: never fires into a closed widget
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(lambda: self._redraw(score_now=False))
        self.canvas.mpl_connect("button_press_event", self._on_press)
        self.canvas.mpl_connect("resize_event", self._on_resize)
        self.save_button.changed.connect(lambda: self.save(Path(str(self.save_path.value))))
        self.image.changed.connect(self.schedule)
        self.tiles_show.changed.connect(self.schedule)
        self.first_score.changed.connect(self.schedule)
        self.second_score.changed.connect(self.schedule)
        self.mask.changed.connect(self._watch_mask)
        self.shortcut.changed.connect(self._watch_shortcut)
        self._connect(True)
        on_destroyed(self, "_disconnect")
        self._stale = False
        on_shown(self, lambda: self._render() if self._stale else None)
        self._watch_mask()
        self._watch_shortcut()
        self._start_on_explained_image()
        self._redraw(score_now=False)

    def _start_on_explained_image(self) -> None:
        """Docked after Explain ran: start on the image of the shown (else the newest) map."""
        maps = map_layers(self.viewer)
        shown = [ly for ly in maps if ly.visible]
        layer = (shown or maps or [None])[-1]
        info = map_info(layer) if layer is not None else None
        if info is not None and info.image in self.viewer.layers:
            self.image.value = self.viewer.layers[info.image]
        elif default_ct(self.viewer) is not None:
            self.image.value = default_ct(self.viewer)

    # -- following the viewer ----------------------------------------------------------------
    def _image_choices(self, _w: Any = None) -> list[tuple[str, Any]]:
        return [(ly.name, ly) for ly in ct_layers(self.viewer)]

    def _mask_choices(self, _w: Any = None) -> list[tuple[str, Any]]:
        return [(ly.name, ly) for ly in self.viewer.layers if isinstance(ly, napari.layers.Labels)
                and "ctinterp_regions" not in ly.metadata]

    @property
    def tiles(self) -> list[Tile]:
        """The tiles drawn now (layer, axes and bbox, title, scores)."""
        return self.state.tiles

    def schedule(self, *_: Any) -> None:
        """Redraw soon: a burst of events (scrolling, painting, a run of Explain) gives one redraw."""
        if not self._closed:
            self._timer.start()

    def _disconnect(self) -> None:
        self._connect(False)  # the dock was closed: stop following the viewer

    def _connect(self, on: bool) -> None:
        """(Dis)connect the viewer's events; off when the dock is closed."""
        self._closed = not on
        pairs = [(self.viewer.dims.events.current_step, self.schedule),
                 (self.viewer.layers.events.inserted, self._on_layers),
                 (self.viewer.layers.events.removed, self._on_layers)]
        for ly in self.viewer.layers:
            pairs += self._layer_events(ly)
        for emitter, callback in pairs:
            if on:
                emitter.connect(callback)
            else:
                emitter.disconnect(callback)
        if not on:
            self._watch_mask(None)
            self._watch_shortcut(None)

    def _layer_events(self, layer: napari.layers.Layer) -> list[tuple[Any, Any]]:
        """A map layer's new data or metadata (Explain re-run) redraws; its visibility moves the frame."""
        if map_info(layer) is None:
            return []
        return [(layer.events.data, self.schedule), (layer.events.metadata, self.schedule),
                (layer.events.visible, self._highlight)]

    def _on_layers(self, event: Any) -> None:
        self.image.reset_choices()
        self.mask.reset_choices()
        layer, info = event.value, map_info(event.value)
        if event.type == "inserted":
            follow_new_marker(self.shortcut, layer)
        else:
            self.shortcut.reset_choices()
        if event.type == "inserted":
            for emitter, callback in self._layer_events(layer):
                emitter.connect(callback)
            current = self.image.value
            # Maps of another CT while the chosen one has none: follow the Explain run.
            if info is not None and (current is None or not map_layers(self.viewer, current.name)) \
                    and info.image in self.viewer.layers:
                self.image.value = self.viewer.layers[info.image]
        else:
            for emitter, callback in self._layer_events(layer):
                emitter.disconnect(callback)
        self.schedule()

    def _watch_mask(self, layer: Any = ...) -> None:
        # set_data: undo / redo
        self._watched = rewatch(self._watched, self.mask.value if layer is ... else layer, self._on_mask_edit)
        self._on_mask_edit()

    def _watch_shortcut(self, layer: Any = ...) -> None:
        """Redraw when the known shortcut is chosen or repainted (its tiles' marker scores change)."""
        self._watched_shortcut = rewatch(self._watched_shortcut, self.shortcut.value if layer is ... else layer,
                                         self.schedule)
        self.schedule()

    def _on_mask_edit(self, *_: Any) -> None:
        self.schedule()  # napari may emit ``paint`` before the new labels are written: compare at the redraw

    def _on_resize(self, _event: Any) -> None:
        if abs(self.figure.get_figwidth() - self._drawn_width) > 0.05 and self.state.tiles:
            self.schedule()  # tiles follow the dock's width once dragging it pauses

    # -- state and scores --------------------------------------------------------------------
    def _collect(self) -> GalleryState:
        """Tiles of the chosen CT layer on the current slice, with the cached scores filled in."""
        image = self.image.value
        volume = image is not None and np.ndim(image.data) == 3 and np.shape(image.data)[0] > 1
        for w in (self.tiles_show, *self.view_3d.rows):
            w.visible = volume  # a single slice has neither a projection nor a 3D view
        if image is None:
            return GalleryState(None, None, message="Open a CT image first (File ▸ Open Sample ▸ CT Interpretability).")
        idx = current_slice_index(self.viewer, image)
        state, layers = GalleryState(image.name, idx), map_layers(self.viewer, image.name)
        state.projection = volume and self.tiles_show.value == "MIP"
        if not layers:
            state.message = f"No maps of “{image.name}” yet: run Explain on it and its maps appear here."
            return state
        # one row per method and explained class (a class other than the predicted one: its own row, under the
        # method's), and per model when an earlier model's maps are kept beside the last run's
        infos = [map_info(ly) for ly in layers]
        rows = model_rows(infos)
        keys = [(r, i.variant, i.kind) for r, i in zip(rows, infos)]
        methods, state.columns = grid(keys)
        state.n_rows = len(methods)
        state.mask, note = self._mask_on(idx)
        if state.projection:
            state.outline = self._mask_projection()
        key = _score_key(state)
        for ly, info, row, (method, variant, kind) in zip(layers, infos, rows, keys):
            values = slice_of(ly.data, info, idx)
            ranks = ly.metadata.get("ranks") if kind == "region" and values is not None else None
            model = row[len(info.row_method):]  # `` · <model>`` when several models' maps are shown
            tile = Tile(ly, map_title(info) + model, methods.index(method),
                        state.columns.index((variant, kind)), values,
                        None if ranks is None else slice_of(ranks, info, idx), source=ly.data,
                        title_keys=self.title_keys)
            if state.projection and is_volume_map(ly, info):
                tile.picture = axial_mip(ly, info)  # drawn; the title keeps the slice's scores
                tile.limits = robust_limits(tile.picture[::4, ::4])
            if values is not None:
                if tile.picture is None:
                    tile.limits = robust_limits(values[::4, ::4])
                scores = ScoreNote.from_layer(ly)  # not ``note``: that is the mask's note of the message
                if scores is not None and scores.slice == idx and scores.F is not None and np.isfinite(scores.F):
                    tile.fidelity = float(scores.F)
                self._lookup(tile, key)
            state.tiles.append(tile)
        note += self._check_marker(state)
        where = "" if idx is None else f", slice {idx}"
        mip = " Tiles: axial MIP of |map| over the explained slices (scores: this slice's; cyan: the mask's " \
              "projection)." if state.projection else ""
        state.message = f"{len(layers)} maps of “{image.name}”{where}. Click a tile to show that map.{mip}{note}"
        return state

    def _check_marker(self, state: GalleryState) -> str:
        """Each tile against the known shortcut on this slice (``metrics.MarkerCheck``: one distance
        map, then a sum and a maximum per map — milliseconds for a slice's maps); the message's part."""
        shaped = [t for t in state.tiles if t.values is not None]
        if self.shortcut.value is None or not shaped:
            return ""
        check, why = marker_check(self.viewer, self.shortcut.value, shaped[0].values.shape)
        if check is None:
            return why
        state.marker = check.marker
        for t in shaped:
            if t.values.shape == check.marker.shape:
                t.marker = check(t.values)
        hits = [t for t in shaped if t.points_at_marker]
        return (f" {len(hits)} of {len(shaped)} maps point at the known shortcut “{self.shortcut.value.name}” "
                f"(magenta outline; their titles in magenta). {LEGEND}.")

    def _mask_on(self, idx: int | None) -> tuple[np.ndarray | None, str]:
        """The reference mask on slice ``idx`` (None if there is none or it is empty), and a note."""
        layer = self.mask.value
        if layer is None:
            return None, " No reference mask (a Labels layer): no scores."
        data = np.asarray(layer.data)
        mask_idx = current_slice_index(self.viewer, layer)
        mask = evidence_mask(data[mask_idx if mask_idx is not None else 0] if data.ndim == 3 else data)
        if not mask.any():
            return None, " The reference mask is empty on this slice: paint it to get scores."
        return mask, ""

    def _mask_projection(self) -> np.ndarray | None:
        """The reference mask projected along z (any slice), for the MIP tiles' outline."""
        data = None if self.mask.value is None else np.asarray(self.mask.value.data)
        projected = evidence_mask(data).any(axis=0) if data is not None and data.ndim == 3 else None
        return projected if projected is not None and projected.any() else None

    @property
    def title_keys(self) -> tuple[str, ...]:
        """The two scores the tile titles show (one, when both choices name the same)."""
        return tuple(dict.fromkeys((self.first_score.value, self.second_score.value)))

    def _first_tile_layer(self) -> napari.layers.Image | None:
        """The map of the first tile (what "Show in 3D" shows when no map is shown)."""
        return self.state.tiles[0].layer if self.state.tiles else None

    def _lookup(self, tile: Tile, key: tuple) -> None:
        """The tile's scores when they are known (scored on its data, slice and mask before)."""
        known, score = self._scorer.scored(tile.source, tile_key(tile, key))
        if known:
            take_scores(tile, score)

    def _missing(self) -> list[Tile]:
        m = self.state.mask
        return [t for t in self.state.tiles if t.values is not None and not t.scored and m is not None
                and m.shape == t.values.shape]

    def _score_now(self) -> None:
        key = _score_key(self.state)
        for t in self._missing():
            score_tile(t, self.state.mask, self._scorer, key)
            self._lookup(t, key)

    def _score_in_background(self) -> None:
        missing, mask = self._missing(), self.state.mask
        if not missing or self.worker is not None:
            return
        key = _score_key(self.state)

        def job() -> Generator[Step, None, None]:
            for i, t in enumerate(missing):
                score_tile(t, mask, self._scorer, key)  # kept by the scorer even if the slice changes meanwhile
                yield Step(i + 1, len(missing))

        def done(_: None) -> None:
            self.worker = None
            if self._closed:
                return
            now = _score_key(self.state)
            for t in self.state.tiles:
                if not t.scored:
                    self._lookup(t, now)
            self._render()
            self._score_in_background()  # what the current slice still lacks

        def failed(e: BaseException) -> None:
            self.worker = None
            if not isinstance(e, JobCancelled):
                self.status.value = f"Scores failed: {e}"

        self.worker = start_worker(job, total=len(missing), description="Gallery scores", on_done=done,
                                   on_error=failed)

    # -- drawing and actions -----------------------------------------------------------------
    def refresh(self) -> None:
        """Redraw now, scores included (synchronous)."""
        self._timer.stop()
        self._redraw(score_now=True)

    def _redraw(self, *, score_now: bool) -> None:
        self.state = self._collect()
        self.status.value = self.state.message
        if score_now:
            self._score_now()
        self._render()
        if not score_now:
            self._score_in_background()

    def _render(self) -> None:
        """Draw the current tiles (no new scores, no new data): fast enough for every resize.

        Behind another tab nothing is drawn; the tiles are drawn when the tab is shown.
        """
        if hidden_tab(self):
            self._stale = True
            return
        self._stale = False
        fig = self.figure
        if self.state.tiles:
            height = draw_gallery(fig, self.state, font=DOCK_FONT)
        else:
            fig.clear()
            height = 0.1
        self._drawn_width = fig.get_figwidth()
        pixels = int(round(height * fig.dpi / self.canvas.device_pixel_ratio))
        self.canvas.setFixedHeight(pixels)
        self.scroll.setMaximumHeight(pixels + 2 * self.scroll.frameWidth())  # napari's style gives it a frame
        self.scroll.setMinimumHeight(min(pixels, 160))
        self.scroll.setVisible(bool(self.state.tiles))
        self.scroll.updateGeometry()
        self.canvas.draw_idle()

    def _highlight(self, *_: Any) -> None:
        """Frame the tiles of the visible maps."""
        for t in self.state.tiles:
            if t.frame is not None:
                t.frame.set_visible(bool(t.layer.visible))
        self.canvas.draw_idle()

    def _on_press(self, event: Any) -> None:
        x, y = event.xdata, event.ydata
        if event.inaxes is None or x is None:
            return
        hit = next((t for t in self.state.tiles if t.bbox[0] <= x <= t.bbox[2] and t.bbox[1] <= y <= t.bbox[3]), None)
        if hit is not None:
            self.click_tile(hit.layer.name)

    def click_tile(self, layer_name: str) -> None:
        """Show the map of the tile of ``layer_name`` in the viewer (what a click on the tile does)."""
        tile = next((t for t in self.state.tiles if t.layer.name == layer_name), None)
        if tile is not None and tile.layer in self.viewer.layers:
            show_map(self.viewer, tile.layer)
            self._highlight()

    def save(self, path: Path | str) -> Path:
        """Write the gallery as a larger figure, PNG or SVG by the suffix, scores included."""
        path = Path(path).expanduser()
        if path.suffix.lower() not in (".png", ".svg"):
            show_error(f"Gallery: save as .png or .svg, not {path.suffix or 'no suffix'!r}")
            return path
        if not self.state.tiles:
            show_error("Gallery: nothing to save yet: run Explain first")
            return path
        self._score_now()
        fig = Figure(figsize=(SAVE_TILE_IN * max(len(self.state.columns), 1), 1.0))
        where = "" if self.state.index is None else f", slice {self.state.index}"
        mask = f", reference mask “{self.mask.value.name}” in cyan" if self.state.mask is not None else ""
        what = "axial MIP of |map| (scores: the slice's)" if self.state.projection else "|map|"
        draw_gallery(fig, self.state, font=SAVE_FONT, line=0.9,
                     title=f"{self.state.image}{where}{mask}. {what}, each from its median to its 99.5th percentile")
        for t in self.state.tiles:
            t.frame.set_visible(False)  # the dock's selection is no part of the figure
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=200 if path.suffix.lower() == ".png" else None)
        self._render()  # the tiles' artists belong to the dock's figure again
        self.status.value = f"Saved {path}"
        return path


def _score_key(state: GalleryState) -> tuple:
    """What a tile's scores depend on besides its layer's data: the slice and the mask on it."""
    return (state.index, fingerprint(state.mask) if state.mask is not None else None)
