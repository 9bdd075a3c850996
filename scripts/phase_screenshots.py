"""Screenshots of the contrast-phase demo model in the widgets (docs/img/phase_*.png).

A fresh process docks Classify first, chooses ``demo-phase`` there, classifies the arterial
sample slice, then docks Explain (which follows the choice) and makes the default 15 maps with
XRAI for the predicted class, then the same for "venous" (a class it is not), then docks the
Gallery (the predicted class's maps, then venous's in rows of their own):
    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/phase_screenshots.py docs/img
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import napari

sys.path.insert(0, str(Path(__file__).parent))
from tutorial_screenshots import PLUGIN, pump, wait  # noqa: E402


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    viewer = napari.Viewer(title="napari-ctinterp: contrast-phase demo")
    viewer.window._qt_window.resize(1920, 1080)
    viewer.open_sample(PLUGIN, "phantom_pair")
    d1, classify = viewer.window.add_plugin_dock_widget(PLUGIN, "Classify")
    pump()
    classify.model.value = "demo-phase"
    classify.layer.value = viewer.layers["phantom · arterial"]
    t = time.time()
    classify.classify()
    wait(lambda: classify.run_button.enabled)
    print(f"classify {time.time() - t:.1f} s:", classify.result.value)
    pump(0.5)
    viewer.screenshot(str(out / "phase_classify.png"), canvas_only=False)

    d2, explain = viewer.window.add_plugin_dock_widget(PLUGIN, "Explain", tabify=True)
    d2.raise_()
    pump()
    explain.layer.value = viewer.layers["phantom · arterial"]
    for target in ("predicted", "venous"):
        explain.target.value = target
        t = time.time()
        explain.run()
        wait(lambda: explain.run_button.enabled)
        print(f"explain ({target}) {time.time() - t:.1f} s; layers: {len(viewer.layers)}; "
              f"visible: {[ly.name for ly in viewer.layers if ly.visible]}")
        pump(0.5)
        viewer.screenshot(str(out / f"phase_explain_{target.replace(' ', '_')}.png"), canvas_only=False)
    d3, gallery = viewer.window.add_plugin_dock_widget(PLUGIN, "Gallery", tabify=False)
    pump(3)
    viewer.screenshot(str(out / "phase_gallery.png"), canvas_only=False)
    viewer.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img"))
