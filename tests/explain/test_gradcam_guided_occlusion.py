"""GC, GBP, GGC and OCC equal Captum's LayerGradCam + interpolate, GuidedBackprop, GuidedGradCam and
Occlusion (same layer, window, stride and baseline); their SG variants equal NoiseTunnel."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import GuidedBackprop, GuidedGradCam, LayerAttribution, LayerGradCam, NoiseTunnel, Occlusion
from captum.attr._utils.attribution import GradientAttribution
from explain_helpers import TwoClassScores, rel_l2
from test_any_model import Scores, _relus_as_modules, make

from napari_ctinterp.explain import ExplainOptions, GradCamLayerError, UnreachableReLUError, explain, explain_targets
from napari_ctinterp.explain.engine import noisy_copies
from napari_ctinterp.model import Classifier, ModelCard, build

TOL = 1e-4
EXTRA = ("GC", "GBP", "GGC", "OCC")


def _captum(f, layer, x, target, window=16, stride=8, baseline=0.0, per_eval=1):
    c, h, w = x.shape[1:]
    gc = LayerAttribution.interpolate(LayerGradCam(f, layer).attribute(x, target=target, relu_attributions=True),
                                      (h, w), "bilinear")
    return {"GC": gc[0, 0],
            "GBP": GuidedBackprop(f).attribute(x, target=target)[0].sum(0),
            "GGC": GuidedGradCam(f, layer).attribute(x, target=target, interpolate_mode="bilinear")[0].sum(0),
            "OCC": Occlusion(f).attribute(x, target=target, sliding_window_shapes=(c, window, window),
                                          strides=(c, stride, stride), baselines=baseline,
                                          perturbations_per_eval=per_eval)[0, 0]}


def _check(ours, ref, label):
    for m, r in ref.items():
        r = r.detach().numpy()
        assert np.linalg.norm(r) > 0, f"{label} {m}: the reference map is zero (nothing compared)"
        err = rel_l2(ours[m, "plain"], r)
        assert err < TOL, f"{label} {m}: relative L2 {err:.2e}"


def test_small_resnet18_equals_captum(clf, hu):
    # (40 px: layer4 is 2 × 2; for class 1 Grad-CAM is negative everywhere, ReLU'd to 0; class 0 is its opposite)
    ours = explain(clf, hu, methods=("BP", *EXTRA), variants=("plain",), target=0)
    assert ours.params["gc_layer"] == "layer4" and ours.params["occ_window"] == 16
    _check(ours, _captum(TwoClassScores(clf), clf.module.layer4, clf.preprocess(hu).contiguous(), 0), "resnet18")
    # Grad-CAM's map is its signed map after the ReLU
    assert (ours["GC", "plain"] >= 0).all() and np.abs(ours.gc_signed["GC", "plain"]).max() > 0
    # Grad-CAM of class 1 is the opposite of class 0's before the ReLU (one logit: score = ∓z)
    other = explain(clf, hu, methods=("GC",), variants=("plain",), target=1)
    np.testing.assert_allclose(other.gc_signed["GC", "plain"], -ours.gc_signed["GC", "plain"], atol=1e-6)


def test_gc_layer_is_chosen_by_name(clf, hu):
    ours = explain(clf, hu, methods=("GC",), variants=("plain",), target=0, gc_layer="layer3")
    x = clf.preprocess(hu).contiguous()
    ref = LayerAttribution.interpolate(
        LayerGradCam(TwoClassScores(clf), clf.module.layer3).attribute(x, target=0, relu_attributions=True),
        x.shape[-2:], "bilinear")
    assert ours.params["gc_layer"] == "layer3"
    assert rel_l2(ours["GC", "plain"], ref[0, 0].detach().numpy()) < TOL
    with pytest.raises(GradCamLayerError, match="'layer9' is not a module of this model; e.g. conv1, bn1"):
        explain(clf, hu, methods=("GC",), variants=("plain",), gc_layer="layer9")


def test_occlusion_label_fill_and_another_window_equal_captum(clf, hu):
    ours = explain(clf, hu, methods=("OCC",), variants=("plain",), target=0, occ_window=12, occ_stride=5,
                   occ_fill="label")
    x = clf.preprocess(hu).contiguous()  # 40 px: windows at 0, 5, …, 30 (the last cut at the edge)
    ref = Occlusion(TwoClassScores(clf)).attribute(x, target=0, sliding_window_shapes=(1, 12, 12),
                                                   strides=(1, 5, 5), baselines=1.0)  # class 0: white
    assert rel_l2(ours["OCC", "plain"], ref[0, 0].numpy()) < TOL
    assert ours.params["occ_fill"] == "label"


@pytest.fixture(scope="module")
def hu64() -> np.ndarray:
    return np.random.default_rng(3).uniform(-1000, 1000, (64, 64)).astype(np.float32)


def test_resnet50_and_densenet121_equal_captum(hu64):
    hu = hu64
    r50 = make_resnet50()
    _check(explain(r50, hu, methods=EXTRA, variants=("plain",), target=1),
           _captum(Scores(r50), r50.module.layer4, r50.preprocess(hu).contiguous(), 1), "resnet50")
    dn = make("densenet121-3ch-4cls")
    ours = explain(dn, hu, methods=EXTRA, variants=("plain",), target=1)  # GC > 0 in one of its 2 × 2 cells
    assert ours.params["gc_layer"] == "features"
    x = dn.preprocess(hu).contiguous()
    ref = _captum(Scores(dn), dn.module.features, x, 1, baseline=dn.baseline(0.0).expand_as(x))
    # Captum's GuidedBackprop leaves torchvision DenseNet's final functional ReLU with the ordinary
    # rule; the same network with that ReLU a module is what our rule computes
    import copy

    fixed = Classifier(_relus_as_modules(copy.deepcopy(dn.module)), dn.card, torch.device("cpu"))
    ref["GBP"] = GuidedBackprop(Scores(fixed)).attribute(x, target=1)[0].sum(0)
    ref["GGC"] = GuidedGradCam(Scores(fixed), fixed.module.features).attribute(
        x, target=1, interpolate_mode="bilinear")[0].sum(0)
    _check(ours, ref, "densenet121")


def make_resnet50() -> Classifier:
    from explain_helpers import randomise_batchnorm

    torch.manual_seed(4)
    card = ModelCard(architecture="resnet50", input_size=(64, 64), output="sigmoid")
    return Classifier(randomise_batchnorm(build("resnet50", "sigmoid")), card, torch.device("cpu"), source="test")


class UpsampledGradCam(GradientAttribution):
    """Captum's LayerGradCam + interpolate (bilinear) as one attribution, for NoiseTunnel."""

    def __init__(self, f, layer) -> None:
        super().__init__(f)
        self.gc = LayerGradCam(f, layer)

    def attribute(self, inputs, target=None):
        a = self.gc.attribute(inputs, target=target, relu_attributions=True)
        return LayerAttribution.interpolate(a, tuple(inputs.shape[-2:]), "bilinear")

    attribute.__wrapped__ = attribute  # NoiseTunnel calls the undecorated method


