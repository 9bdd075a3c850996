"""napari reader contributions: DICOM CT (file, folder or files), DICOM SEG masks, saved
reference masks, and saved attribution maps (NIfTI with the map's record, DICOM Parametric Map)
opened over the CT they were computed on (``_map_reader``).

The reader claims a path only when it holds DICOM (quick preamble check), so the catch-all
filename pattern never steals other formats. Errors are ``CTReadError`` with a message that says
what to do; napari shows it as a notification instead of crashing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ._layers import LayerData, ct_image_layer, mask_labels_layer
from ._triton import preload_triton

preload_triton()  # a napari process: see napari_ctinterp._triton

PathLike = str | Path
ReaderFunction = Callable[[PathLike | Sequence[PathLike]], list[LayerData]]


def _paths(path: PathLike | Sequence[PathLike]) -> list[Path]:
    return [Path(p) for p in path] if isinstance(path, (list, tuple)) else [Path(path)]


MASK_SUFFIXES = (".npz", ".nii", ".nii.gz")  # the mask reader's patterns (napari.yaml)


def get_reader(path: PathLike | Sequence[PathLike]) -> ReaderFunction | None:
    """The CT (or SEG) reader for ``path``; for anything else, a reader that says why not.

    DICOM (the ``DICM`` marker) gets ``read_ct_layers`` (``read_seg_layers`` for a SEG file). A
    mask file (``.npz``, NIfTI) is left to the mask reader (None). Any other path gets
    ``read_or_explain``: it still tries ``read_ct`` (DICOM written without the 128-byte preamble
    opens) and otherwise raises a ``CTReadError`` that names the file, the reason and napari's own
    reader. napari only calls this for such a path when the person chose this plugin (or no other
    reader claims the file): returning None would make napari say "refused the file" and no more.
    """
    from .io import is_dicom
    from .io.parametric_map import is_parametric_map

    paths = _paths(path)
    if not paths or any(p.name.lower().endswith(MASK_SUFFIXES) for p in paths):
        return None
    if not all(is_dicom(p) for p in paths):
        return read_or_explain
    if len(paths) == 1 and paths[0].is_file() and _is_seg(paths[0]):
        return read_seg_layers
    if len(paths) == 1 and paths[0].is_file() and is_parametric_map(paths[0]):
        return read_map_layers
    return read_ct_layers


def read_or_explain(path: PathLike | Sequence[PathLike]) -> list[LayerData]:
    """``read_ct_layers`` for a path without the DICOM marker, or a message that says what to do."""
    from .io import CTReadError

    try:
        return read_ct_layers(path)
    except CTReadError as e:
        paths = _paths(path)
        what = paths[0].name if len(paths) == 1 else f"{len(paths)} files"
        raise CTReadError(
            f"napari-ctinterp cannot open {what}: {e} This plugin reads DICOM CT (a file, a series "
            "folder or a list of files), DICOM SEG, its own masks (.npz, .nii, .nii.gz) and attribution "
            "maps (.nii.gz, DICOM Parametric Map); open other images with napari's reader: "
            "viewer.open(path, plugin='napari')."
        ) from e


def _is_seg(path: Path) -> bool:
    """A DICOM Segmentation object (Modality SEG)."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality", "SOPClassUID"])
    except Exception:  # noqa: BLE001 - not readable as DICOM: not a SEG
        return False
    return str(ds.get("Modality", "")) == "SEG" or str(ds.get("SOPClassUID", "")) == "1.2.840.10008.5.1.4.1.1.66.4"


def _open_ct_of(series_uid: str):
    """The CT already open in the current viewer with this series, as a ``CTVolume`` (or None)."""
    import numpy as np

    from .io import CTVolume

    try:
        import napari

        viewer = napari.current_viewer()
    except Exception:  # noqa: BLE001 - no viewer (reader used on its own)
        return None
    for layer in [] if viewer is None else viewer.layers:
        meta = getattr(layer, "metadata", {}) or {}
        if meta.get("series_uid") == series_uid and meta.get("files"):
            hu = np.asarray(layer.data, dtype=np.float32)
            hu = hu[None] if hu.ndim == 2 else hu
            spacing = tuple(meta.get("spacing_mm", (1.0, 1.0, 1.0)))
            spacing = spacing if len(spacing) == 3 else (1.0, *spacing)
            return CTVolume(hu=hu, spacing_mm=spacing, origin=tuple(meta.get("origin_mm", (0.0, 0.0, 0.0))),
                            meta=meta)
    return None


