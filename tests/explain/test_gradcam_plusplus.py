"""Grad-CAM++ (``GCPP``) equals pytorch-grad-cam's ``GradCAMPlusPlus`` (the paper's eq. 19) and,
where the two definitions meet, MONAI's ``GradCAMpp`` — in 2D and 3D, plain and SmoothGrad.

Where the references differ, and what each comparison takes out:

pytorch-grad-cam ``GradCAMPlusPlus`` (``grad_cam_plusplus.py``, ``base_cam.py``)
    - α = g² / (2g² + (Σ_ab A_ab)·g³ + 1e-6), 0 where g = 0; weights Σ relu(g)·α; ReLU of the
      weighted sum: ours, term for term (``explain/gradcam.py``).
    - It adds 1e-6 to α's denominator (MONAI 1e-7); the paper does not, nor do we: beside g² of a
      random ResNet's layer3 (g ~ 1e-3) it moves the map by more than 0.1 % (asserted). Each
      comparison sets the reference's constant in our formula (``gradcam_pp_map(eps=)``, patched
      into the engine): then the whole pipeline — plan, accumulators, SG reductions, upsampling — must
      give the reference's numbers.
    - Its output is then min-max scaled per image and resized with OpenCV (2D) or a cubic spline
      ``scipy.ndimage.zoom`` (3D). We upsample as Grad-CAM does (``F.interpolate``, bilinear /
      trilinear, Captum's and MONAI's). The comparison is therefore made on its map at the layer's grid
      (``get_cam_image`` on the activations and gradients its own hooks captured, ReLU), upsampled by
      ``F.interpolate``; in 2D also its full output against our map min-max scaled (OpenCV's bilinear
      uses the same half-pixel centres).
    - Its hooks keep the layer's output tensor itself: an in-place ReLU after the layer (torchvision
      DenseNet's functional ``F.relu(inplace=True)``, MONAI DenseNet's module) rewrites the kept
      activations. The nets here have none after the compared layer, or run on a copy without them.

MONAI ``GradCAMpp`` (``monai/visualize/class_activation_maps.py``)
    - α's denominator sums A·g³ over the grid (Σ_ab A_ab·g³_ab) where the paper multiplies ΣA by the
      local g³: the two agree when the gradient is constant over the grid — a layer followed by
      global average pooling and the linear head (ResNet ``layer4``) — and differ elsewhere
      (``layer3``: asserted different, so the test would notice the definitions meeting by chance).
    - It multiplies the gradient by exp(score): a positive factor per input, removed by its
      min-max normalisation; compared on its raw map (``postprocessing`` = identity) divided by it.
We follow the paper (pytorch-grad-cam).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from explain_helpers import randomise_batchnorm, rel_l2
from monai.visualize import GradCAMpp
from pytorch_grad_cam import GradCAMPlusPlus
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from test_monai_3d import SMALL_DENSENET, _clf, _monai_copy, _vol

from napari_ctinterp.explain import ExplainOptions, explain, gradients
from napari_ctinterp.explain.engine import noisy_copies
from napari_ctinterp.explain.gradcam import gradcam_pp_map
from napari_ctinterp.explain.plan import make_plan
from napari_ctinterp.model import Classifier, ModelCard, build

TOL = 1e-5


@pytest.fixture(scope="module")
def r18() -> Classifier:
    torch.manual_seed(5)
    card = ModelCard(architecture="resnet18", input_size=(96, 96), output="softmax", class_names=("a", "b"))
    net = randomise_batchnorm(build("resnet18", "softmax", in_channels=1, n_logits=2))
    return Classifier(net, card, torch.device("cpu"), source="test")


@pytest.fixture
def eps(monkeypatch):
    """Set the reference's constant in α's denominator in the engine's Grad-CAM++."""
    def use(value: float) -> None:
        monkeypatch.setattr(gradients, "gradcam_pp_map", functools.partial(gradcam_pp_map, eps=value))
    return use


@pytest.fixture(scope="module")
def img() -> np.ndarray:
    return np.random.default_rng(8).uniform(-1000, 1000, (96, 96)).astype(np.float32)