class BilinearGuidedGradCam(GradientAttribution):
    def __init__(self, f, layer) -> None:
        super().__init__(f)
        self.ggc = GuidedGradCam(f, layer)

    def attribute(self, inputs, target=None):
        return self.ggc.attribute(inputs, target=target, interpolate_mode="bilinear")

    attribute.__wrapped__ = attribute


def test_sg_and_sg2_of_gc_gbp_ggc_equal_noise_tunnel_with_the_same_noise(clf, hu, monkeypatch):
    opts = ExplainOptions(methods=("BP", "GC", "GBP", "GGC"), variants=("SG", "SG2"), sg_samples=5, seed=7)
    x = clf.preprocess(hu).contiguous()
    noise = noisy_copies(x, opts) - x
    ours = explain(clf, hu, methods=opts.methods, variants=opts.variants, sg_samples=5, seed=7, target=1)
    monkeypatch.setattr(torch, "normal", lambda mean, std: noise.clone())
    f = TwoClassScores(clf)
    sigma = 0.15 * float(x.max() - x.min())
    for m, method in (("GC", UpsampledGradCam(f, clf.module.layer4)), ("GBP", GuidedBackprop(f)),
                      ("GGC", BilinearGuidedGradCam(f, clf.module.layer4))):
        for v, nt_type in (("SG", "smoothgrad"), ("SG2", "smoothgrad_sq")):
            ref = NoiseTunnel(method).attribute(x, nt_type=nt_type, nt_samples=5, stdevs=sigma, target=1)
            err = rel_l2(ours[m, v], ref[0, 0].detach().numpy())
            assert err < TOL, f"{m} {v}: relative L2 {err:.2e}"


