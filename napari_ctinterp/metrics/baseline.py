"""The random baseline map every study scores beside the methods (the paper's uniform random map)."""

from __future__ import annotations

import numpy as np


def random_map(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """The random baseline: i.i.d. U(0, 1) values (float32), fixed by ``seed``."""
    return np.random.default_rng([int(seed), 0xBA5E]).uniform(0, 1, size=shape).astype(np.float32)
