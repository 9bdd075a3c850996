"""Small helpers shared by the dock widgets: layer choices, current slice, model field, background
work with progress inside the widget.

Background jobs (``start_worker``) never leave a widget busy: superqt's generator worker swallows
a ``RuntimeError`` raised by the job (it takes it for a deleted Qt object) and then emits neither
``errored`` nor ``finished`` — torch's errors are mostly ``RuntimeError``, so the job is wrapped
and such errors are re-raised as ``JobError``. Errors of the UI-side callback are caught too.
Every failure ends in a napari notification (shown here: the worker class has no relay of its
own) and the widget's ``on_error``.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import napari
import numpy as np
from magicgui.widgets import ComboBox, Container, FileEdit, Label, ProgressBar
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error
from qtpy.QtCore import QEvent, QObject, QTimer
from qtpy.QtWidgets import QFrame, QLayout, QScrollArea, QSizePolicy, QVBoxLayout, QWidget
from superqt.utils import GeneratorWorker

from .. import model as _model  # torch/torchvision imported in the main thread

#: Widest a plugin dock gets (px): three docks side by side still leave the canvas on a 1920 screen.
DOCK_MAX_WIDTH = 460
#: Narrowest a scrolling dock gets (px): its fields and the Metrics plots stay readable.
DOCK_MIN_WIDTH = 430


def image_layers(viewer: napari.Viewer) -> list[napari.layers.Image]:
    """Greyscale image layers of the viewer (candidates for a CT)."""
    return [ly for ly in viewer.layers if isinstance(ly, napari.layers.Image) and not ly.rgb]


def ct_layers(viewer: napari.Viewer) -> list[napari.layers.Image]:
    """Greyscale image layers that are not attribution maps."""
    return [ly for ly in image_layers(viewer) if "ctinterp_map" not in ly.metadata]


def default_ct(viewer: napari.Viewer) -> napari.layers.Image | None:
    """The CT a widget should start on: the top-most visible CT layer (what the canvas shows)."""
    visible = [ly for ly in ct_layers(viewer) if ly.visible]
    return visible[-1] if visible else None


def ct_combo(viewer: napari.Viewer, label: str = "CT layer") -> ComboBox:
    """A combo box of the viewer's CT layers that starts on the CT the canvas shows.

    Until the user picks a CT in it, the combo follows the canvas as layers are added (a widget
    docked before the data is opened ends on the CT shown on top, not the first one read). The
    viewer's event holds the combo weakly: a closed dock is collected, and the handler leaves."""
    combo = ComboBox(label=label, choices=lambda _w=None: [(ly.name, ly) for ly in ct_layers(viewer)])
    _follow_top_ct(combo, viewer)
    return combo


def _follow_top_ct(combo: ComboBox, viewer: napari.Viewer) -> None:
    ref = weakref.ref(combo)
    state = {"picked": False, "setting": False}

    def show_default(box: ComboBox) -> None:
        start = default_ct(viewer)
        if start is None:
            return
        state["setting"] = True
        try:
            box.reset_choices()
            box.value = start
        except (RuntimeError, ValueError):  # the dock was closed / not among the choices yet
            pass
        finally:
            state["setting"] = False

    def changed(value: Any) -> None:
        # a CT other than the one on top: the user's choice, kept from now on (a reset of the
        # choices that lands on the top CT is not a choice)
        if not state["setting"] and value is not None and value is not default_ct(viewer):
            state["picked"] = True

    def inserted(_event: Any) -> None:
        box = ref()
        if box is None or state["picked"]:
            viewer.layers.events.inserted.disconnect(inserted)
            return
        show_default(box)

    show_default(combo)
    combo.changed.connect(changed)
    viewer.layers.events.inserted.connect(inserted)


def current_slice_index(viewer: napari.Viewer, layer: napari.layers.Layer) -> int | None:
    """Index along the layer's first axis shown now (None for a 2D layer)."""
    if layer.ndim < 3:
        return None
    data_pos = layer.world_to_data(viewer.dims.point)
    return int(np.clip(np.round(data_pos[0]), 0, layer.data.shape[0] - 1))


def on_destroyed(container: Container, method: str) -> None:
    """Call ``container.<method>()`` when its Qt widget is destroyed (the dock was closed).

    Held weakly and guarded: an exception in a slot during destruction aborts a PyQt6 process,
    and by then the Python object may be half torn down.
    """
    ref = weakref.ref(container)

    def _gone(*_: Any) -> None:
        obj = ref()
        if obj is None:
            return
        try:
            getattr(obj, method)()
        except Exception:  # noqa: BLE001,S110 - nothing may escape a slot while Qt tears down
            pass

    container.native.destroyed.connect(_gone)


