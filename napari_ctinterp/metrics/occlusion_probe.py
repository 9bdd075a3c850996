"""Occlusion probe: the model's class probabilities for a slice (a 3D model: the whole volume)
with a chosen region occluded.

A person paints a region; the region is replaced by a fill value in the model's input space and
the class probabilities are compared with the unoccluded slice. It tests what an attribution map
claims: occluding the regions a map calls decisive should move the prediction, occluding the rest
should not. The fills are the fidelity protocol's (``metrics.fidelity``): ``label`` (0 = black for
a slice the model calls contrast, 1 = white for no contrast), ``mean`` (the slice's mean),
``blur`` (the slice, Gaussian-blurred) and ``road`` (noisy linear imputation from the neighbours).

``Prober`` keeps one slice's preprocessed input, fill and unoccluded probabilities, so that each
new region costs one forward pass; ``probe_occlusion`` is the one-shot form.

A 3D model (card ``spatial_dims`` 3) sees the whole volume: the CT is a volume (Z, H, W), the region
a (Z, H, W) mask painted on any number of slices, brought into the model's input by the card's own
geometry (``Classifier.geometry``: resize, or resampling to a spacing and a crop) — an input voxel
is occluded when at least half of it is covered — and the answer is the volume's. The fills are
the 3D fidelity protocol's (``mean`` over the voxels that came from the CT; ``blur`` in 3D).
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
    "label": "white (1) if the model says class 0 (no contrast), black (0) for any other class — the paper's fill",
    "mean": "the slice's (volume's) mean intensity (class-neutral)",
    "blur": "the slice (volume) Gaussian-blurred (σ = 5 px at the model's input size): keeps the coarse intensity",
    "road": "ROAD noisy linear imputation from the surrounding pixels (class-neutral)",
}


@dataclass(frozen=True)
class OcclusionProbe:
    """Class probabilities of one slice (a 3D model: one volume) without and with a region occluded.

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
        ``occluded == baseline`` exactly); a 3D model: of the input voxels that came from the CT.
    seed : int
        Seed of the ROAD noise.
    model : str
        First 12 hex digits of the model card's weights hash.
    slice_index : int or None
        Index of the slice in its volume, when known (None for a 3D model's volume).
    volume : bool
        True for a 3D model: the answer is the whole volume's.
    painted_slices : tuple of int
        A 3D model: the CT slices holding painted voxels (empty: nothing painted).
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
    volume: bool = False
    painted_slices: tuple[int, ...] = ()

    @property
    def delta(self) -> tuple[float, ...]:
        """Occluded minus unoccluded probability of every class."""
        return tuple(o - b for o, b in zip(self.occluded, self.baseline))

    def lines(self) -> list[str]:
        """Human-readable summary: one line per class, then the occluded share of the slice (of
        the volume, and the slices painted, for a 3D model)."""
        out = [f"P({name}) {b:.3f} → {o:.3f} (Δ {_signed(o - b)})"
               for name, b, o in zip(self.class_names, self.baseline, self.occluded)]
        fill = f"label = {'white' if self.label == 0 else 'black'}" if self.fill == "label" else self.fill
        where = "the volume" if self.volume else "the slice"
        painted = f", painted on {_slices_text(self.painted_slices)}" if self.painted_slices else ""
        out.append(f"{100 * self.fraction:.1f} % of {where} occluded{painted} (fill: {fill})")
        return out


def _slices_text(zs: tuple[int, ...]) -> str:
    """``(3, 4, 5, 9)`` → ``"slices 3–5, 9"`` (runs of consecutive slices joined)."""
    runs: list[list[int]] = []
    for z in zs:
        if runs and z == runs[-1][-1] + 1:
            runs[-1].append(z)
        else:
            runs.append([z])
    parts = [f"{r[0]}–{r[-1]}" if len(r) > 1 else f"{r[0]}" for r in runs]
    return ("slice " if len(zs) == 1 else "slices ") + ", ".join(parts)


def _signed(v: float) -> str:
    """``+0.123`` / ``−0.123`` with a true minus sign; a rounded zero has no sign."""
    s = f"{abs(v):.3f}"
    if s == "0.000":
        return "0.000"
    return ("−" if v < 0 else "+") + s


class Prober:
    """One slice (a 3D model: one volume), one fill: probe many occlusion regions with one forward
    pass each.

    Parameters
    ----------
    clf : Classifier
        The model.
    hu : numpy.ndarray
        (H, W) slice in HU; for a 3D model the whole volume (Z, H, W) in HU.
    fill : {"label", "mean", "blur", "road"}
        What replaces the occluded pixels (see module docstring).
    label : int, optional
        Class whose ``label`` fill is used: 1 (contrast) → black, 0 → white. Defaults to the
        class the model predicts for the unoccluded slice.
    seed : int
        Seed of the ROAD noise (the same region gives the same result).
    slice_index : int, optional
        Index of the slice in its volume, recorded in every result (2D models).
    spacing_mm : tuple of float, optional
        3D models: the CT's (z, y, x) spacing in mm (needed when the card resamples to a spacing).

    Attributes
    ----------
    baseline : tuple of float
        Probability of every class for the unoccluded slice (computed once, here).
    label : int
        The class whose fill is used.
    volume : bool
        True for a 3D model (regions are (Z, H, W)).
    """

    def __init__(self, clf: Classifier, hu: np.ndarray, *, fill: Fill = "label", label: int | None = None,
                 seed: int = 0, slice_index: int | None = None,
                 spacing_mm: tuple[float, float, float] | None = None) -> None:
        arr = np.asarray(hu)
        self.volume = bool(clf.card.is_3d)
        self._geometry = None
        self._valid: torch.Tensor | None = None  # 3D: the input voxels that came from the CT
        if self.volume:
            if slice_index is not None:
                raise ValueError("a 3D model sees the whole volume: the probe takes the volume, no slice index")
            try:
                self._geometry = clf.geometry(arr.shape, spacing_mm)
            except ValueError as e:
                raise ValueError(f"{clf.card.name or clf.source or 'this model'} is a 3D model (it sees the whole "
                                 f"volume): {e}") from e
        else:
            if arr.ndim != 2:
                raise ValueError(f"the occlusion probe takes one slice (H, W) in HU, got shape {arr.shape}")
            if spacing_mm is not None:
                raise ValueError("spacing_mm is for 3D models; a 2D model's slice is resized to its input size")
        if fill not in FILLS:
            raise ValueError(f"unknown fill {fill!r}: {', '.join(FILLS)}")
        if label is not None and int(label) not in range(clf.card.n_classes):
            raise ValueError(f"label must be a class index 0…{clf.card.n_classes - 1}, got {label!r}")
        self.clf, self.fill, self.seed, self.slice_index = clf, fill, int(seed), slice_index
        self.shape: tuple[int, ...] = tuple(int(n) for n in arr.shape)
        with torch.inference_mode():
            if self._geometry is not None:
                self._x = clf.preprocess(arr, spacing_mm=spacing_mm)
                seen = self._geometry.to_input(torch.ones((1, *self.shape)), torch.zeros(1))
                self._valid = (seen >= 0.5)[None].to(self._x.device)  # (1, 1, D, H, W)
            else:
                self._x = clf.preprocess(arr)
            self.baseline = self._class_probabilities(self._x)
            self.label = int(np.argmax(self.baseline)) if label is None else int(label)
            # ROAD depends on the region, so its fill is computed per call (``None`` here).
            self._fills = fill_images(self._x, np.array([self.label]), fill, self.seed, clf, self._valid)

    def occlude(self, region: np.ndarray) -> OcclusionProbe:
        """Probabilities with ``region`` occluded.

        Parameters
        ----------
        region : numpy.ndarray
            (H, W) mask in the slice's geometry — (Z, H, W) in the volume's for a 3D model —
            bool or integer (non-zero = occluded). It is resized to the model's input by area: an
            input pixel (voxel) is occluded when at least half of it is covered.

        Returns
        -------
        OcclusionProbe
            Unoccluded and occluded probabilities; an empty region returns the baseline
            exactly, without a forward pass.
        """
        removed = self.input_mask(region)
        if self._valid is not None:
            fraction = float(removed.sum()) / max(1.0, float(self._valid.sum()))
        else:
            fraction = float(removed.float().mean())
        occluded = self.baseline
        if fraction > 0:
            with torch.inference_mode():
                if self._fills is None:
                    x = road_impute(self._x, removed, seed=self.seed)
                else:
                    x = torch.where(removed, self._fills, self._x)
                # The baseline's memory layout: a new layout would cost a slow first forward pass.
                x = x.contiguous() if self.volume else x.contiguous(memory_format=torch.channels_last)
                occluded = self._class_probabilities(x)
        painted = tuple(int(z) for z in np.flatnonzero(np.asarray(region).reshape(self.shape[0], -1).any(1))) \
            if self.volume else ()
        return OcclusionProbe(class_names=tuple(self.clf.card.class_names), baseline=self.baseline,
                              occluded=occluded, fill=self.fill, label=self.label, fraction=fraction,
                              seed=self.seed, model=self.clf.card.short_hash, slice_index=self.slice_index,
                              volume=self.volume, painted_slices=painted)

    def input_mask(self, region: np.ndarray) -> torch.Tensor:
        """``region`` (H, W) as a bool (1, 1, h, w) mask at the model's input size — a 3D model's
        (Z, H, W) as (1, 1, D, h, w), False where the input holds no CT voxel (padding)."""
        r = np.asarray(region)
        if r.shape != self.shape:
            what = "volume" if self.volume else "slice"
            raise ValueError(f"the occlusion region must have the {what}'s shape {self.shape}, got {r.shape}")
        t = torch.as_tensor(r != 0, dtype=torch.float32)
        if self._geometry is not None:
            covered = self._geometry.to_input(t[None], torch.zeros(1))[None]  # (1, 1, D, h, w)
            return (covered >= 0.5).to(self._x.device) & self._valid
        t = t[None, None]
        size = tuple(self._x.shape[-2:])
        if tuple(t.shape[-2:]) != size:
            t = F.interpolate(t, size=size, mode="area")
        return (t >= 0.5).to(self._x.device)

    def _class_probabilities(self, x: torch.Tensor) -> tuple[float, ...]:
        return tuple(float(v) for v in self.clf.proba(self.clf.logits(x))[0])


def probe_occlusion(clf: Classifier, hu: np.ndarray, region: np.ndarray, *, fill: Fill = "label",
                    label: int | None = None, seed: int = 0, slice_index: int | None = None,
                    spacing_mm: tuple[float, float, float] | None = None) -> OcclusionProbe:
    """Class probabilities of a slice (a 3D model: the volume) with and without ``region``
    occluded (two forward passes).

    Parameters
    ----------
    clf, hu, fill, label, seed, slice_index, spacing_mm
        As for :class:`Prober`.
    region : numpy.ndarray
        (H, W) mask (non-zero = occluded) in the slice's geometry; (Z, H, W) for a 3D model.

    Returns
    -------
    OcclusionProbe
        To probe many regions of one slice, use ``Prober(clf, hu, ...).occlude(region)``.
    """
    return Prober(clf, hu, fill=fill, label=label, seed=seed, slice_index=slice_index,
                  spacing_mm=spacing_mm).occlude(region)
