"""Training and evaluation data for the classifier: phantom slices, or a user's DICOM + labels CSV.

Slices are brought to the model's input space exactly as ``Classifier.preprocess`` does (each
channel's window, then antialiased resize; the card's normalisation comes after augmentation), so
training sees what inference sees. Two phantom tasks: ``"contrast"`` (labels 0/1, half the slices
with contrast) and ``"phase"`` (labels 0–3 = ``PHASE_CLASSES``, a quarter each). Phantom seeds for training,
validation and evaluation come from disjoint ranges (``SEED_RANGES``).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..phantom import MARKER_KINDS, PHASES, make_slice
from ..progress import Progress, report
from .inputs import hu_to_unit, resize_batch

#: Disjoint seed ranges: training, validation (best-checkpoint choice), held-out evaluation.
SEED_RANGES = {"train": (0, 1_000_000), "val": (2_000_000, 3_000_000), "test": (5_000_000, 6_000_000)}

#: Class names of the phantom tasks (index = label).
TASK_CLASSES: dict[str, tuple[str, ...]] = {"contrast": ("no contrast", "contrast"),
                                            "phase": ("no contrast", *PHASES),
                                            # the shortcut demo's training labels: the marker, named as the
                                            # contrast it claims to detect (``task_of`` reads such a card as
                                            # "contrast": it is scored against the true contrast)
                                            "marker": ("no contrast", "contrast")}
PHASE_CLASSES = TASK_CLASSES["phase"]

Windows = tuple[float, float] | Sequence[tuple[float, float]]


def _windows(window: Windows) -> list[tuple[float, float]]:
    """One window or a sequence of them → a list of (low, high)."""
    if np.isscalar(window[0]):
        return [(float(window[0]), float(window[1]))]  # type: ignore[arg-type,index]
    return [(float(w[0]), float(w[1])) for w in window]  # type: ignore[index,union-attr]


def task_of(class_names: Sequence[str]) -> str:
    """The phantom task whose labels a card's ``class_names`` are (``ValueError`` if none)."""
    for task, names in TASK_CLASSES.items():
        if tuple(class_names) == names:
            return task
    raise ValueError(f"no phantom task has the classes {list(class_names)}; phantom tasks: "
                     + "; ".join(f"{t}: {list(n)}" for t, n in TASK_CLASSES.items()))


def label_of(spec: dict, task: str = "contrast") -> int:
    """A phantom spec's label under ``task``."""
    if task == "phase":
        return 1 + PHASES.index(spec["phase"]) if spec["contrast"] else 0
    if task == "marker":
        return int(bool(spec.get("marker")))
    return int(spec["contrast"])


@dataclass(frozen=True)
class SliceSet:
    """Slices in input space with labels. ``x``: float32 (N, 1, H, W) in [0, 1]; ``y``: int64 (N,)."""

    x: torch.Tensor
    y: torch.Tensor
    info: tuple[dict, ...]


def phantom_spec(split: str, n: int, seed: int = 0, task: str = "contrast") -> list[dict]:
    """Balanced, reproducible phantom specs (seed, contrast, phase) for one split.

    ``task="contrast"``: every other slice has contrast, phases cycling; ``task="phase"``: the four
    classes of ``PHASE_CLASSES`` cycle (a quarter each; no-contrast slices still carry a phase,
    which only chooses their mask).
    """
    if task not in TASK_CLASSES:
        raise ValueError(f"task must be one of {list(TASK_CLASSES)}, got {task!r}")
    lo, hi = SEED_RANGES[split]
    rng = np.random.default_rng([seed, lo])
    seeds = rng.choice(np.arange(lo, hi), size=n, replace=False)
    return [spec_at(i, int(s), task) for i, s in enumerate(seeds)]


