"""Fixtures of the explain tests."""

from __future__ import annotations

import numpy as np
import pytest
from explain_helpers import SIZE, small_classifier


@pytest.fixture(scope="module")
def clf():
    return small_classifier()


@pytest.fixture(scope="module")
def hu():
    rng = np.random.default_rng(3)
    return rng.uniform(-1000, 1000, (SIZE, SIZE)).astype(np.float32)
