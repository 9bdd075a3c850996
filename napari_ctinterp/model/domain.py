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

Fitting (``fit_domain``): features of in-domain training slices; each slice's class is the model's
own prediction (training folders rarely come with labels; Lee et al. use the nearest class at test
time too); per layer, class means and a Ledoit–Wolf shrunk tied covariance (scikit-learn), its
inverse stored. Slices are split: 80 % fit the statistics, the other 20 % (held out) set each
layer's scale (the 90th percentile of their distances) and the threshold. Score = max over layers of (min over
classes of the squared Mahalanobis distance) / the layer's scale; the threshold is the 99th
percentile of the held-out slices' scores; above it the slice is out of domain. The card's
``domain`` entry records the detector, its reference and parameters, the layers, the threshold, the
counts and the statistics file (``<weights>.domain.npz`` beside the weights, checked by its
SHA-256): the precision matrix of a 1,024-feature DenseNet is 8 MB, too large for a JSON card.
Statistics of the earlier, penultimate-only detector (``mahalanobis-penultimate``) still load.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:  # pragma: no cover
    from .classifier import Classifier

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
    """The network's last ``nn.Linear`` (its input is the penultimate feature vector), or None."""
    found = [(name, m) for name, m in module.named_modules() if isinstance(m, nn.Linear)]
    return found[-1] if found else None


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


def _per_position(m: nn.Module) -> bool:
    """Modules that act per position (and may see channels-last tensors, as in ConvNeXt blocks,
    whose 4-D shape is then not (B, C, H, W)): never a stage's output."""
    return (isinstance(m, nn.Linear | nn.LayerNorm | nn.Dropout | nn.Identity)
            or type(m).__module__ == "torch.nn.modules.activation" or type(m).__name__ == "Permute")


def stage_layers(clf: Classifier, x: torch.Tensor) -> list[str]:
    """The network's stages: for every spatial resolution (at least 2 × 2) its forward pass goes
    through, the last module whose output has it, in execution order; then ``"head"``.

    Found by one forward pass of ``x[:1]`` with a hook on every module. A network that refuses
    hooks, or has no 4-D activations (a ViT's tokens), gets its penultimate features only.
    """
    seen: list[tuple[str, tuple[int, ...]]] = []
    handles = []
    try:
        for name, m in clf.module.named_modules():
            if name and not _per_position(m):
                handles.append(m.register_forward_hook(
                    lambda _m, _a, out, name=name: seen.append((name, tuple(out.shape[2:])))
                    if isinstance(out, torch.Tensor) and out.ndim == 4 else None))
        clf.logits(x[:1])
    except RuntimeError:
        seen = []
    finally:
        for h in handles:
            h.remove()
    last: dict[tuple[int, ...], tuple[int, str]] = {}  # resolution -> (when, module) of its last output
    for when, (name, size) in enumerate(seen):
        if min(size) >= 2:
            last[size] = (when, name)
    return [name for _, name in sorted(last.values())] + [HEAD]


def fit_domain(clf: Classifier, x: torch.Tensor, *, seed: int = 0, batch_size: int = 32,
               percentile: float = PERCENTILE) -> tuple[DomainStats, dict]:
    """Fit the detector on preprocessed in-domain inputs ``x``; returns the statistics and the card's
    ``domain`` entry (without the statistics file name, see :func:`save_domain`)."""
    from sklearn.covariance import LedoitWolf

    if len(x) < 20:
        raise ValueError(f"fitting the domain check needs at least 20 training slices, got {len(x)}")
    if feature_layer(clf.module) is None:
        raise ValueError(NO_HEAD.removeprefix("unknown: "))
    layers = stage_layers(clf, x)
    logits, feats = logits_and_layer_features(clf, x, layers, batch_size=batch_size)
    if feats is None:
        raise ValueError(NO_HEAD.removeprefix("unknown: "))
    pred = clf.predicted(logits).cpu().numpy()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    n_held = max(5, int(round(HELD_OUT * len(x))))
    held, fit = order[:n_held], order[n_held:]
    classes = sorted(set(pred[fit].tolist()))
    # a stage whose spatial mean is the head's input (a ResNet's last stage before its average
    # pool) would count the same evidence twice: dropped
    head = feats[-1]
    keep = [i for i, f in enumerate(feats[:-1]) if f.shape != head.shape or not torch.allclose(f, head, atol=1e-5)]
    layers, feats = [layers[i] for i in keep] + [HEAD], [feats[i] for i in keep] + [head]
    per_layer = []
    for layer_feats in feats:
        f = layer_feats.double().numpy()
        means = np.stack([f[fit][pred[fit] == c].mean(0) for c in classes])
        centred = f[fit] - means[np.searchsorted(classes, pred[fit])]
        lw = LedoitWolf(assume_centered=True).fit(centred)
        # rounded as stored (float32), so the threshold is that of the statistics a user loads
        st = LayerStats(means.astype(np.float32).astype(np.float64),
                        lw.precision_.astype(np.float32).astype(np.float64))
        scale = float(np.percentile(st.distance(torch.as_tensor(f[held])), SCALE_PERCENTILE))
        per_layer.append(LayerStats(st.means, st.precision, scale if scale > 0 else 1.0))
    stats = DomainStats(tuple(layers), tuple(per_layer), 0.0)
    held_scores = stats.score([f[held] for f in feats])
    threshold = float(np.percentile(held_scores, percentile))
    stats = DomainStats(stats.layers, stats.per_layer, threshold)
    name = feature_layer(clf.module)[0]  # type: ignore[index]
    entry = {"detector": DETECTOR, "reference": REFERENCE,
             "layers": [f"input of {name}" if n == HEAD else n for n in layers],
             "features": "each layer's output averaged over space; the input of the last Linear",
             "covariance": "Ledoit-Wolf, tied over classes, per layer", "classes": "the model's predicted class",
             "score": "max over layers of (min over classes of the squared Mahalanobis distance) / the layer's "
                      f"{SCALE_PERCENTILE:g}th percentile of held-out distances",
             "threshold": threshold, "percentile": percentile, "n_fit": int(len(fit)), "n_heldout": int(len(held)),
             "n_features": [int(f.shape[1]) for f in feats], "seed": int(seed)}
    return stats, entry


def stats_path_for(weights: str | Path) -> Path:
    """``<weights name>.domain.npz`` beside the weights."""
    from .card import card_path_for

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
