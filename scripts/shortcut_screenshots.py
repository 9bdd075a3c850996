"""The "find a shortcut" path of docs/tutorial.md, driven in a real viewer from a fresh process.

Opens the sample "Phantom pair with a marker", explains its no-contrast slice with demo-shortcut
(it reads the marker) and then with demo (it ignores it), and takes the Gallery and the Metrics
panel with the marker's mask as the known shortcut, and one map of each model:
    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/shortcut_screenshots.py docs/img/shortcut
Writes ``<out>/NN_step.png``, ``<out>/scores_<model>.csv`` (the Metrics panel's export) and prints
each widget's status line.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import napari

sys.path.insert(0, str(Path(__file__).parent))
from tutorial_screenshots import PLUGIN, pump, wait  # noqa: E402

IMAGE, MASK = "phantom + marker · no contrast", "phantom · reference mask"
METHODS = ("BP", "IGB", "EG", "D")  # the paper's gradients (IGBW is IGB's sibling): a gallery that reads
SHOWN = "IGB · SG2"  # the map shown of each model


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    viewer = napari.Viewer(title="napari-ctinterp: find a shortcut")
    viewer.window._qt_window.resize(1920, 1080)
    docks: list = []

    def dock(name: str):
        widget_dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=len(docks) > 0)
        docks.append(widget_dock)
        widget_dock.raise_()
        pump()
        return widget, widget_dock

    shots: list[str] = []

    def shot(name: str) -> None:
        pump(0.8)
        shots.append(name)
        viewer.screenshot(str(out / f"{len(shots):02d}_{name}.png"), canvas_only=False)

    viewer.open_sample(PLUGIN, "phantom_pair_marker")
    explain, explain_dock = dock("Explain")
    explain.layer.value = viewer.layers[IMAGE]
    for m, box in explain.methods.items():
        box.value = m in METHODS
    gallery = metrics = None
    for model in ("demo-shortcut", "demo"):
        explain_dock.raise_()
        explain.model.value = model
        pump()
        t = time.time()
        explain.run()
        wait(lambda: explain.run_button.enabled)
        print(f"{model}: explain {time.time() - t:.0f} s: {explain.status.value}")
        if gallery is None:
            gallery, gallery_dock = dock("Gallery")
        gallery_dock.raise_()
        gallery.refresh()
        gallery.click_tile(f"{SHOWN} — {IMAGE}")
        print(f"{model}: gallery: {gallery.status.value}")
        shot(f"gallery_{model}")
        if metrics is None:
            metrics, metrics_dock = dock("Metrics")
            metrics.mask.value = viewer.layers[MASK]
        metrics_dock.raise_()
        metrics.compute()
        wait(lambda: metrics.compute_button.enabled)
        metrics.table.selectRow(0)  # the map most on the marker
        print(f"{model}: metrics: {metrics.status.value}")
        shot(f"metrics_{model}")
        metrics.export(out / f"scores_{model}.csv")  # the table (CSV) and its plots (PNG, SVG)
    viewer.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img/shortcut"))
