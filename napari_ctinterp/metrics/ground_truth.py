"""Ground-truth faithfulness: does a map point at a feature the model is *known* to use?

With a planted marker (``phantom.make_slice(..., marker=...)``) and a model trained to read it
(``demo-shortcut``), the marker's mask is the ground truth of what the network used (Zhou et al.,
AAAI 2022; Kim et al., SMERF; Arras et al., CLEVR-XAI). Each score below compares one map with
that mask; all are **higher is better** and computed on ``|map|`` (the study's absolute maps):

- ``relevance_mass`` — the fraction of the map's total |relevance| inside the marker (Arras et
  al. 2022, "relevance mass accuracy"); equal to Quantus' ``RelevanceMassAccuracy(abs=True)``.
  A uniform map scores the marker's area fraction.
- ``relevance_rank`` — of the k most relevant pixels (k = the marker's pixel count), the fraction
  inside the marker (Arras et al. 2022, "relevance rank accuracy"); equal to Quantus'
  ``RelevanceRankAccuracy(abs=True)`` on maps without ties. Ties at the k-th value (XRAI region
  maps are constant per region) get their expected share here; Quantus' ``argsort`` breaks them by
  an unstated order, which makes a region map's score depend on where the marker lies.
- ``marker_auc`` — the ROC AUC of the map against the marker mask (every threshold; exact, equal
  to scikit-learn's ``roc_auc_score``): 0.5 for a random map, 1 when every marker pixel outranks
  every other pixel.
- ``pointing_hit`` — the pointing game (Zhang et al., ECCV 2016): the map's maximum lies in the
  marker, or within ``tolerance_mm`` of it (the mask dilated by that many millimetres of the
  pixel spacing). With 0 mm it equals Quantus' ``PointingGame`` (a hit when any pixel holding the
  maximum is in the mask).

A score alone rewards maps that light up anything bright: a dense lead letter draws gradient
whatever the model uses. The **truth score** of a method is therefore a difference: its score
with the shortcut model minus its score with a model that ignores the marker, on the same slices
(``truth_score``; paired, with a seeded bootstrap interval). A method whose map follows the
marker only because the marker is bright scores 0, not high.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage as ndi

from .localisation import exact_auc
from .mask_overlap import abs_and_mask, topk_intersection

#: The pointing game's tolerance in the study and the viewer: a maximum within 2 mm of the marker
#: is a hit (a letter's stroke is 2–3 mm wide; a map's maximum on its edge counts).
POINTING_TOLERANCE_MM = 2.0


@dataclass(frozen=True)
class GroundTruthScores:
    """One map's scores against the marker mask (see the module docstring; all higher is better).

    Attributes
    ----------
    relevance_mass, relevance_rank, marker_auc : float
        In [0, 1]; NaN for an empty marker mask or an all-zero map.
    pointing_hit : float
        1.0 (hit) or 0.0 (miss); NaN for an empty marker mask or an all-zero map (no maximum).
    pointing_distance_mm : float
        Distance from the map's maximum to the nearest marker pixel (0 inside it).
    """

    relevance_mass: float
    relevance_rank: float
    marker_auc: float
    pointing_hit: float
    pointing_distance_mm: float

    def record(self) -> dict:
        """The scores as a plain dict (a table row's columns)."""
        return asdict(self)


def relevance_mass(values: np.ndarray, marker: np.ndarray) -> float:
    """Fraction of ``|values|`` inside ``marker`` (higher is better; NaN: empty mask or zero map)."""
    a, m = abs_and_mask(values, marker)
    total = a.sum()
    if not m.any() or total == 0:
        return float("nan")
    return float(a[m].sum() / total)


def relevance_rank(values: np.ndarray, marker: np.ndarray) -> float:
    """Of the ``k = marker.sum()`` highest ``|values|``, the fraction inside ``marker`` (higher is
    better). Ties at the k-th value (an XRAI region map is constant over each region) share the
    places left among them in proportion: the expected fraction over every order of the tied
    pixels, so the score does not depend on where in the image the marker lies."""
    a, m = abs_and_mask(values, marker)
    if not m.any() or not np.isfinite(a).any() or not np.nanmax(a) > 0:
        return float("nan")
    return topk_intersection(a, m, k=int(m.sum()))  # the top k = the marker's size


def pointing(values: np.ndarray, marker: np.ndarray, *, spacing_mm: Sequence[float] | None = None,
             tolerance_mm: float = 0.0) -> tuple[float, float]:
    """(hit, distance in mm) of the pointing game: whether a maximum of ``|values|`` lies in the
    marker dilated by ``tolerance_mm``, and the smallest distance of a maximum to the marker."""
    a, m = abs_and_mask(values, marker)
    if not m.any():
        return float("nan"), float("nan")
    spacing = tuple(float(s) for s in (spacing_mm if spacing_mm is not None else (1.0,) * a.ndim))
    if len(spacing) != a.ndim:
        raise ValueError(f"spacing_mm has {len(spacing)} values for a {a.ndim}-D map")
    if not np.isfinite(a).any() or not np.nanmax(a) > 0:  # an all-zero map (Grad-CAM after its ReLU) points nowhere
        return float("nan"), float("nan")
    dist = ndi.distance_transform_edt(~m, sampling=spacing)  # mm to the nearest marker pixel
    at_max = a == np.nanmax(a)
    d = float(dist[at_max].min())
    return float(d <= tolerance_mm), d


def ground_truth_scores(values: np.ndarray, marker: np.ndarray, *, spacing_mm: Sequence[float] | None = None,
                        tolerance_mm: float = 0.0) -> GroundTruthScores:
    """Every ground-truth score of one map (2D or 3D) against the marker mask.

    Parameters
    ----------
    values : numpy.ndarray
        The map (H, W) or (Z, H, W); scored as ``|values|``.
    marker : numpy.ndarray
        bool, same shape: the planted marker's pixels (``PhantomSlice.marker_mask``).
    spacing_mm : sequence of float, optional
        Pixel (voxel) spacing for the pointing game's tolerance and distance (default 1 mm).
    tolerance_mm : float
        A maximum within this distance of the marker counts as a hit.
    """
    a, m = abs_and_mask(values, marker)
    auc = float("nan") if not m.any() or m.all() else float(exact_auc(a, m))
    hit, dist = pointing(a, m, spacing_mm=spacing_mm, tolerance_mm=tolerance_mm)
    return GroundTruthScores(relevance_mass=relevance_mass(a, m), relevance_rank=relevance_rank(a, m),
                             marker_auc=auc, pointing_hit=hit, pointing_distance_mm=dist)


@dataclass(frozen=True)
class TruthScore:
    """A method's truth score: mean of (shortcut model − marker-blind model) over the same slices.

    Attributes
    ----------
    mean : float
        The mean paired difference.
    low, high : float
        The seeded percentile-bootstrap interval of the mean (``level``).
    n : int
        Slices with both values.
    """

    mean: float
    low: float
    high: float
    n: int


def truth_score(shortcut: Sequence[float], blind: Sequence[float], *, level: float = 0.95, n_boot: int = 2000,
                seed: int = 0) -> TruthScore:
    """The truth score of one method and score: paired differences ``shortcut[i] − blind[i]``
    (the same slice's map with the shortcut model and with the model that ignores the marker),
    their mean and a percentile bootstrap interval (``n_boot`` resamples of the slices, ``seed``).
    Pairs with a NaN are left out; none left gives NaN."""
    s, b = np.asarray(shortcut, np.float64), np.asarray(blind, np.float64)
    if s.shape != b.shape:
        raise ValueError(f"paired values differ in length: {s.shape} vs {b.shape} (the same slices for both models)")
    d = (s - b)[np.isfinite(s) & np.isfinite(b)]
    if len(d) == 0:
        return TruthScore(float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, len(d), (n_boot, len(d)))].mean(1)
    lo, hi = np.quantile(boots, [(1 - level) / 2, 1 - (1 - level) / 2])
    return TruthScore(float(d.mean()), float(lo), float(hi), int(len(d)))


