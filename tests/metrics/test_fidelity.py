"""Fidelity on a toy model whose decision depends only on a known region."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from napari_ctinterp.metrics import balanced_accuracy, fidelity, fidelity_grid, fidelity_many
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


class CountingModel(nn.Module):
    """A small conv net that counts the images it sees."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4, 1)
        self.seen = 0

    def forward(self, x):
        self.seen += len(x)
        return self.head(torch.relu(self.conv(x)).mean(dim=(2, 3)))


def _materialised(clf, images, maps, labels, step):
    """The protocol written out plainly: every perturbed image of one map stacked, then forwarded."""
    from napari_ctinterp.metrics.fidelity import _fill_images, _ranks

    x = clf.preprocess(images)
    ranks = _ranks(torch.as_tensor(maps)[:, None], 0)
    fills = _fill_images(x, labels, "label", 0, clf)
    n_pix = x[0, 0].numel()
    out = {}
    for name in ("mif", "lif"):
        probs = []
        for p in fidelity_grid(step):
            n_rm = int(round(p / 100 * n_pix))
            removed = ranks < n_rm if name == "mif" else ranks >= n_pix - n_rm
            probs.append(clf.proba(clf.logits(torch.where(removed, fills, x))).numpy())
        out[name] = np.stack(probs, axis=1)  # (N, P, classes)
    return out


def test_fidelity_many_equals_each_map_alone_and_forwards_shared_images_once(toy):
    _, images, labels = toy
    net = CountingModel()
    clf = Classifier(net, ModelCard(input_size=(S, S)), torch.device("cpu"), source="counting")
    rng = np.random.default_rng(3)
    maps = {"a": rng.random(images.shape).astype(np.float32), "b": rng.random(images.shape).astype(np.float32)}
    maps["a again"] = maps["a"].copy()
    net.seen = 0
    many = fidelity_many(clf, images, maps, labels, step=10, bootstrap=10, batch_size=5)
    n, p = len(images), len(fidelity_grid(10))
    # p = 0 and p = 100 once for all maps; "a again" has a's ranking: two distinct maps × 2 curves × 9 p
    assert net.seen == n * 2 + 2 * 2 * (p - 2) * n
    for name, m in maps.items():
        alone = fidelity(clf, images, m, labels, step=10, bootstrap=10, batch_size=7)
        plain = _materialised(clf, images, m, labels, 10)
        got = many[name]
        assert np.array_equal(got.pred_mif, alone.pred_mif) and np.array_equal(got.pred_lif, alone.pred_lif)
        assert np.allclose(got.prob_mif, alone.prob_mif, atol=1e-6) and got.F == alone.F
        pred0 = plain["mif"][:, 0].argmax(1)
        for curve, norm in (("mif", got.prob_mif), ("lif", got.prob_lif)):
            want = plain[curve][np.arange(n), :, pred0] / plain["mif"][np.arange(n), :1, pred0]
            assert np.allclose(norm, want, atol=1e-5), (name, curve)
    assert np.array_equal(many["a"].prob_mif, many["a again"].prob_mif)


def test_road_fill_does_not_depend_on_the_batching(toy):
    clf, images, labels = toy
    m = np.random.default_rng(4).random(images[:3].shape).astype(np.float32)
    a = fidelity(clf, images[:3], m, labels[:3], fill="road", step=25, bootstrap=5, batch_size=2)
    b = fidelity(clf, images[:3], m, labels[:3], fill="road", step=25, bootstrap=5, batch_size=16)
    assert np.array_equal(a.prob_mif, b.prob_mif) and np.array_equal(a.prob_lif, b.prob_lif)


def test_pooled_F_draws_equal_pooled_F_of_each_resample():
    """Each draw is ``pooled_F`` of the resampled slices (a resample missing a class averages the
    classes present, as ``balanced_accuracy`` does)."""
    from napari_ctinterp.metrics import pooled_F, pooled_F_draws

    rng = np.random.default_rng(3)
    n, p = 12, fidelity_grid(10)
    labels = np.array([0] * 6 + [1] * 6)
    mif = rng.integers(0, 2, size=(n, len(p)))
    lif = rng.integers(0, 2, size=(n, len(p)))
    resamples = np.vstack([rng.integers(0, n, size=(40, n)), np.zeros((1, n), int)])  # the last: class 0 only
    draws = pooled_F_draws(mif, lif, labels, p, resamples)
    want = [pooled_F(mif[r], lif[r], labels[r], p)[2] for r in resamples]
    np.testing.assert_allclose(draws, want, atol=1e-12)
    assert np.std(draws) > 0
