"""Model-parameter randomisation test (Adebayo et al. 2018), cascading from the output down.

Weights are re-initialised cumulatively — the output layer first, then each deeper stage down to
``conv1`` — and each method's map of the same slice is compared with the map of the trained model
by Spearman rank correlation (absolute and signed maps) and SSIM. A method whose maps barely change
while the model is destroyed is not explaining the model.
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

from ..model.classifier import Classifier


@dataclass(frozen=True)
class SanityCurves:
    """Similarity to the original map after randomising each stage (cumulative), per method/variant.

    ``stages[0]`` is "original" (similarity 1); then the stage names in randomisation order.
    """

    stages: tuple[str, ...]
    spearman_abs: dict[tuple[str, str], np.ndarray]
    spearman_signed: dict[tuple[str, str], np.ndarray]
    ssim: dict[tuple[str, str], np.ndarray]


def resnet_stages(module: nn.Module) -> list[str]:
    """Top-level stages of a ResNet from the output down: fc, layer4 … layer1, conv1 (with bn1)."""
    names = [n for n, _ in module.named_children()]
    order = [n for n in ("fc", "layer4", "layer3", "layer2", "layer1", "conv1") if n in names]
    if not order:
        raise ValueError("cascading randomisation needs named stages (fc, layer4…layer1, conv1) as in "
                         "torchvision ResNets")
    return order


def model_stages(module: nn.Module) -> list[str]:
    """Stages to randomise from the output down, for any module tree.

    ResNets: their named stages (``resnet_stages``). Other networks: the top-level children in
    definition order (torchvision's is the forward order), each ``nn.Sequential`` among them
    (DenseNet's and EfficientNet's ``features``) opened one level, keeping those with parameters,
    reversed: head first, stem last.
    """
    names = [n for n, _ in module.named_children()]
    if "fc" in names and "layer4" in names:
        return resnet_stages(module)
    stages = []
    for name, child in module.named_children():
        parts = list(child.named_children()) if isinstance(child, nn.Sequential) else []
        for sub, m in (((f"{name}.{n}", c) for n, c in parts) if parts else [(name, child)]):
            if any(True for _ in m.parameters()):
                stages.append(sub)
    if not stages:
        raise ValueError("cascading randomisation found no layer with parameters in this model")
    return stages[::-1]


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


def cascading_randomisation(clf: Classifier, hu: np.ndarray, *, explain_fn: Callable[..., dict] | None = None,
                            methods: Sequence[str] = ("BP", "IGB", "D"), variants: Sequence[str] = ("plain",),
                            seed: int = 0, **explain_kwargs) -> SanityCurves:
    """Similarity curves of each map as stages are randomised cumulatively (output → input).

    ``explain_kwargs`` go to ``explain`` (``target=`` fixes the class; by default the trained
    model's answer, kept for every randomised model)."""
    from ..explain import explain

    explain_fn = explain_fn or explain
    if "EG" in methods and explain_kwargs.get("references") is None:
        from ..model.loading import DEMOS

        if clf.source in DEMOS:  # the randomised copies are no demo: they take the demo's references here
            from ..explain.api import demo_references

            explain_kwargs["references"] = demo_references()
    target = explain_kwargs.pop("target", None)  # None: the trained model's predicted class, kept after
    kw = dict(methods=tuple(methods), variants=tuple(variants), seed=seed, **explain_kwargs)
    original = explain_fn(clf, hu, **kw) if target is None else explain_fn(clf, hu, target=target, **kw)
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
        maps = explain_fn(rnd, hu, target=target, **kw)
        for k in keys:
            sims[k].append(_similarity(original[k], maps[k]))
    arr = {k: np.asarray(v) for k, v in sims.items()}
    return SanityCurves(stages=("original", *stages), spearman_abs={k: a[:, 0] for k, a in arr.items()},
                        spearman_signed={k: a[:, 1] for k, a in arr.items()}, ssim={k: a[:, 2] for k, a in arr.items()})
