"""The modified ReLU backward rules (Deconvolution, Guided Backprop), and the check that they reach
every ReLU of a model.

Deconvolution (Zeiler & Fergus) passes ``relu(grad_out)`` backwards through each ReLU instead of
``grad_out * (x > 0)``; Guided Backprop (Springenberg et al. 2015) passes ``relu(grad_out) * (x > 0)``,
both masks at once (Captum's ``GuidedBackprop``: the ReLU's ordinary input gradient, clamped).
Each rule is installed with forward hooks on the ``nn.ReLU`` modules (thread-independent, for the
ResNets' parallel workers) and, for ReLUs applied as functions in a
``forward`` (torchvision's DenseNet ends in ``F.relu``; Captum silently leaves those with the
ordinary rule), with a ``TorchFunctionMode`` entered around each gradient batch
(``functional_deconvolution``). ``check_relus_reachable`` runs one forward and refuses what the
rule is not defined for: other activations (SiLU, GELU, ...: the message names the activation and
the layer) and TorchScript models (their ReLUs are out of reach). Never a silently wrong map.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode


class UnreachableReLUError(ValueError):
    """The model applies ReLUs that are not ``nn.ReLU`` modules; Deconvolution cannot be trusted."""


class _DeconvReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return grad_out.clamp(min=0)


class _GuidedReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = x.clamp(min=0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (out,) = ctx.saved_tensors
        return (grad_out * (out > 0)).clamp(min=0)


#: The rules by name: ``"deconv"`` (Deconvolution) and ``"guided"`` (Guided Backprop).
_RULES = {"deconv": _DeconvReLU, "guided": _GuidedReLU}


def _relu_modules(module: nn.Module) -> list[nn.ReLU]:
    return [m for m in module.modules() if isinstance(m, nn.ReLU)]


@contextlib.contextmanager
def deconvolution_rule(module: nn.Module, rule: str = "deconv") -> Iterator[None]:
    """Within the context, every ``nn.ReLU`` of ``module`` back-propagates by ``rule``:
    ``"deconv"`` ``relu(grad_out)``, ``"guided"`` ``relu(grad_out) * (x > 0)``."""
    fn = _RULES[rule]
    relus = _relu_modules(module)
    inplace = [r.inplace for r in relus]
    handles = []
    try:
        for r in relus:
            r.inplace = False  # an inplace ReLU would have overwritten the input the hook needs
            handles.append(r.register_forward_hook(lambda m, inp, out: fn.apply(inp[0])))
        yield
    finally:
        for h in handles:
            h.remove()
        for r, ip in zip(relus, inplace):
            r.inplace = ip


_RELU_FUNCS = {F.relu, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_, F.relu_}
#: Activations Deconvolution is not defined for (module types and functions).
OTHER_ACTIVATIONS = (nn.SiLU, nn.GELU, nn.Hardswish, nn.Mish, nn.ELU, nn.SELU, nn.CELU, nn.LeakyReLU,
                     nn.PReLU, nn.Softplus, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh, nn.ReLU6, nn.Hardtanh)
_OTHER_FUNCS = {F.silu: "SiLU", F.gelu: "GELU", F.hardswish: "Hardswish", F.mish: "Mish", F.elu: "ELU",
                F.selu: "SELU", F.leaky_relu: "LeakyReLU", F.softplus: "Softplus", F.relu6: "ReLU6",
                F.hardtanh: "Hardtanh"}


class _ReluSpy(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.depth = 0  # > 0 while inside an nn.ReLU module's forward
        self.stray = 0
        self.others: list[str] = []
        self.where: list[str] = []  # module path being run

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: D105
        if func in _RELU_FUNCS and self.depth == 0:
            self.stray += 1
        elif func in _OTHER_FUNCS and self.depth == 0:
            self.others.append(f"{_OTHER_FUNCS[func]} (functional, in {self.where[-1] if self.where else 'forward'})")
        return func(*args, **(kwargs or {}))


class functional_deconvolution(TorchFunctionMode):  # noqa: N801 (used as a context manager)
    """Within the context (in this thread), ReLUs applied as functions back-propagate by ``rule``
    (``"deconv"``: ``relu(grad_out)``; ``"guided"``: ``relu(grad_out) * (x > 0)``)."""

    def __init__(self, rule: str = "deconv") -> None:
        super().__init__()
        self.fn = _RULES[rule]

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: D105
        if func in _RELU_FUNCS:
            return self.fn.apply(args[0])
        return func(*args, **(kwargs or {}))


#: Modules checked by ``check_relus_reachable`` → their functional ReLUs; weak, so an entry goes
#: with its module and a new module at a freed one's address is checked afresh.
_CHECKED: weakref.WeakKeyDictionary[nn.Module, int] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def functional_relus(module: nn.Module) -> int:
    """Functional ReLUs found by ``check_relus_reachable`` (0 if not checked or none)."""
    with _LOCK:
        return _CHECKED.get(module, 0)


def check_relus_reachable(module: nn.Module, example: torch.Tensor, methods: str = "D") -> None:
    """Raise ``UnreachableReLUError`` unless the modified ReLU rules reach every activation of a forward.

    ``methods`` names the methods asked that need them (``"D"``, ``"GBP"``, ``"D, GBP"``), for the message.
    """
    has_d = "D" in methods.replace(",", " ").split()
    title = "Deconvolution" if methods == "D" else "Deconvolution and Guided Backprop" if has_d else "Guided Backprop"
    with _LOCK:
        if module in _CHECKED:
            return
    if isinstance(module, torch.jit.ScriptModule):
        raise UnreachableReLUError(
            f"{title} needs the model as a plain torch nn.Module: a TorchScript model hides its "
            f"ReLUs, so the modified ReLU rule cannot be installed. Load the weights as safetensors or a "
            f"state_dict with a card, or leave {methods} out of the methods.")
    from ..model.checkpoints import ExportedModel

    if isinstance(module, ExportedModel):
        raise UnreachableReLUError(
            f"{title} needs the model as a plain torch nn.Module: a torch.export (.pt2) program runs its "
            f"ReLUs as graph operations, so the modified ReLU rule cannot be installed. Load the weights as "
            f"safetensors or a state_dict with a card, or leave {methods} out of the methods.")
    others = [f"{type(m).__name__} ({name})" for name, m in module.named_modules() if isinstance(m, OTHER_ACTIVATIONS)]
    spy = _ReluSpy()
    hooks = []
    for name, m in module.named_modules():
        if isinstance(m, nn.ReLU):
            hooks.append(m.register_forward_pre_hook(lambda m, i: setattr(spy, "depth", spy.depth + 1)))
            hooks.append(m.register_forward_hook(lambda m, i, o: setattr(spy, "depth", spy.depth - 1)))
        hooks.append(m.register_forward_pre_hook(lambda m, i, name=name: spy.where.append(name or "model")))
        hooks.append(m.register_forward_hook(lambda m, i, o: spy.where.pop() and None))  # None: output kept
    try:
        with torch.no_grad(), spy:
            module(example[:1])
    finally:
        for h in hooks:
            h.remove()
    others += spy.others
    if others:
        listed = ", ".join(others[:4]) + (f" … (+{len(others) - 4} more)" if len(others) > 4 else "")
        raise UnreachableReLUError(
            f"{title} is defined for ReLU networks only; this model uses {listed}. Leave {methods} out of "
            f"the methods for this model (the other methods work on any activation).")
    if spy.stray == 0 and not any(isinstance(m, nn.ReLU) for m in module.modules()):
        raise UnreachableReLUError(f"{title} found no ReLU in this model; it cannot be applied "
                                   f"(leave {methods} out of the methods).")
    with _LOCK:
        _CHECKED[module] = spy.stray
