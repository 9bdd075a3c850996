"""Fidelity of attribution maps to the model: MiF/LiF perturbation curves and F.

The paper's protocol (../shared/REFERENCE.md): rank pixels most-important-first (MiF) or
least-important-first (LiF); set the top p % (p = 0, 2.5, …, 100) to a fill value — 0 (black) for
contrast slices and 1 (white) for non-contrast slices, in the model's input space; balanced
accuracy over the slice set at each p; F = ∫₀¹ (LiF − MiF) dp. A faithful map destroys the
decision fast when its top pixels go (MiF falls) and slowly when its bottom pixels go (LiF stays).

Beside it: a continuous variant (per-image probability of the predicted class normalised by its
p = 0 value; mean LiF − MiF area with a bootstrap 95 % CI) and class-neutral fills (dataset mean,
Gaussian blur, ROAD noisy linear imputation). All perturbed images of all maps go through the model
in one forward plan (``metrics.perturb``; ``fidelity_many`` for several maps of the same slices).

3D models (card ``spatial_dims`` 3): the same functions take volumes — an image is a volume, a
pixel a voxel, removal happens in the model's input (C, D, H, W) and the accuracy is over volumes;
how the volumes and their CT-grid maps reach the input space is ``metrics.fidelity_3d``.
``fidelity_inputs`` is the protocol on tensors already in the input space (2D or 3D), for
researchers who preprocess their own inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from ..model.classifier import Classifier
from ..progress import Progress
from .fidelity_3d import Spacing, gaussian_blur_3d, prepare_volumes
from .perturb import perturbed_logits

Fill = Literal["label", "mean", "blur", "road"]
K = TypeVar("K")


def fidelity_grid(step: float = 2.5) -> np.ndarray:
    """p in percent: 0, 2.5, …, 100."""
    return np.arange(0, 100 + step / 2, step)


@dataclass(frozen=True)
class Fidelity:
    """MiF/LiF curves of one method over a set of slices (volumes, for a 3D model).

    Attributes
    ----------
    p : numpy.ndarray
        Percent of pixels (voxels) replaced.
    mif, lif : numpy.ndarray
        Balanced accuracy at each p, most- / least-important-first.
    F : float
        ∫₀¹ (LiF − MiF) dp.
    prob_mif, prob_lif : numpy.ndarray
        (N, len(p)) probability of each image's predicted class, normalised by its p = 0 value.
    F_continuous : float
        Mean over images of ∫ (prob_lif − prob_mif) dp.
    F_continuous_ci : tuple of float
        Bootstrap 95 % CI of ``F_continuous``.
    pred_mif, pred_lif : numpy.ndarray
        (N, len(p)) predicted class of each perturbed image (to pool slices from several runs).
    fill : str
        The fill used.
    """

    p: np.ndarray
    mif: np.ndarray
    lif: np.ndarray
    F: float
    prob_mif: np.ndarray
    prob_lif: np.ndarray
    F_continuous: float
    F_continuous_ci: tuple[float, float]
    pred_mif: np.ndarray
    pred_lif: np.ndarray
    fill: str


def pooled_F(pred_mif: np.ndarray, pred_lif: np.ndarray, labels: np.ndarray, p: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, float]:
    """Balanced-accuracy MiF/LiF curves and F from per-slice predictions (N, len(p)) pooled over runs."""
    lab = np.asarray(labels).astype(int)
    mif = np.array([balanced_accuracy(pred_mif[:, j], lab) for j in range(len(p))])
    lif = np.array([balanced_accuracy(pred_lif[:, j], lab) for j in range(len(p))])
    return mif, lif, float(np.trapezoid(lif - mif, np.asarray(p) / 100))


def pooled_F_draws(pred_mif: np.ndarray, pred_lif: np.ndarray, labels: np.ndarray, p: np.ndarray,
                   resamples: np.ndarray) -> np.ndarray:
    """F of each bootstrap resample of the slices: ``pooled_F`` of ``pred_*[idx]`` for each row
    ``idx`` of ``resamples`` (B, N), vectorised (slices drawn as multiplicities; the classes present
    in a resample are averaged, as in ``balanced_accuracy``). Pass the same ``resamples`` for every
    map to get paired draws: the difference of two maps' draws bounds the difference of their F."""
    lab = np.asarray(labels).astype(int)
    n = len(lab)
    counts = np.stack([np.bincount(r, minlength=n) for r in np.asarray(resamples)]).astype(float)  # (B, N)
    areas = []
    for pred in (pred_mif, pred_lif):
        correct = (np.asarray(pred) == lab[:, None]).astype(float)  # (N, P)
        recalls = []
        for c in np.unique(lab):
            w = counts[:, lab == c]
            total = w.sum(axis=1, keepdims=True)
            with np.errstate(invalid="ignore", divide="ignore"):
                recalls.append((w @ correct[lab == c]) / total)  # NaN where the class was not drawn
        areas.append(np.nanmean(np.stack(recalls), axis=0))  # (B, P)
    return np.trapezoid(areas[1] - areas[0], np.asarray(p) / 100, axis=1)