def _open_ct_for_nifti(path: Path):
    """The one open DICOM CT with as many voxels as the NIfTI (so its affine can align it), or None."""
    try:
        import napari
        import nibabel as nib

        viewer = napari.current_viewer()
        n = int(np.prod(nib.load(path).shape[:3]))
    except Exception:  # noqa: BLE001 - no viewer, unreadable file: load_mask reads it as before / says why
        return None
    cts = [ct for ly in ([] if viewer is None else viewer.layers)
           if (uid := (getattr(ly, "metadata", {}) or {}).get("series_uid")) and (ct := _open_ct_of(uid)) is not None
           and ct.hu.size == n]
    return cts[0] if len(cts) == 1 else None


def read_seg_layers(path: PathLike | Sequence[PathLike]) -> list[LayerData]:
    """A DICOM SEG as a Labels layer on the CT it segments: the CT open in the viewer with that
    series, or else the series found beside the SEG (then opened too). Segment names are the
    Labels layer's ``segment`` feature (shown when hovering)."""
    from .io import MaskIOError, find_referenced_series, load_mask, read_ct, referenced_series_uids

    p = _paths(path)[0]
    refs = referenced_series_uids(p)
    if not refs:
        raise MaskIOError(f"{p.name} names no referenced series: open its CT first and load it with io.load_mask")
    ct = _open_ct_of(refs[0])
    layers: list[LayerData] = []
    if ct is None:
        files = find_referenced_series(p, refs[0])
        ct = read_ct(files, allow_non_ct=True) if files else None
        if ct is None:
            raise MaskIOError(f"{p.name} segments series {refs[0]}, which is neither open in the viewer nor in the "
                              f"folders beside the file: open that CT series first, then the SEG")
        layers.extend(read_ct_layers(ct.meta["files"]))
    m = load_mask(p, reference=ct)
    names = m.meta.get("segment_names", {})
    meta = {**m.meta, "spacing_mm": tuple(m.spacing_mm)}
    labels = m.labels[0] if ct.hu.shape[0] == 1 else m.labels
    spacing = tuple(m.spacing_mm)[1:] if ct.hu.shape[0] == 1 else tuple(m.spacing_mm)
    data, kwargs, kind = mask_labels_layer(labels, spacing, f"{p.stem} · {', '.join(names.values())}"[:80], meta)
    kwargs["features"] = {"index": [0, *names], "segment": ["background", *names.values()]}
    layers.append((data, kwargs, kind))
    return layers


def read_ct_layers(path: PathLike | Sequence[PathLike]) -> list[LayerData]:
    """Read a CT series into one Image layer in HU, scaled in mm, mediastinal window.

    ``read_ct`` already raises each of ``meta["warnings"]`` (other series found, non-CT modality,
    uneven spacing) as a ``CTReadWarning``, which napari shows as a notification.

    A file of the series that cannot be read or decoded (truncated, a broken codec) does not block
    the series: its slices open NaN, the warning names the file, and the layer's metadata lists
    them (``metadata["bad_slices"]``: ``{z: message}``; the widgets do not explain them). A series
    none of whose files can be decoded is refused with the first file's reason.
    """
    from .io import CTReadError, read_ct

    paths = _paths(path)
    # A non-CT series (MR, PET, a secondary capture) opens so that it can be looked at, but never
    # as HU: read_ct's CTReadWarning says so as a notification, the layer's name says it, and the
    # widgets show the warning beside any answer (metadata "not_hu").
    vol = read_ct(paths[0] if len(paths) == 1 else paths, allow_non_ct=True, bad_slices="nan")
    bad = {int(z): str(msg) for z, msg in (vol.meta.get("bad_slices") or {}).items()}
    if bad and len(bad) == vol.hu.shape[0]:
        raise CTReadError(f"no slice of this series could be decoded: {next(iter(bad.values()))}")
    meta = dict(vol.meta)
    meta["bad_slices"] = bad
    not_hu = not meta.get("is_ct", str(meta.get("modality", "")).upper() == "CT")
    meta["not_hu"] = not_hu
    meta["spacing_mm"] = tuple(vol.spacing_mm)
    meta["origin_mm"] = tuple(vol.origin)
    hu, spacing = vol.hu, tuple(vol.spacing_mm)
    if hu.shape[0] == 1:  # a single slice is a 2D image
        hu, spacing = hu[0], spacing[1:]
    desc = str(meta.get("series_description") or "").strip()
    name = f"{meta.get('modality', 'CT')} · {desc}" if desc else f"{meta.get('modality', 'CT')} series"
    name = f"{name} ({vol.hu.shape[0]} slices)" if vol.hu.shape[0] > 1 else name
    if not not_hu:
        return [ct_image_layer(hu, spacing, name, meta)]
    data, kwargs, kind = ct_image_layer(hu, spacing, f"{name} · NOT CT, values are not HU", meta)
    lo, hi = np.percentile(hu, [0.5, 99.5]) if hu.size else (0.0, 1.0)
    kwargs["contrast_limits"] = (float(lo), float(hi) if hi > lo else float(lo) + 1.0)  # not a HU window
    return [(data, kwargs, kind)]


