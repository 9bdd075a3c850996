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
from .perturb import perturbed_logits

Fill = Literal["label", "mean", "blur", "road"]
K = TypeVar("K")


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
             fill: Fill = "label", step: float = 2.5, seed: int = 0, batch_size: int | None = None,
             bootstrap: int = 1000, progress: Progress | None = None,
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
    batch_size : int, optional
        Images per forward pass; default: the device's best (``metrics.perturb``).
    progress : callable, optional
        ``progress(done, total, "fidelity")`` in perturbed images forwarded; returning False
        cancels (``progress.Cancelled``).
    index : sequence of int, optional
        For a 2.5D model: ``images`` is the volume (Z, H, W) and ``maps`` / ``labels`` describe
        its slices ``index``. The neighbouring-slice channels are the slice's context and stay as
        they are; only the channels of the explained slice (offset 0) are filled.
    """
    return fidelity_many(clf, images, {0: maps}, labels, fill=fill, step=step, seed=seed, batch_size=batch_size,
                         bootstrap=bootstrap, progress=progress, index=index)[0]


def fidelity_many(clf: Classifier, images: np.ndarray, maps: Mapping[K, np.ndarray], labels: np.ndarray, *,
                  fill: Fill = "label", step: float = 2.5, seed: int = 0, batch_size: int | None = None,
                  bootstrap: int = 1000, progress: Progress | None = None,
                  index: Sequence[int] | None = None) -> dict[K, Fidelity]:
    """:func:`fidelity` of several methods' maps of the same slices, in one forward plan.

    ``maps``: name → (N, H, W) maps (as ``maps`` of :func:`fidelity`). The slices are prepared
    once, the images that do not depend on the map (p = 0 and p = 100) are forwarded once, maps
    with the same pixel ranking share their images, and every perturbed image is built inside the
    batch that forwards it (``metrics.perturb``). Each result equals :func:`fidelity` of that map.
    """
    imgs = np.asarray(images)
    lab = np.asarray(labels).astype(int).ravel()
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
    n_classes = clf.card.n_classes
    if not set(np.unique(lab)) <= set(range(n_classes)):
        raise ValueError(f"labels must be class indices 0…{n_classes - 1} of {list(clf.class_names)}")
    x = (torch.cat([clf.preprocess(imgs, index=int(k)) for k in idx]) if idx is not None
         else clf.preprocess(imgs))
    # a 2.5D model: only the explained slice's channels are removed, its neighbours are context
    own = (torch.tensor([o == 0 for o in clf.card.slice_offsets], device=x.device).view(1, -1, 1, 1)
           if clf.card.is_2_5d else None)
    ranks = []
    for mp in mps.values():
        m = torch.as_tensor(mp)[:, None].to(x.device)
        if m.shape[-2:] != x.shape[-2:]:
            m = F.interpolate(m, size=x.shape[-2:], mode="bilinear", align_corners=False)
        ranks.append(_ranks(m, seed))
    p = fidelity_grid(step)
    fills = _fill_images(x, lab, fill, seed, clf)
    logits, _ = perturbed_logits(clf, x, ranks, fills, p, own=own, seed=seed, batch_size=batch_size,
                                 progress=progress)
    return {k: _curves(clf, logits[u], lab, p, seed, bootstrap, fill) for u, k in enumerate(mps)}


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
