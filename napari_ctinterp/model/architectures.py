"""CT classifier networks: torchvision's ResNets tuned for attribution, and any other builder.

ResNet-18/34/50 (the study's models) are built with every ReLU a distinct, non-inplace
``nn.ReLU`` module: attribution methods that rewrite the ReLU backward rule (Deconvolution) reach
each of them through hooks, and inplace ReLUs break backward hooks; their state_dict keys are
torchvision's. Every other torchvision classification builder (``densenet121``,
``efficientnet_b0``, ``convnext_tiny``, ``vit_b_16``, ``swin_t``, ...) and MONAI's networks
(``monai.DenseNet121``, when MONAI is installed) are built as their library makes them; only the
first convolution (input channels) and the head (number of logits) are shaped from the card, by
the generic rules below (where the layers are: ``model.families``), so users never name those layers.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torchvision import models
from torchvision.models.resnet import BasicBlock, Bottleneck

from .families import RESNETS, STANDALONE, family_of

Architecture = str
OutputKind = Literal["logit", "softmax2", "sigmoid", "softmax", "multilabel"]
#: The ResNets with split ReLUs (the fast path of the engine; v1 name of ``families.RESNETS``).
ARCHITECTURES = RESNETS
#: v1 output names and their v2 meaning.
OUTPUT_ALIASES = {"logit": "sigmoid", "softmax2": "softmax"}
OUTPUT_KINDS: tuple[str, ...] = ("logit", "softmax2", "sigmoid", "softmax", "multilabel")


def torchvision_builders() -> list[str]:
    """Names of torchvision's classification builders (``models.list_models``)."""
    return sorted(models.list_models(module=models))


def video_builders() -> list[str]:
    """torchvision's video classification builders (3D convolutions: ``r3d_18``, ``mc3_18``, …)."""
    return sorted(models.list_models(module=models.video))


def check_architecture(name: str, spatial_dims: int | None = None) -> None:
    """``ValueError`` naming the choices unless ``name`` can be built (or is a standalone file);
    with ``spatial_dims``, also unless it is a network of that many dimensions (a 2D card naming a
    3D network, or the reverse, is refused naming both)."""
    if name in RESNETS or name in STANDALONE:
        if name in RESNETS and spatial_dims == 3:
            raise ValueError(_dims_message(name, 2))
        return
    if name in video_builders() or name.startswith("ctinterp."):
        if spatial_dims == 2:
            raise ValueError(_dims_message(name, 3))
        if name.startswith("ctinterp."):
            from .demo3d_net import ARCHITECTURES

            if name not in ARCHITECTURES:
                raise ValueError(f"unknown architecture {name!r}; the package's own: {', '.join(ARCHITECTURES)}")
        return
    if name.startswith("monai."):
        try:
            import monai.networks.nets as nets
        except ImportError:
            raise ValueError(f"architecture {name!r} needs MONAI: pip install 'napari-ctinterp[monai]'") from None
        if not hasattr(nets, name.split(".", 1)[1]):
            raise ValueError(f"unknown architecture {name!r}: MONAI has no network "
                             f"{name.split('.', 1)[1]!r} in monai.networks.nets")
        return
    if name not in torchvision_builders():
        raise ValueError(f"unknown architecture {name!r}; choose a torchvision classification builder "
                         f"(e.g. resnet50, densenet121, efficientnet_b0, convnext_tiny, vit_b_16, swin_t; for "
                         f"volumes r3d_18, mc3_18, r2plus1d_18), 'monai.<Network>', or 'torchscript' / 'exported' "
                         f"for a self-contained file")
    if spatial_dims == 3:
        raise ValueError(_dims_message(name, 2))


def _dims_message(name: str, dims: int) -> str:
    if dims == 2:
        return (f"the card says spatial_dims 3 (a model of the whole volume) but {name!r} is a 2D network (it takes "
                f"slices): use a 3D one (r3d_18, mc3_18, r2plus1d_18, or monai.<Network> such as monai.DenseNet121, "
                f"built with spatial_dims 3), or make the card 2D (spatial_dims 2, input_size [H, W])")
    return (f"{name!r} is a 3D network (it takes volumes) but the card is 2D: set \"spatial_dims\": 3 and "
            f"input_size [D, H, W] in the card")


