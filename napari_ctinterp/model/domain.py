"""Out-of-domain check: how far a slice lies from the model's training data.

Detector: the Mahalanobis distance of a network's features to the training distribution, class-
conditional with a tied covariance, in several layers at once — the feature ensemble of Lee, Lee,
Lee & Shin, "A Simple Unified Framework for Detecting Out-of-Distribution Samples and Adversarial
Attacks" (NeurIPS 2018), without its input pre-processing and with an unsupervised combination
(Lee et al. weight the layers by a regression on known out-of-domain data, which a user does not
have). Layers: the input of the network's last ``nn.Linear`` (the pooled penultimate features) and,
at every spatial resolution the network passes through, the output of the last module at that
resolution (its stages: for a ResNet the stem, ``layer1`` … ``layer3``; ``layer4``'s spatial mean is
the head's input and is not counted twice), each averaged over space.
The penultimate features alone miss what pooling erases: a phantom rotated by 90° or a head CT
look much like the training slices once averaged into 512 numbers, while the early stages'
oriented-edge and texture channels tell them apart at once (measured on the demo model: 20 of 40
rotated slices and 2 of 4 head slices flagged with the penultimate layer alone, 40 and 4 with the
ensemble, the same false-alarm rate; demo-phase: 34 of 40 rotated and 4 of 4 heads). Every
feature is taken by a hook in the same forward pass that gives the logits, so the check costs a few
means and matrix products.

Fitting (``fit_domain``, in ``model.domain_fitting``): features of in-domain training slices; each
slice's class is the model's own prediction (training folders rarely come with labels; Lee et al.
use the nearest class at test time too); per layer, class means and a Ledoit–Wolf shrunk tied
covariance (scikit-learn), its inverse stored. Slices are split: 80 % fit the statistics, the other
20 % (held out) set each layer's scale (the 90th percentile of their distances) and the threshold.
Score = max over layers of (min over classes of the squared Mahalanobis distance) / the layer's
scale; the threshold is the 99th percentile of the held-out slices' scores; above it the slice is
out of domain. The card's ``domain`` entry records the detector, its reference and parameters, the
layers, the threshold, the counts and the statistics file (``<weights>.domain.npz`` beside the
weights, checked by its SHA-256): the precision matrix of a 1,024-feature DenseNet is 8 MB, too
large for a JSON card. Statistics of the earlier, penultimate-only detector
(``mahalanobis-penultimate``) still load.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from .card import card_path_for
from .families import family_of

DETECTOR = "mahalanobis-layers"
#: The layer name that stands for the input of the network's last ``nn.Linear``.
HEAD = "head"
REFERENCE = ("Lee K, Lee K, Lee H, Shin J. A simple unified framework for detecting out-of-distribution "
             "samples and adversarial attacks. NeurIPS 2018")
PERCENTILE = 99.0
#: Each layer's distances are divided by this percentile of its held-out distances before the max:
#: a layer whose in-domain distances have a long tail (a ResNet's stem) does not raise the threshold
#: of all the others (a median scale let it: rotated phantoms flagged 23 of 40 instead of 40).
SCALE_PERCENTILE = 90.0
HELD_OUT = 0.2
#: The warning shown next to an out-of-domain result.
WARNING = "this slice is unlike the model's training data: its answer and maps may not mean anything"


class Classifier(Protocol):
    """What the check needs of a classifier: ``model.Classifier`` (not imported here: the
    classifier imports this module)."""

    module: nn.Module

    @property
    def n_logits(self) -> int: ...  # noqa: D102

    def logits(self, x: torch.Tensor, *, batch_size: int = 32) -> torch.Tensor: ...  # noqa: D102

    def _forward_nograd(self, x: torch.Tensor) -> torch.Tensor: ...

    def _batched(self, x: torch.Tensor, batch_size: int,
                 fn: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[torch.Tensor]: ...


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
class LayerStats:
    """One layer's fitted statistics: class means (K, D), tied precision (D, D), scale."""

    means: np.ndarray
    precision: np.ndarray
    scale: float = 1.0

    def distance(self, feats: torch.Tensor) -> np.ndarray:
        """(B,) min over classes of the squared Mahalanobis distance of features (B, D)."""
        f = feats.detach().double().cpu()
        mu = torch.as_tensor(self.means, dtype=torch.float64)
        prec = torch.as_tensor(self.precision, dtype=torch.float64)
        d = f[:, None, :] - mu[None]  # (B, K, D)
        m = torch.einsum("bkd,de,bke->bk", d, prec, d)
        return m.min(dim=1).values.numpy()


@dataclass(frozen=True)
class DomainStats:
    """Fitted statistics: one :class:`LayerStats` per layer (``layers``: module names, ``"head"`` for
    the input of the last ``nn.Linear``), and the threshold of the combined score."""

    layers: tuple[str, ...]
    per_layer: tuple[LayerStats, ...]
    threshold: float

    def layer_scores(self, feats: list[torch.Tensor]) -> np.ndarray:
        """(B, L) each layer's distance divided by its scale."""
        return np.stack([st.distance(f) / st.scale for st, f in zip(self.per_layer, feats)], axis=1)

    def score(self, feats: list[torch.Tensor]) -> np.ndarray:
        """(B,) the combined score: the largest scaled distance over the layers."""
        return self.layer_scores(feats).max(axis=1)


#: Why the check is unknown for a network without an ``nn.Linear`` head.
NO_HEAD = ("unknown: the domain check needs a network whose head is an nn.Linear layer (its input is the "
           "feature vector); this network has none")


