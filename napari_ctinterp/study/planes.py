"""What the report shows of a 3D map: three orthogonal planes through one voxel and a projection.

A volume's maps are too large to keep for the report (a 512² CT of 300 slices is 150 MB per map),
so the task that computed them keeps only what the figures draw (``example_planes``): for each map
its axial, coronal and sagittal planes through the chosen voxel, the CT and the mask on the same
planes, and the map's maximum-intensity projection along z beside the mask's. The voxel is the
mask's centre when the series has a mask (every map on the same planes, where the expert's
evidence is), else the map's maximum (``plane_point``). numpy only: it runs on a Dask worker.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

#: The three planes, in figure order, and the axis each one fixes (0 z, 1 y, 2 x).
PLANES: tuple[tuple[str, int], ...] = (("axial", 0), ("coronal", 1), ("sagittal", 2))


def plane_point(values: np.ndarray, mask: np.ndarray | None = None,
                outside: np.ndarray | None = None) -> tuple[tuple[int, int, int], str]:
    """The voxel (z, y, x) the planes go through and what it is.

    The mask's centre (its centre of mass, rounded) when ``mask`` has a voxel, else the maximum of
    ``|values|`` over the voxels the model saw (``outside``: the card's crop left them out); the
    volume's centre for a map that is 0 everywhere."""
    if mask is not None and np.any(mask):
        idx = np.argwhere(np.asarray(mask) > 0)
        return tuple(int(v) for v in np.rint(idx.mean(0))), "the mask's centre"
    a = np.abs(np.asarray(values, dtype=np.float64))
    if outside is not None:
        a = np.where(outside, 0.0, a)
    if not np.isfinite(a).all():
        a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
    if not a.any():
        return tuple(int(s) // 2 for s in a.shape), "the volume's centre (the map is 0)"
    return tuple(int(v) for v in np.unravel_index(int(np.argmax(a)), a.shape)), "the map's maximum"


def planes(volume: np.ndarray, point: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """``{"axial": (H, W), "coronal": (Z, W), "sagittal": (Z, H)}`` of ``volume`` through ``point``."""
    v = np.asarray(volume)
    return {name: np.take(v, point[axis], axis=axis) for name, axis in PLANES}


def example_planes(series_id: str, hu: np.ndarray, mask: np.ndarray | None, maps: Mapping[str, np.ndarray],
                   spacing_mm: tuple[float, float, float], outside: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The report's example of one series, as arrays for ``numpy.savez`` (``example_maps.npz``).

    Keys: ``kind`` ("3d"), ``slice_id`` (the series), ``spacing_mm``, ``names`` (the maps' names,
    e.g. ``"BP plain"``) and, per map ``name``: ``name|point`` (z, y, x), ``name|through`` (what the
    point is), ``name|map|<plane>`` (absolute values, float16), ``name|hu|<plane>`` (float16),
    ``name|mask|<plane>`` (uint8, with a mask), ``name|map|mip`` and ``name|mask|mip`` (along z).
    """
    out: dict[str, np.ndarray] = {"kind": np.array("3d"), "slice_id": np.array(series_id),
                                  "spacing_mm": np.asarray(spacing_mm, np.float64),
                                  "names": np.array(list(maps), dtype=str)}
    m = None if mask is None else (np.asarray(mask) > 0)
    for name, values in maps.items():
        a = np.abs(np.asarray(values, np.float32))
        point, through = plane_point(a, m, outside)
        out[f"{name}|point"], out[f"{name}|through"] = np.array(point), np.array(through)
        for kind, vol, dtype in (("map", a, np.float16), ("hu", hu, np.float16), ("mask", m, np.uint8)):
            if vol is None:
                continue
            for plane, arr in planes(vol, point).items():
                out[f"{name}|{kind}|{plane}"] = arr.astype(dtype)
        out[f"{name}|map|mip"] = np.nan_to_num(a).max(axis=0).astype(np.float16)
        if m is not None:
            out[f"{name}|mask|mip"] = m.any(axis=0).astype(np.uint8)
    return out
