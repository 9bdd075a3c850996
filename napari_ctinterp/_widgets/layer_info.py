"""The record of an attribution-map layer: what it shows, of which CT, on which slices.

Every map layer (pixel map or XRAI region map) carries one :class:`MapLayerInfo`, stored on the
layer as a plain dict under ``layer.metadata["ctinterp_map"]`` (:data:`KEY`) so that napari can
copy and save it. This module is the only place that writes or reads that dict: widgets call
:meth:`MapLayerInfo.from_layer` (or ``maps.map_info``) and use the typed fields.

The dict holds the typed fields, the run's other recorded parameters (``params``: steps, samples,
seed, references, Grad-CAM layer, domain check, …, flattened beside them as they always were) and
``"version"``. A dict without ``"version"`` (layers made before the field existed) has the same
fields and is read as version 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

import napari
import numpy as np

#: The layer metadata key of the record.
KEY = "ctinterp_map"
#: The record's version written now (1: the fields below; dicts without a version are version 1).
VERSION = 1


@dataclass(frozen=True)
class MapLayerInfo:
    """What a map layer shows: one (method, variant) map of one CT layer, on some of its slices.

    Attributes
    ----------
    method, variant : str
        The attribution method and variant (``"IGB"``, ``"SG2"``; the names of the CLI and CSVs).
    image : str
        The name of the CT layer the map was made from.
    kind : str
        ``"pixel"`` (an attribution map) or ``"region"`` (its XRAI region map).
    slices : tuple of int
        The CT slices explained (empty: a 2D CT, or not recorded).
    full_z : bool
        True when the layer's data is ``(Z, H, W)`` on the whole CT's grid, with maps on
        ``slices`` only (a slice range, the slices with mask, the whole volume).
    tag : str
        The explained class when it is not the predicted one (``""`` otherwise): part of the
        layer's name and title.
    target : int or None
        The class explained (a run over several slices: None when each slice has its own, see
        ``targets``).
    targets : tuple of int
        The class explained on each of ``slices``, in the same order.
    model : str
        The model's source (``"demo"`` or a checkpoint path).
    params : Mapping
        The run's other recorded parameters, as recorded (read-only).
    version : int
        The record's version (:data:`VERSION`).
    """

    method: str
    variant: str
    image: str = ""
    kind: str = "pixel"
    slices: tuple[int, ...] = ()
    full_z: bool = False
    tag: str = ""
    target: int | None = None
    targets: tuple[int, ...] = ()
    model: str = "demo"
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)
    version: int = VERSION

    def __post_init__(self) -> None:
        if self.kind not in ("pixel", "region"):
            raise ValueError(f"a map layer's kind is 'pixel' or 'region', not {self.kind!r}")
        object.__setattr__(self, "slices", tuple(int(s) for s in self.slices))
        object.__setattr__(self, "targets", tuple(int(t) for t in self.targets))
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    # -- making one -------------------------------------------------------------------------
    @classmethod
    def of_run(cls, method: str, variant: str, *, image: str, params: Mapping[str, Any], kind: str = "pixel",
               slices: tuple[int, ...] | list[int] = (), full_z: bool = False, tag: str = "",
               targets: tuple[int, ...] | list[int] = (), **extra: Any) -> MapLayerInfo:
        """The record of a map made by an explain run.

        Parameters
        ----------
        method, variant, image, kind, slices, full_z, tag, targets
            As the attributes of the same names.
        params : Mapping
            The run's recorded parameters (``AttributionMaps.params``); its ``"target"`` and
            ``"model"`` fill the attributes of those names, the rest is kept in ``params``.
        **extra
            More entries to record beside the parameters (e.g. ``absolute=True``, ``domain=…``,
            ``algorithm=…`` of XRAI).
        """
        return cls.from_metadata({**params, **extra, "method": method, "variant": variant, "image": image,
                                  "kind": kind, "slices": list(slices), "full_z": bool(full_z), "tag": tag,
                                  "targets": list(targets)})

    @classmethod
    def from_metadata(cls, info: Mapping[str, Any]) -> MapLayerInfo:
        """Read the dict stored under :data:`KEY` (any version; missing fields take their defaults)."""
        # None stands for "not recorded" (the default), except for ``target``: None there means
        # "one class per slice" (``targets``).
        known = {k: info[k] for k in _FIELDS if k in info and (info[k] is not None or k == "target")}
        for key in ("image", "tag", "model"):
            if key in known:
                known[key] = str(known[key])
        known["version"] = int(info.get("version", 1))
        return cls(**known, params={k: v for k, v in info.items() if k not in _FIELDS})

    @classmethod
    def from_layer(cls, layer: Any) -> MapLayerInfo | None:
        """The record of a map layer (an Image layer carrying :data:`KEY`); None for other layers."""
        info = layer.metadata.get(KEY) if isinstance(layer, napari.layers.Image) else None
        return cls.from_metadata(info) if isinstance(info, Mapping) else None

    def with_map(self, method: str, variant: str, kind: str | None = None) -> MapLayerInfo:
        """The same run's record of another map (e.g. the XRAI region map of a pixel map)."""
        return replace(self, method=method, variant=variant, kind=self.kind if kind is None else kind)

    # -- storing it -------------------------------------------------------------------------
    def to_metadata(self) -> dict[str, Any]:
        """The plain dict stored under :data:`KEY` (the fields, the parameters beside them, the version)."""
        out = dict(self.params)
        for f in fields(self):
            if f.name != "params":
                value = getattr(self, f.name)
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def layer_metadata(self, **more: Any) -> dict[str, Any]:
        """A map layer's whole ``metadata``: this record under :data:`KEY`, and ``more`` beside it
        (``signed=``, ``ranks=``, …)."""
        return {KEY: self.to_metadata(), **more}

    # -- reading it -------------------------------------------------------------------------
    @property
    def row_method(self) -> str:
        """The method as a table or gallery row names it: ``IGB``, or ``IGB · →venous`` for a map
        of a class other than the predicted one."""
        return self.method + (f" · →{self.tag}" if self.tag else "")

    def explained(self, n_slices: int) -> list[int]:
        """The slices holding a map in a ``(Z, H, W)`` layer of ``n_slices``: ``slices``, else all."""
        return list(self.slices) or list(range(n_slices))

    def target_of(self, index: int | None) -> int:
        """The class the map explains on slice ``index`` (runs over several slices record one per
        slice; else ``target``, 1 when not recorded)."""
        if index is not None and index in self.slices and len(self.targets) == len(self.slices):
            return self.targets[self.slices.index(index)]
        return int(self.target) if self.target is not None else 1

    def get(self, name: str, default: Any = None) -> Any:
        """A field or recorded parameter by its on-layer name (``"image"``, ``"gc_layer"``), else ``default``."""
        if name in _FIELDS:
            return getattr(self, name)
        return self.params.get(name, default)


