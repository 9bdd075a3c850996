"""Every architecture of the card, 1 or 3 channels, 2 or 4 classes: the engine equals Captum.

Small random-weight models at 64 px (CI stays fast); the map compared is the engine's model-space
map, the sum over input channels of Captum's per-channel attribution."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import GradientShap, IntegratedGradients, Saliency
from explain_helpers import randomise_batchnorm, rel_l2
from torch import nn

from napari_ctinterp.explain import explain, explain_targets
from napari_ctinterp.explain.engine import noisy_copies
from napari_ctinterp.explain.plan import ExplainOptions, draw_expected_gradients
from napari_ctinterp.model import Classifier, ModelCard, build

TOL = 1e-4
S = 64
WINDOWS = ({"window": [-1000, 400]}, {"window": [-160, 240]}, {"window": [-500, 1300]})
IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
PHASES = ("no contrast", "arterial", "pulmonary", "venous")

CASES = {
    "resnet18-1ch-2cls": dict(architecture="resnet18", output="sigmoid"),
    "densenet121-3ch-4cls": dict(architecture="densenet121", output="softmax", class_names=PHASES,
                                 channels=WINDOWS, normalize=IMAGENET),
    "efficientnet_b0-3ch-4cls": dict(architecture="efficientnet_b0", output="softmax", class_names=PHASES,
                                     channels=WINDOWS, normalize=IMAGENET),
    "densenet121-1ch-2cls": dict(architecture="densenet121", output="softmax"),
    "convnext_tiny-3ch-2cls": dict(architecture="convnext_tiny", output="softmax", channels=WINDOWS),
    "vit-1ch-4cls": dict(architecture="vit_b_32", architecture_args={"image_size": S},
                         output="softmax", class_names=PHASES),
    # MONAI (the optional extra `monai`, part of `testing`): spatial_dims 2 from the project's code
    "monai.DenseNet121-3ch-4cls": dict(architecture="monai.DenseNet121", output="softmax", class_names=PHASES,
                                       channels=WINDOWS, normalize=IMAGENET),
    "monai.DenseNet121-1ch-2cls": dict(architecture="monai.DenseNet121", output="sigmoid"),
}


def make(case: str, seed: int = 0) -> Classifier:
    card = ModelCard(input_size=(S, S), **CASES[case])
    torch.manual_seed(seed)
    net = build(card.architecture, card.output, in_channels=card.in_channels, n_logits=card.n_logits,
                architecture_args=card.architecture_args)
    return Classifier(randomise_batchnorm(net), card, torch.device("cpu"), source="test")


class Scores(nn.Module):
    """Captum's view: column c = the score the engine explains for class c."""

    def __init__(self, clf: Classifier) -> None:
        super().__init__()
        self.clf, self.net = clf, clf.module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net(x)
        return torch.stack([self.clf.target_score(logits, torch.full((len(x),), c))
                            for c in range(self.clf.card.n_classes)], 1)


@pytest.fixture(scope="module")
def hu() -> np.ndarray:
    return np.random.default_rng(3).uniform(-1000, 1000, (S, S)).astype(np.float32)


def _channel_sum(a: torch.Tensor) -> np.ndarray:
    return a[0].sum(0).detach().numpy()


@pytest.mark.parametrize("case", list(CASES))
def test_bp_igb_igbw_equal_captum_for_a_named_target(case, hu):
    clf = make(case)
    target = clf.class_names[-1]
    t = clf.class_names.index(target)
    ours = explain(clf, hu, methods=("BP", "IGB", "IGBW"), variants=("plain",), target=target, steps=8)
    assert ours.params["target"] == t and ours.params["target_name"] == target
    f, x = Scores(clf), clf.preprocess(hu).contiguous()
    black, white = clf.baseline(0.0).expand_as(x), clf.baseline(1.0).expand_as(x)
    ig = IntegratedGradients(f)
    ref = {"BP": Saliency(f).attribute(x, target=t, abs=False),
           "IGB": ig.attribute(x, baselines=black, target=t, n_steps=8),
           "IGBW": 0.5 * (ig.attribute(x, baselines=black, target=t, n_steps=8)
                          + ig.attribute(x, baselines=white, target=t, n_steps=8))}
    for m, r in ref.items():
        err = rel_l2(ours[m, "plain"], _channel_sum(r))
        assert err < TOL, f"{case} {m}: relative L2 {err:.2e}"


