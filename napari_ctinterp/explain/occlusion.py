"""Occlusion (Zeiler & Fergus 2014): the drop of the target score when a window is filled.

A square window of ``occ_window`` pixels of the model's input slides with ``occ_stride`` over the
slice (Captum's ``Occlusion`` grid: ⌈(size − window) / stride⌉ + 1 positions per axis, the last
window cut at the border); each position's image has the window replaced by the fill in the
channels of the slice explained (every window channel; a 2.5D model's own slice only), and
every pixel's value is the mean, over the windows covering it, of
``score(slice) − score(occluded)``. Positive: hiding the pixel lowers the target's score.

Why not Captum's ``Occlusion`` call: it forwards ``perturbations_per_eval`` images at a time in
one thread and builds each image in full; here the window images are built inside the batch that
forwards them and run through the same forward plan as fidelity's perturbed images
(``runtime.forward``: the device's best batch, two one-thread workers on a two-core CPU,
inference mode, channels_last). Every class of ``targets`` comes from the same forwards.
``benchmarks/explain_vs_captum.py --methods OCC`` times both.

Fills: ``black`` (default): the black of the model's window (input 0 before normalisation);
``label``: the fidelity protocol's label fill (white for class 0, black otherwise, by the class
explained).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Generator, Sequence

import numpy as np
import torch

from ..model.classifier import Classifier
from ..runtime.forward import forward_plan, run_forward


def window_starts(size: int, window: int, stride: int) -> np.ndarray:
    """Window origins along one axis, as Captum places them (the last one may run past the edge)."""
    if window > size:
        raise ValueError(f"occ_window {window} is larger than the model's input ({size} px): choose a smaller window")
    n = int(np.ceil((size - window) / stride)) + 1
    return np.arange(n) * stride


def occlusion_fill(clf: Classifier, x: torch.Tensor, target: int, fill: str) -> torch.Tensor:
    """(1, C, 1, 1) (in 3D (1, C, 1, 1, 1)) replacement values: the window's black, or the label
    fill of class ``target``."""
    if fill == "black":
        return clf.baseline(0.0).to(x.device)
    if fill == "label":
        return clf.baseline(1.0 if target == 0 else 0.0).to(x.device)
    raise ValueError(f"unknown occlusion fill {fill!r}: black or label")


def count_windows(size: tuple[int, ...], window: int, stride: int) -> int:
    """Number of occluded images (forward passes) for an input of ``size`` ((h, w) or (D, h, w)):
    a ``window``-sided square (cube) every ``stride`` along each axis."""
    return int(np.prod([len(window_starts(int(n), window, stride)) for n in size]))


def iter_occlusion(clf: Classifier, x: torch.Tensor, targets: Sequence[int], *, window: int = 16,
                   stride: int = 8, fill: str = "black", own: torch.Tensor | None = None,
                   batch_size: int | None = None) -> Generator[tuple[int, int], None, torch.Tensor]:
    """Occlusion maps of a preprocessed slice ``x`` (1, C, h, w) — or a 3D model's volume
    (1, C, D, h, w), occluded by cubes — for each class of ``targets``.

    Yields ``(done, total)`` occluded images after each batch; returns (T, h, w) (or (T, D, h, w))
    float32. With the ``label`` fill each target has its own fill (and its own images); ``black``
    shares them. ``own`` (1, C, 1, 1) bool: the channels that are occluded (default all).
    """
    size = tuple(int(n) for n in x.shape[2:])
    nd = len(size)
    origins = [tuple(int(v) for v in o) for o in itertools.product(*(window_starts(n, window, stride) for n in size))]
    fills = [occlusion_fill(clf, x, t, fill) for t in targets]
    groups = [list(range(len(targets)))] if fill == "black" else [[i] for i in range(len(targets))]
    mask_own = torch.ones((1, x.shape[1]) + (1,) * nd, dtype=torch.bool, device=x.device) if own is None else own
    units = [(g, o) for g in range(len(groups)) for o in range(len(origins))]
    plan = forward_plan(clf, len(units), size, batch_size=batch_size)
    # per axis, the coordinate along it, shaped to broadcast over (B, C, *size)
    coords = [torch.arange(n, device=x.device).view((1, 1) + tuple(n if a == i else 1 for a in range(nd)))
              for i, n in enumerate(size)]
    fmt = torch.channels_last if x.ndim == 4 else torch.contiguous_format

    def build(batch: np.ndarray) -> torch.Tensor:
        o = torch.as_tensor([origins[units[i][1]] for i in batch], device=x.device)
        inside = torch.ones((1,) * (2 + nd), dtype=torch.bool, device=x.device)
        for i, c in enumerate(coords):
            start = o[:, i].view((-1,) + (1,) * (1 + nd))
            inside = inside & (c >= start) & (c < start + window)
        value = torch.cat([fills[groups[units[i][0]][0]] for i in batch])
        return torch.where(inside & mask_own, value, x).contiguous(memory_format=fmt)

    base_logits = clf.logits(x).float().cpu()
    base = [float(clf.target_score(base_logits, torch.full((1,), t))[0]) for t in targets]
    total = torch.zeros((len(targets), *size), dtype=torch.float64)
    count = torch.zeros(size, dtype=torch.float64)

    def box(origin: tuple[int, ...]) -> tuple[slice, ...]:
        return tuple(slice(v, v + window) for v in origin)

    for origin in origins:
        count[box(origin)] += 1
    done = 0
    with contextlib.closing(run_forward(clf, plan, build)) as results:  # closed on cancel
        for batch, logits in results:
            logits = logits.float().cpu()
            for row, i in enumerate(batch):
                g, oi = units[i]
                for t_i in groups[g]:
                    score = float(clf.target_score(logits[row:row + 1], torch.full((1,), targets[t_i]))[0])
                    total[(t_i, *box(origins[oi]))] += base[t_i] - score
            done += len(batch)
            yield done, len(units)
    return (total / count).float()
