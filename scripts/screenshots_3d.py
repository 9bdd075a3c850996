"""Screenshots of a 3D model in the viewer, one function per screenshot, each step timed:

- ``explain_2d_view``: a fresh viewer, Explain docked first, the sample phantom volume, demo-3d
  chosen, BP + IGB plain → docs/img/3d_explain_2d_view.png (one (Z, H, W) map over the CT);
- ``classify_view``: Classify docked beside it, the volume's one answer → docs/img/3d_classify.png;
- ``probe_view``: Probe docked, occlusion painted with the ball brush on several slices →
  docs/img/3d_probe.png.

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/screenshots_3d.py docs/img

The 3D display (``main_display``: ``gallery_mip``, ``view_3d_map_over_ct``, ``along_z_3d``) →
docs/img/3d_gallery_mip.png, 3d_view_map_over_ct.png, 3d_along_z.png:

    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/screenshots_3d.py docs/img display

A later part (the 3D display) can add its own function taking the same ``Session``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import napari
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from tutorial_screenshots import PLUGIN, pump, wait  # noqa: E402


@dataclass
class Session:
    """The viewer, its docked widgets by name, and the time of each step (seconds)."""

    viewer: napari.Viewer
    widgets: dict = field(default_factory=dict)
    times: dict[str, float] = field(default_factory=dict)

    def dock(self, name: str):
        """Dock a plugin widget (tabbed beside the first one); returns the widget."""
        _, widget = self.viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=bool(self.widgets))
        self.widgets[name] = widget
        pump()
        return widget

    def timed(self, step: str, t0: float) -> None:
        """Record ``step`` as taking the time since ``t0``, and print it."""
        self.times[step] = time.time() - t0
        print(f"{step}: {self.times[step]:.1f} s", flush=True)


def open_session(title: str = "napari-ctinterp: a 3D model") -> Session:
    """A fresh viewer at 1920 × 1080."""
    viewer = napari.Viewer(title=title)
    viewer.window._qt_window.resize(1920, 1080)
    pump()
    return Session(viewer)


def explain_2d_view(s: Session, out: Path) -> Path:
    """Explain docked first, the sample volume, demo-3d, BP + IGB plain: the 2D view with one 3D map."""
    explain = s.dock("Explain")
    t = time.time()
    s.viewer.open_sample(PLUGIN, "phantom_volume")
    pump()
    s.timed("open the sample phantom volume (24 × 256 × 256)", t)
    ct = next(ly for ly in s.viewer.layers if ly.name.startswith("phantom volume · arterial"))
    explain.layer.value = ct
    t = time.time()
    explain.model.value = "demo-3d"
    pump()
    s.timed("choose demo-3d (card read, controls for a 3D model)", t)
    for m, box in explain.methods.items():
        box.value = m in ("BP", "IGB")
    for v, box in explain.variants.items():
        box.value = v == "plain"
    pump()
    print("estimate before the run:", explain.estimate.label.value)
    t = time.time()
    explain.run()
    first = wait(lambda: "plain map(s) shown" in explain.status.value or explain.run_button.enabled, settle=False)
    s.times["first map shown (BP plain)"] = first - t
    print(f"first map shown: {first - t:.1f} s", flush=True)
    wait(lambda: explain.run_button.enabled)
    s.timed("Explain BP + IGB plain, whole volume (incl. model load)", t)
    print("status:", explain.status.value)
    print("estimate after the run:", explain.estimate.label.value)
    s.viewer.dims.set_current_step(0, 12)
    pump(1)
    path = out / "3d_explain_2d_view.png"
    s.viewer.screenshot(str(path), canvas_only=False)
    return path


def classify_view(s: Session, out: Path) -> Path:
    """Classify docked beside Explain (the same model): the volume's one answer and its domain check."""
    classify = s.dock("Classify")
    classify.layer.value = next(ly for ly in s.viewer.layers if ly.name.startswith("phantom volume · arterial"))
    t = time.time()
    classify.classify()
    wait(lambda: classify.run_button.enabled)
    s.timed("Classify the whole volume", t)
    print("classify:", classify.result.value, "|", classify.domain.value)
    pump(1)
    path = out / "3d_classify.png"
    s.viewer.screenshot(str(path), canvas_only=False)
    return path


