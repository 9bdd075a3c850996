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
