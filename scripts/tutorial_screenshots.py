"""The user's path of docs/tutorial.md, driven in a real viewer, with a screenshot and the time of
each step (open → classify → paint → explain → gallery → metrics → probe → export).

Every widget is docked when its step comes, as a person would, starting from a fresh process:
    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/tutorial_screenshots.py docs/img/tutorial
Writes ``<out>/NN_step.png`` and ``<out>/times.json``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import napari
import numpy as np
from qtpy.QtWidgets import QApplication
from scipy.ndimage import binary_dilation

PLUGIN = "napari-ctinterp"


def pump(seconds: float = 0.3) -> None:
    end = time.time() + seconds
    while time.time() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def wait(cond, timeout: float = 1800, *, settle: bool = True) -> float:
    """Process events until ``cond()``; returns the time it became true (before ``settle``)."""
    t0 = time.time()
    while not cond():
        QApplication.processEvents()
        time.sleep(0.005)
        if time.time() - t0 > timeout:
            raise TimeoutError
    done = time.time()
    if settle:
        pump()
    return done


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    viewer = napari.Viewer(title="napari-ctinterp tutorial")
    viewer.window._qt_window.resize(1920, 1080)

    def dock(name: str):
        widget_dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=len(docks) > 0)
        docks.append(widget_dock)
        widget_dock.raise_()
        pump()
        return widget

    def shot(name: str) -> None:
        pump(0.5)
        viewer.screenshot(str(out / f"{len(times):02d}_{name}.png"), canvas_only=False)

    docks: list = []
    t = time.time()
    viewer.open_sample(PLUGIN, "phantom_pair")
    times["open"] = time.time() - t
    shot("open")

    classify = dock("Classify")
    classify.layer.value = viewer.layers["phantom · arterial"]
    t = time.time()
    classify.classify()
    times["classify"] = wait(lambda: classify.run_button.enabled) - t
    print("classify:", classify.result.value)
    shot("classify")

    mask = viewer.layers["phantom · reference mask"]
    viewer.layers.selection.active = mask
    mask.mode = "paint"
    mask.brush_size = 14
    t = time.time()
    for x in range(250, 290, 4):  # a short stroke along the descending aorta's wall
        mask.paint((300, x), new_label=1)
    times["paint"] = time.time() - t
    shot("paint")

    explain = dock("Explain")
    explain.layer.value = viewer.layers["phantom · arterial"]
    if os.environ.get("TUTORIAL_QUICK"):  # a quick dry run of the script itself, not for the docs
        explain.steps.value, explain.samples.value, explain.sg_samples.value = 4, 4, 2
        for m, box in explain.methods.items():
            box.value = m in ("BP", "IGB")
    t = time.time()
    explain.run()
    pump(8)
    viewer.screenshot(str(out / "04a_explain_progress.png"), canvas_only=False)
    times["explain"] = wait(lambda: explain.run_button.enabled) - t
    print("explain:", explain.status.value)
    shot("explain")

    gallery = dock("Gallery")
    t = time.time()
    gallery.refresh()
    times["gallery"] = time.time() - t
    gallery.click_tile("EG · SG2 · XRAI — phantom · arterial")
    shot("gallery")

    metrics = dock("Metrics")
    metrics.mask.value = mask
    t = time.time()
    metrics.compute()
    times["metrics (first, with fidelity)"] = wait(lambda: metrics.compute_button.enabled) - t
    print("metrics:", metrics.status.value)
    metrics.table.selectRow(0)
    shot("metrics")
    t = time.time()
    mask.paint((180, 160), new_label=1)  # a new stroke in the left lung (outside the mask so far)
    wait(lambda: not metrics.compute_button.enabled, 10, settle=False)
    times["metrics (re-score after a stroke, incl. 150 ms pause)"] = wait(
        lambda: metrics.compute_button.enabled, settle=False) - t
    print("re-score:", metrics.status.value)

    probe = dock("Probe")
    probe.layer.value = viewer.layers["phantom · arterial"]
    occ = probe.add_occlude_layer()
    wait(lambda: probe.idle, 120)
    pools = binary_dilation(np.asarray(mask.data) > 0, iterations=2)
    t = time.time()
    occ.data_setitem(np.nonzero(pools), 1)
    pump(0.2)
    times["probe (stroke to answer)"] = wait(
        lambda: probe.idle and probe.last is not None and probe.last.fraction > 0, 60) - t
    print("probe:", probe.result.value)
    shot("probe")

    t = time.time()
    metrics.export(out / "metrics_export.csv")
    gallery.save(out / "gallery_figure.png")
    times["export"] = time.time() - t
    (out / "times.json").write_text(json.dumps({k: round(v, 2) for k, v in times.items()}, indent=2))
    print(json.dumps({k: round(v, 2) for k, v in times.items()}, indent=2))
    viewer.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img/tutorial"))
