"""Training augmentations that keep the contrast task honest.

Applied to batches already in the card's input space ([0, 1] over the HU window). They vary what
must *not* matter — noise level, display window, a small rotation, left-right flip, and the field
of view (zoomed crops, shifts, zoomed-out with air or soft-tissue padding) — so that the network
has to use the enhancing blood pools, not framing, body outline or an artefact of the generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


def augment(x: torch.Tensor, window: tuple[float, float], gen: torch.Generator,
            opts: AugmentOptions = AugmentOptions()) -> torch.Tensor:
    """Randomly augment a batch (B, 1, H, W) in [0, 1]; returns a new tensor, same shape.

    Parameters
    ----------
    x : torch.Tensor
        Batch in the card's input space.
    window : tuple of float
        The card's HU window, to express HU quantities in input units.
    gen : torch.Generator
        Source of randomness (CPU generator), for reproducible training.
    opts : AugmentOptions
        Ranges.
    """
    b = x.shape[0]
    lo, hi = window
    span = hi - lo

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
    pad = torch.where(torch.rand(b, generator=gen) < opts.tissue_pad,
                      (u(*opts.tissue_pad_hu) - lo) / span, torch.zeros(b))
    out = out + (1 - inside) * pad.view(b, 1, 1, 1)
    # Noise, then a jittered window (re-scaling the clipped HU).
    sd = u(*opts.noise_hu) / span
    out = out + sd.view(b, 1, 1, 1) * torch.randn(out.shape, generator=gen)
    lo2 = u(-opts.window_jitter_hu, opts.window_jitter_hu) / span
    hi2 = 1 + u(-opts.window_jitter_hu, opts.window_jitter_hu) / span
    out = (out - lo2.view(b, 1, 1, 1)) / (hi2 - lo2).view(b, 1, 1, 1)
    return out.clamp(0, 1).contiguous(memory_format=torch.channels_last)
