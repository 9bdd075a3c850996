"""3D models: our Grad-CAM and occlusion maps equal MONAI's own ``monai.visualize.GradCAM`` and
``OcclusionSensitivity`` on the same random nets (torchvision's r3d_18, 1 channel, 2 classes,
16×24×24; a small MONAI ``DenseNet`` 3D — DenseNet121's blocks with two dense blocks of two layers,
its in-place ReLUs included — 3 windows, 4 classes, 32³, so that the file stays fast on 2 cores),
compared in the model's input space (the volume is given at the card's input size: no resampling).

MONAI's documented differences, and how each comparison takes them out:

GradCAM (``monai/visualize/class_activation_maps.py``)
    - The map is post-processed by ``default_normalizer``: min-max scaled *and flipped*, the
      largest value → 0 and the smallest → 1 (``ScaleIntensity(minv=1, maxv=0)``, per image). We
      compare the raw map (``postprocessing`` = identity), and separately the default one against
      ``1 − (ours − min) / (max − min)``.
    - The rest is ours: weights = spatial mean of the target layer's output gradient, ReLU of the
      weighted sum, ``F.interpolate`` trilinear with ``align_corners=False`` to the input size; the
      score is the class logit (``logits[:, c]``, our target score of a softmax model); class
      ``None`` = the argmax (our default target, the predicted class).
    - MONAI hooks the layer with ``register_full_backward_hook``, which wraps the layer's output in
      a ``BackwardHookFunction`` view: an in-place ReLU after the layer then fails ("Output 0 of
      BackwardHookFunction is a view and is being modified inplace") — MONAI DenseNet's (and
      DenseNet121's) ``class_layers.relu`` after ``features``, our default layer. MONAI switches off
      ``inplace`` of the target layer only. So MONAI runs on a deep copy with every ``inplace``
      switched off: the same arithmetic (its logits are asserted bit-identical to the original's);
      the copy also keeps MONAI's hooks (never removed) off our classifier. r3d_18's ``layer4`` is
      followed by pooling and works either way.
    - MONAI backpropagates ``logits[:, c].sum()`` and needs a graph: a classifier's parameters are
      frozen (``requires_grad=False``), so MONAI's input is given ``requires_grad=True`` (no value
      changes).

OcclusionSensitivity (``monai/visualize/occlusion_sensitivity.py``)
    - It returns, per voxel and per class, the model's output *with the window occluded*, averaged
      over the windows covering the voxel (``sliding_window_inference``); we return the *drop* of
      the target score, averaged the same way (Captum's Occlusion). With every voxel covered:
      ``ours = score(x) − monai[0, target]``.
    - Its defaults are not ours and are set to ours: ``mode`` "gaussian" (the window multiplied by
      1 − a Gaussian, windows weighted by the Gaussian) → ``mode=0.0``, a constant fill (our
      "black" fill of a card without normalisation is 0 in every channel; MONAI fills every channel
      with it), uniform weights; ``activate=True`` (softmax) → ``False`` (logits);
      ``overlap=0.6`` → ``1 − stride / window`` (its window step is ``int(window · (1 − overlap))``).
    - Its last window of a row is moved back to end at the border; ours (Captum's) stop at the last
      full step. The sizes here make ``(size − window)`` a multiple of the stride, where both agree.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from explain_helpers import rel_l2
from monai.visualize import GradCAM, OcclusionSensitivity
from monai.visualize.class_activation_maps import default_normalizer
from torch import nn

from napari_ctinterp.explain import explain
from napari_ctinterp.model import Classifier, ModelCard, build

TOL = 1e-5


def _clf(arch: str, size: tuple[int, int, int], n_channels: int, n_classes: int, seed: int,
         args: dict | None = None) -> Classifier:
    channels = ({"window": [-1000, 1000]}, {"window": [-160, 240]}, {"window": [-1350, 150]})[:n_channels]
    card = ModelCard(architecture=arch, architecture_args=args or {}, spatial_dims=3, input_size=size,
                     channels=channels, output="softmax", class_names=tuple("abcd"[:n_classes]))
    torch.manual_seed(seed)
    net = build(arch, "softmax", in_channels=n_channels, n_logits=n_classes, spatial_dims=3,
                architecture_args=args or {})
    return Classifier(net, card, torch.device("cpu"), source="test")


def _vol(size: tuple[int, int, int], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1000, 1000, size).astype(np.float32)


def _monai_copy(net: nn.Module) -> nn.Module:
    """A deep copy of ``net`` with every in-place activation switched off (same arithmetic)."""
    twin = copy.deepcopy(net)
    for m in twin.modules():
        if getattr(m, "inplace", False):
            m.inplace = False
    return twin.eval()


# name: architecture, its arguments, input size, channels, classes, seed, Grad-CAM targets (None = the
# predicted class; seeds whose maps are not all 0 after the ReLU, as a random net's can be), occlusion
# window and stride (windows side by side; half-overlapping)
SMALL_DENSENET = {"init_features": 16, "growth_rate": 8, "block_config": [2, 2]}
CASES = {"r3d_18": ("r3d_18", None, (16, 24, 24), 1, 2, 2, (0,), (8, 8)),
         "densenet": ("monai.DenseNet", SMALL_DENSENET, (32, 32, 32), 3, 4, 2, (None, 0, 3), (16, 8))}


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    arch, args, size, n_channels, n_classes, seed, _, _ = CASES[request.param]
    clf = _clf(arch, size, n_channels, n_classes, seed, args)
    vol = _vol(size, seed + 10)
    x = clf.preprocess(vol)
    with torch.no_grad():
        assert torch.equal(_monai_copy(clf.module)(x), clf.module(x)), \
            "the copy without in-place ReLUs must compute the same logits"
    return request.param, clf, vol, x, lambda: _monai_copy(clf.module)  # a fresh copy per MONAI object


def test_gradcam_equals_monai_gradcam(case):
    name, clf, vol, x, twin = case
    layer = "layer4" if name == "r3d_18" else "features"  # our default layer of the family
    cam = GradCAM(twin(), layer, postprocessing=lambda a: a)  # MONAI's map before its post-processing
    for target in CASES[name][6]:
        ours = explain(clf, vol, methods=("GC",), variants=("plain",), target=target)
        assert ours.params["gc_layer"] == layer
        raw = cam(x.clone().requires_grad_(True), class_idx=target)
        assert raw.shape == (1, 1, *vol.shape)
        ref = raw[0, 0].detach().numpy()
        gc = ours["GC", "plain"]
        assert np.linalg.norm(ref) > 0, f"{name} target {target}: MONAI's map is 0 (nothing compared)"
        assert rel_l2(gc, ref) < TOL, f"{name} target {target}: relative L2 {rel_l2(gc, ref):.2e}"
        default = default_normalizer(raw)[0, 0].detach().numpy()  # what GradCAM(twin, layer) returns
        flipped = 1.0 - (gc - gc.min()) / (gc.max() - gc.min())  # MONAI's default_normalizer
        np.testing.assert_allclose(default, flipped, atol=1e-5, err_msg=f"{name}: MONAI's default normaliser")
        assert default.flat[np.argmax(gc)] == pytest.approx(0.0, abs=1e-6)  # the strongest voxel → 0 in MONAI


def test_occlusion_equals_monai_occlusion_sensitivity(case):
    name, clf, vol, x, twin = case
    window, stride = CASES[name][7]
    assert all((s - window) % stride == 0 for s in vol.shape)
    target = 1
    ours = explain(clf, vol, methods=("OCC",), variants=("plain",), target=target, occ_window=window,
                   occ_stride=stride)["OCC", "plain"]
    occ = OcclusionSensitivity(twin(), mask_size=window, n_batch=8, verbose=False, mode=0.0,
                               overlap=1.0 - stride / window, activate=False)
    with torch.no_grad():
        monai_map, _ = occ(x)
        score = float(clf.target_score(clf.module(x), torch.tensor([target]))[0])
    monai_map = torch.as_tensor(monai_map)
    assert monai_map.shape == (1, clf.card.n_logits, *vol.shape)
    ref = score - monai_map[0, target].numpy()
    assert np.linalg.norm(ref) > 0
    assert rel_l2(ours, ref) < TOL, f"{name}: relative L2 {rel_l2(ours, ref):.2e}"
