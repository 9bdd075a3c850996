"""ROAD noisy linear imputation (Rong et al. 2022) of removed pixels, as a class-neutral fill.

Each removed pixel becomes the weighted mean of its 8 neighbours (weights 1/6 for direct and 1/12
for diagonal neighbours), all removed pixels solved jointly as one sparse linear system, plus
N(0, 0.01) noise. Neighbours outside the image are left out and the weights renormalised.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import sparse
from scipy.sparse.linalg import spsolve

_OFFSETS = [(-1, 0, 1 / 6), (1, 0, 1 / 6), (0, -1, 1 / 6), (0, 1, 1 / 6),
            (-1, -1, 1 / 12), (-1, 1, 1 / 12), (1, -1, 1 / 12), (1, 1, 1 / 12)]


def impute_one(img: np.ndarray, removed: np.ndarray, rng: np.random.Generator, noise_sd: float = 0.01) -> np.ndarray:
    """Impute the ``removed`` pixels of one (H, W) image."""
    h, w = img.shape
    idx = np.flatnonzero(removed.ravel())
    out = img.astype(np.float64).copy()
    if len(idx) == 0:
        return out.astype(img.dtype)
    pos = -np.ones(h * w, dtype=np.int64)
    pos[idx] = np.arange(len(idx))
    r, c = np.divmod(idx, w)
    rows, cols, vals = [np.arange(len(idx))], [np.arange(len(idx))], [np.ones(len(idx))]
    rhs = np.zeros(len(idx))
    wsum = np.zeros(len(idx))
    for dr, dc, wt in _OFFSETS:
        rr, cc = r + dr, c + dc
        ok = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        wsum[ok] += wt
    for dr, dc, wt in _OFFSETS:
        rr, cc = r + dr, c + dc
        ok = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        nb = rr[ok] * w + cc[ok]
        wn = wt / wsum[ok]
        unknown = pos[nb] >= 0
        rows.append(np.flatnonzero(ok)[unknown])
        cols.append(pos[nb[unknown]])
        vals.append(-wn[unknown])
        np.add.at(rhs, np.flatnonzero(ok)[~unknown], wn[~unknown] * img.ravel()[nb[~unknown]])
    a = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(len(idx), len(idx)))
    sol = spsolve(a.tocsc(), rhs)
    out.ravel()[idx] = sol + rng.normal(0.0, noise_sd, len(idx))
    return out.astype(img.dtype)


def road_impute(x: torch.Tensor, removed: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """ROAD-impute a batch (B, 1, H, W) where ``removed`` is True."""
    rng = np.random.default_rng(seed)
    xs = x.detach().cpu().numpy()
    rm = removed.detach().cpu().numpy()
    out = np.stack([impute_one(xs[i, 0], rm[i, 0], rng)[None] for i in range(len(xs))])
    return torch.as_tensor(out, dtype=x.dtype, device=x.device)