def balanced_accuracy(pred: np.ndarray, labels: np.ndarray) -> float:
    """Mean recall of the classes present."""
    recalls = [float(np.mean(pred[labels == c] == c)) for c in np.unique(labels)]
    return float(np.mean(recalls))


def _fill_images(x: torch.Tensor, labels: np.ndarray, fill: Fill, seed: int,
                 clf: Classifier | None = None, valid: torch.Tensor | None = None) -> torch.Tensor | None:
    """Per-image replacement values (same shape as x), or None for ROAD (computed per mask).

    ``label``: class 0 (no contrast) is filled white, every other class black — per channel, the
    top / bottom of that channel's window, normalised as the model's input (``clf.baseline``).
    ``mean``: the mean of each channel (volumes: over their ``valid`` voxels, not the padding).
    ``blur``: Gaussian, σ = 5 pixels (voxels: ``fidelity_3d.gaussian_blur_3d``)."""
    multi = x.shape[1] > 1 or (clf is not None and clf.card.normalize is not None)
    ones = (1,) * (x.ndim - 1)
    if fill == "label":
        if clf is not None:
            black, white = clf.baseline(0.0).to(x.device), clf.baseline(1.0).to(x.device)
            black, white = black.reshape(1, -1, *ones[1:]), white.reshape(1, -1, *ones[1:])
        else:  # the unnormalised one-channel input space
            black, white = torch.zeros(1, *ones, device=x.device), torch.ones(1, *ones, device=x.device)
        is_zero = torch.as_tensor(labels == 0, device=x.device).view(-1, *ones)
        return torch.where(is_zero, white, black).expand_as(x)
    if fill == "mean":
        if x.ndim == 5:
            w = torch.ones_like(x[:, :1]) if valid is None else valid.to(x.dtype)
            dims = (0, 2, 3, 4)
            return ((x * w).sum(dim=dims, keepdim=True) / w.sum(dim=dims, keepdim=True)).expand_as(x).contiguous()
        if multi:
            return x.mean(dim=(0, 2, 3), keepdim=True).expand_as(x).contiguous()
        return torch.full_like(x, float(x.mean()))
    if fill == "blur":
        if x.ndim == 5:
            return gaussian_blur_3d(x)
        from torchvision.transforms.functional import gaussian_blur

        return gaussian_blur(x, kernel_size=[31, 31], sigma=[5.0, 5.0])
    if fill == "road":
        return None
    raise ValueError(f"unknown fill {fill!r}: label, mean, blur or road")


#: Public name of the fill code, shared with the occlusion probe (``metrics.occlusion_probe``).
fill_images = _fill_images


