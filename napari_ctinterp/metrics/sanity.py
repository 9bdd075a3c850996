"""Model-parameter randomisation test (Adebayo et al. 2018), cascading from the output down.

Weights are re-initialised cumulatively — the output layer first, then each deeper stage down to
``conv1``, in the order of the network's family (``model.families.model_stages``) — and each
method's map of the same slice is compared with the map of the trained model by Spearman rank
correlation (absolute and signed maps) and SSIM. A method whose maps barely change while the model
is destroyed is not explaining the model.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity
from torch import nn

from ..explain import ExplainOptions
from ..model.classifier import Classifier
from ..model.demos import default_references
from ..model.families import model_stages


@dataclass(frozen=True)
class SanityCurves:
    """Similarity to the original map after randomising each stage (cumulative), per method/variant.

    ``stages[0]`` is "original" (similarity 1); then the stage names in randomisation order.
    """

    stages: tuple[str, ...]
    spearman_abs: dict[tuple[str, str], np.ndarray]
    spearman_signed: dict[tuple[str, str], np.ndarray]
    ssim: dict[tuple[str, str], np.ndarray]


def _randomise(module: nn.Module, stage: str, gen: torch.Generator) -> None:
    targets = [module.get_submodule(stage)] + ([module.bn1] if stage == "conv1" and hasattr(module, "bn1") else [])
    for t in targets:
        for m in t.modules():
            for name, p in list(m.named_parameters(recurse=False)):
                with torch.no_grad():
                    if p.dim() > 1:
                        fan_in = p[0].numel()
                        p.copy_(torch.randn(p.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
                    else:
                        p.copy_(torch.randn(p.shape, generator=gen) * 0.1 + (1.0 if "weight" in name else 0.0))


def _similarity(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    sa = spearmanr(np.abs(a).ravel(), np.abs(b).ravel()).statistic
    ss = spearmanr(a.ravel(), b.ravel()).statistic
    na, nb = np.abs(a) / (np.abs(a).max() or 1), np.abs(b) / (np.abs(b).max() or 1)
    ssim = structural_similarity(na, nb, data_range=1.0)
    return float(np.nan_to_num(sa)), float(np.nan_to_num(ss)), float(ssim)


#: The sanity check's default maps: plain BP, IGB and D.
SANITY_OPTIONS = ExplainOptions(methods=("BP", "IGB", "D"), variants=("plain",))


def cascading_randomisation(
    clf: Classifier,
    hu: np.ndarray,
    options: ExplainOptions | None = None,
    *,
    methods: Sequence[str] | None = None,
    variants: Sequence[str] | None = None,
    steps: int | None = None,
    samples: int | None = None,
    sg_samples: int | None = None,
    sg_level: float | None = None,
    seed: int | None = None,
    ig_method: str | None = None,
    gc_layer: str | None = None,
    occ_window: int | None = None,
    occ_stride: int | None = None,
    occ_fill: str | None = None,
    references: np.ndarray | None = None,
    target: int | str | None = None,
    index: int | None = None,
    batch_size: int | None = None,
    explain_fn: Callable[..., dict] | None = None,
) -> SanityCurves:
    """Similarity curves of each map as stages are randomised cumulatively (output → input).

    Parameters
    ----------
    clf : Classifier
        The trained model; it is copied, never changed.
    hu : numpy.ndarray
        The slice (H, W) in HU (or a volume with ``index``, for 2.5D models).
    options : ExplainOptions, optional
        The maps compared (default ``SANITY_OPTIONS``: plain BP, IGB, D); the seed also fixes the
        random weights.
    methods, variants, steps, samples, sg_samples, sg_level, seed, ig_method, gc_layer, occ_window, \
occ_stride, occ_fill
        Overrides of the same-named fields of ``options``.
    references, index, batch_size
        As in ``explain.explain`` (EG: the model's default set when None, also for the
        randomised copies, which are no demo).
    target : int or str, optional
        The class explained; default the trained model's answer, kept for every randomised model.
    explain_fn : callable, optional
        ``explain_fn(clf, hu, options, **keywords)`` instead of ``explain.explain``.
    """
    from ..explain import explain

    explain_fn = explain_fn or explain
    given = locals()
    opts = (options or SANITY_OPTIONS).updated(**{name: given[name] for name in ExplainOptions.names()})
    seed = opts.seed
    if "EG" in opts.methods and references is None:
        found = default_references(clf)  # the randomised copies are no demo: they take the demo's references here
        if found is not None:
            references = found[0]
    kw = dict(references=references, index=index, batch_size=batch_size)
    original = explain_fn(clf, hu, opts, target=target, **kw)
    if target is None and hasattr(original, "params"):
        target = original.params["target"]
    net = copy.deepcopy(clf.module).cpu()
    stages = model_stages(net)
    gen = torch.Generator().manual_seed(int(seed))
    keys = list(original.keys())
    sims = {k: [(1.0, 1.0, 1.0)] for k in keys}
    for stage in stages:
        _randomise(net, stage, gen)
        rnd = Classifier(copy.deepcopy(net), clf.card, clf.device, source=f"{clf.source} (randomised to {stage})")
        maps = explain_fn(rnd, hu, opts, target=target, **kw)
        for k in keys:
            sims[k].append(_similarity(original[k], maps[k]))
    arr = {k: np.asarray(v) for k, v in sims.items()}
    return SanityCurves(stages=("original", *stages), spearman_abs={k: a[:, 0] for k, a in arr.items()},
                        spearman_signed={k: a[:, 1] for k, a in arr.items()}, ssim={k: a[:, 2] for k, a in arr.items()})