class SplitReLUBasicBlock(BasicBlock):
    """torchvision ``BasicBlock`` with one ReLU module per activation (same arithmetic)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu_out(out + identity)


class SplitReLUBottleneck(Bottleneck):
    """torchvision ``Bottleneck`` with one ReLU module per activation (same arithmetic)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu_mid(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu_out(out + identity)


def _split_relus(net: nn.Module) -> None:
    """Give every use of a ReLU its own non-inplace module (torchvision reuses ``self.relu``)."""
    for m in net.modules():
        if isinstance(m, (BasicBlock, Bottleneck)):
            m.relu = nn.ReLU(inplace=False)
            m.relu_out = nn.ReLU(inplace=False)
            if isinstance(m, Bottleneck):
                m.relu_mid = nn.ReLU(inplace=False)
                m.__class__ = SplitReLUBottleneck
            else:
                m.__class__ = SplitReLUBasicBlock
    net.relu = nn.ReLU(inplace=False)


def _resnet(architecture: str, in_channels: int, n_logits: int) -> nn.Module:
    net = getattr(models, architecture)(weights=None)
    net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    net.fc = nn.Linear(net.fc.in_features, n_logits)
    _split_relus(net)
    return net


def _set_submodule(net: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(net.get_submodule(parent) if parent else net, leaf, new)


def _first_conv_in(net: nn.Module, architecture: str, in_channels: int) -> None:
    """Give the first convolution (the family's ``first_layer``) ``in_channels`` inputs (same
    kernel, stride, padding, bias)."""
    name = family_of(architecture).first_layer(net)
    m = net.get_submodule(name) if name is not None else None
    if not isinstance(m, (nn.Conv2d, nn.Conv3d)):
        raise ValueError("the network has no Conv2d / Conv3d layer whose input channels could be set from the card")
    if m.in_channels != in_channels:
        _set_submodule(net, name, type(m)(
            in_channels, m.out_channels, m.kernel_size, stride=m.stride, padding=m.padding,
            dilation=m.dilation, groups=1 if m.groups == m.in_channels else m.groups,
            bias=m.bias is not None, padding_mode=m.padding_mode))


def _monai(name: str, in_channels: int, n_logits: int, args: dict, spatial_dims: int = 2) -> nn.Module:
    import monai.networks.nets as nets

    cls = getattr(nets, name.split(".", 1)[1])
    if "spatial_dims" in args and int(args["spatial_dims"]) != spatial_dims:
        raise ValueError(f"architecture_args say spatial_dims {args['spatial_dims']} but the card says "
                         f"{spatial_dims}: give it once, in the card (\"spatial_dims\")")
    kw = {"spatial_dims": spatial_dims, "in_channels": in_channels, "out_channels": n_logits, **args}
    try:
        return cls(**kw)
    except TypeError:  # ResNet-style MONAI nets name them differently
        kw = {"spatial_dims": spatial_dims, "n_input_channels": in_channels, "num_classes": n_logits, **args}
        return cls(**kw)


def build(architecture: str = "resnet18", output: str = "logit", *, in_channels: int = 1,
          n_logits: int | None = None, architecture_args: dict | None = None, spatial_dims: int = 2) -> nn.Module:
    """Build an untrained CT classifier (no pretrained weights: nothing is downloaded).

    Parameters
    ----------
    architecture : str
        ``resnet18`` / ``resnet34`` / ``resnet50`` (split ReLUs), any other torchvision
        classification builder name, or ``monai.<Network>``.
    output : str
        ``logit`` / ``sigmoid`` (one logit), ``softmax2`` (two logits), ``softmax`` or
        ``multilabel`` (``n_logits`` logits).
    in_channels : int
        Input channels (the card's ``channels``).
    n_logits : int, optional
        Logits of the head; default 1 for one-logit outputs, 2 otherwise.
    architecture_args : dict, optional
        Keyword arguments of the builder (e.g. ViT ``image_size``).
    spatial_dims : int
        2 (slices) or 3 (volumes: torchvision's video nets, MONAI nets built with spatial_dims 3).

    Returns
    -------
    torch.nn.Module
        Input (B, in_channels, H, W) — (B, in_channels, D, H, W) in 3D; output (B, n_logits) logits.
    """
    if output not in OUTPUT_KINDS:
        raise ValueError(f"unknown output kind {output!r}; choose one of {OUTPUT_KINDS}")
    check_architecture(architecture, spatial_dims)
    if architecture in STANDALONE:
        raise ValueError(f"a {architecture!r} model is read from its file, not built: load it with model.load")
    kind = OUTPUT_ALIASES.get(output, output)
    if n_logits is None:
        n_logits = 1 if kind == "sigmoid" else 2
    args = dict(architecture_args or {})
    if architecture in RESNETS and not args:
        return _resnet(architecture, in_channels, n_logits)
    if architecture.startswith("monai."):
        return _monai(architecture, in_channels, n_logits, args, spatial_dims)
    if architecture.startswith("ctinterp."):  # the package's own (the 3D demo's compact CNN)
        from .demo3d_net import build_demo3d

        return build_demo3d(architecture, in_channels=in_channels, n_logits=n_logits, **args)
    try:
        net = models.get_model(architecture, weights=None, num_classes=n_logits, **args)
    except TypeError as e:
        raise ValueError(f"architecture_args {args} do not fit torchvision's {architecture}: {e}") from None
    _first_conv_in(net, architecture, in_channels)
    return net
