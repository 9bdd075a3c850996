"""napari reader contributions: DICOM CT (file, folder or files) and saved reference masks.

The reader claims a path only when it holds DICOM (quick preamble check), so the catch-all
filename pattern never steals other formats. Errors are ``CTReadError`` with a message that says
what to do; napari shows it as a notification instead of crashing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ._layers import LayerData, ct_image_layer, mask_labels_layer
from ._triton import preload_triton

preload_triton()  # a napari process: see napari_ctinterp._triton

PathLike = str | Path
ReaderFunction = Callable[[PathLike | Sequence[PathLike]], list[LayerData]]


def _paths(path: PathLike | Sequence[PathLike]) -> list[Path]:
    return [Path(p) for p in path] if isinstance(path, (list, tuple)) else [Path(path)]


def get_reader(path: PathLike | Sequence[PathLike]) -> ReaderFunction | None:
    """Return ``read_ct_layers`` if ``path`` (or every path of a list) is DICOM, else None."""
    from .io import is_dicom

    paths = _paths(path)
    if not paths or not all(is_dicom(p) for p in paths):
        return None
    return read_ct_layers


def read_ct_layers(path: PathLike | Sequence[PathLike]) -> list[LayerData]:
    """Read a CT series into one Image layer in HU, scaled in mm, mediastinal window.

    ``read_ct`` already raises each of ``meta["warnings"]`` (other series found, non-CT modality,
    uneven spacing) as a ``CTReadWarning``, which napari shows as a notification.
    """
    from .io import read_ct

    paths = _paths(path)
    vol = read_ct(paths[0] if len(paths) == 1 else paths)
    meta = dict(vol.meta)
    meta["spacing_mm"] = tuple(vol.spacing_mm)
    meta["origin_mm"] = tuple(vol.origin)
    hu, spacing = vol.hu, tuple(vol.spacing_mm)
    if hu.shape[0] == 1:  # a single slice is a 2D image
        hu, spacing = hu[0], spacing[1:]
    desc = str(meta.get("series_description") or "").strip()
    name = f"{meta.get('modality', 'CT')} · {desc}" if desc else f"{meta.get('modality', 'CT')} series"
    name = f"{name} ({vol.hu.shape[0]} slices)" if vol.hu.shape[0] > 1 else name
    return [ct_image_layer(hu, spacing, name, meta)]


def get_mask_reader(path: PathLike | Sequence[PathLike]) -> ReaderFunction | None:
    """Reader for masks written by this plugin (``.npz`` with labels and spacing, NIfTI)."""
    paths = _paths(path)
    if len(paths) != 1 or not paths[0].is_file():
        return None
    p = paths[0]
    if p.name.endswith((".nii", ".nii.gz")):
        return read_mask_layers
    if p.suffix == ".npz":
        import numpy as np

        try:
            with np.load(p) as z:
                ok = {"labels", "spacing_mm"} <= set(z.files)
        except (OSError, ValueError):
            return None
        return read_mask_layers if ok else None
    return None


def read_mask_layers(path: PathLike | Sequence[PathLike]) -> list[LayerData]:
    """Read a saved reference mask into a Labels layer with its spacing."""
    from .io import load_mask

    p = _paths(path)[0]
    m = load_mask(p)
    name = p.name.split(".")[0] + " · reference mask"
    meta = dict(m.meta or {})
    meta["spacing_mm"] = tuple(m.spacing_mm)
    return [mask_labels_layer(m.labels, m.spacing_mm, name, meta)]
