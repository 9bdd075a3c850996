"""Engine properties: IG completeness, determinism, batching, cancelling, clear refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from explain_helpers import rel_l2, small_classifier
from torch import nn

from napari_ctinterp.explain import ExplainCancelled, UnreachableReLUError, explain
from napari_ctinterp.explain.plan import ExplainOptions, make_plan
from napari_ctinterp.metrics import random_map
from napari_ctinterp.model import Classifier, ModelCard


def test_plan_shares_noise_and_igb_inside_igbw():
    all15 = make_plan(ExplainOptions())
    # 16 base inputs (1 clean + 15 noisy) × (BP 1 + IG black 25 + IG white 25 + EG 50 + D 1)
    assert all15.n_base == 16 and all15.total == 16 * 102
    assert make_plan(ExplainOptions(methods=("IGB", "IGBW"), variants=("plain",))).total == 50
    assert make_plan(ExplainOptions(methods=("BP",), variants=("SG", "SG2"))).total == 15


def test_ig_completeness_within_2_percent_at_64_steps(clf, hu):
    x = clf.preprocess(hu)
    for target in (0, 1):
        maps = explain(clf, hu, methods=("IGB",), variants=("plain",), steps=64, target=target)
        with torch.no_grad():
            f = clf.target_score(clf.module(torch.cat([x, torch.zeros_like(x)])), torch.tensor([target] * 2))
        expected = float(f[0] - f[1])
        total = float(maps["IGB", "plain"].sum())  # no resize here: the map is in model space
        assert abs(total - expected) <= 0.02 * abs(expected), (total, expected)


def test_deterministic_and_independent_of_batch_size(clf, hu):
    refs = np.random.default_rng(0).uniform(-1000, 1000, (4, 40, 40)).astype(np.float32)
    kw = dict(methods=("BP", "EG", "D"), variants=("plain", "SG", "SG2"), samples=6, sg_samples=4,
              references=refs, seed=9)
    a = explain(clf, hu, batch_size=32, **kw)
    b = explain(clf, hu, batch_size=32, **kw)
    c = explain(clf, hu, batch_size=3, **kw)
    d = explain(clf, hu, batch_size=32, **{**kw, "seed": 10})
    for key in a:
        assert np.array_equal(a[key], b[key]), key
        assert np.allclose(a[key], c[key], rtol=1e-4, atol=1e-6 * np.abs(a[key]).max()), key
    assert not np.allclose(a["EG", "SG"], d["EG", "SG"])
    assert all(m.dtype == np.float32 and m.shape == hu.shape for m in a.values())
    assert np.all(a["BP", "SG2"] >= 0)


def test_maps_come_back_in_the_slice_geometry(clf):
    hu = np.random.default_rng(2).uniform(-1000, 1000, (100, 80)).astype(np.float32)
    maps = explain(clf, hu, methods=("BP",), variants=("plain",))
    assert maps["BP", "plain"].shape == (100, 80)


def test_progress_reports_and_cancel_between_batches(clf, hu):
    seen = []
    explain(clf, hu, methods=("IGB",), variants=("plain",), steps=10, batch_size=4,
            progress=lambda done, total, phase: seen.append((done, total)))
    # batches of at most 4, evened out over the CPU workers: 3 + 3 + 2 + 2 with two, 4 + 3 + 3 with one
    steps = np.diff([0] + [d for d, _ in seen])
    assert seen[-1] == (10, 10) and all(t == 10 for _, t in seen) and steps.max() <= 4 and steps.min() >= 2
    calls = []

    def stop(done, total, phase):
        calls.append(done)
        return False

    with pytest.raises(ExplainCancelled):
        explain(clf, hu, methods=("IGB",), variants=("plain",), steps=10, batch_size=4, progress=stop)
    assert calls == [seen[0][0]]  # stopped after the first batch


class _FunctionalReLUNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.act = nn.ReLU()
        self.fc = nn.Linear(4, 1)

    def forward(self, x):
        h = F.relu(self.conv(x))  # a ReLU no hook can reach
        return self.fc(self.act(h).mean((2, 3)))


class _ModuleReLUNet(_FunctionalReLUNet):
    """The same network with its functional ReLU made a module (the reference)."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.ReLU()

    def forward(self, x):
        return self.fc(self.act(self.first(self.conv(x))).mean((2, 3)))


def test_deconvolution_reaches_functional_relus(hu):
    """The functional ReLU gets the rule: the map equals that of the same net with a ReLU module
    (whose rule is installed by module hooks; Captum's equality on that path, and on DenseNet-121
    with its functional ReLU, is tested in test_against_captum / test_any_model)."""
    torch.manual_seed(0)
    functional = _FunctionalReLUNet()
    reference = _ModuleReLUNet()
    reference.load_state_dict(functional.state_dict())
    card = ModelCard(input_size=(40, 40))
    ours = explain(Classifier(functional, card, torch.device("cpu"), source="t"), hu, methods=("D",),
                   variants=("plain",), target=1)
    ref = explain(Classifier(reference, card, torch.device("cpu"), source="r"), hu, methods=("D",),
                  variants=("plain",), target=1)
    assert rel_l2(ours["D", "plain"], ref["D", "plain"]) < 1e-6
    # Skipping the functional ReLU (what hooks alone do) would give another map.
    x = Classifier(functional, card, torch.device("cpu")).preprocess(hu).requires_grad_(True)
    from napari_ctinterp.explain.deconv import deconvolution_rule

    with deconvolution_rule(functional):
        (g,) = torch.autograd.grad(functional(x)[0, 0], x)
    assert rel_l2(g[0, 0].numpy(), ref["D", "plain"]) > 1e-3


