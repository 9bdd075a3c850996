"""Each widget docked *first* in a fresh napari process, then ``import torchvision``: no segfault.
(Checked: with ``preload_triton()`` switched off these cases die with SIGSEGV.)

triton's LLVM used to crash the process when it loaded after napari's OpenGL (see
``napari_ctinterp._triton``); only a fresh process shows it, so each case runs in a subprocess.
The docked widgets must also fit a 1920 × 1080 screen.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import json, sys
import napari
from qtpy.QtWidgets import QApplication
viewer = napari.Viewer(show=False)
names = sys.argv[1].split(",")
tabify = sys.argv[2] == "tabs"
for i, name in enumerate(names):
    viewer.window.add_plugin_dock_widget("napari-ctinterp", name, tabify=tabify and i > 0)
viewer.open_sample("napari-ctinterp", "phantom_pair")
import torch, torchvision  # after the viewer and the widget: this segfaulted in triton/knobs.py
f = torch.compile(lambda x: x * 2 + 1, backend="eager")
assert float(f(torch.ones(1))) == 3.0
viewer.window.show()
for _ in range(20):
    QApplication.processEvents()
viewer.window._qt_window.resize(1920, 1080)  # a 1080p screen: the window must be able to fit it
for _ in range(20):
    QApplication.processEvents()
size = viewer.window._qt_window.size()
hint = viewer.window._qt_window.minimumSizeHint()
print(json.dumps({"size": [size.width(), size.height()], "min": [hint.width(), hint.height()],
                  "triton": "triton" in sys.modules and sys.modules["triton"] is not None}))
viewer.close()
"""

ALL = "Classify,Explain,Metrics,Gallery,Probe"


def _run(names: str, docking: str = "tabs") -> dict:
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, names, docking], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, f"rc={done.returncode}\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", ALL.split(","))
def test_widget_docked_first_then_torchvision(name):
    out = _run(name)
    if importlib.util.find_spec("triton") is not None:  # CPU-only torch builds have no triton
        assert out["triton"]  # loaded (safely), not hidden: torch.compile keeps working


@pytest.mark.parametrize("docking", ["tabs", "stacked"])
def test_all_widgets_docked_together_fit_a_1080p_screen(docking):
    # "stacked": one after the other from the Plugins menu, as a person docks them.
    out = _run(ALL, docking)
    assert out["size"][0] <= 1920 and out["size"][1] <= 1080, out
    assert out["min"][0] <= 1920 and out["min"][1] <= 1080, out


CLOSE_SCRIPT = r"""
import gc, sys, time, weakref
import napari
from qtpy.QtWidgets import QApplication
def pump(t=0.5):
    end = time.time() + t
    while time.time() < end:
        QApplication.processEvents(); time.sleep(0.01)
viewer = napari.Viewer(show=False)
viewer.open_sample("napari-ctinterp", "phantom_pair")
refs = []
for name in sys.argv[1].split(","):
    dock, widget = viewer.window.add_plugin_dock_widget("napari-ctinterp", name)
    refs.append(weakref.ref(widget))
    pump(0.3)
    viewer.window.remove_dock_widget(dock)
    del dock, widget
pump(); gc.collect(); pump()
viewer.dims.set_current_step(0, 0)  # events after the close reach no dead widget
pump()
print(sum(r() is not None for r in refs))
"""


