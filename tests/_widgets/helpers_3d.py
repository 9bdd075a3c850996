"""Shared set-up of the widget tests with a 3D model: a viewer with the widget docked first, then a
phantom volume (or a phantom series written as DICOM and opened through the plugin's reader, or
pydicom's one-slice CT_small), and a random MONAI 3D DenseNet saved with its card to a file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from napari_ctinterp._layers import ct_image_layer
from napari_ctinterp.phantom import make_volume

#: The random DenseNet's card: resampled to 3 × 12 × 12 mm and cropped to 16 × 24 × 24 (a 64² phantom
#: at 2.5 × 5.4 × 5.4 mm is 20 × 29 × 29 there: the crop leaves a rim of CT voxels out).
DENSE_SPACING = (3.0, 12.0, 12.0)
DENSE_ARGS = {"init_features": 16, "growth_rate": 8, "block_config": [2, 2]}


def docked_first(make_napari_viewer, widget_class, name: str):
    """A fresh viewer with ``widget_class`` docked before any data is open."""
    viewer = make_napari_viewer()
    widget = widget_class(viewer)
    viewer.window.add_dock_widget(widget, name=name)
    return viewer, widget


def add_phantom_volume(viewer, *, size: int = 96, n_slices: int = 24, seed: int = 5, phase: str = "arterial"):
    """The phantom volume as the plugin's sample makes it (HU, scale = spacing in mm); its mask too."""
    from napari_ctinterp._layers import mask_labels_layer

    v = make_volume(seed, contrast=True, phase=phase, n_slices=n_slices, spacing_mm=2.5, size=size)
    data, kwargs, _ = ct_image_layer(v.hu, v.spacing_mm, f"phantom volume ({n_slices} slices)",
                                     {"spacing_mm": v.spacing_mm})
    layer = viewer.add_image(data, **kwargs)
    mdata, mkwargs, _ = mask_labels_layer(v.mask.astype(np.uint8), v.spacing_mm, "phantom volume mask", {})
    viewer.add_labels(mdata, **mkwargs)
    return layer, v


def open_dicom_series(viewer, folder: Path, *, size: int = 64, n_slices: int = 24, seed: int = 9):
    """A phantom series written as DICOM, opened through the plugin's reader; returns its layer."""
    from napari_ctinterp.io import write_dicom_series

    v = make_volume(seed, contrast=True, phase="venous", n_slices=n_slices, spacing_mm=2.5, size=size)
    write_dicom_series(v.hu, folder, spacing_mm=v.spacing_mm, seed=seed)
    layers = viewer.open(str(folder), plugin="napari-ctinterp")
    return next(ly for ly in layers if ly.ndim == 3 and ly.__class__.__name__ == "Image")


def open_ct_small(viewer):
    """pydicom's CT_small.dcm (one slice), as the plugin's sample opens it."""
    from napari_ctinterp._sample_data import ct_small

    data, kwargs, _ = ct_small()[0]
    return viewer.add_image(data, **kwargs)


def dense_checkpoint(folder: Path) -> Path:
    """A random MONAI DenseNet (two blocks of two layers), 3D, 16 × 24 × 24, four classes, saved with its card."""
    from napari_ctinterp.model import ModelCard, build
    from napari_ctinterp.model.checkpoints import save_checkpoint

    card = ModelCard(architecture="monai.DenseNet", architecture_args=DENSE_ARGS, spatial_dims=3,
                     input_size=(16, 24, 24), spacing_mm=DENSE_SPACING, output="softmax",
                     class_names=("no contrast", "arterial", "pulmonary", "venous"), name="random 3D DenseNet")
    torch.manual_seed(4)
    net = build("monai.DenseNet", "softmax", in_channels=1, n_logits=4, spatial_dims=3, architecture_args=DENSE_ARGS)
    path, _ = save_checkpoint(net, folder / "dense3d.safetensors", card)
    return path


def choose(widget, model) -> None:
    """Choose a bundled model by name, or a checkpoint file."""
    if isinstance(model, Path):
        widget.model.value = "file…"
        widget.path.value = model
    else:
        widget.model.value = model
