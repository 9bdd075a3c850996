"""ROAD's noisy linear imputation in 3D: each removed voxel is the mean of its 6 face neighbours
(those inside the volume) plus noise, all removed voxels solved jointly; checked against a dense
direct solve written out here."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.sparse.linalg import spsolve

from napari_ctinterp.metrics.road import OFFSETS_3D, _system, impute_one, road_impute

SHAPE = (10, 12, 11)


def _neighbours(v: tuple[int, int, int], shape: tuple[int, ...]) -> list[tuple[int, int, int]]:
    out = []
    for axis in range(3):
        for step in (-1, 1):
            n = list(v)
            n[axis] += step
            if 0 <= n[axis] < shape[axis]:
                out.append(tuple(n))
    return out


def _dense_solution(img: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """The definition, voxel by voxel: x_v − mean(unknown neighbours) = mean(known neighbours)."""
    idx = np.flatnonzero(removed)
    pos = {int(f): k for k, f in enumerate(idx)}
    a = np.eye(len(idx))
    b = np.zeros(len(idx))
    for k, f in enumerate(idx):
        nbs = _neighbours(np.unravel_index(f, img.shape), img.shape)
        for nb in nbs:
            g = int(np.ravel_multi_index(nb, img.shape))
            if g in pos:
                a[k, pos[g]] -= 1 / len(nbs)
            else:
                b[k] += img[nb] / len(nbs)
    return np.linalg.solve(a, b)


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(0)
    img = rng.normal(0.4, 0.2, SHAPE)
    removed = rng.random(SHAPE) < 0.35
    removed[2:7, 3:9, 4:8] = True  # a block touching nothing kept inside: joint solve matters
    removed[0, 0, :] = True  # on the volume's faces and edges: fewer neighbours, renormalised
    return img, removed


def test_imputed_voxels_are_the_mean_of_their_neighbours(case):
    img, removed = case
    out = impute_one(img, removed, np.random.default_rng(1), noise_sd=0.0)
    assert np.array_equal(out[~removed], img[~removed])
    for v in zip(*np.nonzero(removed)):
        nbs = _neighbours(v, SHAPE)
        assert out[v] == pytest.approx(np.mean([out[n] for n in nbs]), abs=1e-8)


def test_solution_plus_noise_equals_a_direct_dense_solve(case):
    img, removed = case
    out = impute_one(img, removed, np.random.default_rng(7))
    noise = np.random.default_rng(7).normal(0.0, 0.01, int(removed.sum()))  # drawn in flat voxel order
    assert np.allclose(out[removed] - noise, _dense_solution(img, removed), atol=1e-8, rtol=0)
    assert np.array_equal(out[~removed], img[~removed])


def test_conjugate_gradients_equal_the_sparse_direct_solve_on_a_larger_blob():
    rng = np.random.default_rng(3)
    img = rng.random((20, 20, 20))
    z, y, x = np.indices(img.shape)
    removed = (z - 9) ** 2 + (y - 10) ** 2 / 2 + (x - 11) ** 2 < 60  # a large ellipsoid: the MiF top voxels
    a, rhs, _ = _system(img, np.flatnonzero(removed), OFFSETS_3D)
    direct = spsolve(a.tocsc(), rhs)
    out = impute_one(img, removed, np.random.default_rng(0), noise_sd=0.0)
    assert removed.sum() > 1500 and np.allclose(out[removed], direct, atol=1e-8, rtol=0)


def test_a_linear_field_is_its_own_imputation_and_all_removed_is_noise():
    z, y, x = np.indices((12, 12, 12)).astype(float)
    ramp = 0.1 * z - 0.05 * y + 0.02 * x
    removed = np.zeros(ramp.shape, bool)
    removed[3:9, 2:10, 4:8] = True
    assert np.allclose(impute_one(ramp, removed, np.random.default_rng(0), noise_sd=0.0), ramp, atol=1e-8)
    everything = impute_one(ramp, np.ones(ramp.shape, bool), np.random.default_rng(0))
    assert np.isfinite(everything).all() and np.abs(everything).max() < 0.06  # no boundary: 0 plus noise


def test_batched_volumes_and_bad_shapes():
    rng = np.random.default_rng(2)
    x = torch.as_tensor(rng.random((2, 1, 8, 9, 10)), dtype=torch.float32)
    rm = torch.as_tensor(rng.random((2, 1, 8, 9, 10)) < 0.3)
    out = road_impute(x, rm, seed=4)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(out[~rm], x[~rm]) and not torch.equal(out[rm], x[rm])
    with pytest.raises(ValueError, match="ROAD imputes"):
        impute_one(np.zeros((2, 3, 4, 5)), np.zeros((2, 3, 4, 5), bool), np.random.default_rng(0))
