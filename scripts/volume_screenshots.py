"""Screenshot of a volume explained over a slice range and scored along z (docs/img/volume_along_z.png).

A fresh process opens the sample volume, docks Explain first, explains slices 8–15 (BP and IGB,
plain), docks Metrics, scores the shown map along z and clicks slice 12 on the plot; then the
table shows slice 12 and the volume (docs/img/volume_table_scope.png):
    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/volume_screenshots.py docs/img
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from types import SimpleNamespace

import napari

sys.path.insert(0, str(Path(__file__).parent))
from tutorial_screenshots import PLUGIN, pump, wait  # noqa: E402


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    viewer = napari.Viewer(title="napari-ctinterp: a volume along z")
    viewer.window._qt_window.resize(1920, 1080)
    _, explain = viewer.window.add_plugin_dock_widget(PLUGIN, "Explain")
    pump()
    t = time.time()
    viewer.open_sample(PLUGIN, "phantom_volume")
    print(f"sample volume {time.time() - t:.1f} s")
    ct = viewer.layers[0]
    explain.layer.value = ct
    explain.scope.value = "slice range"
    explain.slice_range.value = "8:15"
    for m, box in explain.methods.items():
        box.value = m in ("BP", "IGB")
    explain.variants["SG"].value = explain.variants["SG2"].value = False
    explain.xrai.value = "off"
    t = time.time()
    explain.run()
    wait(lambda: explain.run_button.enabled)
    print(f"explain 8 slices {time.time() - t:.1f} s: {explain.status.value}")
    _, metrics = viewer.window.add_plugin_dock_widget(PLUGIN, "Metrics", tabify=True)
    pump()
    metrics.image.value = ct
    metrics.mask.value = viewer.layers["phantom volume · reference mask"]
    t = time.time()
    metrics.along_z.compute()
    wait(lambda: metrics.along_z.button.enabled)
    print(f"along z {time.time() - t:.1f} s: {metrics.along_z.status.value}")
    metrics.along_z.on_click(SimpleNamespace(xdata=12.2))
    pump(1)
    viewer.screenshot(str(out / "volume_along_z.png"), canvas_only=False)
    print("slice shown:", viewer.dims.current_step[0])
    metrics.with_fidelity.value = False
    metrics.scope.value = "slice and volume"
    metrics.compute()
    wait(lambda: metrics.compute_button.enabled)
    print(f"slice and volume table: {metrics.status.value}")
    metrics.native.parent().parent().verticalScrollBar().setValue(10_000) if hasattr(
        metrics.native.parent().parent(), "verticalScrollBar") else None
    pump(1)
    viewer.screenshot(str(out / "volume_table_scope.png"), canvas_only=False)
    viewer.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img"))
