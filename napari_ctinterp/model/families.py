"""The network families: everything the package knows about a family of networks, in one entry each.

A :class:`Family` says how to recognise the family (by the card's ``architecture`` name, or by the
module itself), where its first layer and its head are, which layer Grad-CAM reads by default and
how that layer's output is reshaped to a (B, C, h, w) map (ViT tokens, Swin's channels-last
stages), which activations it uses and whether Deconvolution / Guided Backprop apply, whether the
engine's structural gradient twin exists for it (``explain/fast_backward.py``), whether two CPU
gradient workers may run it side by side (``runtime``), and the order of cascading randomisation
(``metrics.sanity``). Grad-CAM, the gradient engine, the fast backward, the sanity check and the
builders read this registry; adding a family (a 3D network, say) is one entry in :data:`FAMILIES`.

The registry holds data and small functions over ``nn.Module``; it imports nothing of the package.
The first family that matches wins; :data:`GENERIC` (found by shape at run time) is the fallback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

#: The ResNets built with split (one per use, non-inplace) ReLUs: the engine's fast path.
RESNETS: tuple[str, ...] = ("resnet18", "resnet34", "resnet50")
#: Architectures whose weights file is the whole model (no builder).
STANDALONE: tuple[str, ...] = ("torchscript", "exported")

Reshape = Literal["tokens", "channels_last"]


# -- small functions over nn.Module ----------------------------------------------------------------
def first_conv(net: nn.Module) -> str | None:
    """Name of the first ``nn.Conv2d`` / ``nn.Conv3d`` in definition order (the layer the card's
    channels enter)."""
    return next((name for name, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))), None)


def last_linear(net: nn.Module) -> str | None:
    """Name of the last ``nn.Linear`` (its input is the penultimate feature vector), or None."""
    found = [name for name, m in net.named_modules() if isinstance(m, nn.Linear)]
    return found[-1] if found else None


def _last_child(net: nn.Module, path: str) -> str:
    last = list(net.get_submodule(path).named_children())[-1][0]
    return f"{path}.{last}"


def _has(net: nn.Module, name: str) -> bool:
    return name in dict(net.named_modules())


def _no_layer(net: nn.Module) -> str | None:
    return None


def _layer4(net: nn.Module) -> str | None:
    return "layer4" if _has(net, "layer4") else None


def _features(net: nn.Module) -> str | None:
    return "features" if _has(net, "features") else None


def _last_feature_stage(net: nn.Module) -> str | None:
    """The last stage of ``features`` (the whole ``features`` when it is not a Sequential)."""
    if not _has(net, "features"):
        return None
    return _last_child(net, "features") if isinstance(net.get_submodule("features"), nn.Sequential) else "features"


def _last_stage_of_features(net: nn.Module) -> str | None:
    return _last_child(net, "features") if _has(net, "features") else None


def _vit_last_norm(net: nn.Module) -> str | None:
    # the last block's input norm, as pytorch-grad-cam takes ``blocks[-1].norm1``: the block's
    # *output* reaches the head through the class token alone, so its patch tokens have no
    # gradient and Grad-CAM there is 0 everywhere
    return f"{_last_child(net, 'encoder.layers')}.ln_1" if _has(net, "encoder.layers") else None


def resnet_stages(module: nn.Module) -> list[str]:
    """Top-level stages of a ResNet from the output down: fc, layer4 … layer1, conv1 (with bn1)."""
    names = [n for n, _ in module.named_children()]
    order = [n for n in ("fc", "layer4", "layer3", "layer2", "layer1", "conv1", "stem") if n in names]
    if not order:
        raise ValueError("cascading randomisation needs named stages (fc, layer4…layer1, conv1 or stem) as in "
                         "torchvision ResNets")
    return order


def children_stages(module: nn.Module) -> list[str]:
    """Stages of any module tree from the output down: the top-level children in definition order
    (torchvision's is the forward order), each ``nn.Sequential`` among them (DenseNet's and
    EfficientNet's ``features``) opened one level, keeping those with parameters, reversed: head
    first, stem last."""
    stages = []
    for name, child in module.named_children():
        parts = list(child.named_children()) if isinstance(child, nn.Sequential) else []
        for sub, m in (((f"{name}.{n}", c) for n, c in parts) if parts else [(name, child)]):
            if any(True for _ in m.parameters()):
                stages.append(sub)
    if not stages:
        raise ValueError("cascading randomisation found no layer with parameters in this model")
    return stages[::-1]


def _type_named(*names: str) -> Callable[[nn.Module], bool]:
    return lambda m: type(m).__name__ in names


def _split_relu_resnet(m: nn.Module) -> bool:
    return any(type(b).__name__ in ("SplitReLUBasicBlock", "SplitReLUBottleneck") for b in m.modules())


def _resnet_like(m: nn.Module) -> bool:
    names = {n for n, _ in m.named_children()}
    return "fc" in names and "layer4" in names


def _monai(m: nn.Module) -> bool:
    return type(m).__module__.startswith("monai.")


def _monai_densenet(m: nn.Module) -> bool:
    return _monai(m) and "densenet" in type(m).__name__.lower()


def _standalone(m: nn.Module) -> bool:
    return isinstance(m, torch.jit.ScriptModule) or type(m).__name__ == "ExportedModel"


# -- the entry ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Family:
    """One family of networks.

    Attributes
    ----------
    name : str
        Short name (``"resnet"``, ``"densenet"``, …).
    architectures : tuple of str
        Card ``architecture`` names of the family, exactly.
    prefixes : tuple of str
        Lower-case prefixes of card ``architecture`` names of the family.
    plain_args_only : bool
        The card names match only without ``architecture_args`` (our split-ReLU ResNets: with
        arguments torchvision builds its own).
    is_module : callable
        ``is_module(net)``: True for a module of the family (when no card is at hand).
    first_layer : callable
        ``first_layer(net)``: name of the layer the input channels enter.
    head : callable
        ``head(net)``: name of the head's ``nn.Linear`` (its input: the penultimate features), or None.
    gradcam_layer : callable
        ``gradcam_layer(net)``: name of Grad-CAM's default layer, or None (found by shape).
    gradcam_reshape : {"tokens", "channels_last"} or None
        How that layer's output becomes (B, C, h, w): ViT tokens (class token dropped) to the patch
        grid; Swin's (B, H, W, C) to channels first.
    reshape_prefix : str
        A layer the user names (``gc_layer=``) under this prefix gets ``gradcam_reshape`` too …
    reshape_min_dots : int
        … when its name has at least this many dots (a ViT block, not the encoder itself).
    activations : tuple of str
        The activation modules/functions the family uses.
    relu_rules : bool or None
        Deconvolution / Guided Backprop apply (ReLU networks); None: checked on the network.
    fast_twin : bool
        The gradient twin is built from the known structure (no tracing; ``explain.fast_backward``).
    parallel_safe : bool
        Two CPU gradient workers may run the network side by side (measured and checked).
    stages : callable
        ``stages(net)``: the cascading-randomisation order, output first (``metrics.sanity``).
    """

    name: str
    architectures: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    plain_args_only: bool = False
    is_module: Callable[[nn.Module], bool] = lambda m: False
    first_layer: Callable[[nn.Module], str | None] = first_conv
    head: Callable[[nn.Module], str | None] = last_linear
    gradcam_layer: Callable[[nn.Module], str | None] = _no_layer
    gradcam_reshape: Reshape | None = None
    reshape_prefix: str = ""
    reshape_min_dots: int = 0
    activations: tuple[str, ...] = ()
    relu_rules: bool | None = None
    fast_twin: bool = False
    parallel_safe: bool = False
    stages: Callable[[nn.Module], list[str]] = children_stages

    def matches(self, architecture: str, architecture_args: Mapping[str, Any] | None = None) -> bool:
        """True when a card's ``architecture`` (with its ``architecture_args``) is of this family."""
        if architecture in self.architectures:
            return not (self.plain_args_only and architecture_args)
        return bool(self.prefixes) and architecture.lower().startswith(self.prefixes)

    def reshape_of(self, layer: str) -> Reshape | None:
        """The reshape a layer named by the user needs (None: a (B, C, h, w) output)."""
        if self.reshape_prefix and layer.startswith(self.reshape_prefix) and layer.count(".") >= self.reshape_min_dots:
            return self.gradcam_reshape
        return None


#: torchvision's video ResNets (3D convolutions), used on CT volumes.
VIDEO_RESNETS: tuple[str, ...] = ("r3d_18", "mc3_18", "r2plus1d_18")

RESNET = Family(
    "resnet", architectures=RESNETS, plain_args_only=True, is_module=_split_relu_resnet,
    first_layer=lambda net: "conv1", gradcam_layer=_layer4, activations=("ReLU",), relu_rules=True,
    fast_twin=True, parallel_safe=True, stages=resnet_stages)
VIDEO_RESNET = Family(
    "video-resnet", architectures=VIDEO_RESNETS, is_module=_type_named("VideoResNet"),
    first_layer=lambda net: "stem.0", gradcam_layer=_layer4, activations=("ReLU",), relu_rules=True,
    stages=resnet_stages)
COMPACT3D = Family(
    "ctinterp-compact3d", architectures=("ctinterp.CompactCNN3d",), is_module=_type_named("CompactCNN3d"),
    first_layer=lambda net: "stem.0", head=lambda net: "fc", gradcam_layer=_features, activations=("ReLU",),
    relu_rules=True)
TORCHVISION_RESNET = Family(
    "torchvision-resnet", prefixes=("resnet", "resnext", "wide_resnet"), is_module=_resnet_like,
    gradcam_layer=_layer4, activations=("ReLU",), relu_rules=True, fast_twin=True, stages=resnet_stages)
DENSENET = Family(
    "densenet", prefixes=("densenet",), is_module=_type_named("DenseNet"), gradcam_layer=_features,
    activations=("ReLU",), relu_rules=True)
EFFICIENTNET = Family(
    "efficientnet", prefixes=("efficientnet",), is_module=_type_named("EfficientNet"),
    gradcam_layer=_last_feature_stage, activations=("SiLU",), relu_rules=False)
CONVNEXT = Family(
    "convnext", prefixes=("convnext",), is_module=_type_named("ConvNeXt"), gradcam_layer=_last_feature_stage,
    activations=("GELU",), relu_rules=False)
MOBILENET = Family(
    "mobilenet", prefixes=("mobilenet",), is_module=_type_named("MobileNetV2", "MobileNetV3"),
    gradcam_layer=_last_feature_stage, activations=("ReLU6", "Hardswish", "ReLU"), relu_rules=False)
SWIN = Family(
    "swin", prefixes=("swin",), is_module=_type_named("SwinTransformer"), gradcam_layer=_last_stage_of_features,
    gradcam_reshape="channels_last", reshape_prefix="features.", activations=("GELU",), relu_rules=False)
VIT = Family(
    "vit", prefixes=("vit",), is_module=_type_named("VisionTransformer"), gradcam_layer=_vit_last_norm,
    gradcam_reshape="tokens", reshape_prefix="encoder.layers.", reshape_min_dots=2, activations=("GELU",),
    relu_rules=False)
MONAI_DENSENET = Family(
    "monai-densenet", prefixes=("monai.densenet",), is_module=_monai_densenet, gradcam_layer=_features,
    activations=("ReLU",), relu_rules=True)
MONAI = Family("monai", prefixes=("monai.",), is_module=_monai)
EXPORTED = Family(
    "torchscript/exported", architectures=STANDALONE, is_module=_standalone, gradcam_layer=_no_layer,
    relu_rules=False)
#: Any other network: Grad-CAM's layer found by shape, D / GBP checked on the network.
GENERIC = Family("generic")

#: The registry, first match first; :data:`GENERIC` when none matches.
FAMILIES: tuple[Family, ...] = (RESNET, VIDEO_RESNET, COMPACT3D, TORCHVISION_RESNET, DENSENET, EFFICIENTNET, CONVNEXT,
                                MOBILENET, SWIN, VIT, MONAI_DENSENET, MONAI, EXPORTED)


def family_of(obj: Any) -> Family:
    """The family of a classifier, a model card, an ``nn.Module`` or an architecture name.

    A classifier or a card is recognised by its card's ``architecture`` (and
    ``architecture_args``); a bare module by its structure or type. :data:`GENERIC` when no
    family matches.
    """
    if isinstance(obj, nn.Module):
        return next((f for f in FAMILIES if f.is_module(obj)), GENERIC)
    card = getattr(obj, "card", obj)
    if isinstance(card, str):
        name, args = card, None
    elif hasattr(card, "architecture"):
        name, args = card.architecture, getattr(card, "architecture_args", None)
    else:
        raise TypeError(f"family_of takes a Classifier, a ModelCard, an nn.Module or an architecture name, "
                        f"not {type(obj).__name__}")
    return next((f for f in FAMILIES if f.matches(name, args)), GENERIC)


def model_stages(module: nn.Module) -> list[str]:
    """Stages to randomise from the output down (cascading randomisation), by the module's family:
    ResNets their named stages (:func:`resnet_stages`), any other network :func:`children_stages`."""
    return family_of(module).stages(module)
