"""Shared by the metric tests: a random two-class ResNet-18, and a two-class model linear in its
input, whose answers are known."""

from __future__ import annotations

import torch

from napari_ctinterp.model import Classifier, ModelCard, build


def resnet18_classifier(size: int, seed: int) -> Classifier:
    """A random one-channel ResNet-18 of two softmax classes at ``size`` × ``size`` (weights seeded)."""
    torch.manual_seed(seed)
    card = ModelCard(architecture="resnet18", input_size=(size, size), output="softmax", class_names=("a", "b"))
    return Classifier(build("resnet18", "softmax", in_channels=1, n_logits=2), card, torch.device("cpu"),
                      source="test")


class Linear(torch.nn.Module):
    """Logits (−s, s) with s = Σ w·x over a one-channel (size × size) input; w seeded."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(1, 1, size, size, generator=torch.Generator().manual_seed(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = (x * self.w).sum(dim=(1, 2, 3))
        return torch.stack([-s, s], 1)


def linear_classifier(size: int) -> Classifier:
    """``Linear(size)`` as a softmax classifier of two classes (class 1's score is s)."""
    card = ModelCard(architecture="resnet18", input_size=(size, size), output="softmax", class_names=("a", "b"))
    return Classifier(Linear(size).eval(), card, torch.device("cpu"), source="test")
