"""Which voxels of a whole-CT map layer hold the map: its explained slices, inside the model's input.

A (Z, H, W) map layer on the CT's grid is one of two kinds:

- a stack of 2D maps (``explain_volume``: a slice range, the slices with mask, the whole volume):
  0 on the slices not explained (``MapLayerInfo.slices`` says which were);
- a 3D model's map (``explain.explain`` of a 3D classifier; its record says ``spatial_dims`` 3):
  0 on the CT voxels outside the model's input (its card's crop), ``outside_voxels`` of them.

Those zeros are not the map's values: they are left out of the 3D display's top-k threshold and
out of the volume scores (``localisation_volume(..., outside=)``). The outside voxels come from the
layer's metadata (``"outside"``, a (Z, H, W) bool array, when the layer carries it), else from the
model's card (``Classifier.geometry``, computed once per model, CT shape and spacing).
"""

from __future__ import annotations

import weakref
from functools import lru_cache
from typing import Any

import numpy as np

from .layer_info import MapLayerInfo

#: The layer metadata key of a 3D model's outside voxels ((Z, H, W) bool), when the layer has it.
OUTSIDE_KEY = "outside"


def is_volume_map(layer: Any, info: MapLayerInfo | None = None) -> bool:
    """True for a map layer over the whole CT: (Z, H, W) with Z > 1 (a stack or a 3D model's map)."""
    info = info if info is not None else MapLayerInfo.from_layer(layer)
    shape = np.shape(layer.data)
    return info is not None and len(shape) == 3 and shape[0] > 1


def is_3d_model_map(info: MapLayerInfo) -> bool:
    """True for a map made by a 3D model (one map of the whole volume)."""
    return int(info.get("spatial_dims", 2) or 2) == 3


def region_scope(info: MapLayerInfo) -> str:
    """How an XRAI region map's ranks hold: ``"volume"`` (one ranking over the volume: a 3D
    model's map, or a region map made over the volume) or ``"slice"`` (2D XRAI per slice)."""
    scope = info.get("region_scope")
    if scope in ("slice", "volume"):
        return str(scope)
    return "volume" if is_3d_model_map(info) else "slice"


def explained_slices(layer: Any, info: MapLayerInfo | None = None) -> list[int]:
    """The slices of a whole-CT layer that hold a map (a stack's ``slices``; all for a 3D model's)."""
    info = info if info is not None else MapLayerInfo.from_layer(layer)
    n = int(np.shape(layer.data)[0])
    if info is not None and info.full_z and not is_3d_model_map(info):
        return [z for z in info.explained(n) if 0 <= z < n]
    return list(range(n))  # a 3D model's map, or a stack of the explained slices only


def outside_voxels(layer: Any, info: MapLayerInfo | None = None) -> np.ndarray | None:
    """(Z, H, W) bool: the voxels a 3D model never saw (its card's crop); None when there are none.

    Read from the layer's metadata (:data:`OUTSIDE_KEY`), else computed from the model's card.

    Raises
    ------
    ValueError
        The record says voxels were left out but the model cannot be loaded to say which.
    """
    info = info if info is not None else MapLayerInfo.from_layer(layer)
    shape = tuple(int(v) for v in np.shape(layer.data))
    if info is None or len(shape) != 3 or not is_3d_model_map(info):
        return None
    given = layer.metadata.get(OUTSIDE_KEY)
    if given is not None and np.shape(given) == shape:
        out = np.asarray(given, dtype=bool)
        return out if out.any() else None
    if not int(info.get("outside_voxels", 0) or 0):
        return None
    spacing = info.get("spacing_mm")
    try:
        out = _outside_of_model(info.model, shape, None if spacing is None else tuple(float(s) for s in spacing))
    except Exception as e:  # noqa: BLE001 - a moved checkpoint, a card that no longer loads: say so
        raise ValueError(f"the map of {info.model!r} left {info.get('outside_voxels')} voxel(s) outside the "
                         f"model's input, but the model cannot be loaded to say which ({e}): open the model "
                         "file where it was, or re-run Explain") from e
    return out if out.any() else None


@lru_cache(maxsize=8)
def _outside_of_model(model: str, shape: tuple[int, int, int],
                      spacing_mm: tuple[float, ...] | None) -> np.ndarray:
    from ..model import load

    out = load(model).geometry(shape, spacing_mm).outside
    out.setflags(write=False)
    return out


def scored_voxels(layer: Any, info: MapLayerInfo | None = None) -> np.ndarray | None:
    """(Z, H, W) bool of the voxels holding the map (explained slices, inside the model's input);
    None when every voxel does."""
    info = info if info is not None else MapLayerInfo.from_layer(layer)
    shape = np.shape(layer.data)
    keep = None
    explained = explained_slices(layer, info)
    if len(explained) < shape[0]:
        keep = np.zeros(shape, dtype=bool)
        keep[explained] = True
    out = outside_voxels(layer, info)
    if out is not None:
        keep = ~out if keep is None else keep & ~out
    return keep


def seen_pixels(layer: Any, info: MapLayerInfo, idx: int | None) -> np.ndarray | None:
    """The pixels of slice ``idx`` a cropping 3D model saw (bool (H, W)); None: every pixel counts
    (a 2D map, a 3D model that saw the whole CT, or a crop that cannot be read — scored whole)."""
    if idx is None or not is_3d_model_map(info):
        return None
    try:
        out = outside_voxels(layer, info)
    except ValueError:
        return None
    return None if out is None or not out[idx].any() else ~out[idx]


def axial_mip(layer: Any, info: MapLayerInfo | None = None) -> np.ndarray:
    """The axial maximum-intensity projection of ``|map|`` over the slices holding the map, (H, W).

    Voxels outside the model's input hold 0 (they never raise a maximum); a 2D layer is returned
    as its absolute values. Remembered per data array (scrolling redraws the gallery's tiles).
    """
    data = layer.data
    arr = np.asarray(data)
    if arr.ndim == 2:
        return np.abs(arr).astype(np.float32)
    explained = tuple(explained_slices(layer, info)) if arr.shape[0] > 1 else (0,)
    hit = _MIPS.get(id(data))
    if hit is not None and hit[0]() is data and hit[1] == explained:
        return hit[2]
    picked = arr[list(explained)] if len(explained) < arr.shape[0] else arr
    mip = np.abs(picked).max(axis=0).astype(np.float32)
    mip.setflags(write=False)
    try:
        _MIPS[id(data)] = (weakref.ref(data), explained, mip)
    except TypeError:  # an array type without weak references: not remembered
        pass
    for key in [k for k, v in _MIPS.items() if v[0]() is None]:
        del _MIPS[key]
    return mip


_MIPS: dict[int, tuple[weakref.ref, tuple[int, ...], np.ndarray]] = {}


__all__ = ["OUTSIDE_KEY", "axial_mip", "explained_slices", "is_3d_model_map", "is_volume_map", "outside_voxels",
           "region_scope", "scored_voxels"]
