"""The slices a study runs on: the embedded phantom set, or a user's DICOM + masks + labels.

A user folder holds DICOM files (one slice or a series each), a ``labels.csv`` with columns
``file,label`` (label 1/0 or contrast/no contrast) and optionally a ``mask`` column naming a mask
file written by the plugin (``.npz`` or NIfTI). Slices without a mask get no localisation scores;
their fidelity is still computed.
"""

from __future__ import annotations

import csv
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


def demo_slices(n: int, seed: int = 0, task: str = "contrast") -> list[SliceRef]:
    """Held-out phantom slices (test seed range), every class and phase, labelled for ``task``
    (``"contrast"``: 0/1; ``"phase"``: 0–3 = no contrast / arterial / pulmonary / venous)."""
    from ..model.datasets import label_of, phantom_spec

    return [SliceRef(slice_id=f"phantom-{s['seed']}", label=label_of(s, task), source="phantom", seed=s["seed"],
                     phase=s["phase"]) for s in phantom_spec("test", n, seed + 777, task=task)]


def folder_slices(folder: str | Path, labels_csv: str | Path | None = None) -> list[SliceRef]:
    """Slices listed in ``labels.csv`` of a user folder."""
    root = Path(folder)
    csv_path = Path(labels_csv) if labels_csv else root / "labels.csv"
    if not csv_path.exists():
        raise FileNotFoundError(f"{csv_path} not found: a study folder needs labels.csv with columns file,label "
                                f"(and optionally mask)")
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"file", "label"} <= set(rows[0]):
        raise ValueError(f"{csv_path}: expected columns file,label[,mask]")
    out = []
    for row in rows:
        raw = row["label"].strip()
        lab = raw.lower()
        if not raw:
            raise ValueError(f"{csv_path}: {row['file']} has no label: give a class index or a class name of the "
                             f"model's card (1/0 or contrast/no contrast for the demo)")
        # 1/0 and contrast/no contrast as before; other indices or names are checked against the card
        label: int | str = (int(lab in ("1", "contrast")) if lab in ("0", "1", "contrast", "no contrast")
                            else int(raw) if raw.isdigit() else raw)
        mask = (row.get("mask") or "").strip()
        out.append(SliceRef(slice_id=row["file"], label=label, source=str(root / row["file"]),
                            mask_path=str(root / mask) if mask else ""))
    return out


def load_slice(ref: SliceRef) -> tuple[np.ndarray, np.ndarray | None]:
    """(HU slice, mask or None). Raises with a clear message for unreadable or bad input."""
    if ref.source == "phantom":
        from ..phantom import make_slice

        s = make_slice(ref.seed, contrast=bool(ref.label), phase=ref.phase or None)
        return s.hu, s.mask
    from ..io import load_mask, read_ct

    vol = read_ct(ref.source)
    hu = vol.hu[ref.index]
    if not np.isfinite(hu).all():
        raise ValueError(f"{ref.slice_id}: the slice has NaN/inf pixels")
    mask = None
    if ref.mask_path:
        m = load_mask(ref.mask_path).labels
        mask = (m[ref.index] if m.ndim == 3 else m) > 0
        if mask.shape != hu.shape:
            raise ValueError(f"{ref.slice_id}: mask shape {mask.shape} differs from the slice {hu.shape}")
    return hu, mask
