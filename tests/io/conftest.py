"""Shared fixtures for the io tests: a small synthetic HU volume."""

from __future__ import annotations

import numpy as np
import pytest


def synthetic_hu(shape: tuple[int, int, int] = (5, 48, 64), seed: int = 0) -> np.ndarray:
    """Integer-valued float32 HU with structure (a disc brighter per slice) and noise.

    Includes values below -1024 (air + noise) to exercise signed storage.
    """
    rng = np.random.default_rng(seed)
    z, h, w = shape
    yy, xx = np.mgrid[:h, :w]
    disc = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (min(h, w) / 3) ** 2
    hu = np.full(shape, -1000.0, dtype=np.float32)
    for k in range(z):
        hu[k][disc] = 40.0 + 100.0 * k
    hu += rng.integers(-60, 61, shape)
    hu[:, 0, 0] = -1100.0
    hu[:, 0, 1] = 2000.0
    return hu.astype(np.float32)


@pytest.fixture
def hu() -> np.ndarray:
    return synthetic_hu()


@pytest.fixture
def make_hu():
    """Factory: ``make_hu(shape, seed)`` -> synthetic HU volume."""
    return synthetic_hu
