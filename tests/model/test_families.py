"""The family registry: one entry per network family, read by Grad-CAM, the engine, sanity and the builders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision import models

from napari_ctinterp.explain.deconv import UnreachableReLUError, check_relus_reachable
from napari_ctinterp.explain.gradcam import family_layer
from napari_ctinterp.model import FAMILIES, Classifier, ModelCard, build, default_references, family_of
from napari_ctinterp.model.families import GENERIC, model_stages
from napari_ctinterp.runtime.parallel import parallel_safe


@pytest.mark.parametrize(("architecture", "family"), [
    ("resnet18", "resnet"), ("resnet50", "resnet"), ("resnet101", "torchvision-resnet"),
    ("resnext50_32x4d", "torchvision-resnet"), ("wide_resnet50_2", "torchvision-resnet"),
    ("densenet121", "densenet"), ("efficientnet_b0", "efficientnet"), ("efficientnet_v2_s", "efficientnet"),
    ("convnext_tiny", "convnext"), ("mobilenet_v3_small", "mobilenet"), ("swin_t", "swin"), ("vit_b_16", "vit"),
    ("monai.DenseNet121", "monai-densenet"), ("monai.SEResNet50", "monai"), ("torchscript", "torchscript/exported"),
    ("exported", "torchscript/exported"), ("alexnet", "generic"), ("vgg11", "generic"),
])
def test_every_architecture_name_finds_its_family(architecture, family):
    assert family_of(architecture).name == family


def test_a_card_and_its_classifier_have_the_same_family_and_arguments_count():
    card = ModelCard(architecture="resnet18", input_size=(64, 64))
    clf = Classifier(build("resnet18"), card, torch.device("cpu"))
    assert family_of(clf) is family_of(card) is family_of("resnet18")
    # our split-ReLU ResNet only without builder arguments: with them torchvision builds its own
    assert family_of(ModelCard(architecture="resnet18", architecture_args={"zero_init_residual": True})).name == \
        "torchvision-resnet"
    with pytest.raises(TypeError, match="family_of takes"):
        family_of(3)


def test_a_bare_module_is_recognised_by_its_structure():
    assert family_of(build("resnet18")).name == "resnet"
    assert family_of(models.resnet18(weights=None)).name == "torchvision-resnet"
    assert family_of(models.densenet121(weights=None)).name == "densenet"
    assert family_of(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3))) is GENERIC
    assert family_of(torch.jit.script(torch.nn.Conv2d(1, 2, 3))).name == "torchscript/exported"


def test_each_family_has_one_entry_and_the_flags_of_today():
    names = [f.name for f in FAMILIES]
    assert len(names) == len(set(names))
    fast = {f.name for f in FAMILIES if f.fast_twin}
    assert fast == {"resnet", "torchvision-resnet"}
    assert {f.name for f in FAMILIES if f.parallel_safe} == {"resnet"}


def test_two_gradient_workers_only_for_our_resnets():
    def clf(arch: str, **args) -> Classifier:
        card = ModelCard(architecture=arch, input_size=(64, 64), architecture_args=args)
        return Classifier(build(arch, architecture_args=args), card, torch.device("cpu"))

    assert parallel_safe(clf("resnet18"))
    assert not parallel_safe(clf("resnet18", zero_init_residual=True))
    assert not parallel_safe(clf("mobilenet_v3_small"))


@pytest.mark.parametrize(("architecture", "layer"), [
    ("resnet18", "layer4"), ("densenet121", "features"), ("efficientnet_b0", "features.8"),
    ("mobilenet_v3_small", "features.12"),
])
def test_grad_cams_default_layer_comes_from_the_family(architecture, layer):
    net = build(architecture)
    assert family_of(architecture).gradcam_layer(net) == layer
    found = family_layer(net, architecture)
    assert found is not None and found.name == layer and found.transform is None


def test_the_reshape_of_a_named_layer_comes_from_the_family():
    assert family_of("vit_b_16").reshape_of("encoder.layers.encoder_layer_3") == "tokens"
    assert family_of("vit_b_16").reshape_of("encoder.layers") is None
    assert family_of("swin_t").reshape_of("features.5") == "channels_last"
    assert family_of("resnet18").reshape_of("layer3") is None


@pytest.mark.parametrize("architecture", ["resnet18", "densenet121", "efficientnet_b0", "mobilenet_v3_small"])
def test_the_registry_says_where_deconvolution_applies_as_the_network_check_finds(architecture):
    family = family_of(architecture)
    net = build(architecture).eval()
    x = torch.zeros(1, 1, 64, 64)
    if family.relu_rules:
        check_relus_reachable(net, x, "D")
    else:
        with pytest.raises(UnreachableReLUError):
            check_relus_reachable(net, x, "D")


def test_first_layer_and_head_are_found_per_family():
    net = build("densenet121")
    fam = family_of("densenet121")
    assert fam.first_layer(net) == "features.conv0"
    assert fam.head(net) == "classifier"
    assert family_of("resnet18").first_layer(build("resnet18")) == "conv1"


def test_randomisation_order_comes_from_the_family():
    assert model_stages(build("resnet18")) == ["fc", "layer4", "layer3", "layer2", "layer1", "conv1"]
    assert model_stages(build("densenet121"))[:2] == ["classifier", "features.norm5"]


def test_the_demo_models_default_references_and_no_other():
    card = ModelCard(input_size=(64, 64))
    demo = Classifier(build("resnet18"), card, torch.device("cpu"), source="demo")
    refs, text = default_references(demo)
    assert refs.shape == (16, 512, 512) and refs.dtype == np.float32
    assert text == "demo set (16 phantom slices)"
    assert demo.default_references()[1] == text
    other = Classifier(build("resnet18"), card, torch.device("cpu"), source="/tmp/mine.safetensors")
    assert default_references(other) is None and other.default_references() is None
