"""napari sample data: a matched phantom pair with its mask (also with a planted marker), a phantom
volume, and pydicom's real CT_small.dcm."""

from __future__ import annotations

from ._layers import LayerData, ct_image_layer, mask_labels_layer
from ._triton import preload_triton

preload_triton()  # a napari process: see napari_ctinterp._triton

#: The seed and level of the sample pair: a heart-level slice (chambers, aorta, lung vessels).
SAMPLE_SEED = 2024
SAMPLE_LEVEL = 0.58


def phantom_pair() -> list[LayerData]:
    """Same anatomy and noise without contrast and in the arterial phase, plus the reference mask."""
    from .phantom import make_slice

    plain = make_slice(SAMPLE_SEED, contrast=False, phase="arterial", level=SAMPLE_LEVEL)
    art = make_slice(SAMPLE_SEED, contrast=True, phase="arterial", level=SAMPLE_LEVEL)
    layers = []
    for s, name in ((plain, "phantom · no contrast"), (art, "phantom · arterial")):
        meta = {"source": "napari_ctinterp.phantom", "phantom": s.meta, "spacing_mm": s.spacing_mm,
                "label": "contrast" if s.meta["contrast"] else "no contrast"}
        layers.append(ct_image_layer(s.hu, s.spacing_mm, name, meta))
    mask_meta = {"source": "napari_ctinterp.phantom", "spacing_mm": art.spacing_mm,
                 "definition": "contrast raises HU by >= 50 in the arterial phase"}
    layers.append(mask_labels_layer(art.mask.astype("uint8"), art.spacing_mm, "phantom · reference mask",
                                    mask_meta))
    return layers


#: The marker of the "pair with a marker" sample: a lead side letter on the skin.
SAMPLE_MARKER = "letter"


def phantom_pair_marker() -> list[LayerData]:
    """The phantom pair with the same planted marker on both slices (a lead side letter on the
    skin, ``phantom.markers``), the reference mask and the marker's own mask: ``demo`` answers by
    the contrast, ``demo-shortcut`` by the marker (it calls both slices "contrast")."""
    from .phantom import add_marker, make_slice

    layers = []
    for contrast, name in ((False, "phantom + marker · no contrast"), (True, "phantom + marker · arterial")):
        s = add_marker(make_slice(SAMPLE_SEED, contrast=contrast, phase="arterial", level=SAMPLE_LEVEL),
                       SAMPLE_MARKER)
        meta = {"source": "napari_ctinterp.phantom", "phantom": s.meta, "spacing_mm": s.spacing_mm,
                "label": "contrast" if contrast else "no contrast"}
        layers.append(ct_image_layer(s.hu, s.spacing_mm, name, meta))
    mask_meta = {"source": "napari_ctinterp.phantom", "spacing_mm": s.spacing_mm,
                 "definition": "contrast raises HU by >= 50 in the arterial phase"}
    layers.append(mask_labels_layer(s.mask.astype("uint8"), s.spacing_mm, "phantom · reference mask", mask_meta))
    marker_meta = {"source": "napari_ctinterp.phantom", "spacing_mm": s.spacing_mm, "marker": s.meta["marker"],
                   "definition": f"the planted {SAMPLE_MARKER} marker (ground truth of what demo-shortcut reads)"}
    layers.append(mask_labels_layer(s.marker_mask.astype("uint8"), s.spacing_mm, "phantom · marker mask",
                                    marker_meta))
    return layers


#: The sample volume: 24 slices, 2.5 mm apart, around the heart.
VOLUME_SLICES = 24


def phantom_volume() -> list[LayerData]:
    """A small arterial-phase phantom volume (24 slices, 256², 2.5 mm) with its 3D reference mask."""
    from .phantom import make_volume

    v = make_volume(SAMPLE_SEED, contrast=True, phase="arterial", n_slices=VOLUME_SLICES, centre_level=SAMPLE_LEVEL)
    meta = {"source": "napari_ctinterp.phantom", "phantom": v.meta, "spacing_mm": v.spacing_mm, "label": "contrast"}
    mask_meta = {"source": "napari_ctinterp.phantom", "spacing_mm": v.spacing_mm,
                 "definition": "contrast raises HU by >= 50 in the arterial phase"}
    return [ct_image_layer(v.hu, v.spacing_mm, f"phantom volume · arterial ({VOLUME_SLICES} slices)", meta),
            mask_labels_layer(v.mask.astype("uint8"), v.spacing_mm, "phantom volume · reference mask", mask_meta)]


def ct_small() -> list[LayerData]:
    """pydicom's ``CT_small.dcm`` (128×128 chest crop with contrast), read by ``io.read_ct``."""
    from pydicom.data import get_testdata_file

    from ._reader import read_ct_layers

    path = get_testdata_file("CT_small.dcm", download=False)
    if path is None:  # pragma: no cover - pydicom always ships it
        raise FileNotFoundError("pydicom's CT_small.dcm is missing: reinstall pydicom")
    data, kwargs, kind = read_ct_layers(path)[0]
    kwargs["name"] = "CT_small (pydicom)"
    return [(data, kwargs, kind)]
