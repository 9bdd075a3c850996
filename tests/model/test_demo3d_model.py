"""The bundled 3D demo (``model.load("demo-3d")``): a compact 3D CNN of the whole volume, contrast
phase; ≥ 95 % per class on 60 fresh phantom volumes; its card, EG reference volumes and family."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from napari_ctinterp.model import default_references, family_of, load
from napari_ctinterp.model.datasets import label_of
from napari_ctinterp.model.volume_data import spec_hu_volume, volume_spec


@pytest.fixture(scope="module")
def demo3d():
    return load("demo-3d", device="cpu")


def test_the_3d_demo_is_right_on_fresh_volumes_of_every_phase(demo3d):
    specs = volume_spec("test", 60, seed=4242, task="phase")  # 15 per class, fresh seeds
    with ProcessPoolExecutor(2) as pool:
        volumes = list(pool.map(spec_hu_volume, specs))
    predicted = np.array([int(np.argmax(demo3d.predict_proba(v))) for v in volumes])
    truth = np.array([label_of(s, "phase") for s in specs])
    per_class = {demo3d.class_names[c]: float((predicted[truth == c] == c).mean()) for c in range(4)}
    assert all(n == 15 for n in np.bincount(truth)) and min(per_class.values()) >= 0.95, per_class


def test_the_3d_demo_card_family_and_references(demo3d):
    card = demo3d.card
    assert card.is_3d and card.input_size == (32, 64, 64) and card.spacing_mm is None
    assert card.class_names == ("no contrast", "arterial", "pulmonary", "venous") and card.kind == "softmax"
    assert card.accuracy["held_out"] >= 0.97 and min(card.accuracy["held_out_by_group"].values()) >= 0.97
    assert family_of(demo3d).name == "ctinterp-compact3d" and family_of(demo3d.module).name == "ctinterp-compact3d"
    refs, source = default_references(demo3d)
    assert refs.shape == (8, 32, 64, 64) and refs.dtype == np.float32 and source == "demo set (8 phantom volumes)"


def test_the_3d_demo_knows_its_domain(demo3d):
    specs = volume_spec("test", 4, seed=99, task="phase")
    assert all(demo3d.domain_check(spec_hu_volume(s)).in_domain for s in specs)
    noise = np.random.default_rng(0).uniform(-1000, 1000, (20, 96, 96)).astype(np.float32)
    assert demo3d.domain_check(noise).in_domain is False