def test_closing_every_dock_neither_aborts_nor_leaves_it_alive():
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    done = subprocess.run([sys.executable, "-c", CLOSE_SCRIPT, ALL], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"rc={done.returncode}\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "0"  # every closed widget was collected


QUIT_WHILE_RUNNING = r"""
import time
import napari
from qtpy.QtWidgets import QApplication
from napari_ctinterp._widgets.workers import start_worker

viewer = napari.Viewer(show=False)
steps = []

def job():
    for i in range(100):
        time.sleep(0.1)
        steps.append(i)
        yield (i + 1, 100)

worker = start_worker(job, total=100, description="test", on_done=lambda r: None)
t0 = time.time()
while not steps and time.time() - t0 < 30:
    QApplication.processEvents()
viewer.close()
del worker
print("closed while running after", len(steps), "steps")
"""


def test_quitting_while_a_job_runs_exits_cleanly():
    """Closing napari and exiting Python while a job's thread runs: the job is stopped and waited
    for (checked: without ``workers._stop_running_jobs`` this aborts the process, "wrapped C/C++
    object of type GeneratorWorkerSignals has been deleted")."""
    done = subprocess.run([sys.executable, "-c", QUIT_WHILE_RUNNING], env={**os.environ, "PYTHONFAULTHANDLER": "1"},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"rc={done.returncode}\n{done.stderr[-3000:]}"
    assert "closed while running" in done.stdout and "has been deleted" not in done.stderr, done.stderr[-3000:]


SCRIPT_3D = r"""
import json, sys, time
import napari
from qtpy.QtWidgets import QApplication
name, model, series, mask_file = (sys.argv[1:] + ["", "", ""])[:4]
viewer = napari.Viewer(show=False)
_, w = viewer.window.add_plugin_dock_widget("napari-ctinterp", name)  # docked first, before any data
if series:  # a DICOM series and its mask through the plugin's reader
    ct = next(ly for ly in viewer.open(series, plugin="napari-ctinterp") if isinstance(ly, napari.layers.Image))
    viewer.open(mask_file, plugin="napari-ctinterp")
else:
    viewer.open_sample("napari-ctinterp", "phantom_volume")
    ct = viewer.layers[0]
mask = next(ly for ly in viewer.layers if isinstance(ly, napari.layers.Labels))


def choose(widget):
    widget.layer.value = ct
    if model:
        widget.model.value = "file…"
        widget.path.value = model
    else:
        widget.model.value = "demo-3d"


def explain_bp(widget):
    for m, box in widget.methods.items():
        box.value = m == "BP"
    for v, box in widget.variants.items():
        box.value = v == "plain"
    widget.xrai.value = "off"
    widget.run()


if name in ("Gallery", "Metrics"):  # docked first; the maps come from Explain, docked next
    _, ex = viewer.window.add_plugin_dock_widget("napari-ctinterp", "Explain", tabify=True)
    choose(ex)
    explain_bp(ex)
    t0 = time.time()
    while not ex.run_button.enabled and time.time() - t0 < 240:
        QApplication.processEvents(); time.sleep(0.01)
    if name == "Metrics":
        w.mask.value = mask
        w.compute()
        idle = lambda: w.compute_button.enabled and bool(w.scores)
    else:
        idle = lambda: bool(w.tiles) and "None" not in w.status.value and w.worker is None
else:
    choose(w)
    if name == "Classify":
        w.classify()
        idle = lambda: w.run_button.enabled
    elif name == "Explain":
        explain_bp(w)
        idle = lambda: w.run_button.enabled
    else:
        w.add_occlude_layer()
        idle = lambda: w.last is not None and w.idle
t0 = time.time()
while not idle() and time.time() - t0 < 240:
    QApplication.processEvents(); time.sleep(0.01)
text = (w.result if name not in ("Explain", "Gallery", "Metrics") else w.status).value
layers = {ly.name: list(ly.data.shape) for ly in viewer.layers}
extra = {}
if name == "Metrics":
    extra = {"scopes": sorted({s.scope for s in w.scores}),
             "volume_auc": [s.auc for s in w.scores if s.scope == "volume"]}
elif name == "Gallery":
    extra = {"tiles": [t.title if hasattr(t, "title") else str(t) for t in w.tiles]}
print(json.dumps({"idle": bool(idle()), "text": text, "layers": layers, "ct": ct.name, **extra}))
viewer.close()
"""


@pytest.fixture(scope="module")
def dense_on_a_series(tmp_path_factory):
    """A random MONAI 3D DenseNet card from a file (it crops the CT), a phantom series written as
    DICOM and its 3D mask (.npz): the issue's "random 3D DenseNet on a 3D CT series"."""
    from helpers_3d import dense_checkpoint

    from napari_ctinterp.io import save_mask, write_dicom_series
    from napari_ctinterp.phantom import make_volume

    root = tmp_path_factory.mktemp("dense3d")
    v = make_volume(9, contrast=True, phase="venous", n_slices=20, spacing_mm=2.5, size=64)
    write_dicom_series(v.hu, root / "series", spacing_mm=v.spacing_mm, seed=9)
    save_mask(v.mask.astype("uint8"), root / "mask.npz", spacing_mm=v.spacing_mm)
    return [str(dense_checkpoint(root)), str(root / "series"), str(root / "mask.npz")]


WIDGETS_3D = ["Classify", "Explain", "Probe", "Gallery", "Metrics"]


@pytest.mark.parametrize("model", ["demo-3d", "random DenseNet on a DICOM series"])
@pytest.mark.parametrize("name", WIDGETS_3D)
def test_each_widget_docked_first_takes_a_3d_model(name, model, request):
    args = [] if model == "demo-3d" else request.getfixturevalue("dense_on_a_series")
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    done = subprocess.run([sys.executable, "-c", SCRIPT_3D, name, *args], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"rc={done.returncode}\n{done.stderr[-3000:]}"
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["idle"], out
    ct = out["ct"]
    shape = [24, 256, 256] if model == "demo-3d" else [20, 64, 64]
    assert out["layers"][ct] == shape, out
    if name == "Classify":
        assert out["text"].startswith("→ arterial" if model == "demo-3d" else "→ "), out  # the sample is arterial
        assert f"(whole volume, {shape[0]} slices)" in out["text"], out
    elif name == "Explain":
        assert f"1 map layer(s) for the whole volume ({shape[0]} slices, 3D model)" in out["text"], out
        assert out["layers"][f"BP · plain — {ct}"] == shape
    elif name == "Probe":
        assert out["text"].startswith("whole volume (3D model) · unoccluded → occluded"), out
        assert out["layers"][f"occlude — {ct}"] == shape
    elif name == "Gallery":
        assert len(out["tiles"]) == 1 and out["layers"][f"BP · plain — {ct}"] == shape, out
    else:  # Metrics: the volume row of the 3D map, against the 3D mask
        assert out["scopes"] == ["slice", "volume"] and 0.0 <= out["volume_auc"][0] <= 1.0, out
        assert model != "demo-3d" or out["volume_auc"][0] > 0.5, out  # the trained demo's map finds the pools