def _pgc_grid(net: torch.nn.Module, layer: str, x: torch.Tensor, target: int, *, raw: bool = False) -> tuple:
    """pytorch-grad-cam's Grad-CAM++ of ``x``: its map at the layer's grid (ReLU'd, before its
    scaling and resize) upsampled with ``F.interpolate``, and its own full output (``raw``: and the
    activations and gradients its hooks captured)."""
    module = net.get_submodule(layer)
    cam = GradCAMPlusPlus(net, [module])
    try:
        full = cam(x.clone().requires_grad_(True), targets=[ClassifierOutputTarget(target)])[0]
        acts = cam.activations_and_grads.activations[0].numpy()
        grads = cam.activations_and_grads.gradients[0].numpy()
        grid = np.maximum(cam.get_cam_image(x, module, None, acts, grads), 0)
    finally:
        cam.activations_and_grads.release()
    size = tuple(x.shape[2:])
    mode = "trilinear" if len(size) == 3 else "bilinear"
    up = F.interpolate(torch.as_tensor(grid)[:, None], size=size, mode=mode)[0, 0].numpy()
    return (up, full, acts, grads) if raw else (up, full)


def _monai_raw(net: torch.nn.Module, layer: str, x: torch.Tensor, target: int, clf: Classifier) -> np.ndarray:
    """MONAI's raw Grad-CAM++ (no normalisation) divided by its exp(score) factor."""
    raw = GradCAMpp(net, layer, postprocessing=lambda a: a)(x.clone().requires_grad_(True), class_idx=target)
    with torch.no_grad():
        score = float(clf.target_score(clf.module(x), torch.tensor([target]))[0])
    return raw[0, 0].detach().numpy() / np.exp(score)


@pytest.mark.parametrize("layer", ["layer4", "layer3"])
def test_2d_equals_pytorch_grad_cam(r18, img, layer, eps):
    eps(1e-6)
    x = r18.preprocess(img).contiguous()
    for target in (0, 1):
        ours = explain(r18, img, methods=("GCPP",), variants=("plain",), target=target, gc_layer=layer)
        assert ours.params["gc_layer"] == layer
        gcpp = ours["GCPP", "plain"]
        ref, full = _pgc_grid(r18.module, layer, x, target)
        assert np.linalg.norm(ref) > 0, f"{layer} class {target}: the reference map is 0 (nothing compared)"
        assert rel_l2(gcpp, ref) < TOL, f"{layer} class {target}: relative L2 {rel_l2(gcpp, ref):.2e}"
        scaled = (gcpp - gcpp.min()) / (1e-7 + (gcpp - gcpp.min()).max())  # its min-max scaling
        np.testing.assert_allclose(full, scaled, atol=2e-3, err_msg=f"{layer}: pytorch-grad-cam's full output")


def test_the_references_constant_is_the_only_difference(r18, img):
    """Our formula with pytorch-grad-cam's 1e-6 equals its map at the layer's grid; without it (the
    paper, our default) the map moves by more than 0.1 % on this net."""
    x = r18.preprocess(img).contiguous()
    ref, _, acts, grads = _pgc_grid(r18.module, "layer3", x, 1, raw=True)
    a, g = torch.as_tensor(acts), torch.as_tensor(grads)
    assert rel_l2(gradcam_pp_map(a, g, tuple(x.shape[2:]), eps=1e-6)[0].numpy(), ref) < TOL
    paper = explain(r18, img, methods=("GCPP",), variants=("plain",), target=1, gc_layer="layer3")["GCPP", "plain"]
    assert rel_l2(paper, gradcam_pp_map(a, g, tuple(x.shape[2:]))[0].numpy()) < TOL
    assert rel_l2(paper, ref) > 1e-3, "the constant should matter at this gradient's scale"


