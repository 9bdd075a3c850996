"""A compact 3D CNN for the 3D demo model: plain ``Conv3d`` + ``BatchNorm3d`` + ``ReLU`` stages.

Built for the explanation engine as much as for accuracy: every activation is its own, non-inplace
``nn.ReLU`` module (Deconvolution and Guided Backprop hook them), the last convolutional stage is
``features`` (ending in a ``Conv3d`` block, Grad-CAM's target layer), global average pooling, and a
single ``Linear`` head ``fc``. Small enough that a forward pass and an input gradient on a
(32, 64, 64) volume cost a few tens of milliseconds on one CPU core, so the full 15-map explanation
set on one volume stays within minutes.

``build_demo3d(name, **kwargs)`` builds it from the name and keyword arguments a card records
(``architecture`` / ``architecture_args``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

#: The architecture name a card records for this network.
ARCHITECTURE = "ctinterp.CompactCNN3d"


def conv_block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    """``Conv3d`` (3³, no bias) → ``BatchNorm3d`` → ``ReLU`` (its own module, not in place)."""
    return nn.Sequential(nn.Conv3d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm3d(c_out), nn.ReLU(inplace=False))


class CompactCNN3d(nn.Module):
    """A VGG-like 3D classifier: a strided stem, stages of two 3³ convolutions, pooling, one Linear.

    Parameters
    ----------
    in_channels : int
        Input channels (one per HU window of the card).
    n_logits : int
        Outputs of the head ``fc``.
    widths : sequence of int
        Channels of the stem and of each stage; every stage after the first halves the grid
        (stride-2 first convolution). The last stage is ``features``.
    stem_stride : int
        Stride of the stem convolution (2 halves the grid at once: the input is the whole volume).
    dropout : float
        Dropout before ``fc`` (training only).

    Notes
    -----
    Layout: ``stem`` (conv block), ``stages`` (``nn.Sequential`` of stages but the last),
    ``features`` (the last stage: its output is Grad-CAM's activation map), ``pool``
    (``AdaptiveAvgPool3d(1)``), ``drop``, ``fc``.
    """

    def __init__(self, in_channels: int = 1, n_logits: int = 4, widths: Sequence[int] = (16, 32, 64, 96),
                 stem_stride: int = 2, dropout: float = 0.2) -> None:
        super().__init__()
        widths = [int(w) for w in widths]
        if len(widths) < 2:
            raise ValueError(f"widths needs the stem and at least one stage, got {widths}")
        self.stem = conv_block(in_channels, widths[0], stride=stem_stride)
        stages = [nn.Sequential(conv_block(a, b, stride=1 if i == 0 else 2), conv_block(b, b))
                  for i, (a, b) in enumerate(zip(widths[:-1], widths[1:]))]
        self.stages = nn.Sequential(*stages[:-1])
        self.features = stages[-1]
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(widths[-1], n_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, n_logits) of a batch (B, C, D, H, W)."""
        x = self.features(self.stages(self.stem(x)))
        return self.fc(self.drop(torch.flatten(self.pool(x), 1)))


#: Networks this module builds, by the name a card records.
ARCHITECTURES: dict[str, type[nn.Module]] = {ARCHITECTURE: CompactCNN3d}


def build_demo3d(name: str = ARCHITECTURE, *, in_channels: int = 1, n_logits: int = 4, **kwargs: object) -> nn.Module:
    """Build a network of this module from its name and keyword arguments (a card's ``architecture_args``).

    Parameters
    ----------
    name : str
        ``"ctinterp.CompactCNN3d"`` (the bare class name ``"CompactCNN3d"`` is taken too).
    in_channels, n_logits : int
        Input channels and logits.
    **kwargs
        ``CompactCNN3d`` arguments (``widths``, ``stem_stride``, ``dropout``).
    """
    key = name if name in ARCHITECTURES else f"ctinterp.{name}"
    if key not in ARCHITECTURES:
        raise ValueError(f"unknown 3D demo architecture {name!r}; known: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[key](in_channels=in_channels, n_logits=n_logits, **kwargs)  # type: ignore[arg-type]
