"""Background jobs of the widgets: a generator job in a thread, its progress bar, its errors.

Background jobs (``start_worker``) never leave a widget busy: superqt's generator worker swallows
a ``RuntimeError`` raised by the job (it takes it for a deleted Qt object) and then emits neither
``errored`` nor ``finished`` — torch's errors are mostly ``RuntimeError``, so the job is wrapped
and such errors are re-raised as ``JobError``. Errors of the UI-side callback are caught too.
Every failure ends in a napari notification (shown here: the worker class has no relay of its
own) and the widget's ``on_error``. Progress follows ``napari_ctinterp.progress``: a job yields
``Step(done, total, phase)``; ``worker.quit()`` cancels between steps.
"""

from __future__ import annotations

import atexit
import time
from collections.abc import Callable, Generator
from typing import Any

from magicgui.widgets import ProgressBar
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error
from qtpy.QtCore import QTimer
from superqt.utils import GeneratorWorker

from .dock_layout import wrapping_label


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
        self._unit = self._phase = ""
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
                self.step(self._done, phase=self._phase, force=True)
        except RuntimeError:  # the widget was closed meanwhile
            self.running = False

    def step(self, done: int, total: int | None = None, phase: str = "", *, force: bool = False) -> None:
        """``done`` units finished (of ``total``, when the job tells it; during ``phase``): update
        the bar, elapsed time and ETA."""
        self._done, self._phase = int(done), phase
        if total is not None and max(1, int(total)) != self._total:
            self._total = max(1, int(total))
            if self.shown:
                self.bar.max = self._total
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
        what = f"{phase}: " if phase else ""
        self.text.value = f"{what}{done} / {total} {self._unit} · {_clock(elapsed)} elapsed{eta}"

    def stop(self) -> float:
        """Hide the bar; returns the seconds the job took."""
        self.running = False
        if self.shown:
            self.bar.visible = self.text.visible = self.shown = False
        return time.monotonic() - self._t0


#: Workers whose thread may still run: held here until they finish, and asked to stop (and waited
#: for, up to ``EXIT_WAIT_S``) when Python exits, so that quitting napari while a job runs or is
#: being cancelled does not delete the worker's Qt signals under its thread (that aborted the
#: process: "wrapped C/C++ object of type GeneratorWorkerSignals has been deleted").
RUNNING: set[GeneratorWorker] = set()
EXIT_WAIT_S = 120


@atexit.register
def _stop_running_jobs() -> None:
    if not RUNNING:
        return
    from qtpy.QtCore import QThreadPool

    for worker in list(RUNNING):
        worker.quit()  # stops at the job's next step (a gradient batch)
    QThreadPool.globalInstance().waitForDone(EXIT_WAIT_S * 1000)


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
    on_partial: Callable[[Any], None] | None = None,
) -> GeneratorWorker:
    """Run a generator job in a thread, with progress in the widget (``progress``).

    The job yields its progress as ``progress.Step(done, total, phase)`` tuples (the one progress
    protocol of ``napari_ctinterp.progress``; ``(done, total)`` will do), or a bare ``yield`` per
    unit of work (or an int: the units done so far), and returns its result; the UI thread
    receives it in ``on_done``. Any error — in the job, in a thread it started, or in ``on_done`` —
    becomes a napari notification and reaches ``on_error``. A
    cancelled job (``worker.quit()``, also from napari's activity panel) reaches ``on_cancel``
    (default: ``on_error`` with ``JobCancelled``, without a notification), even when the cancel
    lands after the job's last step, where superqt emits neither ``returned`` nor ``aborted``.
    The widget is never left busy. A step's ``partial`` result (results finished before the job
    ends) reaches ``on_partial`` in the UI thread.
    """
    state: dict[str, Any] = {"done": 0, "ended": False}

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
        total, phase, partial = None, "", None
        if isinstance(value, tuple):  # a progress.Step
            done, total, phase, partial = (*value, "", None)[:4]
        elif isinstance(value, int) and not isinstance(value, bool):
            done = value
        else:
            done = state["done"] + 1
        state["done"] = int(done)
        if progress is not None:
            progress.step(state["done"], total, phase)
        if partial is not None and on_partial is not None and not state["ended"]:
            on_partial(partial)

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
    RUNNING.add(worker)
    worker.finished.connect(lambda: RUNNING.discard(worker))
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


__all__ = ["ClosingGeneratorWorker", "JobCancelled", "JobError", "JobProgress", "start_worker"]
