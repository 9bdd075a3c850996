"""The scores beyond the paper in the viewer, from a fresh process (docs/img/metrics_more_scores.png,
metrics_more_definitions.png, gallery_title_scores.png, metrics_more_densenet_ct_small.png).

The Metrics panel is docked first, on an empty viewer; then the sample phantom pair, the Explain
widget (BP, IGB, EG, Grad-CAM, Grad-CAM++, plain and SG², quick settings, no XRAI), the Metrics
panel with five scores beyond the paper (AUPRC, IoU, faithfulness correlation, sparseness, entropy)
and its definitions open, and the Gallery with AUPRC and IoU in its titles. Then, in a second
viewer, a random DenseNet-121 with a card on pydicom's CT_small.dcm (a real CT, not the phantom):
Grad-CAM++ and BP, a painted mask, the same scores:
    xvfb-run -a -s "-screen 0 1920x1080x24" .venv/bin/python scripts/metrics_more_screenshots.py docs/img
Prints each widget's status line.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import napari
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from tutorial_screenshots import PLUGIN, pump, wait  # noqa: E402

MORE = ["auprc", "iou_otsu", "faithfulness_correlation", "sparseness", "complexity"]


def _viewer(title: str):
    viewer = napari.Viewer(title=title)
    viewer.window._qt_window.resize(1920, 1080)
    docks: list = []

    def dock(name: str):
        widget_dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=len(docks) > 0)
        docks.append(widget_dock)
        widget_dock.raise_()
        pump()
        return widget, widget_dock

    return viewer, dock


def _explain(explain, layer, methods: tuple[str, ...]) -> None:
    explain.layer.value = layer
    for m, box in explain.methods.items():
        box.value = m in methods
    explain.variants["SG"].value = False
    explain.steps.value, explain.samples.value, explain.sg_samples.value = 8, 8, 4
    explain.xrai.value = "off"
    t = time.time()
    explain.run()
    wait(lambda: explain.run_button.enabled)
    print(f"explain {time.time() - t:.0f} s: {explain.status.value}")


def _score(metrics, metrics_dock, mask) -> None:
    metrics_dock.raise_()
    metrics.mask.value = mask
    metrics.more.value = MORE
    pump()
    metrics.compute()
    wait(lambda: metrics.compute_button.enabled)
    metrics.table.selectRow(0)
    bar = metrics.table.horizontalScrollBar()
    bar.setValue(bar.maximum())  # the new columns, right of F (the table scrolls sideways in the dock)
    print(f"metrics: {metrics.status.value}")


def phantom(out: Path) -> None:
    viewer, dock = _viewer("napari-ctinterp: scores beyond the paper")
    metrics, metrics_dock = dock("Metrics")  # docked first, on an empty viewer
    viewer.open_sample(PLUGIN, "phantom_pair")
    explain, _ = dock("Explain")
    _explain(explain, viewer.layers["phantom · arterial"], ("BP", "IGB", "EG", "GC", "GCPP"))
    _score(metrics, metrics_dock, viewer.layers["phantom · reference mask"])
    pump(1)
    viewer.screenshot(str(out / "metrics_more_scores.png"), canvas_only=False)
    metrics.explain_scores.changed.emit(True)  # "What the scores mean"
    pump(1)
    viewer.screenshot(str(out / "metrics_more_definitions.png"), canvas_only=False)
    gallery, _ = dock("Gallery")
    gallery.first_score.value, gallery.second_score.value = "auprc", "iou_otsu"
    gallery.refresh()
    print(f"gallery: {gallery.status.value}")
    pump(1)
    viewer.screenshot(str(out / "gallery_title_scores.png"), canvas_only=False)
    viewer.close()


def densenet_ct_small(out: Path) -> None:
    import torch

    from napari_ctinterp._widgets.model_picker import selection
    from napari_ctinterp.model import ModelCard, build, save_checkpoint

    torch.manual_seed(0)
    path = Path(tempfile.mkdtemp()) / "densenet121_random.safetensors"
    save_checkpoint(build("densenet121"), path, ModelCard(architecture="densenet121", input_size=(128, 128),
                                                          class_names=("no contrast", "contrast")))
    viewer, dock = _viewer("napari-ctinterp: a random DenseNet-121 on CT_small.dcm")
    metrics, metrics_dock = dock("Metrics")
    viewer.open_sample(PLUGIN, "ct_small")
    ct = viewer.layers[-1]
    mask = np.zeros(np.shape(ct.data), np.uint8)
    mask[..., 40:80, 30:70] = 1  # a painted square, as a person would paint a region of interest
    labels = viewer.add_labels(mask, name="painted ROI", scale=ct.scale, translate=ct.translate)
    explain, _ = dock("Explain")
    selection.set(str(path))
    pump()
    _explain(explain, ct, ("BP", "GC", "GCPP"))
    _score(metrics, metrics_dock, labels)
    pump(1)
    viewer.screenshot(str(out / "metrics_more_densenet_ct_small.png"), canvas_only=False)
    viewer.close()


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    phantom(folder)
    densenet_ct_small(folder)