@dataclass(frozen=True)
class MarkerHit:
    """One map against a known marker: its share of |map| on the marker, and the pointing game.

    Attributes
    ----------
    mass : float
        ``relevance_mass`` (NaN: an all-zero map).
    hit : float
        1.0 when the map's maximum lies within the tolerance of the marker, 0.0 when not, NaN for
        an all-zero map.
    distance_mm : float
        From the map's maximum to the nearest marker pixel (0 inside it).
    """

    mass: float
    hit: float
    distance_mm: float


class MarkerCheck:
    """Many maps of one slice (or volume) against one marker mask: ``check(values)`` gives each
    map's :class:`MarkerHit`, equal to ``relevance_mass`` and ``pointing``; the distance map is
    computed once (the viewer checks every map of a slice on each redraw).

    Parameters
    ----------
    marker : numpy.ndarray
        bool (H, W) or (Z, H, W), not empty: the known feature's pixels.
    spacing_mm : sequence of float, optional
        Pixel (voxel) spacing (default 1 mm).
    tolerance_mm : float
        A maximum within this distance of the marker is a hit.
    """

    def __init__(self, marker: np.ndarray, *, spacing_mm: Sequence[float] | None = None,
                 tolerance_mm: float = POINTING_TOLERANCE_MM) -> None:
        m = np.asarray(marker).astype(bool)
        if not m.any():
            raise ValueError("the marker mask is empty on this slice: paint the feature the model is known to use, "
                             "or choose another slice")
        spacing = tuple(float(s) for s in (spacing_mm if spacing_mm is not None else (1.0,) * m.ndim))
        if len(spacing) != m.ndim:
            raise ValueError(f"spacing_mm has {len(spacing)} values for a {m.ndim}-D mask")
        self.marker, self.tolerance_mm = m, float(tolerance_mm)
        self._dist = ndi.distance_transform_edt(~m, sampling=spacing)

    def __call__(self, values: np.ndarray) -> MarkerHit:
        """The :class:`MarkerHit` of one map (same shape as the marker; scored as ``|values|``)."""
        a, m = abs_and_mask(values, self.marker)
        top = np.max(a) if np.isfinite(a).all() else np.nan
        if not top > 0:  # an all-zero map (or one with NaN: no share is defined) points nowhere
            return MarkerHit(float("nan"), float("nan"), float("nan"))
        d = float(self._dist[a == top].min())
        return MarkerHit(mass=float(a[m].sum() / a.sum()), hit=float(d <= self.tolerance_mm), distance_mm=d)
