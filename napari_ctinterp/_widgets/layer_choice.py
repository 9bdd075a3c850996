"""Which layer a widget works on: the viewer's CT layers, a combo of them, the slice shown now."""

from __future__ import annotations

import weakref
from typing import Any

import napari
import numpy as np
from magicgui.widgets import ComboBox

from .layer_info import KEY


def image_layers(viewer: napari.Viewer) -> list[napari.layers.Image]:
    """Greyscale image layers of the viewer (candidates for a CT)."""
    return [ly for ly in viewer.layers if isinstance(ly, napari.layers.Image) and not ly.rgb]


def ct_layers(viewer: napari.Viewer) -> list[napari.layers.Image]:
    """Greyscale image layers that are not attribution maps."""
    return [ly for ly in image_layers(viewer) if KEY not in ly.metadata]


def default_ct(viewer: napari.Viewer) -> napari.layers.Image | None:
    """The CT a widget should start on: the top-most visible CT layer (what the canvas shows)."""
    visible = [ly for ly in ct_layers(viewer) if ly.visible]
    return visible[-1] if visible else None


def ct_combo(viewer: napari.Viewer, label: str = "CT layer") -> ComboBox:
    """A combo box of the viewer's CT layers that starts on the CT the canvas shows.

    Until the user picks a CT in it, the combo follows the canvas as layers are added (a widget
    docked before the data is opened ends on the CT shown on top, not the first one read). The
    viewer's event holds the combo weakly: a closed dock is collected, and the handler leaves."""
    combo = ComboBox(label=label, choices=lambda _w=None: [(ly.name, ly) for ly in ct_layers(viewer)])
    _follow_top_ct(combo, viewer)
    return combo


def _follow_top_ct(combo: ComboBox, viewer: napari.Viewer) -> None:
    ref = weakref.ref(combo)
    state = {"picked": False, "setting": False}

    def show_default(box: ComboBox) -> None:
        start = default_ct(viewer)
        if start is None:
            return
        state["setting"] = True
        try:
            box.reset_choices()
            box.value = start
        except (RuntimeError, ValueError):  # the dock was closed / not among the choices yet
            pass
        finally:
            state["setting"] = False

    def changed(value: Any) -> None:
        # a CT other than the one on top: the user's choice, kept from now on (a reset of the
        # choices that lands on the top CT is not a choice)
        if not state["setting"] and value is not None and value is not default_ct(viewer):
            state["picked"] = True

    def inserted(_event: Any) -> None:
        box = ref()
        if box is None or state["picked"]:
            viewer.layers.events.inserted.disconnect(inserted)
            return
        show_default(box)

    show_default(combo)
    combo.changed.connect(changed)
    viewer.layers.events.inserted.connect(inserted)


def current_slice_index(viewer: napari.Viewer, layer: napari.layers.Layer) -> int | None:
    """Index along the layer's first axis shown now (None for a 2D layer)."""
    if layer.ndim < 3:
        return None
    data_pos = layer.world_to_data(viewer.dims.point)
    return int(np.clip(np.round(data_pos[0]), 0, layer.data.shape[0] - 1))


#: What to do with a file another reader opened (napari picks a reader when none is named).
OPEN_WITH_PLUGIN = ("open the DICOM file or folder with File ▸ Open with Plugin ▸ napari-ctinterp, or "
                    "viewer.open(path, plugin=\"napari-ctinterp\") from Python")


def not_hu_reason(layer: napari.layers.Layer) -> str | None:
    """Why a layer cannot be a CT in Hounsfield units (an RGB image, not 2D or 3D, unsigned integers
    that no reader rescaled), with the reader to use; None when it can be."""
    data = layer.data
    ndim = len(np.shape(data))
    meta = getattr(layer, "metadata", None) or {}
    why = None
    if getattr(layer, "rgb", False):
        why = "an RGB image"
    elif ndim not in (2, 3):
        why = f"a {ndim}-D array of shape {tuple(np.shape(data))}, not a slice (H, W) or a stack (Z, H, W)"
    elif np.issubdtype(np.dtype(data.dtype), np.unsignedinteger) and "spacing_mm" not in meta:
        why = f"{np.dtype(data.dtype)} pixel values that no DICOM reader rescaled to HU"
    if why is None:
        return None
    return f"layer \"{layer.name}\" is not a CT in HU ({why}); another reader probably opened it: {OPEN_WITH_PLUGIN}"


def unreadable_slices(layer: napari.layers.Layer) -> dict[int, str]:
    """The slices of a CT layer whose file could not be decoded (NaN), with the reader's reason
    (``metadata["bad_slices"]``, written by the plugin's reader); empty for other layers."""
    bad = (getattr(layer, "metadata", None) or {}).get("bad_slices") or {}
    return {int(z): str(msg) for z, msg in bad.items()}


def explainable(layer: napari.layers.Layer, indices: list[int | None]) -> tuple[list[int | None], str]:
    """``indices`` without the unreadable slices, and a note naming those left out; ``ValueError``
    when none is left (the reason names the file)."""
    bad = unreadable_slices(layer)
    left = [i for i in indices if i is None or i not in bad]
    out = [i for i in indices if i is not None and i in bad]
    if not left:
        z = out[0]
        raise ValueError(f"slice {z} could not be read ({bad[z]}): it holds no image; choose another slice"
                         if len(out) == 1 else f"none of slices {out[:5]} could be read ({bad[z]})")
    note = f"slice(s) {out[:10]} left out: their file could not be read. " if out else ""
    return left, note


__all__ = ["OPEN_WITH_PLUGIN", "ct_combo", "ct_layers", "current_slice_index", "default_ct", "explainable",
           "image_layers", "not_hu_reason", "unreadable_slices"]


def rewatch(old: Any, new: Any, callback: Any, events: tuple[str, ...] = ("paint", "data", "set_data")) -> Any:
    """Move ``callback`` from ``old``'s edit ``events`` to ``new``'s (either may be None); returns
    ``new``. The widgets follow the Labels layer chosen in a field (a mask, a known shortcut) this way."""
    for name in (events if old is not None else ()):
        getattr(old.events, name).disconnect(callback)
    for name in (events if new is not None else ()):
        getattr(new.events, name).connect(callback)
    return new
