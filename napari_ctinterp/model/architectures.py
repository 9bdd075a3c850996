"""ResNet classifiers for CT slices: one grey channel in, one logit (or two-class logits) out.

torchvision's ResNets with ``conv1`` adapted to one channel and ``fc`` to the output kind. Every
ReLU is a distinct, non-inplace ``nn.ReLU`` module: attribution methods that rewrite the ReLU
backward rule (Deconvolution) must reach each of them through hooks, and inplace ReLUs break
backward hooks.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torchvision import models
from torchvision.models.resnet import BasicBlock, Bottleneck

Architecture = Literal["resnet18", "resnet34", "resnet50"]
OutputKind = Literal["logit", "softmax2"]
ARCHITECTURES: tuple[str, ...] = ("resnet18", "resnet34", "resnet50")
OUTPUT_KINDS: tuple[str, ...] = ("logit", "softmax2")


class SplitReLUBasicBlock(BasicBlock):
    """torchvision ``BasicBlock`` with one ReLU module per activation (same arithmetic)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu_out(out + identity)


class SplitReLUBottleneck(Bottleneck):
    """torchvision ``Bottleneck`` with one ReLU module per activation (same arithmetic)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu_mid(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu_out(out + identity)


def _split_relus(net: nn.Module) -> None:
    """Give every use of a ReLU its own non-inplace module (torchvision reuses ``self.relu``)."""
    for m in net.modules():
        if isinstance(m, (BasicBlock, Bottleneck)):
            m.relu = nn.ReLU(inplace=False)
            m.relu_out = nn.ReLU(inplace=False)
            if isinstance(m, Bottleneck):
                m.relu_mid = nn.ReLU(inplace=False)
                m.__class__ = SplitReLUBottleneck
            else:
                m.__class__ = SplitReLUBasicBlock
    net.relu = nn.ReLU(inplace=False)


def build(architecture: str = "resnet18", output: str = "logit") -> nn.Module:
    """Build an untrained CT classifier.

    Parameters
    ----------
    architecture : {"resnet18", "resnet34", "resnet50"}
        torchvision ResNet (no pretrained weights: nothing is downloaded).
    output : {"logit", "softmax2"}
        One logit (sigmoid = P(contrast)), or two logits (softmax; index 1 = contrast).

    Returns
    -------
    torch.nn.Module
        Input (B, 1, H, W) in [0, 1]; output (B, 1) or (B, 2) logits.
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; choose one of {ARCHITECTURES}")
    if output not in OUTPUT_KINDS:
        raise ValueError(f"unknown output kind {output!r}; choose one of {OUTPUT_KINDS}")
    net = getattr(models, architecture)(weights=None)
    net.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    net.fc = nn.Linear(net.fc.in_features, 1 if output == "logit" else 2)
    _split_relus(net)
    return net
