"""3D models: every method of the engine on a whole volume equals Captum in the model's input
space, on random r3d_18 and MONAI DenseNet nets (DenseNet121 at 32³ for BP and Grad-CAM; a two-block
DenseNet of the same code for every method; 16–32 voxels a side, 1 and 3 channels, 2 and 4 classes);
maps come back onto the CT's grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import (
    Deconvolution,
    GradientShap,
    GuidedBackprop,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    NoiseTunnel,
    Occlusion,
    Saliency,
)
from explain_helpers import rel_l2
from test_any_model import Scores  # Captum's view: column c = the score explained for class c
from torch import nn

from napari_ctinterp.explain import explain, explain_targets
from napari_ctinterp.explain.engine import noisy_copies
from napari_ctinterp.explain.plan import ExplainOptions, draw_expected_gradients
from napari_ctinterp.model import Classifier, ModelCard, build

TOL = 1e-4
W3 = ({"window": [-1000, 1000]}, {"window": [-160, 240]}, {"window": [-1350, 150]})


def _clf(arch, size, channels=({"window": [-1000, 1000]},), classes=("a", "b"), seed=0):
    card = ModelCard(architecture=arch, spatial_dims=3, input_size=size, channels=channels, output="softmax",
                     class_names=classes)
    torch.manual_seed(seed)
    net = build(arch, "softmax", in_channels=len(channels), n_logits=len(classes), spatial_dims=3)
    return Classifier(net, card, torch.device("cpu"), source="test")


def _vol(size, seed=0):  # at the model's input size: the input is the CT (no resampling in the comparison)
    return np.random.default_rng(seed).uniform(-1000, 1000, size).astype(np.float32)


@pytest.fixture(scope="module")
def r3d():
    return _clf("r3d_18", (16, 24, 24))


@pytest.fixture(scope="module")
def dense():
    return _clf("monai.DenseNet121", (32, 32, 32), W3, ("a", "b", "c", "d"), seed=1)


def _check(ours, ref, label, tol=TOL):
    for m, r in ref.items():
        r = r.detach()[0].sum(0).numpy() if r.ndim == 5 else r.detach().numpy()
        assert ours[m, "plain"].shape == r.shape
        if m == "GC" and not r.any():  # a random net's Grad-CAM can be negative everywhere: ReLU'd to 0
            assert not ours[m, "plain"].any(), f"{label} {m}: the reference is 0, ours is not"
            continue
        assert np.linalg.norm(r) > 0, f"{label} {m}: the reference map is zero (nothing compared)"
        err = rel_l2(ours[m, "plain"], r)
        assert err < tol, f"{label} {m}: relative L2 {err:.2e}"


@pytest.fixture(scope="module")
def small_dense():
    """MONAI's DenseNet — DenseNet121's code (dense layers, transitions, in-place ReLUs) with two
    blocks of two layers — at 16 × 24 × 24, 3 windows, 4 classes: every method at CI cost (the
    121-layer net at 32³ costs ≈ 40 s per method pair here; its BP and Grad-CAM are checked below)."""
    args = {"init_features": 16, "growth_rate": 8, "block_config": [2, 2]}
    card = ModelCard(architecture="monai.DenseNet", architecture_args=args, spatial_dims=3, input_size=(16, 24, 24),
                     channels=W3, output="softmax", class_names=("a", "b", "c", "d"))
    torch.manual_seed(4)
    net = build("monai.DenseNet", "softmax", in_channels=3, n_logits=4, spatial_dims=3, architecture_args=args)
    return Classifier(net, card, torch.device("cpu"), source="test")


@pytest.mark.parametrize("net, target", [("r3d", 0), ("r3d", "b"), ("small_dense", "c")])
def test_every_gradient_method_equals_captum(request, net, target):
    clf = request.getfixturevalue(net)
    vol = _vol((16, 24, 24))
    ours = explain(clf, vol, methods=("BP", "IGB", "IGBW", "D", "GBP", "GC"), variants=("plain",), target=target,
                   steps=4)
    t = clf.card.class_index(target)
    f, x = Scores(clf), clf.preprocess(vol)
    ig = IntegratedGradients(f)
    layer = clf.module.get_submodule(ours.params["gc_layer"])
    ref = {"BP": Saliency(f).attribute(x, target=t, abs=False),
           "IGB": ig.attribute(x, baselines=0.0, target=t, n_steps=4),
           "IGBW": 0.5 * (ig.attribute(x, baselines=0.0, target=t, n_steps=4)
                          + ig.attribute(x, baselines=1.0, target=t, n_steps=4)),
           "D": Deconvolution(f).attribute(x, target=t),
           "GBP": GuidedBackprop(f).attribute(x, target=t),
           "GC": LayerAttribution.interpolate(LayerGradCam(f, layer).attribute(
               x, target=t, relu_attributions=True), (16, 24, 24), "trilinear")[0, 0]}
    _check(ours, ref, f"{net} target {target}")
    assert ours.params["spatial_dims"] == 3
    assert net != "r3d" or ours.params["gc_layer"] == "layer4"


def test_monai_densenet121_3_windows_4_classes_equals_captum(dense):
    vol = _vol((32, 32, 32), seed=2)
    ours = explain_targets(dense, vol, ["a", "d"], methods=("BP", "GC"), variants=("plain",))
    f, x = Scores(dense), dense.preprocess(vol)
    assert x.shape == (1, 3, 32, 32, 32)
    layer = dense.module.get_submodule(ours["a"].params["gc_layer"])
    for name, t in (("a", 0), ("d", 3)):
        ref = {"BP": Saliency(f).attribute(x, target=t, abs=False),
               "GC": LayerAttribution.interpolate(LayerGradCam(f, layer).attribute(
                   x, target=t, relu_attributions=True), (32, 32, 32), "trilinear")[0, 0]}
        _check(ours[name], ref, f"DenseNet121 3D class {name}")


def test_sg_and_sg2_equal_noise_tunnel_with_the_same_noise(r3d, monkeypatch):
    vol = _vol((16, 24, 24), seed=3)
    opts = ExplainOptions(methods=("BP", "IGB"), variants=("SG", "SG2"), sg_samples=3, steps=4, seed=5)
    x = r3d.preprocess(vol)
    noise = noisy_copies(x, opts) - x
    ours = explain(r3d, vol, opts, target=1)
    monkeypatch.setattr(torch, "normal", lambda mean, std: noise.clone())
    f = Scores(r3d)
    sigma = 0.15 * float(x.max() - x.min())
    for m, method in (("BP", Saliency(f)), ("IGB", IntegratedGradients(f))):
        kw = {"abs": False} if m == "BP" else {"baselines": 0.0, "n_steps": 4}
        for v, nt in (("SG", "smoothgrad"), ("SG2", "smoothgrad_sq")):
            ref = NoiseTunnel(method).attribute(x, nt_type=nt, nt_samples=3, stdevs=sigma, target=1, **kw)
            err = rel_l2(ours[m, v], ref[0].sum(0).detach().numpy() if v == "SG" else ref[0, 0].detach().numpy())
            assert err < TOL, f"{m} {v}: relative L2 {err:.2e}"


@pytest.mark.parametrize("net", ["r3d", "small_dense"])
def test_eg_equals_gradient_shap_with_reference_volumes(request, net, monkeypatch):
    r3d = request.getfixturevalue(net)
    vol, refs = _vol((16, 24, 24), seed=4), _vol((3, 16, 24, 24), seed=5)
    samples, seed = 6, 3
    ours = explain(r3d, vol, methods=("EG",), variants=("plain",), samples=samples, seed=seed, references=refs,
                   target=1)
    assert ours.params["references"] == "3 given volumes"
    idx, alpha = draw_expected_gradients(seed, 1, samples, len(refs))
    monkeypatch.setattr(np.random, "choice", lambda n, size: idx[0].copy())
    monkeypatch.setattr(np.random, "uniform", lambda lo, hi, size: alpha[0][:size].copy())
    base = torch.cat([r3d.preprocess(r) for r in refs])
    ref = GradientShap(Scores(r3d)).attribute(r3d.preprocess(vol), baselines=base, n_samples=samples, stdevs=0.0,
                                              target=1)
    _check(ours, {"EG": ref}, "EG")


def test_occlusion_with_a_3d_window_equals_captum(r3d):
    vol = _vol((16, 24, 24), seed=6)
    ours = explain(r3d, vol, methods=("OCC",), variants=("plain",), target=0, occ_window=8, occ_stride=8)
    x = r3d.preprocess(vol)
    ref = Occlusion(Scores(r3d)).attribute(x, target=0, sliding_window_shapes=(1, 8, 8, 8), strides=(1, 8, 8, 8),
                                           baselines=0.0)
    _check(ours, {"OCC": ref}, "OCC")


def test_maps_come_back_where_the_crop_put_them():
    """A net whose score is one input voxel: its input gradient lands on that CT voxel, the crop's
    outside is 0 and counted."""

    class OneVoxel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv3d(1, 1, 1)  # a layer for the card's first conv
            self.fc = nn.Linear(1, 2)

        def forward(self, x):
            v = x[:, 0, 3, 5, 7].unsqueeze(1)
            return torch.cat([v, -v], 1)

    card = ModelCard(architecture="r3d_18", spatial_dims=3, input_size=(8, 16, 16), spacing_mm=(2.0, 1.0, 1.0),
                     output="softmax", class_names=("a", "b"))
    clf = Classifier(OneVoxel(), card, torch.device("cpu"), source="test")
    vol = _vol((12, 20, 40))  # z 12 → crop 2..10; y 20 → crop 2..18; x 40 → crop 12..28 (no resampling)
    m = explain(clf, vol, methods=("BP",), variants=("plain",), target=0, spacing_mm=(2.0, 1.0, 1.0))
    bp = m["BP", "plain"]
    assert bp.shape == vol.shape and np.count_nonzero(bp) == 1
    assert bp[3 + 2, 5 + 2, 7 + 12] == pytest.approx(1.0)  # d score / d input voxel, in the input space
    assert m.params["outside_voxels"] == 12 * 20 * 40 - 8 * 16 * 16


def test_slice_by_slice_paths_refuse_a_3d_model_and_say_what_to_do(r3d):
    from napari_ctinterp.explain import explain_volume
    from napari_ctinterp.jobs import iter_explain_slices

    vol = _vol((16, 24, 24))
    with pytest.raises(ValueError, match=r"3D model: it explains the whole volume .* explain\(clf, volume\)"):
        explain_volume(r3d, vol, methods=("BP",), variants=("plain",))
    with pytest.raises(ValueError, match="3D model: it sees the whole volume, so it has no slice range"):
        next(iter_explain_slices(r3d, vol, [1, 2], ExplainOptions(methods=("BP",), variants=("plain",))))
    with pytest.raises(ValueError, match="no slice index"):
        explain(r3d, vol, methods=("BP",), variants=("plain",), index=3)


def test_torchscript_and_exported_3d_programs_give_the_module_s_maps(r3d, tmp_path):
    from napari_ctinterp.model import load

    vol = _vol((16, 24, 24), seed=8)
    want = explain(r3d, vol, methods=("BP", "IGB"), variants=("plain",), steps=2, target=1)
    x0 = torch.zeros(2, 1, 16, 24, 24)
    torch.jit.trace(r3d.module, x0[:1]).save(str(tmp_path / "m.ts"))
    program = torch.export.export(r3d.module, (x0,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, str(tmp_path / "m.pt2"))
    for name, arch in (("m.ts", "torchscript"), ("m.pt2", "exported")):
        ModelCard(architecture=arch, spatial_dims=3, input_size=(16, 24, 24), output="softmax",
                  class_names=("a", "b")).save(tmp_path / "m.json")
        clf = load(tmp_path / name, device="cpu")
        got = explain(clf, vol, methods=("BP", "IGB"), variants=("plain",), steps=2, target=1)
        for key in want:
            assert rel_l2(got[key], want[key]) < TOL, (arch, key)
