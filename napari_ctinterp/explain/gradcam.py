"""Grad-CAM's target layer, found for every architecture family, and the map from its activations.

Grad-CAM (Selvaraju et al. 2017): the target layer's activations A (channels k), weighted by the
spatial mean of d(score)/dA_k, summed over k; ReLU; upsampled bilinearly to the model's input —
Captum's ``LayerGradCam`` (ReLU on the layer grid, then ``LayerAttribution.interpolate``). The
engine takes A and its gradient in the same forward/backward as Backprop's input gradient
(``engine.py``), so the formula lives here and the passes there.

The target layer is the last spatial block of the network, as its family's entry in the registry
says (``model.families``, by ``card.architecture``): ResNet ``layer4``, DenseNet ``features``
(MONAI's too), EfficientNet / ConvNeXt / MobileNet / Swin the last stage of ``features``, ViT the
last encoder block's input norm ``ln_1`` (pytorch-grad-cam's ``blocks[-1].norm1``: the block's
*output* reaches the head through the class token alone, so its patch tokens have no gradient),
whose tokens (class token dropped) are reshaped to the patch grid; Swin's (B, H, W, C) output is
permuted to (B, C, H, W). Any other network: the last module in forward order whose output is a
(B, C, h, w) map with h, w > 1 (its outermost module). ``gc_layer="layer3"`` chooses any module
by its name in ``named_modules`` (a ViT or Swin block gets the same reshape).

Grad-CAM++ (Chattopadhay et al. 2018, eq. 19; ``GCPP``) reads the same activations and gradient
in the same pass: weights w_k = Σ_ij relu(g_kij)·α_kij with α = g² / (2g² + (Σ_ab A_kab)·g³)
(0 where g = 0), then ReLU(Σ_k w_k A_k), upsampled as Grad-CAM. This is the paper's formula and
pytorch-grad-cam's ``GradCAMPlusPlus``. MONAI's ``GradCAMpp`` differs in two places: its
denominator sums A·g³ over space (Σ_ab A_kab·g³_kab instead of (Σ_ab A_kab)·g³_kij — the two agree
where the gradient is constant over the layer's grid, as after global pooling), and it multiplies
the gradient by exp(score), a positive factor per input that its min-max normalisation removes.
Both add a small constant to α's denominator (1e-6, 1e-7), which the paper does not: with a
layer gradient of ~1e-3 it is not small beside g², so we leave it out. We follow the paper
(tests: ``tests/explain/test_gradcam_plusplus.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..model.families import family_of

Transform = Callable[[torch.Tensor], torch.Tensor]


class GradCamLayerError(ValueError):
    """The target layer cannot be found, named or hooked."""


@dataclass(frozen=True)
class TargetLayer:
    """The module Grad-CAM reads, its name, and the reshape of its output to (B, C, h, w)."""

    name: str
    module: nn.Module
    transform: Transform | None = None


def _vit_tokens(t: torch.Tensor) -> torch.Tensor:
    """(B, 1 + N, D) ViT tokens → (B, D, √N, √N), class token dropped."""
    b, n, d = t.shape
    side = int(round((n - 1) ** 0.5))
    if side * side != n - 1:
        raise GradCamLayerError(f"Grad-CAM: the ViT block gives {n} tokens, not 1 + a square grid")
    return t[:, 1:, :].reshape(b, side, side, d).permute(0, 3, 1, 2)


def _channels_last_map(t: torch.Tensor) -> torch.Tensor:
    """Swin's (B, H, W, C) stage output → (B, C, H, W)."""
    return t.permute(0, 3, 1, 2)


#: The registry's reshapes (``Family.gradcam_reshape``) and their code.
RESHAPES: dict[str, Transform] = {"tokens": _vit_tokens, "channels_last": _channels_last_map}


def _named_transform(architecture: str, name: str) -> Transform | None:
    """The reshape a layer named by the user needs (the family's: ViT encoder tokens → patch grid,
    Swin stages → channels first); None for other layers (a (B, C, h, w) output)."""
    reshape = family_of(architecture).reshape_of(name)
    return None if reshape is None else RESHAPES[reshape]


def family_layer(net: nn.Module, architecture: str) -> TargetLayer | None:
    """The target layer of a known family (``Family.gradcam_layer``), or None (then
    ``last_spatial_layer``)."""
    family = family_of(architecture)
    try:
        name = family.gradcam_layer(net)
        if name is None:
            return None
        reshape = family.gradcam_reshape
        return TargetLayer(name, dict(net.named_modules())[name], None if reshape is None else RESHAPES[reshape])
    except (AttributeError, TypeError):
        return None


def last_spatial_layer(net: nn.Module, example: torch.Tensor) -> TargetLayer:
    """The last module (in forward order) whose output is a (B, C, h, w) map with h, w > 1;
    among modules that give that same tensor, the outermost."""
    order: list[tuple[str, torch.Tensor]] = []
    hooks = [m.register_forward_hook(lambda m, i, o, name=name: order.append((name, o)))
             for name, m in net.named_modules() if name]
    try:
        with torch.no_grad():
            net(example[:1])
    finally:
        for h in hooks:
            h.remove()
    dims = example.dim()  # (B, C, h, w), or (B, C, D, h, w) for a 3D model
    spatial = [(n, o) for n, o in order
               if isinstance(o, torch.Tensor) and o.dim() == dims and min(o.shape[2:]) > 1]
    if not spatial:
        raise GradCamLayerError("Grad-CAM found no spatial layer (a (B, C, h, w) output) in this model: "
                                "name one with gc_layer=, or leave GC and GGC out")
    name, out = spatial[-1]
    # modules finishing later with the very same output tensor enclose it (a container)
    outer = [n for n, o in order if o is out]
    name = outer[-1]
    return TargetLayer(name, net.get_submodule(name))


