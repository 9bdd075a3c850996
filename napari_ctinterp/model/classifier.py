"""``Classifier``: a CT classifier network, its card, and the one input space every step shares.

Preprocessing (``preprocess``), per input channel of the card: HU (the slice, or for a 2.5D
channel the slice ``slice_offset`` positions away, the volume's edge repeating its last slice) →
clip to the channel's window → scale to [0, 1] → optional normalisation ``(x − mean) / std`` →
resize to the card's input size (bilinear, antialiased; clipping first so that bone saturates
before it is averaged with its neighbours) → float32 (B, C, H, W), channels_last, on the model's
device. A version-1 card is one channel with its ``hu_window`` and no normalisation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .card import ModelCard
from .devices import is_out_of_memory
from .domain import HEAD, DomainCheck, DomainStats, checks, load_domain, logits_and_layer_features
from .inputs import check_image_size, hu_to_unit, resize_batch


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
    weights_path : str
        The weights file (where the card's domain statistics are found beside it), if any.
    """

    module: nn.Module
    card: ModelCard
    device: torch.device
    source: str = ""
    weights_path: str = ""

    def __post_init__(self) -> None:
        self.module.eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.module.to(self.device)
        if self.device.type != "mps" and not self.card.is_3d:
            self.module.to(memory_format=torch.channels_last)

    # -- input space ----------------------------------------------------------------------
    def preprocess(self, hu: np.ndarray, index: int | None = None, *,
                   spacing_mm: tuple[float, float, float] | None = None) -> torch.Tensor:
        """HU → the network's input (B, C, h, w) on the device.

        A slice (H, W) gives B = 1; a stack (Z, H, W) gives B = Z, or B = 1 with ``index``
        (that slice). A 2.5D card needs the volume: its neighbouring-slice channels are taken
        from it (a single slice is an error that says so). A 3D card takes the volume (Z, H, W)
        and gives (1, C, D, H, W) (``model.volume_input``; ``spacing_mm``: the CT's, needed when
        the card resamples to a spacing).
        """
        arr = np.asarray(hu)
        if self.card.is_3d:
            if index is not None:
                raise ValueError("a 3D model sees the whole volume: no slice index")
            from .volume_input import preprocess_volume

            x = preprocess_volume(arr, self.geometry(arr.shape, spacing_mm), self.card.windows, self.card.pad_hu)
            return self._normalise(x).to(self.device).contiguous()
        if spacing_mm is not None:
            raise ValueError("spacing_mm is for 3D models; a 2D model's slice is resized to its input size")
        if arr.ndim not in (2, 3):
            raise ValueError(f"expected a slice (H, W) or a stack (Z, H, W) in HU, got shape {arr.shape}")
        if arr.size == 0:
            raise ValueError("the image is empty")
        check_image_size(arr.shape[-2:], self.card.input_size)
        card = self.card
        if arr.ndim == 2:
            if card.is_2_5d:
                raise ValueError(f"this model is 2.5D (channels at slice offsets {card.slice_offsets}): give it the "
                                 f"volume (Z, H, W) and the slice index, not a single slice")
            if index not in (None, 0):
                raise ValueError(f"index {index} given with a single slice")
            stack, rows = arr[None], np.zeros(1, dtype=int)
        else:
            stack = arr
            rows = np.arange(len(arr)) if index is None else np.array([int(index)])
            if index is not None and not 0 <= int(index) < len(arr):
                raise IndexError(f"slice index {index} out of range for a volume of {len(arr)} slices")
        # only the slices this input is made of must be finite (a NaN slice elsewhere in the volume is not read)
        used = np.unique(np.concatenate([np.clip(rows + off, 0, len(stack) - 1) for off in card.slice_offsets]))
        bad = ~np.isfinite(stack[used]) if len(used) < len(stack) else ~np.isfinite(stack)
        if bad.any():
            raise ValueError(f"the image has {int(bad.sum())} NaN/inf pixels: fill or crop them before classifying")
        if len(card.windows) == 1 and not card.is_2_5d and card.normalize is None:  # v1: one window
            x = hu_to_unit(stack[rows], card.windows[0])[:, None]
        else:
            chans = []
            for window, off in zip(card.windows, card.slice_offsets):
                src = np.clip(rows + off, 0, len(stack) - 1)
                chans.append(hu_to_unit(stack[src], window))
            x = self._normalise(torch.stack(chans, dim=1))
        x = resize_batch(x, card.input_size)
        return x.to(self.device).contiguous(memory_format=torch.channels_last)

    def geometry(self, shape: tuple[int, ...], spacing_mm: tuple[float, float, float] | None = None):
        """3D models: where a CT of ``shape`` (Z, H, W) and ``spacing_mm`` goes in the input
        (``model.volume_input.VolumeGeometry``: ``to_ct`` brings maps back onto the CT's grid)."""
        from .volume_input import volume_geometry

        if not self.card.is_3d:
            raise ValueError("geometry is for 3D models (the card's spatial_dims 3)")
        return volume_geometry(shape, self.card.input_size, self.card.spacing_mm, spacing_mm)

    @property
    def spatial_dims(self) -> int:
        """2 (a slice) or 3 (the whole volume)."""
        return self.card.spatial_dims

    def baseline(self, level: float) -> torch.Tensor:
        """(1, C, 1, 1) — (1, C, 1, 1, 1) for a 3D model: every channel at ``level`` of its window
        (0 = black, 1 = white), normalised as ``preprocess`` would — what a uniform −∞ / +∞ HU image
        becomes. IG's baselines."""
        shape = (1, self.card.in_channels) + (1,) * self.card.spatial_dims
        return self._normalise(torch.full(shape, float(level))).to(self.device)

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        """The card's ``(x − mean) / std`` per channel of a (B, C, ...) unit-range tensor (or x)."""
        norm = self.card.normalize
        if norm is None:
            return x
        shape = (1, -1) + (1,) * (x.ndim - 2)
        mean = torch.tensor(norm["mean"], dtype=torch.float32).view(shape)
        std = torch.tensor(norm["std"], dtype=torch.float32).view(shape)
        return (x - mean) / std

    # -- outputs --------------------------------------------------------------------------
    @property
    def class_names(self) -> tuple[str, ...]:
        """The card's class names (index = class)."""
        return self.card.class_names

    @property
    def binary(self) -> bool:
        """Two classes, one answer (sigmoid or two-class softmax)."""
        return self.card.n_classes == 2 and self.card.kind != "multilabel"

    def logits(self, x: torch.Tensor, *, batch_size: int = 32) -> torch.Tensor:
        """Logits of preprocessed inputs, in batches (halved on out-of-memory), no gradient."""
        outs = [o for o in self._batched(x, batch_size, self._forward_nograd)]
        return torch.cat(outs) if outs else torch.empty(0, self.n_logits)

    def proba(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, N) class probabilities: sigmoid → [1 − p, p]; softmax; multilabel: one sigmoid per class."""
        kind = self.card.kind
        if kind == "sigmoid":
            p = torch.sigmoid(logits[:, 0])
            return torch.stack([1 - p, p], dim=1)
        if kind == "softmax":
            return torch.softmax(logits, dim=1)
        return torch.sigmoid(logits)

    def probability(self, logits: torch.Tensor) -> torch.Tensor:
        """Binary models: P(positive class) (v1: P(contrast)) from logits."""
        if not self.binary:
            raise ValueError(f"this model has {self.card.n_classes} classes {list(self.class_names)}: use "
                             f"predict_proba (one probability per class)")
        if self.card.kind == "sigmoid":
            p = torch.sigmoid(logits[:, 0])
            return p if self.card.positive_index == 1 else 1 - p
        return torch.softmax(logits, dim=1)[:, self.card.positive_index]

    def predicted(self, logits: torch.Tensor) -> torch.Tensor:
        """(B,) predicted class indices (binary: P(positive) ≥ 0.5; else the most probable class)."""
        if self.binary:
            pos = self.card.positive_index
            return torch.where(self.probability(logits) >= 0.5, pos, 1 - pos)
        return self.proba(logits).argmax(dim=1)

    def predict(self, hu: np.ndarray, *, batch_size: int = 32, index: int | None = None,
                spacing_mm: tuple[float, float, float] | None = None) -> float | np.ndarray:
        """Binary models: P(positive class): a float for a slice (or ``index``, or a 3D model's
        volume), an array for a stack."""
        arr = np.asarray(hu)
        x = self.preprocess(arr, index, spacing_mm=spacing_mm)
        p = self.probability(self.logits(x, batch_size=batch_size)).cpu().numpy()
        return float(p[0]) if arr.ndim == 2 or index is not None or self.card.is_3d else p.astype(np.float64)

    def predict_proba(self, hu: np.ndarray, *, batch_size: int = 32, index: int | None = None,
                      spacing_mm: tuple[float, float, float] | None = None) -> np.ndarray:
        """Class probabilities (scikit-learn's convention): (N,) for a slice (or ``index``, or a 3D
        model's whole volume), (Z, N) for a stack of slices."""
        arr = np.asarray(hu)
        p = self.proba(self.logits(self.preprocess(arr, index, spacing_mm=spacing_mm), batch_size=batch_size))
        p = p.cpu().numpy()
        return p[0].astype(np.float64) if arr.ndim == 2 or index is not None or self.card.is_3d \
            else p.astype(np.float64)

    def target_score(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Score whose gradient is explained: the logit of class ``target`` (per row).

        One-logit models: z for the class the logit stands for (class 1), −z for the other, so a
        positive attribution always means evidence *for* the target. Softmax and multilabel: the
        target's logit (Captum's usual choice).
        """
        if self.card.kind == "sigmoid":
            z = logits[:, 0]
            return torch.where(target.to(z.device) == 1, z, -z)
        return logits.gather(1, target.to(logits.device).long().view(-1, 1))[:, 0]

    @property
    def n_logits(self) -> int:
        """Logits of the head: 1 for a sigmoid model, N otherwise."""
        return self.card.n_logits

    # -- out of domain ----------------------------------------------------------------------
    def logits_and_domain(self, x: torch.Tensor, *, batch_size: int = 32
                          ) -> tuple[torch.Tensor, list[DomainCheck]]:
        """Logits of preprocessed inputs and one ``DomainCheck`` per row, from the same forward pass
        (the penultimate features are taken on the way; see ``model.domain``)."""
        stats, reason = self.domain_stats()
        logits, feats = logits_and_layer_features(self, x, stats.layers if stats is not None else (HEAD,),
                                                  batch_size=batch_size)
        return logits, checks(stats, reason, feats, len(logits))

    def domain_check(self, hu: np.ndarray, *, index: int | None = None, batch_size: int = 32,
                     spacing_mm: tuple[float, float, float] | None = None):
        """How far a slice (or ``index`` of a volume) lies from the training data: a
        ``DomainCheck``; a volume (Z, H, W) gives one per slice (one for a 3D model's volume).
        Without statistics in the card the answer is "unknown" (``in_domain`` None), never "in domain"."""
        arr = np.asarray(hu)
        _, found = self.logits_and_domain(self.preprocess(arr, index, spacing_mm=spacing_mm), batch_size=batch_size)
        return found[0] if arr.ndim == 2 or index is not None or self.card.is_3d else found

    def domain_checks(self, hu: np.ndarray, indices: Sequence[int], *, batch_size: int = 32) -> list:
        """One ``DomainCheck`` per slice ``indices`` of a volume (Z, H, W), preprocessed and pushed
        through the network ``batch_size`` slices at a time (a 2.5D model: each with its neighbours)."""
        arr = np.asarray(hu)
        found: list = []
        for start in range(0, len(indices), max(1, int(batch_size))):
            chunk = [int(i) for i in indices[start:start + max(1, int(batch_size))]]
            if self.card.is_2_5d:
                x = torch.cat([self.preprocess(arr, index=i) for i in chunk])
            else:
                x = self.preprocess(arr[chunk])
            found.extend(self.logits_and_domain(x, batch_size=batch_size)[1])
        return found

    def proba_and_domain(self, hu: np.ndarray, *, index: int | None = None,
                         batch_size: int = 32) -> tuple[np.ndarray, list]:
        """(B, N) class probabilities and one ``DomainCheck`` per slice, from one forward pass."""
        logits, found = self.logits_and_domain(self.preprocess(np.asarray(hu), index), batch_size=batch_size)
        return self.proba(logits).cpu().numpy().astype(np.float64), found

    def domain_stats(self) -> tuple[DomainStats | None, str]:
        """The card's domain statistics (loaded once) and, when there are none, why."""
        if not hasattr(self, "_domain"):
            self._domain = load_domain(self.card.domain, self.weights_path or None)
        return self._domain

    # -- defaults ---------------------------------------------------------------------------
    def default_references(self) -> tuple[np.ndarray, str] | None:
        """EG's reference slices when none are given, and their description; None when the caller
        must give some (see ``model.demos.default_references``)."""
        from .demos import default_references

        return default_references(self)

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
