"""Training augmentations that keep the contrast task honest.

Applied to batches already windowed ([0, 1] over each channel's HU window, before any
normalisation); HU quantities are converted per channel, the noise field is one per image (the
same HU noise seen through every window). They vary what
must *not* matter — noise level, display window, a small rotation, left-right flip, and the field
of view (zoomed crops, shifts, zoomed-out with air or soft-tissue padding) — so that the network
has to use the enhancing blood pools, not framing, body outline or an artefact of the generator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentOptions:
    """Ranges of the random augmentations (all drawn per image)."""

    noise_hu: tuple[float, float] = (0.0, 15.0)
    window_jitter_hu: float = 40.0
    rotate_deg: float = 10.0
    flip_lr: float = 0.5
    zoom: tuple[float, float] = (0.75, 1.35)
    shift: float = 0.12
    tissue_pad: float = 0.4
    tissue_pad_hu: tuple[float, float] = (-120.0, 60.0)


def augment(x: torch.Tensor, window: tuple[float, float] | Sequence[tuple[float, float]], gen: torch.Generator,
            opts: AugmentOptions = AugmentOptions()) -> torch.Tensor:
    """Randomly augment a batch (B, C, H, W) in [0, 1]; returns a new tensor, same shape.

    Parameters
    ----------
    x : torch.Tensor
        Windowed batch, channel c in [0, 1] over ``window[c]``.
    window : (low, high) or a sequence of them, one per channel
        HU windows, to express HU quantities in each channel's units.
    gen : torch.Generator
        Source of randomness (CPU generator), for reproducible training.
    opts : AugmentOptions
        Ranges.
    """
    b, c = x.shape[:2]
    windows = [tuple(window)] if np.isscalar(window[0]) else [tuple(w) for w in window]  # type: ignore[arg-type]
    if len(windows) == 1 and c > 1:
        windows = windows * c
    if len(windows) != c:
        raise ValueError(f"{len(windows)} windows for a batch of {c} channels")
    lo = torch.tensor([w[0] for w in windows], dtype=torch.float32).view(1, c, 1, 1)
    span = torch.tensor([w[1] - w[0] for w in windows], dtype=torch.float32).view(1, c, 1, 1)

    def u(a: float, c: float) -> torch.Tensor:
        return a + (c - a) * torch.rand(b, generator=gen)

    # Geometry: rotation, zoom (>1 crops in, <1 zooms out), shift, flip; one affine grid per image.
    ang = u(-opts.rotate_deg, opts.rotate_deg) * math.pi / 180
    scale = 1.0 / u(*opts.zoom)
    flip = torch.where(torch.rand(b, generator=gen) < opts.flip_lr, -1.0, 1.0)
    tx, ty = u(-opts.shift, opts.shift), u(-opts.shift, opts.shift)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = scale * torch.cos(ang) * flip
    theta[:, 0, 1] = -scale * torch.sin(ang)
    theta[:, 1, 0] = scale * torch.sin(ang) * flip
    theta[:, 1, 1] = scale * torch.cos(ang)
    theta[:, 0, 2], theta[:, 1, 2] = tx, ty
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    inside = F.grid_sample(torch.ones_like(x[:, :1]).float(), grid, mode="bilinear", padding_mode="zeros",
                           align_corners=False)
    # Outside the original field: air (0 in input space) or, for some images, soft tissue.
    use_pad = torch.rand(b, generator=gen) < opts.tissue_pad
    pad_hu = u(*opts.tissue_pad_hu).view(b, 1, 1, 1)
    pad = torch.where(use_pad.view(b, 1, 1, 1), ((pad_hu - lo) / span).clamp(0, 1), torch.zeros(1))
    out = out + (1 - inside) * pad
    # Noise (one HU field per image), then a jittered window (re-scaling the clipped HU).
    sd_hu = u(*opts.noise_hu).view(b, 1, 1, 1)
    out = out + (sd_hu / span) * torch.randn((b, 1, *x.shape[2:]), generator=gen)
    lo2 = u(-opts.window_jitter_hu, opts.window_jitter_hu).view(b, 1, 1, 1) / span
    hi2 = 1 + u(-opts.window_jitter_hu, opts.window_jitter_hu).view(b, 1, 1, 1) / span
    out = (out - lo2) / (hi2 - lo2)
    return out.clamp(0, 1).contiguous(memory_format=torch.channels_last)
