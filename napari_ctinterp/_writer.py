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



def write_map(path: str, data: Any, meta: dict) -> list[str]:
    """Save an attribution-map layer as NIfTI (``.nii`` / ``.nii.gz``) or a DICOM Parametric Map
    (``.dcm``) on the CT it was computed on (the layer its record names), with the map's record.

    A map of one slice of a volume is saved on the whole CT's grid (0 elsewhere, its slice recorded).
    Without its CT open, a NIfTI keeps the layer's scale as spacing; a Parametric Map needs the CT
    open and read from DICOM. Errors are notifications (napari alone would say "not a valid writer").
    """
    from ._reader import MAP_KEY
    from .io import MapIOError, save_map

    try:
        record = (meta.get("metadata") or {}).get(MAP_KEY)
        if not isinstance(record, dict):
            raise MapIOError(f"{meta.get('name', 'this layer')!r} is not an attribution map: this writer saves the "
                             f"maps Explain makes, with their record; save other images with napari's own writer "
                             f"(e.g. as .tif)")
        values, ct, record, slices = _map_on_ct(np.asarray(data, dtype=np.float32), meta, dict(record))
        if str(path).lower().endswith(".dcm") and (ct is None or not ct.meta.get("files")):
            why = "is not open" if ct is None else "is not a DICOM series (no files to reference)"
            raise MapIOError(f"a DICOM Parametric Map is written on the CT series the map was computed on, and its "
                             f"CT {record.get('image', '')!r} {why}: open that DICOM series, or save as .nii.gz")
        record["layer_name"] = str(meta.get("name", ""))
        if ct is not None:
            save_map(values, path, reference=ct, meta=record, slices=slices)
        else:  # its CT is not open: the layer's own scale
            scale = tuple(float(s) for s in meta.get("scale", (1.0,) * values.ndim))
            record["note"] = "saved without its CT open: the layer's scale, no origin or series"
            save_map(values, path, spacing_mm=scale, meta=record, slices=slices)
    except MapIOError as e:
        from napari.utils.notifications import show_error

        show_error(f"Save map: {e}")
        raise
    return [str(Path(path))]


def _map_on_ct(values: np.ndarray, meta: dict, record: dict):
    """The map on its CT's whole grid, the CT (a ``CTVolume``; None when its layer is not open),
    the record (a one-slice map becomes ``full_z``) and the slices holding the map."""
    from ._reader import _layer_ct
    from .io import MapIOError

    layer = _ct_layer(str(record.get("image", "")))
    slices = [int(z) for z in record["slices"]] if record.get("full_z") and record.get("slices") else None
    if layer is None:
        return values, None, record, slices
    ct_shape = np.shape(layer.data)
    if values.shape != ct_shape and values.ndim == 3 and len(ct_shape) == 3 and values.shape[1:] == ct_shape[1:]:
        # a map of some slices: the record's slices, or (one slice) where its translate places it
        zs = [int(z) for z in record.get("slices") or []]
        if len(zs) != values.shape[0] and values.shape[0] == 1:
            translate = tuple(meta.get("translate", (0.0,) * 3))
            zs = [int(round((float(translate[0]) - float(layer.translate[0])) / float(layer.scale[0])))]
        if len(zs) != values.shape[0] or not all(0 <= z < ct_shape[0] for z in zs):
            raise MapIOError(f"the map's {values.shape[0]} slice(s) cannot be placed on its CT {layer.name!r} "
                             f"({ct_shape[0]} slices; recorded slices {zs}): explain again, then save")
        whole = np.zeros(ct_shape, dtype=np.float32)
        whole[zs] = values
        values, slices = whole, sorted(set(zs))
        record.update(full_z=True, slices=zs)
    if values.shape != ct_shape:
        raise MapIOError(f"the map ({values.shape}) is not on the grid of its CT {layer.name!r} ({ct_shape}): a map "
                         f"is saved on the CT it was computed on")
    return values, _layer_ct(layer), record, slices


def _ct_layer(name: str):
    """The open CT layer of this name (an Image layer that is not a map), or None."""
    from ._reader import MAP_KEY

    try:
        import napari

        viewer = napari.current_viewer()
    except Exception:  # noqa: BLE001 - no viewer: the writer used on its own
        return None
    if viewer is None or not name or name not in viewer.layers:
        return None
    layer = viewer.layers[name]
    ok = isinstance(layer, napari.layers.Image) and not layer.rgb and MAP_KEY not in layer.metadata
    return layer if ok else None