def feature_layer(module: nn.Module) -> tuple[str, nn.Linear] | None:
    """The network's head (its family's: the last ``nn.Linear``, whose input is the penultimate
    feature vector), or None."""
    name = family_of(module).head(module)
    return None if name is None else (name, dict(module.named_modules())[name])


def logits_and_features(clf: Classifier, x: torch.Tensor, *, batch_size: int = 32
                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logits of preprocessed inputs (``clf.logits``: its batches) and the penultimate features
    taken on the way by a forward pre-hook; features None when the network has no Linear head."""
    logits, feats = logits_and_layer_features(clf, x, (HEAD,), batch_size=batch_size)
    return logits, None if feats is None else feats[0]


def logits_and_layer_features(clf: Classifier, x: torch.Tensor, layers: Sequence[str], *, batch_size: int = 32
                              ) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
    """Logits of preprocessed inputs and, from the same forward pass, the features of ``layers``:
    the output of each named module averaged over space (B, C), and for ``"head"`` the input of
    the last ``nn.Linear`` (B, D). Features None when a layer cannot be found or hooked."""
    head = feature_layer(clf.module)
    modules = dict(clf.module.named_modules())
    if (HEAD in layers and head is None) or any(n != HEAD and n not in modules for n in layers):
        return clf.logits(x, batch_size=batch_size), None
    store: dict[str, list[torch.Tensor]] = {n: [] for n in layers}  # features of the batches that succeeded
    attempt: dict[str, list[torch.Tensor]] = {n: [] for n in layers}  # of the batch being forwarded
    misfired: list[str] = []

    def pooled(t: torch.Tensor) -> torch.Tensor:
        t = t.detach().float()
        return (t.mean(dim=tuple(range(2, t.ndim))) if t.ndim > 2 else t.flatten(1)).cpu()

    handles = []
    try:
        for n in layers:
            if n == HEAD:
                handles.append(head[1].register_forward_pre_hook(  # type: ignore[index]
                    lambda _m, args, n=n: attempt[n].append(pooled(args[0]))))
            else:
                handles.append(modules[n].register_forward_hook(
                    lambda _m, _a, out, n=n: attempt[n].append(pooled(out))))

        def run(xb: torch.Tensor) -> torch.Tensor:
            # a batch that ran out of memory is retried halved by ``clf._batched``: only the features
            # of the attempt that succeeded are kept, so they stay aligned with the logits
            for n in layers:
                attempt[n].clear()
            out = clf._forward_nograd(xb)
            for n in layers:
                rows = torch.cat(attempt[n]) if attempt[n] else torch.empty(0)
                if len(rows) != len(xb):  # a module that runs twice per forward: no aligned features
                    misfired.append(n)
                store[n].append(rows)
            return out

        outs = list(clf._batched(x, batch_size, run))
    except RuntimeError:  # a scripted module refuses hooks
        return clf.logits(x, batch_size=batch_size), None
    finally:
        for h in handles:
            h.remove()
    logits = torch.cat(outs) if outs else torch.empty(0, clf.n_logits)
    if misfired or not outs:
        return logits, None
    return logits, [torch.cat(store[n]) for n in layers]


def stats_path_for(weights: str | Path) -> Path:
    """``<weights name>.domain.npz`` beside the weights."""
    return card_path_for(weights).with_suffix(".domain.npz")


def save_domain(stats: DomainStats, entry: dict, weights: str | Path) -> dict:
    """Write the statistics beside the weights; returns the card's ``domain`` entry naming them."""
    path = stats_path_for(weights)
    arrays = {"threshold": np.array(stats.threshold), "layers": np.array(stats.layers),
              "scales": np.array([st.scale for st in stats.per_layer])}
    for i, st in enumerate(stats.per_layer):
        # float32 on disk (half the size: a DenseNet's six layers are 10 MB, not 20), float64 in use
        arrays[f"means_{i}"], arrays[f"precision_{i}"] = st.means.astype(np.float32), st.precision.astype(np.float32)
    np.savez(path, **arrays)
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
        if "means" in z:  # the penultimate-only detector (mahalanobis-penultimate)
            return DomainStats((HEAD,), (LayerStats(z["means"], z["precision"]),), float(entry["threshold"])), ""
        layers = tuple(str(n) for n in z["layers"])
        per_layer = tuple(LayerStats(z[f"means_{i}"].astype(np.float64), z[f"precision_{i}"].astype(np.float64),
                                     float(z["scales"][i]))
                          for i in range(len(layers)))
    return DomainStats(layers, per_layer, float(entry["threshold"])), ""


def checks(stats: DomainStats | None, reason: str, feats: list[torch.Tensor] | None, n: int) -> list[DomainCheck]:
    """One :class:`DomainCheck` for each of ``n`` slices (``feats``: their features in the layers of
    ``stats``, or None)."""
    if feats is None:
        stats, reason = None, NO_HEAD
    if stats is None:
        return [DomainCheck(float("nan"), None, None, reason) for _ in range(n)]
    per_layer = stats.layer_scores(feats)
    out = []
    for row in per_layer:
        s = float(row.max())
        ok = bool(s <= stats.threshold)
        where = ""
        if len(stats.layers) > 1:
            worst = stats.layers[int(row.argmax())]
            where = f", most unlike at {'the penultimate features' if worst == HEAD else worst}"
        out.append(DomainCheck(s, stats.threshold, ok,
                               f"score {s:.2f} {'≤' if ok else '>'} threshold {stats.threshold:.2f} "
                               f"(Mahalanobis distance to the training data{where})" + ("" if ok else f": {WARNING}")))
    return out