@pytest.mark.parametrize("case", ["densenet121-3ch-4cls", "efficientnet_b0-3ch-4cls"])
def test_sg_and_sg2_of_three_window_models_reduce_the_channel_sum(case, hu):
    clf = make(case, seed=1)
    f, x = Scores(clf), clf.preprocess(hu).contiguous()
    opts = ExplainOptions(methods=("BP",), variants=("SG", "SG2"), sg_samples=4, seed=5)
    noise = noisy_copies(x, opts) - x
    ours = explain(clf, hu, methods=("BP",), variants=("SG", "SG2"), sg_samples=4, seed=5, target=2)
    # The SG samples' gradients by plain autograd (NoiseTunnel's equality with the same noise is
    # tested on the one-channel path in test_against_captum): SG is their mean; SG² the mean of the
    # squared channel sums (one map per slice).
    per_sample = []
    for n in noise:
        xi = (x[0] + n)[None].detach().requires_grad_(True)
        (g,) = torch.autograd.grad(f(xi)[0, 2], xi)
        per_sample.append(g[0].sum(0))
    by_hand = torch.stack(per_sample)
    assert rel_l2(ours["BP", "SG"], by_hand.mean(0).numpy()) < TOL
    assert rel_l2(ours["BP", "SG2"], by_hand.pow(2).mean(0).numpy()) < TOL


# DenseNet-121 included: its EG map was 1e-3 (relative L2) from GradientShap's while the EG points
# were formed as r + α(x − r) — one ulp from Captum's α·x + (1 − α)·r, enough to move some points
# across a ReLU / max-pool kink of this net. The engine now rounds as Captum does.
@pytest.mark.parametrize("case", ["densenet121-3ch-4cls", "efficientnet_b0-3ch-4cls", "resnet18-1ch-2cls",
                                  "monai.DenseNet121-3ch-4cls"])
def test_eg_equals_gradient_shap_on_other_models(case, hu, monkeypatch):
    clf = make(case, seed=1)
    f, x = Scores(clf), clf.preprocess(hu).contiguous()
    refs_hu = np.random.default_rng(1).uniform(-1000, 1000, (4, S, S)).astype(np.float32)
    ours = explain(clf, hu, methods=("EG",), variants=("plain",), samples=6, seed=5, references=refs_hu,
                   target=clf.class_names[-1])
    idx, alpha = draw_expected_gradients(5, 1, 6, len(refs_hu))
    monkeypatch.setattr(np.random, "choice", lambda n, size: idx[0].copy())
    monkeypatch.setattr(np.random, "uniform", lambda lo, hi, size: alpha[0][:size].copy())
    ref = GradientShap(f).attribute(x, baselines=clf.preprocess(refs_hu).contiguous(), n_samples=6, stdevs=0.0,
                                    target=clf.card.n_classes - 1)
    assert rel_l2(ours["EG", "plain"], _channel_sum(ref)) < TOL


def test_ig_completeness_holds_for_the_channel_sum(hu):
    clf = make("densenet121-3ch-4cls")
    ours = explain(clf, hu, methods=("IGB",), variants=("plain",), target="venous", steps=64)
    x = clf.preprocess(hu)
    with torch.no_grad():
        f = Scores(clf)
        gap = float(f(x)[0, 3] - f(clf.baseline(0.0).expand_as(x))[0, 3])
    assert abs(float(ours["IGB", "plain"].sum()) - gap) < 0.02 * abs(gap) + 1e-4


def test_target_by_unknown_name_or_index_is_refused(hu):
    clf = make("resnet18-1ch-2cls")
    with pytest.raises(ValueError, match="unknown class 'venous'.*no contrast"):
        explain(clf, hu, methods=("BP",), variants=("plain",), target="venous")
    with pytest.raises(ValueError, match="out of range"):
        explain(clf, hu, methods=("BP",), variants=("plain",), target=2)


