"""Faithfulness correlation equals Quantus' ``FaithfulnessCorrelation`` with the same subsets, for
several maps of several slices at once (2D), and behaves on known cases (2D, 2.5D, 3D)."""

from __future__ import annotations

import numpy as np
import pytest
import quantus
import torch
from metric_helpers import linear_classifier, resnet18_classifier

from napari_ctinterp.metrics.faithfulness import faithfulness_correlation, faithfulness_inputs, subsets
from napari_ctinterp.model import Classifier, ModelCard, build

N_RUNS, SUBSET = 30, 40


@pytest.fixture(scope="module")
def clf() -> Classifier:
    return resnet18_classifier(48, seed=2)


def _maps(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"noise": rng.normal(size=(n, 48, 48)).astype(np.float32),
            "positive": rng.random((n, 48, 48)).astype(np.float32) ** 3}


def test_equals_quantus_faithfulness_correlation(clf):
    """Quantus ``FaithfulnessCorrelation(nr_runs=30, subset_size=40, perturb_baseline=0.0, abs=False,
    normalise=True)`` — ``perturb_baseline`` set to our fill, the model's black (0: a one-channel card
    without normalisation), where Quantus' ``"black"`` would take the batch's minimum — softmax=False
    (logits, the score the maps explain), ``np.random.seed(seed)`` before the call."""
    x = torch.rand(3, 1, 48, 48)
    targets = np.array([0, 1, 1])
    maps = _maps(3, 0)
    # the maps of a real explanation too: the input gradient of each target
    xg = x.clone().requires_grad_(True)
    clf.target_score(clf.module(xg), torch.as_tensor(targets)).sum().backward()
    maps["gradient"] = xg.grad[:, 0].numpy()
    ours = faithfulness_inputs(clf, x, maps, targets, n_runs=N_RUNS, subset_size=SUBSET, seed=7)
    metric = quantus.FaithfulnessCorrelation(nr_runs=N_RUNS, subset_size=SUBSET, perturb_baseline=0.0, abs=False,
                                             normalise=True, return_aggregate=False, disable_warnings=True)
    for name, a in maps.items():
        np.random.seed(7)
        ref = np.asarray(metric(model=clf.module.eval(), x_batch=x.numpy(), y_batch=targets, a_batch=a[:, None],
                                softmax=False, device="cpu", batch_size=8), float)
        np.testing.assert_allclose(ours[name], ref, atol=1e-4, err_msg=name)
    assert np.isfinite(ours["gradient"]).all()


def test_subsets_are_quantus_draws():
    rng = np.random.RandomState(3)
    expected = [[rng.choice(50, 5, replace=False) for _ in range(2)] for _ in range(4)]  # run, then image
    got = subsets([50, 50], 4, 5, 3)
    for r in range(4):
        for i in range(2):
            np.testing.assert_array_equal(got[i][r], expected[r][i])
    with pytest.raises(ValueError, match="subset_size 60 is larger than the image's 50 pixels"):
        subsets([50], 1, 60, 0)


def test_a_map_that_is_the_models_own_linear_weights_scores_one():
    """For a linear model score = Σ w·x, removing S to 0 drops the score by Σ_S w·x exactly: the map
    w·x (gradient × input) has correlation 1, its negative −1, and a map with no relation to w ≈ 0."""

    lin = linear_classifier(32)
    x = torch.rand(2, 1, 32, 32)
    gx = (lin.module.w * x).detach()[:, 0].numpy()
    other = np.random.default_rng(0).normal(size=gx.shape)
    r = faithfulness_inputs(lin, x, {"gx": gx, "neg": -gx, "other": other}, np.array([1, 1]), n_runs=60,
                            subset_size=100, seed=0)
    np.testing.assert_allclose(r["gx"], 1.0, atol=1e-5)
    np.testing.assert_allclose(r["neg"], -1.0, atol=1e-5)
    assert np.all(np.abs(r["other"]) < 0.4)
    # a constant map's subset sums are all equal: no correlation to speak of
    assert np.isnan(faithfulness_inputs(lin, x[:1], {"flat": np.ones((1, 32, 32))}, np.array([1]), n_runs=10,
                                        subset_size=50)["flat"]).all()


