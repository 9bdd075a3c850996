"""Small models and helpers for comparing the engine with Captum (imported by the tests)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from napari_ctinterp.model import Classifier, ModelCard, build

SIZE = 40


def randomise_batchnorm(net: nn.Module) -> nn.Module:
    """Give every BatchNorm non-trivial statistics and affine parameters; eval mode, frozen."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net.eval().requires_grad_(False)


def small_classifier(output: str = "logit", seed: int = 0) -> Classifier:
    torch.manual_seed(seed)
    net = randomise_batchnorm(build("resnet18", output))
    return Classifier(net, ModelCard(input_size=(SIZE, SIZE), output=output), torch.device("cpu"), source="test")


class TwoClassScores(nn.Module):
    """Captum's view of a classifier: column c = the target score of class c (as the engine uses)."""

    def __init__(self, clf: Classifier) -> None:
        super().__init__()
        self.clf = clf
        self.net = clf.module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net(x)
        n = len(x)
        return torch.stack([self.clf.target_score(logits, torch.full((n,), c)) for c in (0, 1)], 1)


def rel_l2(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