def test_torchscript_models_get_every_method_without_hooks_and_a_clear_refusal_for_d(hu, tmp_path):
    from napari_ctinterp.explain.deconv import UnreachableReLUError
    from napari_ctinterp.model import load
    from napari_ctinterp.model.checkpoints import save_checkpoint

    plain = make("resnet18-1ch-2cls")
    path, _ = save_checkpoint(plain.module, tmp_path / "m.ts", plain.card, fmt="torchscript")
    scripted = load(path, device="cpu")
    assert isinstance(scripted.module, torch.jit.ScriptModule)
    ours = explain(scripted, hu, methods=("BP", "IGB"), variants=("plain", "SG"), sg_samples=2, steps=4, target=1)
    ref = explain(plain, hu, methods=("BP", "IGB"), variants=("plain", "SG"), sg_samples=2, steps=4, target=1)
    for key in ref:
        assert rel_l2(ours[key], ref[key]) < TOL, key
    with pytest.raises(UnreachableReLUError, match="TorchScript.*card"):
        explain(scripted, hu, methods=("D",), variants=("plain",))


def _relus_as_modules(net: nn.Module) -> nn.Module:
    """torchvision's DenseNet with its final functional ReLU a module, every ReLU non-inplace."""
    import types

    for m in net.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    net.final_relu = nn.ReLU()

    def forward(self, x):
        out = self.final_relu(self.features(x))
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(out, (1, 1)), 1))

    net.forward = types.MethodType(forward, net)
    return net


def test_deconvolution_on_densenet_reaches_its_functional_relu(hu):
    import copy

    from captum.attr import Deconvolution

    clf = make("densenet121-3ch-4cls")
    reference = _relus_as_modules(copy.deepcopy(clf.module))
    x = clf.preprocess(hu).contiguous()
    ref = Deconvolution(Scores(Classifier(reference, clf.card, torch.device("cpu")))).attribute(x, target=1)
    ours = explain(clf, hu, methods=("D",), variants=("plain",), target=1)
    assert rel_l2(ours["D", "plain"], _channel_sum(ref)) < TOL


def test_deconvolution_on_monai_densenet_equals_captum(hu):
    from captum.attr import Deconvolution

    clf = make("monai.DenseNet121-3ch-4cls")
    ref = Deconvolution(Scores(clf)).attribute(clf.preprocess(hu).contiguous(), target=2)
    ours = explain(clf, hu, methods=("D",), variants=("plain",), target=2)
    assert rel_l2(ours["D", "plain"], _channel_sum(ref)) < TOL


def test_deconvolution_on_efficientnet_is_refused_naming_silu(hu):
    from napari_ctinterp.explain.deconv import UnreachableReLUError

    clf = make("efficientnet_b0-3ch-4cls")
    with pytest.raises(UnreachableReLUError, match=r"ReLU networks only; this model uses SiLU \(features\."):
        explain(clf, hu, methods=("D",), variants=("plain",), target=1)


def test_fidelity_and_the_probe_work_for_four_classes_and_three_windows(hu):
    from napari_ctinterp.metrics import Prober, fidelity

    clf = make("densenet121-3ch-4cls")
    imgs = np.stack([hu, hu[::-1].copy()])
    maps = np.random.default_rng(0).random(imgs.shape).astype(np.float32)
    labels = np.array([3, 1])
    f = fidelity(clf, imgs, maps, labels, step=25, bootstrap=10)
    assert f.mif.shape == f.lif.shape == (5,) and np.isfinite(f.F)
    assert f.pred_mif.max() < 4 and np.allclose(f.prob_mif[:, 0], 1.0)  # P of the first answer, normalised
    with pytest.raises(ValueError, match=r"class indices 0…3"):
        fidelity(clf, imgs, maps, np.array([4, 0]))
    probe = Prober(clf, hu, fill="label")
    res = probe.occlude(np.ones_like(hu, dtype=bool))
    assert len(res.baseline) == len(res.occluded) == 4 and abs(sum(res.occluded) - 1) < 1e-5
    # Everything occluded with the label fill is the uniform black (or white) image of every window.
    fill = clf.baseline(1.0 if probe.label == 0 else 0.0).expand(1, 3, S, S)
    want = clf.proba(clf.logits(fill))[0].numpy()
    np.testing.assert_allclose(res.occluded, want, atol=1e-5)


def test_cascading_randomisation_walks_any_module_tree_from_the_head(hu):
    from napari_ctinterp.metrics import cascading_randomisation
    from napari_ctinterp.model.families import model_stages

    clf = make("efficientnet_b0-3ch-4cls")
    stages = model_stages(clf.module)
    assert stages[0] == "classifier.1" and stages[-1] == "features.0" and len(stages) == 10
    assert model_stages(make("densenet121-1ch-2cls").module)[:2] == ["classifier", "features.norm5"]
    curves = cascading_randomisation(clf, hu, methods=("BP",), steps=4)
    s = curves.spearman_abs["BP", "plain"]
    assert curves.stages[0] == "original" and len(s) == len(stages) + 1 and s[0] == 1.0 and s[-1] < 0.9


