"""The gallery's figure: tiles of attribution maps with the mask outline and scores (no Qt).

``draw_gallery`` lays out square tiles (rows = methods, columns = variants × pixel/XRAI) in one
matplotlib axes whose data units are inches: 30 axes would cost ~1 s to build, one costs
milliseconds. The dock widget (``gallery.py``) and the saved figure both draw with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..explain import ALL_METHODS, VARIANTS
from ..metrics import MarkerHit
from ..metrics.table import MapScore, MapScorer

if TYPE_CHECKING:
    import napari

CMAP, CONTOUR_COLOUR, HIGHLIGHT_COLOUR = "inferno", "#00e5ff", "#1f8fff"
#: The known shortcut's outline, and the title of a map whose top pixel points at it.
MARKER_COLOUR = "#ff2bd6"


#: The scores a tile's title can show (two of them, chosen in the Gallery), and their short names.
TITLE_SCORES: dict[str, str] = {"auc": "AUC", "max_dice": "Dice", "auprc": "AUPRC", "iou_otsu": "IoU",
                                "topk_intersection": "top-k", "relevance_mass": "mass", "sparseness": "sparse",
                                "complexity": "entropy"}


@dataclass
class Tile:
    """One map of the gallery: its layer, grid cell, data on the shown slice, scores and artists."""

    layer: napari.layers.Image
    name: str
    row: int
    col: int
    values: np.ndarray | None = field(repr=False)  # |map| on the shown slice; None: not computed there
    ranks: np.ndarray | None = field(default=None, repr=False)
    limits: tuple[float, float] = (0.0, 1.0)
    auc: float | None = None
    dice: float | None = None
    fidelity: float | None = None
    scored: bool = False  # looked up or computed (the scores stay None where they are undefined)
    ax: Any = None  # the gallery's axes (shared by all tiles); ``bbox`` is this tile's part of it
    bbox: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    text: Any = None
    frame: Any = None
    source: Any = field(default=None, repr=False)  # the layer's data ``values`` were read from
    picture: np.ndarray | None = field(default=None, repr=False)  # drawn instead of ``values`` (a MIP)
    marker: MarkerHit | None = None  # against the known shortcut (``known_shortcut``), when one is chosen
    title_keys: tuple[str, ...] = ("auc", "max_dice")  # the two scores of the title (``TITLE_SCORES``)
    extra: dict = field(default_factory=dict)  # the title's scores other than AUC and max Dice

    @property
    def shown(self) -> np.ndarray | None:
        """What the tile draws: ``picture`` (the map's MIP) when set, else ``values``."""
        return self.picture if self.picture is not None else self.values

    @property
    def kind(self) -> str:
        """``region`` for an XRAI region map (it has ranks), else ``pixel``."""
        return "region" if self.ranks is not None else "pixel"

    def scores(self) -> list[str]:
        """``AUC 0.91``, ``Dice 0.62`` (the chosen two, ``title_keys``), ``F 0.31``: the scores known
        for this slice."""
        known = {"auc": self.auc, "max_dice": self.dice, **self.extra} if self.auc is not None else {}
        out = [f"{TITLE_SCORES[k]} {known[k]:.2f}" for k in self.title_keys
               if known.get(k) is not None and np.isfinite(known[k])]
        out += [f"F {self.fidelity:.2f}"] if self.fidelity is not None else []
        return out + ([marker_text(self.marker)] if self.marker is not None else [])

    @property
    def points_at_marker(self) -> bool:
        """The map's top pixel lies on the known shortcut."""
        return self.marker is not None and self.marker.hit == 1

    @property
    def title(self) -> str:
        """Short name, then the scores on one line."""
        return "\n".join([self.name] + ([" · ".join(self.scores())] if self.scores() else []))


@dataclass
class GalleryState:
    """What one drawing shows: the tiles, the grid, the slice and the mask on it."""

    image: str | None
    index: int | None
    tiles: list[Tile] = field(default_factory=list)
    n_rows: int = 0
    columns: list[tuple[str, str]] = field(default_factory=list)  # (variant, kind) of each column
    mask: np.ndarray | None = None
    message: str = ""
    projection: bool = False  # the tiles show each map's axial MIP (``Tile.picture``)
    outline: np.ndarray | None = None  # the contour drawn (default: ``mask``; the MIPs: its projection)
    marker: np.ndarray | None = None  # the known shortcut on this slice (its contour drawn in magenta)


def marker_text(hit: MarkerHit, *, short: bool = False) -> str:
    """``marker 62 % ✓``: the share of |map| on the known shortcut, and whether the map's top points
    at it (``short``: without the word, for the Metrics panel's column)."""
    word = "" if short else "marker "
    if not np.isfinite(hit.mass):
        return f"{word}—"
    return f"{word}{100 * hit.mass:.0f} % {'✓' if hit.hit == 1 else '✗'}"


def grid(keys: list[tuple[str, str, str]]) -> tuple[list[str], list[tuple[str, str]]]:
    """Rows (methods) and columns ((variant, kind)) present, in the canonical order."""
    def order(row: str) -> tuple[int, int, str]:  # the method's canonical place; its own rows (a class, a model) after
        base = row.split(" · ")[0]
        return (ALL_METHODS.index(base) if base in ALL_METHODS else len(ALL_METHODS), row != base, row)

    methods = sorted({k[0] for k in keys}, key=order)
    variants = [v for v in VARIANTS if any(k[1] == v for k in keys)] + sorted({k[1] for k in keys} - set(VARIANTS))
    return methods, [(v, kind) for v in variants for kind in ("pixel", "region") if any(k[1:] == (v, kind)
                                                                                       for k in keys)]


@lru_cache(maxsize=512)
def _text_width(text: str) -> float:
    """Width in points of ``text`` at 1 pt (matplotlib's default font)."""
    from matplotlib.textpath import TextPath

    return TextPath((0, 0), text, size=1.0).get_extents().width


def wrap_title(tile: Tile, width_pt: float, font: float) -> str:
    """``tile.title`` on as few lines as fit ``width_pt``: the name, then the scores, each broken at `` · ``."""
    lines: list[str] = []
    for parts in (tile.name.split(" · "), tile.scores()):
        first = len(lines)
        for part in parts:
            if len(lines) > first and _text_width(f"{lines[-1]} · {part}") * font <= width_pt:
                lines[-1] = f"{lines[-1]} · {part}"
            else:
                lines.append(part)
    return "\n".join(lines)


def draw_gallery(fig: Figure, state: GalleryState, *, font: float, line: float = 0.5,
                 title: str | None = None) -> float:
    """Draw ``state`` on ``fig`` (cleared): square tiles filling its width, a title line on top if given.

    The figure's height is set to what the rows need; returns it (inches). Each tile's ``ax``,
    ``bbox`` (its cell with the title, in inches from the top left), ``text`` and ``frame`` are set.
    """
    n_cols = max(len(state.columns), 1)
    width = fig.get_figwidth()
    cell, pad = width / n_cols, 0.03 * font / 6.5
    side = cell - 2 * pad
    titles = [wrap_title(t, side * 72, font) for t in state.tiles]
    title_h = (max((s.count("\n") + 1 for s in titles), default=1) * 1.2 * font + 2) / 72
    head = 2.0 * font / 72 if title else 0.0
    row_h = title_h + side + 2 * pad
    height = head + row_h * max(state.n_rows, 1)
    fig.set_figheight(height)
    fig.clear()
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_autoscale_on(False)
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    if title:
        ax.text(width / 2, head / 2, title, ha="center", va="center", fontsize=font * 1.1)
    contour = state.outline if state.outline is not None else state.mask
    outline, marker_outline = _outline(contour), _outline(state.marker)
    segments, marker_segments = [], []
    for t, text in zip(state.tiles, titles):
        x0, y0 = t.col * cell + pad, head + t.row * row_h + pad + title_h
        t.ax, t.bbox = ax, (x0, y0 - title_h, x0 + side, y0 + side)
        widest = max(_text_width(part) for part in text.split("\n"))  # a word wider than the tile shrinks
        t.text = ax.text(x0 + side / 2, y0 - 3 / 72, text, ha="center", va="bottom", linespacing=1.1,
                         fontsize=min(font, 0.98 * (cell - pad) * 72 / widest),
                         color=MARKER_COLOUR if t.points_at_marker else "black")
        shown = t.shown
        if shown is None:
            ax.add_patch(Rectangle((x0, y0), side, side, facecolor="#e4e4e4", edgecolor="none"))
            ax.text(x0 + side / 2, y0 + side / 2, "not computed\nfor this slice", ha="center", va="center",
                    fontsize=font * 0.9, color="#555555")
        else:
            # Mean-pooled to ~1.5 screen pixels per value first: resampling 30 full maps is slow.
            k = max(1, int(min(shown.shape) / (1.5 * side * fig.dpi)))
            values, (h, w) = _pool(shown, k), shown.shape
            scale = side / max(h, w)
            left, top = x0 + (side - w * scale) / 2, y0 + (side - h * scale) / 2
            ax.imshow(values, cmap=CMAP, vmin=t.limits[0], vmax=t.limits[1], aspect="auto", interpolation="antialiased",
                      extent=(left, left + values.shape[1] * k * scale, top + values.shape[0] * k * scale, top))
            if contour is not None and contour.shape == shown.shape:
                segments.append(np.column_stack([left + outline[:, 1] * scale, top + outline[:, 0] * scale]))
            if state.marker is not None and state.marker.shape == shown.shape:
                marker_segments.append(np.column_stack([left + marker_outline[:, 1] * scale,
                                                        top + marker_outline[:, 0] * scale]))
        t.frame = ax.add_patch(Rectangle((x0, y0), side, side, fill=False, linewidth=4.4 * line,
                                         edgecolor=HIGHLIGHT_COLOUR, visible=bool(t.layer.visible)))
    if segments:
        ax.add_collection(LineCollection(segments, colors=CONTOUR_COLOUR, linewidths=line, alpha=0.8), autolim=False)
    if marker_segments:
        ax.add_collection(LineCollection(marker_segments, colors=MARKER_COLOUR, linewidths=line, alpha=0.9),
                          autolim=False)
    return height


def _pool(values: np.ndarray, k: int) -> np.ndarray:
    """Mean of ``k``×``k`` blocks (the last partial rows and columns dropped)."""
    if k <= 1:
        return values
    h, w = (n // k * k for n in values.shape)
    return values[:h, :w].reshape(h // k, k, w // k, k).mean(axis=(1, 3))


def _outline(mask: np.ndarray | None) -> np.ndarray:
    """The mask's outline as (row, col) points in image coordinates, one NaN row between polylines."""
    if mask is None:
        return np.empty((0, 2))
    from skimage.measure import find_contours

    parts = [p for c in find_contours(mask.astype(np.float32), 0.5) for p in (c + 0.5, np.full((1, 2), np.nan))]
    return np.concatenate(parts) if parts else np.empty((0, 2))


def score_tile(tile: Tile, mask: np.ndarray, scorer: MapScorer, key: tuple) -> MapScore | None:
    """The scores of a tile (its title's two among them), or None where they are undefined (e.g. a
    full mask).

    The scorer keeps each map's ranking (re-scoring after the mask is painted costs milliseconds
    per map) and remembers the result for the tile's ``source`` (its layer's data) and ``key``
    (the slice and the mask on it: ``MapScorer.score_of``) with the title's scores.
    """
    return scorer.score_of(tile.source, tile_key(tile, key), ("", "", tile.kind, tile.values, tile.ranks), mask,
                           more=tile.title_keys)


def tile_key(tile: Tile, key: tuple) -> tuple:
    """What a tile's remembered scores depend on: the slice and mask (``key``), its map type and
    the scores its title shows."""
    return (*key, tile.kind, tile.title_keys)


def take_scores(tile: Tile, score: MapScore | None) -> None:
    """Set the tile's AUC, max Dice and its title's other scores from ``score`` (None: undefined)."""
    tile.scored = True
    if score is None:
        tile.auc, tile.dice, tile.extra = None, None, {}
        return
    tile.auc, tile.dice = float(score.auc), float(score.max_dice)
    tile.extra = {k: float(getattr(score, k)) for k in tile.title_keys if k not in ("auc", "max_dice")}
