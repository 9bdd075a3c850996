"""The slices a study runs on: the embedded phantom set, or a user's DICOM + masks + labels.

A user folder holds DICOM files or series folders, a ``labels.csv`` with columns ``file,label``
(a class index or name of the model's card) and optionally ``mask`` (a mask written by the plugin,
``.npz`` / NIfTI, or a DICOM SEG of that series) and ``slices``: ``masked`` (every slice with a
mask pixel: the default when a mask is given), ``all``, ``k``, ``a:b`` (both included) or
``a,b,c``. Without ``slices`` and mask, the series' first slice (as before). Every chosen slice is
one task (``slice_id`` = ``file#z<k>`` when a series gives several). Slices without a mask get no
localisation scores; their fidelity is still computed.

Labels per slice: a ``slice`` column (``file,slice,label[,mask]``: one row per slice, several rows
per series), or a ``label`` cell naming a CSV beside labels.csv with columns ``slice,label`` for
that series' slices (with ``slices``, only the chosen ones are run; a chosen slice without a label
is an error row).

A file of a series that cannot be decoded makes its slice an error row; the series' other slices
go on. A 2.5D model's neighbouring slices come from the series (``load_context``). A worker
keeps the last series it read (and its mask), so the slices of one series read it once.
"""

from __future__ import annotations

import csv
import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class SliceRef:
    """One slice of a study: how to load it (cheap to send to a Dask worker)."""

    slice_id: str
    label: int | str
    source: str  # "phantom" or a file path
    seed: int = 0
    phase: str = ""
    index: int = 0
    mask_path: str = ""
    series: str = ""  # the labels.csv ``file`` the slice comes from
    marker: str = ""  # a phantom slice's planted marker kind (``phantom.markers``; "" = none)
    contrast: int = -1  # a phantom slice's contrast (1/0) when its label is not (the marker set); -1: the label's

    @property
    def has_contrast(self) -> bool:
        """A phantom slice's contrast: ``contrast`` when given, else its label (> 0: contrast)."""
        return bool(self.label) if self.contrast < 0 else bool(self.contrast)


