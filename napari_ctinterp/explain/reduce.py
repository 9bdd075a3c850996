"""The engine's last step: accumulated gradient rows → one map per method and variant.

``reduce_maps`` applies each method's final formula to the accumulators of ``engine.run_plan``
(IG × (input − baseline), IGBW's mean of both baselines, Grad-CAM's and Grad-CAM++'s one map per
input, Guided Grad-CAM's product) and reduces the base inputs to plain / SmoothGrad / SmoothGrad²;
``resize_map`` takes a model-space map back to the slice's geometry.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .plan import KINDS, ExplainOptions, base_inputs

#: Key (method part) of Grad-CAM's signed map before its ReLU among ``reduce_maps``' results.
GC_SIGNED = "GC pre-ReLU"


def reduce_maps(acc: torch.Tensor, bases: torch.Tensor, opts: ExplainOptions, *,
                black: torch.Tensor | float = 0.0, white: torch.Tensor | float = 1.0,
                centre: int | None = None, channels: bool = False) -> dict[tuple[str, str], torch.Tensor]:
    """Final per-method formulas, then plain / SG / SG² reductions over the base inputs.

    One map per input: the sum over channels of the per-channel attributions (several windows of
    one slice: IG's completeness holds for the sum; SG² squares the sum), or for a 2.5D model the
    ``centre`` channel (the slice explained). ``channels=True`` returns (C, h, w) per-channel
    maps instead (plain; SG = mean per channel; SG² = mean of each channel's square, so they do not
    sum to the one-map SG²)."""
    per_base: dict[str, torch.Tensor] = {}
    a = {k: acc[i] for i, k in enumerate(KINDS[:len(acc)])}  # the kinds the plan allocated
    if "BP" in opts.methods:
        per_base["BP"] = a["BP"]
    if "IGB" in opts.methods or "IGBW" in opts.methods:
        igb = a["IGB"] * (bases - black)
        if "IGB" in opts.methods:
            per_base["IGB"] = igb
        if "IGBW" in opts.methods:
            per_base["IGBW"] = 0.5 * (igb + a["IGW"] * (bases - white))
    if "EG" in opts.methods:
        per_base["EG"] = a["EG"]
    if "D" in opts.methods:
        per_base["D"] = a["D"]
    if "GBP" in opts.methods:
        per_base["GBP"] = a["GBP"]
    # Grad-CAM is one map per input (stored in every channel): no channel sum
    if "GC" in opts.methods:
        per_base["GC"] = a["GC"][:, :1]
        per_base[GC_SIGNED] = a["GCS"][:, :1]
    if "GCPP" in opts.methods:
        per_base["GCPP"] = a["GCPP"][:, :1]
    if "GGC" in opts.methods:
        per_base["GGC"] = a["GBP"] * a["GC"][:, :1]
    clean, _ = base_inputs(opts)
    out: dict[tuple[str, str], torch.Tensor] = {}
    for m in [m for m in opts.methods if m in per_base] + ([GC_SIGNED] if "GC" in opts.methods else []):
        maps = per_base[m]
        if channels and m in ("GC", GC_SIGNED, "GCPP"):
            continue  # one map of the layer, not per input channel
        if maps.shape[1] > 1 and not channels:
            maps = maps[:, centre:centre + 1] if centre is not None else maps.sum(1, keepdim=True)
        noisy = maps[int(clean):]
        for v in opts.variants:
            if v == "plain":
                r = maps[0]
            elif v == "SG":
                r = noisy.mean(0)
            else:
                r = (noisy**2).mean(0)
            out[m, v] = r if channels else r[0]
    return out


def resize_map(m: torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
    """A model-space map back to the slice's geometry (bilinear), float32 numpy."""
    t = m.detach().float()[None, None]
    if tuple(t.shape[-2:]) != tuple(shape):
        t = F.interpolate(t, size=tuple(shape), mode="bilinear", align_corners=False)
    return t[0, 0].cpu().numpy().astype(np.float32)