class _ShowFilter(QObject):
    """Calls back when the watched widget is shown (a dock's tab made current)."""

    def __init__(self, widget: QWidget, callback: Callable[[], None]) -> None:
        super().__init__(widget)
        self._callback = callback
        widget.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.Show:
            try:
                self._callback()
            except RuntimeError:  # torn down meanwhile
                pass
        return False


def hidden_tab(container: Container) -> bool:
    """True while the dock is a tab behind another one (its plots need not be drawn).

    A widget of a viewer that is not shown at all (tests, ``show=False``) is not a hidden tab.
    """
    native = container.native
    window = native.window()
    if window is native or not window.isVisible():
        return False
    return not native.isVisible() or native.visibleRegion().isEmpty()


def on_shown(container: Container, callback: Callable[[], None]) -> None:
    """Call ``callback()`` whenever the container is shown again (e.g. its tab is chosen)."""
    _ShowFilter(container.native, callback)


class _RefitOnResize(QObject):
    """Event filter: a wrapping label's height follows its width."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.Resize:
            _fit_height(obj)
        return False


def _fit_height(native: Any) -> None:
    # Qt gives a word-wrapped label in magicgui's labelled rows the height of one or two lines
    # (the row's layout does not ask heightForWidth): set it from the text at the current width.
    # (QLabel's heightForWidth never answers less than its minimum height: reset that first.)
    if native.width() < 20:  # not laid out yet: the resize event comes later
        return
    old = native.minimumHeight()
    native.setMinimumHeight(0)
    h = native.heightForWidth(native.width())
    native.setMinimumHeight(max(h, 0) if h > 0 else old)
    parent = native.parentWidget()
    while parent is not None and not hasattr(parent, "_fit"):
        parent = parent.parentWidget()
    if parent is not None:  # the scroll content of a dock (make_scrollable)
        _fit_content(parent)


class _ContentHeight(QObject):
    """Event filter: a scroll area's content is at least as tall as its layout needs at its width."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if event.type() in (QEvent.Type.Resize, QEvent.Type.LayoutRequest):
            _fit_content(obj)
        return False


def _fit_content(inner: QWidget) -> None:
    layout = inner.layout()
    if layout is None or inner.width() <= 0:
        return
    layout.invalidate()
    h = max(layout.heightForWidth(inner.width()) if layout.hasHeightForWidth() else 0,
            layout.minimumSize().height())
    if inner.minimumHeight() != h:
        inner.setMinimumHeight(h)
    w = layout.minimumSize().width()
    if inner.minimumWidth() != w:
        inner.setMinimumWidth(w)


class WrappingLabel(Label):
    """A Label whose long messages wrap inside the dock, at full height, instead of widening the
    window or being cut."""

    def __init__(self, value: str = "", **kwargs: Any) -> None:
        super().__init__(value=value, **kwargs)
        self.native.setWordWrap(True)
        # magicgui makes labels Fixed in both directions: the width of the first text and the height
        # of its first lines would stay. As wide as the row, as tall as the text at that width.
        policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)
        policy.setHeightForWidth(True)
        self.native.setSizePolicy(policy)
        self._refit = _RefitOnResize(self.native)
        self.native.installEventFilter(self._refit)

    @property
    def value(self) -> str:  # noqa: D102
        return Label.value.fget(self)

    @value.setter
    def value(self, text: str) -> None:
        Label.value.fset(self, text)
        _fit_height(self.native)


def wrapping_label(text: str = "", **kwargs: Any) -> WrappingLabel:
    """A Label whose long messages wrap inside the dock instead of widening the window."""
    return WrappingLabel(value=text, **kwargs)


def limit_width(container: Container) -> None:
    """Cap a dock widget's width (``DOCK_MAX_WIDTH``) so docks never push the canvas away."""
    container.native.setMaximumWidth(DOCK_MAX_WIDTH)


def make_scrollable(container: Container) -> None:
    """Put the dock's content in a vertical scroll area (call at the end of ``__init__``).

    napari docks a magicgui widget's ``native`` (magicgui's own ``scrollable`` wrapper is left
    out), and docks stacked in one area add up their minimum heights: without this, docking
    the plugin's widgets one after another grows the window past a 1080-px screen.
    """
    native = container.native
    layout = native.layout()
    # Unlabelled messages leave magicgui's row (whose height does not follow a wrapped text's):
    # full width, as tall as their text.
    bare = {w.native.parent(): w.native for w in container
            if isinstance(w, WrappingLabel) and not w.label and w.native.parent() is not native}
    inner = QWidget()
    inner_layout = QVBoxLayout(inner)
    inner_layout.setContentsMargins(layout.contentsMargins())
    inner_layout.setSpacing(layout.spacing())
    while layout.count():
        item = layout.takeAt(0)
        if item.widget() in bare:
            item.widget().hide()
            inner_layout.addWidget(bare[item.widget()])
        elif item.widget() is not None:
            inner_layout.addWidget(item.widget())
        elif item.layout() is not None:
            inner_layout.addLayout(item.layout())
        else:
            inner_layout.addItem(item)
    inner_layout.addStretch(1)  # rows stay at the top of a tall dock
    # QScrollArea sizes its content from minimumSizeHint, which leaves out the extra lines of
    # wrapped messages (heightForWidth): the content's minimum height follows its width instead.
    inner_layout.setSizeConstraint(QLayout.SizeConstraint.SetNoConstraint)  # the filter sets the minimum
    inner._fit = _ContentHeight(inner)
    inner.installEventFilter(inner._fit)
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidget(inner)
    # As wide as the content needs, however short the dock gets (the hint before the first show
    # can be too small: at least DOCK_MIN_WIDTH; beyond that a horizontal bar, never a cut).
    bar = area.verticalScrollBar().sizeHint().width()
    area.setMinimumWidth(min(max(inner.minimumSizeHint().width(), DOCK_MIN_WIDTH) + bar, DOCK_MAX_WIDTH + bar))
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(area)


