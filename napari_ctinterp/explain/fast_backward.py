"""A gradient twin of the model: the same forward, bit for bit, with a cheaper backward to the input.

Why our own code: profiling the engine on CPU (resnet18, 256², batch 16, 2 threads) showed two
avoidable costs in PyTorch's backward pass when only the input gradient is wanted.

* The first convolution's backward to its input (1 channel in, 64 out, 7×7, stride 2) took
  136–188 ms per batch, 4–5× its own forward and ~15 % of a whole gradient evaluation: oneDNN's
  backward-data kernel is poor when the convolution has very few input channels. The same
  gradient as one matrix product (output gradient × weights → columns) and ``F.fold`` (col2im)
  takes 40–54 ms and agrees to 3·10⁻⁷ relative.
* Every eval-mode BatchNorm after a convolution costs a full pass over its gradient
  (``grad × γ/√(var+ε)``, ~4 % of the time). That per-channel scale folds into the convolution's
  weights for the backward pass, so the pass disappears.

Only backward passes change. The twin's forward calls the very same ``F.conv2d`` and
``F.batch_norm`` as the model, so ReLU masks and max-pool choices, the only places where a rounding
difference could send a gradient down another path, are exactly those of the unmodified model;
``gradient_twin`` checks that bit-equality on the input it is about to explain and falls back to
the plain model otherwise. ResNets (every model this project trains; the families whose registry
entry has ``fast_twin``, ``model.families``) get their twin from their known structure; other
models by ``torch.fx`` tracing; a model that cannot be traced, or a TorchScript model, is used as
it is.
"""

from __future__ import annotations

import copy
import logging
import threading
import weakref
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import fx, nn

from ..model.families import family_of

log = logging.getLogger(__name__)

#: Convolutions with at most this many input channels get the matmul + fold backward on CPU (a
#: grey or RGB first layer); wider ones keep oneDNN's kernel, as fast as their forward there.
MAX_IN_CHANNELS = 4


@dataclass
class _Entry:
    """A model's twin (None: use the model), the modules it was built from (weakly), the shapes checked.

    Never holds the model itself, so the weak cache lets the model go.
    """

    modules: tuple[weakref.ref, ...]
    twin: nn.Module | None
    checked: set = field(default_factory=set)

    def built_from(self, net: nn.Module) -> bool:
        """True when ``net``'s modules are still those the twin was built from (the very objects:
        a replaced layer, even one at a freed layer's address, builds a new twin)."""
        mods = list(net.modules())
        return len(mods) == len(self.modules) and all(ref() is m for ref, m in zip(self.modules, mods))


_TWINS: weakref.WeakKeyDictionary[nn.Module, _Entry] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _input_grad(grad_out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, conf: tuple) -> torch.Tensor:
    """d(loss)/d(x) of ``F.conv2d(x, weight, ...)`` given d(loss)/d(output)."""
    stride, padding, dilation, groups = conf
    weight = weight.to(grad_out.dtype)
    if x.device.type == "cpu" and groups == 1 and x.shape[1] <= MAX_IN_CHANNELS:
        c_out = weight.shape[0]
        # (C_in·kh·kw, C_out) @ (N, C_out, L) -> (N, C_in·kh·kw, L), then col2im sums the taps
        cols = torch.matmul(weight.reshape(c_out, -1).t(), grad_out.flatten(2))
        return F.fold(cols, tuple(x.shape[-2:]), tuple(weight.shape[-2:]), dilation=dilation, padding=padding,
                      stride=stride)
    return torch.ops.aten.convolution_backward(grad_out, x, weight, None, stride, padding, dilation, False,
                                               [0, 0], groups, [True, False, False])[0]


class _Conv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, conf):  # type: ignore[override]
        ctx.save_for_backward(x, weight)
        ctx.conf = conf
        return F.conv2d(x, weight, bias, *conf)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        x, weight = ctx.saved_tensors
        return _input_grad(grad_out, x, weight, ctx.conf), None, None, None