def test_bp_shares_grad_cams_evaluations(clf, hu):
    """One forward and one backward serve BP and GC of the same input: the plan has no BP rows."""
    from napari_ctinterp.explain.plan import KINDS, make_plan

    both = make_plan(ExplainOptions(methods=("BP", "GC", "GBP", "GGC"), variants=("plain", "SG"), sg_samples=4))
    assert both.total == 2 * 5 and KINDS.index("BP") not in set(both.kind.tolist())
    alone = explain(clf, hu, methods=("BP",), variants=("plain",), target=1)
    shared = explain(clf, hu, methods=("BP", "GC"), variants=("plain",), target=1)
    assert rel_l2(shared["BP", "plain"], alone["BP", "plain"]) < 1e-5


def test_occ_is_plain_only_and_said_so(clf, hu):
    maps = explain(clf, hu, methods=("BP", "OCC"), variants=("plain", "SG"), sg_samples=2, target=1)
    assert ("OCC", "plain") in maps and ("OCC", "SG") not in maps and ("BP", "SG") in maps
    assert maps.params["not_computed"] == ["OCC SG"]
    with pytest.raises(ValueError, match="OCC has no SmoothGrad variant"):
        explain(clf, hu, methods=("OCC",), variants=("SG",))
    with pytest.raises(ValueError, match="occ_stride"):
        explain(clf, hu, methods=("OCC",), variants=("plain",), occ_window=4, occ_stride=8)


def test_several_targets_share_the_occlusion_forwards(clf, hu):
    both = explain_targets(clf, hu, [0, 1], methods=("GC", "OCC"), variants=("plain",))
    for t, name in enumerate(clf.class_names):
        one = explain(clf, hu, methods=("GC", "OCC"), variants=("plain",), target=t)
        for key in one:
            assert rel_l2(both[name][key], one[key]) < 1e-5, (name, key)


def test_guided_backprop_is_refused_on_silu_and_gc_runs_on_any_family(hu64):
    hu = hu64
    eff = make("efficientnet_b0-3ch-4cls")
    with pytest.raises(UnreachableReLUError, match=r"Guided Backprop is defined for ReLU networks only; this model "
                                                   r"uses SiLU .*Leave GBP, GGC out"):
        explain(eff, hu, methods=("GBP", "GGC"), variants=("plain",), target=1)
    for case, layer in (("efficientnet_b0-3ch-4cls", "features.8"), ("convnext_tiny-3ch-2cls", "features.7"),
                        ("vit-1ch-4cls", "encoder.layers.encoder_layer_11.ln_1"),
                        ("monai.DenseNet121-1ch-2cls", "features")):
        m = make(case)
        if case.startswith("vit"):  # torchvision starts a ViT's head at zero: no gradient reaches anything
            torch.nn.init.normal_(m.module.heads.head.weight, std=0.02, generator=torch.Generator().manual_seed(0))
        maps = explain(m, hu, methods=("GC",), variants=("plain",), target=1)
        assert maps.params["gc_layer"] == layer, case
        gc, pre = maps["GC", "plain"], maps.gc_signed["GC", "plain"]
        assert gc.shape == hu.shape and np.isfinite(gc).all() and (gc >= 0).all(), case
        # the target score's gradient reaches the layer: Grad-CAM before its ReLU is not zero, and
        # the map is its positive part (upsampling and ReLU commute only roughly, so not exactly)
        assert np.abs(pre).max() > 1e-3 * np.abs(pre).mean() > 0 and (gc.max() > 0) == (pre.max() > 0), case
    # ViT: a block named by the user gets the token reshape too; its output block reaches the head
    # through the class token only (all-zero Grad-CAM), which is why the default is the input norm
    vit = make("vit-1ch-4cls")
    torch.nn.init.normal_(vit.module.heads.head.weight, std=0.02, generator=torch.Generator().manual_seed(0))
    named = explain(vit, hu, methods=("GC",), variants=("plain",), target=1, gc_layer="encoder.layers.encoder_layer_10")
    assert np.abs(named.gc_signed["GC", "plain"]).max() > 0
    last = explain(vit, hu, methods=("GC",), variants=("plain",), target=1, gc_layer="encoder.layers.encoder_layer_11")
    assert np.abs(last.gc_signed["GC", "plain"]).max() == 0


