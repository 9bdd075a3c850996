"""Screenshots of the methods beyond the paper in the viewer (docs/img/explain_gradcam.png,
explain_occlusion_ct_small.png).

Fresh process each (the Explain widget docked first): GC, GBP, GGC and OCC (plain) of the demo
model on the phantom's arterial slice, showing Grad-CAM; and OCC on pydicom's CT_small.dcm, a real CT:
    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/beyond_screenshots.py gradcam docs/img
    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/beyond_screenshots.py occlusion docs/img
"""

from __future__ import annotations

import sys
from pathlib import Path

import napari

sys.path.insert(0, str(Path(__file__).parent))
from tutorial_screenshots import PLUGIN, pump, wait  # noqa: E402

BEYOND = ("GC", "GBP", "GGC", "OCC")


def _explain(sample: str, layer: str | None, methods: tuple[str, ...], show: str, png: Path) -> None:
    viewer = napari.Viewer(title=f"napari-ctinterp: {show}")
    viewer.window._qt_window.resize(1920, 1080)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Explain")
    pump()
    viewer.open_sample(PLUGIN, sample)
    widget.layer.value = viewer.layers[layer] if layer else viewer.layers[-1]
    for m, box in widget.methods.items():
        box.value = m in methods
    widget.variants["SG"].value = widget.variants["SG2"].value = False
    widget.xrai.value = "off"
    widget.run()
    wait(lambda: widget.run_button.enabled)
    widget.shown.value = show
    print("status:", widget.status.value)
    print("visible:", [ly.name for ly in viewer.layers if ly.visible])
    pump(1)
    viewer.screenshot(str(png), canvas_only=False)


def gradcam(out: Path) -> None:
    _explain("phantom_pair", "phantom · arterial", BEYOND, "GC · plain", out / "explain_gradcam.png")


def occlusion(out: Path) -> None:
    _explain("ct_small", None, ("GC", "OCC"), "OCC · plain", out / "explain_occlusion_ct_small.png")


if __name__ == "__main__":
    which, folder = sys.argv[1], Path(sys.argv[2])
    folder.mkdir(parents=True, exist_ok=True)
    {"gradcam": gradcam, "occlusion": occlusion}[which](folder)