def test_2d_equals_monai_where_the_definitions_meet(r18, img, eps):
    eps(1e-7)
    x = r18.preprocess(img).contiguous()
    twin = _monai_copy(r18.module)
    for target in (0, 1):
        gcpp = explain(r18, img, methods=("GCPP",), variants=("plain",), target=target)["GCPP", "plain"]
        ref = _monai_raw(twin, "layer4", x, target, r18)  # layer4 → pooling: g constant over the grid
        assert np.linalg.norm(ref) > 0
        assert rel_l2(gcpp, ref) < TOL, f"class {target}: relative L2 {rel_l2(gcpp, ref):.2e}"
    # layer3: g varies over the grid; MONAI's Σ A·g³ is not the paper's ΣA · g³
    gcpp = explain(r18, img, methods=("GCPP",), variants=("plain",), target=1, gc_layer="layer3")["GCPP", "plain"]
    assert rel_l2(gcpp, _monai_raw(_monai_copy(r18.module), "layer3", x, 1, r18)) > 1e-2


def test_3d_r3d18_equals_both_and_monai_densenet_equals_pytorch_grad_cam(eps):
    clf = _clf("r3d_18", (16, 24, 24), 1, 2, 2)
    vol = _vol((16, 24, 24), 12)
    x = clf.preprocess(vol)
    for constant, reference in ((1e-6, lambda: _pgc_grid(_monai_copy(clf.module), "layer4", x, 0)[0]),
                                (1e-7, lambda: _monai_raw(_monai_copy(clf.module), "layer4", x, 0, clf))):
        eps(constant)
        ours = explain(clf, vol, methods=("GC", "GCPP"), variants=("plain",), target=0)
        gcpp, ref = ours["GCPP", "plain"], reference()
        assert gcpp.shape == vol.shape and ours.params["gc_layer"] == "layer4"
        assert np.linalg.norm(ref) > 0 and rel_l2(gcpp, ref) < TOL, rel_l2(gcpp, ref)
    # Grad-CAM++ is not Grad-CAM (their weights differ), though both come from one pass
    assert rel_l2(gcpp / gcpp.max(), ours["GC", "plain"] / ours["GC", "plain"].max()) > 1e-3

    eps(1e-6)
    dn = _clf("monai.DenseNet", (32, 32, 32), 3, 4, 2, SMALL_DENSENET)
    vol = _vol((32, 32, 32), 12)
    ours = explain(dn, vol, methods=("GCPP",), variants=("plain",), target=3)["GCPP", "plain"]
    # MONAI DenseNet's in-place ReLU after ``features`` would rewrite pytorch-grad-cam's kept activations
    ref, _ = _pgc_grid(_monai_copy(dn.module), "features", dn.preprocess(vol), 3)
    assert np.linalg.norm(ref) > 0 and rel_l2(ours, ref) < TOL, rel_l2(ours, ref)


def test_sg_and_sg2_are_the_reductions_over_the_same_noisy_copies(r18, img, eps):
    eps(1e-6)
    opts = ExplainOptions(methods=("GC", "GCPP"), variants=("SG", "SG2"), sg_samples=4, seed=11)
    ours = explain(r18, img, options=opts, target=1)
    copies = noisy_copies(r18.preprocess(img).contiguous(), opts)
    per_copy = np.stack([_pgc_grid(r18.module, "layer4", copies[i:i + 1], 1)[0] for i in range(len(copies))])
    assert rel_l2(ours["GCPP", "SG"], per_copy.mean(0)) < TOL
    assert rel_l2(ours["GCPP", "SG2"], (per_copy**2).mean(0)) < TOL


def test_gcpp_rides_on_grad_cams_rows():
    """Grad-CAM++ reads the layer in Grad-CAM's pass: no gradient evaluations of its own."""
    for variants in (("plain",), ("plain", "SG", "SG2")):
        gc = make_plan(ExplainOptions(methods=("BP", "GC"), variants=variants, sg_samples=3))
        both = make_plan(ExplainOptions(methods=("BP", "GC", "GCPP"), variants=variants, sg_samples=3))
        alone = make_plan(ExplainOptions(methods=("GCPP",), variants=variants, sg_samples=3))
        assert both.total == gc.total == alone.total == (1 + 3 * (len(variants) > 1))
    assert "gc_layer" in ExplainOptions(methods=("GCPP",)).record()  # its layer is recorded with its maps
