"""Qt layout of the dock widgets: width limits, scrolling content, wrapping labels, shown / closed.

Docks stacked in napari's side area add up their minimum heights and widths; these helpers keep
a dock within ``DOCK_MIN_WIDTH`` … ``DOCK_MAX_WIDTH``, put its content in a vertical scroll area,
let long messages wrap at full height, and tell a widget when it is shown again or closed.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from magicgui.widgets import Container, Label
from qtpy.QtCore import QEvent, QObject
from qtpy.QtWidgets import QFrame, QLayout, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

#: Widest a plugin dock gets (px): three docks side by side still leave the canvas on a 1920 screen.
DOCK_MAX_WIDTH = 460
#: Narrowest a scrolling dock gets (px): its fields and the Metrics plots stay readable.
DOCK_MIN_WIDTH = 430


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


__all__ = ["DOCK_MAX_WIDTH", "DOCK_MIN_WIDTH", "WrappingLabel", "hidden_tab", "limit_width", "make_scrollable",
           "on_destroyed", "on_shown", "wrapping_label"]