def get_mask_reader(path: PathLike | Sequence[PathLike]) -> ReaderFunction | None:
    """Reader for masks written by this plugin (``.npz`` with labels and spacing, NIfTI)."""
    paths = _paths(path)
    if len(paths) != 1 or not paths[0].is_file():
        return None
    p = paths[0]
    if p.name.endswith((".nii", ".nii.gz")):
        from .io import is_map_file

        if is_map_file(p):  # an attribution map saved by the plugin: an Image layer over its CT
            return read_map_layers
        return read_mask_layers
    if p.suffix == ".npz":
        import numpy as np

        try:
            with np.load(p) as z:
                ok = {"labels", "spacing_mm"} <= set(z.files)
        except (OSError, ValueError):
            ok = False
        return read_mask_layers if ok else _not_a_mask
    return None


def _not_a_mask(path: PathLike | Sequence[PathLike]) -> list[LayerData]:
    """An ``.npz`` that is not one of this plugin's masks: say so instead of "refused the file"."""
    from .io import CTReadError

    raise CTReadError(
        f"napari-ctinterp cannot open {_paths(path)[0].name}: a mask file of this plugin is an .npz "
        "with the arrays 'labels' and 'spacing_mm' (written by its mask writer or "
        "napari_ctinterp.io.save_mask); this one lacks them or is not a readable .npz."
    )


def read_mask_layers(path: PathLike | Sequence[PathLike]) -> list[LayerData]:
    """Read a saved reference mask into a Labels layer with its spacing."""
    from .io import load_mask

    p = _paths(path)[0]
    m = load_mask(p, reference=_open_ct_for_nifti(p)) if p.name.endswith((".nii", ".nii.gz")) else load_mask(p)
    name = p.name.split(".")[0] + " · reference mask"
    meta = dict(m.meta or {})
    meta["spacing_mm"] = tuple(m.spacing_mm)
    return [mask_labels_layer(m.labels, m.spacing_mm, name, meta)]


#: The layer-metadata key of a map layer's record (``_widgets.layer_info.KEY``: the readers sit
#: below the widgets in the import layers, so they cannot import it).
MAP_KEY = "ctinterp_map"
#: A map layer's display, as the widgets' (``_widgets.maps``): transparent → red → yellow → white.
_HEAT = ([[0.0, 0.0, 0.0, 0.0], [0.85, 0.0, 0.0, 0.55], [1.0, 0.55, 0.0, 0.85], [1.0, 1.0, 0.0, 1.0],
          [1.0, 1.0, 1.0, 1.0]], [0.0, 0.15, 0.45, 0.8, 1.0])


def _ct_layers() -> list:
    """The open CT layers (greyscale 2D/3D Image layers that are not maps) of the current viewer."""
    try:
        import napari

        viewer = napari.current_viewer()
    except Exception:  # noqa: BLE001 - no viewer (reader used on its own)
        return []
    return [ly for ly in ([] if viewer is None else viewer.layers) if isinstance(ly, napari.layers.Image)
            and not ly.rgb and ly.ndim in (2, 3) and MAP_KEY not in ly.metadata]


def _layer_ct(layer):
    """A CT layer as a ``CTVolume`` (HU (Z, H, W), its DICOM geometry and files when it has them)."""
    from .io import CTVolume

    meta = dict(layer.metadata or {})
    hu = np.asarray(layer.data, dtype=np.float32)
    spacing = tuple(float(v) for v in (meta.get("spacing_mm") or layer.scale))
    return CTVolume(hu=hu[None] if hu.ndim == 2 else hu, spacing_mm=spacing if len(spacing) == 3 else (1.0, *spacing),
                    origin=tuple(meta.get("origin_mm", (0.0, 0.0, 0.0))), meta=meta)


