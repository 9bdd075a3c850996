"""Small helpers shared by the dock widgets: layer choices, current slice, background work."""

from __future__ import annotations

import sys
from collections.abc import Callable, Generator
from typing import Any

import napari
import numpy as np
from napari.qt.threading import GeneratorWorker, thread_worker
from napari.utils import progress as napari_progress
from napari.utils.notifications import show_error

# torch's CUDA builds import triton from torch._dynamo (pulled in by torchvision). Loading triton's
# LLVM after napari/Qt has brought up OpenGL (Mesa's LLVM) segfaults the process — seen here both
# from a worker thread and from the main thread after the viewer opened. The widgets never use
# triton (it only serves torch.compile on GPUs), so in a napari process we tell Python it is absent.
if "triton" not in sys.modules:
    sys.modules["triton"] = None  # type: ignore[assignment]

from .. import model as _model  # noqa: E402,F401  (torch/torchvision in the main thread)


def image_layers(viewer: napari.Viewer) -> list[napari.layers.Image]:
    """Greyscale image layers of the viewer (candidates for a CT)."""
    return [ly for ly in viewer.layers if isinstance(ly, napari.layers.Image) and not ly.rgb]


def current_slice_index(viewer: napari.Viewer, layer: napari.layers.Layer) -> int | None:
    """Index along the layer's first axis shown now (None for a 2D layer)."""
    if layer.ndim < 3:
        return None
    data_pos = layer.world_to_data(viewer.dims.point)
    return int(np.clip(np.round(data_pos[0]), 0, layer.data.shape[0] - 1))


class ModelPicker:
    """The "model" field of the widgets: the demo model or a checkpoint file (shared by ``model.load``)."""

    def __init__(self) -> None:
        from magicgui.widgets import ComboBox, FileEdit

        self.model = ComboBox(label="model", choices=["demo", "file…"], value="demo")
        self.path = FileEdit(label="checkpoint", mode="r", filter="*.safetensors *.pt *.pth *.ts", visible=False)
        self.model.changed.connect(lambda v: setattr(self.path, "visible", v == "file…"))

    @property
    def widgets(self) -> list:
        """The two magicgui widgets to place in a container."""
        return [self.model, self.path]

    def source(self) -> str:
        """``"demo"`` or the checkpoint path; ``ValueError`` if no file is chosen."""
        from pathlib import Path

        if self.model.value == "demo":
            return "demo"
        p = Path(str(self.path.value))
        if not p.is_file():
            raise ValueError("choose a checkpoint file (.safetensors / .pt with its .json card)")
        return str(p)


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
    receives it in ``on_done``. Errors become napari notifications (napari's worker relays them)
    and reach ``on_error``, never a crash.
    """
    bar = napari_progress(total=total, desc=description)

    @thread_worker(ignore_errors=True, worker_class=ClosingGeneratorWorker)  # errors reach ``_error`` below
    def run() -> Generator[Any, None, Any]:
        return (yield from job())

    worker = run()
    worker.yielded.connect(lambda _: bar.update(1))

    def _error(e: BaseException) -> None:
        # napari's worker already relays the exception to a notification; here the widget resets.
        if on_error is not None:
            on_error(e)

    worker.returned.connect(on_done)
    worker.errored.connect(_error)
    worker.finished.connect(bar.close)
    worker.start()
    return worker


__all__ = ["ModelPicker", "current_slice_index", "image_layers", "show_error", "start_worker"]
