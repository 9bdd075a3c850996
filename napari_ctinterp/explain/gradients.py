"""One gradient pass of the engine, and summing its rows into the accumulators.

``input_gradients``: d(target score)/d(input) for a batch, one forward and one backward per
target class (the graph kept between them). ``layer_gradients``: the same pass with Grad-CAM's
layer captured, giving Backprop's input gradient, Grad-CAM (after and before its ReLU) and, when
asked, Grad-CAM++ at once. Both run inside ``exact_kernels`` (deterministic full-fp32 cuDNN on CUDA). ``accumulate``
adds a batch's rows to their slots in plan order, deterministically on every device.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..model.classifier import Classifier
from .gradcam import LayerCapture, TargetLayer, gradcam_maps, gradcam_pp_map


def exact_kernels(device: torch.device) -> contextlib.AbstractContextManager:
    """On CUDA: deterministic cuDNN kernels in full fp32 (TF32 convolutions would change the
    gradients); nothing elsewhere. Every gradient pass of the engine runs inside it."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    return torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True, allow_tf32=False)


class Predicted:
    """A target that is the class the model predicts for the clean input, read from a forward the
    engine runs anyway: row ``row`` of the first batch that holds the clean input itself (a
    Backprop, Deconvnet, guided or Grad-CAM row: their point is the input), so ``explain`` needs no
    forward of its own for it (as MONAI's Grad-CAM takes its class from its one forward).
    ``value`` is None until that batch's forward has run; ``resolve`` sets it directly (a forward
    of its own) where no such row exists."""

    def __init__(self) -> None:
        self.row: int | None = None
        self.value: int | None = None

    def see(self, clf: Classifier, logits: torch.Tensor) -> None:
        """Take the class from the logits of a batch that holds the clean input at ``row``."""
        if self.value is None and self.row is not None:
            self.value = int(clf.predicted(logits[self.row:self.row + 1].detach())[0])

    def resolve(self, clf: Classifier, x: torch.Tensor) -> int:
        """The class, from a forward of the clean input ``x`` (1, C, …) if no batch gave it."""
        if self.value is None:
            self.value = int(clf.predicted(clf.logits(x))[0])
        return self.value

    def __int__(self) -> int:
        if self.value is None:
            raise RuntimeError("the predicted class is read from the first batch holding the clean input; "
                               "none has run yet")
        return self.value


def _rows(t: object, logits: torch.Tensor, clf: Classifier) -> torch.Tensor:
    """A batch's target classes, one per row, once its forward has given ``logits``."""
    if isinstance(t, Predicted):
        t.see(clf, logits)
    if isinstance(t, torch.Tensor):
        return t.to(logits.device)
    return torch.full((len(logits),), int(t), device=logits.device)  # type: ignore[call-overload]


def layout(x: torch.Tensor) -> torch.memory_format:
    """The memory format the engine runs an input in: channels_last for (B, C, h, w) images,
    contiguous for (B, C, D, h, w) volumes (3D convolutions on CPU measured no faster in channels_last_3d)."""
    return torch.channels_last if x.ndim == 4 else torch.contiguous_format


def layer_gradients(clf: Classifier, x: torch.Tensor, target: Sequence[int | Predicted] | torch.Tensor,
                    layer: TargetLayer, capture: LayerCapture, *, net: nn.Module, with_input: bool = True,
                    seen: Predicted | None = None, plus_plus: bool = False
                    ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Backprop's input gradient (``with_input``, else None), Grad-CAM (after and before its
    ReLU) and Grad-CAM++ (``plus_plus``, else None) from one forward and one backward per target:
    (T, B, C, h, w), (T, B, h, w), (T, B, h, w), (T, B, h, w) — T = 1 for a tensor of one class
    per row. ``capture`` is hooked on ``layer``; ``seen`` reads the predicted class from this
    forward (see ``Predicted``)."""
    targets: list = [target] if isinstance(target, torch.Tensor) else list(target)
    size = tuple(x.shape[2:])
    with torch.enable_grad(), exact_kernels(x.device):
        xg = x.detach().contiguous(memory_format=layout(x)).requires_grad_(True)
        logits = net(xg)
        if seen is not None:
            seen.see(clf, logits)
        act = capture.take()
        bp, gc, gcs, pp = [], [], [], []
        for i, t in enumerate(targets):
            score = clf.target_score(logits, _rows(t, logits, clf))
            wrt = (act, xg) if with_input else (act,)
            grads = torch.autograd.grad(score.sum(), wrt, retain_graph=i < len(targets) - 1)
            pos, signed = gradcam_maps(act.detach(), grads[0], size, layer.transform)
            if with_input:
                bp.append(grads[1].float())
            gc.append(pos)
            gcs.append(signed)
            if plus_plus:
                pp.append(gradcam_pp_map(act.detach(), grads[0], size, layer.transform))
    return (torch.stack(bp) if with_input else None), torch.stack(gc), torch.stack(gcs), \
        (torch.stack(pp) if plus_plus else None)


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


Target = int | Predicted | Sequence[int | Predicted] | torch.Tensor


def input_gradients(clf: Classifier, x: torch.Tensor, target: Target, *, net: nn.Module | None = None,
                    seen: Predicted | None = None) -> torch.Tensor:
    """d(target score)/d(input) for a batch, parameters untouched (``net`` defaults to ``clf.module``).

    A sequence of T targets gives (T, B, C, h, w) from one forward pass (the graph is kept for
    the T backward passes); an int, a tensor of one class per row, or a ``Predicted`` gives (B, C, h, w).
    ``seen`` reads the predicted class from this forward (see ``Predicted``).
    """
    net = clf.module if net is None else net
    one = isinstance(target, (torch.Tensor, Predicted)) or np.isscalar(target)
    targets: list = [target] if one else list(target)  # type: ignore[arg-type]
    with torch.enable_grad(), exact_kernels(x.device):
        xg = x.detach().contiguous(memory_format=layout(x)).requires_grad_(True)
        logits = net(xg)
        if seen is not None:
            seen.see(clf, logits)
        grads = []
        for i, t in enumerate(targets):
            score = clf.target_score(logits, _rows(t, logits, clf))
            (grad,) = torch.autograd.grad(score.sum(), xg, retain_graph=i < len(targets) - 1)
            grads.append(grad.float())
    return grads[0] if one else torch.stack(grads)


#: Key (method part) under which the engine returns Grad-CAM's signed map before its ReLU (``api``
#: moves it into ``AttributionMaps.gc_signed``).
