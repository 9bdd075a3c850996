"""The slices a study runs on: the embedded phantom set, or a user's DICOM + masks + labels.

A user folder holds DICOM files or series folders, a ``labels.csv`` with columns ``file,label``
(a class index or name of the model's card) and optionally ``mask`` (a mask written by the plugin,
``.npz`` / NIfTI, or a DICOM SEG of that series) and ``slices``: ``masked`` (every slice with a
mask pixel: the default when a mask is given), ``all``, ``k``, ``a:b`` (both included) or
``a,b,c``. Without ``slices`` and mask, the series' first slice (as before). Every chosen slice is
one task (``slice_id`` = ``file#z<k>`` when a series gives several). Slices without a mask get no
localisation scores; their fidelity is still computed.
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
    series: str = ""  # the labels.csv ``file`` the slice comes from


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
        spec = (row.get("slices") or "").strip().lower() or ("masked" if mask else "")
        source, mask_path = str(root / row["file"]), str(root / mask) if mask else ""
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
        out.extend(SliceRef(slice_id=f"{row['file']}#z{k}", label=label, source=source, index=k,
                            mask_path=mask_path, series=row["file"]) for k in chosen)
    return out


def _chosen_slices(spec: str, source: str, mask_path: str) -> list[int]:
    from ..explain.volume import parse_slices
    from ..io import load_mask, read_ct

    vol = read_ct(source)
    if spec != "masked":
        return parse_slices(spec, vol.hu.shape[0])
    if not mask_path:
        raise ValueError("slices=masked needs a mask column")
    m = load_mask(mask_path, reference=vol).labels
    m = m[None] if m.ndim == 2 else m
    if m.shape != vol.hu.shape:
        raise ValueError(f"mask shape {m.shape} differs from the series {vol.hu.shape}")
    chosen = [int(z) for z in np.flatnonzero(m.reshape(len(m), -1).any(1))]
    if not chosen:
        raise ValueError(f"the mask {Path(mask_path).name} is empty on every slice")
    return chosen


def load_slice(ref: SliceRef) -> tuple[np.ndarray, np.ndarray | None]:
    """(HU slice, mask or None). Raises with a clear message for unreadable or bad input."""
    if ref.source == "phantom":
        from ..phantom import make_slice

        s = make_slice(ref.seed, contrast=bool(ref.label), phase=ref.phase or None)
        return s.hu, s.mask
    from ..io import load_mask, read_ct

    if ref.index < 0:  # planning failed for this series (see folder_slices)
        raise ValueError(ref.phase.removeprefix("error: "))
    vol = read_ct(ref.source)
    if ref.index >= vol.hu.shape[0]:
        raise IndexError(f"{ref.slice_id}: slice {ref.index} outside the series' {vol.hu.shape[0]} slices")
    hu = vol.hu[ref.index]
    if not np.isfinite(hu).all():
        raise ValueError(f"{ref.slice_id}: the slice has NaN/inf pixels")
    mask = None
    if ref.mask_path:
        m = load_mask(ref.mask_path, reference=vol).labels
        mask = (m[ref.index] if m.ndim == 3 else m) > 0
        if mask.shape != hu.shape:
            raise ValueError(f"{ref.slice_id}: mask shape {mask.shape} differs from the slice {hu.shape}")
    return hu, mask
