"""Faithfulness correlation (Bhatt et al., IJCAI 2020): does a map's relevance predict what removing
pixels does to the model?

For each of ``n_runs`` random subsets S of ``subset_size`` pixels: set S to the fill (black: each
channel's window bottom, as fidelity's black) and take the drop of the explained class's score,
``score(x) − score(x with S removed)`` (the logit the maps explain, ``Classifier.target_score``);
the metric is the Pearson correlation, over the runs, of that drop with ``Σ_{i∈S} map_i``. **Higher
is better** (1: the map's sums predict the drops linearly; 0: they say nothing). Signed maps are
read as they are (a study's signed rows), absolute maps as their absolute values.

Equal to Quantus' ``FaithfulnessCorrelation(nr_runs, subset_size, perturb_baseline=<the fill>,
abs=False, normalise=True)`` with the same random subsets: ours are drawn from
``numpy.random.RandomState(seed)`` in Quantus' order (for each run, for each image,
``choice(n_pixels, subset_size, replace=False)``), so ``np.random.seed(seed)`` before Quantus gives
the same subsets (tests). Its normalisation divides the map by its maximum, which Pearson ignores.
Where Quantus differs, we follow the paper and say so:

- Quantus' ``"black"`` is the minimum of the batch's inputs, which moves with the image content; ours
  is the model's black (the bottom of each channel's window), the same for every slice.
- Quantus draws its subsets among the C·H·W input values, each channel separately; a pixel here
  is removed in every channel at once (a CT window model's channels are one pixel seen three ways),
  as in fidelity. For a one-channel model the two are the same.

Why not Quantus itself: its perturbed images depend on the subset only, not on the map, yet it
forwards ``n_runs`` images per map. Here every map of the same slices shares one set of
``n_runs × N`` forwards (the forward plan of ``runtime.forward``, as fidelity's), so the 62 maps of a
study slice cost 100 forwards, not 6,200 (``benchmarks/metrics_vs_quantus.py``). 3D models: a pixel
is a voxel of the model's input and only the CT's voxels (not the card's padding) are drawn.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import TypeVar

import numpy as np
import torch

from ..model.classifier import Classifier
from ..progress import Progress, report
from ..runtime.forward import forward_plan, run_forward
from .fidelity import _prepare_slices
from .fidelity_3d import Spacing, prepare_volumes

K = TypeVar("K")

#: Quantus' defaults (chosen for 224² images: 0.45 % of the pixels per subset).
N_RUNS, SUBSET_SIZE = 100, 224


def subsets(n_pixels: Sequence[int], n_runs: int, subset_size: int, seed: int) -> list[np.ndarray]:
    """Per image, (n_runs, subset_size) pixel indices among its ``n_pixels[i]`` candidates, drawn as
    Quantus does (``RandomState(seed)``; for each run, for each image, without replacement)."""
    rng = np.random.RandomState(int(seed))
    out = [np.empty((n_runs, subset_size), np.int64) for _ in n_pixels]
    for r in range(n_runs):
        for i, n in enumerate(n_pixels):
            if subset_size > n:
                raise ValueError(f"subset_size {subset_size} is larger than the image's {n} pixels")
            out[i][r] = rng.choice(int(n), subset_size, replace=False)
    return out


def faithfulness_correlation(clf: Classifier, images: np.ndarray, maps: Mapping[K, np.ndarray],
                             targets: np.ndarray, *, n_runs: int = N_RUNS, subset_size: int = SUBSET_SIZE,
                             seed: int = 0, batch_size: int | None = None, progress: Progress | None = None,
                             index: Sequence[int] | None = None,
                             spacing_mm: Spacing | Sequence[Spacing] | None = None) -> dict[K, np.ndarray]:
    """Faithfulness correlation of several maps of the same slices (volumes), one forward plan.

    Parameters
    ----------
    clf : Classifier
        The model the maps explain.
    images, maps, index, spacing_mm
        As ``metrics.fidelity_many``: (N, H, W) CT slices (HU) and name → (N, H, W) maps on their
        grid (a 2.5D model: the volume and ``index``; a 3D model: volumes).
    targets : numpy.ndarray
        (N,) the class each image's maps explain.
    n_runs, subset_size : int
        Random subsets per image and pixels per subset (Quantus' defaults).
    seed : int
        The subsets' draws (see ``subsets``).
    batch_size, progress
        Images per forward (default: the device's); ``progress(done, total, "faithfulness")``.

    Returns
    -------
    dict
        name → (N,) correlations (NaN where a map's subset sums, or the score drops, are constant).
    """
    lab = np.asarray(targets).astype(int).ravel()
    valid = own = None
    if clf.card.is_3d:
        x, mps, valid = prepare_volumes(clf, images, maps, len(lab), spacing_mm)
        mps = {k: v[:, 0] for k, v in mps.items()}
    else:
        x, mps, own = _prepare_slices(clf, images, maps, lab, index)
    return faithfulness_inputs(clf, x, mps, lab, own=own, valid=valid, n_runs=n_runs, subset_size=subset_size,
                               seed=seed, batch_size=batch_size, progress=progress)


def faithfulness_inputs(clf: Classifier, x: torch.Tensor, maps: Mapping[K, np.ndarray | torch.Tensor],
                        targets: np.ndarray, *, fill: torch.Tensor | None = None, own: torch.Tensor | None = None,
                        valid: torch.Tensor | None = None, n_runs: int = N_RUNS, subset_size: int = SUBSET_SIZE,
                        seed: int = 0, batch_size: int | None = None,
                        progress: Progress | None = None) -> dict[K, np.ndarray]:
    """``faithfulness_correlation`` on inputs already in the model's input space: ``x`` (N, C, *spatial),
    maps name → (N, *spatial); ``fill`` broadcastable to x (default the model's black); ``own`` /
    ``valid`` as ``fidelity_inputs`` (removable channels; removable voxels, the only ones drawn)."""
    lab = np.asarray(targets).astype(int).ravel()
    n, spatial = len(x), tuple(x.shape[2:])
    if len(lab) != n:
        raise ValueError(f"one target per input: {n} inputs, {len(lab)} targets")
    fill = clf.baseline(0.0).to(x.device) if fill is None else fill.to(x.device)
    flat_valid = (None if valid is None else valid.reshape(n, -1).cpu().numpy())
    n_pix = [int(np.prod(spatial)) if flat_valid is None else int(flat_valid[i].sum()) for i in range(n)]
    drawn = subsets(n_pix, n_runs, subset_size, seed)
    if flat_valid is not None:  # indices among the valid voxels → indices in the image
        drawn = [np.flatnonzero(flat_valid[i])[d] for i, d in enumerate(drawn)]
    units = [(-1, i) for i in range(n)] + [(r, i) for r in range(n_runs) for i in range(n)]
    plan = forward_plan(clf, len(units), spatial, batch_size=batch_size)
    fmt = torch.channels_last if x.ndim == 4 else torch.contiguous_format
    own_mask = None if own is None else own.to(x.device)

    def build(numbers: np.ndarray) -> torch.Tensor:
        batch = [units[k] for k in numbers]
        imgs = x[[i for _, i in batch]].clone()
        removed = torch.zeros((len(batch), int(np.prod(spatial))), dtype=torch.bool, device=x.device)
        for row, (r, i) in enumerate(batch):
            if r >= 0:
                removed[row, torch.as_tensor(drawn[i][r], device=x.device)] = True
        removed = removed.view(len(batch), 1, *spatial)
        if own_mask is not None:
            removed = removed & own_mask
        return torch.where(removed, fill, imgs).contiguous(memory_format=fmt)

    scores = np.zeros((n_runs + 1, n), np.float64)
    done = 0
    with contextlib.closing(run_forward(clf, plan, build)) as results:
        for numbers, logits in results:
            batch = [units[k] for k in numbers]
            s = clf.target_score(logits.float(), torch.as_tensor([lab[i] for _, i in batch])).cpu().numpy()
            for row, (r, i) in enumerate(batch):
                scores[r + 1, i] = s[row]
            done += len(numbers)
            report(progress, done, len(units), "faithfulness")
    drops = scores[:1] - scores[1:]  # (n_runs, N)
    out = {}
    for name, mp in maps.items():
        m = torch.as_tensor(mp, dtype=torch.float32).reshape(n, -1).cpu().numpy().astype(np.float64)
        sums = np.stack([m[i][drawn[i]].sum(axis=1) for i in range(n)], axis=1)  # (n_runs, N)
        out[name] = np.array([pearson(sums[:, i], drops[:, i]) for i in range(n)])
    return out


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's r of two 1D arrays; NaN when either is constant."""
    a, b = a - a.mean(), b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else float("nan")
