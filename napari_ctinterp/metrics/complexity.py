"""How concentrated a map is, whatever the mask or the model: sparseness and complexity.

Both read ``|map|`` (2D or 3D) as a distribution of relevance over the pixels:

- ``sparseness`` — the Gini index of ``|map|`` (Chalasani et al., ICML 2020): 0 when every pixel
  holds the same relevance, → 1 when one pixel holds it all. **Higher is better** (a sparser,
  easier to read map). Equal to Quantus' ``Sparseness(abs=True)`` up to its quirk: Quantus adds
  1e-7 to every (max-normalised) value before the index, which moves it by ~1e-6 on a 512² map;
  we follow the paper (no offset).
- ``complexity`` — the Shannon entropy (nats) of ``|map| / Σ|map|`` (Bhatt et al., IJCAI 2020):
  0 when one pixel holds all relevance, ln(n) for a uniform map of n pixels. **Lower is better**.
  Equal to Quantus' ``Complexity(abs=True)`` (its 1e-12 inside the log leaves zeros at 0 · log 0 =
  0, as here).

A map of zeros has neither: NaN. One sort (sparseness) or one pass (complexity) of the map.
"""

from __future__ import annotations

import numpy as np


def _relevance(values: np.ndarray) -> np.ndarray | None:
    a = np.abs(np.asarray(values, np.float64)).ravel()
    return a if np.isfinite(a).all() and a.sum() > 0 else None


def sparseness(values: np.ndarray) -> float:
    """The Gini index of ``|values|`` in [0, 1) (higher is better: sparser)."""
    a = _relevance(values)
    if a is None:
        return float("nan")
    a = np.sort(a)
    n = a.size
    rank = np.arange(1, n + 1, dtype=np.float64)
    return float(np.sum((2 * rank - n - 1) * a) / (n * a.sum()))


def complexity(values: np.ndarray) -> float:
    """The entropy (nats) of ``|values|`` as a distribution over its pixels (lower is better)."""
    a = _relevance(values)
    if a is None:
        return float("nan")
    p = a / a.sum()
    nz = p[p > 0]
    return float(-np.sum(nz * np.log(nz)))
