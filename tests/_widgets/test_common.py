"""Background jobs of the widgets: a cancel that lands after the job's last step still ends the job."""

from __future__ import annotations

import threading

from napari_ctinterp._widgets.workers import JobProgress, start_worker


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



def test_a_long_message_wraps_at_full_height_in_a_dock_and_shrinks_back(qtbot, docked):
    from napari_ctinterp._widgets.metrics_panel import MetricsPanel

    viewer, panel = docked(MetricsPanel, "Metrics")
    viewer.window._qt_window.resize(1600, 1000)
    viewer.window.show()
    qtbot.wait(100)
    status = panel.status.native
    line = status.fontMetrics().height()
    panel.status.value = "scoring 30 map(s)…"  # one line first: Qt kept that height for longer texts
    qtbot.wait(100)
    panel.status.value = "30 maps scored; best AUC 0.984 (EG · SG2 · XRAI); fidelity: 30 computed, " * 3
    qtbot.wait(100)
    needed = status.heightForWidth(status.width())
    assert needed >= 4 * line and status.height() >= needed  # every line shown, none cut
    content = status.parentWidget()  # the dock's scroll content gives the rows the room they need
    assert content.height() >= content.layout().heightForWidth(content.width())
    panel.status.value = "done"
    qtbot.wait(100)
    assert status.height() < 2 * line