#: The typed fields' names (the rest of the on-layer dict is ``params``).
_FIELDS = frozenset(f.name for f in fields(MapLayerInfo)) - {"params"}


def slice_of(data: Any, info: MapLayerInfo | Mapping[str, Any], index: int | None) -> np.ndarray | None:
    """The 2D map of CT slice ``index`` in a map layer's data (or its ranks); None where the layer
    holds no map of that slice.

    - ``(H, W)``: a map of a 2D CT, or of one slice placed by the layer's translate: returned as is.
    - ``index`` None (a 2D CT): the map of a one-slice stack ``(1, H, W)``; None for a taller stack.
    - ``full_z`` ``(Z, H, W)`` on the whole CT's grid: ``data[index]`` for an explained slice
      (``slices``; every slice when none are recorded), None for the others (zeros there, not a map).
    - ``(N, H, W)`` of the slices ``slices`` (N of them): the one of ``index``, None if not among them.
    - ``(N, H, W)`` without recorded slices: the CT's slices ``0 … N-1``.

    ``info`` is the layer's record, or its on-layer dict.
    """
    if not isinstance(info, MapLayerInfo):
        info = MapLayerInfo.from_metadata(info)
    arr = np.asarray(data)
    if arr.ndim == 2:
        return arr
    slices = list(info.slices)
    if index is None:
        return arr[0] if arr.shape[0] == 1 else None
    if info.full_z:  # no slices recorded (a 3D model's map of the whole volume): every slice holds it
        return arr[index] if index in (slices or range(len(arr))) else None
    if index in slices and arr.shape[0] == len(slices):
        return arr[slices.index(index)]
    return arr[index] if not slices and 0 <= index < arr.shape[0] else None


__all__ = ["KEY", "VERSION", "MapLayerInfo", "slice_of"]


#: The layer metadata key of a map's latest scores (written by the Metrics panel, shown by the Gallery).
SCORES_KEY = "ctinterp_scores"


@dataclass(frozen=True)
class ScoreNote:
    """A map layer's latest scores on one slice, as the Metrics panel computed them.

    Stored as a plain dict under ``layer.metadata["ctinterp_scores"]`` (:data:`SCORES_KEY`);
    assigning the layer's metadata whole makes napari emit the event the Gallery listens to.
    """

    slice: int | None
    mask: str = ""
    auc: float = float("nan")
    max_dice: float = float("nan")
    F: float | None = None
    mask_note: str = ""

    def write(self, layer: Any) -> None:
        """Put this note on ``layer`` (replacing its previous one)."""
        layer.metadata = {**layer.metadata, SCORES_KEY: {"slice": self.slice, "mask": self.mask, "auc": self.auc,
                                                          "max_dice": self.max_dice, "F": self.F,
                                                          "mask_note": self.mask_note}}

    @classmethod
    def from_layer(cls, layer: Any) -> ScoreNote | None:
        """The note on ``layer``, or None (no scores yet, or not a dict)."""
        raw = getattr(layer, "metadata", {}).get(SCORES_KEY)
        if not isinstance(raw, Mapping):
            return None
        return cls(slice=raw.get("slice"), mask=raw.get("mask", ""), auc=raw.get("auc", float("nan")),
                   max_dice=raw.get("max_dice", float("nan")), F=raw.get("F"), mask_note=raw.get("mask_note", ""))

