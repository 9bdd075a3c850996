"""Cascading randomisation: gradient maps of the trained demo model change as weights are destroyed."""

from __future__ import annotations

import numpy as np

from napari_ctinterp.metrics import cascading_randomisation
from napari_ctinterp.model import load
from napari_ctinterp.phantom import make_slice


def test_bp_map_similarity_falls_as_layers_are_randomised():
    clf = load("demo", device="cpu")
    hu = make_slice(2024, contrast=True, phase="arterial", level=0.58).hu
    curves = cascading_randomisation(clf, hu, methods=("BP",), variants=("plain",))
    assert curves.stages == ("original", "fc", "layer4", "layer3", "layer2", "layer1", "conv1")
    rho = curves.spearman_abs["BP", "plain"]
    assert rho[0] == 1.0 and rho[-1] < 0.5 and rho[-1] < rho[1]
    assert np.all(np.isfinite(curves.ssim["BP", "plain"])) and curves.ssim["BP", "plain"][-1] < 0.6
    assert len(curves.spearman_signed["BP", "plain"]) == 7


def test_guided_backprop_passes_randomisation_unchanged_while_gradcam_falls():
    # Adebayo et al. 2018: Guided Backprop's map barely depends on the top layers' weights (it
    # reconstructs the image), Grad-CAM's at layer4 does. On a slice of the demo model, the class fixed.
    clf = load("demo", device="cpu")
    hu = make_slice(2024, contrast=True, phase="arterial", level=0.58).hu
    curves = cascading_randomisation(clf, hu, methods=("GC", "GBP"), variants=("plain",), target=1)
    top = curves.stages.index("layer4")  # head and layer4 randomised
    gbp, gc = curves.spearman_abs["GBP", "plain"], curves.spearman_abs["GC", "plain"]
    assert gbp[top] > 0.5 and gc[top] < 0.5 and gbp[top] - gc[top] > 0.4
    assert gbp[1] > 0.9  # the head alone leaves GBP's map as it was
