"""The model the user chose, shared by every front end in one process (the napari widgets).

Choosing a checkpoint in one widget is seen by the others: each widget's model field subscribes
here and follows. No Qt or napari here: listeners are plain callables, held weakly (a closed
widget does not linger), called in the thread that sets the choice (the UI thread for widgets).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable


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
