"""The engine equals Captum (the reference implementation) for the same settings and draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import Deconvolution, GradientShap, IntegratedGradients, NoiseTunnel, Saliency
from explain_helpers import TwoClassScores, rel_l2, small_classifier

from napari_ctinterp.explain import explain
from napari_ctinterp.explain.engine import noisy_copies
from napari_ctinterp.explain.plan import ExplainOptions, draw_expected_gradients

TOL = 1e-4


def _x(clf, hu):
    return clf.preprocess(hu).contiguous()


@pytest.mark.parametrize("target", [0, 1])
def test_bp_igb_igbw_d_equal_captum(clf, hu, target):
    ours = explain(clf, hu, methods=("BP", "IGB", "IGBW", "D"), variants=("plain",), target=target, steps=25)
    f = TwoClassScores(clf)
    x = _x(clf, hu)
    ref = {
        "BP": Saliency(f).attribute(x, target=target, abs=False),
        "IGB": IntegratedGradients(f).attribute(x, baselines=0.0, target=target, n_steps=25),
        "IGBW": 0.5 * (IntegratedGradients(f).attribute(x, baselines=0.0, target=target, n_steps=25)
                       + IntegratedGradients(f).attribute(x, baselines=1.0, target=target, n_steps=25)),
        "D": Deconvolution(f).attribute(x, target=target),
    }
    for m, r in ref.items():
        err = rel_l2(ours[m, "plain"], r[0, 0].detach().numpy())
        assert err < TOL, f"{m}: relative L2 {err:.2e}"
    assert ours.params["target"] == target and ours.params["steps"] == 25


def test_sg_and_sg2_equal_noise_tunnel_with_the_same_noise(clf, hu, monkeypatch):
    opts = ExplainOptions(methods=("BP", "IGB"), variants=("SG", "SG2"), sg_samples=6, steps=8, seed=5)
    x = _x(clf, hu)
    noise = noisy_copies(x, opts) - x
    ours = explain(clf, hu, methods=opts.methods, variants=opts.variants, sg_samples=6, steps=8, seed=5, target=1)
    monkeypatch.setattr(torch, "normal", lambda mean, std: noise.clone())
    f = TwoClassScores(clf)
    sigma = 0.15 * float(x.max() - x.min())
    for m, method in (("BP", Saliency(f)), ("IGB", IntegratedGradients(f))):
        kw = {"abs": False} if m == "BP" else {"baselines": 0.0, "n_steps": 8}
        for v, nt_type in (("SG", "smoothgrad"), ("SG2", "smoothgrad_sq")):
            ref = NoiseTunnel(method).attribute(x, nt_type=nt_type, nt_samples=6, stdevs=sigma, target=1, **kw)
            err = rel_l2(ours[m, v], ref[0, 0].detach().numpy())
            assert err < TOL, f"{m} {v}: relative L2 {err:.2e}"


def test_eg_equals_gradient_shap_given_the_same_baselines_and_alphas(clf, hu, monkeypatch):
    rng = np.random.default_rng(1)
    refs_hu = rng.uniform(-1000, 1000, (5, 40, 40)).astype(np.float32)
    samples, seed = 12, 3
    ours = explain(clf, hu, methods=("EG",), variants=("plain",), samples=samples, seed=seed,
                   references=refs_hu, target=1)
    idx, alpha = draw_expected_gradients(seed, 1, samples, len(refs_hu))
    monkeypatch.setattr(np.random, "choice", lambda n, size: idx[0].copy())
    monkeypatch.setattr(np.random, "uniform", lambda lo, hi, size: alpha[0][:size].copy())
    ref = GradientShap(TwoClassScores(clf)).attribute(_x(clf, hu), baselines=clf.preprocess(refs_hu).contiguous(),
                                                      n_samples=samples, stdevs=0.0, target=1)
    err = rel_l2(ours["EG", "plain"], ref[0, 0].detach().numpy())
    assert err < TOL, f"EG: relative L2 {err:.2e}"


def test_softmax_models_explain_the_chosen_logit(hu):
    two = small_classifier("softmax2", seed=2)
    f = TwoClassScores(two)
    ours = explain(two, hu, methods=("BP",), variants=("plain",), target=0)
    ref = Saliency(f).attribute(_x(two, hu), target=0, abs=False)
    assert rel_l2(ours["BP", "plain"], ref[0, 0].numpy()) < TOL


def test_demo_model_equals_captum_on_the_sample_slice():
    """The shipped model at 256², the engine's batches and fast backward included."""
    from napari_ctinterp.model import load
    from napari_ctinterp.phantom import make_slice

    demo = load("demo", device="cpu")
    hu = make_slice(2024, contrast=True, phase="arterial", level=0.58).hu
    target = int(demo.predict(hu) >= 0.5)
    ours = explain(demo, hu, methods=("BP", "IGB", "IGBW", "D"), variants=("plain",), steps=25, target=target)
    f = TwoClassScores(demo)
    x = _x(demo, hu)
    ig_b = IntegratedGradients(f).attribute(x, baselines=0.0, target=target, n_steps=25)
    ref = {
        "BP": Saliency(f).attribute(x, target=target, abs=False),
        "IGB": ig_b,
        "IGBW": 0.5 * (ig_b + IntegratedGradients(f).attribute(x, baselines=1.0, target=target, n_steps=25)),
        "D": Deconvolution(f).attribute(x, target=target),
    }
    for m, r in ref.items():
        # the maps come back in the slice's geometry; compare in model space (the demo slice is 512²)
        r_slice = torch.nn.functional.interpolate(r.detach(), size=hu.shape, mode="bilinear", align_corners=False)
        err = rel_l2(ours[m, "plain"], r_slice[0, 0].numpy())
        assert err < TOL, f"{m}: relative L2 {err:.2e}"
