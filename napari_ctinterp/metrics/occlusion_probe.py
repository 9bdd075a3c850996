"""Occlusion probe: the model's class probabilities for a slice with a chosen region occluded.

A person paints a region; the region is replaced by a fill value in the model's input space and
the class probabilities are compared with the unoccluded slice. It tests what an attribution map
claims: occluding the regions a map calls decisive should move the prediction, occluding the rest
should not. The fills are the fidelity protocol's (``metrics.fidelity``): ``label`` (0 = black for
a slice the model calls contrast, 1 = white for no contrast), ``mean`` (the slice's mean),
``blur`` (the slice, Gaussian-blurred) and ``road`` (noisy linear imputation from the neighbours).

``Prober`` keeps one slice's preprocessed input, fill and unoccluded probabilities, so that each
new region costs one forward pass; ``probe_occlusion`` is the one-shot form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..model.classifier import Classifier
from .fidelity import Fill, fill_images
from .road import road_impute

FILLS: tuple[str, ...] = ("label", "mean", "blur", "road")

#: One line per fill, for tooltips and reports.
FILL_HELP: dict[str, str] = {
    "label": "black (0) if the model says class 1 (contrast), white (1) otherwise — the paper's fill",
    "mean": "the slice's mean intensity (class-neutral)",
    "blur": "the slice Gaussian-blurred (σ = 5 px at the model's input size): keeps the coarse intensity",
    "road": "ROAD noisy linear imputation from the surrounding pixels (class-neutral)",
}


@dataclass(frozen=True)
class OcclusionProbe:
    """Class probabilities of one slice without and with a region occluded.

    Attributes
    ----------
    class_names : tuple of str
        Names of the model's classes (index = class).
    baseline : tuple of float
        Probability of every class for the unoccluded slice.
    occluded : tuple of float
        Probability of every class with the region replaced by the fill.
    fill : str
        The fill used (``label``, ``mean``, ``blur`` or ``road``).
    label : int
        The class whose ``label`` fill is used (the predicted class unless given).
    fraction : float
        Fraction of the model's input pixels replaced, in [0, 1] (0: nothing occluded and
        ``occluded == baseline`` exactly).
    seed : int
        Seed of the ROAD noise.
    model : str
        First 12 hex digits of the model card's weights hash.
    slice_index : int or None
        Index of the slice in its volume, when known.
    """

    class_names: tuple[str, ...]
    baseline: tuple[float, ...]
    occluded: tuple[float, ...]
    fill: str
    label: int
    fraction: float
    seed: int = 0
    model: str = ""
    slice_index: int | None = None

    @property
    def delta(self) -> tuple[float, ...]:
        """Occluded minus unoccluded probability of every class."""
        return tuple(o - b for o, b in zip(self.occluded, self.baseline))

    def lines(self) -> list[str]:
        """Human-readable summary: one line per class, then the occluded share of the slice."""
        out = [f"P({name}) {b:.3f} → {o:.3f} (Δ {_signed(o - b)})"
               for name, b, o in zip(self.class_names, self.baseline, self.occluded)]
        fill = f"label = {'black' if self.label == 1 else 'white'}" if self.fill == "label" else self.fill
        out.append(f"{100 * self.fraction:.1f} % of the slice occluded (fill: {fill})")
        return out


def _signed(v: float) -> str:
    """``+0.123`` / ``−0.123`` with a true minus sign; a rounded zero has no sign."""
    s = f"{abs(v):.3f}"
    if s == "0.000":
        return "0.000"
    return ("−" if v < 0 else "+") + s


class Prober:
    """One slice, one fill: probe many occlusion regions with one forward pass each.

    Parameters
    ----------
    clf : Classifier
        The model.
    hu : numpy.ndarray
        (H, W) slice in HU.
    fill : {"label", "mean", "blur", "road"}
        What replaces the occluded pixels (see module docstring).
    label : int, optional
        Class whose ``label`` fill is used: 1 (contrast) → black, 0 → white. Defaults to the
        class the model predicts for the unoccluded slice.
    seed : int
        Seed of the ROAD noise (the same region gives the same result).
    slice_index : int, optional
        Index of the slice in its volume, recorded in every result.

    Attributes
    ----------
    baseline : tuple of float
        Probability of every class for the unoccluded slice (computed once, here).
    label : int
        The class whose fill is used.
    """

    def __init__(self, clf: Classifier, hu: np.ndarray, *, fill: Fill = "label", label: int | None = None,
                 seed: int = 0, slice_index: int | None = None) -> None:
        if clf.card.is_3d:
            raise ValueError(f"{clf.card.name or clf.source} is a 3D model (it sees the whole volume): the occlusion "
                             "probe occludes a region of one slice — explain the volume with explain.explain(clf, "
                             "volume, methods=('OCC',)) instead")
        arr = np.asarray(hu)
        if arr.ndim != 2:
            raise ValueError(f"the occlusion probe takes one slice (H, W) in HU, got shape {arr.shape}")
        if fill not in FILLS:
            raise ValueError(f"unknown fill {fill!r}: {', '.join(FILLS)}")
        if label is not None and int(label) not in range(clf.card.n_classes):
            raise ValueError(f"label must be a class index 0…{clf.card.n_classes - 1}, got {label!r}")
        self.clf, self.fill, self.seed, self.slice_index = clf, fill, int(seed), slice_index
        self.shape: tuple[int, int] = (int(arr.shape[0]), int(arr.shape[1]))
        with torch.inference_mode():
            self._x = clf.preprocess(arr)
            self.baseline = self._class_probabilities(self._x)
            self.label = int(np.argmax(self.baseline)) if label is None else int(label)
            # ROAD depends on the region, so its fill is computed per call (``None`` here).
            self._fills = fill_images(self._x, np.array([self.label]), fill, self.seed, clf)

    def occlude(self, region: np.ndarray) -> OcclusionProbe:
        """Probabilities with ``region`` occluded.

        Parameters
        ----------
        region : numpy.ndarray
            (H, W) mask in the slice's geometry, bool or integer (non-zero = occluded). It is
            resized to the model's input by area: an input pixel is occluded when at least half
            of it is covered.

        Returns
        -------
        OcclusionProbe
            Unoccluded and occluded probabilities; an empty region returns the baseline
            exactly, without a forward pass.
        """
        removed = self.input_mask(region)
        fraction = float(removed.float().mean())
        occluded = self.baseline
        if fraction > 0:
            with torch.inference_mode():
                if self._fills is None:
                    x = road_impute(self._x, removed, seed=self.seed)
                else:
                    x = torch.where(removed, self._fills, self._x)
                # The baseline's memory layout: a new layout would cost a slow first forward pass.
                occluded = self._class_probabilities(x.contiguous(memory_format=torch.channels_last))
        return OcclusionProbe(class_names=tuple(self.clf.card.class_names), baseline=self.baseline,
                              occluded=occluded, fill=self.fill, label=self.label, fraction=fraction,
                              seed=self.seed, model=self.clf.card.short_hash, slice_index=self.slice_index)

    def input_mask(self, region: np.ndarray) -> torch.Tensor:
        """``region`` (H, W) as a bool (1, 1, h, w) mask at the model's input size."""
        r = np.asarray(region)
        if r.shape != self.shape:
            raise ValueError(f"the occlusion region must have the slice's shape {self.shape}, got {r.shape}")
        t = torch.as_tensor(r != 0, dtype=torch.float32)[None, None]
        size = tuple(self._x.shape[-2:])
        if tuple(t.shape[-2:]) != size:
            t = F.interpolate(t, size=size, mode="area")
        return (t >= 0.5).to(self._x.device)

    def _class_probabilities(self, x: torch.Tensor) -> tuple[float, ...]:
        return tuple(float(v) for v in self.clf.proba(self.clf.logits(x))[0])


def probe_occlusion(clf: Classifier, hu: np.ndarray, region: np.ndarray, *, fill: Fill = "label",
                    label: int | None = None, seed: int = 0, slice_index: int | None = None) -> OcclusionProbe:
    """Class probabilities of a slice with and without ``region`` occluded (two forward passes).

    Parameters
    ----------
    clf, hu, fill, label, seed, slice_index
        As for :class:`Prober`.
    region : numpy.ndarray
        (H, W) mask (non-zero = occluded) in the slice's geometry.

    Returns
    -------
    OcclusionProbe
        To probe many regions of one slice, use ``Prober(clf, hu, ...).occlude(region)``.
    """
    return Prober(clf, hu, fill=fill, label=label, seed=seed, slice_index=slice_index).occlude(region)