class _ConvBN(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, conf, mean, var, gamma, beta, eps, folded):  # type: ignore[override]
        z = F.conv2d(x, weight, bias, *conf)
        ctx.save_for_backward(x, folded)
        ctx.conf = conf
        return F.batch_norm(z, mean, var, gamma, beta, False, 0.0, eps)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        x, folded = ctx.saved_tensors
        return (_input_grad(grad_out, x, folded, ctx.conf),) + (None,) * 9


def _plain_conv(conv: nn.Module) -> bool:
    return (type(conv) is nn.Conv2d and conv.padding_mode == "zeros" and not isinstance(conv.padding, str)
            and not any(p.requires_grad for p in conv.parameters()))


def _eval_bn(bn: nn.Module) -> bool:
    return (type(bn) is nn.BatchNorm2d and not bn.training and bn.running_mean is not None
            and not any(p.requires_grad for p in bn.parameters()))


def _conf(conv: nn.Conv2d) -> tuple:
    return (conv.stride, conv.padding, conv.dilation, conv.groups)


class FastConv(nn.Module):
    """A frozen ``Conv2d`` with the cheaper input-gradient backward (used for few-channel inputs)."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad and _plain_conv(self.conv):
            return _Conv.apply(x, self.conv.weight, self.conv.bias, _conf(self.conv))
        return self.conv(x)


class FastConvBN(nn.Module):
    """``bn(conv(x))`` (frozen, eval) whose backward folds the BatchNorm scale into the conv weights."""

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
        super().__init__()
        self.conv, self.bn = conv, bn
        self._folded: tuple[tuple, torch.Tensor] | None = None

    def folded_weight(self) -> torch.Tensor:
        """conv weight × γ/√(var + ε) per output channel, cached until a parameter changes in place."""
        tensors = [t for t in (self.conv.weight, self.bn.running_var, self.bn.weight) if t is not None]
        key = tuple((t.data_ptr(), t._version) for t in tensors) + (self.bn.eps,)
        if self._folded is None or self._folded[0] != key:
            b = self.bn
            scale = torch.rsqrt(b.running_var + b.eps)
            if b.weight is not None:
                scale = b.weight * scale
            self._folded = (key, self.conv.weight * scale.view(-1, 1, 1, 1))
        return self._folded[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, b = self.conv, self.bn
        if torch.is_grad_enabled() and x.requires_grad and _plain_conv(c) and _eval_bn(b):
            return _ConvBN.apply(x, c.weight, c.bias, _conf(c), b.running_mean, b.running_var, b.weight, b.bias, b.eps,
                                 self.folded_weight())
        return b(c(x))


def _module(gm: fx.GraphModule, node: fx.Node) -> nn.Module | None:
    return gm.get_submodule(node.target) if node.op == "call_module" else None


def build_twin(net: nn.Module) -> fx.GraphModule:
    """Trace ``net`` and replace conv → BatchNorm pairs (and few-channel convs) by their fast versions.

    The twin shares every parameter and submodule with ``net`` (hooks on its ReLUs still apply).
    """
    gm = fx.symbolic_trace(net)
    count = 0
    for node in list(gm.graph.nodes):
        conv = _module(gm, node)
        if type(conv) is not nn.Conv2d:
            continue
        users = list(node.users)
        bn = _module(gm, users[0]) if len(users) == 1 else None
        if type(bn) is nn.BatchNorm2d and users[0].args == (node,) and not users[0].kwargs:
            fast, last = FastConvBN(conv, bn), users[0]
        elif conv.in_channels <= MAX_IN_CHANNELS:
            fast, last = FastConv(conv), node
        else:
            continue
        name = f"_fast{count}"
        count += 1
        gm.add_submodule(name, fast)
        with gm.graph.inserting_after(last):
            new = gm.graph.call_module(name, node.args, node.kwargs)
        last.replace_all_uses_with(new)
        if last is not node:
            gm.graph.erase_node(last)
        gm.graph.erase_node(node)
    gm.graph.lint()
    gm.recompile()
    return gm


def _copy_tree(module: nn.Module, replace: dict[int, nn.Module]) -> nn.Module:
    """A copy of the container tree whose leaves are the original modules (or their replacements)."""
    if id(module) in replace:
        return replace[id(module)]
    if not module._modules:
        return module
    twin = copy.copy(module)  # same class and attributes, so the same forward code
    twin.__dict__["_modules"] = {name: None if child is None else _copy_tree(child, replace)
                                 for name, child in module._modules.items()}
    return twin


def resnet_twin(net: nn.Module) -> nn.Module | None:
    """The twin of a torchvision ResNet (ours included) built from its known structure, or None.

    No ``torch.fx`` tracing: tracing patches ``nn.Module.__call__`` for the whole process while it
    runs, which breaks any other thread running a model at that moment (a napari widget
    classifying, say). Containers are copied, leaves are shared; each ``conv → bn`` pair the
    blocks' ``forward`` code applies back to back becomes ``FastConvBN`` and the BN an identity.
    """
    from torchvision.models import ResNet
    from torchvision.models.resnet import BasicBlock, Bottleneck

    from ..model.architectures import SplitReLUBasicBlock, SplitReLUBottleneck

    known_blocks = (BasicBlock, Bottleneck, SplitReLUBasicBlock, SplitReLUBottleneck)
    if type(net) is not ResNet:
        return None
    pairs = [(net.conv1, net.bn1)]
    for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
        for block in layer:
            if type(block) not in known_blocks:
                return None
            pairs += [(block.conv1, block.bn1), (block.conv2, block.bn2)]
            if isinstance(block, Bottleneck):
                pairs.append((block.conv3, block.bn3))
            ds = block.downsample
            if type(ds) is nn.Sequential and len(ds) == 2:
                pairs.append((ds[0], ds[1]))
    replace: dict[int, nn.Module] = {}
    for conv, bn in pairs:
        if type(conv) is nn.Conv2d and type(bn) is nn.BatchNorm2d:
            replace[id(conv)], replace[id(bn)] = FastConvBN(conv, bn), nn.Identity()
    return _copy_tree(net, replace)


def gradient_twin(net: nn.Module, example: torch.Tensor) -> nn.Module:
    """The fast twin of ``net`` (cached per model), or ``net`` itself when no twin can be trusted.

    The families with a structural twin (ResNets) get ``resnet_twin``; other models a ``torch.fx``
    twin (``build_twin``; tracing is not safe while another thread runs a model). ``example`` (a
    batch of the inputs about to be explained) checks, once per input shape, that the twin's forward
    equals the model's bit for bit. The cache follows the model: replacing one of its layers builds
    a new twin.
    """
    if isinstance(net, torch.jit.ScriptModule):
        return net
    with _LOCK:
        entry = _TWINS.get(net)
        if entry is None or not entry.built_from(net):
            try:
                twin = resnet_twin(net) if family_of(net).fast_twin else None
                if twin is None:
                    twin = build_twin(net)
            except Exception as exc:  # noqa: BLE001 - any failure means: use the model as it is
                log.info("no gradient twin for %s (%s); using the model as it is", type(net).__name__, exc)
                twin = None
            entry = _TWINS[net] = _Entry(tuple(weakref.ref(m) for m in net.modules()), twin)
    if entry.twin is None:
        return net
    key = (tuple(example.shape[1:]), example.dtype, str(example.device))
    if key in entry.checked:
        return entry.twin
    with torch.enable_grad():  # the path gradients take, custom backward included
        x = example.detach().requires_grad_(True)
        same = torch.equal(entry.twin(x), net(x))
    if not same:
        log.warning("the gradient twin's forward differs from the model's; using the model as it is")
        entry.twin = None
        return net
    entry.checked.add(key)
    return entry.twin
