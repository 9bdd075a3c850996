"""napari writer contribution: save a reference mask (Labels layer) with its geometry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def write_mask(path: str, data: Any, meta: dict) -> list[str]:
    """Save a Labels layer as ``.npz`` or NIfTI, keeping the layer's scale as spacing in mm, or as
    a DICOM SEG (``.dcm``) on the CT series open in the viewer that it was painted on."""
    from .io import save_mask

    labels = np.asarray(data)
    if str(path).lower().endswith(".dcm"):
        from .io import MaskIOError

        try:
            ct = _painted_on(labels, (meta.get("metadata") or {}).get("series_uid"))
            save_mask(labels, path, spacing_mm=ct.spacing_mm, format="seg", reference=ct, names=_segment_names(meta))
        except MaskIOError as e:  # napari would only say "not a valid writer": say why
            from napari.utils.notifications import show_error

            show_error(f"Save as DICOM SEG: {e}")
            raise
        return [str(Path(path))]
    scale = tuple(float(s) for s in meta.get("scale", (1.0,) * labels.ndim))
    layer_meta = dict(meta.get("metadata") or {})
    keep = {k: layer_meta[k] for k in ("series_uid", "source", "spacing_mm") if k in layer_meta}
    keep["layer_name"] = meta.get("name", "")
    save_mask(labels, path, spacing_mm=scale, meta=_jsonable(keep))
    return [str(Path(path))]


def _jsonable(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, (str, int, float, bool)) or v is None:
            out[k] = v
        elif isinstance(v, (list, tuple)):
            out[k] = [float(x) if isinstance(x, (int, float, np.floating)) else str(x) for x in v]
        else:
            out[k] = str(v)
    return out


def _painted_on(labels: np.ndarray, series_uid: str | None = None):
    """The DICOM CT the mask was painted on: the open series the layer names (``series_uid`` of a
    SEG opened by the plugin), else the one open DICOM CT of the mask's shape (several: refused)."""
    from ._reader import _open_ct_of
    from .io import MaskIOError

    try:
        import napari

        viewer = napari.current_viewer()
    except Exception:  # noqa: BLE001
        viewer = None
    shape = labels.shape if labels.ndim == 3 else (1, *labels.shape)
    if series_uid:
        ct = _open_ct_of(series_uid)
        if ct is not None and ct.hu.shape == shape:
            return ct
    fits: dict[str, object] = {}
    for layer in [] if viewer is None else viewer.layers:
        uid = (getattr(layer, "metadata", {}) or {}).get("series_uid")
        ct = _open_ct_of(uid) if uid and uid not in fits else None
        if ct is not None and ct.hu.shape == shape:
            fits[uid] = ct
    if len(fits) == 1:
        return next(iter(fits.values()))
    if len(fits) > 1:
        raise MaskIOError(f"{len(fits)} open DICOM series have the mask's shape {shape} ({', '.join(fits)}): "
                          f"close the ones it was not painted on, then save the SEG again")
    raise MaskIOError("a DICOM SEG is written on the CT series it was painted on: open that DICOM series in "
                      "the viewer (a CT of the mask's shape), or save as .nii.gz / .npz")


def _segment_names(meta: dict) -> dict[int, str]:
    """Label → name from the layer's ``segment`` feature (a SEG opened by the plugin), if any."""
    feats = meta.get("features")
    try:
        return {int(i): str(n) for i, n in zip(feats["index"], feats["segment"]) if int(i) != 0}
    except (TypeError, KeyError, ValueError):
        return {}
