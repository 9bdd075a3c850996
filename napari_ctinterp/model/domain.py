"""Out-of-domain check: how far a slice lies from the model's training data.

Detector: the Mahalanobis distance of the penultimate-layer features to the training
distribution, class-conditional with a tied covariance (Lee, Lee, Lee & Shin, "A Simple Unified
Framework for Detecting Out-of-Distribution Samples and Adversarial Attacks", NeurIPS 2018), on the
features only (no input pre-processing, one layer). It needs no retraining: features are the input
of the network's last ``nn.Linear`` (the pooled penultimate activations), taken by a forward
pre-hook in the same forward pass that gives the logits, so the check costs a matrix product.

Fitting (``fit_domain``): features of in-domain training slices; each slice's class is the model's
own prediction (training folders rarely come with labels; Lee et al. use the nearest class at test
time too); class means and a Ledoit–Wolf shrunk tied covariance (scikit-learn), its inverse stored.
Slices are split: 80 % fit the statistics, the score of the other 20 % sets the threshold at their
99th percentile. Score = min over classes of the squared Mahalanobis distance; above the threshold
the slice is out of domain. The card's ``domain`` entry records the detector, its reference and
parameters, the threshold, the counts and the statistics file (``<weights>.domain.npz`` beside the
weights, checked by its SHA-256): the precision matrix of a 1,024-feature DenseNet is 4 MB, too
large for a JSON card.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:  # pragma: no cover
    from .classifier import Classifier

DETECTOR = "mahalanobis-penultimate"
REFERENCE = ("Lee K, Lee K, Lee H, Shin J. A simple unified framework for detecting out-of-distribution "
             "samples and adversarial attacks. NeurIPS 2018")
PERCENTILE = 99.0
HELD_OUT = 0.2
#: The warning shown next to an out-of-domain result.
WARNING = "this slice is unlike the model's training data: its answer and maps may not mean anything"


@dataclass(frozen=True)
class DomainCheck:
    """How far one slice lies from the model's training data.

    Attributes
    ----------
    score : float
        Squared Mahalanobis distance of its penultimate features to the nearest class (NaN when
        the card has no domain statistics).
    threshold : float or None
        The card's threshold (99th percentile of held-out in-domain slices).
    in_domain : bool or None
        ``score <= threshold``; None ("unknown") without statistics — never "in domain".
    reason : str
        One line for people: the score against the threshold, or why it is unknown.
    """

    score: float
    threshold: float | None
    in_domain: bool | None
    reason: str

    @property
    def label(self) -> str:
        """``in domain`` / ``out of domain`` / ``unknown``."""
        return "unknown" if self.in_domain is None else "in domain" if self.in_domain else "out of domain"


@dataclass(frozen=True)
class DomainStats:
    """Fitted statistics: class means (K, D), tied precision (D, D), threshold."""

    means: np.ndarray
    precision: np.ndarray
    threshold: float

    def score(self, feats: torch.Tensor) -> np.ndarray:
        """(B,) min over classes of the squared Mahalanobis distance of features (B, D)."""
        f = feats.detach().double().cpu()
        mu = torch.as_tensor(self.means, dtype=torch.float64)
        prec = torch.as_tensor(self.precision, dtype=torch.float64)
        d = f[:, None, :] - mu[None]  # (B, K, D)
        m = torch.einsum("bkd,de,bke->bk", d, prec, d)
        return m.min(dim=1).values.numpy()


#: Why the check is unknown for a network without an ``nn.Linear`` head.
NO_HEAD = ("unknown: the domain check needs a network whose head is an nn.Linear layer (its input is the "
           "feature vector); this network has none")


def feature_layer(module: nn.Module) -> tuple[str, nn.Linear] | None:
    """The network's last ``nn.Linear`` (its input is the penultimate feature vector), or None."""
    found = [(name, m) for name, m in module.named_modules() if isinstance(m, nn.Linear)]
    return found[-1] if found else None