def demo_slices(n: int, seed: int = 0, task: str = "contrast", marker: bool = False) -> list[SliceRef]:
    """Held-out phantom slices (test seed range), every class and phase, labelled for ``task``
    (``"contrast"``: 0/1; ``"phase"``: 0–3 = no contrast / arterial / pulmonary / venous).
    ``marker``: every other pair of slices carries a planted marker (``phantom.markers``; the
    kinds in turn, each meeting both classes), scored against its ground-truth mask (the shortcut
    benchmark); contrast and marker are independent, and ``task="marker"`` labels a slice by its
    marker (what the shortcut demo was trained to answer).

    Prefix-stable (``model.datasets.growing_spec``): the first k of n slices are ``demo_slices(k)``,
    so a study asked for more slices reuses the ones it has."""
    from ..model.datasets import growing_spec, label_of
    from ..phantom import MARKER_KINDS

    out = []
    base = "contrast" if task == "marker" else task  # the slices (contrast on every other one) as for contrast
    for i, s in enumerate(growing_spec("test", n, seed + 777, task=base)):
        kind = MARKER_KINDS[(i // 4) % len(MARKER_KINDS)] if marker and (i // 2) % 2 else ""
        label = label_of({**s, "marker": kind or None}, task)
        out.append(SliceRef(slice_id=f"phantom-{s['seed']}" + (f"-{kind}" if kind else ""), label=label,
                            source="phantom", seed=s["seed"], phase=s["phase"], marker=kind,
                            contrast=int(s["contrast"]) if marker else -1))
    return out


def marker_of(ref: SliceRef) -> tuple[np.ndarray, tuple[float, float]] | None:
    """The planted marker's mask (H, W) of a phantom slice with a marker and the pixel spacing
    (mm), or None."""
    if ref.source != "phantom" or not ref.marker:
        return None
    from ..phantom import make_slice

    s = make_slice(ref.seed, contrast=ref.has_contrast, phase=ref.phase or None, marker=ref.marker)
    return s.marker_mask, s.spacing_mm


def folder_slices(folder: str | Path, labels_csv: str | Path | None = None) -> list[SliceRef]:
    """Slices listed in ``labels.csv`` of a user folder."""
    root = Path(folder)
    csv_path = Path(labels_csv) if labels_csv else root / "labels.csv"
    rows = _read_csv(csv_path, ("file", "label"), f"{csv_path} not found: a study folder needs labels.csv with "
                     f"columns file,label (and optionally mask, slices, slice)", "file,label[,mask][,slices]")
    out = []
    for row in rows:
        raw = row["label"].strip()
        if not raw:
            raise ValueError(f"{csv_path}: {row['file']} has no label: give a class index or a class name of the "
                             f"model's card (1/0 or contrast/no contrast for the demo)")
        mask = (row.get("mask") or "").strip()
        source, mask_path = str(root / row["file"]), str(root / mask) if mask else ""
        if (row.get("slice") or "").strip():  # one row per slice: file,slice,label
            k = row["slice"].strip()
            if not k.lstrip("-").isdigit():
                raise ValueError(f"{csv_path}: {row['file']}: slice {k!r} is not a slice index (0 = first)")
            out.append(SliceRef(slice_id=f"{row['file']}#z{int(k)}", label=_label(raw), source=source,
                                index=int(k), mask_path=mask_path, series=row["file"]))
            continue
        per_slice = _slice_labels(root / raw, csv_path) if raw.lower().endswith(".csv") else None
        label: int | str = _label(raw) if per_slice is None else ""
        spec = (row.get("slices") or "").strip().lower() or ("masked" if mask else "all" if per_slice else "")
        if not spec:  # one slice per file, as before
            out.append(SliceRef(slice_id=row["file"], label=label, source=source, mask_path=mask_path,
                                series=row["file"]))
            continue
        try:
            chosen = _chosen_slices(spec, source, mask_path)
        except (OSError, ValueError) as e:  # this series cannot be planned: one row with its error
            out.append(SliceRef(slice_id=row["file"], label=label, source=source, mask_path=mask_path,
                                series=row["file"], index=-1, phase=f"error: {e}"))
            continue
        if per_slice is not None:
            chosen = [k for k in chosen if k in per_slice] if spec == "all" else chosen
            missing = [k for k in chosen if k not in per_slice]
            out.extend(SliceRef(slice_id=f"{row['file']}#z{k}", label="", source=source, series=row["file"],
                                index=-1, phase=f"error: slice {k} has no label in {raw}") for k in missing)
            chosen = [k for k in chosen if k in per_slice]
        out.extend(SliceRef(slice_id=f"{row['file']}#z{k}", label=label if per_slice is None else per_slice[k],
                            source=source, index=k, mask_path=mask_path, series=row["file"]) for k in chosen)
    return out


def _label(raw: str) -> int | str:
    """A label cell: 1/0 and contrast/no contrast as before; other indices or names are checked
    against the card when the slice runs."""
    lab = raw.strip().lower()
    if lab in ("0", "1", "contrast", "no contrast"):
        return int(lab in ("1", "contrast"))
    return int(raw) if raw.strip().isdigit() else raw.strip()


def _read_csv(path: Path, needed: tuple[str, ...], missing: str, expected: str) -> list[dict]:
    """The rows of a CSV that must exist and have the ``needed`` columns (messages say what to write)."""
    if not path.exists():
        raise FileNotFoundError(missing)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not set(needed) <= set(rows[0]):
        raise ValueError(f"{path}: expected columns {expected}")
    return rows


def _slice_labels(path: Path, csv_path: Path) -> dict[int, int | str]:
    """``{slice: label}`` from a per-series CSV with columns slice,label."""
    rows = _read_csv(path, ("slice", "label"), f"{csv_path}: the label {path.name} names a per-slice label file "
                     f"that does not exist (expected columns slice,label)", "slice,label")
    out: dict[int, int | str] = {}
    for r in rows:
        k = (r["slice"] or "").strip()
        if not k.isdigit() or not (r["label"] or "").strip():
            raise ValueError(f"{path}: row {r} needs a slice index and a label")
        out[int(k)] = _label(r["label"])
    return out


def _chosen_slices(spec: str, source: str, mask_path: str) -> list[int]:
    from ..io.evidence import evidence_mask
    from ..io.slice_text import parse_slices

    vol, m = series_and_mask(source, mask_path if spec == "masked" else "")
    if spec != "masked":
        return parse_slices(spec, vol.hu.shape[0])
    if not mask_path:
        raise ValueError("slices=masked needs a mask column")
    chosen = [int(z) for z in np.flatnonzero(evidence_mask(m).reshape(len(m), -1).any(1))]
    if not chosen:
        raise ValueError(f"the mask {Path(mask_path).name} is empty on every slice")
    return chosen


def _stamp(path: str) -> int:
    """A change stamp of a file or folder (its mtime), so a cached read never outlives an edit."""
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def series_and_mask(source: str, mask_path: str = ""):
    """The series (read with ``bad_slices="nan"``) and its mask aligned to it (Z, H, W) or None.
    The last series and the last mask read are kept, so planning and the slices of a series read
    it once per process (keyed on the files' mtimes: an edit is read again)."""
    vol = _series(source, _stamp(source))
    if not mask_path:
        return vol, None
    return vol, _mask(mask_path, _stamp(mask_path), source, _stamp(source))


@functools.lru_cache(maxsize=1)
def _series(source: str, _stamp_s: int):
    from ..io import read_ct

    return read_ct(source, bad_slices="nan")


@functools.lru_cache(maxsize=1)
def _mask(mask_path: str, _stamp_m: int, source: str, stamp_s: int) -> np.ndarray:
    from ..io import load_mask

    vol = _series(source, stamp_s)
    m = load_mask(mask_path, reference=vol).labels
    m = m[None] if m.ndim == 2 else m
    if m.shape != vol.hu.shape:
        raise ValueError(f"mask shape {m.shape} differs from the series {vol.hu.shape}")
    return m


def forget_series() -> None:
    """Drop the series and mask kept by :func:`series_and_mask`."""
    _series.cache_clear()
    _mask.cache_clear()


def _checked(ref: SliceRef, vol, z: int) -> np.ndarray:
    """Slice ``z`` of the series, or the error that makes it a row of its own."""
    bad = vol.meta.get("bad_slices", {})
    if z in bad:
        raise ValueError(f"{ref.slice_id}: slice {z} could not be read: {bad[z]}")
    hu = vol.hu[z]
    if not np.isfinite(hu).all():
        raise ValueError(f"{ref.slice_id}: slice {z} has NaN/inf pixels")
    return hu


def load_slice(ref: SliceRef) -> tuple[np.ndarray, np.ndarray | None]:
    """(HU slice, its mask as stored or None). Raises with a clear message for unreadable or bad input.

    The mask keeps its labels (a multi-label mask from another tool); the caller reads it as
    ``> 0`` (``metrics.evidence_mask``) and says so (``metrics.mask_note``).
    """
    if ref.source == "phantom":
        from ..phantom import make_slice

        s = make_slice(ref.seed, contrast=ref.has_contrast, phase=ref.phase or None, marker=ref.marker or None)
        return s.hu, s.mask
    if ref.index < 0:  # planning failed for this series (see folder_slices)
        raise ValueError(ref.phase.removeprefix("error: "))
    vol, m = series_and_mask(ref.source, ref.mask_path)
    if ref.index >= vol.hu.shape[0]:
        raise IndexError(f"{ref.slice_id}: slice {ref.index} outside the series' {vol.hu.shape[0]} slices")
    hu = _checked(ref, vol, ref.index)
    return hu, (m[ref.index] if m is not None else None)


def load_context(ref: SliceRef, reach: int) -> tuple[np.ndarray, int]:
    """The slices a 2.5D model needs: the series from ``index − reach`` to ``index + reach``
    (clipped at the ends, where the model repeats the edge slice) and the slice's index in it."""
    if ref.source == "phantom":
        raise ValueError("a 2.5D model needs neighbouring slices: the demo phantom set has single slices; "
                         "run the study on DICOM series (--data)")
    load_slice(ref)  # the slice itself: its own errors first
    vol, _ = series_and_mask(ref.source, ref.mask_path)
    lo, hi = max(0, ref.index - reach), min(vol.hu.shape[0], ref.index + reach + 1)
    for z in range(lo, hi):
        _checked(ref, vol, z)
    return vol.hu[lo:hi], ref.index - lo


#: Reference slices EG draws its baselines from, per study slice of a user's model.
EG_REFERENCES = 16


def eg_references(ref: SliceRef, n: int = EG_REFERENCES) -> tuple[np.ndarray, str]:
    """Reference slices for Expected Gradients on ``ref`` with a user's model, and where they came from.

    Demo phantom slices: the phantom's training slices (the demo data set's domain). A slice of a
    series: up to ``n`` evenly spaced readable slices of the same series, not the slice itself —
    what the Explain widget uses ("the other slices of the open volume"). A single-slice file has
    none: a clear error, so that slice's row says what to do.
    """
    if ref.source == "phantom":
        from ..model.demos import DEMO_REFERENCES, demo_references

        return demo_references(), f"demo set ({DEMO_REFERENCES} phantom training slices)"
    vol, _ = series_and_mask(ref.source, ref.mask_path)
    bad = vol.meta.get("bad_slices", {})
    usable = [z for z in range(vol.hu.shape[0])
              if z != ref.index and z not in bad and np.isfinite(vol.hu[z]).all()]
    if not usable:
        raise ValueError(f"{ref.slice_id}: EG needs reference slices and this series has no other readable slice; "
                         f"study whole series, or leave EG out (--methods BP IGB IGBW D)")
    chosen = [usable[i] for i in np.unique(np.linspace(0, len(usable) - 1, min(n, len(usable))).round().astype(int))]
    return vol.hu[chosen], f"{len(chosen)} other slices of the series"