def test_several_targets_share_every_forward_pass_and_equal_one_call_each(hu):
    clf = make("densenet121-3ch-4cls", seed=2)
    refs = np.random.default_rng(4).uniform(-1000, 1000, (3, S, S)).astype(np.float32)
    kw = dict(methods=("BP", "IGB", "IGBW", "EG"), variants=("plain", "SG", "SG2"), steps=4, samples=4,
              sg_samples=3, references=refs, seed=1)
    explain(clf, hu, target=0, **kw)  # the gradient twin is built and checked once, on the first call
    rows = [0]
    clf.module.classifier.register_forward_hook(lambda m, i, o: rows.__setitem__(0, rows[0] + len(o)))
    many = explain_targets(clf, hu, ["venous", 0, "arterial"], **kw)
    rows_many, rows[0] = rows[0], 0
    assert list(many) == ["venous", "no contrast", "arterial"]
    for name, maps in many.items():
        one = explain(clf, hu, target=name, **kw)
        assert maps.params["target_name"] == name and maps.params["target"] == clf.class_names.index(name)
        for key in one:
            assert rel_l2(maps[key], one[key]) < 1e-5, (name, key)
    rows_one = rows[0] // 3
    assert rows_many == rows_one  # three classes, the forward passes of one
    with pytest.raises(TypeError, match="targets"):  # several classes: explain_targets, one return type each
        explain(clf, hu, target=0, targets=[1], **kw)
    with pytest.raises(ValueError, match="twice"):
        explain_targets(clf, hu, [1, "arterial"], **kw)
    with pytest.raises(ValueError, match="class"):
        explain_targets(clf, hu, ["portal"], **kw)


def test_per_channel_maps_equal_captum_per_channel_and_sum_to_the_map(hu):
    clf = make("densenet121-3ch-4cls", seed=3)
    ours = explain(clf, hu, methods=("BP", "IGB"), variants=("plain", "SG"), steps=8, sg_samples=3,
                   target="pulmonary", channels=True)
    f, x = Scores(clf), clf.preprocess(hu).contiguous()
    ig = IntegratedGradients(f).attribute(x, baselines=clf.baseline(0.0).expand_as(x), target=2, n_steps=8)[0]
    chans = ours.channels["IGB", "plain"]
    assert chans.shape == (3, S, S)
    for c in range(3):
        assert rel_l2(chans[c], ig[c].detach().numpy()) < TOL, c
    for key in ours:
        np.testing.assert_allclose(ours.channels[key].sum(0), ours[key], rtol=1e-4,
                                   atol=1e-6 * float(np.abs(ours[key]).max()))
    assert explain(clf, hu, methods=("BP",), variants=("plain",)).channels is None


def test_exported_programs_get_every_method_without_hooks_and_a_clear_refusal_for_d(hu, tmp_path):
    import dataclasses

    from napari_ctinterp.explain.deconv import UnreachableReLUError
    from napari_ctinterp.model import load
    from napari_ctinterp.model.checkpoints import ExportedModel, save_checkpoint

    plain = make("densenet121-3ch-4cls")
    card = dataclasses.replace(plain.card, architecture="exported")
    path, _ = save_checkpoint(plain.module, tmp_path / "m.pt2", card, fmt="exported")
    exported = load(path, device="cpu")
    assert isinstance(exported.module, ExportedModel)
    refs = np.random.default_rng(5).uniform(-1000, 1000, (3, S, S)).astype(np.float32)
    kw = dict(methods=("BP", "IGB", "EG"), variants=("plain", "SG"), sg_samples=2, steps=4, samples=4,
              references=refs, target="venous")
    ours, ref = explain(exported, hu, **kw), explain(plain, hu, **kw)
    for key in ref:
        assert rel_l2(ours[key], ref[key]) < TOL, key
    np.testing.assert_allclose(exported.predict_proba(hu), plain.predict_proba(hu), atol=1e-5)
    with pytest.raises(UnreachableReLUError, match="torch.export.*card"):
        explain(exported, hu, methods=("D",), variants=("plain",))
