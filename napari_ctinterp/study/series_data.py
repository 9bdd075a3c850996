"""The series a study of a 3D model runs on: one unit per series of a user's folder.

A 3D classifier (card ``spatial_dims`` 3) sees the whole volume, so its study's unit is the series:
``labels.csv`` has one row per series, ``file,label[,mask]`` (``file`` a DICOM series folder,
``label`` a class index or name of the card, ``mask`` a 3D mask of that series: ``.npz`` / NIfTI
saved by the plugin, or a DICOM SEG). The 2D study's per-slice columns (``slice``, ``slices``) and
per-slice label files have no meaning here and are refused with what to write instead.

EG's baselines for a user's 3D model are other volumes: up to ``EG_VOLUMES`` other series of the
study, evenly spaced in labels.csv order (``eg_reference_volumes``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import _label, _read_csv, series_and_mask

#: Reference volumes EG draws its baselines from, per series of a user's 3D model.
EG_VOLUMES = 8


@dataclass(frozen=True)
class SeriesRef:
    """One series of a 3D study: how to load it (cheap to send to a Dask worker).

    ``series_id`` is the labels.csv ``file``; it keys the stored result and fills the tables'
    ``slice_id`` column (the unit's id, whatever the unit is). ``error``: why the series could
    not be planned (its row carries it)."""

    series_id: str
    label: int | str
    source: str  # "phantom" or a series folder / file
    mask_path: str = ""
    error: str = ""
    phantom: str = ""  # a phantom series: its ``volume_data.volume_spec`` entry, as JSON

    @property
    def slice_id(self) -> str:
        """The unit's id in the store and the tables (the series' id)."""
        return self.series_id

    @property
    def where(self) -> str:
        """Where the volume comes from, one string: the source, or ``phantom:<spec JSON>``."""
        return f"phantom:{self.phantom}" if self.source == "phantom" else self.source

    @property
    def series(self) -> str:
        """The labels.csv ``file`` the unit comes from (its ``series`` column)."""
        return self.series_id


#: The demo set's series are the first n of this many held-out specs (a study asked for more series
#: reuses the ones it has; ``volume_spec`` draws its seeds for the whole list at once).
DEMO_SERIES_POOL = 1000


def demo_series(n: int, seed: int = 0, task: str = "phase") -> list[SeriesRef]:
    """Held-out phantom series (test seed range, the 3D demo's geometry recipe: 16–32 slices 4.5–9
    mm apart, 96² or 128²), the classes in turn, labelled for ``task``, each with its exact 3D mask
    (the contrast-enhanced structures; none without contrast). Prefix-stable: the first k of n are
    ``demo_series(k)``. ``n`` up to ``DEMO_SERIES_POOL``."""
    import json

    from ..model.datasets import label_of
    from ..model.volume_data import volume_spec

    if not 0 < n <= DEMO_SERIES_POOL:
        raise ValueError(f"the demo set has 1 to {DEMO_SERIES_POOL} phantom series, asked for {n}")
    specs = volume_spec("test", DEMO_SERIES_POOL, seed + 777, task=task)[:n]
    return [SeriesRef(series_id=f"phantom-series-{s['seed']}", label=label_of(s, task), source="phantom",
                      phantom=json.dumps(s, sort_keys=True)) for s in specs]


def model_card(model: str):
    """The card of ``model`` (a bundled demo's name or a checkpoint path), read without the weights."""
    from ..model.card import ModelCard, card_path_for
    from ..model.demos import DEMOS, demo_weights_path

    return ModelCard.load(card_path_for(demo_weights_path(model) if model in DEMOS else Path(model)))


#: What to write instead of the 2D study's per-slice columns.
_ONE_ROW = ("a 3D model scores each series whole: labels.csv needs one row per series, columns file,label[,mask] "
            "(a 3D mask of the series: .npz / NIfTI / DICOM SEG)")


def folder_series(folder: str | Path, labels_csv: str | Path | None = None) -> list[SeriesRef]:
    """The series listed in ``labels.csv`` of a user folder, one unit each (``ValueError`` for a
    per-slice labels.csv, which only a 2D model can use)."""
    root = Path(folder)
    csv_path = Path(labels_csv) if labels_csv else root / "labels.csv"
    rows = _read_csv(csv_path, ("file", "label"), f"{csv_path} not found: a 3D study folder needs labels.csv with "
                     f"columns file,label[,mask] (one row per series folder)", "file,label[,mask]")
    for column in ("slice", "slices"):
        if any((r.get(column) or "").strip() for r in rows):
            raise ValueError(f"{csv_path}: a {column!r} column chooses slices, and {_ONE_ROW}; remove the column "
                             f"(or study the slices with a 2D model)")
    out, seen = [], set()
    for row in rows:
        raw, file = row["label"].strip(), row["file"].strip()
        if not raw:
            raise ValueError(f"{csv_path}: {file} has no label: give a class index or a class name of the model's "
                             f"card")
        if raw.lower().endswith(".csv"):
            raise ValueError(f"{csv_path}: {file}: the label names a per-slice label file ({raw}), and {_ONE_ROW}")
        if file in seen:
            raise ValueError(f"{csv_path}: {file} is listed twice, and {_ONE_ROW}")
        seen.add(file)
        mask = (row.get("mask") or "").strip()
        out.append(SeriesRef(series_id=file, label=_label(raw), source=str(root / file),
                             mask_path=str(root / mask) if mask else ""))
    return out


def load_series(ref: SeriesRef) -> tuple[np.ndarray, np.ndarray | None, tuple[float, float, float]]:
    """(HU volume (Z, H, W), its mask as stored (Z, H, W) or None, spacing (z, y, x) mm).

    A 3D model needs every slice: a series with a slice that could not be decoded (or NaN pixels)
    raises with the slices named, so its row says why."""
    if ref.error:
        raise ValueError(ref.error)
    if ref.source == "phantom":
        import json

        from ..model.volume_data import spec_volume

        v = spec_volume(json.loads(ref.phantom))
        return v.hu, v.mask, v.spacing_mm
    vol, mask = series_and_mask(ref.source, ref.mask_path)
    bad = sorted(vol.meta.get("bad_slices", {}))
    if bad or not np.isfinite(vol.hu).all():
        which = bad or sorted({int(z) for z in np.nonzero(~np.isfinite(vol.hu))[0]})
        raise ValueError(f"{ref.series_id}: slice(s) {which} could not be read (or hold NaN/inf), and a 3D model "
                         f"needs the whole series: repair or re-export the series")
    return vol.hu, mask, tuple(float(s) for s in vol.spacing_mm)


def _phantom_hu(where: str) -> np.ndarray:
    """The HU volume of a phantom series given as ``SeriesRef.where``."""
    import json

    from ..model.volume_data import spec_hu_volume

    return spec_hu_volume(json.loads(where.removeprefix("phantom:")))


def eg_reference_volumes(ref: SeriesRef, others: tuple[str, ...], n: int = EG_VOLUMES
                         ) -> tuple[list[np.ndarray], str]:
    """Reference volumes for Expected Gradients on ``ref`` with a user's 3D model, and where they
    came from: up to ``n`` of the study's other series (``others``: their ``where``, in study order),
    evenly spaced, each read whole (a series that cannot be read is passed over). None left: a clear
    error, so the row says what to do."""
    from ..io import read_ct

    candidates = [s for s in others if s != ref.where]
    picked = [candidates[i] for i in np.unique(np.linspace(0, len(candidates) - 1,
                                                           min(n, len(candidates))).round().astype(int))] \
        if candidates else []
    vols = []
    for source in picked:
        try:
            hu = _phantom_hu(source) if source.startswith("phantom:") else read_ct(source).hu
        except Exception:  # noqa: BLE001 - an unreadable series is not a reference; its own row says why
            continue
        if np.isfinite(hu).all():
            vols.append(np.asarray(hu, np.float32))
    if not vols:
        raise ValueError(f"{ref.series_id}: EG needs reference volumes and this study has no other readable series; "
                         f"study several series, or leave EG out (--methods BP IGB IGBW D)")
    return vols, f"{len(vols)} other series of the study"