def logits_and_features(clf: Classifier, x: torch.Tensor, *, batch_size: int = 32
                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logits of preprocessed inputs (``clf.logits``: its batches) and the penultimate features
    taken on the way by a forward pre-hook; features None when the network has no Linear head."""
    head = feature_layer(clf.module)
    if head is None:
        return clf.logits(x, batch_size=batch_size), None
    feats: list[torch.Tensor] = []

    def grab(_m: nn.Module, args: tuple) -> None:
        feats.append(args[0].detach().float().flatten(1).cpu())

    handle = head[1].register_forward_pre_hook(grab)
    try:
        logits = clf.logits(x, batch_size=batch_size)
    finally:
        handle.remove()
    return logits, torch.cat(feats)


def fit_domain(clf: Classifier, x: torch.Tensor, *, seed: int = 0, batch_size: int = 32,
               percentile: float = PERCENTILE) -> tuple[DomainStats, dict]:
    """Fit the detector on preprocessed in-domain inputs ``x``; returns the statistics and the card's
    ``domain`` entry (without the statistics file name, see :func:`save_domain`)."""
    from sklearn.covariance import LedoitWolf

    if len(x) < 20:
        raise ValueError(f"fitting the domain check needs at least 20 training slices, got {len(x)}")
    logits, feats = logits_and_features(clf, x, batch_size=batch_size)
    if feats is None:
        raise ValueError(NO_HEAD.removeprefix("unknown: "))
    pred = clf.predicted(logits).cpu().numpy()
    f = feats.double().numpy()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(f))
    n_held = max(5, int(round(HELD_OUT * len(f))))
    held, fit = order[:n_held], order[n_held:]
    classes = sorted(set(pred[fit].tolist()))
    means = np.stack([f[fit][pred[fit] == c].mean(0) for c in classes])
    centred = f[fit] - means[np.searchsorted(classes, pred[fit])]
    lw = LedoitWolf(assume_centered=True).fit(centred)
    stats = DomainStats(means=means.astype(np.float64), precision=lw.precision_.astype(np.float64), threshold=0.0)
    held_scores = stats.score(torch.as_tensor(f[held]))
    threshold = float(np.percentile(held_scores, percentile))
    stats = DomainStats(stats.means, stats.precision, threshold)
    name = feature_layer(clf.module)[0]  # type: ignore[index]
    entry = {"detector": DETECTOR, "reference": REFERENCE, "layer": f"input of {name}",
             "covariance": "Ledoit-Wolf, tied over classes", "classes": "the model's predicted class",
             "score": "min over classes of the squared Mahalanobis distance", "threshold": threshold,
             "percentile": percentile, "n_fit": int(len(fit)), "n_heldout": int(len(held)),
             "n_features": int(f.shape[1]), "seed": int(seed)}
    return stats, entry


def stats_path_for(weights: str | Path) -> Path:
    """``<weights name>.domain.npz`` beside the weights."""
    from .card import card_path_for

    return card_path_for(weights).with_suffix(".domain.npz")


def save_domain(stats: DomainStats, entry: dict, weights: str | Path) -> dict:
    """Write the statistics beside the weights; returns the card's ``domain`` entry naming them."""
    path = stats_path_for(weights)
    np.savez(path, means=stats.means, precision=stats.precision, threshold=np.array(stats.threshold))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {**entry, "statistics": path.name, "statistics_sha256": digest}


def load_domain(entry: dict | None, weights: str | Path | None) -> tuple[DomainStats | None, str]:
    """The statistics a card's ``domain`` entry names, or None with the reason."""
    if not entry:
        return None, ("unknown: this model's card has no domain statistics — run `ctinterp fit-domain --model M "
                      "--data DIR` with a folder of its training slices")
    if weights is None:
        return None, "unknown: the model was not loaded from a file, its domain statistics cannot be found"
    path = Path(weights).with_name(str(entry.get("statistics", "")))
    if not path.is_file():
        return None, f"unknown: the domain statistics {path.name} are missing beside the weights"
    if hashlib.sha256(path.read_bytes()).hexdigest() != entry.get("statistics_sha256"):
        return None, f"unknown: {path.name} does not match the card (its SHA-256 differs): fit the domain again"
    with np.load(path) as z:
        return DomainStats(z["means"], z["precision"], float(entry["threshold"])), ""


def checks(stats: DomainStats | None, reason: str, feats: torch.Tensor | None, n: int) -> list[DomainCheck]:
    """One :class:`DomainCheck` for each of ``n`` slices (``feats``: their features, or None)."""
    if feats is None:
        stats, reason = None, NO_HEAD
    if stats is None:
        return [DomainCheck(float("nan"), None, None, reason) for _ in range(n)]
    out = []
    for s in stats.score(feats):
        ok = bool(s <= stats.threshold)
        out.append(DomainCheck(float(s), stats.threshold, ok,
                               f"score {s:.1f} {'≤' if ok else '>'} threshold {stats.threshold:.1f} "
                               f"(Mahalanobis distance to the training data)" + ("" if ok else f": {WARNING}")))
    return out


def phantom_inputs(clf: Classifier, n: int, *, seed: int = 0, workers: int = 1,
                   progress=None) -> torch.Tensor:
    """``n`` phantom slices from the training seed range (both classes, every phase, random levels),
    in the model's input space: the demo models' training data."""
    from .datasets import phantom_set, phantom_spec, task_of
    from .training import normalise

    task = task_of(clf.card.class_names)
    data = phantom_set(phantom_spec("train", n, seed + 4242, task=task), list(clf.card.windows), clf.card.input_size,
                       workers=workers, task=task, progress=progress)
    return normalise(data.x, clf.card.normalize).to(clf.device)


def folder_inputs(clf: Classifier, folder: str | Path) -> torch.Tensor:
    """Every slice of every DICOM series under ``folder`` (and ``.npy`` HU volumes / slices), in the
    model's input space; a 2.5D model takes each slice with its neighbours from its series."""
    from ..io import CTReadError, CTReadWarning, read_ct
    from ..io.dicom_files import collect_paths, group_series, read_headers

    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder: give a folder of the model's training slices (DICOM)")
    volumes = [np.load(p) for p in sorted(root.rglob("*.npy"))]
    others = [p for p in collect_paths(root)[0] if p.suffix != ".npy"]
    if others:
        headers, _ = read_headers(others, "folder", root)
        for group in group_series(headers):
            if not group.is_image:
                continue
            try:
                volumes.append(read_ct([h.path for h in group.headers]).hu)
            except CTReadError as exc:  # a PET or dose series beside the CT: not training data
                warnings.warn(f"skipped series {group.uid or '(no UID)'} under {root}: {exc}", CTReadWarning,
                              stacklevel=2)
    if not volumes:
        raise ValueError(f"no DICOM series or .npy slices found under {root}")
    xs = []
    for vol in volumes:
        vol = vol[None] if vol.ndim == 2 else vol
        if clf.card.is_2_5d:
            xs.extend(clf.preprocess(vol, index=k) for k in range(len(vol)))
        else:
            xs.append(clf.preprocess(vol))
    return torch.cat(xs)


def fit_and_save(clf: Classifier, x: torch.Tensor, *, seed: int = 0, source: str = "") -> dict:
    """Fit on ``x``, write the statistics beside the model's weights and its card's ``domain``
    entry; returns the entry."""
    from .card import card_path_for

    if not clf.weights_path:
        raise ValueError("the model was not loaded from a file: there is no card to write the statistics to")
    stats, entry = fit_domain(clf, x, seed=seed)
    entry = save_domain(stats, {**entry, "data": source}, clf.weights_path)
    card_file = card_path_for(clf.weights_path)
    from dataclasses import replace

    replace(clf.card, domain=entry).save(card_file)
    return entry