def probe_view(s: Session, out: Path) -> Path:
    """Probe docked: the occlude layer, one ball-brush stroke over the aorta on slices 9–15; the
    volume's probabilities before → after."""
    probe = s.dock("Probe")
    ct = next(ly for ly in s.viewer.layers if ly.name.startswith("phantom volume · arterial"))
    probe.layer.value = ct
    t = time.time()
    occ = probe.add_occlude_layer()
    wait(lambda: probe.last is not None and probe.idle)
    s.timed("Probe: occlude layer added, the unoccluded volume probed", t)
    base = probe.last
    mask = np.asarray(s.viewer.layers["phantom volume · reference mask"].data) > 0
    t = time.time()
    for z in range(9, 16, 3):  # a stroke of the ball brush on three slices, over the enhanced vessels
        ys, xs = np.nonzero(mask[z])
        for y, x in list(zip(ys, xs))[:: max(1, len(ys) // 25)]:
            occ.paint((z, int(y), int(x)), 1, refresh=False)
    occ.refresh()
    occ.events.paint(value=[])  # what a finished mouse stroke emits
    wait(lambda: probe.last is not base and probe.idle)
    s.timed("Probe: painted on slices 9–15, the volume re-probed", t)
    print("probe:", probe.result.value.replace("\n", " | "))
    s.viewer.dims.set_current_step(0, 12)
    pump(1)
    path = out / "3d_probe.png"
    s.viewer.screenshot(str(path), canvas_only=False)
    return path


def explained_for_display(s: Session) -> napari.layers.Image:
    """(The 3D display's set-up.) Explain docked first, the sample volume, demo-3d, BP + IGB + GC
    plain; IGB shown. Returns the CT layer."""
    explain = s.dock("Explain")
    s.viewer.open_sample(PLUGIN, "phantom_volume")
    pump()
    ct = next(ly for ly in s.viewer.layers if ly.name.startswith("phantom volume · arterial"))
    explain.layer.value = ct
    explain.model.value = "demo-3d"
    pump()
    for m, box in explain.methods.items():
        box.value = m in ("BP", "IGB", "GC")
    for v, box in explain.variants.items():
        box.value = v == "plain"
    t = time.time()
    explain.run()
    wait(lambda: explain.run_button.enabled)
    s.timed("Explain BP + IGB + GC plain with demo-3d (whole volume)", t)
    print("status:", explain.status.value)
    s.viewer.dims.set_current_step(0, 12)
    pump(1)
    return ct


def gallery_mip(s: Session, out: Path) -> Path:
    """The Gallery docked, its tiles switched to the axial MIP of each map: docs/img/3d_gallery_mip.png."""
    gallery = s.dock("Gallery")
    gallery.mask.value = s.viewer.layers["phantom volume · reference mask"]
    t = time.time()
    gallery.tiles_show.value = "MIP"
    gallery.refresh()
    pump(1)
    s.timed("Gallery: MIP tiles drawn (scores of slice 12)", t)
    print("gallery:", gallery.status.value)
    path = out / "3d_gallery_mip.png"
    s.viewer.screenshot(str(path), canvas_only=False)
    return path


def view_3d_map_over_ct(s: Session, out: Path) -> Path:
    """IGB shown, the Gallery's "Show in 3D": the map's top 1 % as an attenuated MIP over the
    translucent CT, with the mask's surface: docs/img/3d_view_map_over_ct.png."""
    from napari_ctinterp._widgets.maps import show_map

    gallery = s.widgets["Gallery"]
    igb = next(ly for ly in s.viewer.layers if ly.name.startswith("IGB · plain"))
    show_map(s.viewer, igb)
    t = time.time()
    gallery.view_3d.toggle()
    pump(1)
    s.timed("3D view drawn (top 1 % threshold, styles)", t)
    zoom = s.viewer.scene.camera.zoom
    s.viewer.scene.camera.zoom = zoom * 1.6  # the chest fills the canvas
    pump(1)
    print("3D:", gallery.view_3d.status.value)
    path = out / "3d_view_map_over_ct.png"
    s.viewer.screenshot(str(path), canvas_only=False)
    gallery.view_3d.toggle()  # back to 2D, at the 2D zoom
    s.viewer.scene.camera.zoom = zoom
    pump()
    return path


def along_z_3d(s: Session, out: Path) -> Path:
    """Metrics docked: the shown 3D map (IGB) scored along z, the table with slice 12 and the
    volume: docs/img/3d_along_z.png."""
    metrics = s.dock("Metrics")
    metrics.mask.value = s.viewer.layers["phantom volume · reference mask"]
    t = time.time()
    metrics.along_z.compute()
    wait(lambda: metrics.along_z.button.enabled)
    s.timed("Metrics: along z of the 3D map", t)
    print("along z:", metrics.along_z.status.value)
    t = time.time()
    metrics.compute()
    wait(lambda: metrics.compute_button.enabled)
    s.timed(f"Metrics: table ({metrics.scope.value})", t)
    print("table:", metrics.status.value)
    pump(1)
    path = out / "3d_along_z.png"
    s.viewer.screenshot(str(path), canvas_only=False)
    return path


def main_display(out: Path) -> None:
    """The 3D display's screenshots (a fresh process): gallery MIP tiles, the 3D view, along z."""
    out.mkdir(parents=True, exist_ok=True)
    s = open_session("napari-ctinterp: a 3D map in 3D")
    explained_for_display(s)
    for shot in (gallery_mip, view_3d_map_over_ct, along_z_3d):
        print("saved", shot(s, out))
    print("times (s):", {k: round(v, 1) for k, v in s.times.items()})
    s.viewer.close()


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    t = time.time()
    s = open_session()
    s.timed("open napari", t)
    for shot in (explain_2d_view, classify_view, probe_view):
        print("saved", shot(s, out))
    print("times (s):", {k: round(v, 1) for k, v in s.times.items()})
    s.viewer.close()


if __name__ == "__main__":
    # ``... docs/img display``: the 3D display's screenshots (main_display) instead
    (main_display if sys.argv[2:3] == ["display"] else main)(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img"))
