"""Shared set-up of the 3D display, gallery-MIP and 3D-metrics tests: a phantom volume with its 3D
mask, and whole-CT map layers made as the Explain widget makes them (a 3D model's map, or a stack
of 2D maps over some slices)."""

from __future__ import annotations

import numpy as np

from napari_ctinterp._layers import ct_image_layer, mask_labels_layer
from napari_ctinterp._widgets.layer_info import MapLayerInfo
from napari_ctinterp._widgets.maps import map_layer_name, upsert_image
from napari_ctinterp.phantom import make_volume


def open_volume(viewer, *, size: int = 64, n_slices: int = 16, seed: int = 3):
    """A phantom volume (2.5 mm slices of wider pixels: anisotropic) and its 3D mask, as the sample opens them."""
    v = make_volume(seed, contrast=True, phase="arterial", n_slices=n_slices, spacing_mm=2.5, size=size)
    data, kw, _ = ct_image_layer(v.hu, v.spacing_mm, "volume", {"spacing_mm": v.spacing_mm})
    ct = viewer.add_image(data, **kw)
    mdata, mkw, _ = mask_labels_layer(v.mask.astype(np.uint8), v.spacing_mm, "volume mask", {})
    viewer.add_labels(mdata, **mkw)
    return ct, v


def add_maps(viewer, ct, maps, *, slices=None) -> list:
    """Map layers of ``maps`` (an AttributionMaps, or a dict with ``params``) over the whole CT:
    ``full_z``, every slice explained unless ``slices`` says which (a stack of 2D maps)."""
    n = int(ct.data.shape[0])
    out = []
    for (method, variant), signed in maps.items():
        info = MapLayerInfo.of_run(method, variant, image=ct.name, params=maps.params,
                                   slices=list(range(n)) if slices is None else slices, full_z=True, absolute=True)
        out.append(upsert_image(viewer, map_layer_name(ct.name, method, variant), np.abs(signed),
                                scale=tuple(ct.scale), translate=tuple(ct.translate),
                                metadata=info.layer_metadata(signed=signed)))
    return out


def cropping_checkpoint(folder):
    """A random MONAI DenseNet (3D, 16 × 24 × 24, four classes) whose card resamples to 3 × 12 × 12 mm
    and crops: on a 64² phantom (~6 mm pixels) a rim of CT voxels lies outside its input."""
    import torch

    from napari_ctinterp.model import ModelCard, build
    from napari_ctinterp.model.checkpoints import save_checkpoint

    args = {"init_features": 16, "growth_rate": 8, "block_config": [2, 2]}
    card = ModelCard(architecture="monai.DenseNet", architecture_args=args, spatial_dims=3, input_size=(16, 24, 24),
                     spacing_mm=(3.0, 12.0, 12.0), output="softmax",
                     class_names=("no contrast", "arterial", "pulmonary", "venous"), name="random 3D DenseNet")
    torch.manual_seed(4)
    net = build("monai.DenseNet", "softmax", in_channels=1, n_logits=4, spatial_dims=3, architecture_args=args)
    path, _ = save_checkpoint(net, folder / "dense3d.safetensors", card)
    return path