def _map_ct(p: Path):
    """The CT to show the map on: (CT layer or None, its CTVolume or None, CT LayerData to open or None).

    An open CT of the map's series (or, for a map saved without a series, of its grid); else, when
    no CT is open, its series found beside the file; else none (the map alone). An open CT that is
    not the map's: refused, saying which CT the map belongs to."""
    from .io import MapIOError, find_referenced_series, load_map, read_ct, saved_grid

    grid, uid = saved_grid(p)
    cts = _ct_layers()
    for ly in cts:
        meta = ly.metadata or {}
        spacing = tuple(meta.get("spacing_mm") or ly.scale)[-ly.ndim:]
        same_grid = grid is not None and np.shape(ly.data) == tuple(grid.shape[3 - ly.ndim:]) and np.allclose(
            spacing, grid.spacing_mm[3 - ly.ndim:], rtol=1e-4)
        if (uid and meta.get("series_uid") == uid) or (not uid and same_grid) or (grid is None and len(cts) == 1):
            return ly, _layer_ct(ly), None
    if len(cts) == 1:
        load_map(p, reference=_layer_ct(cts[0]))  # raises the refusal, naming both CTs
    if cts:
        belongs = grid.describe() if grid is not None else (f"series {uid}" if uid else "another CT")
        raise MapIOError(f"{p.name} was computed on {belongs}, which none of the {len(cts)} open CTs is "
                         f"({', '.join(repr(ly.name) for ly in cts)}): open that CT and the map again, or close "
                         f"them to see the map alone on its own grid")
    files = find_referenced_series(p, uid) if uid else []
    if files:
        ct = read_ct(files, allow_non_ct=True)
        return None, ct, read_ct_layers(ct.meta["files"])[0]
    return None, None, None


def read_map_layers(path: PathLike | Sequence[PathLike]) -> list[LayerData]:
    """A saved attribution map as an Image layer over the CT it was computed on: the same scale and
    translate as the CT layer, the heat display, its record under ``MAP_KEY`` (so Gallery and
    Metrics treat it as a map of that CT). Its CT is the open one of its series, or else the series
    found beside the file (opened too); with neither, the map opens alone on its own grid, with a
    warning. A map of another CT than the one open is refused (``MapIOError``: which CT it belongs to)."""
    import warnings

    from napari.utils.colormaps import Colormap

    from .io import load_map

    p = _paths(path)[0]
    layer, ct, ct_data = _map_ct(p)
    m = load_map(p, reference=ct)
    out: list[LayerData] = [] if ct_data is None else [ct_data]
    if ct is None:
        values, scale, translate, image = m.values, tuple(m.spacing_mm), None, p.name
        warnings.warn(f"{p.name}: its CT ({m.grid.describe() if m.grid else 'unknown'}) is not open, so the map "
                      f"is shown alone on its own grid; open its CT first, then the map, to see it over the CT",
                      UserWarning, stacklevel=2)
    else:
        flat = (layer.ndim if layer is not None else ct_data[0].ndim) == 2
        values = m.values[0] if flat else m.values
        kwargs = ct_data[1] if layer is None else {"scale": layer.scale, "translate": layer.translate}
        scale = tuple(float(v) for v in kwargs["scale"])
        translate = tuple(float(v) for v in kwargs.get("translate", (0.0,) * values.ndim))
        image = layer.name if layer is not None else ct_data[1]["name"]
    rec = dict(m.meta)
    rec.setdefault("method", "map")
    rec.setdefault("variant", p.name.split(".")[0])
    rec.update(image=image, full_z=values.ndim == 3 and values.shape[0] > 1,
               slices=list(m.slices) if values.ndim == 3 else [])
    kind = " · XRAI" if rec.get("kind") == "region" else ""
    tag = f" · →{rec['tag']}" if rec.get("tag") else ""
    finite = values[np.isfinite(values)]
    lo, hi = (float(v) for v in np.percentile(finite, [50.0, 99.5])) if finite.size else (0.0, 1.0)
    lo, hi = (lo, hi) if hi > lo else (float(finite.min(initial=0.0)), float(finite.max(initial=1.0)))
    kwargs = {"name": f"{rec['method']} · {rec['variant']}{kind}{tag} — {image}", "scale": scale,
              "metadata": {MAP_KEY: rec, "map_file": {"path": str(p), "format": m.format, **m.info}},
              "colormap": Colormap(colors=_HEAT[0], controls=_HEAT[1], name="ctinterp heat"),
              "blending": "translucent", "opacity": 0.8, "contrast_limits": (lo, hi if hi > lo else lo + 1.0)}
    if translate is not None:
        kwargs["translate"] = translate
    return [*out, (values, kwargs, "image")]
