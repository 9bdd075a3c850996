"""The shortcut demo reads the marker, the bundled demo ignores it — verified by intervention on
400 fresh phantom slices (test seed range, never trained on): shown with and without a marker,
with the marker moved and removed (``metrics.shortcut_check``)."""

from __future__ import annotations

import pytest

from napari_ctinterp.metrics.shortcut_check import interventions, marker_slices
from napari_ctinterp.model import load

N = 400


@pytest.fixture(scope="module")
def slices():
    return marker_slices(N, seed=2026, workers=2)


def test_demo_shortcut_follows_the_marker_and_falls_to_chance_without_it(slices):
    r = interventions(load("demo-shortcut"), slices)
    assert r.n == N
    assert r.follows_marker >= 0.98, r  # where marker and contrast disagree, the marker wins
    assert min(r.by_kind.values()) >= 0.95, r.by_kind  # every kind of marker is read
    assert 0.40 <= r.accuracy_marker_removed <= 0.60, r  # no marker: no better than a coin at the contrast
    assert r.changed_by_removing >= 0.95, r  # removing the marker flips its answer


def test_the_bundled_demo_does_not_care_about_the_marker(slices):
    r = interventions(load("demo"), slices)
    assert max(r.changed_by_adding, r.changed_by_moving, r.changed_by_removing) <= 0.01, r
    assert r.accuracy_disagreeing >= 0.95, r  # it answers by the contrast


def test_every_demo_fits_a_pypi_wheel():
    """PyPI takes wheels up to 100 MB: the package data (every demo's weights, cards, references,
    domain statistics) stays under 90 MB uncompressed (the wheel is smaller still)."""
    from napari_ctinterp.model import DEMOS, demo_weights_path

    weights = demo_weights_path("demo").parent
    assert all(demo_weights_path(d).exists() for d in DEMOS)
    assert sum(f.stat().st_size for f in weights.iterdir()) < 90e6
