"""A study table with planted differences between methods, for the statistics' tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def planted_table(n: int, effects: dict[str, float], seed: int = 0, sd: float = 0.05) -> pd.DataFrame:
    """A study table of ``n`` slices: each method's AUC = the slice's difficulty + its effect + noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        base = rng.uniform(0.5, 0.7)
        for method, effect in effects.items():
            for sign in ("absolute", "signed"):
                rows.append({"slice_id": f"s{i}", "method": method, "variant": "plain", "map_type": "pixel",
                             "sign": sign, "auc": base + effect + rng.normal(0, sd), "error": None})
        rows.append({"slice_id": f"s{i}", "method": "random", "variant": "plain", "map_type": "pixel",
                     "sign": "absolute", "auc": 0.5, "error": None})
    return pd.DataFrame(rows)
