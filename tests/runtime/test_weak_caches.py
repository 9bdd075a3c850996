"""Caches keyed by the model itself, weakly: an entry goes with its model (never an id() that a new
model could reuse)."""

from __future__ import annotations

import gc
import weakref

import torch
from torch import nn

from napari_ctinterp.explain import deconv, fast_backward
from napari_ctinterp.model import Classifier, ModelCard, build
from napari_ctinterp.runtime import batching


def _small() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 1))


def test_the_batch_size_estimate_goes_with_its_model():
    clf = Classifier(_small(), ModelCard(input_size=(32, 32)), torch.device("cpu"))
    batching.largest_activation_bytes(clf, (32, 32))
    assert clf.module in batching._PER_IMAGE
    gone = weakref.ref(clf.module)
    n = len(batching._PER_IMAGE)
    del clf
    gc.collect()
    assert gone() is None and len(batching._PER_IMAGE) == n - 1


def test_the_relu_check_goes_with_its_model():
    net = _small()
    deconv.check_relus_reachable(net, torch.zeros(1, 1, 16, 16))
    assert net in deconv._CHECKED and deconv.functional_relus(net) == 0
    n = len(deconv._CHECKED)
    del net
    gc.collect()
    assert len(deconv._CHECKED) == n - 1


def test_the_twin_cache_remembers_the_layers_weakly_and_sees_a_replaced_container():
    net = build("resnet18").eval()
    for p in net.parameters():
        p.requires_grad_(False)
    x = torch.rand(1, 1, 64, 64)
    twin = fast_backward.gradient_twin(net, x)
    entry = fast_backward._TWINS[net]
    assert all(isinstance(r, weakref.ref) for r in entry.modules) and entry.built_from(net)
    old = weakref.ref(net.layer4)
    net.layer4 = nn.Sequential(*net.layer4.children())  # same leaves, a new container
    gc.collect()
    assert old() is None  # the cache kept no reference to the replaced container
    assert not entry.built_from(net)
    assert fast_backward.gradient_twin(net, x) is not twin
