"""The gradient twin: the model's forward bit for bit, the same input gradient, a cheaper backward."""

from __future__ import annotations

import logging

import pytest
import torch
from explain_helpers import randomise_batchnorm
from torch import nn

from napari_ctinterp.explain import fast_backward as fb
from napari_ctinterp.explain.fast_backward import FastConv, FastConvBN, build_twin, gradient_twin
from napari_ctinterp.model import build


def _input_grad(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    xg = x.clone().requires_grad_(True)
    out = net(xg)
    w = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    (g,) = torch.autograd.grad((out * w).sum(), xg)
    return out.detach(), g


class DataDependent(nn.Module):
    """Python control flow on a tensor: fx cannot trace it, so it gets no twin."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x):
        return self.conv(x) if x.sum() > 0 else -self.conv(x)


class Branchy(nn.Module):
    """A conv whose output feeds its BatchNorm and a skip: the pair must not be fused."""

    def __init__(self, c_in: int, kernel: int, stride: int, padding: int, dilation: int, groups: int, bias: bool):
        super().__init__()
        self.stem = nn.Conv2d(c_in, 8, kernel, stride, padding, dilation, bias=bias)
        self.stem_bn = nn.BatchNorm2d(8)
        self.conv = nn.Conv2d(8, 8, 3, padding=1, groups=groups, bias=bias)
        self.bn = nn.BatchNorm2d(8)
        self.shared = nn.Conv2d(8, 8, 1)
        self.shared_bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()

    def forward(self, x):
        h = self.relu(self.stem_bn(self.stem(x)))
        h = self.relu(self.bn(self.conv(h)))
        s = self.shared(h)
        return self.relu(self.shared_bn(s)) + s


@pytest.mark.parametrize(
    ("c_in", "kernel", "stride", "padding", "dilation", "groups", "bias", "size"),
    [
        (1, 7, 2, 3, 1, 1, False, (64, 64)),  # the ResNet stem
        (1, 7, 2, 3, 1, 2, False, (37, 50)),  # odd sizes: trailing rows feed no output
        (3, 3, 1, 1, 1, 4, True, (20, 24)),
        (2, 5, 3, 0, 2, 1, True, (31, 29)),
        (8, 1, 1, 0, 1, 8, False, (9, 11)),  # a wide first conv keeps oneDNN's backward
    ],
)
def test_twin_forward_bits_and_input_gradient(c_in, kernel, stride, padding, dilation, groups, bias, size):
    torch.manual_seed(0)
    net = randomise_batchnorm(Branchy(c_in, kernel, stride, padding, dilation, groups, bias))
    twin = build_twin(net)
    kinds = [type(m).__name__ for n, m in twin.named_children() if n.startswith("_fast")]
    assert kinds == ["FastConvBN", "FastConvBN"]  # stem+BN, conv+BN; the shared conv is left alone
    x = torch.rand(5, c_in, *size)
    for fmt in (torch.contiguous_format, torch.channels_last):
        out0, g0 = _input_grad(net, x.contiguous(memory_format=fmt))
        out1, g1 = _input_grad(twin, x.contiguous(memory_format=fmt))
        assert torch.equal(out0, out1)  # the forward is untouched, bit for bit
        assert g1.shape == x.shape
        assert float((g1 - g0).norm() / g0.norm()) < 1e-5


def test_a_few_channel_conv_without_batchnorm_gets_the_fold_backward():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(1, 16, 7, 2, 3), nn.ReLU(), nn.Conv2d(16, 4, 3)).requires_grad_(False)
    twin = build_twin(net)
    assert [type(m) for n, m in twin.named_children() if n.startswith("_fast")] == [FastConv]
    x = torch.rand(3, 1, 33, 40)
    out0, g0 = _input_grad(net, x)
    out1, g1 = _input_grad(twin, x)
    assert torch.equal(out0, out1) and float((g1 - g0).norm() / g0.norm()) < 1e-6


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_the_resnet_twin_fuses_every_conv_batchnorm_pair_without_tracing(arch, monkeypatch):
    net = randomise_batchnorm(build(arch))
    monkeypatch.setattr(fb.fx, "symbolic_trace", lambda *a, **k: pytest.fail("a ResNet must not be traced"))
    x = torch.rand(2, 1, 64, 64).contiguous(memory_format=torch.channels_last)
    twin = gradient_twin(net, x)
    fused = [m for m in twin.modules() if isinstance(m, FastConvBN)]
    assert twin is not net and len(fused) == (20 if arch == "resnet18" else 53)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in twin.modules() if m not in [f.bn for f in fused])
    out0, g0 = _input_grad(net, x)
    out1, g1 = _input_grad(twin, x)
    assert torch.equal(out0, out1) and float((g1 - g0).norm() / g0.norm()) < 1e-5
    # the twin shares the model's leaves: hooks on its ReLUs (Deconvolution) still fire
    calls = []
    h = net.relu.register_forward_hook(lambda *a: calls.append(1))
    twin(x)
    h.remove()
    assert calls == [1]
    assert gradient_twin(net, x) is twin  # cached


def test_the_cache_follows_the_model_and_lets_it_go():
    import gc
    import weakref

    net = randomise_batchnorm(build("resnet18"))
    x = torch.rand(1, 1, 32, 32)
    first = gradient_twin(net, x)
    net.layer4[1].conv2 = nn.Conv2d(512, 512, 3, padding=1, bias=False).requires_grad_(False)  # a replaced layer
    second = gradient_twin(net, x)
    assert second is not first and second.layer4[1].conv2.conv is net.layer4[1].conv2
    out0, _ = _input_grad(net, x)
    out1, _ = _input_grad(second, x)
    assert torch.equal(out0, out1)

    refs = []
    for model in (net, DataDependent().requires_grad_(False)):  # no twin for the second: not kept alive either
        gradient_twin(model, x)
        refs.append(weakref.ref(model))
    del net, model, first, second
    gc.collect()
    assert [r() for r in refs] == [None, None]


def test_trainable_or_training_mode_layers_keep_the_ordinary_backward():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4))
    twin = build_twin(net)  # parameters require gradients: training
    twin(torch.rand(2, 1, 8, 8, requires_grad=True)).sum().backward()
    assert net[0].weight.grad is not None and net[0].weight.grad.abs().sum() > 0
    assert net[1].num_batches_tracked.item() == 1  # BatchNorm ran in training mode, as the model would


def test_untraceable_torchscript_and_mismatching_twins_fall_back_to_the_model(monkeypatch, caplog):
    x = torch.rand(1, 1, 8, 8)
    dd = DataDependent().requires_grad_(False)
    assert gradient_twin(dd, x) is dd
    scripted = torch.jit.script(nn.Sequential(nn.Conv2d(1, 2, 3)))
    assert gradient_twin(scripted, x) is scripted

    class Off(nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x) + 1e-6

    net = nn.Sequential(nn.Conv2d(1, 2, 3)).requires_grad_(False)
    monkeypatch.setattr(fb, "build_twin", Off)
    with caplog.at_level(logging.WARNING):
        assert gradient_twin(net, x) is net
    assert "differs" in caplog.text


def test_folded_weights_follow_in_place_changes_of_the_batchnorm():
    torch.manual_seed(3)
    net = randomise_batchnorm(nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 3)))
    twin = build_twin(net)
    x = torch.rand(2, 1, 12, 12)
    _input_grad(twin, x)
    with torch.no_grad():
        net[1].running_var.mul_(3.0)  # e.g. a new checkpoint loaded into the same model
    out0, g0 = _input_grad(net, x)
    out1, g1 = _input_grad(twin, x)
    assert torch.equal(out0, out1) and float((g1 - g0).norm() / g0.norm()) < 1e-6
