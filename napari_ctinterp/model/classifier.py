"""``Classifier``: a CT-contrast network, its card, and the one input space every step shares.

Preprocessing (``preprocess``): HU → clip to the card's window → scale to [0, 1] → resize to the
card's input size (bilinear, antialiased; clipping first so that bone saturates before it is
averaged with its neighbours) → float32 (B, 1, H, W), channels_last, on the model's device.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .card import ModelCard
from .devices import is_out_of_memory


def hu_to_unit(hu: np.ndarray | torch.Tensor, window: tuple[float, float]) -> torch.Tensor:
    """Clip HU to ``window`` and scale to [0, 1] (float32 tensor, same shape)."""
    t = torch.as_tensor(np.asarray(hu, dtype=np.float32) if not isinstance(hu, torch.Tensor) else hu,
                        dtype=torch.float32)
    lo, hi = window
    return ((t.clamp(lo, hi) - lo) / (hi - lo)).float()


def resize_batch(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize (B, C, H, W) to ``size`` (bilinear, antialiased when shrinking)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


@dataclass(eq=False)
class Classifier:
    """A loaded CT classifier.

    Attributes
    ----------
    module : torch.nn.Module
        The network in eval mode, parameters frozen; logits (B, 1) or (B, 2).
    card : ModelCard
        Its model card.
    device : torch.device
        Where it runs.
    source : str
        What it was loaded from ("demo", a path).
    """

    module: nn.Module
    card: ModelCard
    device: torch.device
    source: str = ""

    def __post_init__(self) -> None:
        self.module.eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.module.to(self.device)
        if self.device.type != "mps":
            self.module.to(memory_format=torch.channels_last)

    # -- input space ----------------------------------------------------------------------
    def preprocess(self, hu: np.ndarray) -> torch.Tensor:
        """HU slice (H, W) or stack (Z, H, W) → float32 (1|Z, 1, h, w) in [0, 1] on the device."""
        arr = np.asarray(hu)
        if arr.ndim not in (2, 3):
            raise ValueError(f"expected a slice (H, W) or a stack (Z, H, W) in HU, got shape {arr.shape}")
        if arr.size == 0:
            raise ValueError("the image is empty")
        if not np.isfinite(arr).all():
            n = int((~np.isfinite(arr)).sum())
            raise ValueError(f"the image has {n} NaN/inf pixels: fill or crop them before classifying")
        x = hu_to_unit(arr, self.card.hu_window)
        x = x[None, None] if arr.ndim == 2 else x[:, None]
        x = resize_batch(x, self.card.input_size)
        return x.to(self.device).contiguous(memory_format=torch.channels_last)

    # -- outputs --------------------------------------------------------------------------
    def logits(self, x: torch.Tensor, *, batch_size: int = 32) -> torch.Tensor:
        """Logits of preprocessed inputs, in batches (halved on out-of-memory), no gradient."""
        outs = [o for o in self._batched(x, batch_size, self._forward_nograd)]
        return torch.cat(outs) if outs else torch.empty(0, self.n_logits)

    def probability(self, logits: torch.Tensor) -> torch.Tensor:
        """P(contrast) from logits (sigmoid of one logit, softmax index 1 of two)."""
        if self.card.output == "logit":
            return torch.sigmoid(logits[:, 0])
        return torch.softmax(logits, dim=1)[:, 1]

    def predict(self, hu: np.ndarray, *, batch_size: int = 32) -> float | np.ndarray:
        """P(contrast): a float for a slice (H, W), an array for a stack (Z, H, W)."""
        arr = np.asarray(hu)
        p = self.probability(self.logits(self.preprocess(arr), batch_size=batch_size)).cpu().numpy()
        return float(p[0]) if arr.ndim == 2 else p.astype(np.float64)

    def target_score(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Score whose gradient is explained: the logit of ``target`` (0/1 per row).

        Single logit z: z for class 1 (contrast), −z for class 0, so a positive attribution
        always means evidence *for* that class. Two logits: the target's logit.
        """
        if self.card.output == "logit":
            z = logits[:, 0]
            return torch.where(target.to(z.device) == 1, z, -z)
        return logits.gather(1, target.to(logits.device).long().view(-1, 1))[:, 0]

    @property
    def n_logits(self) -> int:
        """1 for a single-logit model, 2 for two-class softmax."""
        return 1 if self.card.output == "logit" else 2

    # -- helpers --------------------------------------------------------------------------
    def _forward_nograd(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.module(x).float()

    def _batched(self, x: torch.Tensor, batch_size: int,
                 fn: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[torch.Tensor]:
        """Apply ``fn`` over ``x`` in batches; on out-of-memory halve the batch and retry."""
        i, bs = 0, max(1, int(batch_size))
        while i < len(x):
            try:
                yield fn(x[i : i + bs])
                i += bs
            except RuntimeError as e:  # torch.cuda.OutOfMemoryError is a RuntimeError
                if not is_out_of_memory(e) or bs == 1:
                    raise
                bs //= 2
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