class ModelPicker:
    """The "model" field of the widgets: a bundled demo model or a checkpoint file, and under it
    the chosen model's card in one line (its name and classes) — or what is missing.

    The choice is shared (``model.selection``): choosing a file in one widget is seen by the others.
    """

    FILE = "file…"

    def __init__(self) -> None:
        from ..model.loading import DEMOS

        self._demos = list(DEMOS)
        self.model = ComboBox(label="model", choices=[*self._demos, self.FILE], value="demo")
        self.path = FileEdit(label="checkpoint", mode="r", filter="*.safetensors *.pt *.pth *.ts *.pt2", visible=False)
        self.info = wrapping_label()
        self._following = False
        self._apply(_model.selection.source)
        self.model.changed.connect(self._changed)
        self.path.changed.connect(self._changed)
        _model.selection.subscribe(self._apply)

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
            _model.selection.set(self.model.value)
        elif Path(str(self.path.value)).is_file():
            _model.selection.set(str(Path(str(self.path.value))))

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

    def card(self) -> Any:
        """The chosen model's card, read from its JSON only (no weights loaded); None if none yet."""
        from ..model.card import ModelCard, card_path_for
        from ..model.loading import demo_weights_path

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
        self.info.value = (f"{card.name or card.architecture} · {card.architecture}, {card.in_channels} "
                           f"channel{'s' if card.in_channels > 1 else ''} · classes: {', '.join(card.class_names)}")

    def source(self) -> str:
        """A demo name or the checkpoint path; ``ValueError`` if no file is chosen."""
        if self.model.value in self._demos:
            return str(self.model.value)
        p = Path(str(self.path.value))
        if not p.is_file():
            raise ValueError("choose a checkpoint file (.safetensors / .pt with its .json card)")
        return str(p)


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 60}:{s % 60:02d}"


class JobProgress:
    """Progress inside a widget: a bar and "done / total · elapsed · ETA" under it.

    Shown only once a job has run for ``SHOW_AFTER_S`` (a re-score that takes a fraction of a
    second does not make the dock jump), and redrawn at most every ``UPDATE_EVERY_S``: each update
    re-lays out the dock and repaints the window (measured here, software OpenGL: up to 150 ms).
    """

    SHOW_AFTER_S = 1.0
    UPDATE_EVERY_S = 0.5

    def __init__(self) -> None:
        self.bar = ProgressBar(value=0, min=0, max=1, visible=False, label="progress")
        self.text = wrapping_label()
        self.text.visible = False
        self._t0 = self._last = 0.0
        self._unit = ""
        self._total = self._done = 1
        self.running = self.shown = False

    @property
    def widgets(self) -> list:
        """The bar and its text, to place in a container."""
        return [self.bar, self.text]

    def start(self, total: int, unit: str) -> None:
        """A job of ``total`` units begins (the bar appears with its first slow step)."""
        self._t0, self._last, self._unit = time.monotonic(), 0.0, unit
        self._total, self._done, self.running = max(1, int(total)), 0, True
        QTimer.singleShot(int(self.SHOW_AFTER_S * 1000), self._show_if_running)

    def _show_if_running(self) -> None:
        try:
            if self.running:
                self.step(self._done, force=True)
        except RuntimeError:  # the widget was closed meanwhile
            self.running = False

    def step(self, done: int, *, force: bool = False) -> None:
        """``done`` units finished: update the bar, elapsed time and ETA."""
        self._done = int(done)
        now = time.monotonic()
        elapsed = now - self._t0
        if not self.running or (not force and (elapsed < self.SHOW_AFTER_S or now - self._last < self.UPDATE_EVERY_S)):
            return
        self._last = now
        total = self._total
        done = min(int(done), total)
        if not self.shown:
            self.bar.max = total
            self.bar.visible = self.text.visible = self.shown = True
        self.bar.value = done
        eta = f" · ETA {_clock(elapsed / done * (total - done))}" if done else ""
        self.text.value = f"{done} / {total} {self._unit} · {_clock(elapsed)} elapsed{eta}"

    def stop(self) -> float:
        """Hide the bar; returns the seconds the job took."""
        self.running = False
        if self.shown:
            self.bar.visible = self.text.visible = self.shown = False
        return time.monotonic() - self._t0


