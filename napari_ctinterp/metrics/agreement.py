"""Agreement between two rankings of maps: does the map a person trusts rank where the model's does?

The paper's central question ("human vs model"): maps that agree with the expert mask (high AUC)
are not necessarily the ones faithful to the model (high F). The Metrics panel asks it of one
slice's maps, a study's report of the group means over the set; both call :func:`rank_correlation`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def rank_correlation(x: Iterable[float], y: Iterable[float]) -> tuple[float, int]:
    """Spearman ρ between paired scores (e.g. exact AUC and F of each map), and the pairs used.

    Parameters
    ----------
    x, y : iterable of float
        Paired scores, one pair per map; pairs where either is NaN or infinite are left out.

    Returns
    -------
    rho : float
        Spearman's rank correlation, NaN when fewer than 3 pairs remain or either score is
        constant over them (ρ undefined).
    n : int
        The number of pairs used.
    """
    from scipy.stats import spearmanr

    a = np.asarray(list(x), dtype=float)
    b = np.asarray(list(y), dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"rank_correlation needs paired scores, got {a.size} and {b.size} values")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = int(a.size)
    if n < 3 or len(set(a.tolist())) < 2 or len(set(b.tolist())) < 2:
        return float("nan"), n
    return float(spearmanr(a, b).statistic), n
