"""XRAI layers: one region-map Image layer per attribution map, one ranked-regions Labels layer.

The Labels layer ``XRAI regions — <image>`` (hidden until asked for) shows the regions of one
chosen map, numbered by rank (1 = most important); ``top_regions`` keeps only the best-ranked
regions covering a given percent of the image, as the percent-occluded maps of the metrics do.
"""

from __future__ import annotations

import napari
import numpy as np

from .layer_info import MapLayerInfo
from .maps import map_layer_name, upsert_image


def xrai_layer_name(image_name: str, method: str, variant: str, target: str = "") -> str:
    """``<method> · <variant> · XRAI[ · →<class>] — <image>``."""
    return map_layer_name(image_name, method, variant, "region", target)


def regions_layer_name(image_name: str) -> str:
    """``XRAI regions — <image>``."""
    return f"XRAI regions — {image_name}"


def top_regions(ranks: np.ndarray, percent: float) -> np.ndarray:
    """Ranks kept only for the best regions whose cumulative area stays within ``percent`` of the
    image (at least the first region); other pixels 0. A stack is handled slice by slice."""
    if ranks.ndim == 3:
        return np.stack([top_regions(r, percent) for r in ranks])
    flat = ranks.reshape(-1)
    counts = np.bincount(flat, minlength=int(flat.max()) + 1)[1:]
    keep = int(np.searchsorted(np.cumsum(counts), percent / 100.0 * flat.size, side="right"))
    keep = max(keep, 1) if percent > 0 else 0
    return np.where((ranks >= 1) & (ranks <= keep), ranks, 0).astype(np.int32)


def add_xrai_layers(viewer: napari.Viewer, image: napari.layers.Image, results: dict, *, scale: tuple,
                    translate: tuple, base_meta: MapLayerInfo | dict, target: str = "") -> list[str]:
    """Add/update XRAI layers from ``results[(method, variant)] = (values, ranks)`` (stacked per slice).

    ``base_meta``: what the region maps' records share (the image, slices, run parameters…), as the
    on-layer dict of ``MapLayerInfo`` or the record itself; each layer's record adds its method and
    variant, kind ``"region"``.
    """
    base = base_meta if isinstance(base_meta, MapLayerInfo) else None
    names = []
    for (method, variant), (values, ranks) in results.items():
        info = (base.with_map(method, variant, "region") if base is not None else
                MapLayerInfo.from_metadata({**base_meta, "method": method, "variant": variant, "kind": "region"}))
        meta = info.layer_metadata(ranks=ranks)
        name = xrai_layer_name(image.name, method, variant, target)
        upsert_image(viewer, name, values.astype(np.float32), scale=scale, translate=translate, metadata=meta)
        names.append(name)
    return names


def show_regions(viewer: napari.Viewer, image_name: str, ranks: np.ndarray, percent: float, *, scale: tuple,
                 translate: tuple, source: str) -> napari.layers.Labels:
    """Add/update the ranked-regions Labels layer for one map's ranks."""
    name = regions_layer_name(image_name)
    data = top_regions(ranks, percent)
    meta = {"ctinterp_regions": {"source": source, "top_percent": percent}, "all_ranks": ranks}
    if name in viewer.layers:
        layer = viewer.layers[name]
        layer.data = data
        layer.scale, layer.translate = scale, translate
        layer.metadata = meta
        return layer
    return viewer.add_labels(data, name=name, scale=scale, translate=translate, metadata=meta, opacity=0.4,
                             visible=False)