class JobError(Exception):
    """A job failed with a ``RuntimeError`` (re-raised under this type so the worker reports it)."""


class JobCancelled(Exception):
    """The job was cancelled before it returned."""


def start_worker(
    job: Callable[[], Generator[Any, None, Any]],
    *,
    total: int,
    description: str,
    on_done: Callable[[Any], None],
    on_error: Callable[[BaseException], None] | None = None,
    progress: JobProgress | None = None,
    unit: str = "steps",
    on_cancel: Callable[[], None] | None = None,
) -> GeneratorWorker:
    """Run a generator job in a thread, with progress in the widget (``progress``).

    The job yields once per unit of work (or an int: the units done so far) and returns its
    result; the UI thread receives it in ``on_done``. Any error — in the job, in a thread it
    started, or in ``on_done`` — becomes a napari notification and reaches ``on_error``. A
    cancelled job (``worker.quit()``, also from napari's activity panel) reaches ``on_cancel``
    (default: ``on_error`` with ``JobCancelled``, without a notification), even when the cancel
    lands after the job's last step, where superqt emits neither ``returned`` nor ``aborted``.
    The widget is never left busy.
    """
    state = {"done": 0, "ended": False}

    @thread_worker(ignore_errors=True, worker_class=ClosingGeneratorWorker)
    def run() -> Generator[Any, None, Any]:
        try:
            return (yield from job())
        except RuntimeError as e:  # see the module docstring: superqt would swallow it
            raise JobError(f"{type(e).__name__}: {e}") from e

    worker = run()
    if progress is not None:
        progress.start(total, unit)

    def _yielded(value: Any) -> None:
        state["done"] = value if isinstance(value, int) and not isinstance(value, bool) else state["done"] + 1
        if progress is not None:
            progress.step(state["done"])

    def _error(e: BaseException) -> None:
        state["ended"] = True
        show_error(f"{description} failed: {e}")
        if progress is not None:
            progress.stop()
        if on_error is not None:
            on_error(e)

    def _returned(result: Any) -> None:
        state["ended"] = True
        if progress is not None:
            progress.stop()
        try:
            on_done(result)
        except RuntimeError:
            raise  # a deleted widget: see _guarded
        except Exception as e:  # noqa: BLE001 - a bad result must not leave the widget busy
            show_error(f"{description}: {type(e).__name__}: {e}")
            if on_error is not None:
                on_error(e)

    def _cancelled() -> None:
        if state["ended"]:
            return
        state["ended"] = True
        if progress is not None:
            progress.stop()
        if on_cancel is not None:
            on_cancel()
        elif on_error is not None:
            on_error(JobCancelled("cancelled"))

    worker.yielded.connect(_guarded(_yielded))
    worker.returned.connect(_guarded(_returned))
    worker.errored.connect(_guarded(_error))
    worker.aborted.connect(_guarded(_cancelled))
    worker.finished.connect(_guarded(_cancelled))  # finished with no result, error or abort: cancelled late
    worker.start()
    return worker


def _guarded(slot: Callable[..., None]) -> Callable[..., None]:
    """A worker's slot that never raises because its widget is gone.

    A job can end after its dock was closed (or the viewer torn down); the widget's Qt objects are
    deleted then and touching them raises ``RuntimeError``, which in a PyQt6 slot can abort the
    process. Nothing is left to update, so the error is dropped.
    """

    def run(*args: Any) -> None:
        try:
            slot(*args)
        except RuntimeError as e:
            if "has been deleted" not in str(e):
                raise

    return run


class ClosingGeneratorWorker(GeneratorWorker):
    """A generator worker that closes its job in its own thread when it stops, cancelled included.

    napari's worker leaves an aborted generator suspended until it is garbage collected, which
    would run the job's clean-up (the engine's gradient threads) later, possibly in the UI thread.
    """

    def work(self) -> Any:  # noqa: D102
        try:
            return super().work()
        finally:
            self._gen.close()  # the generator is not running here: closing is safe


__all__ = ["DOCK_MAX_WIDTH", "JobCancelled", "JobError", "JobProgress", "ModelPicker", "ct_layers",
           "ct_combo", "current_slice_index", "default_ct", "hidden_tab", "make_scrollable", "on_destroyed", "on_shown",
           "image_layers", "limit_width", "show_error", "start_worker", "wrapping_label"]
