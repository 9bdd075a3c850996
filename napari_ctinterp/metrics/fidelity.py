"""Fidelity of attribution maps to the model: MiF/LiF perturbation curves and F.

The paper's protocol (../shared/REFERENCE.md): rank pixels most-important-first (MiF) or
least-important-first (LiF); set the top p % (p = 0, 2.5, …, 100) to a fill value — 0 (black) for
contrast slices and 1 (white) for non-contrast slices, in the model's input space; balanced
accuracy over the slice set at each p; F = ∫₀¹ (LiF − MiF) dp. A faithful map destroys the
decision fast when its top pixels go (MiF falls) and slowly when its bottom pixels go (LiF stays).

Beside it: a continuous variant (per-image probability of the predicted class normalised by its
p = 0 value; mean LiF − MiF area with a bootstrap 95 % CI) and class-neutral fills (dataset mean,
Gaussian blur, ROAD noisy linear imputation). All perturbed images of a map go through the model in
large batches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from ..model.classifier import Classifier
from .road import road_impute

Fill = Literal["label", "mean", "blur", "road"]


def fidelity_grid(step: float = 2.5) -> np.ndarray:
    """p in percent: 0, 2.5, …, 100."""
    return np.arange(0, 100 + step / 2, step)


@dataclass(frozen=True)
class Fidelity:
    """MiF/LiF curves of one method over a set of slices.

    Attributes
    ----------
    p : numpy.ndarray
        Percent of pixels replaced.
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


def balanced_accuracy(pred: np.ndarray, labels: np.ndarray) -> float:
    """Mean recall of the classes present."""
    recalls = [float(np.mean(pred[labels == c] == c)) for c in np.unique(labels)]
    return float(np.mean(recalls))


def _fill_images(x: torch.Tensor, labels: np.ndarray, fill: Fill, seed: int,
                 clf: Classifier | None = None) -> torch.Tensor | None:
    """Per-image replacement values (same shape as x), or None for ROAD (computed per mask).

    ``label``: class 0 (no contrast) is filled white, every other class black — per channel, the
    top / bottom of that channel's window, normalised as the model's input (``clf.baseline``).
    ``mean``: the mean of each channel."""
    multi = x.shape[1] > 1 or (clf is not None and clf.card.normalize is not None)
    if fill == "label":
        if clf is not None:
            black, white = clf.baseline(0.0).to(x.device), clf.baseline(1.0).to(x.device)
        else:  # the unnormalised one-channel input space
            black, white = torch.zeros(1, 1, 1, 1, device=x.device), torch.ones(1, 1, 1, 1, device=x.device)
        is_zero = torch.as_tensor(labels == 0, device=x.device).view(-1, 1, 1, 1)
        return torch.where(is_zero, white, black).expand_as(x)
    if fill == "mean":
        if multi:
            return x.mean(dim=(0, 2, 3), keepdim=True).expand_as(x).contiguous()
        return torch.full_like(x, float(x.mean()))
    if fill == "blur":
        from torchvision.transforms.functional import gaussian_blur

        return gaussian_blur(x, kernel_size=[31, 31], sigma=[5.0, 5.0])
    if fill == "road":
        return None
    raise ValueError(f"unknown fill {fill!r}: label, mean, blur or road")


#: Public name of the fill code, shared with the occlusion probe (``metrics.occlusion_probe``).
fill_images = _fill_images


def _ranks(maps: torch.Tensor, seed: int) -> torch.Tensor:
    """Per image, the rank of each pixel from most (0) to least important; ties broken at random."""
    n = maps[0].numel()
    gen = torch.Generator().manual_seed(int(seed))
    jitter = torch.rand(maps.shape, generator=gen).to(maps.device) * 1e-12
    flat = (maps + jitter * maps.abs().amax(dim=(-1, -2), keepdim=True).clamp_min(1e-30)).reshape(len(maps), n)
    order = torch.argsort(flat, dim=1, descending=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(n, device=maps.device).expand_as(order))
    return ranks.view_as(maps)


