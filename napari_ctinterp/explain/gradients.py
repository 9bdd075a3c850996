"""One gradient pass of the engine, and summing its rows into the accumulators.

``input_gradients``: d(target score)/d(input) for a batch, one forward and one backward per
target class (the graph kept between them). ``layer_gradients``: the same pass with Grad-CAM's
layer captured, giving Backprop's input gradient and Grad-CAM (after and before its ReLU) at
once. Both run inside ``exact_kernels`` (deterministic full-fp32 cuDNN on CUDA). ``accumulate``
adds a batch's rows to their slots in plan order, deterministically on every device.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..model.classifier import Classifier
from .gradcam import LayerCapture, TargetLayer, gradcam_maps


def exact_kernels(device: torch.device) -> contextlib.AbstractContextManager:
    """On CUDA: deterministic cuDNN kernels in full fp32 (TF32 convolutions would change the
    gradients); nothing elsewhere. Every gradient pass of the engine runs inside it."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    return torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True, allow_tf32=False)


def layout(x: torch.Tensor) -> torch.memory_format:
    """The memory format the engine runs an input in: channels_last for (B, C, h, w) images,
    contiguous for (B, C, D, h, w) volumes (3D convolutions on CPU measured no faster in channels_last_3d)."""
    return torch.channels_last if x.ndim == 4 else torch.contiguous_format


def layer_gradients(clf: Classifier, x: torch.Tensor, target: Sequence[int] | torch.Tensor, layer: TargetLayer,
                    capture: LayerCapture, *, net: nn.Module, with_input: bool = True
                    ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """Backprop's input gradient (``with_input``, else None) and Grad-CAM (after and before its
    ReLU) from one forward and one backward per target: (T, B, C, h, w), (T, B, h, w),
    (T, B, h, w) — T = 1 for a tensor of one class per row. ``capture`` is hooked on ``layer``."""
    targets: list = [target] if isinstance(target, torch.Tensor) else list(target)
    size = tuple(x.shape[2:])
    with torch.enable_grad(), exact_kernels(x.device):
        xg = x.detach().contiguous(memory_format=layout(x)).requires_grad_(True)
        logits = net(xg)
        act = capture.take()
        bp, gc, gcs = [], [], []
        for i, t in enumerate(targets):
            rows = t.to(x.device) if isinstance(t, torch.Tensor) else torch.full((len(xg),), int(t), device=xg.device)
            score = clf.target_score(logits, rows)
            wrt = (act, xg) if with_input else (act,)
            grads = torch.autograd.grad(score.sum(), wrt, retain_graph=i < len(targets) - 1)
            pos, signed = gradcam_maps(act.detach(), grads[0], size, layer.transform)
            if with_input:
                bp.append(grads[1].float())
            gc.append(pos)
            gcs.append(signed)
    return (torch.stack(bp) if with_input else None), torch.stack(gc), torch.stack(gcs)


def accumulate(acc: torch.Tensor, slots: np.ndarray, contribution: torch.Tensor) -> None:
    """``acc[slots[i]] += contribution[i]``, deterministically (batches arrive in plan order).

    CPU: ``index_add_`` (a sequential loop). CUDA's ``index_add_`` adds with atomics in a varying
    order, so there each slot's rows are summed by a reduction instead.
    """
    if acc.device.type == "cpu":
        acc.index_add_(0, torch.as_tensor(slots), contribution)
    else:
        sum_by_slot(acc, slots, contribution)


def sum_by_slot(acc: torch.Tensor, slots: np.ndarray, contribution: torch.Tensor) -> None:
    """``acc[s] += sum of the rows of slot s``, one reduction per distinct slot (no atomics)."""
    for s in np.unique(slots):
        rows = torch.as_tensor(np.flatnonzero(slots == s), device=acc.device)
        acc[int(s)] += contribution[rows].sum(0)


def input_gradients(clf: Classifier, x: torch.Tensor, target: int | Sequence[int] | torch.Tensor, *,
                    net: nn.Module | None = None) -> torch.Tensor:
    """d(target score)/d(input) for a batch, parameters untouched (``net`` defaults to ``clf.module``).

    A sequence of T targets gives (T, B, C, h, w) from one forward pass (the graph is kept for
    the T backward passes); an int, or a tensor of one class per row, gives (B, C, h, w).
    """
    net = clf.module if net is None else net
    if isinstance(target, torch.Tensor):
        targets: list = [target.to(x.device)]
    else:
        targets = [int(target)] if np.isscalar(target) else [int(t) for t in target]  # type: ignore[union-attr]
    with torch.enable_grad(), exact_kernels(x.device):
        xg = x.detach().contiguous(memory_format=layout(x)).requires_grad_(True)
        logits = net(xg)
        grads = []
        for i, t in enumerate(targets):
            rows = t if isinstance(t, torch.Tensor) else torch.full((len(xg),), t, device=xg.device)
            score = clf.target_score(logits, rows)
            (grad,) = torch.autograd.grad(score.sum(), xg, retain_graph=i < len(targets) - 1)
            grads.append(grad.float())
    return grads[0] if isinstance(target, torch.Tensor) or np.isscalar(target) else torch.stack(grads)


#: Key (method part) under which the engine returns Grad-CAM's signed map before its ReLU (``api``
#: moves it into ``AttributionMaps.gc_signed``).
