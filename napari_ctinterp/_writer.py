"""napari writer contribution: save a reference mask (Labels layer) with its geometry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def write_mask(path: str, data: Any, meta: dict) -> list[str]:
    """Save a Labels layer as ``.npz`` or NIfTI, keeping the layer's scale as spacing in mm."""
    from .io import save_mask

    labels = np.asarray(data)
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