def fidelity(clf: Classifier, images: np.ndarray, maps: np.ndarray, labels: np.ndarray, *,
             fill: Fill = "label", step: float = 2.5, seed: int = 0, batch_size: int = 64,
             bootstrap: int = 1000, progress: Callable[[int, int], object] | None = None,
             index: Sequence[int] | None = None) -> Fidelity:
    """MiF/LiF fidelity of one method's maps over a set of slices.

    Parameters
    ----------
    clf : Classifier
        The model the maps explain.
    images : numpy.ndarray
        (N, H, W) slices in HU.
    maps : numpy.ndarray
        (N, H, W) maps, one per slice, in the slices' geometry (use absolute maps for the
        study's "absolute" scores; signed maps rank negative evidence last).
    labels : numpy.ndarray
        (N,) true classes (1 = contrast): choose the label-dependent fill and the accuracy.
    fill : {"label", "mean", "blur", "road"}
        Replacement of removed pixels (see module docstring).
    index : sequence of int, optional
        For a 2.5D model: ``images`` is the volume (Z, H, W) and ``maps`` / ``labels`` describe
        its slices ``index``. The neighbouring-slice channels are the slice's context and stay as
        they are; only the channels of the explained slice (offset 0) are filled.
    """
    imgs = np.asarray(images)
    mp = np.asarray(maps, dtype=np.float32)
    lab = np.asarray(labels).astype(int).ravel()
    if index is not None:
        idx = np.atleast_1d(np.asarray(index, dtype=int))
        mp = mp[None] if mp.ndim == 2 else mp
        if imgs.ndim != 3 or mp.shape[1:] != imgs.shape[1:] or len(mp) != len(idx) or len(lab) != len(idx):
            raise ValueError(f"with index=, images must be a volume (Z, H, W) and maps (N, H, W) / labels (N,) "
                             f"its slices; got images {imgs.shape}, maps {mp.shape}, {len(lab)} labels, "
                             f"{len(idx)} indices")
    else:
        if imgs.ndim == 2:
            imgs, mp = imgs[None], mp[None]
        if imgs.shape != mp.shape or len(lab) != len(imgs):
            raise ValueError(f"images {imgs.shape}, maps {mp.shape} and labels ({len(lab)}) must describe the "
                             f"same slices")
        if clf.card.is_2_5d:
            raise ValueError(f"this model is 2.5D (channels at slice offsets {clf.card.slice_offsets}): pass the "
                             f"volume as images and the slices scored as index=[...]")
    if not np.isfinite(mp).all():
        raise ValueError("a map has NaN/inf values: it cannot rank pixels")
    n_classes = clf.card.n_classes
    if not set(np.unique(lab)) <= set(range(n_classes)):
        raise ValueError(f"labels must be class indices 0…{n_classes - 1} of {list(clf.class_names)}")
    x = (torch.cat([clf.preprocess(imgs, index=int(k)) for k in idx]) if index is not None
         else clf.preprocess(imgs))
    # a 2.5D model: only the explained slice's channels are removed, its neighbours are context
    own = (torch.tensor([o == 0 for o in clf.card.slice_offsets], device=x.device).view(1, -1, 1, 1)
           if clf.card.is_2_5d else None)
    m = torch.as_tensor(mp)[:, None].to(x.device)
    m = F.interpolate(m, size=x.shape[-2:], mode="bilinear", align_corners=False) if m.shape[-2:] != x.shape[-2:] else m
    ranks = _ranks(m, seed)
    n_pix = x[0, 0].numel()
    p = fidelity_grid(step)
    fills = _fill_images(x, lab, fill, seed, clf)
    with torch.no_grad():
        pred0 = clf.predicted(clf.logits(x, batch_size=batch_size)).long().cpu().numpy()
    rows = np.arange(len(x))
    probs = {"mif": np.zeros((len(x), len(p))), "lif": np.zeros((len(x), len(p)))}
    preds = {"mif": np.zeros((len(x), len(p)), dtype=int), "lif": np.zeros((len(x), len(p)), dtype=int)}
    acc = {"mif": np.zeros(len(p)), "lif": np.zeros(len(p))}
    total, done = 2 * len(p), 0
    per_chunk = max(1, batch_size // len(x))  # p values per forward batch: ~batch_size images
    for name in ("mif", "lif"):
        for start in range(0, len(p), per_chunk):
            js = range(start, min(start + per_chunk, len(p)))
            batch = []
            for j in js:
                n_rm = int(round(p[j] / 100 * n_pix))
                removed = ranks < n_rm if name == "mif" else ranks >= n_pix - n_rm
                removed = removed if own is None else removed & own
                filled = road_impute(x, removed, seed=seed + j) if fills is None else torch.where(removed, fills, x)
                batch.append(filled)
            logits = clf.logits(torch.cat(batch), batch_size=batch_size)
            prob_all, pred_all = clf.proba(logits).cpu().numpy(), clf.predicted(logits).cpu().numpy()
            for k, j in enumerate(js):
                pred = pred_all[k * len(x):(k + 1) * len(x)].astype(int)
                acc[name][j] = balanced_accuracy(pred, lab)  # mean recall over the classes present
                preds[name][:, j] = pred
                probs[name][:, j] = prob_all[k * len(x):(k + 1) * len(x)][rows, pred0]  # P(the class first predicted)
                done += 1
                if progress is not None:
                    progress(done, total)
    base = np.clip(probs["mif"][:, :1], 1e-12, None)
    nm, nl = probs["mif"] / base, probs["lif"] / base
    per_image = np.trapezoid(nl - nm, p / 100, axis=1)
    rng = np.random.default_rng(seed)
    boots = [per_image[rng.integers(0, len(per_image), len(per_image))].mean() for _ in range(bootstrap)]
    return Fidelity(p=p, mif=acc["mif"], lif=acc["lif"], F=float(np.trapezoid(acc["lif"] - acc["mif"], p / 100)),
                    prob_mif=nm, prob_lif=nl, F_continuous=float(per_image.mean()),
                    F_continuous_ci=(float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))),
                    pred_mif=preds["mif"], pred_lif=preds["lif"], fill=fill)