def test_slices_of_the_ct_grid_and_volumes():
    """CT slices (HU, any size) are taken to the model's grid as fidelity takes them; a 3D model's
    volumes draw only the CT's voxels."""
    torch.manual_seed(0)
    card = ModelCard(architecture="resnet18", input_size=(48, 48), output="sigmoid")
    clf = Classifier(build("resnet18", "sigmoid", in_channels=1, n_logits=1), card, torch.device("cpu"),
                     source="test")
    hu = np.random.default_rng(1).uniform(-1000, 1000, (2, 64, 64)).astype(np.float32)
    maps = {"m": np.random.default_rng(2).random((2, 64, 64)).astype(np.float32)}
    r = faithfulness_correlation(clf, hu, maps, np.array([0, 1]), n_runs=12, subset_size=30)
    assert r["m"].shape == (2,) and np.isfinite(r["m"]).all() and np.all(np.abs(r["m"]) <= 1)

    card3 = ModelCard(architecture="ctinterp.CompactCNN3d", spatial_dims=3, input_size=(16, 16, 16),
                      output="softmax", class_names=("a", "b"))
    net = build("ctinterp.CompactCNN3d", "softmax", in_channels=1, n_logits=2, spatial_dims=3)
    c3 = Classifier(net, card3, torch.device("cpu"), source="test")
    vol = np.random.default_rng(3).uniform(-1000, 1000, (1, 16, 16, 16)).astype(np.float32)
    r3 = faithfulness_correlation(c3, vol, {"m": np.abs(vol)}, np.array([1]), n_runs=10, subset_size=20)
    assert r3["m"].shape == (1,) and np.isfinite(r3["m"]).all()


class _Recording(torch.nn.Module):
    """Records every input it sees; a linear score of the sum of its channels."""

    def __init__(self, shape) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(*shape, generator=torch.Generator().manual_seed(0)))
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        s = (x.sum(1, keepdim=True) * self.w).flatten(1).sum(1)
        return torch.stack([-s, s], 1)


def test_only_a_3d_inputs_ct_voxels_and_a_2_5d_inputs_own_channel_are_removed():
    """``valid`` (a 3D input's CT, not its padding): subsets are drawn among those voxels only;
    ``own`` (a 2.5D model's slice among its neighbours): only that channel is set to the fill."""
    card3 = ModelCard(architecture="ctinterp.CompactCNN3d", spatial_dims=3, input_size=(8, 8, 8), output="softmax",
                      class_names=("a", "b"))
    net = _Recording((1, 8, 8, 8))
    c3 = Classifier(net.eval(), card3, torch.device("cpu"), source="test")
    x = torch.rand(1, 1, 8, 8, 8) + 1.0  # nothing equals the fill (0) before removal
    valid = torch.zeros(1, 1, 8, 8, 8, dtype=torch.bool)
    valid[:, :, 2:6] = True  # 4 of 8 slices are the CT's, the rest padding
    m = np.random.default_rng(0).random((1, 8, 8, 8))
    faithfulness_inputs(c3, x, {"m": m}, np.array([1]), valid=valid, n_runs=20, subset_size=50)
    seen = torch.cat(net.seen)
    seen = seen[(seen != 0).flatten(1).any(1)]  # not the runtime's probe of an all-zero input
    removed = seen == 0
    assert len(seen) == 21 and removed.sum() == 20 * 50
    assert not removed[:, :, :2].any() and not removed[:, :, 6:].any()

    w = [-1000, 1000]
    card25 = ModelCard(architecture="resnet18", input_size=(16, 16), output="softmax", class_names=("a", "b"),
                       channels=({"window": w, "slice_offset": -1}, {"window": w}, {"window": w, "slice_offset": 1}))
    net2 = _Recording((1, 1, 16, 16))
    c25 = Classifier(net2.eval(), card25, torch.device("cpu"), source="test")
    vol = np.random.default_rng(1).uniform(-900, 900, (4, 16, 16)).astype(np.float32)
    r = faithfulness_correlation(c25, vol, {"m": np.random.default_rng(2).random((1, 16, 16))}, np.array([1]),
                                 index=[2], n_runs=15, subset_size=20)
    seen = torch.cat(net2.seen)
    seen = seen[(seen != 0).flatten(1).any(1)]  # not the runtime's probe of an all-zero input
    x = c25.preprocess(vol, index=2)
    changed = (seen != x).flatten(2).any(2)  # (images, channels): which channels a subset touched
    assert len(seen) == 16 and changed[:, 1].sum() == 15  # the own slice (channel 1), in every subset's image
    assert not changed[:, 0].any() and not changed[:, 2].any()
    assert np.isfinite(r["m"]).all()
