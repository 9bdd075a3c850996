"""The Metrics panel's table of scores and its export (CSV of every column, the plots as PNG + SVG).

One row per scored map (``metrics.MapScore``), the visible columns of ``TABLE``, sortable (best AUC
first), one row selected at a time; each cell keeps the index of its score (``UserRole``), so a
sorted table still finds its map.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from ..metrics.ground_truth import MarkerHit
from ..metrics.schema import LABELS, MARKER_SCORES, MORE_SCORES, SCORE_INFO
from ..metrics.table import MapScore, write_scores_csv
from .gallery_figure import marker_text
from .metric_plots import draw_curves

#: Visible table columns (header, MapScore field); every field is in the CSV and the row's tooltip.
TABLE = tuple((LABELS[k], k) for k in ("method", "variant", "map_type", "auc", "max_dice", "fidelity_continuous",
                                        "scope"))
AUC_COLUMN = [k for _h, k in TABLE].index("auc")
#: Added after ``TABLE`` when a known shortcut was chosen: one narrow column, "74 % ✓" (the share of
#: |map| on it; its top pixel on it or not), sorted by the share (the table then sorts by it).
MARKER_TABLE = (("marker", "gt_relevance_mass"),)


class _NumberItem(QTableWidgetItem):
    """A table cell that sorts by its number (empty cells last)."""

    def __init__(self, value: float) -> None:
        finite = bool(np.isfinite(value))
        super().__init__(f"{value:.3f}" if finite else "—")
        self.value = float(value) if finite else -np.inf

    def __lt__(self, other: QTableWidgetItem) -> bool:  # noqa: D105
        return self.value < getattr(other, "value", -np.inf)


class ScoreTable(QTableWidget):
    """The sortable table of scores; the sort column's header says the order (▼ / ▲)."""

    def __init__(self) -> None:
        super().__init__(0, len(TABLE))
        self.columns = TABLE
        self.setHorizontalHeaderLabels([_header(h) for h, _ in TABLE])
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().setVisible(False)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSortingEnabled(True)
        # Qt styles disagree on which way the sort arrow points: say it in the header text instead.
        self.horizontalHeader().setSortIndicatorShown(False)
        self.horizontalHeader().sortIndicatorChanged.connect(self._label_sort)
        self.setMinimumHeight(180)

    def fill(self, scores: list[MapScore], idx: int | None = None, more: tuple[str, ...] = ()) -> None:
        """One row per score (``idx``: the slice scored, shown in the "on" column), best AUC first;
        ``more``: the scores beyond the paper's shown after F; with a known shortcut (scores with
        ``gt_relevance_mass``) its columns too, most on the marker first."""
        self.setSortingEnabled(False)
        self.clearContents()
        marker = any(np.isfinite(s.gt_relevance_mass) for s in scores)
        extra = tuple((LABELS[k], k) for k in MORE_SCORES if k in more)
        at = [k for _h, k in TABLE].index("fidelity_continuous") + 1
        self.columns = TABLE[:at] + extra + TABLE[at:] + (MARKER_TABLE if marker else ())
        self.setColumnCount(len(self.columns))
        self.setHorizontalHeaderLabels([_header(h) for h, _ in self.columns])
        for c, (_h, key) in enumerate(self.columns):  # hovering a header says what the score is
            if key in SCORE_INFO:
                self.horizontalHeaderItem(c).setToolTip(SCORE_INFO[key].text())
        self.setRowCount(len(scores))
        for r, s in enumerate(scores):
            row = s.row()
            tip = (f"exact AUC {s.auc:.4f} · grid AUC {s.auc_grid:.4f} · max Dice {s.max_dice:.4f} at k* = "
                   f"{s.k_star:g} % · mass in mask {s.relevance_mass:.3f} · F {s.fidelity_continuous:.4f}")
            row["scope"] = "volume" if s.scope == "volume" else (f"z {idx}" if idx is not None else "slice")
            row.update({k: getattr(s, k) for k in (*MARKER_SCORES, *MORE_SCORES)})
            tip += "".join(f" · {LABELS[k]} {getattr(s, k):.4f}" for k in MORE_SCORES if k in more)
            if marker and s.scope == "volume":
                tip += " · marker: not checked on the volume rows (the slice rows have it)"
            elif marker:
                tip += (f" · marker: {s.gt_relevance_mass:.3f} of |map| on the known shortcut; its top pixel "
                        + ("on it (✓)" if s.gt_pointing_hit == 1 else "elsewhere (✗)" if s.gt_pointing_hit == 0
                           else "— (an all-zero map)"))
            for c, (_h, key) in enumerate(self.columns):
                v = row[key]
                if key == "gt_relevance_mass":
                    item = _NumberItem(v)
                    item.setText(marker_text(MarkerHit(v, s.gt_pointing_hit, float("nan")), short=True))
                else:
                    item = _NumberItem(v) if isinstance(v, float) else QTableWidgetItem(
                        "XRAI" if v == "region" else str(v))
                item.setData(Qt.ItemDataRole.UserRole, r)
                item.setToolTip(tip)
                self.setItem(r, c, item)
        self.setSortingEnabled(True)
        self._fit_columns()
        # best AUC first; with a known shortcut: the maps most on it first
        self.sortItems(len(TABLE) + len(extra) if marker else AUC_COLUMN, Qt.SortOrder.DescendingOrder)
        header = self.horizontalHeader()  # the labels were reset: say the order again (Qt is silent when unchanged)
        self._label_sort(header.sortIndicatorSection(), header.sortIndicatorOrder())

    def _fit_columns(self) -> None:
        """Columns fill the dock when their contents fit it; more of them (the scores beyond the
        paper's) keep their contents' width and the table scrolls sideways, never "0.…" cells."""
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        needed = sum(header.sectionSize(c) for c in range(self.columnCount()))
        fits = needed <= self.viewport().width() + (self.verticalHeader().width() if self.verticalHeader().isVisible()
                                                    else 0)
        if fits:
            header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        # scrolled sideways, each row keeps its map's name on the left (the row header does not scroll)
        self.verticalHeader().setVisible(not fits and self.rowCount() > 0)

    def _label_rows(self) -> None:
        """Row headers ``EG · SG2`` (`` · XRAI`` for a region map), in the rows' current order."""
        for r in range(self.rowCount()):
            cells = [self.item(r, c) for c in range(3)]
            if any(c is None for c in cells):
                continue
            name = f"{cells[0].text()} · {cells[1].text()}" + (" · XRAI" if cells[2].text() == "XRAI" else "")
            self.setVerticalHeaderItem(r, QTableWidgetItem(name))

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._fit_columns()

    def selected_score(self) -> int | None:
        """The index (in the scores filled) of the selected row's score; None when none is selected."""
        rows = self.selectionModel().selectedRows()
        return None if not rows else self.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole)

    def _label_sort(self, column: int, order: Qt.SortOrder) -> None:
        self._label_rows()  # the rows moved: their headers do not move with them
        arrow = " ▼" if order == Qt.SortOrder.DescendingOrder else " ▲"
        for c, (h, key) in enumerate(self.columns):  # the header items keep their tooltips
            item = self.horizontalHeaderItem(c)
            text = _header(h) + (arrow if c == column else "")
            if item is None:
                self.setHorizontalHeaderItem(c, QTableWidgetItem(text))
            else:
                item.setText(text)


def export_scores(path: Path, scores: list[MapScore], plotted: list[MapScore],
                  highlight: tuple | None = None) -> list[Path]:
    """Write ``scores`` as CSV at ``path`` (suffix ``.csv``) and the plots of ``plotted`` beside it as
    PNG and SVG (one row of plots); returns the three paths."""
    path = write_scores_csv(scores, Path(path).with_suffix(".csv"))
    png, svg = path.with_suffix(".png"), path.with_suffix(".svg")
    wide = Figure(figsize=(18, 5.0), layout="constrained")
    draw_curves(wide, plotted, layout="row", highlight=highlight)
    wide.savefig(png, dpi=150)
    wide.savefig(svg)
    return [path, png, svg]


def _header(label: str) -> str:
    """Two words on two lines: the dock's columns are narrow (one line cut "max Dice" to "nax Dice")."""
    return label.replace(" ", "\n", 1)


__all__ = ["AUC_COLUMN", "TABLE", "ScoreTable", "export_scores"]