class _SiLUNet(_FunctionalReLUNet):
    def forward(self, x):
        return self.fc(F.silu(self.conv(x)).mean((2, 3)))


def test_deconvolution_refuses_other_activations_naming_them(hu):
    clf = Classifier(_SiLUNet(), ModelCard(input_size=(40, 40)), torch.device("cpu"), source="t")
    with pytest.raises(UnreachableReLUError, match=r"ReLU networks only; this model uses SiLU \(functional, in"):
        explain(clf, hu, methods=("D",), variants=("plain",))
    maps = explain(clf, hu, methods=("BP",), variants=("plain",))  # other methods are fine
    assert np.isfinite(maps["BP", "plain"]).all()


def test_bad_arguments_get_clear_errors(clf, hu):
    with pytest.raises(ValueError, match=r"unknown method\(s\) \['LRP'\]"):
        explain(clf, hu, methods=("LRP",))
    with pytest.raises(ValueError, match=r"unknown variant\(s\) \['SG3'\]"):
        explain(clf, hu, variants=("SG3",))
    with pytest.raises(ValueError, match="EG needs reference slices"):
        explain(clf, hu, methods=("EG",))
    with pytest.raises(ValueError, match="NaN/inf"):
        explain(clf, np.full((40, 40), np.nan, np.float32), methods=("BP",))
    with pytest.raises(ValueError, match="one slice"):
        explain(clf, np.zeros((2, 40, 40), np.float32), methods=("BP",))


def test_random_map_baseline():
    a, b = random_map((30, 20), seed=1), random_map((30, 20), seed=1)
    assert np.array_equal(a, b) and a.shape == (30, 20) and 0 <= a.min() and a.max() < 1
    assert not np.array_equal(a, random_map((30, 20), seed=2))


def test_accumulation_without_atomics_equals_index_add():
    from napari_ctinterp.explain.gradients import accumulate, sum_by_slot

    gen = torch.Generator().manual_seed(0)
    contribution = torch.randn((9, 1, 5, 6), generator=gen)
    slots = np.array([3, 0, 3, 3, 1, 0, 4, 4, 3])
    a, b = torch.zeros((6, 1, 5, 6)), torch.zeros((6, 1, 5, 6))
    accumulate(a, slots, contribution)  # CPU: index_add_
    sum_by_slot(b, slots, contribution)  # the CUDA path, run here on CPU
    assert torch.allclose(a, b, rtol=1e-6, atol=1e-6) and float(b[2].abs().sum()) == 0.0 and float(b[3].abs().sum()) > 0


@pytest.mark.parametrize("methods, variants", [
    (("GC",), ("plain",)),  # the one batch's forward gives the class
    (("BP", "IGB", "D"), ("plain", "SG")),  # Backprop's clean row, then the rest
    (("IGB",), ("plain",)),  # no row at the input itself: a forward of its own
    (("BP",), ("SG",)),  # no clean input among the bases: a forward of its own
    (("OCC",), ("plain",)),  # occlusion only: a forward of its own
])
def test_the_predicted_class_comes_from_the_engine_forward(methods, variants):
    """The default target is the predicted class, read from the first batch's forward (no forward of
    explain's own where a batch holds the input itself): same class, same maps as the class given."""
    clf = small_classifier(seed=2)
    rng = np.random.default_rng(11)
    slices = rng.uniform(-1000, 1000, (12, 40, 40)).astype(np.float32)
    with torch.no_grad():  # the decision boundary through the middle of these slices: both classes
        clf.module.fc.bias -= clf.logits(clf.preprocess(slices))[:, 0].median()
    seen = set()
    for hu in slices:
        want = int(clf.predicted(clf.logits(clf.preprocess(hu)))[0])
        if want in seen:
            continue
        seen.add(want)
        opts = dict(methods=methods, variants=variants, steps=3, sg_samples=2, seed=1, occ_window=16, occ_stride=16)
        got = explain(clf, hu, **opts)
        given = explain(clf, hu, target=want, **opts)
        assert got.params["predicted"] == want == got.params["target"] == given.params["predicted"]
        assert set(got) == set(given) and len(got)
        for key in given:
            np.testing.assert_array_equal(got[key], given[key])
    assert seen == {0, 1}


def test_grad_cam_alone_costs_one_forward(clf, hu):
    """Grad-CAM plain of the predicted class: one forward (and backward), as MONAI's GradCAM."""
    explain(clf, hu, methods=("GC",), variants=("plain",))  # finds the layer (a forward of its own, cached)
    calls = []
    handle = clf.module.register_forward_hook(lambda *a: calls.append(1))
    try:
        maps = explain(clf, hu, methods=("GC",), variants=("plain",))
    finally:
        handle.remove()
    assert len(calls) == 1 and maps.params["predicted"] == int(clf.predicted(clf.logits(clf.preprocess(hu)))[0])