def test_demo_model_equals_captum_on_the_sample_slice():
    """The shipped model at 256² (8 × 8 layer4 grid), the engine's batches and workers included
    (occlusion at stride 16 here: 256 windows instead of 961; stride 8 is compared on the small net)."""
    from napari_ctinterp.model import load
    from napari_ctinterp.phantom import make_slice

    demo = load("demo", device="cpu")
    hu = make_slice(2024, contrast=True, phase="arterial", level=0.58).hu
    target = int(demo.predict(hu) >= 0.5)
    ours = explain(demo, hu, methods=EXTRA, variants=("plain",), target=target, occ_stride=16)
    x = demo.preprocess(hu).contiguous()
    ref = _captum(TwoClassScores(demo), demo.module.layer4, x, target, stride=16, per_eval=16)
    for m, r in ref.items():  # the maps come back in the slice's geometry (512²): compare there
        r_slice = torch.nn.functional.interpolate(r.detach()[None, None], size=hu.shape, mode="bilinear",
                                                  align_corners=False)
        err = rel_l2(ours[m, "plain"], r_slice[0, 0].numpy())
        assert np.abs(r_slice).max() > 0 and err < TOL, f"demo {m}: relative L2 {err:.2e}"


def test_the_paper_methods_allocate_no_accumulators_for_the_new_ones():
    from napari_ctinterp.explain.plan import make_plan

    def n(methods):
        return make_plan(ExplainOptions(methods=methods)).n_accumulators

    assert n(("BP", "IGB", "IGBW", "EG", "D")) == 5 and n(("BP",)) == 1
    assert n(("GBP",)) == 6 and n(("GC",)) == 8 and n(("BP", "GC")) == 8


def test_gc_gbp_ggc_over_a_volume_equal_each_slice_alone(clf):
    # explain_volume: each slice its own class in one plan, Grad-CAM rows included
    from napari_ctinterp.explain import explain_volume

    vol = np.random.default_rng(5).uniform(-1000, 1000, (4, 40, 40)).astype(np.float32)
    kw = dict(methods=("BP", "GC", "GBP", "GGC"), variants=("plain", "SG"), sg_samples=2, seed=3)
    res = explain_volume(clf, vol, slices=[0, 2, 3], batch_size=3, **kw)
    assert res.params["gc_layer"] == "layer4" and len(set(res.params["targets"])) >= 1
    for k, t in zip([0, 2, 3], res.params["targets"]):
        one = explain(clf, vol[k], target=t, **kw)
        for key in one:
            assert rel_l2(res[key][k], one[key]) < 1e-5, (k, key)
    with pytest.raises(ValueError, match="OCC \\(occlusion\\) is computed one slice at a time"):
        explain_volume(clf, vol, slices=[0, 1], methods=("OCC",), variants=("plain",))
