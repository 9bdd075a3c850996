"""The Metrics panel's volume rows: each map scored over all its explained slices at once.

A map made for several slices (a slice range, the slices with mask, the whole volume) is scored as
one volume against the (Z, H, W) mask: 3D ROC AUC and max Dice (``metrics.localisation_volume``);
fidelity is per slice, so NaN here.
"""

from __future__ import annotations

import napari
import numpy as np

from ..metrics.table import MapScore
from .maps import map_info


def volume_items(maps: list[napari.layers.Image], image: napari.layers.Image, mask: np.ndarray) -> list:
    """``((method, variant, kind, values (Z, H, W), ranks or None), layer)`` for every map that
    covers several slices of the volume (slices not explained: NaN, left out of the volume)."""
    if np.ndim(image.data) != 3 or mask.ndim != 3:
        raise ValueError("volume scores need a volume CT and a (Z, H, W) mask: this CT or mask is a single slice")
    out = []
    for ly in maps:
        info, data = map_info(ly), np.asarray(ly.data, dtype=np.float32)
        if data.shape != mask.shape:
            continue  # one slice's map: it has no volume score
        explained = info.explained(len(data))
        values = np.full(data.shape, np.nan, np.float32)
        values[list(explained)] = data[list(explained)]
        ranks = ly.metadata.get("ranks")
        ranks = np.asarray(ranks) if ranks is not None and np.shape(ranks) == data.shape else None
        out.append(((info.row_method, info.variant, info.kind, values, ranks), ly))
    if not out:
        raise ValueError("no map covers several slices yet: explain a slice range, the slices with mask or the "
                         "whole volume to get volume scores")
    return out


def volume_score(method: str, variant: str, kind: str, values: np.ndarray, ranks: np.ndarray | None,
                  mask: np.ndarray) -> MapScore | str:
    """One volume-level row (3D AUC and max Dice; fidelity is per slice: NaN), or why not."""
    from ..metrics import localisation_volume

    try:
        vol = localisation_volume(np.abs(values), mask, regions=ranks).volume
    except ValueError as e:
        return f"{method} · {variant} (volume): {e}"
    if vol is None:
        return f"{method} · {variant} (volume): no explained slice has mask pixels"
    return MapScore(method, variant, kind, vol.auc, vol.auc_grid, vol.max_dice, vol.k_star, vol.relevance_mass,
                    float("nan"), vol, None, scope="volume")


__all__ = ["volume_items", "volume_score"]