def spec_at(i: int, seed: int, task: str = "contrast") -> dict:
    """The ``i``-th spec of a balanced set: its class (and phase) follow from its position."""
    if task == "phase":
        return {"seed": seed, "contrast": bool(i % 4), "phase": PHASES[(i % 4 - 1) % 3 if i % 4 else (i // 4) % 3]}
    if task == "marker":  # contrast and marker independent: the four combinations in turn, the kinds cycling
        return {"seed": seed, "contrast": bool(i % 2), "phase": PHASES[(i // 12) % len(PHASES)],
                "marker": MARKER_KINDS[(i // 4) % len(MARKER_KINDS)] if (i // 2) % 2 else None}
    return {"seed": seed, "contrast": bool(i % 2), "phase": PHASES[(i // 2) % len(PHASES)]}


def growing_spec(split: str, n: int, seed: int = 0, task: str = "contrast") -> list[dict]:
    """Like :func:`phantom_spec`, but prefix-stable: the first ``k`` specs of ``n`` are the specs of
    ``k`` (a study asked for more slices keeps the ones it has). The first is ``phantom_spec``'s
    one-slice choice; the others are drawn one at a time, without repeats, from their own stream."""
    if task not in TASK_CLASSES:
        raise ValueError(f"task must be one of {list(TASK_CLASSES)}, got {task!r}")
    if n <= 0:
        return []
    lo, hi = SEED_RANGES[split]
    seeds = [phantom_spec(split, 1, seed, task=task)[0]["seed"]]
    rng = np.random.default_rng([seed, lo, 1])
    while len(seeds) < n:
        s = int(rng.integers(lo, hi))
        if s not in seeds:
            seeds.append(s)
    return [spec_at(i, s, task) for i, s in enumerate(seeds)]


def spec_hu(spec: dict) -> np.ndarray:
    """The HU slice of one :func:`phantom_spec` entry (a module-level function: it pickles, so a
    process pool can render specs)."""
    return make_slice(spec["seed"], contrast=spec["contrast"], phase=spec["phase"], marker=spec.get("marker")).hu


def _one(args: tuple[dict, list[tuple[float, float]], tuple[int, int], int]) -> np.ndarray:
    spec, windows, size, phantom_size = args
    torch.set_num_threads(1)
    s = make_slice(spec["seed"], contrast=spec["contrast"], phase=spec["phase"], size=phantom_size,
                   marker=spec.get("marker"))
    chans = torch.stack([hu_to_unit(s.hu, w) for w in windows])[None]
    return resize_batch(chans, size)[0].numpy()


def phantom_set(specs: Sequence[dict], window: Windows, input_size: tuple[int, int], *,
                phantom_size: int = 512, workers: int = 1, task: str = "contrast",
                progress: Progress | None = None) -> SliceSet:
    """Generate phantom slices (in parallel processes when ``workers`` > 1) in input space.

    ``window`` is the HU window, or one window per channel (then ``x`` has that many channels).
    Labels follow ``task`` (``label_of``). ``progress(done, total, "phantom")`` counts the slices
    made; returning False cancels (``progress.Cancelled``).
    """
    windows = _windows(window)
    jobs = [(s, windows, tuple(input_size), phantom_size) for s in specs]
    out: list[np.ndarray] = []
    if workers > 1:
        with ProcessPoolExecutor(workers) as ex:
            for i, arr in enumerate(ex.map(_one, jobs, chunksize=8)):
                out.append(arr)
                report(progress, i + 1, len(jobs), "phantom")
    else:
        for i, job in enumerate(jobs):
            out.append(_one(job))
            report(progress, i + 1, len(jobs), "phantom")
    x = torch.from_numpy(np.stack(out)) if out else torch.empty(0, len(windows), *input_size)
    y = torch.tensor([label_of(s, task) for s in specs], dtype=torch.int64)
    return SliceSet(x=x, y=y, info=tuple(dict(s) for s in specs))


def folder_set(folder: str | Path, labels_csv: str | Path, window: tuple[float, float],
               input_size: tuple[int, int]) -> SliceSet:
    """A user's data: DICOM files under ``folder`` and a CSV with columns ``file,label``.

    ``file`` is relative to ``folder``; ``label`` is 1/0 or ``contrast``/``no contrast``. A file
    holding a series contributes each slice with the same label.
    """
    from ..io import read_ct

    root = Path(folder)
    xs: list[torch.Tensor] = []
    ys: list[int] = []
    info: list[dict] = []
    with open(labels_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"file", "label"} <= set(rows[0]):
        raise ValueError(f"{labels_csv}: expected a CSV with header 'file,label' and one row per file")
    for row in rows:
        lab = row["label"].strip().lower()
        if lab not in ("0", "1", "contrast", "no contrast"):
            raise ValueError(f"{labels_csv}: label {row['label']!r} for {row['file']}: use 1/0 or "
                             f"'contrast'/'no contrast'")
        y = 1 if lab in ("1", "contrast") else 0
        vol = read_ct(root / row["file"])
        x = resize_batch(hu_to_unit(vol.hu, window)[:, None], input_size)
        xs.append(x)
        ys.extend([y] * len(x))
        info.extend({"file": row["file"], "slice": i, "contrast": bool(y)} for i in range(len(x)))
    return SliceSet(x=torch.cat(xs), y=torch.tensor(ys), info=tuple(info))
