"""More agreement scores of a map with the reference mask: AUPRC, IoU at Otsu's level, top-k.

All take ``|map|`` (2D or 3D; the study's absolute maps) and a bool mask of the same shape, and all
are **higher is better** (the map agrees more with the mask):

- ``auprc`` — the area under the precision–recall curve of the map against the mask, as average
  precision (Σ over the map's distinct values of Δrecall × precision; ties form one threshold),
  equal to scikit-learn's ``average_precision_score``. Arun et al. (Radiology: AI 2021) prefer it
  to ROC AUC for small findings: ROC AUC counts true negatives, of which a small mask leaves
  nearly all, and flatters every map; a random map's AUPRC is the mask's area fraction.
- ``iou_otsu`` — the intersection over union of the mask and the map thresholded at Otsu's level
  (``|map| > skimage.filters.threshold_otsu(|map|)``), as M3d-CAM's evaluator and the mIoU of
  Saporta et al. (Nature MI 2022) threshold saliency maps.
- ``topk_intersection`` — of the k pixels with the highest |map|, the fraction inside the mask
  (Theiner et al. 2021), equal to Quantus' ``TopKIntersection(k, abs=True)`` on maps without ties;
  ties at the k-th value share the places left in proportion (their expected fraction, as
  ``ground_truth.relevance_rank``), where Quantus' ``argsort`` breaks them in no stated order.

numpy and scikit-image only: each is one sort (or a histogram) of the map, milliseconds for a 512²
slice, so no faster path is needed.
"""

from __future__ import annotations

import numpy as np


def abs_and_mask(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``|values|`` as float64 and ``mask`` as bool, refused (ValueError) when their shapes differ;
    the first step of every score of a map against a mask (here and ``ground_truth``)."""
    a = np.abs(np.asarray(values, np.float64))
    m = np.asarray(mask).astype(bool)
    if a.shape != m.shape:
        raise ValueError(f"the map {a.shape} and the mask {m.shape} differ in shape: score a map against the mask "
                         f"of the same slice or volume")
    return a, m


def auprc(values: np.ndarray, mask: np.ndarray) -> float:
    """Average precision of ``|values|`` against ``mask`` (higher is better; NaN for an empty or a
    full mask, where precision–recall says nothing)."""
    a, m = abs_and_mask(values, mask)
    pos = int(m.sum())
    if pos == 0 or pos == m.size:
        return float("nan")
    order = np.argsort(-a.ravel(), kind="stable")
    v, hit = a.ravel()[order], m.ravel()[order]
    last = np.r_[v[1:] != v[:-1], True]  # the last pixel of each run of equal values: one threshold each
    tp = np.cumsum(hit)[last].astype(np.float64)
    n = (np.nonzero(last)[0] + 1).astype(np.float64)
    recall_step = np.diff(np.r_[0.0, tp]) / pos
    return float(np.sum(recall_step * tp / n))


def iou_otsu(values: np.ndarray, mask: np.ndarray) -> float:
    """IoU of ``|values| > Otsu's threshold`` with ``mask`` (higher is better; NaN for a constant
    map, which Otsu cannot split, or an empty mask)."""
    from skimage.filters import threshold_otsu

    a, m = abs_and_mask(values, mask)
    if not m.any() or not np.isfinite(a).all() or a.min() == a.max():
        return float("nan")
    kept = a > threshold_otsu(a)
    union = np.logical_or(kept, m).sum()
    return float(np.logical_and(kept, m).sum() / union)


def topk_intersection(values: np.ndarray, mask: np.ndarray, k: int = 1000) -> float:
    """Of the ``k`` highest ``|values|``, the fraction inside ``mask`` (higher is better; NaN for
    an empty mask). Ties at the k-th value count their expected share."""
    a, m = abs_and_mask(values, mask)
    if not m.any():
        return float("nan")
    flat, mk = np.nan_to_num(a.ravel(), nan=-np.inf), m.ravel()  # a NaN pixel ranks last
    k = int(min(max(k, 1), flat.size))
    kth = np.partition(flat, flat.size - k)[flat.size - k]
    above, tied = flat > kth, flat == kth
    hits = float(mk[above].sum()) + (k - int(above.sum())) * float(mk[tied].mean())
    return hits / k
