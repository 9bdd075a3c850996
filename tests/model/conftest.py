"""Shared fixture of the model tests: 200 fresh held-out phantom slices, made once per session.

Test-range seeds (never trained on, nor used to choose an epoch or fit the domain statistics),
offset from the cards' own evaluation; both classes, every phase (50 each: no contrast, arterial,
pulmonary, venous), random levels. Making them is most of the acceptance tests' time, so the
accuracy and out-of-domain tests of both demo models share one set.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from napari_ctinterp.model.datasets import phantom_spec, spec_hu

FRESH_SEED = 4242


@pytest.fixture(scope="session")
def fresh_phantom() -> tuple[list[dict], np.ndarray]:
    """(specs, HU (200, 512, 512) float32) of 200 fresh phase-balanced phantom slices."""
    specs = phantom_spec("test", 200, FRESH_SEED, task="phase")
    with ProcessPoolExecutor(2) as ex:
        return specs, np.stack(list(ex.map(spec_hu, specs, chunksize=8)))