def _ranks(maps: torch.Tensor, seed: int, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Per image (N, 1, *spatial), the rank of each pixel from most (0) to least important; ties
    broken at random. With ``valid``, the other voxels (a 3D input's padding) are ranked last."""
    n = maps[0].numel()
    gen = torch.Generator().manual_seed(int(seed))
    jitter = torch.rand(maps.shape, generator=gen).to(maps.device) * 1e-12
    spatial = tuple(range(2, maps.ndim))
    flat = (maps + jitter * maps.abs().amax(dim=spatial, keepdim=True).clamp_min(1e-30)).reshape(len(maps), n)
    if valid is not None:
        flat = flat.masked_fill(~valid.reshape(len(maps), n), float("-inf"))
    order = torch.argsort(flat, dim=1, descending=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(n, device=maps.device).expand_as(order))
    return ranks.view_as(maps)


def fidelity(clf: Classifier, images: np.ndarray, maps: np.ndarray, labels: np.ndarray, *,
             fill: Fill = "label", step: float = 2.5, seed: int = 0, batch_size: int | None = None,
             bootstrap: int = 1000, progress: Progress | None = None,
             index: Sequence[int] | None = None, spacing_mm: Spacing | Sequence[Spacing] | None = None) -> Fidelity:
    """MiF/LiF fidelity of one method's maps over a set of slices (or volumes, for a 3D model).

    Parameters
    ----------
    clf : Classifier
        The model the maps explain.
    images : numpy.ndarray
        (N, H, W) slices in HU. A 3D model: one volume (Z, H, W), a stack (N, Z, H, W) or a list
        of N volumes of any shapes.
    maps : numpy.ndarray
        (N, H, W) maps, one per slice, in the slices' geometry (use absolute maps for the
        study's "absolute" scores; signed maps rank negative evidence last). A 3D model: one map
        per volume on its CT grid (as ``explain`` returns them), given as the volumes are.
    labels : numpy.ndarray
        (N,) true classes (1 = contrast): choose the label-dependent fill and the accuracy.
    fill : {"label", "mean", "blur", "road"}
        Replacement of removed pixels (see module docstring).
    batch_size : int, optional
        Images per forward pass; default: the device's best (``metrics.perturb``).
    progress : callable, optional
        ``progress(done, total, "fidelity")`` in perturbed images forwarded; returning False
        cancels (``progress.Cancelled``).
    index : sequence of int, optional
        For a 2.5D model: ``images`` is the volume (Z, H, W) and ``maps`` / ``labels`` describe
        its slices ``index``. The neighbouring-slice channels are the slice's context and stay as
        they are; only the channels of the explained slice (offset 0) are filled.
    spacing_mm : tuple or sequence of tuple, optional
        A 3D model whose card resamples to a spacing: the CTs' (z, y, x) spacing, one for all
        volumes or one per volume.
    """
    return fidelity_many(clf, images, {0: maps}, labels, fill=fill, step=step, seed=seed, batch_size=batch_size,
                         bootstrap=bootstrap, progress=progress, index=index, spacing_mm=spacing_mm)[0]


def fidelity_many(clf: Classifier, images: np.ndarray, maps: Mapping[K, np.ndarray], labels: np.ndarray, *,
                  fill: Fill = "label", step: float = 2.5, seed: int = 0, batch_size: int | None = None,
                  bootstrap: int = 1000, progress: Progress | None = None,
                  index: Sequence[int] | None = None,
                  spacing_mm: Spacing | Sequence[Spacing] | None = None) -> dict[K, Fidelity]:
    """:func:`fidelity` of several methods' maps of the same slices, in one forward plan.

    ``maps``: name → (N, H, W) maps (as ``maps`` of :func:`fidelity`; volumes for a 3D model). The
    slices are prepared once, the images that do not depend on the map (p = 0 and p = 100) are
    forwarded once, maps with the same pixel ranking share their images, and every perturbed image
    is built inside the batch that forwards it (``metrics.perturb``). Each result equals
    :func:`fidelity` of that map.
    """
    lab = np.asarray(labels).astype(int).ravel()
    valid = own = None
    if clf.card.is_3d:
        if index is not None:
            raise ValueError("a 3D model sees the whole volume: fidelity takes volumes, no slice index")
        x, mps, valid = prepare_volumes(clf, images, maps, len(lab), spacing_mm)
        mps = {k: v[:, 0] for k, v in mps.items()}
    else:
        if spacing_mm is not None:
            raise ValueError("spacing_mm is for 3D models; a 2D model's slice is resized to its input size")
        x, mps, own = _prepare_slices(clf, images, maps, lab, index)
    return fidelity_inputs(clf, x, mps, lab, own=own, valid=valid, fill=fill, step=step, seed=seed,
                           batch_size=batch_size, bootstrap=bootstrap, progress=progress)


def _prepare_slices(clf: Classifier, images: np.ndarray, maps: Mapping[K, np.ndarray], lab: np.ndarray,
                    index: Sequence[int] | None) -> tuple[torch.Tensor, dict[K, torch.Tensor], torch.Tensor | None]:
    """A 2D / 2.5D model's slices and maps in its input space: x (N, C, h, w), maps (N, h, w)
    resized as the slices are, and a 2.5D model's own channels."""
    imgs = np.asarray(images)
    mps = {k: np.asarray(v, dtype=np.float32) for k, v in maps.items()}
    idx = None
    if index is not None:
        idx = np.atleast_1d(np.asarray(index, dtype=int))
        mps = {k: (v[None] if v.ndim == 2 else v) for k, v in mps.items()}
        for mp in mps.values():
            if imgs.ndim != 3 or mp.shape[1:] != imgs.shape[1:] or len(mp) != len(idx) or len(lab) != len(idx):
                raise ValueError(f"with index=, images must be a volume (Z, H, W) and maps (N, H, W) / labels (N,) "
                                 f"its slices; got images {imgs.shape}, maps {mp.shape}, {len(lab)} labels, "
                                 f"{len(idx)} indices")
    else:
        if imgs.ndim == 2:
            imgs, mps = imgs[None], {k: v[None] for k, v in mps.items()}
        for mp in mps.values():
            if imgs.shape != mp.shape or len(lab) != len(imgs):
                raise ValueError(f"images {imgs.shape}, maps {mp.shape} and labels ({len(lab)}) must describe the "
                                 f"same slices")
        if clf.card.is_2_5d:
            raise ValueError(f"this model is 2.5D (channels at slice offsets {clf.card.slice_offsets}): pass the "
                             f"volume as images and the slices scored as index=[...]")
    for mp in mps.values():
        if not np.isfinite(mp).all():
            raise ValueError("a map has NaN/inf values: it cannot rank pixels")
    x = (torch.cat([clf.preprocess(imgs, index=int(k)) for k in idx]) if idx is not None
         else clf.preprocess(imgs))
    # a 2.5D model: only the explained slice's channels are removed, its neighbours are context
    own = (torch.tensor([o == 0 for o in clf.card.slice_offsets], device=x.device).view(1, -1, 1, 1)
           if clf.card.is_2_5d else None)
    resized = {}
    for k, mp in mps.items():
        m = torch.as_tensor(mp)[:, None].to(x.device)
        if m.shape[-2:] != x.shape[-2:]:
            m = F.interpolate(m, size=x.shape[-2:], mode="bilinear", align_corners=False)
        resized[k] = m[:, 0]
    return x, resized, own


def fidelity_inputs(clf: Classifier, x: torch.Tensor, maps: Mapping[K, np.ndarray | torch.Tensor],
                    labels: np.ndarray, *, own: torch.Tensor | None = None, valid: torch.Tensor | None = None,
                    fill: Fill = "label", step: float = 2.5, seed: int = 0, batch_size: int | None = None,
                    bootstrap: int = 1000, progress: Progress | None = None) -> dict[K, Fidelity]:
    """The fidelity protocol on inputs already in the model's input space (2D or 3D).

    Parameters
    ----------
    clf : Classifier
        The model (its forward plan, output kind and baselines).
    x : torch.Tensor
        (N, C, H, W) or (N, C, D, H, W) preprocessed inputs on ``clf.device``.
    maps : mapping
        Name → (N, H, W) or (N, D, H, W) maps on the input grid.
    labels : numpy.ndarray
        (N,) true classes.
    own : torch.Tensor, optional
        (1, C, 1, 1) bool: channels that may be removed (2.5D).
    valid : torch.Tensor, optional
        (N, 1, *spatial) bool: voxels that may be removed (a 3D input's CT, not its padding).
    fill, step, seed, batch_size, bootstrap, progress
        As :func:`fidelity`.
    """
    lab = np.asarray(labels).astype(int).ravel()
    if x.ndim not in (4, 5) or len(lab) != len(x):
        raise ValueError(f"x must be (N, C, H, W) or (N, C, D, H, W) with one label per input, got {tuple(x.shape)} "
                         f"and {len(lab)} labels")
    n_classes = clf.card.n_classes
    if not set(np.unique(lab)) <= set(range(n_classes)):
        raise ValueError(f"labels must be class indices 0…{n_classes - 1} of {list(clf.class_names)}")
    if valid is not None and (tuple(valid.shape) != (len(x), 1, *x.shape[2:]) or
                              not valid.reshape(len(x), -1).any(dim=1).all()):
        raise ValueError(f"valid must be (N, 1, *spatial) bool with a voxel in every input, got {tuple(valid.shape)}")
    ranks = []
    for name, mp in maps.items():
        m = torch.as_tensor(mp, dtype=torch.float32).to(x.device)
        if tuple(m.shape) != (len(x), *x.shape[2:]):
            raise ValueError(f"map {name!r} is {tuple(m.shape)}; on the input grid it must be "
                             f"{(len(x), *x.shape[2:])}")
        if not torch.isfinite(m).all():
            raise ValueError("a map has NaN/inf values: it cannot rank pixels")
        ranks.append(_ranks(m[:, None], seed, valid).to(torch.int32))
    p = fidelity_grid(step)
    fills = _fill_images(x, lab, fill, seed, clf, valid)
    logits, _ = perturbed_logits(clf, x, ranks, fills, p, own=own, valid=valid, seed=seed, batch_size=batch_size,
                                 progress=progress)
    return {k: _curves(clf, logits[u], lab, p, seed, bootstrap, fill) for u, k in enumerate(maps)}


def _curves(clf: Classifier, logits: np.ndarray, lab: np.ndarray, p: np.ndarray, seed: int, bootstrap: int,
            fill: str) -> Fidelity:
    """One map's :class:`Fidelity` from its (2, len(p), N, n_logits) perturbed logits."""
    lg = torch.as_tensor(logits)
    flat = lg.reshape(-1, lg.shape[-1])
    prob = clf.proba(flat).numpy().reshape(*lg.shape[:3], -1)  # (2, P, N, classes)
    pred = clf.predicted(flat).numpy().astype(int).reshape(lg.shape[:3])  # (2, P, N)
    j0 = int(np.argmin(np.abs(p)))  # p = 0: the slices themselves
    pred0 = pred[0, j0]
    rows = np.arange(len(lab))
    acc = {name: np.array([balanced_accuracy(pred[c, j], lab) for j in range(len(p))])
           for c, name in enumerate(("mif", "lif"))}
    probs = {name: prob[c][:, rows, pred0].T.astype(np.float64) for c, name in enumerate(("mif", "lif"))}
    preds = {name: pred[c].T.copy() for c, name in enumerate(("mif", "lif"))}
    base = np.clip(probs["mif"][:, :1], 1e-12, None)
    nm, nl = probs["mif"] / base, probs["lif"] / base
    per_image = np.trapezoid(nl - nm, p / 100, axis=1)
    rng = np.random.default_rng(seed)
    boots = [per_image[rng.integers(0, len(per_image), len(per_image))].mean() for _ in range(bootstrap)]
    return Fidelity(p=p, mif=acc["mif"], lif=acc["lif"], F=float(np.trapezoid(acc["lif"] - acc["mif"], p / 100)),
                    prob_mif=nm, prob_lif=nl, F_continuous=float(per_image.mean()),
                    F_continuous_ci=(float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))),
                    pred_mif=preds["mif"], pred_lif=preds["lif"], fill=fill)
