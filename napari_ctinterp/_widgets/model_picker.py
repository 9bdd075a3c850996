"""The model field of the widgets, and the model choice they share.

Choosing a checkpoint in one widget is seen by the others: each widget's ``ModelPicker``
subscribes to the one ``selection`` of the process and follows it. The choice is UI state, so it
lives here, in the widget layer; the loaded classifiers are shared by ``model.load``'s cache.
Listeners are plain callables, held weakly (a closed widget does not linger), called in the
thread that sets the choice (the UI thread).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from magicgui.widgets import ComboBox, FileEdit

from ..model import DEMOS, ModelCard, demo_weights_path  # torch imported in the main thread
from ..model.card import card_path_for
from .dock_layout import wrapping_label


class ModelSelection:
    """The current model source (``"demo"`` or a checkpoint path) and who wants to know."""

    def __init__(self, source: str = "demo") -> None:
        self._source = source
        self._listeners: list[weakref.ref] = []
        self._lock = threading.Lock()

    @property
    def source(self) -> str:
        """``"demo"`` or the path of the chosen checkpoint."""
        return self._source

    def set(self, source: str) -> None:
        """Choose a model; listeners hear of it when it changes."""
        source = str(source)
        with self._lock:
            if source == self._source:
                return
            self._source = source
            listeners = [ref() for ref in self._listeners]
            self._listeners = [ref for ref, cb in zip(self._listeners, listeners) if cb is not None]
        for cb in listeners:
            if cb is not None:
                cb(source)

    def subscribe(self, callback: Callable[[str], object]) -> None:
        """Call ``callback(source)`` on every change, while its owner lives (bound methods are
        held weakly; plain functions strongly)."""
        ref = weakref.WeakMethod(callback) if hasattr(callback, "__self__") else (lambda cb=callback: cb)
        with self._lock:
            self._listeners.append(ref)  # type: ignore[arg-type]


#: The process-wide choice the widgets share.
selection = ModelSelection()


def _is_3d_demo(name: str) -> bool:
    """Whether a bundled demo is a 3D model (its card read, no weights loaded)."""
    return ModelCard.load(card_path_for(demo_weights_path(name))).is_3d


#: How the choice names a 3D demo (it sees the whole volume, not one slice).
LABEL_3D = "{name} (3D: whole volume)"


def least_slices(card: ModelCard) -> int:
    """The fewest slices a volume needs for a 3D model (``model.volume_input.MIN_SLICES``, or the
    model's own depth if smaller)."""
    from ..model.volume_input import MIN_SLICES

    return min(MIN_SLICES, int(card.input_size[0]))


def card_line(card: ModelCard) -> str:
    """The card line under the choice: ``<name> · <architecture>, <C> channel(s) · classes: …``;
    a 3D model's says that it sees the whole volume and needs a series."""
    channels = f"{card.in_channels} channel{'s' if card.in_channels > 1 else ''}"
    classes = f"classes: {', '.join(card.class_names)}"
    name = card.name or card.architecture
    if card.is_3d:
        size = " × ".join(str(int(v)) for v in card.input_size)
        return (f"{name} — a 3D model: it sees the whole volume at once ({size} voxels), one answer and one map per "
                f"volume; needs a series of ≥ {least_slices(card)} slices · {card.architecture}, {channels} · "
                f"{classes}")
    return f"{name} · {card.architecture}, {channels} · {classes}"


class ModelPicker:
    """The "model" field of the widgets: a bundled demo model or a checkpoint file, and under it
    the chosen model's card in one line (its name and classes) — or what is missing. 3D models
    (the 3D demo, 3D checkpoints) are named as such: they see the whole volume.

    The choice is shared (``selection``): choosing a file in one widget is seen by the others.
    """

    FILE = "file…"

    def __init__(self) -> None:
        self._demos = list(DEMOS)
        labels = [(LABEL_3D.format(name=d) if _is_3d_demo(d) else d, d) for d in self._demos]
        self.model = ComboBox(label="model", choices=[*labels, (self.FILE, self.FILE)], value="demo",
                              tooltip="a bundled demo model or a checkpoint file (with its card); a 3D model "
                                      "sees the whole volume")
        self.path = FileEdit(label="checkpoint", mode="r", filter="*.safetensors *.pt *.pth *.ts *.pt2", visible=False)
        self.info = wrapping_label()
        self._following = False
        self._apply(selection.source)
        self.model.changed.connect(self._changed)
        self.path.changed.connect(self._changed)
        selection.subscribe(self._apply)

    @property
    def widgets(self) -> list:
        """The magicgui widgets to place in a container (choice, file, card line)."""
        return [self.model, self.path, self.info]

    def _changed(self, *_: Any) -> None:
        self.path.visible = self.model.value == self.FILE
        self._describe()
        if self._following:
            return
        if self.model.value in self._demos:
            selection.set(self.model.value)
        elif Path(str(self.path.value)).is_file():
            selection.set(str(Path(str(self.path.value))))

    def _apply(self, source: str) -> None:
        """Follow a choice made in another widget."""
        self._following = True
        try:
            if source in self._demos:
                self.model.value = source
            else:
                self.model.value = self.FILE
                self.path.value = source
            self.path.visible = self.model.value == self.FILE
            self._describe()
        except RuntimeError:  # this widget's Qt objects are gone (closed dock not yet collected)
            pass
        finally:
            self._following = False

    def is_3d(self) -> bool:
        """Whether the chosen model is a 3D model (False while no readable card is chosen)."""
        try:
            return self.card().is_3d
        except Exception:  # noqa: BLE001 - no file chosen, a missing or broken card: the run will say so
            return False

    def card(self) -> ModelCard:
        """The chosen model's card, read from its JSON only (no weights loaded); ``ValueError`` /
        ``OSError`` when no file is chosen or its card is missing."""
        source = self.source()
        weights = demo_weights_path(source) if source in self._demos else Path(source)
        path = card_path_for(weights)
        if not path.exists():
            raise FileNotFoundError(f"no model card beside {weights.name}: write {path.name} (see docs/model.md)")
        return ModelCard.load(path)

    def _describe(self) -> None:
        """The card line: ``<name> · <architecture>, <C> channel(s) · classes: …``."""
        try:
            self.source()
        except ValueError:  # no file chosen yet
            self.info.value = "choose a checkpoint file (its card, NAME.json, beside it)"
            return
        try:
            card = self.card()
        except Exception as e:  # noqa: BLE001 - a missing or broken card: say so, the run will refuse
            self.info.value = f"card: {str(e).strip().splitlines()[0][:300]}"
            return
        self.info.value = card_line(card)

    def source(self) -> str:
        """A demo name or the checkpoint path; ``ValueError`` if no file is chosen."""
        if self.model.value in self._demos:
            return str(self.model.value)
        p = Path(str(self.path.value))
        if not p.is_file():
            raise ValueError("choose a checkpoint file (.safetensors / .pt with its .json card)")
        return str(p)


__all__ = ["LABEL_3D", "ModelPicker", "ModelSelection", "card_line", "least_slices", "selection"]
