"""Fidelity on a toy model whose decision depends only on a known region."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from napari_ctinterp.metrics import balanced_accuracy, fidelity, fidelity_grid
from napari_ctinterp.metrics.road import impute_one
from napari_ctinterp.model import Classifier, ModelCard

S = 32
REGION = (slice(8, 16), slice(10, 22))  # 96 of 1024 pixels


class RegionModel(nn.Module):
    """logit = 40 × (mean input over REGION − 0.5): contrast iff the region is bright."""

    def forward(self, x):
        return 40 * (x[:, :, REGION[0], REGION[1]].mean(dim=(2, 3)) - 0.5)


@pytest.fixture(scope="module")
def toy():
    clf = Classifier(RegionModel(), ModelCard(input_size=(S, S)), torch.device("cpu"), source="toy")
    rng = np.random.default_rng(0)
    labels = np.array([1, 0] * 6)
    images = rng.uniform(-800, 800, (12, S, S)).astype(np.float32)
    for img, y in zip(images, labels):
        img[REGION] = 700.0 if y else -700.0  # input 0.85 vs 0.15
    return clf, images, labels


def test_oracle_map_gives_high_F_and_random_map_about_zero(toy):
    clf, images, labels = toy
    oracle = np.zeros_like(images)
    oracle[:, REGION[0], REGION[1]] = 1.0
    oracle += 1e-3 * np.random.default_rng(1).random(images.shape)
    good = fidelity(clf, images, oracle, labels)
    assert good.mif[0] == 1.0 and good.lif[0] == 1.0
    assert good.mif[4] == 0.0  # 10 % removed: the whole region is filled, every slice flips
    assert good.lif[-5] == 1.0  # 90 % removed least-important-first: the region is untouched
    assert good.F > 0.7 and good.F_continuous > 0.7
    lo, hi = good.F_continuous_ci
    assert lo <= good.F_continuous <= hi
    rand = fidelity(clf, images, np.random.default_rng(2).random(images.shape), labels)
    assert abs(rand.F) < 0.15
    assert rand.F < good.F - 0.5


@pytest.mark.parametrize("fill", ["mean", "blur", "road"])
def test_class_neutral_fills_run_and_rank_the_oracle_first(toy, fill):
    clf, images, labels = toy
    oracle = np.zeros_like(images)
    oracle[:, REGION[0], REGION[1]] = 1.0
    res = fidelity(clf, images[:4], oracle[:4] + 1e-3 * np.random.default_rng(3).random((4, S, S)),
                   labels[:4], fill=fill, step=10, bootstrap=50)
    assert res.fill == fill and res.p.tolist() == list(np.arange(0, 101, 10.0))
    assert res.lif[5] >= res.mif[5]


def test_grid_balanced_accuracy_and_errors(toy):
    clf, images, labels = toy
    assert fidelity_grid().tolist()[:3] == [0.0, 2.5, 5.0] and len(fidelity_grid()) == 41
    assert balanced_accuracy(np.array([1, 1, 1, 0]), np.array([1, 1, 0, 0])) == 0.75
    with pytest.raises(ValueError, match="same slices"):
        fidelity(clf, images, images[:3], labels)
    bad = np.zeros_like(images)
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fidelity(clf, images, bad, labels)


def test_road_imputation_solves_the_neighbour_system():
    img = np.tile(np.linspace(0, 1, 20), (20, 1))
    removed = np.zeros((20, 20), bool)
    removed[5:15, 5:15] = True
    out = impute_one(img, removed, np.random.default_rng(0), noise_sd=0.0)
    assert np.allclose(out, img, atol=1e-6)  # a linear ramp is its own neighbour average
    assert np.array_equal(out[~removed], img[~removed])