def target_layer(net: nn.Module, architecture: str, example: torch.Tensor, name: str | None = None) -> TargetLayer:
    """Grad-CAM's target layer of ``net``: ``name`` if given, else by family, else found by shape."""
    if isinstance(net, torch.jit.ScriptModule) or type(net).__name__ == "ExportedModel":
        raise GradCamLayerError("Grad-CAM needs the model as a plain torch nn.Module (its layers are hooked): "
                                "load the weights as safetensors or a state_dict with a card, or leave GC and "
                                "GGC out of the methods")
    if name:
        names = dict(net.named_modules())
        if name not in names:
            near = [n for n in names if n and n.split(".")[0] == name.split(".")[0]][:6] or \
                [n for n, _ in net.named_children()]
            raise GradCamLayerError(f"gc_layer {name!r} is not a module of this model; e.g. {', '.join(near)}")
        return TargetLayer(name, names[name], _named_transform(architecture, name))
    return family_layer(net, architecture) or last_spatial_layer(net, example)


def layer_name(clf, name: str | None = None) -> str:
    """The name of Grad-CAM's target layer of a classifier (``name`` checked, or found as
    ``target_layer`` finds it, on a blank input of the card's size); what callers resolve once
    and pass on as ``gc_layer``. ``GradCamLayerError`` says what is wrong."""
    example = torch.zeros((1, clf.card.in_channels, *clf.card.input_size), device=clf.device)
    return target_layer(clf.module, clf.card.architecture, example, name).name


class LayerCapture:
    """Holds, per thread, the target layer's output of the forward running in that thread."""

    def __init__(self) -> None:
        self._local = threading.local()

    def hook(self, _module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        """Forward hook: keep the output and give the rest of the network a copy (an in-place ReLU
        after the layer, as in torchvision's DenseNet, would otherwise overwrite the activations
        kept; Captum does the same)."""
        if not isinstance(output, torch.Tensor):
            raise GradCamLayerError("Grad-CAM's target layer must output one tensor; name another with gc_layer=")
        self._local.out = output
        return output.clone()

    def take(self) -> torch.Tensor:
        """The output captured in this thread (then forgotten)."""
        out = getattr(self._local, "out", None)
        if out is None:
            raise GradCamLayerError("Grad-CAM's target layer did not run in the forward pass; name another "
                                    "with gc_layer=")
        self._local.out = None
        return out


@contextmanager
def captured(layer: TargetLayer) -> Iterator[LayerCapture]:
    """A ``LayerCapture`` hooked on the layer for the duration of the context."""
    cap = LayerCapture()
    handle = layer.module.register_forward_hook(cap.hook)
    try:
        yield cap
    finally:
        handle.remove()


def gradcam_maps(act: torch.Tensor, grad: torch.Tensor, size: tuple[int, ...],
                 transform: Transform | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Grad-CAM from the layer's activations and their gradient: (B, h, w) maps at the input size
    — (B, D, h, w) for a 3D model's (B, C, d, h, w) layer — after the ReLU (the map) and before it
    (signed), each upsampled bilinearly (trilinearly in 3D; Captum's ``LayerAttribution.interpolate``)."""
    if transform is not None:
        act, grad = transform(act), transform(grad)
    if act.dim() != 2 + len(size):
        raise GradCamLayerError(f"Grad-CAM's target layer gives a {tuple(act.shape)} output, not a "
                                f"{'(B, C, d, h, w)' if len(size) == 3 else '(B, C, h, w)'} map: name a "
                                "convolutional layer with gc_layer=")
    weights = grad.float().mean(dim=tuple(range(2, act.dim())), keepdim=True)
    cam = (weights * act.float()).sum(1, keepdim=True)

    def up(t: torch.Tensor) -> torch.Tensor:
        return F.interpolate(t, size=tuple(size), mode="trilinear" if len(size) == 3 else "bilinear")[:, 0]

    return up(F.relu(cam)), up(cam)


def gradcam_pp_map(act: torch.Tensor, grad: torch.Tensor, size: tuple[int, ...],
                   transform: Transform | None = None, eps: float = 0.0) -> torch.Tensor:
    """Grad-CAM++ (paper eq. 19, pytorch-grad-cam's ``GradCAMPlusPlus``) from the layer's activations
    and their gradient: (B, h, w) — (B, D, h, w) in 3D — after its ReLU, upsampled as ``gradcam_maps``.

    α = 0 where g = 0 or its denominator is 0. ``eps`` is added to α's denominator: 0, the paper's
    formula (the default); pytorch-grad-cam adds 1e-6 and MONAI 1e-7, which are not small beside
    g² when the layer's gradient is ~1e-3 (a trained net's often is) and change the map by several
    per cent — with ``eps=1e-6`` this equals pytorch-grad-cam's map exactly (test)."""
    if transform is not None:
        act, grad = transform(act), transform(grad)
    act, grad = act.float(), grad.float()
    space = tuple(range(2, act.dim()))
    g2 = grad * grad
    denom = 2 * g2 + act.sum(dim=space, keepdim=True) * g2 * grad + eps
    alpha = torch.where((grad != 0) & (denom != 0), g2 / torch.where(denom != 0, denom, 1.0), 0.0)
    weights = (F.relu(grad) * alpha).sum(dim=space, keepdim=True)
    cam = F.relu((weights * act).sum(1, keepdim=True))
    return F.interpolate(cam, size=tuple(size), mode="trilinear" if len(size) == 3 else "bilinear")[:, 0]
