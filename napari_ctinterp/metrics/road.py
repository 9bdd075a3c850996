"""ROAD noisy linear imputation (Rong et al. 2022) of removed pixels / voxels, as a class-neutral fill.

Each removed pixel becomes the weighted mean of its neighbours, all removed pixels solved jointly
as one sparse linear system, plus N(0, 0.01) noise. Neighbours outside the image are left out and
the weights renormalised.

- 2D (H, W): the paper's 8 neighbours, weights 1/6 for direct and 1/12 for diagonal neighbours;
  solved directly (SuperLU).
- 3D (D, H, W), a 3D model's input: the 6 face neighbours, equal weights — ROAD's definition with
  the 3D neighbourhood (ours: the paper is 2D). The system is solved by conjugate gradients on its
  symmetric form: with equal weights, row i of ``(I − W) x = b`` times its neighbour count n_i is
  ``n_i x_i − Σ_unknown x_j = n_i b_i``, a graph Laplacian with Dirichlet boundary (symmetric,
  positive definite whenever a removed voxel touches a kept one), so CG with a Jacobi preconditioner
  converges to the direct solution (tested to 1e-8). Measured on this machine, 97 % of a 48³ volume
  removed: SuperLU 163 s, CG 2.5 s — 3D fill-in is what makes the direct solve impractical.
  With every voxel removed there is no boundary: the right-hand side is 0 and so is the solution
  (as SuperLU gives in 2D), leaving the noise.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import sparse
from scipy.sparse.linalg import cg, spsolve

_OFFSETS = [(-1, 0, 1 / 6), (1, 0, 1 / 6), (0, -1, 1 / 6), (0, 1, 1 / 6),
            (-1, -1, 1 / 12), (-1, 1, 1 / 12), (1, -1, 1 / 12), (1, 1, 1 / 12)]
#: 3D: the 6 face neighbours, equal weights.
OFFSETS_3D = [(-1, 0, 0, 1 / 6), (1, 0, 0, 1 / 6), (0, -1, 0, 1 / 6), (0, 1, 0, 1 / 6),
              (0, 0, -1, 1 / 6), (0, 0, 1, 1 / 6)]
#: Relative residual the 3D conjugate-gradient solve stops at.
CG_RTOL = 1e-10


def _system(img: np.ndarray, idx: np.ndarray, offsets: list[tuple]) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
    """``A x = rhs`` for the removed flat indices ``idx`` of ``img`` and the weights' sums per row."""
    shape = img.shape
    pos = -np.ones(img.size, dtype=np.int64)
    pos[idx] = np.arange(len(idx))
    coords = np.unravel_index(idx, shape)
    rows, cols, vals = [np.arange(len(idx))], [np.arange(len(idx))], [np.ones(len(idx))]
    rhs = np.zeros(len(idx))
    wsum = np.zeros(len(idx))
    moved = []
    for *delta, wt in offsets:
        nb = tuple(c + d for c, d in zip(coords, delta))
        ok = np.logical_and.reduce([(v >= 0) & (v < n) for v, n in zip(nb, shape)])
        wsum[ok] += wt
        moved.append((nb, ok, wt))
    flat = img.ravel()
    for nb, ok, wt in moved:
        nbf = np.ravel_multi_index(tuple(v[ok] for v in nb), shape)
        wn = wt / wsum[ok]
        unknown = pos[nbf] >= 0
        rows.append(np.flatnonzero(ok)[unknown])
        cols.append(pos[nbf[unknown]])
        vals.append(-wn[unknown])
        np.add.at(rhs, np.flatnonzero(ok)[~unknown], wn[~unknown] * flat[nbf[~unknown]])
    a = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(len(idx), len(idx)))
    return a, rhs, wsum


def _solve_cg(a: sparse.csr_matrix, rhs: np.ndarray, wsum: np.ndarray) -> np.ndarray:
    """The 3D system by CG on its symmetric form (rows scaled by their neighbour counts)."""
    if not rhs.any():
        return np.zeros_like(rhs)
    count = np.rint(wsum * 6)  # neighbours inside the volume (weights 1/6 each)
    sym = sparse.diags(count) @ a
    sol, info = cg(sym, count * rhs, rtol=CG_RTOL, atol=0.0, maxiter=10 * len(rhs) + 100,
                   M=sparse.diags(1.0 / count))
    if info != 0:  # not expected for this SPD system; the direct solve is the definition
        sol = spsolve(a.tocsc(), rhs)
    return sol


def impute_one(img: np.ndarray, removed: np.ndarray, rng: np.random.Generator, noise_sd: float = 0.01) -> np.ndarray:
    """Impute the ``removed`` pixels of one (H, W) image, or voxels of one (D, H, W) volume."""
    if img.ndim not in (2, 3) or removed.shape != img.shape:
        raise ValueError(f"ROAD imputes an (H, W) image or a (D, H, W) volume with a mask of its shape, got "
                         f"{img.shape} and {removed.shape}")
    idx = np.flatnonzero(removed.ravel())
    out = img.astype(np.float64).copy()
    if len(idx) == 0:
        return out.astype(img.dtype)
    if img.ndim == 2:
        a, rhs, _ = _system(img, idx, _OFFSETS)
        sol = spsolve(a.tocsc(), rhs)
    else:
        a, rhs, wsum = _system(img, idx, OFFSETS_3D)
        sol = _solve_cg(a, rhs, wsum)
    out.ravel()[idx] = sol + rng.normal(0.0, noise_sd, len(idx))
    return out.astype(img.dtype)


def road_impute(x: torch.Tensor, removed: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """ROAD-impute a batch (B, 1, H, W) — or (B, 1, D, H, W) — where ``removed`` is True."""
    rng = np.random.default_rng(seed)
    xs = x.detach().cpu().numpy()
    rm = removed.detach().cpu().numpy()
    out = np.stack([impute_one(xs[i, 0], rm[i, 0], rng)[None] for i in range(len(xs))])
    return torch.as_tensor(out, dtype=x.dtype, device=x.device)
