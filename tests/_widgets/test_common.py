"""Background jobs of the widgets: a cancel that lands after the job's last step still ends the job."""

from __future__ import annotations

import threading

from napari_ctinterp._widgets._common import JobProgress, start_worker


def test_cancel_after_the_last_step_reaches_on_cancel(qtbot):
    started, release = threading.Event(), threading.Event()
    seen: list[str] = []

    def job():
        yield
        started.set()
        release.wait(10)  # the job's tail, after its last yield (the engine's reduction)
        return 1

    progress = JobProgress()
    worker = start_worker(job, total=1, description="test", on_done=lambda r: seen.append("done"),
                          on_error=lambda e: seen.append("error"), on_cancel=lambda: seen.append("cancel"),
                          progress=progress)
    assert started.wait(10)
    worker.quit()
    release.set()
    qtbot.waitUntil(lambda: bool(seen), timeout=10_000)
    qtbot.wait(200)
    assert seen == ["cancel"]  # superqt emits neither returned nor aborted here


def test_runtime_error_of_a_job_reaches_on_error(qtbot):
    seen: list = []

    def job():
        yield
        raise RuntimeError("torch said no")

    start_worker(job, total=1, description="test", on_done=lambda r: seen.append("done"),
                 on_error=lambda e: seen.append(str(e)))
    qtbot.waitUntil(lambda: bool(seen), timeout=10_000)
    assert seen == ["RuntimeError: torch said no"]
