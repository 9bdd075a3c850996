"""The Explain job's result as napari layers: one map layer per (method, variant), XRAI region
layers, each with its typed record (``layer_info.MapLayerInfo``).

Layers show absolute values; the signed map is kept in the layer's metadata (``signed``; Grad-CAM
before its ReLU in ``gc_pre_relu``). A run over several slices makes (Z, H, W) layers on the
whole CT's grid (0 on slices not explained), so they scroll with it; one slice of a volume is a
(1, H, W) layer placed at its slice. A 3D model's maps (``jobs.ExplainedVolume``) are each one
(Z, H, W) layer on the whole CT's grid, every slice explained (its record: ``full_z``, every slice,
the volume's one target; ``params["spatial_dims"] == 3``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import napari
import numpy as np

from ..jobs import ExplainedSlices, ExplainedVolume
from .layer_info import MapLayerInfo
from .map_voxels import OUTSIDE_KEY
from .maps import map_layer_name, slice_geometry, upsert_image
from .xrai_layers import add_xrai_layers


def hide_other_models(viewer: napari.Viewer, source: str) -> dict[str, int]:
    """Hide every visible map layer (and the ranked-regions layer) made by a model other than
    ``source``; returns ``{model: layers hidden}``. Each hidden layer's record keeps its model, and
    its name gains `` [<model>]`` so the list tells one model's maps from another's."""
    hidden: dict[str, int] = {}
    for layer in list(viewer.layers):
        info = MapLayerInfo.from_layer(layer)
        if info is None or info.model == str(source):
            continue
        mark = f" [{Path(info.model).stem}]"
        if not layer.name.endswith(mark):
            layer.name = layer.name + mark
        if layer.visible:
            layer.visible = False
            hidden[info.model] = hidden.get(info.model, 0) + 1
    if hidden:
        for layer in viewer.layers:
            if "ctinterp_regions" in (layer.metadata or {}):
                layer.visible = False
    return hidden


def _keep_in_order(viewer: napari.Viewer, names: list[str]) -> None:
    """Put the layers ``names`` in that order at the top of the list, unless they already are in
    that order (the plain maps of a run arrive first: their SmoothGrad variants then join them)."""
    positions = [viewer.layers.index(n) for n in names]
    if positions == sorted(positions):
        return
    for name in names:
        viewer.layers.move(viewer.layers.index(name), len(viewer.layers))


@dataclass
class MadeLayers:
    """What ``add_explain_layers`` made: the (method, variant) keys, the class tag of the layer
    names, the region maps (for the regions display), their placement and the run's parameters."""

    keys: list[tuple[str, str]]
    tag: str
    regions: dict
    scale: tuple
    translate: tuple
    params: dict


def add_explain_layers(viewer: napari.Viewer, layer: napari.layers.Image, indices: list,
                       result: ExplainedSlices, *, chosen_target: bool, algorithm: str,
                       whole: bool | None = None) -> MadeLayers:
    """Add (or update) the map layers and XRAI layers of an Explain run on ``layer``'s ``indices``.

    ``chosen_target``: the person chose the class (not "predicted"); the class then enters the
    layer names when it differs from a slice's prediction. ``whole``: the layers span the whole
    CT (default: when several slices are explained; a run of several slices whose partial result
    covers one slice so far passes True). A 3D model's result (``ExplainedVolume``, ``indices``
    ``[None]``): each map is already the whole CT's (Z, H, W), placed as the CT."""
    results, domain = result.maps, result.domain
    first = next(iter(results.values()))
    keys = list(first.keys())
    volume = isinstance(result, ExplainedVolume)
    if volume:
        indices, whole = [None], False
    whole = indices != [None] and len(indices) > 1 if whole is None else whole
    targets = [int(results[i].params["target"]) for i in indices]  # each slice's explained class
    tag = first.params["target_name"] if chosen_target and any(
        results[i].params["target"] != results[i].params["predicted"] for i in indices) else ""
    index = None if whole else indices[0]
    scale, translate = slice_geometry(layer, index)
    n_z = int(np.shape(layer.data)[0]) if whole else 0
    slices = [int(i) for i in indices if i is not None]
    if volume:  # every slice of the CT is explained at once, for the volume's one class
        slices, targets = list(range(int(np.shape(layer.data)[0]))), []

    def full_z(per_slice: list[np.ndarray]) -> np.ndarray:
        """(Z, H, W) over the whole CT; 0 on slices not explained."""
        out = np.zeros((n_z, *per_slice[0].shape), dtype=per_slice[0].dtype)
        out[list(indices)] = np.stack(per_slice)
        return out

    def placed(per_slice: list[np.ndarray]) -> np.ndarray:
        if whole:
            return full_z(per_slice)
        return per_slice[0][None] if index is not None else per_slice[0]

    checks = {str(k): {"label": c.label, "score": c.score, "threshold": c.threshold} for k, c in domain.items()}
    for method, variant in keys:
        signed = placed([results[i][method, variant] for i in indices])
        info = MapLayerInfo.of_run(method, variant, image=layer.name, params=first.params, slices=slices,
                                   full_z=whole or volume, tag=tag, targets=targets, absolute=True, domain=checks)
        extra = {"signed": signed}
        if volume and result.outside is not None:  # a cropping 3D model: the voxels it never saw, for the scores
            extra[OUTSIDE_KEY] = result.outside
        pre = [results[i].gc_signed.get((method, variant)) for i in indices]
        if method == "GC" and all(p is not None for p in pre):  # Grad-CAM before its ReLU
            extra["gc_pre_relu"] = placed(pre)
        upsert_image(viewer, map_layer_name(layer.name, method, variant, target=tag), np.abs(signed),
                     scale=scale, translate=translate, metadata=info.layer_metadata(**extra))
    _keep_in_order(viewer, [map_layer_name(layer.name, m, v, target=tag) for m, v in keys])
    regions: dict = {}
    if first.regions:
        for key in keys:
            per = [results[i].regions[key] for i in indices]
            if whole:
                regions[key] = (full_z([v for v, _ in per]), full_z([r for _, r in per]))
            elif index is not None:
                regions[key] = (np.stack([v for v, _ in per]), np.stack([r for _, r in per]))
            else:
                regions[key] = per[0]
        base = MapLayerInfo.of_run("", "", image=layer.name, params=first.params, slices=slices,
                                   full_z=whole or volume, tag=tag, targets=targets, algorithm=algorithm)
        add_xrai_layers(viewer, layer, regions, scale=scale, translate=translate, base_meta=base, target=tag)
    return MadeLayers(keys=keys, tag=tag, regions=regions, scale=scale, translate=translate, params=first.params)
