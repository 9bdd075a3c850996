"""Fitting the out-of-domain check (``ctinterp fit-domain``): the statistics of ``model.domain``.

``fit_domain`` finds the network's stages (``stage_layers``), takes their features of in-domain
training slices in one forward pass, and fits per layer class means and a Ledoit–Wolf tied
covariance (the method and its reference: ``model.domain``). ``phantom_inputs`` / ``folder_inputs``
bring the training slices to the model's input space; ``fit_and_save`` writes the statistics beside
the weights and the card's ``domain`` entry.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..progress import Progress, report
from .card import card_path_for
from .classifier import Classifier
from .domain import (
    DETECTOR,
    HEAD,
    HELD_OUT,
    NO_HEAD,
    PERCENTILE,
    REFERENCE,
    SCALE_PERCENTILE,
    DomainStats,
    LayerStats,
    feature_layer,
    logits_and_layer_features,
    save_domain,
)
from .training import normalise


def _per_position(m: nn.Module) -> bool:
    """Modules that act per position (and may see channels-last tensors, as in ConvNeXt blocks,
    whose 4-D shape is then not (B, C, H, W)): never a stage's output."""
    return (isinstance(m, nn.Linear | nn.LayerNorm | nn.Dropout | nn.Identity)
            or type(m).__module__ == "torch.nn.modules.activation" or type(m).__name__ == "Permute")


def stage_layers(clf: Classifier, x: torch.Tensor) -> list[str]:
    """The network's stages: for every spatial resolution (at least 2 × 2) its forward pass goes
    through, the last module whose output has it, in execution order; then ``"head"``.

    Found by one forward pass of ``x[:1]`` with a hook on every module. A network that refuses
    hooks, or has no activations of the input's rank (4-D, or 5-D for a 3D model; a ViT's tokens
    are not), gets its penultimate features only.
    """
    seen: list[tuple[str, tuple[int, ...]]] = []
    handles = []
    try:
        for name, m in clf.module.named_modules():
            if name and not _per_position(m):
                handles.append(m.register_forward_hook(
                    lambda _m, _a, out, name=name: seen.append((name, tuple(out.shape[2:])))
                    if isinstance(out, torch.Tensor) and out.ndim == x.ndim else None))
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
               percentile: float = PERCENTILE, progress: Progress | None = None) -> tuple[DomainStats, dict]:
    """Fit the detector on preprocessed in-domain inputs ``x``; returns the statistics and the card's
    ``domain`` entry (without the statistics file name, see ``domain.save_domain``).

    ``progress(done, total, "domain")`` counts the layers fitted (0 once their features are
    taken); returning False cancels (``progress.Cancelled``).
    """
    from sklearn.covariance import LedoitWolf

    if len(x) < 20:
        what = "volumes" if x.ndim == 5 else "slices"
        raise ValueError(f"fitting the domain check needs at least 20 training {what}, got {len(x)}")
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
    report(progress, 0, len(feats), "domain")
    per_layer = []
    for i, layer_feats in enumerate(feats):
        f = layer_feats.double().numpy()
        means = np.stack([f[fit][pred[fit] == c].mean(0) for c in classes])
        centred = f[fit] - means[np.searchsorted(classes, pred[fit])]
        lw = LedoitWolf(assume_centered=True).fit(centred)
        # rounded as stored (float32), so the threshold is that of the statistics a user loads
        st = LayerStats(means.astype(np.float32).astype(np.float64),
                        lw.precision_.astype(np.float32).astype(np.float64))
        scale = float(np.percentile(st.distance(torch.as_tensor(f[held])), SCALE_PERCENTILE))
        per_layer.append(LayerStats(st.means, st.precision, scale if scale > 0 else 1.0))
        report(progress, i + 1, len(feats), "domain")
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


def phantom_inputs(clf: Classifier, n: int, *, seed: int = 0, workers: int = 1,
                   progress: Progress | None = None) -> torch.Tensor:
    """``n`` phantom slices from the training seed range (both classes, every phase, random levels),
    in the model's input space: the demo models' training data (the task the card says it was trained
    on: with the planted markers for the shortcut demo). ``progress(done, total, "phantom")``
    counts the slices made."""
    from .datasets import TASK_CLASSES, phantom_set, phantom_spec, task_of  # the phantom: imported when used

    trained = (clf.card.training or {}).get("task")  # the shortcut demo trained on "marker": slices with markers
    task = trained if trained in TASK_CLASSES else task_of(clf.card.class_names)
    data = phantom_set(phantom_spec("train", n, seed + 4242, task=task), list(clf.card.windows), clf.card.input_size,
                       workers=workers, task=task, progress=progress)
    return normalise(data.x, clf.card.normalize).to(clf.device)


def folder_inputs(clf: Classifier, folder: str | Path) -> torch.Tensor:
    """Every slice of every DICOM series under ``folder`` (and ``.npy`` HU volumes / slices), in the
    model's input space; a 2.5D model takes each slice with its neighbours from its series; a 3D
    model takes each series (or ``.npy`` volume) whole, a DICOM series at its own spacing."""
    from ..io import CTReadError, CTReadWarning, read_ct
    from ..io.dicom_files import collect_paths, group_series, read_headers

    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder: give a folder of the model's training slices (DICOM)")
    volumes = [np.load(p) for p in sorted(root.rglob("*.npy"))]
    spacings: list = [None] * len(volumes)
    others = [p for p in collect_paths(root)[0] if p.suffix != ".npy"]
    if others:
        headers, _ = read_headers(others, "folder", root)
        for group in group_series(headers):
            if not group.is_image:
                continue
            try:
                ct = read_ct([h.path for h in group.headers])
                volumes.append(ct.hu)
                spacings.append(tuple(ct.spacing_mm))
            except CTReadError as exc:  # a PET or dose series beside the CT: not training data
                warnings.warn(f"skipped series {group.uid or '(no UID)'} under {root}: {exc}", CTReadWarning,
                              stacklevel=2)
    if not volumes:
        raise ValueError(f"no DICOM series or .npy slices found under {root}")
    xs = []
    for vol, spacing in zip(volumes, spacings):
        vol = vol[None] if vol.ndim == 2 else vol
        if clf.card.is_3d:
            xs.append(clf.preprocess(vol, spacing_mm=spacing if clf.card.spacing_mm is not None else None))
        elif clf.card.is_2_5d:
            xs.extend(clf.preprocess(vol, index=k) for k in range(len(vol)))
        else:
            xs.append(clf.preprocess(vol))
    return torch.cat(xs)


def fit_and_save(clf: Classifier, x: torch.Tensor, *, seed: int = 0, source: str = "",
                 progress: Progress | None = None) -> dict:
    """Fit on ``x``, write the statistics beside the model's weights and its card's ``domain``
    entry; returns the entry. ``progress`` as in :func:`fit_domain`."""
    if not clf.weights_path:
        raise ValueError("the model was not loaded from a file: there is no card to write the statistics to")
    stats, entry = fit_domain(clf, x, seed=seed, progress=progress)
    entry = save_domain(stats, {**entry, "data": source}, clf.weights_path)
    card_file = card_path_for(clf.weights_path)
    replace(clf.card, domain=entry).save(card_file)
    return entry
