"""The Metrics panel's scores beyond the paper's: which columns it shows (``ScoreChoice``, one
tick box per score) and what each score means (``Definitions``, one click away).

The text is ``metrics.schema.SCORE_INFO``'s, the one place that says what a score is.
"""

from __future__ import annotations

from typing import Any

from magicgui.widgets import CheckBox, Container, PushButton
from qtpy.QtWidgets import QFrame, QScrollArea

from ..metrics.schema import LABELS, MORE_SCORES, SCORE_INFO
from .dock_layout import wrapping_label

#: The scores beyond the paper's the panel offers (max-sensitivity re-runs the explanation: the study has it).
PANEL_CHOICES = tuple(m for m in MORE_SCORES if m != "max_sensitivity")
#: The columns the definitions list, in the table's order.
DEFINED = ("auc", "max_dice", "fidelity_continuous", *MORE_SCORES)


class ScoreChoice(Container):
    """The panel's "more scores": one tick box per score (its definition in the tooltip), three to a
    row; ``value`` lists the ticked ones, and setting it tells ``on_change`` once."""

    def __init__(self, choices: tuple[str, ...], chosen: tuple[str, ...], on_change: Any, **kwargs: Any) -> None:
        self.boxes = {m: CheckBox(text=LABELS[m], value=m in chosen, tooltip=SCORE_INFO[m].text()) for m in choices}
        rows = [Container(layout="horizontal", labels=False, widgets=[self.boxes[m] for m in choices[i:i + 3]])
                for i in range(0, len(choices), 3)]
        for row in rows:
            row.margins = (0, 0, 0, 0)
        super().__init__(widgets=rows, labels=False, **kwargs)
        self.margins = (0, 0, 0, 0)
        self._on_change = on_change
        for box in self.boxes.values():
            box.changed.connect(lambda *_: self._on_change())

    @property
    def value(self) -> list[str]:
        """The ticked scores, in the boxes' order."""
        return [m for m, box in self.boxes.items() if box.value]

    @value.setter
    def value(self, names: list[str]) -> None:
        for m, box in self.boxes.items():
            with box.changed.blocked():
                box.value = m in names
        self._on_change()


def definitions_text() -> str:
    """Every score's line: header, ↑ / ↓ (higher / lower is better), definition and source."""
    lines = [SCORE_INFO[k].text() for k in DEFINED]
    return ("\n".join(lines) + "\nmax sens. is the study's (ctinterp study --metrics max_sensitivity): it explains "
            "the slice ten more times.")


class Definitions:
    """A button that opens and closes every score's definition, in a box of its own height (opened,
    the definitions do not push the panel's table off the screen)."""

    TITLE = "What the scores mean"

    def __init__(self) -> None:
        self.button = PushButton(text=f"{self.TITLE} ▸")
        self.label = wrapping_label()
        self.label.value = definitions_text()
        self.box = QScrollArea()
        self.box.setWidget(self.label.native)
        self.box.setWidgetResizable(True)
        self.box.setFrameShape(QFrame.Shape.NoFrame)
        self.box.setMaximumHeight(170)
        self.box.setVisible(False)
        self.button.changed.connect(self.toggle)

    @property
    def shown(self) -> bool:
        """Whether the definitions are open (hidden by the user or not; the dock itself may be hidden)."""
        return not self.box.isHidden()

    def toggle(self, *_: Any) -> None:
        """Open the definitions when closed, close them when open."""
        shown = not self.shown
        self.box.setVisible(shown)
        self.button.text = f"{self.TITLE} {'▾' if shown else '▸'}"
