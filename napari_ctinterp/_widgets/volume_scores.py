"""The Metrics panel's volume rows: each whole-CT map scored as one volume against the (Z, H, W) mask.

A map over several slices (a slice range, the slices with mask, the whole volume: ``explain_volume``)
or a 3D model's map of the whole volume is scored as one volume: 3D ROC AUC and max Dice
(``metrics.localisation_volume``). The voxels that hold no map are left out: the slices not
explained (NaN), and a 3D model's voxels outside its input (``outside=``, ``map_voxels``). A 3D
model's XRAI region map ranks its supervoxels over the volume (``region_scope="volume"``).
Fidelity is per slice, so NaN here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import napari
import numpy as np

from ..metrics.table import MapScore
from .map_voxels import explained_slices, outside_voxels, region_scope
from .maps import map_info, model_rows


@dataclass
class VolumeItem:
    """One map to score as a volume: ``(method, variant, kind, values (Z, H, W), ranks or None)``,
    its layer, and how its voxels count (outside voxels read in the worker: it may load the model)."""

    item: tuple
    layer: napari.layers.Image
    region_scope: str = "slice"
    info: Any = field(default=None, repr=False)

    def outside(self) -> np.ndarray | None:
        """The voxels the model never saw (None: none); ``ValueError`` when they cannot be known."""
        return outside_voxels(self.layer, self.info)


def volume_items(maps: list[napari.layers.Image], image: napari.layers.Image, mask: np.ndarray) -> list[VolumeItem]:
    """A :class:`VolumeItem` for every map that covers several slices of the volume (slices not
    explained: NaN, left out of the volume)."""
    if np.ndim(image.data) != 3 or mask.ndim != 3:
        raise ValueError("volume scores need a volume CT and a (Z, H, W) mask: this CT or mask is a single slice")
    out = []
    rows = model_rows([map_info(ly) for ly in maps])  # the model named when several models' maps are kept
    for ly, row in zip(maps, rows):
        info, data = map_info(ly), np.asarray(ly.data, dtype=np.float32)
        if data.shape != mask.shape:
            continue  # one slice's map: it has no volume score
        explained = explained_slices(ly, info)
        values = np.full(data.shape, np.nan, np.float32)
        values[explained] = data[explained]
        ranks = ly.metadata.get("ranks")
        ranks = np.asarray(ranks) if ranks is not None and np.shape(ranks) == data.shape else None
        out.append(VolumeItem((row, info.variant, info.kind, values, ranks), ly, region_scope(info), info))
    if not out:
        raise ValueError("no map covers several slices yet: explain a slice range, the slices with mask or the "
                         "whole volume (or run a 3D model) to get volume scores")
    return out


def volume_score(entry: VolumeItem, mask: np.ndarray) -> MapScore | str:
    """One volume-level row (3D AUC and max Dice over the voxels holding the map; fidelity is per
    slice: NaN), or why not."""
    from ..metrics import localisation_volume

    method, variant, kind, values, ranks = entry.item
    try:
        vol = localisation_volume(np.abs(values), mask, regions=ranks, region_scope=entry.region_scope,
                                  outside=entry.outside()).volume
    except ValueError as e:
        return f"{method} · {variant} (volume): {e}"
    if vol is None:
        return f"{method} · {variant} (volume): no explained slice has mask pixels"
    return MapScore(method, variant, kind, vol.auc, vol.auc_grid, vol.max_dice, vol.k_star, vol.relevance_mass,
                    float("nan"), vol, None, scope="volume")


__all__ = ["VolumeItem", "volume_items", "volume_score"]
