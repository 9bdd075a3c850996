"""Small helpers shared by the dock widgets: layer choices, current slice, background work."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import napari
import numpy as np
from napari.qt.threading import GeneratorWorker, thread_worker
from napari.utils import progress as napari_progress
from napari.utils.notifications import show_error, show_info


def image_layers(viewer: napari.Viewer) -> list[napari.layers.Image]:
    """Greyscale image layers of the viewer (candidates for a CT)."""
    return [ly for ly in viewer.layers if isinstance(ly, napari.layers.Image) and not ly.rgb]


def current_slice_index(viewer: napari.Viewer, layer: napari.layers.Layer) -> int | None:
    """Index along the layer's first axis shown now (None for a 2D layer)."""
    if layer.ndim < 3:
        return None
    data_pos = layer.world_to_data(viewer.dims.point)
    return int(np.clip(np.round(data_pos[0]), 0, layer.data.shape[0] - 1))


def start_worker(
    job: Callable[[], Generator[Any, None, Any]],
    *,
    total: int,
    description: str,
    on_done: Callable[[Any], None],
    on_error: Callable[[BaseException], None] | None = None,
) -> GeneratorWorker:
    """Run a generator job in a thread with a napari progress bar.

    The job yields once per unit of work (the bar advances) and returns its result; the UI thread
    receives it in ``on_done``. Errors become napari notifications, never a crash.
    """
    bar = napari_progress(total=total, desc=description)

    @thread_worker
    def run() -> Generator[Any, None, Any]:
        return (yield from job())

    worker = run()
    worker.yielded.connect(lambda _: bar.update(1))

    def _error(e: BaseException) -> None:
        show_error(f"{description} failed: {e}")
        if on_error is not None:
            on_error(e)

    worker.returned.connect(on_done)
    worker.errored.connect(_error)
    worker.finished.connect(bar.close)
    worker.start()
    return worker


__all__ = ["current_slice_index", "image_layers", "show_error", "show_info", "start_worker"]
