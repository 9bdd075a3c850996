"""Cascading randomisation of a 3D net: its stages from the output down, each map compared with
the trained model's (the same check as in 2D, on volumes)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from napari_ctinterp.metrics import cascading_randomisation
from napari_ctinterp.model import Classifier, ModelCard


def test_cascading_randomisation_of_a_3d_net_walks_its_stages_and_decorrelates_the_maps():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv3d(4, 8, 3, stride=2, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(8, 2))
    card = ModelCard(architecture="r3d_18", spatial_dims=3, input_size=(16, 16, 16), output="softmax",
                     class_names=("a", "b"))
    clf = Classifier(net, card, torch.device("cpu"), source="test")
    vol = np.random.default_rng(0).uniform(-1000, 1000, (16, 16, 16)).astype(np.float32)
    before = [p.clone() for p in net.parameters()]
    res = cascading_randomisation(clf, vol, methods=("BP",), variants=("plain",))
    assert res.stages == ("original", "6", "2", "0")  # head first, stem last
    rho = res.spearman_abs["BP", "plain"]
    assert rho[0] == 1.0 and len(rho) == 4 and rho[-1] < 0.5
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))  # the model itself is untouched
