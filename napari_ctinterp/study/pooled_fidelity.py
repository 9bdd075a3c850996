"""The paper's F of a study, pooled over its slices, with a bootstrap interval.

``fidelity_table``: per map group, balanced accuracy over the slices at each p (MiF, LiF), F = the
area between them (``metrics.pooled_F``) and a seeded 95 % interval from resampling the slices;
``fidelity_draws``: the resampled F themselves — the same resamples for every map, so the
difference of two maps' draws bounds the difference of their F (the report's headline and the
paper comparison use it).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ..explain.options import METHODS
from ..metrics import schema
from ..metrics.fidelity import fidelity_grid, pooled_F, pooled_F_draws

GROUP = list(schema.KEY)


def origin(method: str) -> str:
    """Where a method comes from: ``paper`` (the reference study's five), ``baseline`` (the random
    map) or ``beyond`` (methods this tool adds)."""
    return "paper" if method in METHODS else "baseline" if method == "random" else "beyond"


#: Bootstrap resamples of the slices for F's 95 % interval (seeded with the study's seed).
F_BOOT = 1000


def map_key(method: str, variant: str, map_type: str = "pixel", sign: str = "absolute") -> str:
    """A map group's key in a slice result's ``fidelity`` and in ``fidelity_draws``."""
    return f"{method}|{variant}|{map_type}|{sign}"


def fidelity_draws(results: list[dict], step: float, seed: int = 0, n_boot: int = F_BOOT) -> dict[str, np.ndarray]:
    """Per map key (``method|variant|map_type|sign``), F of each of ``n_boot`` bootstrap resamples
    of the scored slices — the same resamples for every map, so draws of two maps are paired."""
    ok = [r for r in results if not r["error"]]
    if not ok:
        return {}
    p = fidelity_grid(step)
    labels = np.array([r["label"] for r in ok])
    resamples = np.random.default_rng(seed).integers(0, len(ok), size=(n_boot, len(ok)))
    return {key: pooled_F_draws(np.array([r["fidelity"][key]["pred_mif"] for r in ok]),
                                np.array([r["fidelity"][key]["pred_lif"] for r in ok]), labels, p, resamples)
            for key in ok[0]["fidelity"]}


def fidelity_table(results: list[dict], step: float, seed: int = 0,
                   draws: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """The paper's F per group: balanced accuracy over the slices at each p, LiF − MiF area, and a
    seeded bootstrap 95 % interval (slices resampled; ``fidelity_draws``)."""
    ok = [r for r in results if not r["error"]]
    if not ok:
        return pd.DataFrame(columns=[*GROUP, "origin", "F", "F_ci_low", "F_ci_high", "n"])
    p = fidelity_grid(step)
    labels = np.array([r["label"] for r in ok])
    draws = fidelity_draws(results, step, seed) if draws is None else draws  # the caller's, computed once
    out = []
    for key in ok[0]["fidelity"]:
        mif = np.array([r["fidelity"][key]["pred_mif"] for r in ok])
        lif = np.array([r["fidelity"][key]["pred_lif"] for r in ok])
        mif_c, lif_c, f = pooled_F(mif, lif, labels, p)
        group = dict(zip(GROUP, key.split("|")))
        low, high = np.nanpercentile(draws[key], [2.5, 97.5])
        out.append({**group, "origin": origin(group["method"]), "F": f, "F_ci_low": float(low),
                    "F_ci_high": float(high), "n": len(ok),
                    "mif_curve": json.dumps(np.round(mif_c, 4).tolist()),
                    "lif_curve": json.dumps(np.round(lif_c, 4).tolist())})
    return pd.DataFrame(out)


def fill_flips(results: list[dict], key: str = "random|plain|pixel|absolute") -> dict[int, tuple[float, float, int]]:
    """Per class: the share of its slices the model gets right before any pixel is replaced and
    after the first fidelity step of the random map (``key``), and the number of slices. Random
    pixels carry no ranking, so a large drop says the fill itself is a signal to the model (the
    paper's white fill of a no-contrast slice can look like contrast): F then measures the fill,
    not the maps, on that class. Empty when the study has no random map or no slices."""
    ok = [r for r in results if not r["error"] and key in r.get("fidelity", {})]
    if not ok:
        return {}
    labels = np.array([int(r["label"]) for r in ok])
    pred = np.array([r["fidelity"][key]["pred_lif"] for r in ok])
    if pred.ndim != 2 or pred.shape[1] < 2:
        return {}
    return {int(c): (float(np.mean(pred[labels == c, 0] == c)), float(np.mean(pred[labels == c, 1] == c)),
                     int(np.sum(labels == c))) for c in np.unique(labels)}
