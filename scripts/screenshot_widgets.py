"""Screenshots of the plugin for docs/: Classify, Explain (15 maps + XRAI) and the Metrics panel.

Runs a real napari viewer (use xvfb-run without a display):
    xvfb-run -a -s "-screen 0 1920x1200x24" python scripts/screenshot_widgets.py docs/img
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import napari
from qtpy.QtWidgets import QApplication

from napari_ctinterp._widgets.classify import ClassifyWidget
from napari_ctinterp._widgets.explain import ExplainWidget
from napari_ctinterp._widgets.metrics_panel import MetricsPanel


def wait(cond, timeout=900):
    t0 = time.time()
    while not cond():
        QApplication.processEvents()
        time.sleep(0.05)
        if time.time() - t0 > timeout:
            raise TimeoutError
    for _ in range(10):
        QApplication.processEvents()


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    viewer = napari.Viewer()
    viewer.window._qt_window.resize(1800, 1150)
    viewer.open_sample("napari-ctinterp", "phantom_pair")
    classify = ClassifyWidget(viewer)
    viewer.window.add_dock_widget(classify, name="Classify", area="right")
    classify.layer.value = viewer.layers["phantom · arterial"]
    classify.classify()
    wait(lambda: classify.run_button.enabled)
    viewer.screenshot(str(out / "classify_widget.png"), canvas_only=False)
    explain = ExplainWidget(viewer)
    viewer.window.add_dock_widget(explain, name="Explain", area="right", tabify=True)
    explain.layer.value = viewer.layers["phantom · arterial"]
    explain.run()  # XRAI "full" by default; afterwards only the CT, the mask and IGB · SG2 are shown
    wait(lambda: explain.run_button.enabled)
    viewer.screenshot(str(out / "explain_widget.png"), canvas_only=False)
    panel = MetricsPanel(viewer)
    viewer.window.add_dock_widget(panel, name="Metrics", area="right", tabify=True)
    panel.image.value = viewer.layers["phantom · arterial"]
    panel.mask.value = viewer.layers["phantom · reference mask"]
    panel.compute()
    wait(lambda: panel.compute_button.enabled)
    viewer.layers["phantom · reference mask"].visible = True
    viewer.screenshot(str(out / "metrics_panel.png"), canvas_only=False)
    panel.export(out / "metrics_panel_export.csv")
    print(panel.status.value)
    viewer.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img"))
